# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""qoddi_db's action: hand the module the marketplace's catalogue of engines.

The catalogue is data in the marketplace role (roles/marketplace/vars/main.yml), read here on the
Ansible controller, so the module on the manager needs no copy of it and a new engine is an entry
in that file, not code.
"""

from __future__ import annotations

import os

from ansible.module_utils.common.yaml import yaml_load  # libyaml when installed: ten times faster

from ansible_collections.qoddi.paas.plugins.plugin_utils._action import ModuleWithArguments

CATALOGUE = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "marketplace", "vars", "main.yml")


class ActionModule(ModuleWithArguments):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("catalogue"):
            with open(CATALOGUE, encoding="utf-8") as handle:
                args["catalogue"] = yaml_load(handle)["qoddi_marketplace_engines"]
        result = self.run_module("qoddi.paas.qoddi_db", args, task_vars, result)
        # The result holds the password and the URL: never shown, whatever the task's no_log (the
        # registered result keeps them). A failure's are masked by the module, so its message shows.
        if not result.get("failed") and ("password" in result or "url" in result):
            result["_ansible_no_log"] = True
        return result
