# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pathlib
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.filter.conventions import label as label_filter
from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions

ROOT = pathlib.Path(__file__).resolve().parents[4]


def test_label_names_a_known_key_and_refuses_a_typo():
    assert conventions.label("env.seq") == conventions.Label.ENV_SEQ == "org.qoddi.env.seq"
    with pytest.raises(AnsibleFilterError, match="org.qoddi.evn.seq is not a label"):
        label_filter("evn.seq")


@pytest.mark.parametrize("name, ok", [("web", True), ("a", True), ("my-app2", True), ("my--app", False),
                                      ("my-app-", False), ("2app", False), ("App", False), ("a" * 31, False)])
def test_names(name, ok):
    assert conventions.name_ok(name) is ok


def test_roles_get_every_convention():
    facts = conventions.as_dict()
    assert facts["labels"]["component"] == "org.qoddi.component"
    assert facts["edge_network"] == "qoddi--edge" and facts["web_port"] == 5000
    assert facts["sizes"]["S"] == {"cpus": 0.5, "memory_mb": 512}


def test_no_label_key_is_spelled_out_in_python_code():
    """The conventions module owns every org.qoddi.* key: python code refers to conventions.Label."""
    spelled = re.compile(r"""["']org\.qoddi\.[a-z]|\b(?:LABEL|L) \+ ["']""")
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in [*ROOT.glob("plugins/**/*.py"), *ROOT.glob("roles/*/files/*.py")]
                 if path.name != "_conventions.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if spelled.search(line)]
    assert not offenders, offenders


def test_no_label_key_is_spelled_out_in_roles():
    """Roles and their templates name labels through the qoddi.paas.label filter."""
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for path in ROOT.glob("roles/**/*") if path.is_file() and path.suffix in (".yml", ".j2", ".sh", ".cfg")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if "org.qoddi." in line and not line.lstrip().startswith("#")]
    assert not offenders, offenders


def test_image_templates_render_labels_through_the_filter():
    from ansible_collections.qoddi.paas.plugins.plugin_utils import _images
    entry = {"name": "python", "suite": "trixie", "version": "3.13", "base": "qoddi/debian:trixie", "packages": []}
    text = _images.render_dockerfile(entry, False, "")
    assert 'LABEL org.qoddi.image="python"' in text and 'LABEL org.qoddi.python="3.13"' in text


def test_roles_template_no_mapping_key():
    """Ansible templates values, not keys: a key like "{{ 'app' | qoddi.paas.label }}": x stays that
    text (a label named so went to the engine once). Build such a mapping in one expression instead."""
    key = re.compile(r"""^\s*-?\s*["']\{\{.*\}\}["']\s*:""")
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in ROOT.glob("roles/**/*.yml")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if key.match(line)]
    assert not offenders, offenders
