# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading Swarm's log lines and merging them (qoddi_logs); the reading itself needs the engine."""
from __future__ import annotations

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils import _logs as logs

TASKS = [
    {"ID": "t1", "Slot": 1, "NodeID": "n1", "Status": {"State": "running"},
     "Spec": {"ContainerSpec": {"Env": ["QODDI_PROCESS=web", "QODDI_RELEASE=7", "PORT=5000"]}}},
    {"ID": "t2", "Slot": 2, "NodeID": "n2", "Status": {"State": "failed"},
     "Spec": {"ContainerSpec": {"Env": ["QODDI_PROCESS=web", "QODDI_RELEASE=6"]}}},
]
FACTS = logs.task_facts(TASKS, {"n1": "node-1", "n2": "node-2"})


def line(stamp, task, message):
    details = f"com.docker.swarm.node.id=nX,com.docker.swarm.service.id=s,com.docker.swarm.task.id={task}"
    return f"{stamp} {details} {message}"


def test_each_line_says_its_process_replica_node_release_and_stream():
    (entry,) = logs.entries([line("2026-11-30T10:00:00.5Z", "t2", "Traceback: boom")], "stderr", FACTS)
    assert entry == {"time": "2026-11-30T10:00:00.500000000Z", "stream": "stderr", "message": "Traceback: boom",
                     "process": "web", "replica": 2, "node": "node-2", "release": 6, "task_state": "failed"}
    assert logs.format_line(entry) == "2026-11-30T10:00:00.500000000Z app[web.2] (node-2, release 6): Traceback: boom"


def test_lines_of_every_task_merge_in_time_order_and_the_newest_are_kept():
    web1 = logs.entries([line("2026-11-30T10:00:00.000000009Z", "t1", "a"),
                         line("2026-11-30T10:00:00Z", "t1", "0"), line("2026-11-30T10:00:02Z", "t1", "c")],
                        "stdout", FACTS)
    web2 = logs.entries([line("2026-11-30T10:00:00.1Z", "t2", "b"), "not a log line"], "stderr", FACTS)
    assert [e["message"] for e in logs.merged([web1, web2], 0)] == ["0", "a", "b", "c"]
    assert [e["message"] for e in logs.merged([web1, web2], 2)] == ["b", "c"]


def test_a_message_keeps_its_spaces():
    (entry,) = logs.entries([line("2026-11-30T10:00:00Z", "t1", "GET /  200  12ms")], "stdout", FACTS)
    assert entry["message"] == "GET /  200  12ms"


@pytest.mark.parametrize(("since", "expected"), [
    ("90s", 1_000_000 - 90), ("15m", 1_000_000 - 900), ("2h", 1_000_000 - 7200), ("1d", 1_000_000 - 86400),
    ("1970-01-12T13:46:40Z", 1_000_000), ("1970-01-12T13:46:40", 1_000_000),
])
def test_since_is_a_time_or_a_duration(since, expected):
    assert logs.since_epoch(since, 1_000_000) == expected


def test_since_that_is_neither_is_refused():
    with pytest.raises(ValueError):
        logs.since_epoch("yesterday", 1_000_000)


def test_a_kept_release_log_reads_as_the_release_process_in_its_order():
    kept = [{"release": 8, "ok": False, "node": "node-1", "time": "2026-11-30T10:00:01.250000Z",
             "lines": ["Running migrations:", "django.db.utils.OperationalError: boom"]}]
    entries = logs.kept_entries(kept)
    assert [e["message"] for e in entries] == ["Running migrations:", "django.db.utils.OperationalError: boom"]
    assert entries[0] == {"time": "2026-11-30T10:00:01.250000000Z", "stream": "stdout",
                          "message": "Running migrations:", "process": "release", "replica": 0, "node": "node-1",
                          "release": 8, "task_state": "failed"}
    web = logs.entries([line("2026-11-30T10:00:01.25Z", "t1", "GET /")], "stdout", FACTS)
    merged = logs.merged([entries, web], None)
    assert [e["message"] for e in merged][:2] == ["Running migrations:", "django.db.utils.OperationalError: boom"]
