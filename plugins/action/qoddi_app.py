# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""qoddi_app's action: hand the module the platform's settings, so a minimal task works as written.

- Build settings the inventory sets for the whole platform (qoddi_build_ca_bundle,
  qoddi_build_pip_index_url) reach every build; the task's own O(build) options win, an empty
  one included (a task can opt out).
- The images role's recipes for every Python the platform can provide (plugin_utils/_images.py
  reads the role's own files), so the module builds or pulls the Python an app asks for at its
  first build, without a platform re-run.
- The cluster's registry (qoddi_images_registry), where release images go so that any node runs them.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.yaml import yaml_load  # libyaml when installed: ten times faster

from ansible_collections.qoddi.paas.plugins.filter.images import image_plan
from ansible_collections.qoddi.paas.plugins.module_utils import _python_images as pyimages
from ansible_collections.qoddi.paas.plugins.plugin_utils import _images
from ansible_collections.qoddi.paas.plugins.plugin_utils._action import ModuleWithArguments

HAPROXY_ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "haproxy")
BUILD_SETTINGS = {"ca_bundle": "qoddi_build_ca_bundle", "pip_index_url": "qoddi_build_pip_index_url"}


class ActionModule(ModuleWithArguments):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("state", "present") == "present":
            try:
                settings = self._platform_settings(task_vars or {})
                build = dict(args.get("build") or {})
                for option, variable in BUILD_SETTINGS.items():
                    if option not in build and settings.get(variable):
                        build[option] = settings[variable]
                args["build"] = build
                if not args.get("python_images"):
                    args["python_images"] = python_offer(settings)
                # A cluster's release images go to its registry, so that every node can run them.
                if "registry" not in args and settings.get("qoddi_images_registry"):
                    args["registry"] = settings["qoddi_images_registry"]
                if "platform_domain" not in args:
                    args["platform_domain"] = self._platform_domain(task_vars or {})
            except AnsibleError as exc:
                result.update(failed=True, msg=f"qoddi_app: {exc}")
                return result
        return self.run_module("qoddi.paas.qoddi_app", args, task_vars, result)

    def _platform_domain(self, task_vars: dict) -> str:
        """qoddi_domain as the edge role reads it: the inventory's, else the role's default."""
        if "qoddi_domain" in task_vars:
            return str(self._templar.template(task_vars["qoddi_domain"]))
        return edge_default_domain()

    def _platform_settings(self, task_vars: dict) -> dict:
        """The images role's defaults, overridden by what the inventory (or play) sets."""
        settings = _images.role_settings()
        for name in _images.PLATFORM_SETTINGS:
            if name not in task_vars:
                continue
            try:
                settings[name] = self._templar.template(task_vars[name])
            except AnsibleError as exc:
                # `{{ x | default(omit) }}` in an inventory: the setting is not set.
                if type(exc).__name__ != "AnsibleValueOmittedError":
                    raise
        return settings


def edge_default_domain() -> str:
    """The qoddi.paas.haproxy role's default qoddi_domain (what the edge uses when nothing sets it)."""
    with open(os.path.join(HAPROXY_ROLE, "defaults", "main.yml"), encoding="utf-8") as handle:
        return str((yaml_load(handle) or {}).get("qoddi_domain") or "")


def python_offer(settings: dict) -> dict:
    """What the module needs to provide any Python the platform offers: for each locally buildable
    version its Debian suite and the two images' recipes; the official references; the default."""
    suites = {str(k): v for k, v in settings["__qoddi_images_python_suites"].items()}
    source = settings["qoddi_image_source"]
    configured = settings.get("qoddi_images_python_default") or ""
    if not isinstance(configured, str):
        # YAML reads 3.10 as the number 3.1.
        raise AnsibleError(f"qoddi_images_python_default is {configured!r}, not a string: quote it, e.g. \"3.14\".")
    official_versions = [str(v) for v in settings.get("__qoddi_images_python_official_versions") or []]
    plan = image_plan(["python", "python-build"], source, sorted(suites, key=pyimages.version_key),
                      settings["__qoddi_images_local_catalogue"], suites, settings["qoddi_images_official"],
                      settings["qoddi_images_suite"], settings["qoddi_images_extra_packages"])
    recipes = _images.local_recipes(plan, bool(settings["qoddi_build_ca_bundle"]),
                                    settings["qoddi_build_pip_index_url"] or "",
                                    settings.get("qoddi_images_apt_skip_valid_until") or [])
    versions: dict = {}
    for entry in plan:
        version = versions.setdefault(entry["version"], {"suite": entry["suite"], "base": entry["base"]})
        recipe = recipes[entry["key"]]
        version[entry["name"]] = {"ref": recipe["ref"], "dockerfile": recipe["dockerfile"],
                                  "official": entry["official"]}
    with open(_images.BOOTSTRAP_SCRIPT, encoding="utf-8") as handle:
        bootstrap = handle.read()
    offer = {
        "source": source,
        "versions": versions,
        "official_versions": official_versions,
        "official": {name: settings["qoddi_images_official"].get(name, "") for name in ("python", "python-build")},
        "mirror": settings["qoddi_images_mirror"],
        "build_dir": settings["qoddi_images_build_dir"],
        "bootstrap": bootstrap,
        "bootstrap_name": os.path.basename(_images.BOOTSTRAP_SCRIPT),
    }
    # The newest of what the module will offer (local builds, and official images outside local mode).
    offer["default"] = _images.default_python(pyimages.offered(offer), configured)
    return offer
