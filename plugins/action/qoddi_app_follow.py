# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Follow a qoddi_app run started with ``async`` and ``poll: 0``: show its build's log lines as they
come (the module writes them to <state_dir>/<app>/build.log), then return the run's result as if the
task had waited for it. AWX shows each line as it comes; a plain ``async`` task shows nothing until
the end, which for a first build is minutes. Runs on the Ansible controller; the host is asked with
async_status (as Ansible's own polling does) and with one ``tail`` per look."""

from __future__ import annotations

import shlex
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

# Lines shown per look at most: a pip install can print hundreds at once.
MAX_LINES = 200


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        unused, args = self.validate_argument_spec(argument_spec={
            "jid": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "state_dir": {"type": "path", "default": "/var/lib/qoddi/apps"},
            "interval": {"type": "int", "default": 5},
            "timeout": {"type": "int", "default": 3600},
        })
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        log = f"{args['state_dir'].rstrip('/')}/{args['name']}/build.log"
        host = task_vars.get("inventory_hostname", "") if task_vars else ""
        shown, deadline = 0, time.monotonic() + args["timeout"]
        while True:
            status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                          module_args={"jid": args["jid"], "_async_dir": async_dir})
            shown = self._show_new_lines(log, shown, host, args["name"])
            if status.get("finished") or (status.get("failed") and "finished" not in status):
                break
            if time.monotonic() > deadline:
                result.update(failed=True, msg=f"qoddi_app {args['name']} still runs after {args['timeout']} s of "
                                               f"following (async job {args['jid']}); it goes on by itself.")
                return result
            time.sleep(args["interval"])
        self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                             module_args={"jid": args["jid"], "mode": "cleanup", "_async_dir": async_dir})
        # The run's own result, as a waiting task would have returned it.
        for key in ("ansible_job_id", "started", "finished", "results_file", "stdout", "stderr",
                    "stdout_lines", "stderr_lines", "erased"):
            status.pop(key, None)
        result.update(status)
        return result

    def _show_new_lines(self, log: str, shown: int, host: str, name: str) -> int:
        """Print the log's lines after the first ``shown``; return how many there are now."""
        quoted = shlex.quote(log)
        cmd = f"[ -f {quoted} ] && tail -n +{shown + 1} -- {quoted} | head -n {MAX_LINES + 1} || true"
        out = self._low_level_execute_command(cmd, sudoable=True).get("stdout", "")
        lines = out.splitlines()
        for line in lines[:MAX_LINES]:
            display.display(f"{host} | {name} build: {line}")
        if len(lines) > MAX_LINES:
            display.display(f"{host} | {name} build: ... (more lines; the whole log: qoddi_logs processes [build])")
            # Skip ahead: the next look starts at the end of what exists now.
            count = self._low_level_execute_command(f"wc -l < {quoted}", sudoable=True).get("stdout", "").strip()
            return int(count) if count.isdigit() else shown + MAX_LINES
        return shown + len(lines)
