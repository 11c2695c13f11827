# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.filter.images import (
    image_decisions,
    image_final_ref,
    image_plan,
    local_recipes,
)

CATALOGUE = {"haproxy": {"packages": ["haproxy"]}, "python": {"packages": []}, "python-build": {"packages": []}}
SUITES = {"3.11": "bookworm", "3.13": "trixie"}
OFFICIAL = {"haproxy": "haproxy:2.8", "python": "python:{version}-slim", "python-build": "python:{version}"}


def plan(source="local", wanted=("haproxy", "python"), versions=("3.13",)):
    return image_plan(list(wanted), source, list(versions), CATALOGUE, SUITES, OFFICIAL, "bookworm")


def test_plan_expands_python_per_version_on_its_debian_release():
    entries = plan(versions=("3.11", "3.13"))
    assert [e["key"] for e in entries] == ["haproxy", "python-3.11", "python-3.13"]
    py313 = entries[2]
    assert py313["suite"] == "trixie"
    assert py313["base"] == "qoddi/debian:trixie"
    assert py313["official"] == "python:3.13-slim"
    assert entries[0]["suite"] == "bookworm"


def test_plan_expands_the_build_stage_image_per_version_too():
    entries = plan(wanted=("python", "python-build"), versions=("3.11", "3.13"))
    assert [e["key"] for e in entries] == ["python-3.11", "python-3.13", "python-build-3.11", "python-build-3.13"]
    build = entries[3]
    assert (build["name"], build["version"], build["suite"]) == ("python-build", "3.13", "trixie")
    assert build["official"] == "python:3.13"


def test_plan_rejects_an_unknown_source_naming_the_choices():
    with pytest.raises(AnsibleFilterError, match="registry, local, auto"):
        plan(source="cloud")


def test_plan_rejects_unknown_images():
    with pytest.raises(AnsibleFilterError, match="unknown images: nginx"):
        plan(wanted=("haproxy", "nginx"))


def test_plan_rejects_a_python_debian_cannot_build_but_registry_can_pull_it():
    with pytest.raises(AnsibleFilterError, match="Python 3.12 cannot be built locally"):
        plan(versions=("3.12",))
    assert plan(source="registry", versions=("3.12",))[1]["official"] == "python:3.12-slim"


def test_local_recipes_render_the_role_templates_and_name_them_by_digest():
    entries = plan(wanted=("haproxy", "python", "python-build"), versions=("3.13",))
    recipes = local_recipes(entries, False, "")
    assert re.fullmatch(r"qoddi/haproxy:bookworm-[0-9a-f]{12}", recipes["haproxy"]["ref"])
    assert re.fullmatch(r"qoddi/python:3.13-[0-9a-f]{12}", recipes["python-3.13"]["ref"])
    assert recipes["python-3.13"]["dockerfile"].startswith("# Built by qoddi.paas.images")
    assert "FROM qoddi/debian:trixie\n" in recipes["python-3.13"]["dockerfile"]
    assert "python3.13-dev" in recipes["python-build-3.13"]["dockerfile"]
    # The same recipe gives the same name; a package more gives another.
    assert local_recipes(entries, False, "") == recipes
    more = image_plan(["haproxy"], "local", [], CATALOGUE, SUITES, OFFICIAL, "bookworm", {"haproxy": ["curl"]})
    assert local_recipes(more, False, "")["haproxy"]["ref"] != recipes["haproxy"]["ref"]


def _decide(source, present):
    entries = plan()
    recipes = {e["key"]: {"ref": f"qoddi/{e['key']}:x", "dockerfile": "FROM x"} for e in entries}
    return {d["key"]: d for d in image_decisions(entries, source, recipes, present)}


def test_local_mode_builds_only_what_is_missing():
    decided = _decide("local", ["qoddi/haproxy:x"])
    assert decided["haproxy"]["action"] == "none"
    assert decided["python-3.13"]["action"] == "build"
    assert decided["python-3.13"]["ref"] == "qoddi/python-3.13:x"


def test_registry_mode_pulls_only_what_is_missing():
    decided = _decide("registry", ["haproxy:2.8"])
    assert decided["haproxy"] == decided["haproxy"] | {"action": "none", "ref": "haproxy:2.8"}
    assert decided["python-3.13"]["action"] == "pull"


def test_auto_mode_prefers_what_is_present_then_pulls_then_builds():
    decided = _decide("auto", ["qoddi/haproxy:x"])
    assert decided["haproxy"]["action"] == "none"
    assert decided["haproxy"]["ref"] == "qoddi/haproxy:x"
    assert decided["python-3.13"]["action"] == "pull_or_build"
    assert image_final_ref(decided["python-3.13"], []) == "python:3.13-slim"
    assert image_final_ref(decided["python-3.13"], ["python-3.13"]) == "qoddi/python-3.13:x"


def test_extra_packages_join_the_recipe():
    entries = image_plan(["haproxy"], "local", [], CATALOGUE, SUITES, OFFICIAL, "bookworm",
                         {"haproxy": ["socat"]})
    assert entries[0]["packages"] == ["haproxy", "socat"]
    assert CATALOGUE["haproxy"]["packages"] == ["haproxy"]


def test_registry_mode_needs_an_official_reference_for_every_image():
    with pytest.raises(AnsibleFilterError, match="no reference for haproxy"):
        image_plan(["haproxy"], "registry", [], CATALOGUE, SUITES, {"python": "p"}, "bookworm")


@pytest.mark.parametrize("source", ["registry", "auto"])
def test_local_only_images_are_built_here_in_every_mode(source):
    catalogue = dict(CATALOGUE, controller={"packages": ["python3-docker"], "local_only": True})
    entries = image_plan(["controller", "haproxy"], source, [], catalogue, SUITES, OFFICIAL, "bookworm")
    recipes = {e["key"]: {"ref": f"qoddi/{e['key']}:x", "dockerfile": "FROM x"} for e in entries}
    decided = {d["key"]: d for d in image_decisions(entries, source, recipes, [])}
    assert decided["controller"]["action"] == "build" and decided["controller"]["ref"] == "qoddi/controller:x"
    assert decided["haproxy"]["action"] in ("pull", "pull_or_build")
