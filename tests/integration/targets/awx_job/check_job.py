# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check one ansible-runner job from its artifacts, as AWX reads them: the status and rc files, the
job events (the stats event's changed counts and set_stats data, the failed task and its message),
and that no secret appears in any artifact. Prints the job's set_stats data as JSON."""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys


def fail(message: str) -> None:
    sys.exit(f"check_job: {message}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts", type=pathlib.Path, help="the job's artifact directory (artifacts/<ident>)")
    parser.add_argument("--status", required=True, choices=["successful", "failed"])
    parser.add_argument("--changed", choices=["yes", "no"], help="whether any task reported a change")
    parser.add_argument("--failed-task", help="a regular expression the failed task's name must match")
    parser.add_argument("--message", help="a regular expression the failed task's message must match")
    parser.add_argument("--secret", action="append", default=[], help="a text no artifact may hold")
    args = parser.parse_args()

    status = (args.artifacts / "status").read_text().strip()
    rc = int((args.artifacts / "rc").read_text().strip())
    if status != args.status or (rc == 0) != (args.status == "successful"):
        fail(f"the job's status is {status} (rc {rc}), expected {args.status}")

    events = [json.loads(p.read_text()) for p in sorted((args.artifacts / "job_events").glob("*.json"))]
    if not events:
        fail("the job wrote no events")
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    if len(stats) != 1:
        fail(f"expected one playbook_on_stats event, found {len(stats)}")
    data = stats[0]["event_data"]
    changed = sum(data.get("changed", {}).values())
    if args.changed == "yes" and not changed:
        fail("no task reported a change")
    if args.changed == "no" and changed:
        names = [e["event_data"].get("task") for e in events
                 if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")]
        fail(f"{changed} tasks reported a change: {names}")

    if args.status == "failed":
        failures = [e["event_data"] for e in events if e.get("event") == "runner_on_failed"
                    and not e["event_data"].get("ignore_errors")]
        if len(failures) != 1:
            fail(f"expected one failed task, found {len(failures)}")
        task, msg = failures[0].get("task", ""), str(failures[0].get("res", {}).get("msg", ""))
        if args.failed_task and not re.search(args.failed_task, task):
            fail(f"the failed task is {task!r}, expected {args.failed_task!r} ({msg})")
        if args.message and not re.search(args.message, msg):
            fail(f"the failure's message does not match {args.message!r}: {msg}")

    # Every artifact the job left (stdout, events, the command line, the env it ran with).
    for path in args.artifacts.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for secret in args.secret:
                if secret in text:
                    fail(f"{path} holds a secret")

    print(json.dumps(data.get("artifact_data", {}), sort_keys=True))


if __name__ == "__main__":
    main()
