# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the platform's state from the engine's own answers (the cluster is the source of truth)."""

from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label


def summarize_swarm(info: dict) -> dict:
    """The Swarm part of `docker info`, reduced to what an operator asks first."""
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState", "inactive")
    return {
        "active": state == "active",
        "state": state,
        "node_id": swarm.get("NodeID") or None,
        "is_manager": bool(swarm.get("ControlAvailable")),
        "cluster_id": (swarm.get("Cluster") or {}).get("ID"),
        "managers": swarm.get("Managers", 0),
        "nodes": swarm.get("Nodes", 0),
    }


def summarize_node(attrs: dict) -> dict:
    """One Swarm node as the API describes it, flattened for playbooks."""
    spec = attrs.get("Spec") or {}
    desc = attrs.get("Description") or {}
    resources = desc.get("Resources") or {}
    status = attrs.get("Status") or {}
    return {
        "id": attrs.get("ID"),
        "hostname": desc.get("Hostname"),
        "role": spec.get("Role"),
        "availability": spec.get("Availability"),
        "state": status.get("State"),
        "address": status.get("Addr"),
        "labels": dict(spec.get("Labels") or {}),
        "engine_version": (desc.get("Engine") or {}).get("EngineVersion"),
        "cpus": resources.get("NanoCPUs", 0) / 1e9,
        "memory_mb": resources.get("MemoryBytes", 0) // (1024 * 1024),
        "leader": bool((attrs.get("ManagerStatus") or {}).get("Leader")),
    }


def summarize_images(images: list) -> list:
    """The platform's images (those carrying the org.qoddi.image label, or official ones given)."""
    out = []
    for attrs in images:
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        tags = attrs.get("RepoTags") or []
        out.append({
            "image": labels.get(Label.IMAGE),
            "tags": sorted(tags),
            "id": attrs.get("Id"),
            "source": labels.get(Label.SOURCE, "registry"),
            "python": labels.get(Label.PYTHON),
            "size_mb": round((attrs.get("Size") or 0) / 1e6, 1),
        })
    return sorted(out, key=lambda i: (i["image"] or "", i["tags"]))
