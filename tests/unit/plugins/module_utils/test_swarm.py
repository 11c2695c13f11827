# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import dataclasses
import json

from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm

SECRET = {"File": {"Name": "qoddi-env/TOKEN", "UID": "10001", "GID": "0", "Mode": 0o400},
          "SecretID": "abc", "SecretName": "qoddi-env-blog-3"}


def web(**changes) -> swarm.ServiceSpec:
    spec = swarm.ServiceSpec(
        name="blog", image="qoddi-app/blog:r3", labels={"org.qoddi.app": "blog", "org.qoddi.release": "3"},
        command=("bash", "-c", "gunicorn app"), env={"PORT": "5000", "DEBUG": "0"},
        container_labels={"org.qoddi.app": "blog"}, secrets=(SECRET,),
        health={"test": ["CMD", "true"], "interval": 0.5, "timeout": 3, "retries": 3, "start_period": 60},
        stop_grace=40, cpus=0.5, memory_mb=512, restart_delay=1, networks=("qoddi-main", "qoddi--edge"),
        replicas=2, update={"parallelism": 0, "order": "start-first", "failure_action": "rollback", "monitor": 1},
        rollback={"parallelism": 0, "order": "start-first", "monitor": 1})
    return dataclasses.replace(spec, **changes)


def running(spec: swarm.ServiceSpec) -> swarm.ServiceSpec:
    """What the engine gives back: networks by id, Swarm's own additions."""
    engine = swarm.engine_spec(spec)
    networks = engine["TaskTemplate"]["Networks"]
    engine["TaskTemplate"]["Networks"] = [{"Target": "id-" + net["Target"]} for net in networks]
    engine["TaskTemplate"].update(ForceUpdate=2, Runtime="container")
    engine["TaskTemplate"]["ContainerSpec"].update(Isolation="default", DNSConfig={})
    engine["TaskTemplate"]["RestartPolicy"].update(MaxAttempts=0, Window=0)
    return swarm.observe_spec(engine, {"id-" + name: name for name in spec.networks})


def test_what_runs_as_wanted_has_no_difference():
    assert swarm.differences(running(web()), web()) == []


def test_each_changed_setting_is_named_with_before_and_after():
    found = swarm.differences(running(web()), web(image="qoddi-app/blog:r4", replicas=3,
                                                  labels={"org.qoddi.app": "blog", "org.qoddi.release": "4"}))
    assert found == [
        swarm.Difference("image", "qoddi-app/blog:r3", "qoddi-app/blog:r4"),
        swarm.Difference("labels.org.qoddi.release", "3", "4"),
        swarm.Difference("replicas", 2, 3),
    ]
    assert swarm.changed_settings(found) == ["image", "labels.org.qoddi.release", "replicas"]
    assert swarm.as_diff(found)["after"]["replicas"] == 3


def test_env_values_are_never_shown():
    found = swarm.differences(running(web()), web(env={"PORT": "5000", "DEBUG": "1", "TOKEN": "hunter2"}))
    assert found == [swarm.Difference("env.DEBUG", "(a value)", "(another value)"),
                     swarm.Difference("env.TOKEN", None, "(a value)")]
    assert "hunter2" not in repr(swarm.as_diff(found))


def test_a_config_var_shows_as_its_secret_version_never_its_value():
    newer = dict(SECRET, SecretID="def", SecretName="qoddi-env-blog-7")
    found = swarm.differences(running(web()), web(secrets=(newer,)))
    assert [(d.setting, d.before.split()[0], d.after.split()[0]) for d in found] == [
        ("secrets.qoddi-env/TOKEN", "qoddi-env-blog-3", "qoddi-env-blog-7")]


def test_dict_settings_name_the_key_that_changed():
    found = swarm.differences(running(web()), web(update={"parallelism": 0, "order": "stop-first",
                                                          "failure_action": "rollback", "monitor": 1}))
    assert found == [swarm.Difference("update.order", "start-first", "stop-first")]


def test_a_label_nobody_asked_for_is_a_difference():
    current = dataclasses.replace(running(web()), labels={"org.qoddi.app": "blog", "org.qoddi.release": "3",
                                                          "by-hand": "x"})
    assert swarm.differences(current, web()) == [swarm.Difference("labels.by-hand", "x", None)]


def test_swarm_defaults_are_not_differences_unless_asked_for():
    current = running(web(rollback=None))
    current = dataclasses.replace(current, rollback={"parallelism": 1, "delay": 0.0, "order": "stop-first",
                                                     "failure_action": "pause", "monitor": 5.0,
                                                     "max_failure_ratio": 0})
    assert swarm.differences(current, web(rollback=None)) == []


def test_health_removed_or_added_is_one_difference():
    assert [d.setting for d in swarm.differences(running(web()), web(health=None))] == ["health"]
    assert [d.setting for d in swarm.differences(running(web(health=None)), web())] == ["health"]


def test_a_missing_service_is_to_be_created():
    assert swarm.differences(None, web()) == [swarm.Difference("service", None, "blog")]


def test_the_engine_form_round_trips():
    spec = web(mounts=({"type": "volume", "source": "data", "target": "/data", "labels": {"a": "b"}},),
               constraints=("node.id==n1",), user="0", args=("x",))
    assert swarm.differences(swarm.observe_spec(swarm.engine_spec(spec)), spec) == []
    engine = swarm.engine_spec(spec)
    assert engine["TaskTemplate"]["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 512 << 20},
                                                   "Reservations": {"MemoryBytes": 128 << 20}}
    assert engine["TaskTemplate"]["ContainerSpec"]["Env"] == ["PORT=5000", "DEBUG=0"]


def test_a_job_runs_its_completions():
    job = swarm.ServiceSpec(name="blog--release-3", image="i", mode="replicated-job", restart="none")
    assert swarm.engine_spec(job)["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert swarm.observe_spec(swarm.engine_spec(job)).mode == "replicated-job"


class FakeApi:
    def __init__(self, services):
        self._services = services
        self.updates = []

    def services(self, filters):
        return [s for s in self._services if s["Spec"]["Name"].startswith(filters["name"])]

    def update_service(self, service_id, version, **spec):
        self.updates.append((service_id, version, spec))


class FakeClient:
    def __init__(self, services=()):
        self.api = FakeApi(list(services))


def test_find_takes_the_exact_name_only():
    spec = swarm.engine_spec(web(name="blog-2"))
    client = FakeClient([{"ID": "1", "Spec": spec}])
    assert swarm.find(client, "blog") is None
    assert swarm.find(client, "blog-2")["ID"] == "1"


def test_an_update_keeps_the_restart_counter_and_a_restart_bumps_it():
    engine = swarm.engine_spec(web())
    engine["TaskTemplate"]["ForceUpdate"] = 4
    service = {"ID": "s1", "Version": {"Index": 9}, "Spec": engine}
    client = FakeClient()
    swarm.apply(client, web(replicas=3), service)
    swarm.restart(client, service)
    (first_id, version, update), (unused, unused_version, restart) = client.api.updates
    assert (first_id, version) == ("s1", 9)
    assert update["task_template"]["ForceUpdate"] == 4 and update["mode"] == {"Replicated": {"Replicas": 3}}
    assert restart["task_template"]["ForceUpdate"] == 5


class NetworksApi:
    def networks(self, names):
        return [{"Name": name, "Id": "id-" + name} for name in names]


def test_a_template_swarm_filled_in_runs_the_same_tasks_as_the_one_sent():
    """Swarm stores defaults and network ids: a change of labels alone must not count as new tasks."""
    from docker import types

    sent = json.loads(json.dumps(types.TaskTemplate(
        container_spec=types.ContainerSpec(image="a:r1", command=["gunicorn"], env=["X=1"]),
        restart_policy=types.RestartPolicy(condition="any", delay=1_000_000_000),
        networks=[types.NetworkAttachmentConfig("qoddi-edge")])))
    sent["ForceUpdate"] = 2
    stored = {  # as inspect_service returned it for such a template (engine 20.10)
        "ContainerSpec": {"Image": "a:r1", "Command": ["gunicorn"], "Env": ["X=1"], "DNSConfig": {},
                          "Isolation": "default"},
        "RestartPolicy": {"Condition": "any", "Delay": 1_000_000_000, "MaxAttempts": 0, "Window": 0},
        "Placement": {}, "Networks": [{"Target": "id-qoddi-edge"}], "ForceUpdate": 2, "Runtime": "container"}
    client = type("Client", (), {"api": NetworksApi()})()
    assert swarm.same_tasks(client, stored, sent)
    assert not swarm.same_tasks(client, stored, dict(sent, ForceUpdate=3))
    changed = json.loads(json.dumps(sent))
    changed["ContainerSpec"]["Env"] = ["X=2"]
    assert not swarm.same_tasks(client, stored, changed)
    changed["ContainerSpec"]["Env"], changed["Networks"] = ["X=1"], [{"Target": "qoddi-other"}]
    assert not swarm.same_tasks(client, stored, changed)


def test_an_update_of_a_service_read_before_swarm_moved_its_version_on_is_made_again_on_a_fresh_read():
    """Swarm moves the version on when an earlier update completes or its own rollback runs."""
    from docker.errors import APIError

    class Api:
        def __init__(self):
            self.version, self.updates = 8, []

        def inspect_service(self, service_id):
            return {"ID": service_id, "Version": {"Index": self.version}, "Spec": {}}

        def update_service(self, service_id, version, **spec):
            self.updates.append(version)
            if version != self.version:
                raise APIError("500 Server Error: rpc error: code = Unknown desc = update out of sequence")

    client = type("Client", (), {"api": Api()})()
    swarm.replace(client, {"ID": "s1", "Version": {"Index": 7}}, {"Name": "blog", "TaskTemplate": {}})
    assert client.api.updates == [7, 8]
