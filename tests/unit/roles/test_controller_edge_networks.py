# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The edge joining the stacks' networks (private stacks, issue 16).

The whole path (an edge container connected to a new stack's network, stacks that cannot reach each
other, no request dropped at the edge) runs on the engine in the integration target private_stacks.
Here: the job's shape, when the duty runs one, the addresses its placeholders hold, and its script
run by sh with a stand-in for socat that answers as the engine does (the request it got is recorded).
"""

from __future__ import annotations

import os
import subprocess

from controller_files import load

certificates = load("certificates")
edge_networks = load("edge_networks")

EDGE = {"Spec": {"TaskTemplate": {
    "ContainerSpec": {"Image": "qoddi/haproxy:bookworm-1"},
    "Networks": [{"Target": "edge-net"}],
    "Placement": {"Constraints": ["node.labels.qoddi.edge == true"]}}}}


def _web(*networks):
    return {"Spec": {"TaskTemplate": {"Networks": [{"Target": n} for n in networks]}}}


def _task(task_id, node, container):
    status = {"State": "running", "ContainerStatus": {"ContainerID": container}}
    return {"ID": task_id, "NodeID": node, "Status": status}


class NotFoundError(Exception):
    status_code = 404


class Api:
    """The Swarm's edge tasks and nodes, and placeholder services whose virtual IPs the managers give
    out in order on each network (as the allocator does)."""

    def __init__(self):
        self.edge_tasks = [_task("t1", "n1", "c1"), _task("t2", "n2", "c2")]
        self.down = set()
        self.placeholders = {}  # name -> service
        self.given = {}  # network -> addresses given
        self.updates = 0
        self.web = []

    def inspect_service(self, name):
        if name == certificates.EDGE:
            return EDGE
        if name not in self.placeholders:
            raise NotFoundError(name)
        return self.placeholders[name]

    def _vips(self, template, before=()):
        vips = list(before)
        for network in template["Networks"]:
            if not any(v["NetworkID"] == network["Target"] for v in vips):
                self.given[network["Target"]] = self.given.get(network["Target"], 1) + 1
                vips.append({"NetworkID": network["Target"], "Addr": f"10.0.{network['Target'][-1]}."
                             f"{self.given[network['Target']]}/24"})
        return vips

    def create_service(self, template, name, labels, mode):
        assert mode == {"Replicated": {"Replicas": 0}}  # no task, ever
        self.placeholders[name] = {"ID": name, "Version": {"Index": 1}, "Spec": {
            "Name": name, "Labels": labels, "Mode": mode, "TaskTemplate": template},
            "Endpoint": {"VirtualIPs": self._vips(template)}}

    def update_service(self, *args, **kwargs):
        self.updates += 1  # a placeholder updated would get new addresses on every network

    def services(self, filters):
        if filters == {"label": "org.qoddi.process=web"}:
            return self.web  # the web services, as the duty was last given them
        return list(self.placeholders.values())

    def remove_service(self, service_id):
        del self.placeholders[service_id]

    def tasks(self, filters):
        return self.edge_tasks

    def nodes(self):
        return [{"ID": n, "Status": {"State": "down" if n in self.down else "ready"},
                 "Spec": {"Availability": "active"}} for n in ("n1", "n2", "n3")]

    def inspect_network(self, network):
        return {"Name": f"qoddi-{network}"}


class Client:
    def __init__(self):
        self.api = Api()


def _duty(monkeypatch, results):
    """The duty on a fake cluster whose jobs end as ``results`` says ({node: state}), and the jobs it ran."""
    jobs = []

    def run_global_job(client, name, component, template, timeout):
        jobs.append(template)
        states = [{"NodeID": n, "Status": {"State": results.get(n, "complete")}} for n in ("n1", "n2")
                  if f"node.id!={n}" not in template["Placement"]["Constraints"]]
        # What the script prints on the nodes whose task completed (a failed one printed its error).
        done = {s["NodeID"] for s in states if s["Status"]["State"] == "complete"}
        lines = [f"left {net} on node {node}" if address == "-" else f"connected {net} as {address}"
                 for node, net, address in (e.split(":") for e in _env(template, "CONNECT").split(" ")) if node in done]
        return states, "; ".join(lines)

    monkeypatch.setattr(certificates, "run_global_job", run_global_job)
    monkeypatch.setattr(certificates, "sweep_jobs", lambda *a: None)
    monkeypatch.setattr(certificates, "log", lambda line: None)
    monkeypatch.setattr(edge_networks, "log", lambda line: None)
    client = Client()
    return client, Duty(client), jobs


class Duty(edge_networks.EdgeNetworks):
    """The duty as EdgeFollower.tick calls it: the nodes and the edge's tasks listed for it."""

    def tick(self, services, now):
        self.client.api.web = services
        nodes = self.client.api.nodes()
        super().tick(services, nodes, certificates.edge_tasks(self.client, nodes), now)


def _env(job, key):
    return next(e.split("=", 1)[1] for e in job["ContainerSpec"]["Env"] if e.startswith(key + "="))


def test_the_job_joins_the_networks_it_connects_on_the_edge_image_with_the_engine_socket():
    connect = {"n1": {"stack-a": "10.0.1.5", "stack-b": "10.0.2.5"}, "n2": {"stack-a": "10.0.1.6"}}
    job = edge_networks.connect_job(EDGE, {"n1": "c1", "n2": "c2"}, connect, ["n3"])
    spec = job["ContainerSpec"]
    assert spec["Image"] == "qoddi/haproxy:bookworm-1" and spec["User"] == "0"
    assert job["Networks"] == [{"Target": "stack-a"}, {"Target": "stack-b"}]  # so that the node has them
    assert _env(job, "EDGE_CONTAINERS") == "n1=c1 n2=c2"
    assert _env(job, "CONNECT") == "n1:stack-a:10.0.1.5 n1:stack-b:10.0.2.5 n2:stack-a:10.0.1.6"
    assert "NODE={{.Node.ID}}" in spec["Env"]
    assert spec["Mounts"] == [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"}]
    assert job["Placement"]["Constraints"] == ["node.labels.qoddi.edge == true", "node.id!=n3"]
    assert EDGE["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == ["node.labels.qoddi.edge == true"]


def test_the_web_processes_networks_but_the_edges_own():
    services = [_web("stack-a"), _web("stack-a", "edge-net"), _web("stack-b")]
    assert edge_networks.web_networks(services, {"edge-net"}) == {"stack-a", "stack-b"}


def _held(client):
    """{(node, network): address} of the placeholders."""
    return {(s["Spec"]["Labels"][edge_networks.NODE_LABEL], s["Spec"]["Labels"][edge_networks.NETWORK_LABEL]):
            edge_networks.addresses(s)[s["Spec"]["Labels"][edge_networks.NETWORK_LABEL]]
            for s in client.api.placeholders.values()}


def test_each_edge_node_connects_with_the_address_its_placeholder_holds(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-1")], 0)
    assert _held(client) == {("n1", "stack-1"): "10.0.1.2", ("n2", "stack-1"): "10.0.1.3"}
    assert _env(jobs[0], "CONNECT") == "n1:stack-1:10.0.1.2 n2:stack-1:10.0.1.3"
    duty.tick([_web("stack-1"), _web("stack-2")], 1)  # a new stack: new placeholders, the others untouched
    assert _env(jobs[1], "CONNECT") == "n1:stack-2:10.0.2.2 n2:stack-2:10.0.2.3"
    assert _held(client)[("n1", "stack-1")] == "10.0.1.2"  # kept: its edge container has it
    assert len(client.api.placeholders) == 4 and client.api.updates == 0


def test_a_job_only_for_what_an_edge_container_lacks(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a")], 0)
    assert len(jobs) == 1 and jobs[0]["Networks"] == [{"Target": "stack-a"}]
    assert jobs[0]["Placement"]["Constraints"][-1] == "node.id!=n3"  # no edge task there
    duty.tick([_web("stack-a")], 1)
    assert len(jobs) == 1  # nothing new
    client.api.edge_tasks = [_task("t1", "n1", "c1"), _task("t3", "n2", "c3")]  # n2's edge task replaced
    duty.tick([_web("stack-a")], 3)
    assert len(jobs) == 2 and _env(jobs[1], "EDGE_CONTAINERS") == "n2=c3"
    assert "node.id!=n1" in jobs[1]["Placement"]["Constraints"]
    assert _env(jobs[1], "CONNECT") == _env(jobs[0], "CONNECT").split(" ")[1]  # the same address again


def test_a_node_that_failed_is_tried_again_later_and_alone(monkeypatch):
    results = {"n2": "failed"}
    _client, duty, jobs = _duty(monkeypatch, results)
    duty.tick([_web("stack-a")], 0)
    duty.tick([_web("stack-a")], 1)
    assert len(jobs) == 1  # not before the retry delay
    results.clear()
    duty.tick([_web("stack-a")], duty.retry_at["t2"] + 1)
    assert len(jobs) == 2 and "node.id!=n1" in jobs[1]["Placement"]["Constraints"]
    duty.tick([_web("stack-a")], duty.retry_at.get("t2", 0) + 100)
    assert len(jobs) == 2


def test_a_new_edge_task_does_not_wait_for_the_backoff_of_the_one_it_replaced(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {"n2": "failed"})
    duty.tick([_web("stack-a")], 0)
    client.api.edge_tasks = [_task("t1", "n1", "c1"), _task("t3", "n2", "c3")]
    duty.tick([_web("stack-a")], 1)
    assert len(jobs) == 2 and _env(jobs[1], "EDGE_CONTAINERS") == "n2=c3"


def test_a_placeholder_removed_by_hand_makes_its_network_connected_again(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a")], 0)
    name = next(n for n, s in client.api.placeholders.items() if s["Spec"]["Labels"][edge_networks.NODE_LABEL] == "n2")
    del client.api.placeholders[name]
    duty.tick([_web("stack-a")], 1)
    assert len(jobs) == 2 and _env(jobs[1], "CONNECT") == "n2:stack-a:10.0.a.4"  # its new placeholder's address


def test_a_placeholder_without_an_address_is_asked_again_and_said_once(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    lines = []
    monkeypatch.setattr(edge_networks, "log", lines.append)
    client.api._vips = lambda template, before=(): []  # the managers give nothing
    for now in (0, 1, 40, 41, 80):
        duty.tick([_web("stack-a")], now)
    assert jobs == []
    assert len([line for line in lines if "gave no address" in line]) == 2  # once for each node's placeholder


def test_a_lost_node_gets_no_job_and_a_removed_one_loses_its_placeholder(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    client.api.down = {"n2"}
    duty.tick([_web("stack-a")], 0)
    assert "node.id!=n2" in jobs[0]["Placement"]["Constraints"]
    assert _env(jobs[0], "EDGE_CONTAINERS") == "n1=c1"
    client.api.down = set()  # back: its task gets the network then
    duty.tick([_web("stack-a")], 1)
    assert len(jobs) == 2 and _env(jobs[1], "EDGE_CONTAINERS") == "n2=c2"
    gone = "qoddi-edge-address-gone-stack-a"
    client.api.placeholders[gone] = {"ID": gone, "Spec": {"Name": gone, "Labels": {
        edge_networks.NODE_LABEL: "gone", edge_networks.NETWORK_LABEL: "stack-a"}}}
    duty.tick([_web("stack-a")], 2)
    assert sorted(_held(client)) == [("n1", "stack-a"), ("n2", "stack-a")]


def test_a_network_no_web_process_is_on_any_more_is_left_then_its_placeholders_go(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a"), _web("stack-b")], 0)
    duty.tick([_web("stack-a")], 1)  # stack-b's last app removed
    assert len(jobs) == 2
    assert _env(jobs[1], "CONNECT") == "n1:stack-b:- n2:stack-b:-"
    assert jobs[1]["Networks"] == []  # the job's task does not join what its node leaves
    assert sorted(_held(client)) == [("n1", "stack-a"), ("n2", "stack-a")]
    duty.tick([_web("stack-a")], 2)
    assert len(jobs) == 2  # nothing more to do
    duty.tick([_web("stack-a"), _web("stack-b")], 3)  # a new app in stack-b: joined again
    assert _env(jobs[2], "CONNECT") == "n1:stack-b:10.0.b.4 n2:stack-b:10.0.b.5"


def test_a_network_is_left_after_the_controllers_restart_and_where_the_job_failed_later(monkeypatch):
    results = {"n2": "failed"}
    client, duty, jobs = _duty(monkeypatch, results)
    duty.tick([_web("stack-a"), _web("stack-b")], 0)
    restarted = Duty(client)  # remembers nothing: the placeholders say what was joined
    restarted.tick([_web("stack-a")], 100)
    assert _env(jobs[-1], "CONNECT") == "n1:stack-a:10.0.a.2 n1:stack-b:- n2:stack-a:10.0.a.3 n2:stack-b:-"
    assert sorted(_held(client)) == [("n1", "stack-a"), ("n2", "stack-a"), ("n2", "stack-b")]  # n2's job failed
    restarted.tick([_web("stack-a")], 101)
    assert len(jobs) == 2  # n2 waits for its retry
    results.clear()
    restarted.tick([_web("stack-a")], restarted.retry_at["t2"])
    assert _env(jobs[-1], "CONNECT") == "n2:stack-a:10.0.a.3 n2:stack-b:-"
    assert sorted(_held(client)) == [("n1", "stack-a"), ("n2", "stack-a")]


def test_a_node_without_a_running_edge_loses_the_placeholders_of_networks_left(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a")], 0)
    client.api.edge_tasks = [_task("t1", "n1", "c1")]  # n2's edge task is not running
    duty.tick([], 1)
    assert _env(jobs[-1], "CONNECT") == "n1:stack-a:-"
    assert _held(client) == {}


def test_a_node_down_keeps_its_placeholders_until_it_is_back(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a")], 0)
    client.api.down = {"n2"}  # its edge container may still hold the address
    duty.tick([], 1)
    assert sorted(_held(client)) == [("n2", "stack-a")]
    client.api.down = set()
    duty.tick([], 2)
    assert _env(jobs[-1], "CONNECT") == "n2:stack-a:-" and _held(client) == {}


def test_a_node_whose_join_fails_still_leaves(monkeypatch):
    results = {}
    client, duty, jobs = _duty(monkeypatch, results)
    duty.tick([_web("stack-a")], 0)
    results["n2"] = "failed"  # n2 cannot join stack-b, but it leaves stack-a (its output says so)
    real = certificates.run_global_job

    def partly(client_, name, component, template, timeout):
        states, output = real(client_, name, component, template, timeout)
        return states, output + "; left stack-a on node n2"
    monkeypatch.setattr(certificates, "run_global_job", partly)
    duty.tick([_web("stack-b")], 1)
    assert sorted(_held(client)) == [("n1", "stack-b"), ("n2", "stack-b")]  # n2's stack-a address freed


def test_a_network_a_web_process_came_back_to_during_the_job_keeps_its_addresses(monkeypatch):
    client, duty, jobs = _duty(monkeypatch, {})
    duty.tick([_web("stack-a"), _web("stack-b")], 0)
    real = certificates.run_global_job

    def meanwhile(client_, name, component, template, timeout):
        client.api.web = [_web("stack-a"), _web("stack-b")]  # an app of stack-b deployed while the job ran
        return real(client_, name, component, template, timeout)
    monkeypatch.setattr(certificates, "run_global_job", meanwhile)
    duty.tick([_web("stack-a")], 1)
    assert sorted(_held(client)) == [("n1", "stack-a"), ("n1", "stack-b"), ("n2", "stack-a"), ("n2", "stack-b")]
    monkeypatch.setattr(certificates, "run_global_job", real)
    duty.tick([_web("stack-a"), _web("stack-b")], 2)  # joined again, with the same addresses
    assert _env(jobs[-1], "CONNECT") == "n1:stack-b:10.0.b.2 n2:stack-b:10.0.b.3"


def _script(tmp_path, answers, connect="n1:net-a:10.0.1.2 n2:net-a:10.0.1.3 n2:net-b:10.0.2.3"):
    """CONNECT_SCRIPT under sh, with a socat that answers each request from ``answers`` in turn."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for index, answer in enumerate(answers):
        (tmp_path / f"answer{index}").write_text(answer)
    (bin_dir / "socat").write_text(
        f'#!/bin/sh\nn=$(ls {tmp_path} | grep -c "^request")\ncat > {tmp_path}/request$n\n'
        f'cat {tmp_path}/answer$n\n')
    (bin_dir / "socat").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", NODE="n2", EDGE_CONTAINERS="n1=c1 n2=c2",
               CONNECT=connect)
    return subprocess.run(["sh", "-c", edge_networks.CONNECT_SCRIPT], env=env, capture_output=True, text=True,
                          check=False)


def _network(cid="", address=""):
    """GET /networks/<id>'s answer, with the container on it at ``address`` (or not on it)."""
    containers = f'"{cid}":{{"Name":"edge","IPv4Address":"{address}/24","IPv6Address":""}}' if cid else ""
    return f'HTTP/1.0 200 OK\r\n\r\n{{"Name":"qoddi-x","Containers":{{{containers}}},"Options":{{}}}}\n'


def test_the_script_connects_this_nodes_edge_container_and_leaves_one_it_has(tmp_path):
    result = _script(tmp_path, [_network(), "HTTP/1.0 200 OK\r\n\r\n", _network("c2", "10.0.2.3")])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["connected net-a as 10.0.1.3", "had net-b"]
    assert (tmp_path / "request0").read_bytes().decode().startswith("GET /networks/net-a HTTP/1.0\r\n")
    request = (tmp_path / "request1").read_bytes().decode()
    assert request.startswith("POST /networks/net-a/connect HTTP/1.0\r\n")
    body = '{"Container":"c2","EndpointConfig":{"IPAMConfig":{"IPv4Address":"10.0.1.3"}}}'
    assert request.endswith("\r\n\r\n" + body) and f"Content-Length: {len(body)}\r\n" in request
    assert not (tmp_path / "request3").exists()  # n1's entry is not this node's


def test_the_script_connects_anew_a_container_that_has_another_address(tmp_path):
    result = _script(tmp_path, [_network(), "HTTP/1.0 200 OK\r\n\r\n", _network("c2", "10.0.2.99"),
                                "HTTP/1.0 200 OK\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\n"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "connected net-b again as 10.0.2.3"
    assert (tmp_path / "request3").read_bytes().decode().startswith("POST /networks/net-b/disconnect HTTP/1.0\r\n")
    assert (tmp_path / "request4").read_bytes().decode().startswith("POST /networks/net-b/connect HTTP/1.0\r\n")


def test_the_script_leaves_a_network_the_container_is_on_and_says_so_of_one_it_is_not(tmp_path):
    result = _script(tmp_path, [_network("c2", "10.0.1.3"), "HTTP/1.0 200 OK\r\n\r\n", _network()],
                     connect="n2:net-a:- n2:net-b:-")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["left net-a on node n2", "was not on net-b on node n2"]
    request = (tmp_path / "request1").read_bytes().decode()
    assert request.startswith("POST /networks/net-a/disconnect HTTP/1.0\r\n")
    assert request.endswith('{"Container":"c2","Force":true}')
    assert not (tmp_path / "request3").exists()


def test_the_script_does_not_take_an_engine_error_for_a_network_it_was_not_on(tmp_path):
    result = _script(tmp_path, ['HTTP/1.0 500 Error\r\n\r\n{"message":"busy"}', _network()],
                     connect="n2:net-a:- n2:net-b:-")
    assert result.returncode == 1
    assert "could not ask about net-a on node n2" in result.stderr and "busy" in result.stderr
    assert result.stdout.splitlines() == ["was not on net-b on node n2"]


def test_the_script_fails_when_the_engine_refuses(tmp_path):
    result = _script(tmp_path, [_network(), "HTTP/1.0 200 OK\r\n\r\n", _network(),
                                'HTTP/1.0 500 Error\r\n\r\n{"message":"no such network"}'])
    assert result.returncode == 1
    assert "could not connect net-b" in result.stderr and "no such network" in result.stderr
