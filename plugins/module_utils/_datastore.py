# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Marketplace datastores as Swarm services: one engine entry (roles/marketplace/vars) made concrete.

A datastore is the service ``<name>`` on its stack's network only (no published port), one task
pinned to the node that holds its volume ``qoddi-db-<name>``. Its credentials are its own config
vars (_env: Swarm secrets, one per variable), exported by a small shell prologue before the
engine's own entrypoint runs, so the engine reads them as the environment variables it expects
(POSTGRES_PASSWORD...). Backups and restores run the engine's tools inside the running task
through `docker exec`, so they need nothing installed on the node.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tarfile
import time
import urllib.parse

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _env as env
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

DEFAULT_USER = "qoddi"
# Exports the datastore's config vars (POSIX sh: the engines' images may have nothing else), then
# runs the engine's entrypoint and command given as arguments.
PROLOGUE = ('for f in /run/secrets/' + env.SECRET_DIR + '/*; do [ -f "$f" ] && export "${f##*/}=$(cat "$f")"; done; '
            'exec "$@"')


class DatastoreError(Exception):
    """What stops a run, said for the user; ``extra`` goes into the failed result (a task's log...)."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra


def volume_name(name: str) -> str:
    return f"qoddi-db-{name}"


def volume_exists(client, name: str) -> bool:
    return any(v["Name"] == volume_name(name) for v in client.api.volumes().get("Volumes") or [])


def node_unavailable(nodes: list[dict], node_id: str) -> str:
    """Why the node that holds a datastore's volume cannot run it now ('' when it can); ``nodes`` is
    the Swarm's node list. A datastore is pinned there: Swarm will not start it anywhere else."""
    node = next((n for n in nodes if n["ID"] == node_id), None)
    if node is None:
        return f"its node {node_id} is no longer in the Swarm"
    where = f"its node {node['Description'].get('Hostname', '?')} ({node_id})"
    state = node["Status"].get("State", "unknown")
    if state != "ready":
        return f"{where} is {state}"
    if node["Spec"].get("Availability") == "drain":
        return f"{where} is drained"
    return ""


def new_password() -> str:
    # token_urlsafe: letters, digits, - and _, so a URL needs no escaping; 32 bytes of entropy. Not
    # starting with "-", which command-line tools (mongodump -p) would take for an option.
    while True:
        password = secrets.token_urlsafe(32)
        if password[0].isalnum():
            return password


def new_credentials(name: str) -> dict[str, str]:
    return {"user": DEFAULT_USER, "password": new_password(), "database": name.replace("-", "_")}


def render(template: str, values: dict) -> str:
    return template.format(**values)


def environment(spec: dict, credentials: dict[str, str]) -> dict[str, str]:
    """The datastore's own config vars, from the engine's environment contract."""
    return {key: render(value, credentials) for key, value in spec["env"].items()}


def credentials_of(spec: dict, variables: dict[str, str]) -> dict[str, str] | None:
    """Read user, password and database back from the config vars (None when incomplete)."""
    found = {}
    for key, template in spec["env"].items():
        for field in ("user", "password", "database"):
            if template == "{" + field + "}" and key in variables:
                found[field] = variables[key]
    if "password" not in found:
        return None
    return {"user": found.get("user", ""), "password": found["password"], "database": found.get("database", "")}


def quote(value: str) -> str:
    """A credential as a URL holds it: given back by hand (qoddi_env), it may hold @ : / #."""
    return urllib.parse.quote(value, safe="")


def url(spec: dict, name: str, credentials: dict[str, str]) -> str:
    escaped = {key: quote(value) for key, value in credentials.items()}
    return render(spec["url"], dict(escaped, host=name, port=spec["port"]))


def per_source(value, source: str):
    """A catalogue field that may differ by image source ({local: ..., registry: ...})."""
    return value.get(source, value.get("local")) if isinstance(value, dict) else value


def parse_links(text: str) -> dict[str, str]:
    """{app: variable} from the ``org.qoddi.links`` label ("blog=DATABASE_URL,shop=DATABASE_URL")."""
    return dict(item.split("=", 1) for item in text.split(",") if "=" in item)


def desired_service(name: str, stack: str, engine: str, spec: dict, image: str, source: str, size: str,
                    node_id: str, history: list, links: dict[str, str] | None = None) -> swarm.ServiceSpec:
    """The datastore's service, as every setting the platform decides (compared with what runs by _swarm)."""
    cpus, memory = conventions.SIZES[size]
    # links: the apps holding this datastore's URL, so that a new password reaches all of them.
    labels = {Label.APP: name, Label.STACK: stack, Label.DATASTORE: engine,
              Label.VERSION: str(per_source(spec["versions"], source)), Label.NODE: node_id,
              Label.LINKS: ",".join(f"{app}={var}" for app, var in sorted((links or {}).items())),
              Label.ENV_SEQ: str(env.head(history))}
    health = None
    if spec.get("health"):
        health = {"test": ("CMD-SHELL", spec["health"]), "interval": 2, "timeout": 5, "retries": 3,
                  "start_period": 120}
    return swarm.ServiceSpec(
        name=name,
        image=image,
        labels=labels,
        command=("sh", "-c", PROLOGUE, "qoddi-datastore"),
        args=tuple(per_source(spec["run"], source)),
        container_labels={Label.APP: name},
        secrets=tuple(env.references(history, uid="0", mode=0o444)),
        mounts=({"type": "volume", "source": volume_name(name), "target": spec["data_path"],
                 "labels": {Label.DATASTORE: name}},),
        health=health,
        stop_grace=60,  # a database flushes and checkpoints before it stops
        cpus=cpus,
        memory_mb=memory,
        restart_delay=2,
        # The volume lives on one node: the task must always come back to it.
        constraints=(f"node.id=={node_id}",),
        networks=(conventions.network_name(stack),),
        replicas=1,
        # Two servers cannot share one data directory: the old task stops before the new one starts.
        update={"parallelism": 1, "order": "stop-first", "failure_action": "rollback", "monitor": 5},
        endpoint_mode="dnsrr",  # no VIP, no published port: reached by name only
    )


def local_container(client, service_id: str, timeout: int = 120, healthy: bool = True) -> str:
    """The running (and healthy) container of the datastore's task on this node."""
    deadline = time.monotonic() + timeout
    last = "no task yet"
    while time.monotonic() < deadline:
        for container in client.api.containers(filters={"label": f"com.docker.swarm.service.id={service_id}",
                                                        "status": "running"}):
            health = (client.api.inspect_container(container["Id"])["State"].get("Health") or {}).get("Status")
            if not healthy or health in (None, "healthy"):
                return container["Id"]
            last = f"its health check says {health}"
        tasks = client.api.tasks(filters={"service": service_id, "desired-state": "running"})
        errors = [t["Status"].get("Err") for t in tasks if t["Status"].get("Err")]
        if errors:
            last = errors[0]
        time.sleep(0.5)
    raise DatastoreError(f"the datastore did not become ready within {timeout} s ({last})")


def run(client, container: str, command: str, stdout=None, args: tuple = (),
        environment: dict | None = None) -> tuple[int, bytes]:
    """Run ``command`` in the container with the datastore's config vars exported ($1...: ``args``).

    stdout: a file object that receives the standard output as it comes (a dump can be large).
    environment: for secrets (a new password): an exec's arguments show in ``docker events`` and in
    the container's process list, its environment does not. Returns the exit code and the standard error.
    """
    script = PROLOGUE.replace('exec "$@"', command)
    exec_id = client.api.exec_create(container, ["sh", "-c", script, "qoddi-datastore", *args],
                                     stdout=True, stderr=True, user="0", environment=environment)
    errors = io.BytesIO()
    for out, err in client.api.exec_start(exec_id, stream=True, demux=True):
        if out and stdout is not None:
            stdout.write(out)
        if err:
            errors.write(err)
    return client.api.exec_inspect(exec_id)["ExitCode"], errors.getvalue()


def backup(client, container: str, command: str, dest: str) -> dict:
    """Write a dump to ``dest`` on this node (atomically: a failed dump leaves nothing half-written)."""
    partial = dest + ".partial"
    digest = hashlib.sha256()

    class Hashing:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            digest.update(data)
            self.handle.write(data)

    with open(partial, "wb") as handle:
        os.chmod(partial, 0o600)  # a dump holds the data: the same care as the database itself
        code, errors = run(client, container, command, Hashing(handle))
    if code != 0:
        os.unlink(partial)
        raise DatastoreError(f"the backup command failed (exit {code}): {errors.decode(errors='replace')[-500:]}")
    os.replace(partial, dest)
    return {"path": dest, "size": os.path.getsize(dest), "sha256": digest.hexdigest()}


def restore(client, container: str, command: str, src: str) -> None:
    """Copy ``src`` into the container and load it with the engine's restore command."""
    target = "/tmp/qoddi-restore"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(src, arcname=os.path.basename(target), filter=_readable)
    client.api.put_archive(container, os.path.dirname(target), buffer.getvalue())
    code, errors = run(client, container, command, args=(target,))
    # A restore may stop the server on purpose (Redis loads its data only at start), which ends the
    # container and the command with it: Swarm starts a new task, and the caller waits for it.
    deadline = time.monotonic() + 15
    while code != 0 and time.monotonic() < deadline:
        if not client.api.inspect_container(container)["State"]["Running"]:
            return
        time.sleep(0.5)
    if code != 0:
        raise DatastoreError(f"the restore command failed (exit {code}): {errors.decode(errors='replace')[-500:]}")


def _readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, "", ""
    return info
