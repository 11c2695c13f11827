# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An app's config vars, kept as Swarm secrets: encrypted in the Raft log, never in a service spec.

One secret per variable and version, named ``qoddi-env-<app>-<seq>``; ``seq`` counts every change of
the app's variables. A removal is a version too (a tombstone), so the store is append-only and
needs no update API: an app's variables are, for each key, its newest version unless that is a
tombstone. Secrets cannot be read back through the API, so each version carries a salted PBKDF2
digest of its value: enough to tell "same value, nothing to do", useless to someone who cannot
already run a task with the secret mounted (which any manager can, so it hides nothing from them).

A service records the newest ``seq`` it runs with (label ``org.qoddi.env.seq``). Newer versions
are pending; each carries the time its restart is due (``org.qoddi.env.due``): the first change
after a quiet period sets it ``restart_delay`` seconds ahead, later changes join it. The controller
(roles/controller) applies pending versions when due; qoddi_app applies them at every deploy.

Tasks get each variable as the file ``/run/secrets/qoddi-env/<KEY>`` (tmpfs, readable only by the
app's user); the app image's BASH_ENV script exports them before any Procfile or console command.

This file imports nothing from Ansible: the controller runs it inside its own container.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
import uuid
from dataclasses import dataclass

try:
    from docker import types
except ImportError:  # pragma: no cover - the module reports the missing SDK
    types = None

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import (
    APP_UID,
    RESERVED_ENV,
    RESERVED_PREFIX,
    Label,
)

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_DIR = "qoddi-env"
_ITERATIONS = 20_000


MAX_VALUE_BYTES = 500 * 1024  # Swarm's limit for a secret


def check_value(key: str, value) -> str | None:
    """Why ``value`` cannot be the value of ``key`` (never quoting the value), or None."""
    if not isinstance(value, str):
        return (f"the value of {key} is of type {type(value).__name__}, not a string: quote it in YAML "
                f"(e.g. {key}: \"...\")")
    if value == "":
        return f"the value of {key} is empty, which Swarm cannot store: remove the variable (state: absent) instead"
    if "\0" in value:
        return f"the value of {key} holds a NUL character, which no environment variable can"
    if len(value.encode()) > MAX_VALUE_BYTES:
        return f"the value of {key} is over {MAX_VALUE_BYTES // 1024} KiB, Swarm's limit for a secret"
    return None


def check_key(key: str) -> str | None:
    """Why ``key`` cannot be a variable of an app, or None when it can."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        return (f"{key!r} is not a valid environment variable name: use letters, digits and underscores, "
                "not starting with a digit")
    if key in RESERVED_ENV or key.startswith(RESERVED_PREFIX):
        return (f"{key} is set by the platform ({', '.join(RESERVED_ENV)} and every QODDI_* name are reserved); "
                "pick another name")
    return None


def digest(value: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(12)
    derived = hashlib.pbkdf2_hmac("sha256", value.encode(), salt, _ITERATIONS)
    return f"pbkdf2-sha256${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(derived).decode()}"


def same_value(value: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, expected = stored.split("$")
        derived = hashlib.pbkdf2_hmac("sha256", value.encode(), base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    return scheme == "pbkdf2-sha256" and hmac.compare_digest(base64.b64encode(derived).decode(), expected)


@dataclass(frozen=True)
class Version:
    id: str
    name: str
    key: str
    seq: int
    due: float
    removed: bool
    digest: str

    @classmethod
    def of(cls, secret: dict) -> Version:
        labels = secret["Spec"].get("Labels") or {}
        return cls(id=secret["ID"], name=secret["Spec"]["Name"], key=labels[Label.ENV_KEY],
                   seq=int(labels.get(Label.ENV_SEQ, 0)), due=float(labels.get(Label.ENV_DUE, 0)),
                   removed=labels.get(Label.ENV_REMOVED) == "true", digest=labels.get(Label.ENV_DIGEST, ""))


def versions(client, app: str | None = None) -> dict[str, list[Version]]:
    """{app: its versions, oldest first}, for one app or every app."""
    wanted = [f"{Label.APP}={app}"] if app else [Label.APP]
    found: dict[str, list[Version]] = {}
    for secret in client.api.secrets(filters={"label": wanted + [Label.ENV_KEY]}):
        found.setdefault(secret["Spec"]["Labels"][Label.APP], []).append(Version.of(secret))
    return {name: sorted(vs, key=lambda v: v.seq) for name, vs in found.items()}


def newest(history: list[Version], upto: float = float("inf")) -> dict[str, Version]:
    """{key: newest version with seq <= upto}, tombstones included."""
    latest: dict[str, Version] = {}
    for version in history:
        if version.seq <= upto:
            latest[version.key] = version
    return latest


def current(history: list[Version]) -> dict[str, Version]:
    """The app's variables now: {key: version}."""
    return {key: v for key, v in newest(history).items() if not v.removed}


def head(history: list[Version]) -> int:
    return history[-1].seq if history else 0


def _seq_of(spec: dict) -> int:
    return int((spec.get("Labels") or {}).get(Label.ENV_SEQ, 0))


def applied_seq(service: dict) -> int:
    return _seq_of(service["Spec"])


def _specs(service: dict) -> list[dict]:
    """The service's spec and, while an update may still roll back to it, its previous one.

    Once the update has completed Swarm no longer rolls back by itself, and the previous spec's
    versions may go (else a rotated value would outlive its rotation until the next update)."""
    settled = (service.get("UpdateStatus") or {}).get("State") in (None, "completed")
    return [service["Spec"]] + ([service["PreviousSpec"]] if service.get("PreviousSpec") and not settled else [])


def restart_due(history: list[Version], services: list[dict]) -> float | None:
    """When the pending changes are to be applied (epoch seconds), or None when none are pending."""
    if not services:
        return None
    floor = min(applied_seq(service) for service in services)
    dues = [v.due for v in history if v.seq > floor]
    return min(dues) if dues else None


def schedule(history: list[Version], services: list[dict], delay: float, now: float) -> float:
    """When a change made now is due: with the restart already pending, or ``delay`` from now if
    that is sooner (so ``delay: 0`` brings a pending restart forward)."""
    pending = restart_due(history, services)
    return now + delay if pending is None else min(pending, now + delay)


def plan(history: list[Version], wanted: dict[str, str], remove: list[str], purge: bool) -> dict:
    """What a change does: {"set": {key: value}, "remove": [keys]}, values compared by digest."""
    have = current(history)
    to_set = {key: value for key, value in wanted.items()
              if key not in have or not same_value(value, have[key].digest)}
    gone = set(remove) | (set(have) - set(wanted) if purge else set())
    return {"set": to_set, "remove": sorted(key for key in gone if key in have)}


def write(client, app: str, history: list[Version], change: dict, due: float, services: list[dict] = ()) -> int:
    """Create the versions of ``change``; returns the new head seq.

    Numbers only grow: the services' labels remember versions the clean-up has since removed, and a
    reused number would look applied already.
    """
    seq = max([head(history)] + [applied_seq(service) for service in services])
    for key in sorted(change["set"]) + change["remove"]:
        seq += 1
        removed = key not in change["set"]
        # Swarm rejects empty secrets; a tombstone's content is never mounted.
        data = b"-" if removed else change["set"][key].encode()
        labels = {Label.APP: app, Label.ENV_KEY: key, Label.ENV_SEQ: str(seq),
                  Label.ENV_DUE: f"{due:.0f}"}
        if removed:
            labels[Label.ENV_REMOVED] = "true"
        else:
            labels[Label.ENV_DIGEST] = digest(change["set"][key])
        client.api.create_secret(f"qoddi-env-{app}-{seq}", data, labels=labels)
    return seq


def references(history: list[Version], uid: str = str(APP_UID), mode: int = 0o400) -> list:
    """The SecretReferences that give a task the app's variables (readable by ``uid`` only, by default)."""
    return [types.SecretReference(v.id, v.name, filename=f"{SECRET_DIR}/{key}", uid=uid, gid="0", mode=mode)
            for key, v in sorted(current(history).items())]


def _is_env_ref(ref: dict) -> bool:
    return ref.get("File", {}).get("Name", "").startswith(SECRET_DIR + "/")


def with_variables(spec: dict, history: list[Version]) -> dict:
    """``spec`` (a service's Spec) changed to mount the app's current variables."""
    container = spec["TaskTemplate"]["ContainerSpec"]
    others = [ref for ref in container.get("Secrets") or [] if not _is_env_ref(ref)]
    container["Secrets"] = others + [dict(ref) for ref in references(history)]
    spec["Labels"] = dict(spec.get("Labels") or {}, **{Label.ENV_SEQ: str(head(history))})
    return spec


def mounted(service: dict, previous: bool = False) -> set[str]:
    """Names of the variable secrets a service mounts (with ``previous``, or may mount again after a
    rollback to its previous spec)."""
    specs = _specs(service) if previous else [service["Spec"]]
    refs = [ref for spec in specs for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []]
    return {ref["SecretName"] for ref in refs if _is_env_ref(ref)}


def garbage(history: list[Version], services: list[dict]) -> list[Version]:
    """Versions nothing needs any more: replaced or removed values, and tombstones every service
    has moved past. A version a service still mounts is never garbage (Swarm would refuse anyway)."""
    # A rollback returns a service to its previous spec, whose versions Swarm no longer protects.
    floor = min((_seq_of(spec) for s in services for spec in _specs(s)), default=float("inf"))
    in_use = set().union(*(mounted(s, previous=True) for s in services)) if services else set()
    settled = newest(history, floor)
    values = [v for v in history if v.name not in in_use and v.seq <= floor and settled.get(v.key) is not v]
    # A tombstone goes only once every older version of its key is going, or they would come back
    # to life; it goes last, so an interrupted clean-up never does that either.
    tombstones = [v for v in history if v.removed and v.seq <= floor and settled.get(v.key) is v
                  and not any(o.key == v.key and o.seq < v.seq and o not in values for o in history)]
    return values + tombstones


# Name NUL value NUL, for each file: plain sh and cat, which every image has (datastores' too), and
# NUL is the one byte no environment variable can hold.
_READ_SCRIPT = f"cd /run/secrets/{SECRET_DIR} && for f in *; do [ -f \"$f\" ] || continue; " \
               "printf '%s\\0' \"$f\"; cat \"$f\"; printf '\\0'; done"


def parse_read(output: bytes) -> dict[str, str]:
    fields = output.decode("utf-8").split("\0")
    return dict(zip(fields[0:-1:2], fields[1::2], strict=True))


def _exec_read(client, container: str) -> dict[str, str]:
    # The output travels over the API only: nothing is logged or written to disk.
    exec_id = client.api.exec_create(container, ["sh", "-c", _READ_SCRIPT], stdout=True, stderr=False)
    return parse_read(client.api.exec_start(exec_id))


def _local_task_with(client, services: list[dict], names: set[str], network: str = "") -> str | None:
    """A running container on this node of a task that mounts exactly the versions ``names`` (and is
    attached to ``network``, when given)."""
    for service in services:
        if mounted(service) != names:
            continue
        for container in client.api.containers(filters={"label": f"com.docker.swarm.service.id={service['ID']}",
                                                        "status": "running"}):
            if network and network not in ((container.get("NetworkSettings") or {}).get("Networks") or {}):
                continue
            task = client.api.inspect_task(container["Labels"]["com.docker.swarm.task.id"])
            refs = task["Spec"]["ContainerSpec"].get("Secrets") or []
            if {ref["SecretName"] for ref in refs if _is_env_ref(ref)} == names:
                return container["Id"]
    return None


def task_with_current(client, history: list[Version], services: list[dict], network: str) -> str | None:
    """A running task of the app on this node, on ``network``, that mounts exactly its current variables:
    the release command can run beside it (its network, its values; see _deploy.run_release_beside)."""
    return _local_task_with(client, list(services), {ref["SecretName"] for ref in references(history)}, network)


def read_values(client, history: list[Version], image: str, node_id: str, services: list[dict] = (),
                timeout: int = 60, start_reader: bool = True) -> dict[str, str] | None:
    """The values of the app's current variables, for the build (the API cannot read a secret).

    From a running task of the app on this node that mounts exactly these versions when there is one
    (the usual case: nothing changed since the last restart), else from a short task started on this
    node for the purpose. Either way through `docker exec`.
    """
    refs = references(history)
    if not refs:
        return {}
    running = _local_task_with(client, list(services), {ref["SecretName"] for ref in refs})
    if running:
        return _exec_read(client, running)
    if not start_reader:
        return None  # check mode: starting a task would be a change
    name = f"qoddi-env-read-{uuid.uuid4().hex[:10]}"
    service = client.api.create_service(
        types.TaskTemplate(
            container_spec=types.ContainerSpec(image=image, command=["sleep", str(timeout)], secrets=refs,
                                               user="0"),
            restart_policy=types.RestartPolicy(condition="none"),
            placement=types.Placement(constraints=[f"node.id=={node_id}"]),
        ),
        name=name, labels={Label.JOB: "env-read"},
    )["ID"]
    try:
        deadline = time.monotonic() + timeout
        container = None
        while time.monotonic() < deadline and not container:
            for task in client.api.tasks(filters={"service": service}):
                if task["Status"]["State"] == "running":
                    container = task["Status"]["ContainerStatus"]["ContainerID"]
                elif task["Status"]["State"] in ("failed", "rejected"):
                    raise RuntimeError("could not read the app's variables: " + task["Status"].get("Err", ""))
            time.sleep(0.2)
        if not container:
            raise RuntimeError(f"could not read the app's variables within {timeout} s")
        return _exec_read(client, container)
    finally:
        client.api.remove_service(service)
