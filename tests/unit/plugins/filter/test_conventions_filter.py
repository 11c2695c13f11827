# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.filter.conventions import FilterModule


def _node(name, labels=None):
    # As community.docker.docker_node_info returns them: the Engine API's inspect of each node.
    node = {"ID": name, "Description": {"Hostname": name}, "Spec": {"Role": "worker", "Availability": "active"}}
    if labels is not None:
        node["Spec"]["Labels"] = labels
    return node


def test_the_edge_network_is_plain_only_where_a_node_says_it_cannot_encrypt():
    lacking = FilterModule().filters()["nodes_without_esp"]
    assert lacking([_node("a"), _node("b", {}), _node("c", {"qoddi.esp": "yes"})]) == []
    nodes = [_node("b", {"qoddi.esp": "no"}), _node("a", {"qoddi.esp": "no", "x": "y"}), _node("c")]
    assert lacking(nodes) == ["a", "b"]
