# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's dependencies are exact and declared once: every collection the content names by FQCN
is in galaxy.yml and nothing else is; every library the plugins import is in meta/ee-requirements.txt and
nothing else is; the execution environment and requirements.txt agree (the awx_job integration target
builds, installs and runs the tarball itself)."""
from __future__ import annotations

import ast
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTENT = ["roles", "playbooks", "plugins", "molecule", "tests/integration", "examples"]
# Used by ansible-core on the collection's behalf, not imported: password_hash (roles/haproxy) needs
# passlib on Python 3.13+, where the crypt module is gone.
INDIRECT = {"passlib": "roles/haproxy/templates/haproxy.cfg.j2"}


def requirement_names(path: pathlib.Path) -> dict[str, str]:
    names = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
            names[name] = line
    return names


def test_every_collection_named_is_a_declared_dependency_and_no_other():
    # Not after "import": ansible-core's own Python packages (ansible.utils.display) are no collection.
    pattern = re.compile(r"(?<!import )(?<!from )\b(community\.[a-z_]+|ansible\.(?:posix|utils|netcommon))\.[a-z_]+")
    used = set()
    for folder in CONTENT:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".yml", ".yaml", ".py", ".j2"} and path.is_file() and "output" not in path.parts:
                used |= {m.group(1) for m in pattern.finditer(path.read_text(errors="replace"))}
    declared = set(yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"])
    assert used == declared, f"used but not declared: {used - declared}; declared but unused: {declared - used}"


def test_every_library_the_plugins_import_is_declared_once_and_no_other():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    imported = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name.lower() for name in imported - stdlib - {"ansible", "ansible_collections"}}
    declared = set(requirement_names(ROOT / "meta" / "ee-requirements.txt"))
    assert third_party | set(INDIRECT) == declared
    for library, user in INDIRECT.items():
        assert (ROOT / user).exists(), f"{library} is declared for {user}, which is gone"
    # requirements.txt takes them from there rather than naming them again.
    top = (ROOT / "requirements.txt").read_text()
    assert "-r meta/ee-requirements.txt" in top.splitlines()
    assert not declared & set(requirement_names(ROOT / "requirements.txt"))


def test_the_execution_environment_agrees_with_the_requirements():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    top = requirement_names(ROOT / "requirements.txt")
    assert ee["dependencies"]["ansible_core"]["package_pip"] == top["ansible-core"]
    for kind in ("python", "system"):
        assert (ROOT / meta["dependencies"][kind]).is_file()
    tarball = ee["additional_build_files"][0]["dest"] + "/qoddi-paas.tar.gz"
    assert ee["dependencies"]["galaxy"]["collections"][0]["name"] == tarball


def test_every_requirement_is_pinned_by_the_constraints():
    pinned = {re.split("[=<>]", line)[0].lower() for line in (ROOT / "constraints.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    for path in ("requirements.txt", "requirements-test.txt", "meta/ee-requirements.txt"):
        missing = set(requirement_names(ROOT / path)) - pinned
        assert not missing, f"{path}: {missing} not in constraints.txt"
