# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one way the platform runs a Swarm service: a plain spec, what differs from the running one,
create or update, wait until it converged, its logs, its removal.

``ServiceSpec`` holds every setting the platform decides, with one name each. ``engine_spec`` turns
it into the Engine API's ServiceSpec, and ``observe`` reads a running service back into a
``ServiceSpec``, so that ``differences`` compares setting by setting what runs with what is wanted
and names each change ("image", "replicas", "labels.org.qoddi.links", "env.DEBUG"). The running
service is the record: a change made by hand shows as a difference too, and no digest label is kept.

Values of ``env`` are never shown in a difference (keys only); config vars are Swarm secrets, of
which a difference shows the secret's name (a version), never a value.

This file imports nothing from Ansible and no Docker SDK type (the Engine API's JSON is passed as
is), so the controller can ship it as it ships _env and _deploy, with any SDK version.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, NamedTuple

try:
    from docker.errors import APIError, NotFound
except ImportError:  # pragma: no cover - the module reports the missing SDK
    APIError = NotFound = Exception

_NS = 1_000_000_000  # the Engine API counts durations in nanoseconds


class ServiceError(Exception):
    """A service that did not converge (or a job that failed), with the last lines of its tasks' log."""

    def __init__(self, message: str, log: list[str] | None = None):
        super().__init__(message)
        self.log = log or []


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    """Everything the platform decides about one Swarm service. Durations in seconds.

    ``labels``: the service's labels; the platform owns all of them (one it did not ask for is a
    difference, and goes at the next update). ``secrets``: SecretReferences as the Engine API spells
    them (see _env.references). ``mounts``: ``{"type", "source", "target", "labels"}`` each.
    ``health``: ``{"test", "interval", "timeout", "retries", "start_period"}``, or None for none.
    ``update``/``rollback``: ``{"parallelism", "delay", "order", "failure_action", "monitor",
    "max_failure_ratio"}``, or None for Swarm's defaults (then not compared: Swarm fills them in).
    ``mode``: ``replicated`` (``replicas`` tasks) or ``replicated-job`` (runs ``replicas`` times).
    """

    name: str
    image: str
    labels: dict = dataclasses.field(default_factory=dict)
    command: tuple | None = None
    args: tuple | None = None
    env: dict = dataclasses.field(default_factory=dict)
    user: str | None = None
    container_labels: dict = dataclasses.field(default_factory=dict)
    secrets: tuple = ()
    mounts: tuple = ()
    health: dict | None = None
    stop_grace: float = 10.0
    cpus: float | None = None
    memory_mb: int | None = None
    restart: str = "any"
    restart_delay: float = 5.0
    constraints: tuple = ()
    networks: tuple = ()
    mode: str = "replicated"
    replicas: int = 1
    update: dict | None = None
    rollback: dict | None = None
    endpoint_mode: str = "dnsrr"


# ----- the Engine API's form, both ways ----------------------------------------------------------
def _ns(seconds: float) -> int:
    return int(round(seconds * _NS))


def _seconds(ns: int | None) -> float:
    return (ns or 0) / _NS


def _update_config(config: dict) -> dict:
    return {"Parallelism": config.get("parallelism", 1), "Delay": _ns(config.get("delay", 0)),
            "Order": config.get("order", "stop-first"), "FailureAction": config.get("failure_action", "pause"),
            "Monitor": _ns(config.get("monitor", 5)), "MaxFailureRatio": config.get("max_failure_ratio", 0)}


def _update_settings(config: dict | None) -> dict | None:
    if config is None:
        return None
    return {"parallelism": config.get("Parallelism", 0), "delay": _seconds(config.get("Delay")),
            "order": config.get("Order", "stop-first"), "failure_action": config.get("FailureAction", "pause"),
            "monitor": _seconds(config.get("Monitor")), "max_failure_ratio": config.get("MaxFailureRatio", 0)}


def engine_spec(spec: ServiceSpec) -> dict:
    """The Engine API's ServiceSpec of ``spec`` (what ``docker service inspect`` shows under Spec)."""
    container: dict[str, Any] = {"Image": spec.image, "Labels": dict(spec.container_labels),
                                 "StopGracePeriod": _ns(spec.stop_grace)}
    if spec.command is not None:
        container["Command"] = list(spec.command)
    if spec.args is not None:
        container["Args"] = list(spec.args)
    if spec.env:
        container["Env"] = [f"{key}={value}" for key, value in spec.env.items()]
    if spec.user:
        container["User"] = spec.user
    if spec.secrets:
        container["Secrets"] = [dict(ref) for ref in spec.secrets]
    if spec.mounts:
        container["Mounts"] = [{"Type": mount["type"], "Source": mount["source"], "Target": mount["target"],
                                "VolumeOptions": {"Labels": dict(mount.get("labels") or {})}}
                               for mount in spec.mounts]
    if spec.health:
        container["Healthcheck"] = {"Test": list(spec.health["test"]), "Interval": _ns(spec.health["interval"]),
                                    "Timeout": _ns(spec.health["timeout"]), "Retries": spec.health["retries"],
                                    "StartPeriod": _ns(spec.health["start_period"])}
    template: dict[str, Any] = {
        "ContainerSpec": container,
        "RestartPolicy": {"Condition": spec.restart, "Delay": _ns(spec.restart_delay)},
        "Networks": [{"Target": network} for network in spec.networks],
    }
    if spec.constraints:
        template["Placement"] = {"Constraints": list(spec.constraints)}
    if spec.cpus is not None or spec.memory_mb is not None:
        limits: dict[str, int] = {}
        if spec.cpus is not None:
            limits["NanoCPUs"] = int(spec.cpus * _NS)
        resources: dict[str, Any] = {"Limits": limits}
        if spec.memory_mb is not None:
            limits["MemoryBytes"] = spec.memory_mb * 1024 * 1024
            # A quarter reserved: the scheduler keeps room for a task's usual need, not its peak.
            resources["Reservations"] = {"MemoryBytes": limits["MemoryBytes"] // 4}
        template["Resources"] = resources
    if spec.mode == "replicated-job":
        mode = {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": spec.replicas}}
    else:
        mode = {"Replicated": {"Replicas": spec.replicas}}
    result = {"Name": spec.name, "Labels": dict(spec.labels), "TaskTemplate": template, "Mode": mode,
              "EndpointSpec": {"Mode": spec.endpoint_mode}}
    if spec.update is not None:
        result["UpdateConfig"] = _update_config(spec.update)
    if spec.rollback is not None:
        result["RollbackConfig"] = _update_config(spec.rollback)
    return result


def observe_spec(spec: dict, network_names: dict[str, str] | None = None) -> ServiceSpec:
    """The ``ServiceSpec`` of a service's Engine API Spec (the inverse of ``engine_spec``).

    Swarm stores networks by id: ``network_names`` maps them back ({id: name}); an id it lacks stays.
    """
    template = spec.get("TaskTemplate") or {}
    container = template.get("ContainerSpec") or {}
    limits = (template.get("Resources") or {}).get("Limits") or {}
    health = container.get("Healthcheck")
    restart = template.get("RestartPolicy") or {}
    mode = spec.get("Mode") or {}
    names = network_names or {}
    return ServiceSpec(
        name=spec["Name"],
        image=container.get("Image", "").split("@")[0],  # a digest the CLI pinned is not a setting
        labels=dict(spec.get("Labels") or {}),
        command=tuple(container["Command"]) if "Command" in container else None,
        args=tuple(container["Args"]) if "Args" in container else None,
        env=dict(item.split("=", 1) for item in container.get("Env") or [] if "=" in item),
        user=container.get("User") or None,
        container_labels=dict(container.get("Labels") or {}),
        secrets=tuple(container.get("Secrets") or ()),
        mounts=tuple({"type": mount.get("Type", "volume"), "source": mount.get("Source", ""),
                      "target": mount["Target"], "labels": (mount.get("VolumeOptions") or {}).get("Labels") or {}}
                     for mount in container.get("Mounts") or ()),
        health=None if not health else {
            "test": tuple(health.get("Test") or ()), "interval": _seconds(health.get("Interval")),
            "timeout": _seconds(health.get("Timeout")), "retries": health.get("Retries", 0),
            "start_period": _seconds(health.get("StartPeriod"))},
        stop_grace=_seconds(container.get("StopGracePeriod")),
        cpus=limits["NanoCPUs"] / _NS if "NanoCPUs" in limits else None,
        memory_mb=limits["MemoryBytes"] // (1024 * 1024) if "MemoryBytes" in limits else None,
        restart=restart.get("Condition", "any"),
        restart_delay=_seconds(restart.get("Delay")),
        constraints=tuple((template.get("Placement") or {}).get("Constraints") or ()),
        networks=tuple(names.get(net["Target"], net["Target"]) for net in template.get("Networks") or ()),
        mode="replicated-job" if "ReplicatedJob" in mode else "replicated",
        replicas=(mode.get("ReplicatedJob") or {}).get("TotalCompletions", 1) if "ReplicatedJob" in mode
        else (mode.get("Replicated") or {}).get("Replicas", 0),
        update=_update_settings(spec.get("UpdateConfig")),
        rollback=_update_settings(spec.get("RollbackConfig")),
        endpoint_mode=(spec.get("EndpointSpec") or {}).get("Mode", "vip"),
    )


# ----- what differs ------------------------------------------------------------------------------
class Difference(NamedTuple):
    """One setting that differs: its name (``image``, ``env.DEBUG``, ``labels.org.qoddi.links``,
    ``secrets.qoddi-env/KEY``), and its value running (``before``) and wanted (``after``); None: absent."""

    setting: str
    before: Any
    after: Any


# What a difference shows of a value it must not show: whether it is there, and that it changes.
A_VALUE, ANOTHER_VALUE = "(a value)", "(another value)"
_PER_KEY = ("labels", "container_labels", "health", "update", "rollback")
# Swarm fills these in when the spec leaves them out: compared only when the spec sets them.
_ENGINE_DEFAULTS = ("update", "rollback")


def _hidden(before: dict, after: dict) -> list[Difference]:
    # A value, even a "non-secret" one, is never shown: users put tokens where they should not.
    return [Difference(f"env.{key}", A_VALUE if key in before else None,
                       (ANOTHER_VALUE if key in before else A_VALUE) if key in after else None)
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def _secret_files(refs) -> dict[str, dict]:
    return {ref["File"]["Name"]: ref for ref in refs}


def _secret_text(ref: dict | None) -> str | None:
    if ref is None:
        return None
    file = ref["File"]
    return f"{ref['SecretName']} (uid {file.get('UID')}, gid {file.get('GID')}, mode {oct(file.get('Mode', 0))})"


def _per_key(setting: str, before: dict | None, after: dict | None) -> list[Difference]:
    if before is None or after is None:
        return [] if before == after else [Difference(setting, before, after)]
    return [Difference(f"{setting}.{key}", before.get(key), after.get(key))
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]


def differences(current: ServiceSpec | None, desired: ServiceSpec) -> list[Difference]:
    """What must change for ``current`` (None: no such service) to become ``desired``, setting by setting."""
    if current is None:
        return [Difference("service", None, desired.name)]
    # Through the engine's form and back: the same defaults, units and types as what is observed.
    desired = observe_spec(engine_spec(desired))
    found: list[Difference] = []
    for field in dataclasses.fields(ServiceSpec):
        before, after = getattr(current, field.name), getattr(desired, field.name)
        if field.name in _ENGINE_DEFAULTS and after is None:
            continue
        if field.name == "env":
            found += _hidden(before, after)
        elif field.name == "secrets":
            was, wanted = _secret_files(before), _secret_files(after)
            found += [Difference(f"secrets.{file}", _secret_text(was.get(file)), _secret_text(wanted.get(file)))
                      for file in sorted(set(was) | set(wanted))
                      if _secret_text(was.get(file)) != _secret_text(wanted.get(file))]
        elif field.name == "mounts":
            was = {mount["target"]: mount for mount in before}
            wanted = {mount["target"]: mount for mount in after}
            found += [Difference(f"mounts.{target}", was.get(target), wanted.get(target))
                      for target in sorted(set(was) | set(wanted)) if was.get(target) != wanted.get(target)]
        elif field.name in _PER_KEY:
            found += _per_key(field.name, before, after)
        elif before != after:
            found.append(Difference(field.name, before, after))
    return found


def changed_settings(found: list[Difference]) -> list[str]:
    """The names of the changed settings, for a module's result."""
    return [difference.setting for difference in found]


def as_diff(found: list[Difference], prefix: str = "") -> dict:
    """Ansible's diff (``before``/``after``) of the differences, keyed by setting."""
    return {"before": {prefix + d.setting: _plain(d.before) for d in found},
            "after": {prefix + d.setting: _plain(d.after) for d in found}}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# ----- the engine --------------------------------------------------------------------------------
def find(client, name: str) -> dict | None:
    """The service called exactly ``name`` (the engine's name filter matches prefixes too)."""
    return next((s for s in client.api.services(filters={"name": name}) if s["Spec"]["Name"] == name), None)


def observe(client, service: dict) -> ServiceSpec:
    """The ``ServiceSpec`` a service runs with (one engine call, for its networks' names)."""
    ids = [net["Target"] for net in service["Spec"].get("TaskTemplate", {}).get("Networks") or []]
    names = {net["Id"]: net["Name"] for net in client.api.networks(ids=ids)} if ids else {}
    return observe_spec(service["Spec"], names)


def replace(client, service: dict, spec: dict) -> None:
    """Give ``service`` the Engine API Spec ``spec`` (the whole of it: the API replaces, it does not merge).

    ``service`` may be seconds old (a build ran since it was read): Swarm moves a service's version on
    when its orchestrator changes the update status (an earlier update completing, its own rollback),
    and refuses an update of an older version as "out of sequence". Then the service is read again and
    the update made on it: the caller holds the app's lock, so no one else changed its settings.
    """
    for attempt in range(5):
        try:
            client.api.update_service(
                service["ID"], version=service["Version"]["Index"], task_template=spec["TaskTemplate"],
                name=spec["Name"], labels=spec.get("Labels"), mode=spec.get("Mode"),
                update_config=spec.get("UpdateConfig"), rollback_config=spec.get("RollbackConfig"),
                endpoint_spec=spec.get("EndpointSpec"))
            return
        except APIError as exc:
            if "out of sequence" not in str(exc) or attempt == 4:
                raise
            service = client.api.inspect_service(service["ID"])


def apply(client, desired: ServiceSpec, service: dict | None) -> str:
    """Create the service, or update ``service`` (its inspect) to ``desired``; returns its id."""
    spec = engine_spec(desired)
    if service is None:
        return client.api.create_service(
            task_template=spec["TaskTemplate"], name=spec["Name"], labels=spec["Labels"], mode=spec["Mode"],
            update_config=spec.get("UpdateConfig"), rollback_config=spec.get("RollbackConfig"),
            endpoint_spec=spec["EndpointSpec"])["ID"]
    # A restart counter, not a setting: kept, so that a change of labels alone restarts no task.
    spec["TaskTemplate"]["ForceUpdate"] = service["Spec"].get("TaskTemplate", {}).get("ForceUpdate", 0)
    replace(client, service, spec)
    return service["ID"]


def forced(spec: dict) -> dict:
    """A copy of the Engine API Spec ``spec`` with which Swarm replaces every task, nothing else changed."""
    template = dict(spec["TaskTemplate"], ForceUpdate=int(spec["TaskTemplate"].get("ForceUpdate", 0)) + 1)
    return dict(spec, TaskTemplate=template)


def restart(client, service: dict) -> None:
    """Replace every task of ``service`` (a rolling restart), changing nothing else."""
    replace(client, service, forced(service["Spec"]))


def remove(client, service_id: str) -> bool:
    """Remove the service; False when it was gone already."""
    try:
        client.api.remove_service(service_id)
    except NotFound:
        return False
    return True


def tasks(client, service_id: str) -> list[dict]:
    return client.api.tasks(filters={"service": service_id})


def remove_secrets(client, ids: list[str]) -> list[str]:
    """Remove the secrets; those still in use after 10 s are returned (a job's tasks let go of them a
    moment after the job is gone)."""
    deadline = time.monotonic() + 10
    while ids:
        ids = [i for i in ids if not _removed(client, i)]
        if not ids or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return ids


def _removed(client, secret_id: str) -> bool:
    try:
        client.api.remove_secret(secret_id)
        return True
    except Exception:  # noqa: BLE001 - still in use, or gone already: the caller tries again or says so
        return False


def logs(client, service_id: str, lines: int = 30) -> list[str]:
    """The last ``lines`` lines its tasks wrote (empty when the engine cannot say)."""
    try:
        raw = client.api.service_logs(service_id, stdout=True, stderr=True, tail=lines)
        return b"".join(raw).decode(errors="replace").splitlines()[-lines:]
    except Exception:  # noqa: BLE001 - logs are a courtesy on the way to an error message
        return []


# What Swarm writes into a stored task template that a spec sent without it means too.
_TEMPLATE_DEFAULTS = {"Isolation": "default", "Runtime": "container"}


def _pruned(value):
    """``value`` without empty settings ({}, [], None) and Swarm's defaults, at every depth."""
    if isinstance(value, dict):
        pruned = {key: _pruned(item) for key, item in value.items() if _TEMPLATE_DEFAULTS.get(key) != item}
        return {key: item for key, item in pruned.items() if item not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def same_tasks(client, stored: dict, template: dict) -> bool:
    """Whether giving a service the task template ``template`` would leave its tasks running.

    ``stored`` is the template as the engine returns it: Swarm fills in defaults and stores
    networks by id, so comparing the two as they are would replace tasks for a change of labels.
    """
    names = [net["Target"] for net in template.get("Networks") or []]
    ids = {net["Name"]: net["Id"] for net in client.api.networks(names=names)} if names else {}
    template = dict(template, Networks=[dict(net, Target=ids.get(net["Target"], net["Target"]))
                                        for net in template.get("Networks") or []])
    return _pruned(stored) == _pruned(template)


def of_template(task: dict, template: dict) -> bool:
    """Whether a task runs the service's current task template (Swarm adds Runtime to tasks)."""
    spec = task.get("Spec") or {}
    return all(spec.get(key) == template.get(key) for key in (set(spec) | set(template)) - {"Runtime"})


_ROLLED_BACK = ("rollback_started", "rollback_completed", "rollback_paused", "paused")


def wait_converged(client, service_id: str, replicas: int, timeout: float, updated: bool = True,
                   settle: float = 0) -> None:
    """Wait until the service runs ``replicas`` tasks of its current spec (healthy, when it has a
    health check: Swarm reports a task running only once healthy).

    ``updated``: the spec was just changed, so Swarm's update must complete too. A rolled-back update,
    or tasks that keep failing, raise ServiceError. ``settle``: Swarm watches a new task for its
    update ``monitor`` only, so one that exits later would pass; it must then run ``settle`` seconds
    more without any task of the new spec ending.
    """
    deadline = time.monotonic() + timeout
    ready_since = None
    while time.monotonic() < deadline:
        service = client.api.inspect_service(service_id)
        status = (service.get("UpdateStatus") or {}).get("State")
        if status in _ROLLED_BACK:
            message = (service.get("UpdateStatus") or {}).get("Message", "")
            _await_rollback(client, service_id, deadline)
            raise ServiceError(f"the update did not become healthy and was rolled back ({message})",
                               logs(client, service_id))
        template = service["Spec"]["TaskTemplate"]
        current = tasks(client, service_id)
        fresh = [task for task in current if task["Status"]["State"] == "running"
                 and task.get("DesiredState") == "running" and of_template(task, template)]
        if settle:
            ended = [task for task in current if of_template(task, template)
                     and task["Status"]["State"] in ("failed", "rejected", "complete")]
            if ended:
                raise ServiceError(f"the new tasks do not keep running ({ended[0]['Status'].get('Err') or 'exit 0'}); "
                                   "the task log says why", logs(client, service_id))
        if (not updated or status in (None, "completed")) and len(fresh) >= replicas:
            ready_since = ready_since or time.monotonic()
            if time.monotonic() - ready_since >= settle:
                return
        else:
            ready_since = None
        if not updated:
            failed = [task for task in current if task["Status"]["State"] in ("failed", "rejected")]
            if len(failed) >= 3:
                raise ServiceError("the tasks keep failing: " + failed[0]["Status"].get("Err", ""),
                                   logs(client, service_id))
        time.sleep(0.5)
    raise ServiceError(f"the service did not get {replicas} healthy task(s) within {timeout} s",
                       logs(client, service_id))


def _await_rollback(client, service_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if (client.api.inspect_service(service_id).get("UpdateStatus") or {}).get("State") != "rollback_started":
            return
        time.sleep(0.5)


def job_finished(client, service_id: str) -> bool:
    """True once a job's task completed, False while it runs; ServiceError (with its log) when it failed."""
    states = [task["Status"] for task in tasks(client, service_id)]
    if any(state["State"] == "complete" for state in states):
        return True
    failed = [state for state in states if state["State"] in ("failed", "rejected", "shutdown")]
    if failed:
        raise ServiceError(failed[0].get("Err") or "non-zero exit", logs(client, service_id))
    return False
