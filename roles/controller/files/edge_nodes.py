# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The edge's files on the edge nodes other than the controller's own.

The edge duty (edge.py) writes the routes and certificates on its own node and reloads the edge
there through the local engine. The edge runs on every edge node, whose files only a task on that
node can write, and whose HAProxy only a process on that node can reload. So when what the edge
should hold changes, and the edge runs on other nodes too, a one-off global job on the edge's own
image, directories and placement (certificates.install_job's), minus the controller's node, gets
every file the edge should hold as Swarm secrets. On each node it:
1. writes the certificates that changed (a running HAProxy does not read them before a reload);
2. checks the new routes.cfg with the node's own haproxy.cfg (``haproxy -c``): refused, it stops
   there, and that node keeps its last good routes;
3. writes hosts.map and routes.cfg, removes the certificates of domains no longer routed;
4. when anything changed, saves the servers' state and asks the edge's master process to reload
   (its master socket, ``-S`` in the edge's command): the same hitless reload as the role's.
A node with nothing to change reloads nothing. The whole set is sent each time, so a node that
missed a change (down, or refused) is brought up to date by the next one; a failed node is tried
again after ``RETRY`` seconds.
"""

from __future__ import annotations

import hashlib
import time

import certificates

log = certificates.log
COMPONENT = certificates.COMPONENT
IN_SECRETS = "/run/secrets/qoddi-routes"
# The edge's master socket, in its state directory (a bind mount), so that the job reaches it.
EDGE_MASTER = certificates.EDGE_STATE + "/master.sock"
RETRY = 30.0

# Run by the job in the edge's image (sh, cmp, haproxy and socat). The manifest's lines are
# "<index> <path>", path relative to the configuration directory (hosts.map, routes.cfg,
# certs/<domain>.pem, backends/<app>.pem): the domains are checked before any reaches a route.
APPLY_SCRIPT = r"""
set -u
dir=$QODDI_EDGE_CONFIG
state=/var/lib/haproxy
# Files written by a run that could not reload (refused routes, no answer) still need one: a marker
# says so, so that the next run reloads even when it has nothing new to write.
pending=$state/.qoddi-reload-pending
changed=0
[ -e "$pending" ] && changed=1
src() { if [ "$1" = - ]; then echo /dev/null; else echo "$IN/$1"; fi; }  # "-": an empty file
put() {  # put <index> <path> <mode>: beside the target, then moved in (never half-written)
  if cmp -s "$(src "$1")" "$dir/$2"; then return 0; fi
  touch "$pending" && cp "$(src "$1")" "$dir/.qoddi-routes.new" && chmod "$3" "$dir/.qoddi-routes.new" &&
    mv "$dir/.qoddi-routes.new" "$dir/$2" && changed=1
}
while read -r index path; do
  # "=": a certificate the renewer's own job is installing, kept as it is.
  case "$index:$path" in
    =:*) ;;
    *:certs/*) put "$index" "$path" 0600 || exit 1;;
    # The certificates pinned for apps with TLS to their tasks, which the new routes.cfg names.
    *:backends/*) { mkdir -p "$dir/backends" && put "$index" "$path" 0644; } || exit 1;;
  esac
done < "$IN/manifest"
routes=$(src "$(awk '$2 == "routes.cfg" {print $1}' "$IN/manifest")")
if ! cmp -s "$routes" "$dir/routes.cfg"; then
  cp "$routes" "$dir/.routes.cfg.candidate"
  if ! out=$(haproxy -c -f "$dir/haproxy.cfg" -f "$dir/.routes.cfg.candidate" 2>&1); then
    rm -f "$dir/.routes.cfg.candidate"
    echo "HAProxy refused the new routes, this node keeps its last good ones: $(echo "$out" | grep ALERT)" >&2
    exit 1
  fi
  rm -f "$dir/.routes.cfg.candidate"
fi
while read -r index path; do
  case "$path" in certs/*|backends/*) ;; *) put "$index" "$path" 0644 || exit 1;; esac
done < "$IN/manifest"
# Certificates of domains no longer routed go, when the platform issues them (the role's rule).
for pem in "$dir"/certs/*.pem; do
  [ "$PRUNE" = yes ] && [ -e "$pem" ] || continue
  case "${pem##*/}" in 000-default.pem) continue;; esac
  if ! awk -v p="certs/${pem##*/}" '$2 == p {found = 1} END {exit !found}' "$IN/manifest"; then
    touch "$pending" && rm -f "$pem" && changed=1
  fi
done
# Pinned certificates of apps gone or without TLS to their tasks.
for pem in "$dir"/backends/*.pem; do
  [ -e "$pem" ] || continue
  if ! awk -v p="backends/${pem##*/}" '$2 == p {found = 1} END {exit !found}' "$IN/manifest"; then
    touch "$pending" && rm -f "$pem" && changed=1
  fi
done
if [ "$changed" = 0 ]; then echo "nothing to change"; exit 0; fi
# The servers' state first, so that the new workers start with the old ones' view of the backends;
# a state that could not be read leaves the last one in place.
echo "show servers state" | socat stdio "unix:$QODDI_EDGE_SOCKET" > "$state/.server-state.new" &&
  mv "$state/.server-state.new" "$state/server-state" || rm -f "$state/.server-state.new"
if ! echo reload | socat stdio "unix:$QODDI_EDGE_MASTER" >/dev/null; then
  echo "written, but the edge's master socket did not answer: reloaded at the next change" >&2
  exit 1
fi
rm -f "$pending"
echo "applied and reloaded"
"""


def apply_job(edge: dict, secrets: list[dict], own_node: str, prune_certificates: bool) -> dict:
    """The job's task template: certificates.install_job's (the edge's image, directories and
    placement), running APPLY_SCRIPT on every edge node but ``own_node``."""
    template = certificates.install_job(edge, secrets)
    spec = template["ContainerSpec"]
    spec["Command"] = ["sh", "-c", APPLY_SCRIPT]
    spec["Env"] = [*spec["Env"], f"QODDI_EDGE_MASTER={EDGE_MASTER}", f"IN={IN_SECRETS}",
                   f"PRUNE={'yes' if prune_certificates else 'no'}"]
    spec["Labels"] = {COMPONENT: "routes"}
    placement = dict(template["Placement"])
    placement["Constraints"] = [*(placement.get("Constraints") or []), f"node.id!={own_node}"]
    template["Placement"] = placement
    return template


def digest(files: dict[str, bytes]) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(p.encode() + b"\0" + d).digest() for p, d in sorted(files.items())))\
        .hexdigest()


class OtherEdges:
    def __init__(self, client, timeout: float = 30):
        self.client = client
        self.timeout = timeout
        self.own_node = ""
        self.applied = ""  # digest of the files and nodes the last job brought every other edge node to
        self.retry_at = 0.0

    def other_nodes(self, edge_tasks: list[dict]) -> list[str]:
        """The nodes other than this one where an edge task runs and a job can run (``edge_tasks``:
        certificates.edge_tasks)."""
        if not self.own_node:
            self.own_node = self.client.info()["Swarm"]["NodeID"]
        return sorted({t["NodeID"] for t in edge_tasks} - {self.own_node})

    def sync(self, files: dict[str, bytes], now: float, prune_certificates: bool, keep: set[str],
             edge_tasks: list[dict]) -> None:
        """Bring every other edge node to ``files`` (the whole set the edge should hold); with
        ``prune_certificates`` (the platform issues them) a certificate not in it is removed. The
        paths in ``keep`` (certificates the renewer's job is installing) are left as each node has them."""
        nodes = self.other_nodes(edge_tasks)
        if not nodes or now < self.retry_at:
            return
        files = {p: (b"=" if p in keep else d) for p, d in files.items()}
        wanted = digest(files) + " ".join(nodes) + str(prune_certificates)
        if wanted == self.applied:
            return
        try:
            edge = self.client.api.inspect_service(certificates.EDGE)
        except Exception:  # noqa: BLE001 - the edge is gone meanwhile: nothing to bring up to date
            return
        certificates.sweep_jobs(self.client, "routes", "routes")
        if self.run(edge, files, nodes, prune_certificates):
            self.applied, self.retry_at = wanted, 0.0
        else:
            # From the end of this try (a job can wait up to its timeout), not from the tick's start.
            self.retry_at = time.time() + RETRY

    def run(self, edge: dict, files: dict[str, bytes], nodes: list[str], prune_certificates: bool) -> bool:
        paths = sorted(files)
        # Swarm refuses an empty secret: an empty file (hosts.map with no app) is "-" in the manifest.
        # A kept certificate ("=" in place of its bytes, see sync) is "=" there, and travels not.
        manifest = "".join(f"{'=' if files[p] == b'=' else i if files[p] else '-'} {p}\n"
                           for i, p in enumerate(paths)).encode()
        contents = {str(i): files[p] for i, p in enumerate(paths) if files[p] not in (b"", b"=")}
        contents["manifest"] = manifest
        tasks, failed, output = certificates.run_files_job(
            self.client, "routes", contents, IN_SECRETS,
            lambda secrets: apply_job(edge, secrets, self.own_node, prune_certificates), self.timeout)
        if failed or len(tasks) < len(nodes):
            log(f"edge: routes not applied on {len(failed) or len(nodes) - len(tasks)} of {len(nodes)} other edge "
                f"node(s), which keep their last good files (next try in {RETRY:g} s): "
                f"{certificates.job_errors(failed)} {output}")
            return False
        log(f"edge: routes brought to {len(tasks)} other edge node(s): {output}")
        return True
