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

import calendar
import contextlib
import hashlib
import json
import threading
import time
import uuid

# The conventions every reader of the cluster shares (names, sizes, port, networks, labels).
from ansible_collections.qoddi.paas.plugins.module_utils import _backend_tls as backend_tls
from ansible_collections.qoddi.paas.plugins.module_utils import _edge as edge
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import (
    PREFIX,
    SIZES,
    WEB_PORT,
    Label,
    network_name,
    service_name,
    web_concurrency,
)

try:
    from docker import errors as docker_errors
    from docker import types
    from docker.errors import NotFound
except ImportError:  # pragma: no cover - the module reports the missing SDK
    types = docker_errors = None
    NotFound = Exception


class DeployError(Exception):
    """A deploy that did not go live, with what the tasks said."""

    def __init__(self, message: str, log: list[str] | None = None):
        super().__init__(message)
        self.log = log or []


class ReleaseFailed(DeployError):
    """The release command failed or timed out: ``cause`` says how, in a few words, for the
    controller's log line; the message adds what it means for a deploy."""

    def __init__(self, command: str, cause: str, log: list[str] | None = None):
        super().__init__(f"the release command `{command}` {cause}; the new release was not deployed and the "
                         "previous one keeps serving", log)
        self.cause = f"`{command}` {cause}"


def release_due(services: list[dict], variables_version: int, built: bool) -> bool:
    """The release policy, Heroku's, for qoddi_app and the controller alike: a new build or new config
    vars make a new release, and every new release runs the Procfile's release command first (a new
    DATABASE_URL is migrated before the app uses it). Variables count as new until a release ran with
    them: still pending, or whose release command failed when the controller tried it."""
    return built or any((service["Spec"].get("Labels") or {}).get(Label.RELEASE_ENV_SEQ) != str(variables_version)
                        for service in services)


def procfile_label(processes: dict[str, str]) -> str:
    """The Procfile as a release image keeps it (label ``org.qoddi.procfile``): "type: command" lines."""
    return "\n".join(f"{kind}: {command}" for kind, command in processes.items())


PULL_TIMEOUT = 300


def pull_within(client, image: str, timeout: float) -> None:
    """Pull ``image``, waiting at most ``timeout`` seconds (the SDK's pull waits as long as the registry
    takes): past it, a DeployError, and the pull goes on in the background."""
    outcome: list = []

    def pull():
        try:
            client.api.pull(image)
            outcome.append(None)
        except Exception as exc:  # noqa: BLE001 - handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=pull, name="qoddi-pull", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise DeployError(f"could not pull {image} within {timeout:g} s from the cluster's registry")
    if outcome[0] is not None:
        raise DeployError(f"could not pull {image} from the cluster's registry: {outcome[0]}")


def processes_of(client, image: str) -> dict[str, str]:
    """The Procfile of a release, read back from its image's label (qoddi_app, the controller). A
    release by digest from the cluster's registry that this node has never pulled (built on another
    manager than the controller's) is pulled first."""
    try:
        attrs = client.api.inspect_image(image)
    except NotFound:
        if "@" not in image:
            raise
        pull_within(client, image, PULL_TIMEOUT)
        attrs = client.api.inspect_image(image)
    labels = attrs["Config"].get("Labels") or {}
    return dict(line.split(": ", 1) for line in labels.get(Label.PROCFILE, "").splitlines() if ": " in line)


# The swarm role's node label: whether the node's kernel can encrypt overlay traffic (IPsec ESP).
ESP_NODE_LABEL = "qoddi.esp"


def without_esp(nodes: list[dict]) -> list[str]:
    """The nodes (as the Engine API lists them) whose kernel cannot encrypt overlay traffic, as the
    swarm role found (label qoddi.esp=no). The haproxy role asks the same through the filter
    qoddi.paas.nodes_without_esp.

    A node the role has not probed (no label) counts as able: the secure default, as before the probe.
    """
    return sorted(node["Description"]["Hostname"] for node in nodes
                  if (node["Spec"].get("Labels") or {}).get(ESP_NODE_LABEL) == "no")


def nodes_without_esp(client) -> list[str]:
    return without_esp(client.api.nodes())


def unencrypted_warning(name: str, lacking: list[str]) -> str:
    return (f"network {name} was made without encryption: the kernel of {', '.join(lacking)} cannot encrypt "
            "overlay traffic (IPsec ESP), and an encrypted overlay would carry nothing between nodes. Traffic "
            "between apps on different nodes crosses the network in clear; see docs/architecture.md, "
            "\"Transport between nodes\", for the kernel options.")


def ensure_network(client, name: str) -> str | None:
    """Make an overlay network of the platform (a stack's, or the edge's) unless it exists.

    None when it existed; else "" or, when made without encryption, why (a warning for the user).
    """
    # The engine's name filter matches parts of names too (qoddi-web would find qoddi-web-2).
    if any(network.name == name for network in client.networks.list(names=[name])):
        return None
    # encrypted: IPsec between nodes, where every node's kernel has ESP; attachable: consoles and jobs join it.
    lacking = nodes_without_esp(client)
    client.networks.create(name, driver="overlay", attachable=True, scope="swarm",
                           options={} if lacking else {"encrypted": ""}, labels={Label.NETWORK: name})
    return unencrypted_warning(name, lacking) if lacking else ""


# How a process runs: `bash -c` on the Procfile command (so BASH_ENV exports the config vars), under a
# small supervisor that, when Swarm stops the task, lets it serve DRAIN more seconds before passing
# SIGTERM on. A rolling update stops an old task as soon as its replacement runs, before the edge has
# resolved the new task and checked it; without the drain, requests arriving in that gap find no
# server (measured: 5 failures in ~4500 requests per restart; with it, none).
#
# With a health path ($3) the supervisor also checks its own app, instead of a Docker health check:
# Docker runs those through `docker exec` (runc, dockerd) at every interval, which cost ~15 % of a core
# per idle task at the 0.5 s a fast rollout needs (Docker 20.10 has no start interval). Here a probe is
# a bash function on /dev/tcp inside the running supervisor: no process at all. It probes every
# READY_POLL seconds until the app answers below 500, prints READY_MARK once (the rollout reads it
# from the service's log through the manager's API, wherever the task runs), then every
# LIVENESS_SECONDS; LIVENESS_FAILURES failures in a row stop the app, so Swarm replaces the task.
# Healthy: any answer below 500. A 4xx still proves the app serves: Django answers 400 to a Host outside
# ALLOWED_HOSTS, which a probe cannot know.
#
# With backend TLS ($4: the terminator's code, see _backend_tls) the terminator runs beside the app,
# on the port the edge connects to, and the probe checks that it runs too.
RUN_SCRIPT = """\
bash -c "$2" &
child=$!
proxy=
if [ -n "$4" ]; then
  python3 -c "$4" %(port)d "$PORT" %(pem)s &
  proxy=$!
fi
trap 'sleep "$1"; kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
if [ -n "$3" ]; then
  (
    trap - TERM INT
    path=$3
    probe() {
      local status=
      { printf 'GET %%s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' "$path" >&3; read -r -t 3 _ status _ <&3; } \\
        2>/dev/null 3<>"/dev/tcp/127.0.0.1/${PORT:-%(port)d}"
      [[ $status =~ ^[1-4][0-9][0-9]$ ]] && { [ -z "$proxy" ] || kill -0 "$proxy" 2>/dev/null; }
    }
    started=$EPOCHREALTIME
    until probe; do sleep %(poll)s; done
    echo "%(mark)s$(( (${EPOCHREALTIME/./} - ${started/./}) / 1000 )) ms"
    failures=0
    while sleep %(every)d; do
      if probe; then failures=0; else failures=$((failures + 1)); fi
      if (( failures >= %(failures)d )); then
        echo "qoddi: $path did not answer %(failures)d times in a row; stopping the task so that Swarm replaces it"
        kill -TERM "$child" 2>/dev/null
        exit
      fi
    done
  ) &
fi
while :; do
  wait "$child"; status=$?
  kill -0 "$child" 2>/dev/null || exit "$status"
done
"""
WEB_DRAIN_SECONDS = 10
MONITOR_SECONDS = 10
READY_MARK = "qoddi: ready in "
READY_POLL = 0.1
LIVENESS_SECONDS = 15
LIVENESS_FAILURES = 3
RUN_SCRIPT = RUN_SCRIPT % dict(port=WEB_PORT, poll=READY_POLL, mark=READY_MARK, every=LIVENESS_SECONDS,
                               failures=LIVENESS_FAILURES, pem=backend_tls.IN_TASK)


def run_command(command: str, drain: int, health_path: str = "", tls: bool = False) -> list[str]:
    return ["bash", "-c", RUN_SCRIPT, "qoddi-run", str(drain), command, health_path,
            backend_tls.PROXY if tls else ""]


def desired_service(app: str, stack: str, process: str, command: str, image: str, release: int, revision: str,
                    replicas: int, size: str, env: dict[str, str], health_path: str | None,
                    domains: list[str] | None = None, secrets: list[dict] | None = None, env_seq: int = 0,
                    tls: tuple[str, dict] | None = None, boot_timeout: int = 0) -> dict:
    """Everything the platform decides about one process's service, as plain data.

    The dict, but for the app's config vars, is hashed into the ``org.qoddi.spec`` label: equal hash,
    nothing to change. The config vars (``secrets``: SecretReferences, see _env) are compared by
    version instead, because the controller applies them too, without recomputing that hash.
    ``tls``: the web process's certificate and key secret (_backend_tls.ensure), for TLS from the edge.
    ``boot_timeout``: seconds a new web task has to answer (0: BOOT_SECONDS, and no label, so that apps
    deployed before the option existed see no change).
    """
    cpus, memory = SIZES[size]
    environment = dict(sorted(env.items()))
    environment.update(QODDI_APP=app, QODDI_PROCESS=process, QODDI_RELEASE=str(release), QODDI_REVISION=revision,
                       DYNO=f"{process}.{{{{.Task.Slot}}}}")
    environment.setdefault("WEB_CONCURRENCY", str(web_concurrency(size)))
    labels = {Label.APP: app, Label.STACK: stack, Label.PROCESS: process,
              Label.RELEASE: str(release), Label.REVISION: revision, Label.ENV_SEQ: str(env_seq),
              # The variables the release command last ran with (the controller runs it too).
              Label.RELEASE_ENV_SEQ: str(env_seq)}
    # The stack's network alone, the web process's too: the edge joins it (the controller connects the
    # edge's containers, see roles/controller/files/edge_networks.py), no other stack reaches it.
    networks = [network_name(stack)]
    secrets = list(secrets or [])
    tls = tls if process == "web" else None
    if process == "web":
        environment["PORT"] = str(backend_tls.APP_PORT if tls else WEB_PORT)
        # What the edge reads to route to this app: its custom domains and its health check (and the
        # certificate it pins).
        labels.update({Label.DOMAINS: ",".join(domains or []), Label.HEALTH: health_path or ""})
        if boot_timeout and boot_timeout != BOOT_SECONDS:
            labels[Label.BOOT_TIMEOUT] = str(boot_timeout)
    if tls:
        labels[Label.BACKEND_TLS] = tls[0]
        secrets.append(tls[1])
    return {
        "name": service_name(app, process),
        "image": image,
        # The supervisor checks the web process itself (see RUN_SCRIPT): the probe is part of the
        # command, so a better probe in a new version reaches running apps.
        "command": run_command(command, WEB_DRAIN_SECONDS if process == "web" else 0,
                               health_path or "" if process == "web" else "", tls=bool(tls)),
        "env": environment,
        "replicas": replicas,
        "cpus": cpus,
        "memory_mb": memory,
        "networks": networks,
        # Gated on the supervisor's ready line (see rollout); no Docker health check.
        "health": health_path if process == "web" and health_path else None,
        "labels": labels,
        "secrets": secrets,
    }


def size_unfit(client, size: str) -> str:
    """Why no node can run a task of ``size`` ("" when one can).

    Docker refuses a CPU limit above a node's CPUs (each task would be rejected), and Swarm keeps a task
    pending as long as no node has room for its memory reservation (a quarter of the limit, see
    _service_kwargs; a memory limit above a node's memory is allowed): without this, such a deploy
    would wait out its timeout.
    """
    # Each active node's CPUs and memory (MiB), by host name.
    rooms = {node["Description"]["Hostname"]: (node["Description"]["Resources"]["NanoCPUs"] / 1e9,
                                               node["Description"]["Resources"]["MemoryBytes"] // 2**20)
             for node in client.api.nodes()
             if node["Spec"].get("Availability") == "active" and node["Status"].get("State") == "ready"}

    def fits(name: str) -> bool:
        cpus, memory = SIZES[name]
        return any(room_cpus >= cpus and room_memory >= memory // 4 for room_cpus, room_memory in rooms.values())

    if not rooms or fits(size):
        return ""  # no node at all: Swarm will say so, and it is another problem
    cpus, memory = SIZES[size]
    largest = max(rooms, key=rooms.get)
    return (f"size {size} runs each task with up to {cpus:g} CPU and reserves {memory // 4} MiB of memory for it, and "
            f"no node of the cluster has that much (the largest, {largest}, has {rooms[largest][0]:g} CPU and "
            f"{rooms[largest][1]} MiB). Choose a size that fits ({', '.join(filter(fits, SIZES)) or 'none does'}) "
            "or add a larger node. Nothing was changed.")


def spec_digest(desired: dict) -> str:
    # Neither config-vars version counts: the controller changes both labels when it applies variables
    # (release_due and the mounted secrets say what is due), without recomputing this digest.
    settings = dict(desired, secrets=None, labels=dict(desired["labels"], **{Label.ENV_SEQ: None,
                                                                             Label.RELEASE_ENV_SEQ: None}))
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def replicas_of(spec: dict, default: int | None = None) -> int | None:
    """The replica count of a service's Engine API spec (``default`` when it says none)."""
    return ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", default)


def differs(current: dict, desired: dict) -> bool:
    """Whether a service must be updated: its platform settings or config vars changed, one of its
    labels was edited by hand (the edge reads them), or it was scaled by hand (or stopped with
    state=stopped, which changes the replicas but not the settings)."""
    spec = current["Spec"]
    written = {key: value for key, value in (spec.get("Labels") or {}).items() if key.startswith(PREFIX)}
    replicas = replicas_of(spec)
    mounted = {ref["SecretName"] for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []}
    # Every label qoddi_app writes, the settings' digest included. The config-vars versions are compared
    # as they are: variables no release ran with yet (a restart mounted them, or the controller's release
    # command failed) make RELEASE_ENV_SEQ differ, so this run must release; once the controller
    # released them, equal.
    return (written != dict(desired["labels"], **{Label.SPEC: spec_digest(desired)})
            or replicas != desired["replicas"]
            or mounted != {ref["SecretName"] for ref in desired["secrets"]})


def _service_kwargs(desired: dict) -> dict:
    container = types.ContainerSpec(
        image=desired["image"],
        command=desired["command"],
        env=[f"{key}={value}" for key, value in desired["env"].items()],
        labels={Label.APP: desired["labels"][Label.APP]},
        secrets=desired["secrets"] or None,
        # The drain, then 30 s for gunicorn to finish in-flight requests (what Heroku allows).
        stop_grace_period=(30 + WEB_DRAIN_SECONDS) * 1_000_000_000,
    )
    memory = desired["memory_mb"] * 1024 * 1024
    resources = types.Resources(cpu_limit=int(desired["cpus"] * 1e9), mem_limit=memory,
                                mem_reservation=memory // 4)
    # monitor: a new task that dies within MONITOR_SECONDS of its start (after the rollout returned)
    # triggers Swarm's own rollback. The rollout waits for the tasks' ready lines, not for the monitor.
    update = dict(parallelism=0, delay=0, order="start-first", failure_action="rollback",
                  monitor=MONITOR_SECONDS * 1_000_000_000, max_failure_ratio=0)
    labels = dict(desired["labels"], **{Label.SPEC: spec_digest(desired)})
    return dict(
        task_template=types.TaskTemplate(
            container_spec=container,
            resources=resources,
            restart_policy=types.RestartPolicy(condition="any", delay=1_000_000_000),
            networks=[types.NetworkAttachmentConfig(network) for network in desired["networks"]],
        ),
        name=desired["name"],
        labels=labels,
        # As the Engine API spells it (the SDK's ServiceMode says "replicated"; the engine accepts either):
        # the rollout reads the replica count back from this spec, and with the SDK's spelling waited for
        # one ready task whatever the count (on several nodes it returned while the others still pulled).
        mode={"Replicated": {"Replicas": desired["replicas"]}},
        update_config=types.UpdateConfig(**update),
        rollback_config=types.RollbackConfig(parallelism=0, order="start-first", monitor=1_000_000_000),
        endpoint_spec=types.EndpointSpec(mode="dnsrr"),
    )


def current_services(client, app: str) -> dict[str, dict]:
    """{process: service attrs} of an app's processes, from the cluster.

    By the process label, not by ``org.qoddi.app`` alone: release jobs (qoddi_app's, the
    controller's) and a datastore's service carry that label too, and are not the app's processes.
    """
    found = client.api.services(filters={"label": [f"{Label.APP}={app}", Label.PROCESS]})
    return {svc["Spec"]["Labels"][Label.PROCESS]: svc for svc in found}


def datastore_services(client, name: str) -> list[dict]:
    """The services of a datastore called ``name`` (qoddi_db labels them ``org.qoddi.datastore``)."""
    return client.api.services(filters={"label": [f"{Label.APP}={name}", Label.DATASTORE]})


def restore(client, service_id: str, spec: dict) -> bool:
    """Put a service back to ``spec`` (its spec before this run changed it): a rolling update back.

    False when it has that spec already: Swarm's own rollback (``failure_action``) may have done it.
    """
    service = client.api.inspect_service(service_id)
    if service["Spec"] == spec:
        return False
    swarm.replace(client, service, spec)
    return True


# ----- rollouts gated on the supervisor's ready line (qoddi_app and the controller) ----------------
# A web update first starts a surge service <name>--next with the new spec and the network alias <name>
# (so tasks.<name>, which the edge resolves, lists its tasks beside the old ones), waits until its
# tasks print READY_MARK, then updates the real service (whose old tasks stop at once, serving their
# drain) and waits for its new tasks the same way, then removes the surge. Without a Docker health
# check Swarm would stop the old tasks as soon as the new containers start: a release that never
# answers would leave nothing serving. With the surge it fails before the real service is touched.
SURGE_SUFFIX = "--next"
# Heroku's boot timeout: a web task that has not answered after this long fails the rollout.
BOOT_SECONDS = 60
# A process without a health path must keep running this long (all of them at once, not one after another).
SETTLE_SECONDS = 5
# The edge's timings: Docker DNS (roles/haproxy/templates/haproxy.cfg.j2, `resolvers docker`; a unit
# test keeps them equal) and its checks of tasks (_edge.backends).
# - A task that left Docker's DNS gets no new request after EDGE_FORGET_SECONDS. HAProxy drops it at the
#   first resolution that comes `hold obsolete` after the last answer that listed it, so it keeps its
#   requests for EDGE_KEPT_SECONDS at least.
# - A task that answers gets requests within EDGE_ADMIT_SECONDS: HAProxy learns it at its next resolution,
#   and holds every new task down from its first check (made before its app answered) until RISE checks
#   pass, the first within DOWN_INTER, the others FAST_INTER apart.
# So a service may leave DNS once the tasks that replace it answered EDGE_HANDOVER_SECONDS ago: there is
# no moment without a task that takes requests (a 503 otherwise: measured, 1 of 2,044 requests).
EDGE_RESOLVE_SECONDS = 0.5
EDGE_HOLD_OBSOLETE_SECONDS = 1
EDGE_FORGET_SECONDS = 2 * EDGE_RESOLVE_SECONDS + EDGE_HOLD_OBSOLETE_SECONDS
EDGE_KEPT_SECONDS = EDGE_HOLD_OBSOLETE_SECONDS - EDGE_RESOLVE_SECONDS
EDGE_ADMIT_SECONDS = EDGE_RESOLVE_SECONDS + edge.DOWN_INTER_SECONDS + (edge.RISE - 1) * edge.FAST_INTER_SECONDS
EDGE_HANDOVER_SECONDS = max(0.0, EDGE_ADMIT_SECONDS - EDGE_KEPT_SECONDS)
_ROLLBACK_STATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


def service_spec(desired: dict) -> dict:
    """The Engine API spec of ``desired`` (desired_service), as inspect_service returns specs."""
    kwargs = _service_kwargs(desired)
    return json.loads(json.dumps({
        "Name": kwargs["name"], "Labels": kwargs["labels"], "TaskTemplate": kwargs["task_template"],
        "Mode": kwargs["mode"], "UpdateConfig": kwargs["update_config"],
        "RollbackConfig": kwargs["rollback_config"], "EndpointSpec": kwargs["endpoint_spec"]}))


def _create(client, spec: dict) -> str:
    return client.api.create_service(task_template=spec["TaskTemplate"], name=spec["Name"],
                                     labels=spec.get("Labels"), mode=spec.get("Mode"),
                                     update_config=spec.get("UpdateConfig"),
                                     rollback_config=spec.get("RollbackConfig"),
                                     endpoint_spec=spec.get("EndpointSpec"))["ID"]


def boot_timeout_of(spec: dict) -> int:
    """Seconds a new task of the service has to answer (its label, else BOOT_SECONDS)."""
    value = (spec.get("Labels") or {}).get(Label.BOOT_TIMEOUT, "")
    return int(value) if value.isdigit() and int(value) > 0 else BOOT_SECONDS


def health_path_of(spec: dict) -> str:
    """The path the supervisor probes (its third argument, see run_command); "" when none."""
    command = spec["TaskTemplate"]["ContainerSpec"].get("Command") or []
    return command[6] if len(command) > 6 and command[:2] == ["bash", "-c"] else ""


def surge_spec(spec: dict) -> dict:
    """A copy of a web service's spec that serves beside it under its name: the surge of a rollout.

    Not one of the app's processes (no org.qoddi.process label: current_services, the edge's routes
    and the controller leave it alone); the alias puts its tasks in the web service's DNS names.
    """
    surge = json.loads(json.dumps(spec))
    name = spec["Name"]
    surge["Name"] = name + SURGE_SUFFIX
    labels = {key: value for key, value in (spec.get("Labels") or {}).items()
              if key in (Label.APP, Label.STACK, Label.RELEASE, Label.BOOT_TIMEOUT)}
    surge["Labels"] = dict(labels, **{Label.SURGE: name})
    for network in surge["TaskTemplate"].get("Networks") or []:
        network["Aliases"] = [name]
    return surge


def ready_tasks(lines: list[str]) -> set[str]:
    """The ids of the tasks that printed READY_MARK, from service log lines read with details.

    Each line reads ``<timestamp> com.docker.swarm.node.id=..,com.docker.swarm.service.id=..,
    com.docker.swarm.task.id=<id> <message>``: the manager gathers them from every node.
    """
    ready = set()
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) < 3 or not parts[2].startswith(READY_MARK):
            continue
        details = dict(item.split("=", 1) for item in parts[1].split(",") if "=" in item)
        if details.get("com.docker.swarm.task.id"):
            ready.add(details["com.docker.swarm.task.id"])
    return ready


def _log_lines(client, service_id: str, since: float) -> list[str]:
    raw = client.api.service_logs(service_id, stdout=True, stderr=True, details=True, timestamps=True,
                                  since=int(since))
    return b"".join(raw).decode(errors="replace").splitlines()


def swarm_time(timestamp: str) -> float:
    """A Swarm timestamp as seconds since the epoch (RFC 3339 with nanoseconds, which Python's parser refuses)."""
    return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))


def _created(task: dict) -> float:
    return swarm_time(task["CreatedAt"])


class _Watch:
    """One service of a rollout, until its tasks of the current spec serve (or fail)."""

    def __init__(self, name: str, service_id: str, spec: dict, started: float, since: float | None = None,
                 undo: bool = False):
        """``started`` (monotonic) starts the boot timeout; tasks created ``since`` then (default: started)
        must print their ready line, older ones served already. An ``undo`` watch follows a service put back
        to its previous spec, by this run or by Swarm's own rollback, which it waits for."""
        self.name, self.service_id, self.started, self.undo = name, service_id, started, undo
        self.since = started if since is None else since
        self.replicas = replicas_of(spec, 1)
        self.image = spec["TaskTemplate"]["ContainerSpec"].get("Image")
        self.health = health_path_of(spec)
        self.boot_timeout = boot_timeout_of(spec)
        self.running_since: float | None = None
        self.ready_at: float | None = None  # when done() first saw every task serve (monotonic)

    def done(self, client, now: float) -> bool:
        """True once the service serves; DeployError when it cannot."""
        service = client.api.inspect_service(self.service_id)
        status = service.get("UpdateStatus") or {}
        if status.get("State") in _ROLLBACK_STATES:
            if self.undo and status["State"] == "rollback_started":
                return False
            if not (self.undo and status["State"] == "rollback_completed"):
                raise DeployError(f"Swarm rolled the update back ({status.get('Message', '')})",
                                  swarm.logs(client, self.service_id))
        template = service["Spec"]["TaskTemplate"]
        if self.undo and template["ContainerSpec"].get("Image") != self.image:
            raise DeployError("Swarm did not put the previous release back (the service runs "
                              f"{template['ContainerSpec'].get('Image')})", swarm.logs(client, self.service_id))
        tasks = [task for task in swarm.tasks(client, self.service_id) if swarm.of_template(task, template)]
        # Only tasks of this rollout: Swarm keeps up to 5 old tasks a slot, and a task of the same spec that
        # failed before (a liveness exit, an OOM kill) must not fail a change of labels or of replicas.
        exited = [task for task in tasks if task["Status"]["State"] in ("failed", "rejected", "complete")
                  and _created(task) >= self.started_wall]
        if exited:
            raise DeployError(f"the new tasks do not keep running ({exited[0]['Status'].get('Err') or 'exit 0'})",
                              swarm.logs(client, self.service_id))
        running = [task for task in tasks if task["Status"]["State"] == "running"
                   and task.get("DesiredState") == "running"]
        if self.replicas == 0:
            return status.get("State") in (None, "completed", "rollback_completed" if self.undo else "completed")
        if self.health:
            # Tasks of the current spec that ran before this rollout served already (a change of labels
            # or of the replica count replaces no task): their ready line is older than what is read.
            ready = ready_tasks(_log_lines(client, self.service_id, self.started_wall))
            ready |= {task["ID"] for task in running if _created(task) < self.started_wall}
            if sum(task["ID"] in ready for task in running) >= self.replicas:
                # When the read that found the last ready line ended: the app answered before then.
                self.ready_at = self.ready_at or time.monotonic()
                return True
            if time.monotonic() - self.started > self.boot_timeout:
                raise DeployError(f"the new tasks did not answer on {self.health} within {self.boot_timeout} s "
                                  "(boot_timeout)",
                                  swarm.logs(client, self.service_id))
            return False
        if len(running) < self.replicas:
            self.running_since = None
            return False
        self.running_since = self.running_since or now
        return now - self.running_since >= SETTLE_SECONDS

    @property
    def started_wall(self) -> float:
        return time.time() - (time.monotonic() - self.since) - 1


def wait_serving(client, watches: list[_Watch], timeout: int, guards: list[_Watch] = ()) -> dict[str, DeployError]:
    """Wait for every watched service at once; the ones that failed, by name (empty: all serve).

    ``guards`` (services that served already) are watched meanwhile too: one whose tasks die fails the wait.
    """
    deadline = time.monotonic() + timeout
    pending, failed = list(watches), {}
    while pending:
        now = time.monotonic()
        for watch in list(pending) + list(guards):
            try:
                if watch.done(client, now) and watch in pending:
                    pending.remove(watch)
            except DeployError as exc:
                failed[watch.name] = exc
                if watch in pending:
                    pending.remove(watch)
        if failed:
            break
        if pending and now > deadline:
            for watch in pending:
                failed[watch.name] = DeployError(f"the service did not get {watch.replicas} serving task(s) "
                                                 f"within {timeout} s", swarm.logs(client, watch.service_id))
            break
        if pending:
            time.sleep(0.2)
    return failed


def remove_surges(client, app_label: str) -> None:
    """The surge services of an app (left by an interrupted rollout too)."""
    for surge in client.api.services(filters={"label": [f"{Label.APP}={app_label}", Label.SURGE]}):
        swarm.remove(client, surge["ID"])


def rollout(client, app: str, changes: list[tuple[dict | None, dict]], timeout: int) -> None:
    """Apply ``changes`` ((current service or None, new spec) of one app's processes) all or none.

    Web services that already serve get a surge first (see SURGE_SUFFIX); a surge that does not
    serve fails the rollout before any service changed. Then every change is applied and watched
    at once; when one fails, every service goes back to its previous spec (one release for the
    whole app), created ones are removed, and DeployError says which failed and why. Returns once
    the edge can no longer send a new request to an old task (EDGE_FORGET_SECONDS).
    """
    remove_surges(client, app)
    updated_at = time.monotonic()
    for current, spec in changes:
        # A restart counter, not a setting (state=restarted, the controller's restarts): kept, so that a
        # later change of labels or replicas replaces no task.
        if current is not None and "ForceUpdate" not in spec["TaskTemplate"]:
            spec["TaskTemplate"]["ForceUpdate"] = current["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
    # Only where tasks are replaced: a change of labels (domains) or of the replica count keeps them.
    replaced = [(current, spec) for current, spec in changes if current is not None
                and not swarm.same_tasks(client, current["Spec"]["TaskTemplate"], spec["TaskTemplate"])]
    surges = [surge_spec(spec) for current, spec in replaced
              if health_path_of(spec) and replicas_of(spec, 1) > 0 and replicas_of(current["Spec"])]
    try:
        started = time.monotonic()
        watches = [_Watch(spec["Name"], _create(client, spec), spec, started) for spec in surges]
        failed = wait_serving(client, watches, timeout)
        if watches and not failed:
            failed = _keep_running(client, watches, _handover(watches))
        if failed:
            raise _failure(failed)
        started = updated_at = time.monotonic()
        applied = []
        for current, spec in changes:
            if current is None:
                applied.append((None, _create(client, spec), spec))
            else:
                swarm.replace(client, current, spec)
                applied.append((current, current["ID"], spec))
        # The surge's tasks, which served first, must keep running meanwhile: a release that answers,
        # then dies within seconds, fails here.
        fresh = [_Watch(spec["Name"], service_id, spec, started) for _current, service_id, spec in applied]
        failed = wait_serving(client, fresh, timeout, guards=watches)
        # The old tasks left Docker's DNS when Swarm stopped them (at the update); the edge forgets them
        # EDGE_FORGET_SECONDS later. The surge leaves it next (finally), once the edge takes the new tasks
        # (_handover). Meanwhile the new tasks (the surge's too, which serve on) must keep running: a
        # release that answers, then dies within seconds, fails here, not after the run.
        if not failed and replaced:
            until = max(updated_at + EDGE_FORGET_SECONDS, _handover(fresh) if watches else 0)
            failed = _keep_running(client, fresh + watches, until)
        if failed:
            _undo(client, applied, timeout, updated_at)
            raise _failure(failed)
    finally:
        remove_surges(client, app)


def _handover(watches: list[_Watch]) -> float:
    """When (monotonic) the edge takes requests to every watched service's tasks, which answer already:
    from then on what they replace may leave Docker's DNS (see EDGE_HANDOVER_SECONDS)."""
    now = time.monotonic()
    return max((watch.ready_at or now for watch in watches if watch.health), default=now) + EDGE_HANDOVER_SECONDS


def _keep_running(client, watches: list[_Watch], until: float) -> dict[str, DeployError]:
    """Watch services that serve until ``until`` (monotonic); the ones whose new tasks died, by name."""
    failed = {}
    while not failed and time.monotonic() < until:
        for watch in watches:
            try:
                watch.done(client, time.monotonic())
            except DeployError as exc:
                failed[watch.name] = exc
        time.sleep(0.2)
    return failed


def _failure(failed: dict[str, DeployError]) -> DeployError:
    first = next(iter(failed.values()))
    return DeployError("; ".join(f"{name}: {exc}" for name, exc in failed.items()) + ". The new release was rolled "
                       "back: every process is back on the previous release, which keeps serving", first.log)


def _undo(client, applied: list, timeout: int, since: float) -> None:
    """Put back what a rollout started at ``since`` (monotonic) applied, and wait until it serves again."""
    restored = []  # (service, whether Swarm's own rollback put it back)
    for current, service_id, _spec in applied:
        with contextlib.suppress(NotFound):
            if current is None:
                swarm.remove(client, service_id)
            else:
                restored.append((current, not restore(client, service_id, current["Spec"])))
    # Waited for either way: after Swarm's rollback too, the previous release's tasks may still be starting.
    # Only a service Swarm rolled back may show its rollback states; one this run put back must not
    # (Swarm rolling that update back would mean the new release again).
    started = time.monotonic()
    failed = wait_serving(client, [_Watch(c["Spec"]["Name"], c["ID"], c["Spec"], started, since=since, undo=by_swarm)
                                   for c, by_swarm in restored], timeout)
    if failed:
        raise DeployError("putting the previous release back failed too: "
                          + "; ".join(f"{name}: {exc}" for name, exc in failed.items()),
                          next(iter(failed.values())).log)


def run_release(client, app: str, stack: str, command: str, image: str, secrets: list[dict],
                release: int, timeout: int, name: str = "") -> tuple[list[str], str]:
    """Run the Procfile's release command once from the new image; returns its log and the host name
    of the node it ran on.

    A Swarm job (not a container) so that it runs on any node that can reach the stack network,
    with the same environment as the app. Raises DeployError when it fails (its ``node`` set).
    """
    service = start_release(client, app, stack, command, image, secrets, release, name)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if release_finished(client, service, command):
                return swarm.logs(client, service, 200), job_node(client, service)
            time.sleep(0.2)
        raise ReleaseFailed(command, f"did not finish within {timeout} s", swarm.logs(client, service))
    except DeployError as exc:
        exc.node = job_node(client, service)
        raise
    finally:
        remove_job(client, service)


def job_node(client, service_id: str) -> str:
    """The host name of the node a one-off job's task ran on ('' when it never got one, or the node is
    gone: only for a log line)."""
    try:
        tasks = swarm.tasks(client, service_id)
        node = next((task["NodeID"] for task in tasks if task.get("NodeID")), "")
        return client.api.inspect_node(node)["Description"]["Hostname"] if node else ""
    except docker_errors.APIError:
        return ""


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
        image, command=["sleep", str(timeout)], labels={Label.APP: app, Label.JOB: "release"},
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
        raise ReleaseFailed(command, f"failed (exit code {code})", log[-30:])
    return log


def release_jobs(client, app: str) -> list[dict]:
    """The app's release jobs (qoddi_app's and the controller's), by the label start_release gives them."""
    return client.api.services(filters={"label": [f"{Label.APP}={app}", f"{Label.JOB}=release"]})


def _release_containers_running(client, app: str) -> list[str]:
    """The app's release containers (run_release_beside) whose command still runs; the others, left by
    a run that was killed, are removed."""
    running = []
    for found in client.api.containers(all=True, filters={"label": [f"{Label.APP}={app}", f"{Label.JOB}=release"]}):
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
        labels={Label.APP: app, Label.JOB: "release"},
        # As the API spells it: the controller's SDK (Debian 12's docker 5.0) has no job modes.
        mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    )["ID"]


def release_finished(client, service_id: str, command: str) -> bool:
    """True once the release job completed, False while it runs; DeployError (with its log) if it failed."""
    states = [task["Status"] for task in swarm.tasks(client, service_id)]
    if any(state["State"] == "complete" for state in states):
        return True
    failed = [state for state in states if state["State"] in ("failed", "rejected", "shutdown")]
    if failed:
        raise ReleaseFailed(command, f"failed ({failed[0].get('Err', 'non-zero exit')})",
                            swarm.logs(client, service_id))
    return False
