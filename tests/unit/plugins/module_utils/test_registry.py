# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils._registry import pinned_ref, registry_ref

REGISTRY = "10.0.0.2:5000"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("qoddi/python:3.11-abc", "10.0.0.2:5000/qoddi/python:3.11-abc"),
        ("qoddi-app/blog:r4", "10.0.0.2:5000/qoddi-app/blog:r4"),
        ("docker.io/library/haproxy:2.8", "10.0.0.2:5000/library/haproxy:2.8"),
        ("haproxy:2.8", "10.0.0.2:5000/haproxy:2.8"),
        ("localhost/x:1", "10.0.0.2:5000/x:1"),
        ("registry.example:443/team/app:1", "10.0.0.2:5000/team/app:1"),
        ("10.0.0.2:5000/qoddi/python:3.11-abc", "10.0.0.2:5000/qoddi/python:3.11-abc"),
    ],
)
def test_registry_ref_moves_an_image_under_the_cluster_registry(ref, expected):
    assert registry_ref(ref, REGISTRY) == expected


def test_registry_ref_without_a_registry_keeps_the_reference():
    assert registry_ref("qoddi/python:3.11-abc", "") == "qoddi/python:3.11-abc"


def test_pinned_ref_is_the_tag_with_the_digest_of_the_push_to_that_registry():
    attrs = {"RepoDigests": ["other:5000/qoddi-app/blog@sha256:aaa", "10.0.0.2:5000/qoddi-app/blog@sha256:bbb"]}
    assert pinned_ref(attrs, "10.0.0.2:5000/qoddi-app/blog:r4") == "10.0.0.2:5000/qoddi-app/blog:r4@sha256:bbb"


def test_pinned_ref_is_empty_for_an_image_never_pushed_there():
    assert pinned_ref({"RepoDigests": None}, "10.0.0.2:5000/qoddi-app/blog:r4") == ""
    assert pinned_ref({"RepoDigests": ["10.0.0.2:5000/qoddi-app/blogs@sha256:ccc"]},
                      "10.0.0.2:5000/qoddi-app/blog:r4") == ""
