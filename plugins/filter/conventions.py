# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform's conventions (plugins/module_utils/_conventions.py) for roles and templates.

``'component' | qoddi.paas.label`` gives ``org.qoddi.component``; ``none | qoddi.paas.conventions``
gives every convention as a dict (labels, edge_network, web_port, app_uid, sizes, reserved_env);
``nodes | qoddi.paas.nodes_without_esp`` names the nodes whose kernel cannot encrypt overlay networks.
A role that spells a label key or a network name out would drift from the modules that write it.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy


def label(name: str) -> str:
    try:
        return conventions.label(name)
    except KeyError as exc:
        raise AnsibleFilterError(str(exc)) from None


def all_conventions(unused=None) -> dict:
    return conventions.as_dict()


def nodes_without_esp(nodes: list) -> list:
    """community.docker.docker_node_info's nodes -> the host names of those that cannot encrypt overlays."""
    return deploy.without_esp(nodes)


class FilterModule:
    def filters(self):
        return {"label": label, "conventions": all_conventions, "nodes_without_esp": nodes_without_esp}
