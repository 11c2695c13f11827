# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private stacks: a web process is on its stack's network alone, and the edge joins every stack's.

A web process once joined the edge's network too, where a web process of any stack reached every
other on any port. Now it is on its stack's network only (the stack's apps reach it by name on any
port, no other stack can), and the edge joins each network a web process is on. Not through the edge
service's spec: a new network there replaces its tasks, and a global service with host-mode ports
stops a node's task before it starts the next one (requests dropped at every new stack). Instead each
running edge container is connected to the networks (``docker network connect``, which a running
container takes as a new interface, its connections untouched), by a one-off global job on the edge
nodes (edge_nodes.py's way of reaching them):
- Docker finds an attachable overlay network on a node only while a container there uses it: the
  job's own task joins the networks it connects, so the node has them when it asks;
- it runs on the edge's own image (sh and socat, on every edge node) and asks its node's engine
  through the mounted socket, for the edge container the controller names (Swarm lists each task's).

The address: a task's container connected by hand gets one from its node's own view of the network,
which knows nothing of what the managers gave out elsewhere (a service's virtual IP, a task on
another node: measured, the first connection took the VIP of the network's first service). So each
edge node has an address per stack network that the managers hold for it: the virtual IP of a
placeholder service with no task (``qoddi-edge-address-<node>-<network>``, on that network alone,
never updated), which nothing ever serves on; the job connects the edge container with exactly that
address.

The controller remembers which edge task has which networks: a task replaced, a new stack or a
placeholder gone makes a new job. After the controller's own restart it runs one again: a network
the container is on already with the address held for it is left as it is (else it is connected anew
with that one). A task whose job failed is tried again
later, alone, waiting twice as long each time (up to RETRY_MAX); a new task starts afresh.

A stack network no web process is on any more is left: the same job disconnects each edge
container from it, then its placeholders are removed. Nothing holds the network then but the stack's
datastores (if any), and ``docker network rm`` takes it once they are gone; nothing removes a stack's
network by itself (a stack has no lifetime of its own: its next app makes it again).
"""

from __future__ import annotations

import re

import certificates

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import PREFIX, Label

log = certificates.log
RETRY = 15.0
RETRY_MAX = 300.0
JOB_TIMEOUT = 30.0
PER_JOB = 10  # networks a node connects in one job (each takes a moment): the rest at the next tick
UNALLOCATED_WARNING = 30.0  # seconds a placeholder may wait for its address before the log says so
PLACEHOLDER = "qoddi-edge-address-"
KIND = "edge-address"
LEAVE = "-"  # the address that says: leave the network
NODE_LABEL = PREFIX + "edge.node"
NETWORK_LABEL = PREFIX + "edge.network"

# Env: NODE (Swarm's template: this task's node), CONNECT ("<node id>:<network id>:<address> ...", the
# address "-" to leave that network), EDGE_CONTAINERS ("<node id>=<container id> ..."). One line a
# network; exit 1 when one failed.
CONNECT_SCRIPT = r"""
cid=""
for pair in $EDGE_CONTAINERS; do
  [ "${pair%%=*}" = "$NODE" ] && cid=${pair#*=}
done
[ -n "$cid" ] || { echo "no edge container of this node ($NODE) was named" >&2; exit 1; }
# engine METHOD PATH [BODY]: the engine's whole answer (HTTP/1.0: it closes when done).
engine() {
  printf '%s %s HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' \
    "$1" "$2" "${#3}" "$3" | socat -T 10 - UNIX-CONNECT:/var/run/docker.sock,shut-none
}
status() { printf '%s\n' "$1" | head -n 1 | cut -d ' ' -f 2; }
failed=0
for entry in $CONNECT; do
  node=${entry%%:*}; rest=${entry#*:}; net=${rest%%:*}; address=${rest#*:}
  [ "$node" = "$NODE" ] || continue
  # What the network says of the container (its own view: a failed connect blanks the container's).
  network=$(engine GET "/networks/$net" "")
  mine=$(printf '%s' "$network" | tr -d '\n' | sed -n "s/.*\"$cid\":{\([^}]*\)}.*/\1/p")
  if [ "$address" = - ]; then
    # Each line names its node: the controller frees a node's address only where it left (or was never on).
    case "$(status "$network")" in
      200|404) ;;  # 404: this node no longer has the network
      *) echo "could not ask about $net on node $NODE: $(printf '%s\n' "$network" | tail -n 1)" >&2
         failed=1; continue ;;
    esac
    [ -n "$mine" ] || { echo "was not on $net on node $NODE"; continue; }
    answer=$(engine POST "/networks/$net/disconnect" "{\"Container\":\"$cid\",\"Force\":true}")
    if [ "$(status "$answer")" = 200 ]; then echo "left $net on node $NODE"; continue; fi
    echo "could not leave $net on node $NODE: $(printf '%s\n' "$answer" | tail -n 1)" >&2
    failed=1; continue
  fi
  again=""
  case "$mine" in
    *"\"IPv4Address\":\"$address/"*) echo "had $net"; continue ;;
    "") ;;
    # Connected with an address nobody holds any more (its placeholder removed by hand), which the
    # managers would give out again: connected anew, with the one held for it.
    *) engine POST "/networks/$net/disconnect" "{\"Container\":\"$cid\",\"Force\":true}" >/dev/null; again=" again" ;;
  esac
  body="{\"Container\":\"$cid\",\"EndpointConfig\":{\"IPAMConfig\":{\"IPv4Address\":\"$address\"}}}"
  answer=$(engine POST "/networks/$net/connect" "$body")
  if [ "$(status "$answer")" = 200 ]; then echo "connected $net$again as $address"; continue; fi
  echo "could not connect $net: $(printf '%s\n' "$answer" | tail -n 1)" >&2
  failed=1
done
exit $failed
"""


def connect_job(edge: dict, containers: dict[str, str], connect: dict[str, dict[str, str]], excluded: list[str]
                ) -> dict:
    """The job's task template: the edge's image and placement, but the ``excluded`` nodes. ``containers``:
    node id -> its edge container; ``connect``: node id -> {network id: the address to connect it with,
    or LEAVE}. The task joins every network it connects (so that its node has them), none it leaves."""
    template = edge["Spec"]["TaskTemplate"]
    placement = dict(template.get("Placement") or {})
    placement.pop("MaxReplicas", None)
    placement["Constraints"] = [*(placement.get("Constraints") or []), *(f"node.id!={n}" for n in excluded)]
    entries = [f"{node}:{network}:{address}" for node, networks in sorted(connect.items())
               for network, address in sorted(networks.items())]
    networks = sorted({network for networks in connect.values() for network, address in networks.items()
                       if address != LEAVE})
    return {
        "ContainerSpec": {
            "Image": template["ContainerSpec"]["Image"],
            "Command": ["sh", "-c", CONNECT_SCRIPT],
            "Env": ["NODE={{.Node.ID}}", "CONNECT=" + " ".join(entries),
                    "EDGE_CONTAINERS=" + " ".join(f"{n}={c}" for n, c in sorted(containers.items()))],
            "User": "0",  # the engine's socket is root's
            "Mounts": [{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/var/run/docker.sock"}],
            "Labels": {certificates.COMPONENT: "networks"},
        },
        "Placement": placement,
        "Networks": [{"Target": n} for n in networks],
        "RestartPolicy": {"Condition": "none"},
    }


def placeholder_spec(edge: dict, node: str, networks: list[str]) -> dict:
    """The task template of an edge node's placeholder: no task ever runs (0 replicas); its virtual IP
    on each network is the address the managers hold for that node's edge container."""
    return {
        "ContainerSpec": {"Image": edge["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"],
                          "Command": ["true"], "Labels": {certificates.COMPONENT: KIND}},
        "Placement": {"Constraints": [f"node.id=={node}"]},
        "Networks": [{"Target": n} for n in networks],
    }


def web_networks(services: list[dict], edge_networks: set[str]) -> set[str]:
    """The networks (ids) the web processes are on, but the edge's own."""
    return {n["Target"] for s in services for n in s["Spec"]["TaskTemplate"].get("Networks") or []} - edge_networks


def addresses(placeholder: dict) -> dict[str, str]:
    """{network id: address} the managers gave the placeholder (its virtual IPs, without the prefix)."""
    return {vip["NetworkID"]: vip["Addr"].split("/")[0]
            for vip in (placeholder.get("Endpoint") or {}).get("VirtualIPs") or [] if vip.get("Addr")}


class EdgeNetworks:
    def __init__(self, client, timeout: float = JOB_TIMEOUT):
        self.client = client
        self.timeout = timeout
        self.connected: dict[str, set[str]] = {}  # edge task id -> the networks its container was connected to
        self.failures: dict[str, int] = {}  # edge task id -> failed jobs in a row (a new task starts afresh)
        self.retry_at: dict[str, float] = {}  # edge task id -> when its node may get a job again
        self.waiting: dict[tuple[str, str], float] = {}  # (node, network) -> since when its placeholder has no address
        self.said: set[tuple[str, str]] = set()  # those the log named
        self.swept = False

    def tick(self, services: list[dict], nodes: list[dict], edge_tasks: list[dict], now: float) -> None:
        """Connect every running edge container to every network of the web ``services`` (``nodes``: the
        Swarm's; ``edge_tasks``: certificates.edge_tasks)."""
        try:
            edge = self.client.api.inspect_service(certificates.EDGE)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return  # no edge yet: the haproxy role makes it
            raise
        own = {n["Target"] for n in edge["Spec"]["TaskTemplate"].get("Networks") or []}
        wanted = web_networks(services, own)
        tasks = [t for t in edge_tasks if t["Status"]["State"] == "running"
                 and (t["Status"].get("ContainerStatus") or {}).get("ContainerID")]
        running = {t["ID"] for t in tasks}
        for memory in (self.connected, self.failures, self.retry_at):
            for task in [task for task in memory if task not in running]:
                del memory[task]
        placeholders = self.forget_placeholders({n["ID"] for n in nodes})
        for task in tasks:
            # A placeholder gone (removed by hand) freed its address: connected again, with a new one.
            self.connected[task["ID"]] = {n for n in self.connected.get(task["ID"], set())
                                          if (task["NodeID"], n) in placeholders}
        missing = {t["ID"]: wanted - self.connected[t["ID"]] for t in tasks if self.retry_at.get(t["ID"], 0) <= now}
        missing = {task: networks for task, networks in missing.items() if networks}
        # The networks no web process is on any more, by node: its edge container leaves them. A node
        # that takes jobs and has no edge task has nothing to leave: its placeholders go at once. A node
        # down or drained keeps them until it is back (its container may still hold the addresses).
        stale: dict[str, dict[str, str]] = {}
        nodes_of = {t["ID"]: t["NodeID"] for t in tasks}
        without_edge = {n["ID"] for n in nodes if certificates.takes_jobs(n)} - {t["NodeID"] for t in edge_tasks}
        for (node, network), placeholder in placeholders.items():
            if network in wanted:
                continue
            if node in nodes_of.values():
                stale.setdefault(node, {})[network] = LEAVE
            elif node in without_edge:
                self.remove_placeholder(placeholder)
        # At most PER_JOB a node (the job's log, which says what was left, keeps its last lines only).
        stale = {node: dict(sorted(networks.items())[:PER_JOB]) for node, networks in stale.items()
                 if all(self.retry_at.get(t, 0) <= now for t, n in nodes_of.items() if n == node)}
        if not missing and not stale:
            return
        if not self.swept:  # a job a controller stopped mid-way left behind
            certificates.sweep_jobs(self.client, "networks", "networks")
            self.swept = True
        connect = {node: dict(networks) for node, networks in stale.items()}
        for task, networks in missing.items():
            try:
                held = self.reserve(edge, nodes_of[task], sorted(networks)[:PER_JOB], placeholders, now)
            except Exception as exc:  # noqa: BLE001 - one node's trouble stops no other
                self.failed(task, now, f"its addresses could not be reserved: {exc}")
                continue
            if held:
                connect.setdefault(nodes_of[task], {}).update(held)
        if not connect:
            return  # the managers have not given the addresses yet: next tick
        containers = {t["NodeID"]: t["Status"]["ContainerStatus"]["ContainerID"]
                      for t in tasks if t["NodeID"] in connect}
        excluded = sorted(n["ID"] for n in nodes if n["ID"] not in connect)
        joining = sorted({network for networks in connect.values() for network, a in networks.items() if a != LEAVE})
        leaving = sorted({network for networks in stale.values() for network in networks})
        names = self.names(joining)
        states, output = certificates.run_global_job(
            self.client, f"qoddi-networks-{now:.0f}", "networks",
            connect_job(edge, containers, connect, excluded), self.timeout)
        done = {t["NodeID"] for t in states if t["Status"]["State"] == "complete"}
        for task in tasks:
            if task["NodeID"] not in connect:
                continue
            if task["NodeID"] in done:
                self.connected[task["ID"]] |= {n for n, a in connect[task["NodeID"]].items() if a != LEAVE}
                self.failures.pop(task["ID"], None)
                self.retry_at.pop(task["ID"], None)
            else:
                self.failed(task["ID"], now, "")
        # Left: the placeholders go, which frees the addresses they held (and the network, of the edge),
        # for each node and network the job's output says was left (a node whose joins failed still
        # leaves), unless a web process came to the network meanwhile (the next tick's join keeps them).
        if stale:
            again = web_networks(self.client.api.services(filters={"label": f"{Label.PROCESS}=web"}), own)
            left = [(node, network) for node, networks in stale.items() for network in networks
                    if re.search(rf"(^|; )(left|was not on) {re.escape(network)} on node {re.escape(node)}(;|$)",
                                 output)]
            for node, network in left:
                for task in tasks:
                    if task["NodeID"] == node:
                        self.connected[task["ID"]].discard(network)  # joined again at the next tick if wanted
                if network not in again:
                    self.remove_placeholder(placeholders[(node, network)])
            if left:
                log(f"edge: left the networks {', '.join(self.names(sorted({n for _node, n in left})))} (no web "
                    f"process is on them any more) on {len({node for node, _n in left})} edge node(s): {output}")
        if done and "connected " in output:  # not when every container had them (a restarted controller's check)
            log(f"edge: joined the networks {', '.join(names)} on {len(done)} edge node(s): {output}")
        if done != set(connect):
            failed = [t for t in states if t["Status"]["State"] != "complete"]
            log(f"edge: could not join (or leave) the networks {', '.join(self.names(joining + leaving))} on "
                f"{len(connect) - len(done)} of "
                f"{len(connect)} edge node(s), where apps of those stacks answer 503 meanwhile (tried again later): "
                f"{certificates.job_errors(failed) or 'no task ran'} {output}")

    def failed(self, task: str, now: float, why: str) -> None:
        """Try the task's node again later, twice as long after each failure in a row."""
        self.failures[task] = self.failures.get(task, 0) + 1
        self.retry_at[task] = now + min(RETRY * 2 ** (self.failures[task] - 1), RETRY_MAX)
        if why:
            log(f"edge: an edge task ({task}) does not join its stack networks yet, {why}")

    def reserve(self, edge: dict, node: str, networks: list[str], placeholders: dict, now: float) -> dict[str, str]:
        """The addresses the managers hold for ``node``'s edge container on ``networks``: one placeholder
        per node and network, made once and never updated (a service whose networks change gets new
        virtual IPs on all of them: measured); those not given yet are left out (the next tick asks again)."""
        held = {}
        for network in networks:
            placeholder = placeholders.get((node, network))
            if placeholder is None:
                name = f"{PLACEHOLDER}{node[:12]}-{network[:12]}"
                self.client.api.create_service(placeholder_spec(edge, node, [network]), name=name,
                                               labels={certificates.COMPONENT: KIND, NODE_LABEL: node,
                                                       NETWORK_LABEL: network},
                                               mode={"Replicated": {"Replicas": 0}})
                placeholder = self.client.api.inspect_service(name)
            address = addresses(placeholder).get(network)
            if address:
                held[network] = address
                self.waiting.pop((node, network), None)
                self.said.discard((node, network))
                continue
            since = self.waiting.setdefault((node, network), now)
            if now - since > UNALLOCATED_WARNING and (node, network) not in self.said:
                self.said.add((node, network))  # once
                log(f"edge: the managers gave no address on {network} to {placeholder['Spec']['Name']} after "
                    f"{UNALLOCATED_WARNING:g} s (a full subnet?): the edge on node {node} cannot join that stack, "
                    "whose apps answer 503 there")
        return held

    def remove_placeholder(self, placeholder: dict) -> None:
        try:
            self.client.api.remove_service(placeholder["ID"])
        except Exception as exc:
            if getattr(exc, "status_code", None) != 404:  # gone already (by hand): nothing to do
                raise

    def forget_placeholders(self, nodes: set[str]) -> dict[tuple[str, str], dict]:
        """The placeholders by (node, network); those of nodes no longer in the Swarm are removed."""
        kept = {}
        for service in self.client.api.services(filters={"label": f"{certificates.COMPONENT}={KIND}"}):
            labels = service["Spec"].get("Labels") or {}
            if labels.get(NODE_LABEL) in nodes:
                kept[(labels[NODE_LABEL], labels.get(NETWORK_LABEL))] = service
            else:
                self.client.api.remove_service(service["ID"])
        return kept

    def names(self, ids: list[str]) -> list[str]:
        names = []
        for network in ids:
            try:
                names.append(self.client.api.inspect_network(network)["Name"])
            except Exception:  # noqa: BLE001 - only for the log
                names.append(network)
        return names
