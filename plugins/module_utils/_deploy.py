# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An app's processes as Swarm services, and the safe way to change them.

Names: the web process is the service ``<app>`` (so other apps of the stack reach it by the app's
name); other process types are ``<app>--<type>``. Every service of an app carries labels that make
the cluster the only record of what is deployed (``org.qoddi.*``): no state file to lose.

Safety: updates start the new tasks first and stop the old ones only when the new ones are healthy
(``order: start-first``); a failed update rolls back by itself (``failure_action: rollback``); the
release command runs to completion as a one-off job before any service changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shlex
import time
import uuid

try:
    from docker import errors as docker_errors
    from docker import types
    from docker.errors import NotFound
except ImportError:  # pragma: no cover - the module reports the missing SDK
    types = docker_errors = None
    NotFound = Exception

LABEL = "org.qoddi."
# App and stack names: they become host names in the stack (and parts of service names).
NAME_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,29}$")


def app_name_ok(name: str) -> bool:
    """An app's (or a datastore's) name: NAME_RE, and no trailing hyphen (``--`` joins a name to its process)."""
    return bool(NAME_RE.match(name)) and not name.endswith("-")


WEB_PORT = 5000
# Named plans, as on Qoddi/Heroku: CPU (cores) and memory (MiB) limits per task.
SIZES = {
    "XS": (0.25, 256),
    "S": (0.5, 512),
    "M": (1.0, 1024),
    "L": (2.0, 2048),
    "XL": (4.0, 4096),
}
# Variables the platform sets itself; users may not override them (qoddi_env refuses them).
RESERVED_ENV = ("PORT", "DYNO", "QODDI_APP", "QODDI_PROCESS", "QODDI_RELEASE", "QODDI_REVISION")


class DeployError(Exception):
    """A deploy that did not go live, with what the tasks said."""

    def __init__(self, message: str, log: list[str] | None = None):
        super().__init__(message)
        self.log = log or []


# The network the edge (HAProxy) shares with every app's web process. App and stack names cannot
# hold "--", so no stack network can take this name.
EDGE_NETWORK = "qoddi--edge"


def procfile_label(processes: dict[str, str]) -> str:
    """The Procfile as a release image keeps it (label ``org.qoddi.procfile``): "type: command" lines."""
    return "\n".join(f"{kind}: {command}" for kind, command in processes.items())


def processes_of(client, image: str) -> dict[str, str]:
    """The Procfile of a release, read back from its image's label (qoddi_app, the controller)."""
    labels = client.api.inspect_image(image)["Config"].get("Labels") or {}
    return dict(line.split(": ", 1) for line in labels.get(LABEL + "procfile", "").splitlines() if ": " in line)


def network_name(stack: str) -> str:
    return f"qoddi-{stack}"


def service_name(app: str, process: str) -> str:
    return app if process == "web" else f"{app}--{process}"


def web_concurrency(size: str) -> int:
    """Heroku's rule: min(2 x CPUs + 1, max(1, memory MB / 256))."""
    cpus, memory = SIZES[size]
    return max(1, min(int(2 * max(cpus, 1) + 1), max(1, memory // 256)))


def ensure_network(client, name: str) -> bool:
    """An overlay network of the platform (a stack's, or the edge's); True when it had to be created."""
    # The engine's name filter matches parts of names too (qoddi-web would find qoddi-web-2).
    if any(network.name == name for network in client.networks.list(names=[name])):
        return False
    # encrypted: IPsec between nodes (the kernel must have ESP); attachable: consoles and jobs join it.
    client.networks.create(name, driver="overlay", attachable=True, scope="swarm",
                           options={"encrypted": ""}, labels={LABEL + "network": name})
    return True


# How a process runs: `bash -c` on the Procfile command (so BASH_ENV exports the config vars), under a
# small supervisor that, when Swarm stops the task, lets it serve DRAIN more seconds before passing
# SIGTERM on. A rolling update stops an old task as soon as its replacement is healthy, before the
# edge has resolved the new task and seen it pass two checks; without the drain, requests arriving in
# that gap find no server (measured: 5 failures in ~4500 requests per restart; with it, none).
RUN_SCRIPT = """\
bash -c "$2" &
child=$!
trap 'sleep "$1"; kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || exit "$status"
done
"""
WEB_DRAIN_SECONDS = 10


def run_command(command: str, drain: int) -> list[str]:
    return ["bash", "-c", RUN_SCRIPT, "qoddi-run", str(drain), command]


def health_test(path: str) -> list[str]:
    # Healthy: any answer below 500 from the app's own port (Docker kills the probe after 3 s). A 4xx
    # still proves the app serves: Django answers 400 to a Host outside ALLOWED_HOSTS, which a probe
    # cannot know. Plain bash (/dev/tcp), because the probe runs every half second in every task: a
    # Python interpreter per probe would cost the app a tenth of a small plan's CPU.
    script = (f"exec 3<>/dev/tcp/127.0.0.1/${{PORT:-{WEB_PORT}}} || exit 1; "
              f"printf 'GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' {shlex.quote(path)} >&3; "
              "read -r proto status rest <&3; [[ $status =~ ^[1-4][0-9][0-9]$ ]]")
    return ["CMD", "bash", "-c", script]


def desired_service(app: str, stack: str, process: str, command: str, image: str, release: int, revision: str,
                    replicas: int, size: str, env: dict[str, str], health_path: str | None,
                    domains: list[str] | None = None, secrets: list[dict] | None = None, env_seq: int = 0) -> dict:
    """Everything the platform decides about one process's service, as plain data.

    The dict, but for the app's config vars, is hashed into the ``org.qoddi.spec`` label: equal hash,
    nothing to change. The config vars (``secrets``: SecretReferences, see _env) are compared by
    version instead, because the controller applies them too, without recomputing that hash.
    """
    cpus, memory = SIZES[size]
    environment = dict(sorted(env.items()))
    environment.update(QODDI_APP=app, QODDI_PROCESS=process, QODDI_RELEASE=str(release), QODDI_REVISION=revision,
                       DYNO=f"{process}.{{{{.Task.Slot}}}}")
    environment.setdefault("WEB_CONCURRENCY", str(web_concurrency(size)))
    labels = {LABEL + "app": app, LABEL + "stack": stack, LABEL + "process": process,
              LABEL + "release": str(release), LABEL + "revision": revision, LABEL + "env.seq": str(env_seq),
              # The variables the release command last ran with (the controller runs it too).
              LABEL + "release.env.seq": str(env_seq)}
    networks = [network_name(stack)]
    if process == "web":
        environment["PORT"] = str(WEB_PORT)
        # What the edge reads to route to this app: its custom domains and its health check.
        labels.update({LABEL + "domains": ",".join(domains or []), LABEL + "health": health_path or ""})
        networks.append(EDGE_NETWORK)
    return {
        "name": service_name(app, process),
        "image": image,
        "command": run_command(command, WEB_DRAIN_SECONDS if process == "web" else 0),
        "env": environment,
        "replicas": replicas,
        "cpus": cpus,
        "memory_mb": memory,
        "networks": networks,
        # The probe itself, not only its path, so a better probe in a new version reaches running apps.
        "health": health_test(health_path) if process == "web" and health_path else None,
        "labels": labels,
        "secrets": list(secrets or []),
    }


def spec_digest(desired: dict) -> str:
    settings = dict(desired, secrets=None, labels=dict(desired["labels"], **{LABEL + "env.seq": None}))
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def differs(current: dict, desired: dict) -> bool:
    """Whether a service must be updated: its platform settings or config vars changed, or it was
    scaled by hand (or stopped with state=stopped, which changes the replicas but not the settings)."""
    spec = current["Spec"]
    labels = spec.get("Labels", {})
    replicas = spec.get("Mode", {}).get("Replicated", {}).get("Replicas")
    mounted = {ref["SecretName"] for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []}
    return (labels.get(LABEL + "spec") != spec_digest(desired) or replicas != desired["replicas"]
            or labels.get(LABEL + "env.seq") != desired["labels"][LABEL + "env.seq"]
            or mounted != {ref["SecretName"] for ref in desired["secrets"]})


def _service_kwargs(desired: dict) -> dict:
    health = None
    if desired["health"]:
        # start_period 60 s: Heroku's boot timeout; a 0.5 s interval makes a healthy task count fast.
        health = types.Healthcheck(test=desired["health"], interval=500_000_000,
                                   timeout=3_000_000_000, retries=3, start_period=60_000_000_000)
    container = types.ContainerSpec(
        image=desired["image"],
        command=desired["command"],
        env=[f"{key}={value}" for key, value in desired["env"].items()],
        labels={LABEL + "app": desired["labels"][LABEL + "app"]},
        healthcheck=health,
        secrets=desired["secrets"] or None,
        # The drain, then 30 s for gunicorn to finish in-flight requests (what Heroku allows).
        stop_grace_period=(30 + WEB_DRAIN_SECONDS) * 1_000_000_000,
    )
    memory = desired["memory_mb"] * 1024 * 1024
    resources = types.Resources(cpu_limit=int(desired["cpus"] * 1e9), mem_limit=memory,
                                mem_reservation=memory // 4)
    # monitor 1 s: a new task that dies within a second of becoming healthy triggers the rollback.
    update = dict(parallelism=0, delay=0, order="start-first", failure_action="rollback", monitor=1_000_000_000,
                  max_failure_ratio=0)
    labels = dict(desired["labels"], **{LABEL + "spec": spec_digest(desired)})
    return dict(
        task_template=types.TaskTemplate(
            container_spec=container,
            resources=resources,
            restart_policy=types.RestartPolicy(condition="any", delay=1_000_000_000),
            networks=[types.NetworkAttachmentConfig(network) for network in desired["networks"]],
        ),
        name=desired["name"],
        labels=labels,
        mode=types.ServiceMode("replicated", replicas=desired["replicas"]),
        update_config=types.UpdateConfig(**update),
        rollback_config=types.RollbackConfig(parallelism=0, order="start-first", monitor=1_000_000_000),
        endpoint_spec=types.EndpointSpec(mode="dnsrr"),
    )


def current_services(client, app: str) -> dict[str, dict]:
    """{process: service attrs} of an app's processes, from the cluster.

    By the process label, not by ``org.qoddi.app`` alone: release jobs (qoddi_app's, the
    controller's) and a datastore's service carry that label too, and are not the app's processes.
    """
    found = client.api.services(filters={"label": [f"{LABEL}app={app}", LABEL + "process"]})
    return {svc["Spec"]["Labels"][LABEL + "process"]: svc for svc in found}


def datastore_services(client, name: str) -> list[dict]:
    """The services of a datastore called ``name`` (qoddi_db labels them ``org.qoddi.datastore``)."""
    return client.api.services(filters={"label": [f"{LABEL}app={name}", LABEL + "datastore"]})


def restore(client, service_id: str, spec: dict) -> None:
    """Put a service back to ``spec`` (its spec before this run changed it): a rolling update back."""
    update_spec(client, client.api.inspect_service(service_id), spec)


def apply_service(client, desired: dict, current: dict | None) -> str:
    """Create or update one service; returns its id."""
    kwargs = _service_kwargs(desired)
    if current is None:
        return client.api.create_service(**kwargs)["ID"]
    client.api.update_service(current["ID"], version=current["Version"]["Index"], **kwargs)
    return current["ID"]


def update_spec(client, service: dict, spec: dict) -> None:
    """Replace a service's spec with ``spec`` (a changed copy of ``service["Spec"]``)."""
    client.api.update_service(service["ID"], version=service["Version"]["Index"],
                              task_template=spec["TaskTemplate"], name=spec["Name"],
                              labels=spec.get("Labels"), mode=spec.get("Mode"),
                              update_config=spec.get("UpdateConfig"),
                              rollback_config=spec.get("RollbackConfig"),
                              endpoint_spec=spec.get("EndpointSpec"))


def force_restart(spec: dict) -> dict:
    """``spec`` changed so that Swarm replaces every task (a rolling restart), nothing else."""
    spec["TaskTemplate"]["ForceUpdate"] = int(spec["TaskTemplate"].get("ForceUpdate", 0)) + 1
    return spec


def _tasks(client, service_id: str) -> list[dict]:
    return client.api.tasks(filters={"service": service_id})


def _logs(client, service_id: str, lines: int = 30) -> list[str]:
    try:
        raw = client.api.service_logs(service_id, stdout=True, stderr=True, tail=lines)
        return b"".join(raw).decode(errors="replace").splitlines()[-lines:]
    except Exception:  # noqa: BLE001 - logs are a courtesy on the way to an error message
        return []


def of_template(task: dict, template: dict) -> bool:
    """Whether a task runs the service's current task template (Swarm adds Runtime to tasks)."""
    spec = task.get("Spec") or {}
    return all(spec.get(key) == template.get(key) for key in (set(spec) | set(template)) - {"Runtime"})


def wait_converged(client, service_id: str, replicas: int, updated: bool, timeout: int, settle: float = 0) -> None:
    """Wait until the service runs ``replicas`` healthy tasks of its current spec.

    An update that Swarm rolled back, or tasks that keep failing, raise DeployError. ``settle``: for
    a process without a health check, Swarm watches a new task for one second only, so one that
    exits later (a worker's import error on a busy node) would pass; it must then run ``settle``
    seconds more without any task of the new spec failing.
    """
    deadline = time.monotonic() + timeout
    ready_since = None
    while time.monotonic() < deadline:
        service = client.api.inspect_service(service_id)
        status = (service.get("UpdateStatus") or {}).get("State")
        if status in ("rollback_started", "rollback_completed", "rollback_paused", "paused"):
            message = (service.get("UpdateStatus") or {}).get("Message", "")
            _await_rollback(client, service_id, deadline)
            raise DeployError(f"the new release did not become healthy and was rolled back ({message}); "
                              "the previous release keeps serving", _logs(client, service_id))
        template = service["Spec"]["TaskTemplate"]
        fresh = [task for task in _tasks(client, service_id)
                 if task["Status"]["State"] == "running" and task.get("DesiredState") == "running"
                 and of_template(task, template)]
        if settle:
            exited = [task for task in _tasks(client, service_id) if of_template(task, template)
                      and task["Status"]["State"] in ("failed", "rejected", "complete")]
            if exited:
                raise DeployError(f"the new tasks do not keep running ({exited[0]['Status'].get('Err') or 'exit 0'}); "
                                  "the task log says why", _logs(client, service_id))
        if (not updated or status in (None, "completed")) and len(fresh) >= replicas:
            ready_since = ready_since or time.monotonic()
            if time.monotonic() - ready_since >= settle:
                return
        else:
            ready_since = None
        if not updated:
            failed = [task for task in _tasks(client, service_id) if task["Status"]["State"] in ("failed", "rejected")]
            if len(failed) >= 3:
                raise DeployError("the app's tasks keep failing: " + failed[0]["Status"].get("Err", ""),
                                  _logs(client, service_id))
        time.sleep(0.5)
    raise DeployError(f"the service did not get {replicas} healthy task(s) within {timeout} s",
                      _logs(client, service_id))


def _await_rollback(client, service_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        status = (client.api.inspect_service(service_id).get("UpdateStatus") or {}).get("State")
        if status != "rollback_started":
            return
        time.sleep(0.5)


def run_release(client, app: str, stack: str, command: str, image: str, secrets: list[dict],
                release: int, timeout: int, name: str = "") -> list[str]:
    """Run the Procfile's release command once from the new image; returns its log.

    A Swarm job (not a container) so that it runs on any node that can reach the stack network,
    with the same environment as the app. Raises DeployError when it fails.
    """
    service = start_release(client, app, stack, command, image, secrets, release, name)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if release_finished(client, service, command):
                return _logs(client, service, 200)
            time.sleep(0.2)
        raise DeployError(f"the release command `{command}` did not finish within {timeout} s",
                          _logs(client, service))
    finally:
        remove_job(client, service)


def remove_job(client, service_id: str) -> None:
    """Remove a release job and its task's container: Swarm leaves a job's exited container behind
    when the job's service goes (one per release, which would pile up). Only this engine's: the
    container of a task that ran on another node is that engine's to remove."""
    try:
        client.api.remove_service(service_id)
    except NotFound:
        pass
    for container in client.api.containers(all=True, filters={"label": f"com.docker.swarm.service.id={service_id}"}):
        try:
            client.api.remove_container(container["Id"], force=True)
        except NotFound:
            pass


def run_release_beside(client, app: str, command: str, image: str, release: int, values: dict[str, str],
                       neighbour: str, timeout: int) -> list[str]:
    """Run the release command from ``image`` in a container that shares the network of ``neighbour``
    (a running task of the app, on its stack network), with the config vars' ``values``; returns its log.

    Why not a Swarm job: scheduling it and attaching its task to the overlay network take 1.5-2 s
    here, joining a running task's network namespace 0.3-0.5 s; the stack's datastores resolve by
    name all the same (the task's DNS). The values reach the command's process alone, as the build
    hooks get them (docker exec's environment): no container configuration, argument or layer holds
    them. Raises DeployError (with the log) when the command fails; the container goes either way.
    """
    environment = {**values, "QODDI_APP": app, "QODDI_PROCESS": "release", "QODDI_RELEASE": str(release)}
    api = client.api
    previous_timeout = api.timeout
    api.timeout = timeout + 30
    container = api.create_container(
        image, command=["sleep", str(timeout)], labels={LABEL + "app": app, LABEL + "job": "release"},
        name=f"{app}--release-{release}-{uuid.uuid4().hex[:8]}",
        # Removed by the engine once stopped: the run does not wait for it, and a killed run's goes too
        # (its `sleep` ends after ``timeout``).
        host_config=api.create_host_config(network_mode=f"container:{neighbour}", auto_remove=True))["Id"]
    log: list[str] = []
    try:
        api.start(container)
        exec_id = api.exec_create(container, ["bash", "-c", command],
                                  environment=[f"{k}={v}" for k, v in environment.items()])["Id"]
        pending = b""
        for chunk in api.exec_start(exec_id, stream=True):
            *lines, pending = (pending + chunk).split(b"\n")
            log.extend(line.decode(errors="replace") for line in lines)
        if pending:
            log.append(pending.decode(errors="replace"))
        code = api.exec_inspect(exec_id)["ExitCode"]
    finally:
        try:
            api.kill(container)
        except docker_errors.APIError:
            # Not running: never started (the engine removes only containers that ran), or removed already.
            with contextlib.suppress(docker_errors.APIError):
                api.remove_container(container, force=True)
        api.timeout = previous_timeout
    log = log[-200:]
    if code != 0:
        raise DeployError(f"the release command `{command}` failed (exit code {code}); the new release was not "
                          "deployed and the previous one keeps serving", log[-30:])
    return log


def release_jobs(client, app: str) -> list[dict]:
    """The app's release jobs (qoddi_app's and the controller's), by the label start_release gives them."""
    return client.api.services(filters={"label": [f"{LABEL}app={app}", f"{LABEL}job=release"]})


def _release_containers_running(client, app: str) -> list[str]:
    """The app's release containers (run_release_beside) whose command still runs; the others, left by
    a run that was killed, are removed."""
    running = []
    for found in client.api.containers(all=True, filters={"label": [f"{LABEL}app={app}", f"{LABEL}job=release"]}):
        try:
            execs = client.api.inspect_container(found["Id"]).get("ExecIDs") or []
            if any(client.api.exec_inspect(exec_id).get("Running") for exec_id in execs):
                running.append(found["Names"][0].lstrip("/"))
            else:
                client.api.remove_container(found["Id"], force=True)
        except NotFound:
            pass
    return running


def wait_other_releases(client, app: str, timeout: int) -> None:
    """Wait until no other release of the app runs (the controller's job, started for config vars
    before this run took the app's lock; a killed run's container): two release commands, two
    migrations, never run at once. Those jobs are the controller's to remove once over; a killed
    run's container is removed here once its command ended. Raises DeployError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        running = _release_containers_running(client, app)
        for job in release_jobs(client, app):
            try:
                if not release_finished(client, job["ID"], ""):
                    running.append(job["Spec"]["Name"])
            except DeployError:
                pass  # failed: over all the same
        if not running:
            return
        if time.monotonic() >= deadline:
            raise DeployError(f"the release job {', '.join(running)} of an earlier change still runs after "
                              f"{timeout} s; the new release was not deployed and the previous one keeps serving", [])
        time.sleep(0.5)


def start_release(client, app: str, stack: str, command: str, image: str, secrets: list[dict],
                  release: int, name: str = "") -> str:
    """Start the release command's job and return its service id, without waiting (the controller
    follows it over its next ticks with release_finished, so that other apps' duties go on)."""
    name = name or f"{app}--release-{release}"
    # Swarm's name filter matches prefixes (release-1 would match release-12): compare whole names.
    for stale in client.api.services(filters={"name": name}):
        if stale["Spec"]["Name"] == name:
            remove_job(client, stale["ID"])
    environment = dict(QODDI_APP=app, QODDI_PROCESS="release", QODDI_RELEASE=str(release))
    return client.api.create_service(
        task_template=types.TaskTemplate(
            container_spec=types.ContainerSpec(image=image, command=["bash", "-c", command],
                                               env=[f"{k}={v}" for k, v in sorted(environment.items())],
                                               secrets=secrets or None),
            restart_policy=types.RestartPolicy(condition="none"),
            networks=[types.NetworkAttachmentConfig(network_name(stack))],
        ),
        name=name,
        labels={LABEL + "app": app, LABEL + "job": "release"},
        # As the API spells it: the controller's SDK (Debian 12's docker 5.0) has no job modes.
        mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    )["ID"]


def release_finished(client, service_id: str, command: str) -> bool:
    """True once the release job completed, False while it runs; DeployError (with its log) if it failed."""
    states = [task["Status"] for task in _tasks(client, service_id)]
    if any(state["State"] == "complete" for state in states):
        return True
    failed = [state for state in states if state["State"] in ("failed", "rejected", "shutdown")]
    if failed:
        raise DeployError(f"the release command `{command}` failed ({failed[0].get('Err', 'non-zero exit')}); "
                          "the new release was not deployed and the previous one keeps serving",
                          _logs(client, service_id))
    return False
