# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One change of an app at a time: a per-app lock held in the cluster.

The lock is the Swarm config ``qoddi-lock-<app>``. The managers create a config by Raft, and refuse
a second one of the same name (409), so exactly one of two runs racing on any nodes gets it. Its
labels say who holds it and until when, and the holder moves the expiry on while it runs; a lock
whose holder was killed (no ``finally`` ran) is taken over once it has expired, never before.
qoddi_app (deploy, restart, stop, removal), qoddi_env (when it writes), qoddi_db (while it writes
a linked app's URL) and the controller's duties take it; check mode changes nothing and takes none.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

try:
    from docker.errors import APIError, NotFound
except ImportError:  # pragma: no cover - the module reports the missing SDK
    APIError = NotFound = Exception

# How long a lock lasts without its holder: the holder moves the expiry on every TTL / 4 while it
# runs (a Swarm config's labels can be updated; nothing else of it), so a run lasts as long as it
# needs, and a killed run's lock is free two minutes later (and the controller removes its surge).
DEFAULT_TTL = 120
POLL = 1.0


class Busy(Exception):
    """Another run holds the app's lock (after waiting as long as allowed)."""


def lock_name(app: str) -> str:
    return f"qoddi-lock-{app}"


def holder(what: str) -> str:
    """Who takes the lock, as the message of a run that waits for it names them."""
    return f"{what} (pid {os.getpid()} on {socket.gethostname()})"


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(app: str, labels: dict, now: float) -> str:
    """The message of a run that could not get the lock: who changes the app, since when, what to do."""
    since = float(labels.get(Label.LOCK_SINCE, 0) or 0)
    expires = float(labels.get(Label.LOCK_EXPIRES, 0) or 0)
    return (f"app {app} is being changed by {labels.get(Label.LOCK_HOLDER, 'an unknown run')} since "
            f"{_iso(since)} ({now - since:.0f} s ago); try again when that run has finished. If that run was "
            f"killed, its lock expires at {_iso(expires)}, or remove the Swarm config {lock_name(app)} "
            f"(docker config rm {lock_name(app)}) once sure that nothing changes the app")


def expired(labels: dict, now: float) -> bool:
    return float(labels.get(Label.LOCK_EXPIRES, 0) or 0) <= now


def _existing(client, app: str) -> dict | None:
    for config in client.api.configs(filters={"name": lock_name(app)}):
        if config["Spec"]["Name"] == lock_name(app):  # the name filter matches prefixes too
            return config
    return None


def try_take(client, app: str, who: str, ttl: float = DEFAULT_TTL, now: float | None = None) -> str | dict:
    """Take the lock: its config's id, or the labels of the lock someone else holds."""
    now = time.time() if now is None else now
    labels = {Label.APP: app, Label.LOCK_HOLDER: who, Label.LOCK_SINCE: f"{now:.0f}",
              Label.LOCK_EXPIRES: f"{now + ttl:.0f}"}
    try:
        return client.api.create_config(lock_name(app), who.encode(), labels=labels)["ID"]
    except APIError as exc:
        if exc.status_code != 409:
            raise
    current = _existing(client, app)
    if current is None:  # released meanwhile: the caller tries again
        return {}
    if expired(current["Spec"].get("Labels") or {}, now):
        # By id: of two runs that both saw it expired, one removes it, the other gets NotFound,
        # and both then race to create a new one, which exactly one wins.
        with contextlib.suppress(NotFound):
            client.api.remove_config(current["ID"])
        return {}
    return current["Spec"].get("Labels") or {}


def renew(client, lock_id: str, ttl: float, now: float | None = None, timeout: float = 10) -> bool:
    """Move the held lock's expiry to ``now + ttl``; False when the lock is no longer there (taken
    over after its holder stalled longer than ttl) or the engine did not take the update in time.
    The Docker SDK has no call for a config's update: the Engine API's own (only the labels may
    change; the rest is sent as it is), each call bounded by ``timeout`` seconds."""
    now = time.time() if now is None else now
    url = f"{client.api.base_url}/v{client.api.api_version}/configs/{lock_id}"
    found = client.api.get(url, timeout=timeout)
    if found.status_code != 200:
        return False
    config = found.json()
    spec = dict(config["Spec"], Labels={**(config["Spec"].get("Labels") or {}), Label.LOCK_EXPIRES: f"{now + ttl:.0f}"})
    answer = client.api.post(f"{url}/update", params={"version": config["Version"]["Index"]}, json=spec,
                             timeout=timeout)
    return answer.status_code == 200


def release(client, lock_id: str) -> None:
    with contextlib.suppress(NotFound):
        client.api.remove_config(lock_id)


@contextlib.contextmanager
def held(client, app: str, who: str, wait: float, ttl: float = DEFAULT_TTL):
    """Hold the app's lock for the block, waiting at most ``wait`` seconds for it; Busy when it stays taken."""
    deadline = time.monotonic() + wait
    while True:
        taken = try_take(client, app, who, ttl)
        if isinstance(taken, str):
            break
        if time.monotonic() >= deadline:
            if taken:
                raise Busy(describe(app, taken, time.time()))
            taken = try_take(client, app, who, ttl)  # released or expired just now: one last try
            if isinstance(taken, str):
                break
            raise Busy(describe(app, taken, time.time()) if taken else f"app {app} is being changed by another run")
        # Also when it was just released or expired: the runs that saw it so race for the new one.
        time.sleep(POLL)
    stop = threading.Event()

    def keep():
        # Every ttl / 4; a failed renewal (the engine busy a moment) is tried again 2 s later, so that
        # several tries fit before the expiry. A lock taken over meanwhile (its holder stalled longer
        # than ttl, its process stopped) cannot be renewed, and this run goes on unaware of it: the
        # expiry is far beyond any stall of a run that is alive.
        wait = ttl / 4
        while not stop.wait(wait):
            renewed = False
            with contextlib.suppress(Exception):
                renewed = renew(client, taken, ttl, timeout=min(10, ttl / 4))
            wait = ttl / 4 if renewed else min(2, ttl / 4)

    beat = threading.Thread(target=keep, name=f"qoddi-lock-{app}", daemon=True)
    beat.start()
    try:
        yield taken
    finally:
        stop.set()
        # A renewal under way is bounded by its timeout; the lock is released whatever it does (an
        # update of a removed config fails, it cannot bring the lock back).
        beat.join(timeout=5)
        release(client, taken)
