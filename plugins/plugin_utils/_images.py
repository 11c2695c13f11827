# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The images role's recipes, read on the Ansible controller by the role (through filters) and by
qoddi_app's action (to provide an app's Python on demand): one owner, the role's own files."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Sequence

import jinja2
from ansible.module_utils.common.yaml import yaml_load  # libyaml when installed: ten times faster

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils._python_images import version_key

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "images")
TEMPLATES = os.path.join(ROLE, "templates")
BOOTSTRAP_SCRIPT = os.path.join(ROLE, "files", "debian-base.sh")

# The role's settings a platform-wide inventory may set, and which qoddi_app's builds follow.
PLATFORM_SETTINGS = ("qoddi_image_source", "qoddi_images_official", "qoddi_images_extra_packages",
                     "qoddi_images_suite", "qoddi_images_mirror", "qoddi_images_build_dir",
                     "qoddi_images_python_default", "qoddi_images_apt_skip_valid_until",
                     "qoddi_build_ca_bundle", "qoddi_build_pip_index_url", "qoddi_images_registry")


def role_settings() -> dict:
    """The images role's defaults and its vars (catalogue, Python suites), as the role itself sees them."""
    settings = {}
    for name in ("defaults", "vars"):
        with open(os.path.join(ROLE, name, "main.yml"), encoding="utf-8") as handle:
            settings.update(yaml_load(handle) or {})
    return settings


def default_python(offered: Iterable[str], configured: str = "") -> str:
    """The platform's default Python: the configured one, else the newest it offers (as Heroku's
    default follows the newest stable release)."""
    return str(configured) if configured else max(map(str, offered), key=version_key)


@functools.cache
def _templates(templates_dir: str) -> jinja2.Environment:
    """One environment per templates directory: each template is compiled once, not once per image
    (8 images, 16 compiles, were most of qoddi_app's action). Jinja still reloads a template whose
    file changed (auto_reload)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir), trim_blocks=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False)
    # The templates name labels as the roles do (plugins/filter/conventions.py).
    env.filters["qoddi.paas.label"] = conventions.label
    return env


def render_dockerfile(entry: dict, ca_bundle: bool, pip_index_url: str, skip_valid_until: Sequence[str] = (),
                      templates_dir: str = TEMPLATES) -> str:
    """The Dockerfile of a planned local image, from the role's template for it."""
    env = _templates(templates_dir)
    # Mirrors let the Release files of Debian testing and unstable pass their Valid-Until date between
    # syncs, and apt then refuses to update at all. For the suites listed, only the build's own apt
    # skips the date (signatures are still checked), and the images keep apt's default.
    apt_update = "-o Acquire::Check-Valid-Until=false update" if entry["suite"] in skip_valid_until else "update"
    image = dict(entry, ca_bundle=ca_bundle, pip_index_url=pip_index_url, apt_update=apt_update)
    return env.get_template(f"{entry['name']}/Dockerfile.j2").render(__qoddi_image=image)


def recipe_digest(entry: dict, dockerfile: str, templates_dir: str = TEMPLATES) -> str:
    """sha256 of the Dockerfile and of every other file of the image's build context (name and bytes)."""
    digest = hashlib.sha256(dockerfile.encode())
    folder = os.path.join(templates_dir, entry["name"])
    for name in sorted(os.listdir(folder)):
        if name != "Dockerfile.j2":
            with open(os.path.join(folder, name), "rb") as handle:
                digest.update(b"\0" + name.encode() + b"\0" + handle.read())
    return digest.hexdigest()


def local_recipes(plan: list, ca_bundle: bool, pip_index_url: str, skip_valid_until: Sequence[str] = (),
                  templates_dir: str = TEMPLATES) -> dict:
    """{key: {"ref": qoddi/<name>:<flavour>-<digest>, "dockerfile": text}} for every planned image.

    A changed Dockerfile, file or package list gives a new tag, so "build only when missing" is also
    "rebuild exactly when the recipe changed".
    """
    recipes = {}
    for entry in plan:
        dockerfile = render_dockerfile(entry, ca_bundle, pip_index_url, skip_valid_until, templates_dir)
        flavour = entry["version"] or entry["suite"]
        ref = f"qoddi/{entry['name']}:{flavour}-{recipe_digest(entry, dockerfile, templates_dir)[:12]}"
        recipes[entry["key"]] = {"ref": ref, "dockerfile": dockerfile}
    return recipes
