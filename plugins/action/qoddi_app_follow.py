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
        deadline = time.monotonic() + args["timeout"]
        self._inode, self._shown, self._stale = None, 0, None
        first = True
        while True:
            status = self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                          module_args={"jid": args["jid"], "_async_dir": async_dir})
            self._show_new_lines(log, host, args["name"], first)
            first = False
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

    def _look(self, quoted: str, start: int) -> tuple[str, int, int, list[str]] | None:
        """(inode, modification time, the host's clock, lines from ``start``) of the log; None without one."""
        cmd = (f"if [ -f {quoted} ]; then stat -c '%i %Y' -- {quoted} && date +%s && "
               f"tail -n +{start + 1} -- {quoted} | head -n {MAX_LINES + 1}; fi")
        out = self._low_level_execute_command(cmd, sudoable=True).get("stdout", "").splitlines()
        if len(out) < 2 or len(out[0].split()) != 2:
            return None
        inode, mtime = out[0].split()
        try:
            return inode, int(mtime), int(out[1]), out[2:]
        except ValueError:
            return None

    def _show_new_lines(self, log: str, host: str, name: str, first: bool) -> None:
        """Print the lines of the running build's log not shown yet. The module makes the file again (a new
        inode) when a build starts; a file already there and untouched for a while when following starts is
        an earlier build's, and stays unshown (a run that builds nothing shows nothing)."""
        quoted = shlex.quote(log)
        look = self._look(quoted, self._shown)
        if look is None:
            return
        inode, mtime, clock, lines = look
        if first and mtime < clock - 2:
            self._stale = inode
        if inode == self._stale:
            return
        if inode != self._inode:  # a new build's log: from its first line
            self._inode, self._shown = inode, 0
            look = self._look(quoted, 0)
            if look is None or look[0] != inode:
                return
            lines = look[3]
        for line in lines[:MAX_LINES]:
            display.display(f"{host} | {name} build: {line}")
        if len(lines) > MAX_LINES:
            display.display(f"{host} | {name} build: ... (more lines; the whole log: qoddi_logs processes [build])")
            # Skip ahead: the next look starts at the end of what exists now.
            count = self._low_level_execute_command(f"wc -l < {quoted}", sudoable=True).get("stdout", "").strip()
            self._shown = int(count) if count.isdigit() else self._shown + MAX_LINES
        else:
            self._shown += len(lines)
