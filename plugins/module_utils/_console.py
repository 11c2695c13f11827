# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Console commands in an app's context (qoddi_console, Heroku's ``run``).

A one-off run is a Swarm job made from one of the app's process services: its current release
image, its size, its placement, its stack network (not the edge's: a console serves no traffic)
and all of the app's config vars (the newest version of each, pending ones included, as Heroku's
``run`` sees them), plus the variables given for this command alone, each a short-lived Swarm
secret mounted where the config vars are (``/run/secrets/qoddi-env/<KEY>``), so that no value is
ever in the job's spec, its process arguments or an event. The image's BASH_ENV script exports them
before ``bash -c`` runs the command. Swarm keeps stdout and stderr apart in the task's log, which
the module reads back; the job, its container on this node and the secrets go when it ends.

A run may read its standard input from a file on the module's node and write its standard output
to one (``stdin_file``, ``stdout_file``: a dump, a fixture), byte for byte: the job is then pinned to
that node, with a directory of it (IO_DIR) bind-mounted. It may also run in the image of one of the
stack's datastores instead of the app's (a Postgres client for pg_dump, which app images lack),
where a POSIX prelude exports the config vars as the app image's BASH_ENV script does.

An ``exec`` run goes into a running task of the app on this node instead (``docker exec``): its
variables are that task's, the command's own go as the exec's environment (over the API only).

This file imports nothing from Ansible.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid

from ansible_collections.qoddi.paas.plugins.module_utils import _backend_tls as backend_tls
from ansible_collections.qoddi.paas.plugins.module_utils import _env as store
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import APP_UID, EDGE_NETWORK, Label

DONE = ("complete", "failed", "rejected", "shutdown")
TIMEOUT_RC = 124  # as coreutils' timeout says it, for both modes
IO_DIR = "/qoddi-console"  # in the job: where its stdin and stdout files are
# Where the module makes that directory on its node, one per job.
IO_ROOT = "/var/lib/qoddi/console"
# A datastore's image has no BASH_ENV script of the app's: export the config vars first (POSIX sh,
# as the datastore's own prologue: the engines' images may have nothing else).
EXPORT_PRELUDE = ('for f in /run/secrets/' + store.SECRET_DIR + '/*; do [ -f "$f" ] && export "${f##*/}=$(cat "$f")"; '
                  'done; unset f\n')


def job_name(app: str) -> str:
    return f"{app}--console-{uuid.uuid4().hex[:8]}"


def job_spec(service: dict, command: str, history: list, extra: list[dict], node: str | None,
             network_ids: dict[str, str], image: str | None = None, io_dir: str | None = None,
             stdin: bool = False, stdout: bool = False) -> dict:
    """The job's TaskTemplate from the process ``service``: the config vars of ``history``, with
    ``extra`` (SecretReferences of this command's own variables) in place of those of the same key.

    ``network_ids``: {id: name} of the service's networks; the edge's is left out. ``image``: another
    image to run in (a datastore's), by ``sh``. ``io_dir``: a directory of this node mounted at IO_DIR,
    where the command's stdin is read from and its stdout written to (``stdin``, ``stdout``); ``node``
    is then this node's ID."""
    template = service["Spec"]["TaskTemplate"]
    container = template["ContainerSpec"]
    own = {ref["File"]["Name"] for ref in extra}
    variables = [dict(ref) for ref in store.references(history) if ref["File"]["Name"] not in own]
    # Not the web process's TLS key either: a command has no use for it.
    others = [ref for ref in container.get("Secrets") or [] if not ref.get("File", {}).get("Name", "").startswith(
        store.SECRET_DIR + "/") and ref.get("File", {}).get("Name") != backend_tls.SECRET_FILE]
    env = [e for e in container.get("Env") or [] if not e.startswith(("DYNO=", "QODDI_PROCESS="))]
    placement = dict(template.get("Placement") or {})
    placement.pop("MaxReplicas", None)  # one task: the per-node cap of the process is not its
    if node:
        where = f"node.id=={node}" if io_dir else f"node.hostname=={node}"
        placement["Constraints"] = [*(placement.get("Constraints") or []), where]
    redirects = (f"exec <{IO_DIR}/stdin\n" if stdin else "") + (f"exec >{IO_DIR}/stdout\n" if stdout else "")
    shell = "sh" if image else "bash"
    job = {
        "ContainerSpec": {
            "Image": image or container["Image"],
            "Command": [shell, "-c", (EXPORT_PRELUDE if image else "") + redirects + command],
            "Env": [*env, "DYNO=run.1", "QODDI_PROCESS=console"],
            "Secrets": others + variables + extra,
            "User": container.get("User") or str(APP_UID),
            "Labels": {Label.JOB: "console"},
        },
        "Resources": template.get("Resources") or {},
        "Placement": placement,
        "RestartPolicy": {"Condition": "none"},
        # The network alone, not its aliases: the web process's alias is the app's name in the stack,
        # which would then lead the stack's requests to the console task too.
        "Networks": [{"Target": n["Target"]} for n in template.get("Networks") or []
                     if network_ids.get(n["Target"]) != EDGE_NETWORK],
    }
    if io_dir:
        job["ContainerSpec"]["Mounts"] = [{"Type": "bind", "Source": io_dir, "Target": IO_DIR}]
    return job


def extra_refs(client, app: str, env: dict[str, str], refs: list[dict]) -> None:
    """This command's own variables as short-lived secrets, mounted where the config vars are, added
    to ``refs`` as each is made (the caller removes them, those made before a failure too)."""
    stamp = uuid.uuid4().hex[:8]
    for index, (key, value) in enumerate(sorted(env.items())):
        name = f"{app}--console-{stamp}-{index}"
        secret = client.api.create_secret(name, value.encode(), labels={Label.JOB: "console"})
        refs.append({"SecretID": secret["ID"], "SecretName": name,
                     "File": {"Name": f"{store.SECRET_DIR}/{key}", "UID": str(APP_UID), "GID": "0", "Mode": 0o400}})


def wait(client, service_id: str, timeout: float) -> dict | None:
    """The job's task once it ended, or None at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = swarm.tasks(client, service_id)
        ended = [t for t in tasks if t["Status"]["State"] in DONE]
        if ended:
            return ended[0]
        time.sleep(0.2)
    return None


def exit_code(task: dict) -> int:
    status = task["Status"]
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    if code is None:  # never started (no image on the node, no node fits, the job removed): Swarm says why in Err
        return 0 if status["State"] == "complete" else 127
    return int(code)


def output(client, service_id: str, stream: str) -> str:
    """What the job's task wrote to ``stream`` (stdout or stderr), as Swarm kept it."""
    raw = client.api.service_logs(service_id, stdout=stream == "stdout", stderr=stream == "stderr")
    return b"".join(raw).decode(errors="replace")


def make_io_dir(job: str, uid: int, stdin_file: str | None) -> str:
    """The job's directory on this node (IO_DIR in the job), its user's alone, with a copy of
    ``stdin_file`` (the user's file keeps its owner and mode)."""
    os.makedirs(IO_ROOT, mode=0o700, exist_ok=True)
    path = os.path.join(IO_ROOT, job)
    os.mkdir(path, 0o700)  # IO_ROOT is root's alone: nobody else sees inside meanwhile
    try:
        os.chown(path, uid, 0)
        if stdin_file:
            copy = os.path.join(path, "stdin")
            shutil.copyfile(stdin_file, copy)
            os.chmod(copy, 0o400)
            os.chown(copy, uid, 0)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def keep_stdout(io_dir: str, dest: str) -> dict:
    """Copy what the job wrote to its stdout to ``dest`` (mode 0600, this user's) through a new file beside
    it, renamed at the end, so that ``dest`` is never half written nor readable by others meanwhile; its
    path, size and sha256."""
    partial = os.path.join(os.path.dirname(os.path.abspath(dest)), f".{os.path.basename(dest)}.qoddi-partial")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)  # a killed run's: never followed (O_NOFOLLOW, O_EXCL below)
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out, open(os.path.join(io_dir, "stdout"), "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                size += len(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    return {"path": dest, "size": size, "sha256": digest.hexdigest()}


def running_container(client, service_name: str):
    """A running container of the service on this node, or None."""
    found = client.containers.list(filters={"label": f"com.docker.swarm.service.name={service_name}",
                                            "status": "running"})
    return found[0] if found else None


# The command's own variables travel as __QODDI_SET_<KEY> in the exec's environment (the API only) and
# are exported under their names after BASH_ENV ran, which exports the task's config vars: so they win.
EXEC_PRELUDE = ('for __qoddi_set in ${!__QODDI_SET_@}; do export "${__qoddi_set#__QODDI_SET_}=${!__qoddi_set}"; '
                'unset "$__qoddi_set"; done; unset __qoddi_set\n')


def exec_in(client, container, command: str, env: dict[str, str], timeout: int) -> tuple[int, str, str]:
    """``bash -c command`` in the running ``container`` (its user, its variables), bounded by coreutils'
    timeout, with ``env`` in place of the variables of the same names."""
    previous = client.api.timeout
    client.api.timeout = timeout + 30  # the exec's answer comes when the command ends
    try:
        result = container.exec_run(["timeout", "--kill-after=5", str(timeout), "bash", "-c", EXEC_PRELUDE + command],
                                    environment={f"__QODDI_SET_{k}": v for k, v in env.items()} or None, demux=True)
    finally:
        client.api.timeout = previous
    out, err = result.output if result.output else (b"", b"")
    # 124: timeout stopped it; 137: it had to be killed after the grace.
    code = TIMEOUT_RC if result.exit_code == 137 else result.exit_code
    return code, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace")
