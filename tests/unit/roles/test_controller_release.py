# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's release path: it starts a config-var release job and follows it on later ticks,
never waiting for it. These are its decisions, on a stand-in for the few engine calls it makes; the
real behaviour (another app's restart on time while a release command runs, a restarted controller
following the job) is tested on the real Swarm by the controller_duties integration target.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

FILES = pathlib.Path(__file__).parents[3] / "roles" / "controller" / "files"
sys.path.insert(0, str(FILES))  # controller.py imports its neighbour certificates.py as the service does
spec = importlib.util.spec_from_file_location("controller", FILES / "controller.py")
controller = importlib.util.module_from_spec(spec)
spec.loader.exec_module(controller)
sys.path.remove(str(FILES))

LABEL = "org.qoddi."  # what the controller reads (module_utils/_conventions.py)
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
CREATED = "2027-01-15T07:59:50.123456789Z"  # 10 s before NOW


class Api:
    """The engine calls the release path makes: jobs as services, their tasks, removal."""

    def __init__(self, jobs: dict[str, str]):
        self.jobs = {name: {"ID": name, "CreatedAt": CREATED, "Spec": job_spec(name)} for name in jobs}
        self.states = dict(jobs)  # job name: its task's state
        self.removed: list[str] = []
        self.removed_containers: list[str] = []

    def containers(self, all=False, filters=None):  # noqa: A002 - the SDK's name
        # Swarm leaves a removed job's exited container behind, labelled with the job's service id.
        service = filters["label"].split("=", 1)[1]
        return [{"Id": f"container-of-{service}"}] if all and service in self.removed else []

    def remove_container(self, container, force=False):
        self.removed_containers.append(container)

    def tasks(self, filters):
        return [{"Status": {"State": self.states[filters["service"]]}}]

    def remove_service(self, service_id):
        self.removed.append(service_id)
        del self.jobs[service_id]

    def service_logs(self, *args, **kwargs):
        return []


class Client:
    def __init__(self, jobs: dict[str, str]):
        self.api = Api(jobs)


def job_spec(name: str) -> dict:
    return {"Name": name, "Labels": {LABEL + "app": "a", LABEL + "job": "release"},
            "TaskTemplate": {"ContainerSpec": {"Command": ["bash", "-c", "sleep 90"]}}}


def app_service(released_seq: int = 0) -> dict:
    labels = {LABEL + "app": "a", LABEL + "stack": "s", LABEL + "process": "web", LABEL + "release": "3",
              LABEL + "env.seq": "1", LABEL + "release.env.seq": str(released_seq)}
    return {"ID": "svc-a", "Spec": {"Name": "a", "Labels": labels,
                                    "TaskTemplate": {"ContainerSpec": {"Image": "qoddi-app/a:r3@sha256:x"}}}}


@pytest.fixture
def started(monkeypatch):
    calls = []
    monkeypatch.setattr(controller.deploy, "processes_of", lambda client, image: {"release": "sleep 90"})
    monkeypatch.setattr(controller.deploy, "start_release", lambda *args, **kwargs: calls.append(kwargs["name"]))
    monkeypatch.setattr(controller.env, "references", lambda history: [])
    return calls


def release(client, head=2, released_seq=0, timeout=600):
    ctl = controller.Controller(client, max_age=86400, release_timeout=timeout)
    jobs = list(client.api.jobs.values())
    return ctl, ctl.release("a", [app_service(released_seq)], [], head, NOW, jobs)


def test_starts_the_job_and_returns_at_once(started):
    _unused, ready = release(Client({}))
    assert (ready, started) == (False, ["a--release-3-vars-2"])


def test_a_running_job_is_followed_not_started_again(started):
    client = Client({"a--release-3-vars-2": "running"})
    _unused, ready = release(client)
    assert (ready, started, client.api.removed) == (False, [], [])


def test_a_completed_job_is_removed_and_the_variables_may_be_applied(started):
    client = Client({"a--release-3-vars-2": "complete"})
    _unused, ready = release(client)
    assert (ready, started, client.api.removed) == (True, [], ["a--release-3-vars-2"])
    # Its exited container too: they piled up, one per config-var release.
    assert client.api.removed_containers == ["container-of-a--release-3-vars-2"]


def test_a_failed_job_keeps_the_variables_out_until_they_change(started):
    client = Client({"a--release-3-vars-2": "failed"})
    ctl, ready = release(client)
    assert (ready, client.api.removed, ctl.rolled_back) == (False, ["a--release-3-vars-2"], {"svc-a": 2})


def test_a_job_past_the_timeout_counts_as_failed(started):
    client = Client({"a--release-3-vars-2": "running"})
    ctl, ready = release(client, timeout=5)
    assert (ready, client.api.removed, ctl.rolled_back) == (False, ["a--release-3-vars-2"], {"svc-a": 2})


def test_a_job_for_older_variables_finishes_before_the_new_one_starts(started):
    client = Client({"a--release-3-vars-1": "running"})
    assert release(client)[1] is False and started == [] and client.api.removed == []
    client.api.states["a--release-3-vars-1"] = "complete"
    assert release(client)[1] is False and started == ["a--release-3-vars-2"]
    assert client.api.removed == ["a--release-3-vars-1"]


def test_a_job_left_after_qoddi_app_applied_the_variables_is_removed_once_over(started):
    client = Client({"a--release-3-vars-2": "complete"})
    _unused, ready = release(client, released_seq=2)
    assert (ready, started, client.api.removed) == (True, [], ["a--release-3-vars-2"])


@pytest.mark.parametrize(("name", "labels", "mine"), [
    ("a--release-3-vars-2", {LABEL + "app": "a", LABEL + "job": "release"}, True),
    ("a--release-3", {LABEL + "app": "a", LABEL + "job": "release"}, False),  # a qoddi_app deploy's
    ("a-b--release-3-vars-2", {LABEL + "app": "a", LABEL + "job": "release"}, False),  # another app's name
    ("a--release-3-vars-2", {LABEL + "app": "a"}, False),
])
def test_only_its_own_jobs_are_the_controllers(name, labels, mine):
    assert controller.Controller.vars_job({"Spec": {"Name": name, "Labels": labels}}) is mine


def test_daily_restarts_are_spread_within_the_maximum_age():
    names = [f"app-{i}" for i in range(200)]
    limits = [controller.age_limit(name, 86400) for name in names]
    assert all(86400 * (1 - controller.AGE_SPREAD) <= limit <= 86400 for limit in limits)
    assert max(limits) - min(limits) > 3 * 3600  # spread over most of the 3.6 h, not in one minute
    assert len({round(limit / 60) for limit in limits}) > 100
    assert controller.age_limit("blog", 86400) == controller.age_limit("blog", 86400)  # the same at every check
