# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""qoddi_app refuses a domain another app serves: a custom one, or its default <app>.<platform domain>."""
from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.action.qoddi_app import edge_default_domain
from ansible_collections.qoddi.paas.plugins.modules.qoddi_app import domain_clashes


def _web(app, domains=""):
    return {"Spec": {"Name": app, "Labels": {"org.qoddi.app": app, "org.qoddi.process": "web",
                                             "org.qoddi.domains": domains}}}


SERVICES = [_web("shop", "shop.example.com,www.shop.example.com"), _web("blog")]


def test_another_apps_default_domain_is_refused_naming_it():
    (problem,) = domain_clashes("web", ["blog.apps.example.net"], "apps.example.net", SERVICES)
    assert "blog.apps.example.net (served by app blog (its default domain))" in problem


def test_another_apps_custom_domain_is_refused_naming_it():
    (problem,) = domain_clashes("web", ["a.example.org", "www.shop.example.com"], "apps.example.net", SERVICES)
    assert "www.shop.example.com (served by app shop)" in problem and "a.example.org" not in problem


def test_a_default_domain_another_app_took_as_custom_is_refused():
    (problem,) = domain_clashes("shop2", [], "example.com", [_web("other", "shop2.example.com")])
    assert "default domain shop2.example.com is a custom domain of app other" in problem


def test_the_apps_own_domains_and_free_ones_pass():
    assert domain_clashes("shop", ["shop.example.com", "shop.apps.example.net"], "apps.example.net", SERVICES) == []
    assert domain_clashes("web", ["free.example.com"], "apps.example.net", SERVICES) == []


def test_the_action_falls_back_to_the_edge_roles_default_domain():
    assert edge_default_domain() == "qoddi.localhost"
