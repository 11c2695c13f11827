# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The job that brings the edge's files to the edge nodes other than the controller's.

The whole path (a second edge node serving an app the controller routed after converge, with its
certificate) runs in the molecule scenario `cluster`. Here: the job's shape, and its script run by
sh on a directory, with stand-ins for the two programs of the edge's image it calls (haproxy, to
check the routes; socat, to reach the edge's sockets), which record their arguments.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess

import pytest
from controller_files import load

TEMPLATES = pathlib.Path(__file__).parents[3] / "roles" / "haproxy"


certificates = load("certificates")
edge_nodes = load("edge_nodes")

EDGE = {"Spec": {"TaskTemplate": {
    "ContainerSpec": {"Image": "qoddi/haproxy:bookworm-1", "Mounts": [
        {"Source": "/etc/qoddi/haproxy", "Target": certificates.EDGE_CONFIG, "ReadOnly": True},
        {"Source": "/var/lib/qoddi/haproxy", "Target": certificates.EDGE_STATE}]},
    "Placement": {"Constraints": ["node.labels.qoddi.edge == true"]}}}}


def test_the_job_runs_on_the_edge_nodes_but_the_controllers():
    job = edge_nodes.apply_job(EDGE, [], "own-node-id", prune_certificates=True)
    assert job["Placement"]["Constraints"] == ["node.labels.qoddi.edge == true", "node.id!=own-node-id"]
    assert EDGE["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.qoddi.edge == true"]
    assert job["ContainerSpec"]["Command"][:2] == ["sh", "-c"]
    assert "PRUNE=yes" in job["ContainerSpec"]["Env"]
    assert f"QODDI_EDGE_MASTER={certificates.EDGE_STATE}/master.sock" in job["ContainerSpec"]["Env"]


def test_the_edge_opens_the_master_socket_the_job_reloads_through():
    service = (TEMPLATES / "tasks" / "service.yml").read_text()
    assert f"-S, {edge_nodes.EDGE_MASTER}," in service


def test_the_digest_follows_every_path_and_byte():
    files = {"hosts.map": b"a app-a\n", "routes.cfg": b"backend app-a\n"}
    assert edge_nodes.digest(files) == edge_nodes.digest(dict(reversed(files.items())))
    assert edge_nodes.digest(files) != edge_nodes.digest({**files, "hosts.map": b"a app-b\n"})
    assert edge_nodes.digest(files) != edge_nodes.digest({"hosts.map": b"a app-a\n", "routes.cfg2": b"backend app-a\n"})


@pytest.fixture
def node(tmp_path):
    """An edge node's directories, the job's secrets directory, and stand-ins for haproxy and socat."""
    config, state, secrets, bin_dir = (tmp_path / d for d in ("config", "state", "secrets", "bin"))
    for directory in (config / "certs", state, secrets, bin_dir):
        directory.mkdir(parents=True)
    (config / "haproxy.cfg").write_text("global\n")
    (config / "certs" / "000-default.pem").write_text("DEFAULT\n")
    calls = tmp_path / "calls"
    # haproxy -c refuses a candidate that holds the word REFUSE, as HAProxy says it.
    (bin_dir / "haproxy").write_text(
        f'#!/bin/sh\necho "haproxy $*" >> {calls}\n'
        'for last; do :; done\nif grep -q REFUSE "$last"; then echo "[ALERT] parsing: bad line"; exit 1; fi\n')
    # socat fails, as the real one does, when nothing listens on the socket it is given.
    (bin_dir / "socat").write_text(
        f'#!/bin/sh\necho "socat $*" >> {calls}\ncat >/dev/null\n'
        'for last; do :; done\n[ -S "${last#unix:}" ] || exit 1\necho "server state"\n')
    for program in ("haproxy", "socat"):
        (bin_dir / program).chmod(0o755)
    # The edge's two sockets (listening: a path alone could be what a stopped edge left).
    sockets = []
    for name in ("master.sock", "runtime.sock"):
        sockets.append(socket.socket(socket.AF_UNIX))
        sockets[-1].bind(str(state / name))

    def run(files, prune=True):
        for entry in secrets.iterdir():
            entry.unlink()
        lines = []
        for index, (path, data) in enumerate(sorted(files.items())):
            if data not in (b"", b"="):
                (secrets / str(index)).write_bytes(data)
            lines.append(f"{'=' if data == b'=' else index if data else '-'} {path}\n")
        (secrets / "manifest").write_text("".join(lines))
        calls.write_text("")
        script = edge_nodes.APPLY_SCRIPT.replace("state=/var/lib/haproxy", f"state={state}")
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "QODDI_EDGE_CONFIG": str(config), "IN": str(secrets),
               "QODDI_EDGE_SOCKET": str(state / "runtime.sock"), "QODDI_EDGE_MASTER": str(state / "master.sock"),
               "PRUNE": "yes" if prune else "no"}
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, check=False)
        return result, calls.read_text()

    yield config, state, run
    for each in sockets:
        each.close()


def test_the_script_writes_checks_reloads_and_prunes(node):
    config, state, run = node
    (config / "certs" / "gone.example.test.pem").write_text("OLD\n")
    files = {"hosts.map": b"", "routes.cfg": b"backend app-a\n", "certs/a.example.test.pem": b"CERT\nKEY\n"}
    result, calls = run(files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "applied and reloaded"
    assert (config / "routes.cfg").read_bytes() == b"backend app-a\n"
    assert (config / "hosts.map").read_bytes() == b""  # an empty file travels as "-"
    assert (config / "certs" / "a.example.test.pem").read_bytes() == b"CERT\nKEY\n"
    assert oct((config / "certs" / "a.example.test.pem").stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in (config / "certs").iterdir()) == ["000-default.pem", "a.example.test.pem"]
    assert "haproxy -c" in calls and "reload" not in calls  # reload is what socat sends, on its stdin
    assert calls.count("socat") == 2 and "master.sock" in calls
    assert (state / "server-state").read_text() == "server state\n"
    assert not list(config.glob(".*")) and not list(state.glob(".*"))  # nothing half-written or pending left

    # The same files again: nothing written, nothing checked, no reload.
    result, calls = run(files)
    assert result.stdout.strip() == "nothing to change" and calls == ""


def test_pinned_backend_certificates_are_written_before_the_check_and_pruned_with_their_app(node):
    config, unused_state, run = node
    result, calls = run({"hosts.map": b"", "routes.cfg": b"backend app-a\n", "backends/a.pem": b"CERT A\n",
                         "backends/b.pem": b"CERT B\n"})
    assert result.returncode == 0, result.stderr
    assert (config / "backends" / "a.pem").read_bytes() == b"CERT A\n"
    assert oct((config / "backends" / "a.pem").stat().st_mode & 0o777) == "0o644"
    # b's app is gone (or turned TLS off): its file goes, even where the platform issues no certificate.
    result, calls = run({"hosts.map": b"", "routes.cfg": b"backend app-a\n", "backends/a.pem": b"CERT A\n"},
                        prune=False)
    assert result.stdout.strip() == "applied and reloaded", result.stderr
    assert sorted(p.name for p in (config / "backends").iterdir()) == ["a.pem"]


def test_a_refused_route_changes_nothing_the_edge_reads(node):
    config, unused_state, run = node
    run({"hosts.map": b"a app-a\n", "routes.cfg": b"backend app-a\n"})
    result, calls = run({"hosts.map": b"b app-b\n", "routes.cfg": b"backend REFUSE\n"})
    assert result.returncode == 1
    assert "bad line" in result.stderr and "last good" in result.stderr
    assert (config / "routes.cfg").read_bytes() == b"backend app-a\n"
    assert (config / "hosts.map").read_bytes() == b"a app-a\n"
    assert "socat" not in calls


def test_certificates_the_platform_does_not_issue_are_kept(node):
    config, unused_state, run = node
    (config / "certs" / "own.example.test.pem").write_text("A USER'S\n")
    result, unused_calls = run({"hosts.map": b"", "routes.cfg": b"backend app-a\n"}, prune=False)
    assert result.returncode == 0, result.stderr
    assert (config / "certs" / "own.example.test.pem").exists()


def test_files_written_without_a_reload_are_reloaded_by_the_next_run(node):
    config, state, run = node
    files = {"hosts.map": b"a app-a\n", "routes.cfg": b"backend app-a\n"}
    (state / "master.sock").unlink()  # what an edge that stopped leaves: a path nothing listens on
    result, unused_calls = run(files)
    assert result.returncode == 1 and "master socket" in result.stderr
    assert (config / "routes.cfg").read_bytes() == b"backend app-a\n"
    assert (state / ".qoddi-reload-pending").exists()
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(state / "master.sock"))
    try:
        result, calls = run(files)  # nothing new to write, but a reload is owed
    finally:
        listening.close()
    assert result.returncode == 0 and result.stdout.strip() == "applied and reloaded", result.stderr
    assert "master.sock" in calls and not (state / ".qoddi-reload-pending").exists()


def test_a_certificate_being_installed_by_the_renewer_is_kept_as_it_is(node):
    config, unused_state, run = node
    (config / "certs" / "b.example.test.pem").write_text("OLD B\n")
    result, unused_calls = run({"hosts.map": b"", "routes.cfg": b"backend app-b\n", "certs/b.example.test.pem": b"="})
    assert result.returncode == 0, result.stderr
    assert (config / "certs" / "b.example.test.pem").read_text() == "OLD B\n"  # neither written nor pruned


class NoEdgeYet:
    """The engine before the haproxy role created the edge service: asking for its tasks is a 404."""

    class NotFound(Exception):
        status_code = 404

    def __init__(self):
        self.api = self

    def info(self):
        return {"Swarm": {"NodeID": "own-node-id"}}

    def tasks(self, filters):
        raise self.NotFound(f"service {filters['service']} not found")


def test_no_edge_service_yet_means_no_other_edge_node():
    assert certificates.edge_tasks(NoEdgeYet(), []) == []
    assert edge_nodes.OtherEdges(NoEdgeYet()).other_nodes([]) == []


def test_the_other_edge_nodes_are_those_of_its_tasks_that_take_jobs_but_this_one():
    class Swarm(NoEdgeYet):
        def tasks(self, filters):
            assert filters == {"service": certificates.EDGE, "desired-state": "running"}
            return [{"NodeID": n} for n in ("own-node-id", "n2", "n3", "n4")] + [{"NodeID": ""}]

    def node(node_id, state="ready", availability="active"):
        return {"ID": node_id, "Status": {"State": state}, "Spec": {"Availability": availability}}

    nodes = [node("own-node-id"), node("n2"), node("n3", state="down"), node("n4", availability="drain")]
    tasks = certificates.edge_tasks(Swarm(), nodes)
    assert [t["NodeID"] for t in tasks] == ["own-node-id", "n2"]
    assert edge_nodes.OtherEdges(Swarm()).other_nodes(tasks) == ["n2"]
