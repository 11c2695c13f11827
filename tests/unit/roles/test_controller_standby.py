# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller on any manager (roles/controller/files/standby.py).

The whole path (the first manager killed under a pending restart, the standby doing it, the state on
every manager) runs in the molecule scenario `cluster` (manager_loss.yml). Here: when the standby
takes over, what it copies, and the copy job's script run by sh on two directories. The engine's
answers about the first manager's node are a stand-in that returns the states Swarm reports.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from controller_files import load

certificates = load("certificates")
edge_nodes = load("edge_nodes")
standby = load("standby")


class Engine:
    """Answers node inspections with the state the test sets (Swarm's: ready, down, unknown...)."""

    def __init__(self):
        self.state = "ready"
        self.api = self

    def inspect_node(self, node_id):
        if self.state == "error":
            raise ConnectionError("no leader")
        return {"ID": node_id, "Status": {"State": self.state}}


def test_the_first_managers_controller_is_always_active():
    assert standby.Standby(Engine(), "", 30, 0).active(0)


def test_the_standby_takes_over_when_the_first_manager_is_lost_and_hands_back():
    engine = Engine()
    gate = standby.Standby(engine, "first-node", 30, now=0)
    assert not gate.active(1)
    engine.state = "unknown"  # a leader election: every node unknown for a moment
    assert not gate.active(10)
    assert not gate.active(30.5)
    assert gate.active(31.6)  # not ready for the grace's 30 s since its last ready answer (at 1)
    engine.state = "ready"
    assert not gate.active(40) and gate.handing_over
    engine.state = "disconnected"  # its agent looking for a new manager: passes, unless it lasts
    assert not gate.active(42)
    engine.state = "down"  # Swarm's own verdict: at once
    assert gate.active(50) and not gate.handing_over
    engine.state = "error"  # no answer is no ready node: still taken over
    assert gate.active(52)


def test_the_answer_is_kept_for_a_second_for_the_duties_threads():
    engine = Engine()
    gate = standby.Standby(engine, "first-node", 30, now=0)
    assert not gate.active(5)
    engine.state = "down"
    assert not gate.active(5.5)
    assert gate.active(6)


def test_the_files_copied_are_the_acme_directory_and_the_edges_settings(tmp_path):
    acme, edge = tmp_path / "acme", tmp_path / "edge"
    for directory in (acme, edge):
        directory.mkdir()
    (acme / "account.key").write_bytes(b"KEY")
    (acme / "account.key").chmod(0o600)
    (acme / "a.example.test.crt").write_bytes(b"CRT")
    (acme / "a.example.test.crt").chmod(0o644)
    (acme / ".qoddi-tmp").write_bytes(b"half")
    (edge / "routes.json").write_bytes(b"{}")
    (edge / "routes.cfg").write_bytes(b"the edge's own")
    files = standby.read_files(str(acme), str(edge))
    assert files == {"acme/a.example.test.crt": (0o644, b"CRT"), "acme/account.key": (0o600, b"KEY"),
                     "edge/routes.json": (0o644, b"{}")}
    assert standby.read_files(str(tmp_path / "none"), str(tmp_path / "none")) == {}


def test_the_job_runs_on_the_other_managers_with_the_controllers_directories(monkeypatch):
    monkeypatch.setenv("QODDI_EDGE_CONFIG_DIR", "/srv/edge")
    image = "registry:5000/qoddi/controller@sha256:1"
    controller = {"Spec": {"TaskTemplate": {"ContainerSpec": {"Image": image, "Mounts": [
        {"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"},
        {"Type": "bind", "Source": "/srv/acme", "Target": "/etc/qoddi/acme"},
        {"Type": "bind", "Source": "/srv/edge", "Target": "/srv/edge"}]}}}}
    job = standby.copy_job(controller, [], "own-node", ["down-node"])
    assert job["Placement"]["Constraints"] == ["node.role==manager", "node.id!=own-node", "node.id!=down-node"]
    assert job["ContainerSpec"]["Image"] == image
    assert [(m["Source"], m["Target"]) for m in job["ContainerSpec"]["Mounts"]] == [
        ("/srv/acme", standby.JOB_ACME), ("/srv/edge", standby.JOB_EDGE)]
    assert job["RestartPolicy"] == {"Condition": "none"}


@pytest.fixture
def manager(tmp_path):
    """Another manager's two directories, and a runner of the job's script on them."""
    acme, edge, secrets = tmp_path / "acme", tmp_path / "edge", tmp_path / "secrets"
    for directory in (acme, edge, secrets):
        directory.mkdir()

    def run(files):
        for entry in secrets.iterdir():
            entry.unlink()
        for name, data in standby.pack(files).items():
            (secrets / name).write_bytes(data)
        env = {"PATH": os.environ["PATH"], "IN": str(secrets), "JOB_ACME": str(acme), "JOB_EDGE": str(edge)}
        return subprocess.run(["sh", "-c", standby.COPY_SCRIPT], env=env, capture_output=True, text=True, check=False)

    return acme, edge, run


def test_the_script_writes_what_differs_with_its_mode_and_mirrors_the_acme_directory(manager):
    acme, edge, run = manager
    (acme / "gone.example.test.crt").write_bytes(b"OLD")
    (edge / "routes.cfg").write_bytes(b"the edge's own")
    files = {"acme/account.key": (0o600, b"KEY"), "acme/a.example.test.crt": (0o644, b"CRT"),
             "acme/a.example.test.renewing": (0o644, b""), "edge/routes.json": (0o644, b"{}")}
    result = run(files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5 file(s) changed"  # four written, one removed
    assert sorted(p.name for p in acme.iterdir()) == ["a.example.test.crt", "a.example.test.renewing", "account.key"]
    assert (acme / "account.key").read_bytes() == b"KEY" and (acme / "account.key").stat().st_mode & 0o777 == 0o600
    assert (acme / "a.example.test.renewing").read_bytes() == b""  # an empty file travels as "-"
    assert (edge / "routes.json").read_bytes() == b"{}"
    assert (edge / "routes.cfg").read_bytes() == b"the edge's own"  # only the settings are the copy's
    assert not list(acme.glob(".*")) and not list(edge.glob(".*"))

    # The same files: nothing written. A mode alone that differs is written again.
    assert run(files).stdout.strip() == "0 file(s) changed"
    (acme / "account.key").chmod(0o644)
    assert run(files).stdout.strip() == "1 file(s) changed"
    assert (acme / "account.key").stat().st_mode & 0o777 == 0o600


def test_no_file_at_all_is_still_a_manifest_swarm_takes(manager):
    acme, unused_edge, run = manager
    (acme / "left.crt").write_bytes(b"OLD")
    assert standby.pack({})["manifest"]  # Swarm refuses an empty secret
    result = run({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 file(s) changed" and not list(acme.iterdir())


def test_a_file_that_cannot_be_written_fails_the_job(manager):
    acme, unused_edge, run = manager
    acme.rmdir()  # the bind mount's directory gone (tests run as root: permissions would not stop cp)
    result = run({"acme/account.key": (0o600, b"KEY")})
    assert result.returncode != 0 and "file(s) changed" not in result.stdout


class Services(Engine):
    def __init__(self, names):
        super().__init__()
        self.names = names

    def services(self, filters):
        return [{"Spec": {"Name": n}} for n in self.names if n.startswith(filters["name"])]


def test_the_first_managers_controller_waits_for_a_standbys_files_after_it_starts():
    gate = standby.Standby(Services([standby.STANDBY_SERVICE]), "", 30, now=100)
    assert gate.active(101) and not gate.may_read_files(101)
    assert gate.may_read_files(100 + standby.FIRST_COPY_AFTER)
    alone = standby.Standby(Services([]), "", 30, now=100)
    assert alone.may_read_files(101)  # no standby: nothing to wait for
    assert standby.Standby(Services([]), "first-node", 30, now=100).may_read_files(101)


class Copies(standby.ManagerCopies):
    """ManagerCopies whose copy succeeds or not as the test says, without an engine."""

    def __init__(self):
        self.calls = 0
        self.succeeds = False

    def tick(self, now):
        self.calls += 1
        return self.succeeds


def test_copies_run_while_active_and_until_a_handed_back_copy_succeeds():
    engine = Engine()
    gate = standby.Standby(engine, "first-node", 30, now=0)
    copies = Copies()
    copies.duty(gate, 1)
    assert copies.calls == 0  # an idle standby's copy is older than the first manager's: never sent
    engine.state = "down"
    copies.duty(gate, 2)
    assert copies.calls == 1
    engine.state = "ready"
    copies.duty(gate, 3)  # back: the standby's changes go to it
    copies.duty(gate, 4)
    assert copies.calls == 3 and gate.handing_over
    copies.succeeds = True
    copies.duty(gate, 5)
    copies.duty(gate, 6)
    assert copies.calls == 4 and not gate.handing_over
