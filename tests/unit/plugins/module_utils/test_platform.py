# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.module_utils._platform import (
    summarize_images,
    summarize_node,
    summarize_swarm,
)


def test_inactive_engine_reports_no_swarm():
    assert summarize_swarm({"Swarm": {"LocalNodeState": "inactive", "NodeID": ""}}) == {
        "active": False, "state": "inactive", "node_id": None, "is_manager": False,
        "cluster_id": None, "managers": 0, "nodes": 0,
    }


def test_manager_swarm_summary():
    info = {"Swarm": {"LocalNodeState": "active", "NodeID": "n1", "ControlAvailable": True,
                      "Cluster": {"ID": "c1"}, "Managers": 1, "Nodes": 3}}
    summary = summarize_swarm(info)
    assert summary["active"] and summary["is_manager"]
    assert (summary["cluster_id"], summary["managers"], summary["nodes"]) == ("c1", 1, 3)


def test_node_is_flattened_with_labels_and_resources():
    attrs = {
        "ID": "abc",
        "Spec": {"Role": "manager", "Availability": "active", "Labels": {"qoddi.role": "manager"}},
        "Description": {"Hostname": "node1", "Engine": {"EngineVersion": "20.10.24"},
                        "Resources": {"NanoCPUs": 2_000_000_000, "MemoryBytes": 2 * 1024**3}},
        "Status": {"State": "ready", "Addr": "127.0.0.1"},
        "ManagerStatus": {"Leader": True},
    }
    node = summarize_node(attrs)
    assert node["labels"] == {"qoddi.role": "manager"}
    assert (node["cpus"], node["memory_mb"], node["leader"]) == (2.0, 2048, True)


def test_images_report_their_platform_label_and_source():
    images = summarize_images([
        {"Id": "sha256:2", "RepoTags": ["qoddi/redis:bookworm-1"], "Size": 5e7,
         "Config": {"Labels": {"org.qoddi.image": "redis", "org.qoddi.source": "local"}}},
        {"Id": "sha256:1", "RepoTags": ["qoddi/python:3.13-1"], "Size": 1e8,
         "Config": {"Labels": {"org.qoddi.image": "python", "org.qoddi.python": "3.13"}}},
    ])
    assert [i["image"] for i in images] == ["python", "redis"]
    assert images[0]["python"] == "3.13" and images[0]["source"] == "registry"
    assert images[1]["source"] == "local" and images[1]["size_mb"] == 50.0
