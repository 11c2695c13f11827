# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

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
    assert routes[1] == {"app": "shop", "service": "shop", "backend": "app-shop", "health": "/healthz", "tls": "",
                         "domains": ["shop.apps.example.net", "shop.example.com", "www.shop.example.com"]}
    assert routes[0]["domains"] == ["blog.apps.example.net"] and routes[0]["health"] == ""


def test_a_domain_claimed_by_two_apps_stays_with_the_older_and_stops_nothing():
    older = dict(_service("b", domains="x.example.com,b.example.com"), CreatedAt="2026-01-01T00:00:00Z")
    newer = dict(_service("a", domains="x.example.com"), CreatedAt="2026-02-01T00:00:00Z")
    routes = {route["app"]: route["domains"] for route in edge_routes([newer, older], "apps.example.net")}
    assert routes == {"a": ["a.apps.example.net"], "b": ["b.apps.example.net", "x.example.com", "b.example.com"]}


@pytest.mark.parametrize("label,value", [
    ("org.qoddi.health", "/healthz\n    server evil 10.0.0.1:80"),
    ("org.qoddi.health", "/health z"),
    ("org.qoddi.health", "healthz"),
    ("org.qoddi.health", "/#"),
    ("org.qoddi.health", "/" + "a" * 300),
    ("org.qoddi.domains", "shop.example.com\nevil.example.com app-evil"),
    ("org.qoddi.domains", "shop example.com"),
    ("org.qoddi.domains", "*.example.com"),
    ("org.qoddi.app", "shop\nbackend x"),
])
def test_an_app_with_an_invalid_label_is_left_out_with_a_warning_and_the_others_stay(label, value, monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible_collections.qoddi.paas.plugins.filter.edge.display.warning", warnings.append)
    bad = _service("shop")
    bad["Spec"]["Labels"][label] = value
    routes = edge_routes([bad, _service("blog", domains="blog.example.com")], "apps.example.net")
    assert [r["app"] for r in routes] == ["blog"]
    (warning,) = warnings
    assert "is left out of the edge" in warning and label in warning and "\n" not in warning


def test_a_service_name_that_is_not_an_app_name_is_left_out(monkeypatch):
    warnings = []
    monkeypatch.setattr("ansible_collections.qoddi.paas.plugins.filter.edge.display.warning", warnings.append)
    bad = _service("shop")
    bad["Spec"]["Name"] = "shop:80\n"
    assert edge_routes([bad], "apps.example.net") == [] and "service name" in warnings[0]


def test_valid_health_paths_pass():
    for path in ("/", "/healthz", "/api/v1/health?full=1&x=2", "/%7Euser/ping", "/a-b_c.d~e"):
        routes = edge_routes([_service("shop", health=path)], "apps.example.net")
        assert routes[0]["health"] == path
