# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facts about Docker networks that every engine can answer, whatever its age."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: bridge_gateway
short_description: The host's address on a Docker bridge network
version_added: 0.1.0
description:
  - The address containers on a bridge network reach the host at.
  - Taken from the network's C(Gateway) where the engine lists it; a freshly installed engine
    (Debian's docker.io 20.10) lists only the C(Subnet) of its default bridge, so then from the
    address the bridge interface holds in that subnet, else the subnet's first host (Docker's own choice).
options:
  _input:
    description: The network as the Engine API inspects it (C(community.docker.docker_network_info)'s C(network)).
    type: dict
    required: true
  interface_addresses:
    description: IPv4 addresses of the bridge's interface on the host (C(docker0)), when known.
    type: list
    elements: str
    default: []
author:
  - Qoddi PaaS maintainers (@qoddi)
"""

EXAMPLES = r"""
- name: The default bridge's gateway
  ansible.builtin.debug:
    msg: "{{ bridge.network | qoddi.paas.bridge_gateway([ansible_facts['docker0']['ipv4']['address']]) }}"
"""

RETURN = r"""
_value:
  description: An IPv4 address, such as C(172.17.0.1).
  type: str
"""


def bridge_gateway(network: dict, interface_addresses: list | None = None) -> str:
    configs = ((network or {}).get("IPAM") or {}).get("Config") or []
    for config in configs:
        if config.get("Gateway"):
            return str(config["Gateway"]).partition("/")[0]
    for config in configs:
        try:
            subnet = ipaddress.ip_network(config.get("Subnet", ""), strict=False)
        except ValueError:
            continue
        if subnet.version != 4:
            continue
        for address in interface_addresses or []:
            if address and ipaddress.ip_address(str(address).partition("/")[0]) in subnet:
                return str(address).partition("/")[0]
        return str(next(subnet.hosts()))
    raise AnsibleFilterError(
        f"the Docker network {(network or {}).get('Name', '?')!r} lists no IPv4 gateway or subnet "
        f"(IPAM config: {configs!r}); set the address to use explicitly.")


class FilterModule:
    def filters(self):
        return {"bridge_gateway": bridge_gateway}
