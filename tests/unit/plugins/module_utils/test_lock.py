# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lock's decisions; that the engine refuses a second lock of one app is tested on the real
Swarm (the qoddi_app target, concurrent.yml)."""

from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.module_utils import _lock as lock

HELD = {"org.qoddi.lock.holder": "qoddi_app state=present (pid 7 on manager-1)",
        "org.qoddi.lock.since": "1796000000", "org.qoddi.lock.expires": "1796003600"}


def test_one_lock_name_per_app():
    assert lock.lock_name("blog") == "qoddi-lock-blog"


def test_a_lock_expires_at_its_expiry_not_before():
    assert not lock.expired(HELD, 1796003599)
    assert lock.expired(HELD, 1796003600)


def test_a_lock_without_an_expiry_counts_as_expired():
    # A config of that name without the labels (made by hand) must not block the app forever.
    assert lock.expired({}, 1796000000)


def test_the_message_names_the_holder_since_when_and_what_to_do():
    message = lock.describe("blog", HELD, 1796000042)
    assert message.startswith("app blog is being changed by qoddi_app state=present (pid 7 on manager-1) "
                              "since 2026-11-30T")
    assert "(42 s ago)" in message
    assert "expires at 2026-11-30T" in message and "docker config rm qoddi-lock-blog" in message


def test_the_holder_says_who_and_where():
    assert lock.holder("qoddi_env").startswith("qoddi_env (pid ")


class _Refusing:
    """An engine that refuses every new lock (409) and lists ``listed``: the window in which another
    run's lock is released between the refusal and the listing cannot be made on purpose on a real
    Swarm, so this stand-in makes it (and every other path is tested on the real one)."""

    def __init__(self, listed):
        self.api = self
        self.listed = listed
        self.calls = 0

    def create_config(self, name, data, labels):
        self.calls += 1
        from docker.errors import APIError

        class _Response:
            status_code = 409
            reason = "Conflict"
            url = ""

        raise APIError("conflict", response=_Response())

    def configs(self, filters):
        return self.listed


def test_a_lock_that_keeps_vanishing_ends_in_busy_not_in_a_spin():
    client = _Refusing([])
    try:
        with lock.held(client, "blog", "test", 0):
            raise AssertionError("taken")
    except lock.Busy as exc:
        assert "app blog is being changed" in str(exc)
    assert client.calls == 2  # the first try and one last one at the deadline, no more


def test_a_held_lock_with_no_wait_is_busy_at_once():
    client = _Refusing([{"ID": "c1", "Spec": {"Name": "qoddi-lock-blog", "Labels": dict(HELD, **{
        "org.qoddi.lock.expires": "9999999999"})}}])
    try:
        with lock.held(client, "blog", "test", 0):
            raise AssertionError("taken")
    except lock.Busy as exc:
        assert "qoddi_app state=present" in str(exc)
    assert client.calls == 1
