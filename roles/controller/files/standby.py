# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller on any manager: a standby that takes over when the first manager is lost, and the
state it needs copied to every manager.

The controller (``qoddi-controller``) runs on the first manager, where the playbooks write the ACME
account, keys, certificates and renewal settings (qoddi.paas.letsencrypt) and the edge's settings
(qoddi.paas.haproxy's routes.json). With more managers, the role also runs ``qoddi-controller-standby``
on the others: the same code, idle while the first manager is ready (``Standby``). When Swarm says
that node is down (or it has not been ready for ``grace`` seconds), the standby does every duty:
pending restarts, daily restarts, the edge following deploys, renewals. When the node is back, the
standby hands what it changed back and goes idle; the controller there starts again.

What the duties need besides the cluster's own state is those files, which only a task on a node can
write there: so the active controller copies them (``ManagerCopies``) to the other managers with a
one-off global job, on its own image, that gets them as Swarm secrets (keys never in a log, a
label or an argument) and writes those that differ, with their modes; the ACME directory is mirrored
(a file gone here goes there). A manager that missed a copy (down, or the job failed) gets the next
one; a failed copy is tried again after ``RETRY`` seconds.

Trade-off, written in docs/architecture.md: two writers never run at once, but one may start before
the other's last copy lands (the first manager comes back while the standby's last copy is on its
way): a certificate renewed during the outage may then be renewed once more. Nothing is lost that
the next renewal check does not make again.
"""

from __future__ import annotations

import os
import threading
import time

import certificates
import edge_nodes

log = certificates.log
COMPONENT = certificates.COMPONENT
IN_SECRETS = "/run/secrets/qoddi-copies"
# Where the job mounts the two directories it writes (their host paths are the controller's mounts').
JOB_ACME = "/qoddi/acme"
JOB_EDGE = "/qoddi/edge"
RETRY = 30.0
STANDBY_SERVICE = "qoddi-controller-standby"
# Where a standby runs, the controller on the first manager waits this long after it starts before it
# copies its files or does a duty that reads them (the edge, renewals): a standby that ran while this
# node was down hands its state back first.
FIRST_COPY_AFTER = 60.0

# Run by the job in the controller's image (sh, cmp). Manifest lines: "<index|-> <mode> <path>",
# path "acme/<file>" or "edge/routes.json"; "-" is an empty file (Swarm refuses an empty secret, so
# the manifest starts with a line the script skips: no file at all is still a manifest).
COPY_SCRIPT = r"""
set -eu
src() { if [ "$1" = - ]; then echo /dev/null; else echo "$IN/$1"; fi; }
changed=0
while read -r index mode path; do
  case "$path" in acme/*) dir=$JOB_ACME;; edge/*) dir=$JOB_EDGE;; *) continue;; esac
  file="$dir/${path#*/}"
  if cmp -s "$(src "$index")" "$file" && [ "$(stat -c %a "$file")" = "$mode" ]; then continue; fi
  { cp "$(src "$index")" "$dir/.qoddi-copy.new" && chmod "$mode" "$dir/.qoddi-copy.new" &&
    mv "$dir/.qoddi-copy.new" "$file"; } || exit 1
  changed=$((changed + 1))
done < "$IN/manifest"
# The ACME directory is mirrored: what the active controller no longer has goes (a renewal's marker).
for file in "$JOB_ACME"/*; do
  [ -f "$file" ] || continue
  if ! awk -v p="acme/${file##*/}" '$3 == p {found = 1} END {exit !found}' "$IN/manifest"; then
    rm -f "$file"; changed=$((changed + 1))
  fi
done
echo "$changed file(s) changed"
"""


class Standby:
    """Whether this controller does its duties now: always, unless it stands by for ``primary`` (the
    first manager's node id), in which case only while that node is lost."""

    def __init__(self, client, primary: str, grace: float, now: float):
        self.client = client
        self.primary = primary
        self.grace = grace
        self.started = now
        self.has_standby: bool | None = None  # for the first manager's: whether a standby runs, asked once
        self.ready_at = now  # when the primary was last seen ready (the start counts: no takeover at once)
        self.was_active = False
        self.handing_over = False  # went idle, and its changes are not back on the first manager yet
        self.checked_at = -1.0
        self.lock = threading.Lock()  # the duties' threads ask at once

    def active(self, now: float) -> bool:
        if not self.primary:
            return True
        with self.lock:
            if now - self.checked_at < 1:
                return self.was_active
            self.checked_at = now
            state = self.primary_state()
            if state == "ready":
                self.ready_at = now
            # Only "down" is Swarm's verdict; "disconnected" (its agent looking for a new manager) and
            # "unknown" (a leader election) pass, unless they last the grace. Once taken over, until
            # the node is ready again: no flapping on a moment of no answer.
            lost = state == "down" or now - self.ready_at >= self.grace or (self.was_active and state != "ready")
            if lost != self.was_active:
                self.handing_over = not lost
                log(f"standby: the first manager's node is {state}: "
                    f"{'taking over the duties' if lost else 'it is back; handing over and standing by'}")
            self.was_active = lost
            return lost

    def may_read_files(self, now: float) -> bool:
        """Whether the duties that read the copied files may run (the standby's, once active: always)."""
        if self.primary or now - self.started >= FIRST_COPY_AFTER:
            return True
        if self.has_standby is None:
            self.has_standby = bool(self.client.api.services(filters={"name": STANDBY_SERVICE}))
        return not self.has_standby

    def primary_state(self) -> str:
        try:
            return self.client.api.inspect_node(self.primary)["Status"].get("State", "unknown")
        except Exception:  # noqa: BLE001 - no answer about it (a leader election): not ready
            return "unknown"


def read_files(acme_dir: str, edge_dir: str) -> dict[str, tuple[int, bytes]]:
    """What the duties need on a node, as {path: (mode, bytes)}: the ACME directory's files and the
    edge's settings. Dot files are a writer's temporaries."""
    files = {}
    for directory, prefix, names in ((acme_dir, "acme", None), (edge_dir, "edge", ["routes.json"])):
        try:
            listing = names or sorted(os.listdir(directory))
        except OSError:
            continue
        for name in listing:
            path = os.path.join(directory, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                files[f"{prefix}/{name}"] = (os.stat(path).st_mode & 0o777, handle.read())
    return files


def pack(files: dict[str, tuple[int, bytes]]) -> dict[str, bytes]:
    """The job's secrets, by their file names: one per non-empty file, and the manifest."""
    paths = sorted(files)
    contents = {str(i): files[p][1] for i, p in enumerate(paths) if files[p][1]}
    lines = [f"{i if files[p][1] else '-'} {files[p][0]:o} {p}\n" for i, p in enumerate(paths)]
    contents["manifest"] = ("- - qoddi-copies\n" + "".join(lines)).encode()
    return contents


def copy_job(controller: dict, secrets: list[dict], own_node: str, unusable: list[str] = ()) -> dict:
    """The job's task template: the controller's own image, on every manager but this one and the
    ``unusable`` ones (down, drained: their task would wait there until the job's timeout), with the
    host directories the controller mounts at /etc/qoddi/acme and at the edge's configuration path."""
    container = controller["Spec"]["TaskTemplate"]["ContainerSpec"]
    sources = {m["Target"]: m["Source"] for m in container.get("Mounts", []) if m.get("Type") == "bind"}
    edge_dir = os.environ.get("QODDI_EDGE_CONFIG_DIR", "/etc/qoddi/haproxy")
    mounts = [{"Type": "bind", "Source": sources.get(target, target), "Target": inside}
              for target, inside in (("/etc/qoddi/acme", JOB_ACME), (edge_dir, JOB_EDGE))]
    return {
        "ContainerSpec": {
            "Image": container["Image"],
            "Command": ["sh", "-c", COPY_SCRIPT],
            "Env": [f"IN={IN_SECRETS}", f"JOB_ACME={JOB_ACME}", f"JOB_EDGE={JOB_EDGE}"],
            "Mounts": mounts,
            "Secrets": secrets,
            "Labels": {COMPONENT: "copies"},
        },
        "Placement": {"Constraints": ["node.role==manager", *(f"node.id!={n}" for n in [own_node, *unusable])]},
        "RestartPolicy": {"Condition": "none"},
    }


class ManagerCopies:
    def __init__(self, client, service: str, acme_dir: str, edge_dir: str, now: float, timeout: float = 30):
        self.client = client
        self.service = service  # this controller's own service, whose image and mounts the job takes
        self.acme_dir = acme_dir
        self.edge_dir = edge_dir
        self.timeout = timeout
        self.own_node = ""
        self.unusable: list[str] = []
        self.applied = ""  # digest of the files and nodes the last copy brought every other manager to
        self.retry_at = now + FIRST_COPY_AFTER

    def other_managers(self) -> tuple[list[str], list[str]]:
        """The other managers a job can run on (ready and active), and those it cannot."""
        if not self.own_node:
            self.own_node = self.client.info()["Swarm"]["NodeID"]
        usable, unusable = [], []
        for node in self.client.api.nodes(filters={"role": "manager"}):
            if node["ID"] != self.own_node:
                (usable if certificates.takes_jobs(node) else unusable).append(node["ID"])
        return sorted(usable), sorted(unusable)

    def duty(self, gate: Standby, now: float) -> None:
        """Copy while this controller is active, and once more when a standby hands over: its changes
        go back to the first manager, which is then ready again."""
        if gate.active(now):
            self.tick(now)
        elif gate.handing_over and self.tick(now):
            gate.handing_over = False

    def tick(self, now: float) -> bool:
        """Bring the other managers to this node's files; True when they have them."""
        if now < self.retry_at:
            return False
        nodes, self.unusable = self.other_managers()
        if not nodes:
            return True
        files = read_files(self.acme_dir, self.edge_dir)
        wanted = edge_nodes.digest({p: f"{m:o}".encode() + b" " + d for p, (m, d) in files.items()}) + " ".join(nodes)
        if wanted == self.applied:
            return True
        self.retry_at = time.time() + RETRY  # until it succeeds, whatever stops it (an engine error too)
        certificates.sweep_jobs(self.client, "copies", "copies")
        if self.run(files, nodes):
            self.applied, self.retry_at = wanted, 0.0
            return True
        self.retry_at = time.time() + RETRY
        return False

    def run(self, files: dict[str, tuple[int, bytes]], nodes: list[str]) -> bool:
        controller = self.client.api.inspect_service(self.service)
        tasks, failed, output = certificates.run_files_job(
            self.client, "copies", pack(files), IN_SECRETS,
            lambda secrets: copy_job(controller, secrets, self.own_node, self.unusable), self.timeout)
        if failed or len(tasks) < len(nodes):
            log(f"standby: the state was not copied to {len(failed) or len(nodes) - len(tasks)} of {len(nodes)} "
                f"other manager(s) (next try in {RETRY:g} s): {certificates.job_errors(failed)} {output}")
            return False
        log(f"standby: the state ({len(files)} files) copied to {len(tasks)} other manager(s): {output}")
        return True
