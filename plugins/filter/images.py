# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters that turn the images role's settings into a plan of images to provide."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.module_utils._registry import registry_ref
from ansible_collections.qoddi.paas.plugins.plugin_utils import _images

IMAGE_SOURCES = ("registry", "local", "auto")
# Images made once per Python version: the runtime (python) and the build stage of app images
# (python-build: the same interpreter with compilers and headers).
PER_PYTHON_VERSION = ("python", "python-build")


def image_plan(
    wanted: list,
    source: str,
    python_versions: list,
    catalogue: dict,
    python_suites: dict,
    official: dict,
    suite: str,
    extra_packages: dict | None = None,
) -> list:
    """Expand the wanted image names into one entry per image to provide.

    Each entry says how to get the image both ways (official reference, local recipe) so the
    role can pick by O(qoddi_image_source) without further logic. Errors name the variable to fix.
    """
    if source not in IMAGE_SOURCES:
        raise AnsibleFilterError(
            f"qoddi_image_source is {source!r}; it must be one of {', '.join(IMAGE_SOURCES)} "
            "(registry pulls the official images, local builds them from Debian packages, "
            "auto uses what is present, else pulls, else builds)."
        )
    unknown = [name for name in wanted if name not in catalogue]
    if unknown:
        raise AnsibleFilterError(
            f"qoddi_images_wanted names unknown images: {', '.join(map(str, unknown))}; "
            f"known images are {', '.join(sorted(catalogue))}."
        )
    extra_packages = extra_packages or {}
    if source != "local":
        # Platform images of our own (the controller) have no official counterpart: always built here.
        missing = [name for name in wanted if not official.get(name) and not catalogue[name].get("local_only")]
        if missing:
            raise AnsibleFilterError(
                f"qoddi_images_official has no reference for {', '.join(missing)}; add one "
                "(e.g. haproxy: docker.io/library/haproxy:2.8) or use qoddi_image_source: local."
            )
    plan = []
    for name in wanted:
        recipe = dict(catalogue[name])
        recipe["packages"] = list(recipe.get("packages", [])) + list(extra_packages.get(name, []))
        if name not in PER_PYTHON_VERSION:
            plan.append(_entry(name, "", suite, recipe, official.get(name, "")))
            continue
        for version in python_versions:
            version = str(version)
            if source != "registry" and version not in python_suites:
                raise AnsibleFilterError(
                    f"Python {version} cannot be built locally: Debian ships "
                    f"{', '.join(sorted(python_suites))}. Pick one of those in "
                    "qoddi_images_python_versions, or use qoddi_image_source: registry for "
                    "the official python images."
                )
            py_suite = python_suites.get(version, suite)
            ref = official.get(name, "").replace("{version}", version)
            plan.append(_entry(name, version, py_suite, recipe, ref))
    return plan


def _entry(name: str, version: str, suite: str, recipe: dict, official_ref: str) -> dict:
    return {
        "key": f"{name}-{version}" if version else name,
        "name": name,
        "version": version,
        "suite": suite,
        "base": f"qoddi/debian:{suite}",
        "packages": list(recipe.get("packages", [])),
        "official": official_ref,
    }


def local_recipes(plan: list, ca_bundle: bool, pip_index_url: str, skip_valid_until: list | None = None) -> dict:
    """{key: {"ref", "dockerfile"}} of every planned image: its Dockerfile rendered from the role's
    template, and its local tag, named after a digest of that recipe (see plugin_utils/_images.py,
    which qoddi_app's action also reads to provide an app's Python on demand)."""
    return _images.local_recipes(plan, bool(ca_bundle), pip_index_url or "", skip_valid_until or [])


def image_decisions(plan: list, source: str, recipes: dict, present: list) -> list:
    """Decide, for each planned image, what to do and which reference it will have.

    ``action`` is ``none`` (already here), ``pull``, ``build`` or ``pull_or_build`` (auto mode:
    try the official image, build locally if the pull fails). ``ref`` is the reference the image
    has once the action succeeded (for ``pull_or_build``, the official one; ``ref_local`` is the
    fallback).
    """
    have = set(present)
    decided = []
    for entry in plan:
        local_ref = recipes[entry["key"]]["ref"]
        official, action, ref = entry["official"], "none", local_ref
        if source == "local" or not official:
            action = "none" if local_ref in have else "build"
        elif source == "registry":
            ref = official
            action = "none" if official in have else "pull"
        elif official in have:
            ref = official
        elif local_ref not in have:
            ref, action = official, "pull_or_build"
        decided.append(dict(entry, ref=ref, ref_local=local_ref, action=action,
                            dockerfile=recipes[entry["key"]]["dockerfile"]))
    return decided


def image_final_ref(entry: dict, failed_pulls: list) -> str:
    """The reference an image ends up with: the local build when its pull failed."""
    return entry["ref_local"] if entry["key"] in failed_pulls else entry["ref"]


class FilterModule:
    def filters(self):
        return {
            "image_plan": image_plan,
            "local_recipes": local_recipes,
            "image_decisions": image_decisions,
            "image_final_ref": image_final_ref,
            "registry_ref": registry_ref,
        }
