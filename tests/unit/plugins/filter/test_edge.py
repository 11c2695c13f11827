# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.filter.edge import edge_routes


def _service(name, process="web", domains="", health="/healthz"):
    labels = {"org.qoddi.app": name.split("--")[0], "org.qoddi.process": process}
    if process == "web":
        labels.update({"org.qoddi.domains": domains, "org.qoddi.health": health})
    return {"ID": "x", "Spec": {"Name": name, "Labels": labels}}


def test_routes_for_web_processes_only_with_the_default_domain_first():
    services = [_service("shop", domains="shop.example.com,www.shop.example.com"), _service("shop--worker", "worker"),
                _service("blog", health=""), {"Spec": {"Name": "qoddi-edge", "Labels": {}}}]
    routes = edge_routes(services, "apps.example.net")
    assert [r["app"] for r in routes] == ["blog", "shop"]
    assert routes[1] == {"app": "shop", "service": "shop", "backend": "app-shop", "health": "/healthz",
                         "domains": ["shop.apps.example.net", "shop.example.com", "www.shop.example.com"]}
    assert routes[0]["domains"] == ["blog.apps.example.net"] and routes[0]["health"] == ""


def test_a_domain_claimed_by_two_apps_names_both():
    services = [_service("a", domains="x.example.com"), _service("b", domains="x.example.com")]
    with pytest.raises(AnsibleFilterError, match="x.example.com is claimed by the apps a and b"):
        edge_routes(services, "apps.example.net")
