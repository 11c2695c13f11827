# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The values qoddi_app writes into the labels the edge reads: what a health check path may be."""
from __future__ import annotations

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils._labels import domain_ok, health_path_problem


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/v1/health?full=1&x=2", "/%20x", "/a:b@c;d=e,f+g*h!i~j"])
def test_url_paths_are_accepted(path):
    assert health_path_problem(path) == ""


@pytest.mark.parametrize("path,why", [
    ("healthz", "must start with '/'"),
    ("/" + "a" * 256, "longer than 256"),
    ("/health z", "no spaces"),
    ("/healthz\n    server evil 10.0.0.1:80", "control characters"),
    ("/healthz\r", "control characters"),
    ("/\t", "control characters"),
    ("/a#b", "'#'"),
    ("/${HOME}", "'\\$'"),
    ('/"x"', "quotes"),
    ("/a\\b", "percent-encode"),
])
def test_anything_haproxy_would_not_read_as_one_word_is_refused(path, why):
    assert why.replace("\\", "") in health_path_problem(path) or pytest.fail(health_path_problem(path))


def test_domains():
    assert domain_ok("shop.example.com") and not domain_ok("shop example.com") and not domain_ok("x\n.com")
    assert not domain_ok(("a" * 60 + ".") * 5 + "com")
