# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _edge as edge
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm


@pytest.mark.parametrize(("size", "workers"), [("XS", 1), ("S", 2), ("M", 3), ("L", 5), ("XL", 9)])
def test_web_concurrency_follows_herokus_rule(size, workers):
    # min(2 x CPUs + 1, memory MB / 256), with at least one CPU counted
    assert deploy.web_concurrency(size) == workers


def _desired(**overrides):
    args = dict(app="blog", stack="main", process="web", command="gunicorn blog.wsgi", image="qoddi-app/blog:r3",
                release=3, revision="abc", replicas=2, size="S", env={}, health_path="/healthz")
    args.update(overrides)
    return deploy.desired_service(**args)


def test_desired_web_service_has_port_dyno_and_release_labels():
    web = _desired()
    assert web["name"] == "blog" and web["networks"] == ["qoddi-main"]  # not the edge's: private stacks
    assert web["labels"]["org.qoddi.health"] == "/healthz" and web["labels"]["org.qoddi.domains"] == ""
    assert web["env"]["PORT"] == "5000" and web["env"]["WEB_CONCURRENCY"] == "2"
    assert web["env"]["DYNO"] == "web.{{.Task.Slot}}"
    assert web["labels"]["org.qoddi.release"] == "3"
    assert web["command"][:2] == ["bash", "-c"] and web["command"][-4:] == ["10", "gunicorn blog.wsgi", "/healthz", ""]


def test_other_processes_get_no_port_and_no_health_check():
    worker = _desired(process="worker", command="celery -A blog worker")
    assert worker["name"] == "blog--worker"
    assert "PORT" not in worker["env"] and worker["health"] is None
    assert worker["networks"] == ["qoddi-main"] and "org.qoddi.domains" not in worker["labels"]


def test_a_user_set_web_concurrency_wins():
    assert _desired(env={"WEB_CONCURRENCY": "7"})["env"]["WEB_CONCURRENCY"] == "7"


def _service(desired, replicas, secrets=(), env_seq="0", released_seq=None, **edited):
    """A service as qoddi_app made it from ``desired`` (then changed by the controller or by hand)."""
    labels = dict(desired["labels"], **{"org.qoddi.spec": deploy.spec_digest(desired), "org.qoddi.env.seq": env_seq,
                                        "org.qoddi.release.env.seq": released_seq or env_seq}, **edited)
    return {"Spec": {"Labels": labels,
                     "Mode": {"Replicated": {"Replicas": replicas}},
                     "TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretName": n} for n in secrets]}}}}


def test_differs_on_settings_and_on_replicas_scaled_elsewhere():
    desired = _desired()
    assert not deploy.differs(_service(desired, 2), desired)
    assert deploy.differs(_service(desired, 0), desired)  # stopped with state=stopped
    assert deploy.differs(_service(_desired(release=2), 2), desired)


def test_differs_on_a_label_edited_by_hand_but_not_on_others_labels():
    desired = _desired()
    assert deploy.differs(_service(desired, 2, **{"org.qoddi.health": "/health z"}), desired)
    assert deploy.differs(_service(desired, 2, **{"org.qoddi.extra": "1"}), desired)
    assert not deploy.differs(_service(desired, 2, **{"com.example.team": "blog"}), desired)


def test_config_vars_are_compared_by_version_not_by_the_settings_digest():
    desired = _desired(secrets=[{"SecretName": "qoddi-env-blog-4"}], env_seq=5)
    # The controller applied versions 4-5 without touching org.qoddi.spec: nothing left to do.
    assert not deploy.differs(_service(desired, 2, ["qoddi-env-blog-4"], "5"), desired)
    # Neither version is in the digest (the controller writes both labels without recomputing it), but
    # variables mounted without a release (state=restarted) still need this run to release.
    assert desired["labels"]["org.qoddi.release.env.seq"] == "5"
    assert deploy.spec_digest(desired) == deploy.spec_digest(_desired(secrets=[{"SecretName": "qoddi-env-blog-4"}]))
    assert deploy.differs(_service(desired, 2, ["qoddi-env-blog-4"], "5", released_seq="3"), desired)
    assert deploy.differs(_service(desired, 2, ["qoddi-env-blog-4"], "3"), desired)  # a removal pending
    assert deploy.differs(_service(desired, 2, ["qoddi-env-blog-2"], "5"), desired)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def _supervise(server_port: int, path: str, seconds: float) -> str:
    """What the supervisor of a task whose app is the test server prints within ``seconds``."""
    proc = subprocess.Popen(deploy.run_command("sleep 60", 0, path), env={"PORT": str(server_port)},
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the app and the probe too, which hold the pipe
    return proc.communicate(timeout=10)[0]


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (302, True), (400, True), (500, False), (503, False)])
def test_the_supervisor_says_ready_once_its_app_answers_below_500(server, status, healthy):
    # No Docker health check: the task's supervisor probes its own app (bash /dev/tcp), here a real server.
    out = _supervise(server, f"/{status}", 2)
    assert (deploy.READY_MARK in out) is healthy, out
    assert out.count(deploy.READY_MARK) <= 1


def test_the_supervisor_waits_while_nothing_listens():
    assert deploy.READY_MARK not in _supervise(1, "/", 1)


def test_the_probed_path_is_data_not_shell(server, tmp_path):
    marker = tmp_path / "ran"
    _supervise(server, f"/200$(touch {marker})`touch {marker}`", 1)
    assert not marker.exists()


def test_ready_lines_are_told_apart_by_task_whatever_node_ran_it():
    # service_logs(details=True, timestamps=True) through the manager: the details name node and task.
    lines = [
        "2026-11-30T09:00:00.1Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s,"
        "com.docker.swarm.task.id=t1 qoddi: ready in 812 ms",
        "2026-11-30T09:00:00.2Z com.docker.swarm.node.id=n2,com.docker.swarm.service.id=s,"
        "com.docker.swarm.task.id=t2 [INFO] Booting worker",
        "2026-11-30T09:00:00.3Z com.docker.swarm.node.id=n2,com.docker.swarm.service.id=s,"
        "com.docker.swarm.task.id=t3 echo qoddi: ready in 1 ms",  # an app's own line, not the mark
        "2026-11-30T09:00:00.4Z com.docker.swarm.node.id=n3,com.docker.swarm.service.id=s,"
        "com.docker.swarm.task.id=t4 qoddi: ready in 1200 ms",
        "garbage",
    ]
    assert deploy.ready_tasks(lines) == {"t1", "t4"}


def test_the_surge_serves_under_the_web_service_name_and_is_no_process():
    spec = deploy.service_spec(_desired())
    surge = deploy.surge_spec(spec)
    assert surge["Name"] == "blog--next"
    assert "org.qoddi.process" not in surge["Labels"] and surge["Labels"]["org.qoddi.surge"] == "blog"
    assert all(net["Aliases"] == ["blog"] for net in surge["TaskTemplate"]["Networks"])
    assert surge["TaskTemplate"]["ContainerSpec"] == spec["TaskTemplate"]["ContainerSpec"]
    assert not spec["TaskTemplate"]["Networks"][0].get("Aliases")  # the original is untouched


def test_the_boot_timeout_travels_in_a_label_only_when_it_is_not_herokus_60_s():
    assert "org.qoddi.boot-timeout" not in deploy.service_spec(_desired())["Labels"]
    assert "org.qoddi.boot-timeout" not in deploy.service_spec(_desired(boot_timeout=60))["Labels"]
    spec = deploy.service_spec(_desired(boot_timeout=180))
    assert spec["Labels"]["org.qoddi.boot-timeout"] == "180"
    assert deploy._Watch("blog", "id", spec, 0.0).boot_timeout == 180
    assert deploy._Watch("blog--next", "id", deploy.surge_spec(spec), 0.0).boot_timeout == 180  # the surge's too
    assert deploy.boot_timeout_of(deploy.service_spec(_desired())) == 60
    assert deploy.boot_timeout_of({"Labels": {"org.qoddi.boot-timeout": "x"}}) == 60


def test_a_rollout_waits_for_every_replica_of_the_spec():
    # The SDK's ServiceMode spells the mode "replicated": the rollout's watch read one replica from it
    # and returned once the first task of three served (tasks on other nodes were still pulling).
    spec = deploy.service_spec(_desired(replicas=3))
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    assert deploy._Watch("blog", "id", spec, 0.0).replicas == 3


def test_web_services_have_no_docker_health_check_but_a_probed_path():
    spec = deploy.service_spec(_desired())
    assert "Healthcheck" not in spec["TaskTemplate"]["ContainerSpec"]
    assert deploy.health_path_of(spec) == "/healthz"
    assert deploy.health_path_of(deploy.service_spec(_desired(process="worker", command="celery"))) == ""
    assert deploy.health_path_of(deploy.service_spec(_desired(health_path=None))) == ""


def test_the_edge_forgets_stopped_tasks_within_the_bound_the_rollout_waits_for():
    template = (Path(__file__).parents[4] / "roles/haproxy/templates/haproxy.cfg.j2").read_text()
    resolvers = template.split("resolvers docker", 1)[1].split("\n\n", 1)[0]
    assert f"timeout resolve {round(deploy.EDGE_RESOLVE_SECONDS * 1000)}ms" in resolvers
    assert f"hold obsolete {round(deploy.EDGE_HOLD_OBSOLETE_SECONDS * 1000)}ms" in resolvers


def test_a_surge_leaves_only_once_the_edge_takes_the_tasks_that_replace_it():
    """The edge holds every new task down from its first check (made before its app answered): its
    backends' check timings are what the rollout waits for after a ready line (a 503 under load otherwise)."""
    route = {"app": "blog", "backend": "app-blog", "service": "blog", "domains": ["blog.a"], "health": "/"}
    backends = edge.backends([route], 2)
    assert f"downinter {round(edge.DOWN_INTER_SECONDS * 1000)}ms" in backends and f"rise {edge.RISE} " in backends
    assert f"fastinter {round(edge.FAST_INTER_SECONDS * 1000)}ms" in backends
    # Learnt at the next resolution, then the first passing check (down: DOWN_INTER), then RISE - 1 more.
    assert deploy.EDGE_ADMIT_SECONDS >= (deploy.EDGE_RESOLVE_SECONDS + edge.DOWN_INTER_SECONDS
                                         + (edge.RISE - 1) * edge.FAST_INTER_SECONDS)
    # A service that left DNS is dropped at the first resolution hold obsolete after the last answer that
    # listed it, which may have come a whole resolution before it left: its replacement must be in by then.
    kept = deploy.EDGE_HOLD_OBSOLETE_SECONDS - deploy.EDGE_RESOLVE_SECONDS
    assert deploy.EDGE_HANDOVER_SECONDS + kept >= deploy.EDGE_ADMIT_SECONDS


def test_a_task_is_of_the_template_it_was_made_from_whatever_swarm_added():
    template = {"ContainerSpec": {"Image": "a:r1", "Env": ["X=1"]}, "ForceUpdate": 1}
    task = {"Spec": dict(template, Runtime="container")}
    assert swarm.of_template(task, template)
    assert not swarm.of_template(task, dict(template, ForceUpdate=2))  # a restart makes tasks stale
    assert not swarm.of_template(task, dict(template, ContainerSpec={"Image": "a:r2", "Env": ["X=1"]}))


def test_the_supervisor_lets_a_stopped_task_drain_then_passes_sigterm_on(tmp_path):
    import time

    marker = tmp_path / "got-term"
    child = f"trap 'date +%s.%N > {marker}; exit 7' TERM; while :; do sleep 0.1; done"
    proc = subprocess.Popen(deploy.run_command(child, 1))
    time.sleep(0.5)
    stopped = time.time()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None and not marker.exists()  # still serving: the drain
    assert proc.wait(timeout=10) == 7  # the process's own exit status
    assert float(marker.read_text()) - stopped >= 0.9


def test_the_supervisor_exits_with_a_crashing_process():
    assert subprocess.run(deploy.run_command("exit 3", 5), timeout=5, check=False).returncode == 3


class _ReleaseApi:
    """The engine calls wait_other_releases makes: the app's release containers and their execs, no jobs."""

    def __init__(self, execs_running: dict[str, list[bool]]):
        self.execs_running = execs_running  # container: whether each of its execs still runs
        self.removed: list[str] = []

    def containers(self, all=False, filters=None):  # noqa: A002 - the SDK's name
        assert all and filters == {"label": ["org.qoddi.app=a", "org.qoddi.job=release"]}
        return [{"Id": name, "Names": [f"/{name}"]} for name in self.execs_running if name not in self.removed]

    def inspect_container(self, container):
        return {"ExecIDs": [f"{container}/{i}" for i in range(len(self.execs_running[container]))]}

    def exec_inspect(self, exec_id):
        container, index = exec_id.split("/")
        return {"Running": self.execs_running[container][int(index)]}

    def remove_container(self, container, force=False):
        self.removed.append(container)

    def services(self, filters):
        return []


class _Client:
    def __init__(self, api):
        self.api = api


def test_a_killed_runs_release_container_is_removed_once_its_command_ended():
    api = _ReleaseApi({"a--release-3-0123abcd": [False]})
    deploy.wait_other_releases(_Client(api), "a", timeout=0)
    assert api.removed == ["a--release-3-0123abcd"]


def test_a_release_still_running_in_a_killed_runs_container_is_waited_for():
    api = _ReleaseApi({"a--release-3-0123abcd": [True]})
    with pytest.raises(deploy.DeployError, match="a--release-3-0123abcd of an earlier change still runs"):
        deploy.wait_other_releases(_Client(api), "a", timeout=0)
    assert api.removed == []


def test_one_release_policy_for_deploys_and_the_controller():
    def service(seq):
        return {"Spec": {"Labels": {"org.qoddi.release.env.seq": str(seq)}}}
    assert deploy.release_due([service(3)], 3, built=True)  # a new build: a new release
    assert not deploy.release_due([service(3), service(3)], 3, built=False)
    assert deploy.release_due([service(3), service(2)], 3, built=False)  # variables no release ran with yet


def test_a_failed_release_says_its_cause_apart():
    exc = deploy.ReleaseFailed("python manage.py migrate", "failed (exit code 1)", ["boom"])
    assert exc.cause == "`python manage.py migrate` failed (exit code 1)"
    assert str(exc).startswith(exc.cause.join(["the release command ", ";"]))
    assert isinstance(exc, deploy.DeployError) and exc.log == ["boom"]


class _LabelsOnlyApi:
    """A web service whose update changed labels only (a new domain): Swarm replaced no task, so its
    tasks' ready lines are older than the rollout, and no new line comes."""

    def __init__(self, template):
        self.template = template

    def inspect_service(self, service_id):
        return {"Spec": {"TaskTemplate": self.template}, "UpdateStatus": {"State": "completed"}}

    def tasks(self, filters):
        # And one that failed before this rollout (a liveness exit): Swarm keeps it in the history.
        running = [{"ID": f"t{n}", "CreatedAt": "2026-11-30T08:00:00.123456789Z", "DesiredState": "running",
                    "Status": {"State": "running"}, "Spec": self.template} for n in (1, 2)]
        failed = {"ID": "t0", "CreatedAt": "2026-11-30T07:00:00.1Z", "DesiredState": "shutdown",
                  "Status": {"State": "failed", "Err": "task: non-zero exit (143)"}, "Spec": self.template}
        return [*running, failed]

    def service_logs(self, *args, **kwargs):
        return iter([b"2026-11-30T10:30:11.1Z com.docker.swarm.task.id=t1 GET /healthz 200\n"])


def test_tasks_a_rollout_did_not_replace_count_as_serving():
    template = {"ContainerSpec": {"Image": "a:r2", "Env": ["QODDI_HEALTH=/healthz"]}}
    client = type("Client", (), {"api": _LabelsOnlyApi(template)})()
    spec = {"Name": "a", "Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": template}
    watch = deploy._Watch("a", "id", spec, time.monotonic())
    watch.health = "/healthz"
    assert watch.done(client, time.monotonic())


class _RolledBackApi:
    """A web service Swarm's own rollback (failure_action) is putting back: its restored tasks start
    after the rollout's update, so they must print their ready lines before the app serves again."""

    def __init__(self, template, state, created):
        self.template, self.state, self.created = template, state, created

    def inspect_service(self, service_id):
        return {"Spec": {"TaskTemplate": self.template}, "UpdateStatus": {"State": self.state}}

    def tasks(self, filters):
        return [{"ID": f"t{n}", "CreatedAt": self.created, "DesiredState": "running",
                 "Status": {"State": "running"}, "Spec": self.template} for n in (1, 2)]

    def service_logs(self, *args, **kwargs):
        return iter([f"{self.created} com.docker.swarm.task.id=t{n} {deploy.READY_MARK}\n".encode() for n in (1, 2)])


def test_an_undo_waits_for_swarms_own_rollback_then_for_the_restored_tasks():
    template = {"ContainerSpec": {"Image": "a:r2"}}
    spec = {"Name": "a", "Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": template}
    now = time.strftime("%Y-%m-%dT%H:%M:%S.1Z", time.gmtime(time.time() + 1))
    api = _RolledBackApi(template, "rollback_started", now)
    client = type("Client", (), {"api": api})()
    rollout_started = time.monotonic() - 5
    undo = deploy._Watch("a", "id", spec, time.monotonic(), since=rollout_started, undo=True)
    undo.health = "/healthz"
    assert not undo.done(client, time.monotonic())  # Swarm still rolls back: not yet serving
    with pytest.raises(deploy.DeployError, match="Swarm rolled the update back"):
        deploy._Watch("a", "id", spec, rollout_started).done(client, time.monotonic())  # a rollout's own watch
    api.state = "rollback_completed"
    assert undo.done(client, time.monotonic())
    api.service_logs = lambda *args, **kwargs: iter([])  # restored tasks that have not answered yet
    undo = deploy._Watch("a", "id", spec, time.monotonic(), since=rollout_started, undo=True)
    undo.health = "/healthz"
    assert not undo.done(client, time.monotonic())
    api.template = {"ContainerSpec": {"Image": "a:r3"}}  # Swarm went on to another release instead
    with pytest.raises(deploy.DeployError, match="did not put the previous release back"):
        undo.done(client, time.monotonic())


def _nodes_client(*nodes):
    listed = [{"Spec": {"Availability": availability}, "Status": {"State": "ready"},
               "Description": {"Hostname": name,
                               "Resources": {"NanoCPUs": int(cpus * 1e9), "MemoryBytes": mib * 2**20}}}
              for name, cpus, mib, availability in nodes]
    return type("Client", (), {"api": type("Api", (), {"nodes": lambda self: listed})()})()


def test_a_size_no_active_node_can_hold_is_refused_with_the_sizes_that_fit():
    client = _nodes_client(("small", 2, 900, "active"), ("big", 8, 16000, "drain"))
    assert deploy.size_unfit(client, "L") == ""  # 2 CPU, 2048 MiB limit but 512 MiB reserved: it fits
    message = deploy.size_unfit(client, "XL")  # only a drained node could
    assert message.startswith("size XL runs each task with up to 4 CPU and reserves 1024 MiB of memory for it, "
                              "and no node")
    assert "the largest, small, has 2 CPU and 900 MiB" in message and "(XS, S, M, L)" in message
