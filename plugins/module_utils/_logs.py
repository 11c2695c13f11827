# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An app's logs from every task on every node, merged in time order (qoddi_logs, Heroku's ``logs``).

Swarm gathers a service's logs from the nodes its tasks ran on (those it still lists: the running
ones and the last few that ended, a failed one included), with each line's time and, with
``details``, the node and task it came from. Each stream is asked for apart, so that a line says
whether it went to stdout or stderr. What a task is (its process, its replica number, its release)
is read from the task itself: its service's spec may have moved on to a newer release since.

This file imports nothing from Ansible.
"""

from __future__ import annotations

import datetime

DETAIL_NODE = "com.docker.swarm.node.id"
DETAIL_TASK = "com.docker.swarm.task.id"


def parse_line(raw: str) -> tuple[str, dict[str, str], str] | None:
    """``<RFC 3339 time> <k=v,k=v> <message>`` (timestamps and details) -> (time, details, message)."""
    stamp, unused_space, rest = raw.partition(" ")
    details, unused_space, message = rest.partition(" ")
    if not stamp or "=" not in details:
        return None
    return stamp, dict(pair.split("=", 1) for pair in details.split(",") if "=" in pair), message


def sort_key(stamp: str) -> str:
    """Swarm's stamps have nanoseconds and a Z: padded, they sort as text in time order."""
    whole, unused_dot, fraction = stamp.rstrip("Z").partition(".")
    return f"{whole}.{fraction.ljust(9, '0')}"


def task_facts(tasks: list[dict], hostnames: dict[str, str]) -> dict[str, dict]:
    """{task id: {process, replica, node, release}} from the tasks Swarm lists."""
    facts = {}
    for task in tasks:
        env = dict(e.split("=", 1) for e in task["Spec"]["ContainerSpec"].get("Env") or [] if "=" in e)
        facts[task["ID"]] = {"process": env.get("QODDI_PROCESS", ""), "replica": task.get("Slot") or 0,
                             "node": hostnames.get(task.get("NodeID", ""), task.get("NodeID", "")),
                             "release": int(env["QODDI_RELEASE"]) if env.get("QODDI_RELEASE", "").isdigit() else None,
                             "state": task["Status"]["State"]}
    return facts


def entries(raw_lines: list[str], stream: str, facts: dict[str, dict]) -> list[dict]:
    out = []
    for raw in raw_lines:
        parsed = parse_line(raw)
        if parsed is None:
            continue
        stamp, details, message = parsed
        fact = facts.get(details.get(DETAIL_TASK, ""), {})
        # Nanoseconds always written out (Swarm drops trailing zeros): times then sort as text too.
        out.append({"time": sort_key(stamp) + "Z", "stream": stream, "message": message,
                    "process": fact.get("process", ""), "replica": fact.get("replica", 0),
                    "node": fact.get("node", details.get(DETAIL_NODE, "")), "release": fact.get("release"),
                    "task_state": fact.get("state", "gone")})
    return out


def kept_entries(kept: list[dict], process: str = "release") -> list[dict]:
    """The lines of the kept release (or build) logs (module_utils/_release_log.py), each stamped with the
    time its command or build ended (the order of the lines is kept: the merge's sort is stable)."""
    return [{"time": sort_key(log["time"]) + "Z", "stream": "stdout", "message": line, "process": process,
             "replica": 0, "node": log.get("node", ""), "release": log.get("release"),
             "task_state": "complete" if log.get("ok") else "failed"}
            for log in kept for line in log.get("lines", [])]


def merged(groups: list[list[dict]], lines: int | None) -> list[dict]:
    """Every entry in time order, the last ``lines`` of them."""
    everything = sorted((e for group in groups for e in group), key=lambda e: e["time"])
    return everything[-lines:] if lines else everything


def since_epoch(value: str, now: float) -> int:
    """``since``: an ISO 8601 time, or a duration back from now (``90s``, ``15m``, ``2h``, ``1d``)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return int(now - int(value[:-1]) * units[value[-1]])
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp())


def format_line(entry: dict) -> str:
    """Heroku's shape: ``<time> app[<process>.<replica>]: <message>``, with the node and release."""
    return (f"{entry['time']} app[{entry['process'] or 'job'}.{entry['replica']}] "
            f"({entry['node']}, release {entry['release']}): {entry['message']}")
