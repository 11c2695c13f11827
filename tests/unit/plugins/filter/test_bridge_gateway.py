# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.filter.bridge_gateway import bridge_gateway

# `docker network inspect bridge` on a freshly installed Debian docker.io 20.10.24: no Gateway.
FRESH = {"Name": "bridge", "IPAM": {"Driver": "default", "Options": None,
                                    "Config": [{"Subnet": "172.17.0.0/16"}]},
         "Options": {"com.docker.network.bridge.name": "docker0"}}
# The same engine after a restart (what long-lived machines show).
LONG_LIVED = {"Name": "bridge", "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]}}


def test_a_listed_gateway_wins():
    assert bridge_gateway(LONG_LIVED, ["10.9.0.1"]) == "172.17.0.1"


def test_a_fresh_engine_gives_the_bridge_interface_address():
    assert bridge_gateway(FRESH, ["172.17.5.1"]) == "172.17.5.1"


def test_a_fresh_engine_without_interface_facts_gives_the_first_host():
    assert bridge_gateway(FRESH) == "172.17.0.1"
    # An interface address outside the subnet is not the bridge's.
    assert bridge_gateway(FRESH, ["192.168.1.4"]) == "172.17.0.1"


def test_ipv6_subnets_are_skipped_and_nothing_usable_is_an_error():
    dual = {"IPAM": {"Config": [{"Subnet": "fd00::/64"}, {"Subnet": "10.200.0.0/24"}]}}
    assert bridge_gateway(dual) == "10.200.0.1"
    with pytest.raises(AnsibleFilterError, match="lists no IPv4 gateway"):
        bridge_gateway({"Name": "bridge", "IPAM": {"Config": []}})
