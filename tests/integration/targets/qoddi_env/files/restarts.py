"""Measure one app's restarts since a moment: print a JSON summary.

usage: restarts.py APP SINCE_EPOCH DUE TASK_ID... (DUE: the restart_due qoddi_env returned; the tasks
that ran before SINCE_EPOCH)
new_tasks: tasks of the app made since then; started_after: seconds from SINCE_EPOCH to the moment the
controller began the restart (its log line; the release command runs first, then the rolling
update); after_due: seconds from DUE to that moment (DUE is whole seconds, so a restart on time
reads 0 to 1 plus the controller's tick); update_after: to the start of the service's last update;
took: how long that update lasted; logged: the controller's log lines about restarting the app since
then.
"""
import datetime
import json
import subprocess
import sys


def epoch(stamp):
    # Swarm's RFC 3339 stamps carry nanoseconds, which Python's parser refuses.
    whole, unused_dot, rest = stamp.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    return moment.timestamp() + float("0." + (rest or "0")[:6])


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def main():
    app, since, due, before = sys.argv[1], float(sys.argv[2]), epoch(sys.argv[3]), set(sys.argv[4:])
    service = json.loads(docker("service", "inspect", app))[0]
    tasks = json.loads(docker("inspect", *docker("service", "ps", "-q", app).split()))
    update = service.get("UpdateStatus") or {}
    started, completed = update.get("StartedAt"), update.get("CompletedAt")
    logs = subprocess.run(["docker", "service", "logs", "--raw", "--timestamps", "--since", str(int(since)),
                           "qoddi-controller"], capture_output=True, text=True, check=True)
    # Each line: the engine's timestamp (nanoseconds), then the controller's own line.
    logged = [line.split(" ", 1) for line in (logs.stdout + logs.stderr).splitlines() if f"restart {app}:" in line]
    print(json.dumps({
        "new_tasks": len([t for t in tasks if t["ID"] not in before]),
        "started_after": round(epoch(logged[0][0]) - since, 1) if logged else None,
        "after_due": round(epoch(logged[0][0]) - due, 1) if logged else None,
        "update_after": round(epoch(started) - since, 1) if started else None,
        "took": round(epoch(completed) - epoch(started), 1) if started and completed else None,
        "logged": [text for unused_stamp, text in logged],
    }))


if __name__ == "__main__":
    main()
