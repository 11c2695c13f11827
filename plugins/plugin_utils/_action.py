# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection's actions share: add arguments on the Ansible controller, then run the module
as the normal action would (async included)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class ModuleWithArguments(ActionBase):
    # Builds and backups take minutes: `async` must stay available, as it is for plain modules.
    _supports_async = True

    def run_module(self, name: str, args: dict, task_vars: dict, result: dict) -> dict:
        """Run module ``name`` with ``args`` on the host; merge its result into ``result``."""
        wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
        result.update(self._execute_module(module_name=name, module_args=args, task_vars=task_vars,
                                           wrap_async=wrap_async))
        if not wrap_async:
            # As the normal action does: an async job still needs the files until it ends.
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
