"""CPU an idle platform uses over SECONDS, for the whole machine and per part.

usage: deploy_path_idle.py SECONDS

Prints one line for the whole machine (/proc/stat: busy share of all cores), then CPU seconds and
% of one core for parts whose figures do not depend on other work on the machine:
- each web task (a container of a service labelled org.qoddi.process=web): its cgroup's cpuacct.usage,
  which includes the processes `docker exec` starts in it (health checks); its containerd-shim's own
  time; and the shim's reaped children (cutime/cstime: runc, and those exec'd processes again, which
  the shim reaps as their subreaper: that part overlaps the cgroup's);
- dockerd and containerd, with their reaped children (shared: other work on the engine counts there too).
"""
import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def machine():
    """(busy, total) jiffies of all cores."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_seconds(pid, reaped=False):
    """utime + stime of a process (or, with reaped, cutime + cstime: its children it waited for), in seconds."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return sum(int(x) for x in (fields[13:15] if reaped else fields[11:13])) / TICK


def pids_of(name):
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False).stdout.split()
    return [int(p) for p in out]


def shim_of(container_id):
    out = subprocess.run(["pgrep", "-f", f"containerd-shim-runc-v2 .*-id {container_id}"],
                         capture_output=True, text=True, check=False).stdout.split()
    return int(out[0]) if out else None


def cgroup_seconds(container_id):
    with open(f"/sys/fs/cgroup/cpuacct/docker/{container_id}/cpuacct.usage") as usage:
        return int(usage.read()) / 1e9


def web_tasks():
    """{container id: task name} of every running web task on this node."""
    services = subprocess.run(["docker", "service", "ls", "-q", "--filter", "label=org.qoddi.process=web"],
                              capture_output=True, text=True, check=True).stdout.split()
    tasks = {}
    for service in services:
        name = subprocess.run(["docker", "service", "inspect", "-f", "{{.Spec.Name}}", service],
                              capture_output=True, text=True, check=True).stdout.strip()
        out = subprocess.run(["docker", "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}",
                              "--filter", f"label=com.docker.swarm.service.name={name}"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            cid, cname = line.split(" ", 1)
            tasks[cid] = cname.rsplit(".", 1)[0]  # service.slot
    return tasks


def sample(parts):
    """Every part's CPU seconds now; a task or process that ended meanwhile is left out."""
    values = {}
    for key, read in parts.items():
        try:
            values[key] = read()
        except (FileNotFoundError, ProcessLookupError):
            pass
    return values


def main():
    seconds = float(sys.argv[1])
    tasks = web_tasks()
    parts = {}
    for name in ("dockerd", "containerd"):
        for pid in pids_of(name):
            parts[name] = (lambda pid=pid: process_seconds(pid) + process_seconds(pid, reaped=True))
    for cid, task in tasks.items():
        parts[f"{task} cgroup"] = (lambda cid=cid: cgroup_seconds(cid))
        shim = shim_of(cid)
        if shim:
            parts[f"{task} shim"] = (lambda shim=shim: process_seconds(shim))
            parts[f"{task} shim reaped"] = (lambda shim=shim: process_seconds(shim, reaped=True))
    busy0, total0 = machine()
    before, start = sample(parts), time.monotonic()
    time.sleep(seconds)
    busy1, total1 = machine()
    after, elapsed = sample(parts), time.monotonic() - start
    # Only what lived through the whole sample: other work on the machine starts and stops tasks.
    used = {key: after[key] - before[key] for key in parts if key in before and key in after}
    tasks = {cid: task for cid, task in tasks.items() if f"{task} cgroup" in used}
    print(json.dumps({
        "seconds": round(elapsed, 1),
        "machine_percent_of_all_cores": round(100 * (busy1 - busy0) / (total1 - total0), 1),
        "web_tasks": sorted(tasks.values()),
        "cpu_seconds": {key: round(value, 2) for key, value in used.items()},
        "percent_of_one_core": {key: round(100 * value / elapsed, 2) for key, value in used.items()},
    }))


if __name__ == "__main__":
    main()
