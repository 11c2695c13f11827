# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The newest release command's output kept as a Swarm config; the engine's side runs in qoddi_console's target."""
from __future__ import annotations

import base64

from ansible_collections.qoddi.paas.plugins.module_utils import _release_log as release_log


class Api:
    """Swarm configs in memory, with the engine's label filter and its refusal of a taken name."""

    def __init__(self):
        self.configs_by_id = {}

    def create_config(self, name, data, labels):
        assert len(name) <= 64 and all(c["Spec"]["Name"] != name for c in self.configs_by_id.values())
        config_id = f"c{len(self.configs_by_id) + 1}"
        self.configs_by_id[config_id] = {"ID": config_id, "Spec": {
            "Name": name, "Labels": labels, "Data": base64.b64encode(data).decode()}}
        return {"ID": config_id}

    def configs(self, filters):
        wanted = dict(label.split("=", 1) for label in filters["label"])
        return [c for c in self.configs_by_id.values()
                if all(c["Spec"]["Labels"].get(k) == v for k, v in wanted.items())]

    def remove_config(self, config_id):
        del self.configs_by_id[config_id]


class Client:
    def __init__(self):
        self.api = Api()


def test_only_the_newest_release_log_of_an_app_is_kept_with_its_last_lines():
    client = Client()
    assert release_log.keep(client, "blog", 3, ["ok"], True, "node-1") == ""
    assert release_log.keep(client, "shop", 9, ["other app"], True, "node-1") == ""
    lines = [f"line {n}" for n in range(release_log.MAX_LINES + 50)] + ["x" * 5000]
    assert release_log.keep(client, "blog", 4, lines, False, "node-2") == ""
    (kept,) = release_log.read(client, "blog")
    assert kept["release"] == 4 and kept["ok"] is False and kept["node"] == "node-2"
    assert len(kept["lines"]) == release_log.MAX_LINES and kept["lines"][-1] == "x" * release_log.MAX_LINE
    assert kept["time"].endswith("Z")
    assert [k["release"] for k in release_log.read(client, "shop")] == [9]
    release_log.remove(client, "blog")
    assert release_log.read(client, "blog") == [] and len(release_log.read(client, "shop")) == 1


def test_a_failure_to_keep_it_is_said_not_raised():
    class Broken(Client):
        def __init__(self):
            super().__init__()
            self.api.create_config = self.refuse

        @staticmethod
        def refuse(*args, **kwargs):
            raise RuntimeError("no space")

    assert "no space" in release_log.keep(Broken(), "blog", 1, ["x"], True, "")


def test_a_log_of_wide_characters_is_cut_to_what_swarm_takes():
    client = Client()
    assert release_log.keep(client, "blog", 1, ["é" * release_log.MAX_LINE] * release_log.MAX_LINES, True, "") == ""
    configs = list(client.api.configs_by_id.values())
    assert len(configs) == 1 and len(base64.b64decode(configs[0]["Spec"]["Data"])) <= release_log.MAX_BYTES
    (kept,) = release_log.read(client, "blog")
    assert 0 < len(kept["lines"]) < release_log.MAX_LINES


def test_the_build_log_is_kept_beside_the_release_log_and_longer():
    client = Client()
    app = "a" * 30  # the longest app name still makes a config name Swarm takes
    release_log.keep(client, app, 7, ["migrated"], True, "node-1")
    build = [f"Step {n}" for n in range(6000)]
    assert release_log.keep(client, app, 7, build, False, "node-1", kind=release_log.BUILD_KIND) == ""
    assert release_log.keep(client, app, 8, build, True, "node-1", kind=release_log.BUILD_KIND) == ""
    [kept_build] = release_log.read(client, app, release_log.BUILD_KIND)
    [kept_release] = release_log.read(client, app)
    assert kept_release["lines"] == ["migrated"]
    assert kept_build["release"] == 8 and kept_build["ok"]
    assert kept_build["lines"] == build[-release_log.MAX_LINES_OF[release_log.BUILD_KIND]:]
    release_log.remove(client, app)
    assert not client.api.configs_by_id
