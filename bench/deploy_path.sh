#!/usr/bin/env bash
# Issue 14's table in one run, with its app shape: bench/deploy_path.yml deploys a copy of the sample
# (qoddi_env, qoddi_db with a Postgres, qoddi_app: 2 replicas of size S) beside the running sample.
#   1. warm redeploy, one line of code changed: playbook wall time, the qoddi_app task and its `timings`;
#   2. from the start of that run until every request is served by the new code (keep-alive HTTPS
#      pollers through the edge on /version; the changed line is the version it answers);
#   3. no-change re-run of the three tasks: playbook wall time and each task's time; then its floor,
#      three tasks of Ansible's ping and three of community.docker.docker_host_info (bench/task_floor.yml);
#   4. a new custom domain: from the start of the qoddi_app task to HTTPS 200 with a certificate that
#      verifies against pebble's CA; if that is not served 20 s after the task, the bench runs the
#      edge playbook (playbooks/edge.yml) itself, and says so;
#   5. second `make demo` with nothing to change: only with BENCH_SITE=1 (it redeploys the shared
#      controller and edge);
#   6. idle CPU over 30 s: the whole machine (/proc/stat) and per part (bench/deploy_path_idle.py);
#   7. failed requests under the keep-alive load of figure 2.
# Run after `make demo`. The whole run holds the controller lock (/tmp/qoddi-lock-controller): it runs
# the edge playbook, and a redeploy of the edge or controller by someone else would spoil figures 2
# and 7. Everything it makes is removed on exit, and the edge playbook run again to drop its routes.
# Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_LOCKED:-}" != 1 ]; then
  echo "waiting for /tmp/qoddi-lock-controller ($(date -u +%H:%M:%SZ))" >&2
  exec env BENCH_LOCKED=1 flock /tmp/qoddi-lock-controller "$0" "$@"
fi
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
# The json callback gives each task's start, end and result (the module's timings) in one document.
export ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_STDOUT_CALLBACK=ansible.posix.json
# Checked before anything is made: a failure here has nothing to clean up.
docker service inspect sample >/dev/null 2>&1 || { echo "the sample app is not running (or the engine is down): run make demo first" >&2; exit 1; }
inventory=inventories/local/hosts.yml
name=${BENCH_NAME:-qoddi-bench-path}
host=$name.qoddi.localhost
domain=$name-$(date +%s).example.test  # new at each run: its certificate cannot exist yet
cafile=/etc/qoddi/pebble/issuing-root.pem
src=$(mktemp -d /tmp/qoddi-bench-path-src.XXXXXX)
logs=$(mktemp -d /tmp/qoddi-bench-path-logs.XXXXXX)

app() { ansible-playbook -i "$inventory" bench/deploy_path.yml -e bench_name="$name" -e bench_src="$src" "$@"; }
edge() {
  local start
  start=$(date +%s.%N)
  ansible-playbook -i "$inventory" playbooks/edge.yml >"$logs/edge-$1.json" 2>"$logs/edge-$1.err" ||
    { echo "the edge playbook failed, see $logs/edge-$1.json" >&2; return 1; }
  edge_seconds=$(since "$start")
}
cleanup() {
  app --tags app,remove -e bench_state=absent >"$logs/remove.json" 2>&1 || echo "removal failed: $logs/remove.json" >&2
  edge cleanup || true
  # The app's own stack network, which removal leaves; it stays while the edge is joined to it
  # (roles/controller/files/edge_networks.py), which this removal does not undo.
  docker network rm "qoddi-$name" >/dev/null 2>&1 || true
  rm -rf "$src"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "${2:-$(now)}"; }
stamp() { echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg)"; }
# One playbook run, its json in $logs/$1.json; sets run_start, run_end and run_seconds.
run() {
  local label=$1
  shift
  run_start=$(now)
  app "$@" >"$logs/$label.json" 2>"$logs/$label.err" || { echo "$label: the playbook failed, see $logs/$label.json" >&2; exit 1; }
  run_end=$(now)
  run_seconds=$(since "$run_start" "$run_end")
}
# What a run's json says: TASKS (each task's seconds and changed), APP (the qoddi_app result),
# APP_START and APP_END (epochs of the qoddi_app task's start and end).
report() {
  python3 - "$logs/$1.json" "$2" <<'EOF'
import datetime, json, sys
doc, what = json.load(open(sys.argv[1])), sys.argv[2]
def epoch(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
tasks = [t for play in doc["plays"] for t in play["tasks"]]
app = next(t for t in tasks if t["task"]["name"] == "Build and run the bench app")
result = next(iter(app["hosts"].values()))
seconds = lambda t: epoch(t["task"]["duration"]["end"]) - epoch(t["task"]["duration"]["start"])
if what == "TASKS":
    hosts = lambda t: list(t["hosts"].values())
    print(", ".join(f"{hosts(t)[0].get('action', t['task']['name']).split('.')[-1]} {seconds(t):.1f} s"
                    f"{' (changed)' if any(h.get('changed') for h in hosts(t)) else ''}" for t in tasks))
elif what == "APP":
    timings = ", ".join(f"{k} {v:.1f}" for k, v in result.get("timings", {}).items()) or "none"
    print(f"qoddi_app task {seconds(app):.1f} s (timings: {timings}; release {result.get('release')}, "
          f"changed={result.get('changed')}, reason: {result.get('reason')})")
elif what in ("APP_START", "APP_END"):
    print(epoch(app["task"]["duration"]["start" if what == "APP_START" else "end"]))
EOF
}
# Wait (bounded) until URL answers 200 over HTTPS verified against pebble's CA; prints the epoch it did.
served() {
  local name=$1 path=$2 until=$3
  while [ "$(date +%s)" -lt "$until" ]; do
    if curl -sS --fail -o /dev/null --max-time 5 --cacert "$cafile" --resolve "$name:443:127.0.0.1" \
         "https://$name$path" 2>/dev/null; then now; return 0; fi
    sleep 0.25
  done
  return 1
}

echo "deploy path bench, commit $(git rev-parse --short HEAD), $(stamp); logs in $logs"
cp -a examples/django-sample/. "$src/"

# Set-up (not a figure): the app's first deploy; the edge playbook too when the edge does not route it by itself.
run first
echo "set-up:   first deploy ${run_seconds} s; $(report first APP)"
if served "$host" /version "$(python3 -c "print(int($run_end) + 20)")" >/dev/null; then
  echo "set-up:   $host served over HTTPS by itself"
else
  edge first
  served "$host" /version $(( $(date +%s) + 120 )) >/dev/null || { echo "the bench app is not served at $host" >&2; exit 1; }
  echo "set-up:   edge playbook ${edge_seconds} s (not served 20 s after the deploy); $host served over HTTPS"
fi

# 1, 2, 7: one line of code changed, under keep-alive load through the edge.
version=bench-$(date +%s)
sed -i "s/^APP_VERSION_DEFAULT = .*/APP_VERSION_DEFAULT = \"$version\"/" "$src/counter/views.py"
stop=$logs/poll.stop
# 4 connections, each waiting 50 ms after an answer: at most 80 requests/s, light enough not to slow the
# deploy it watches on 2 cores; 50 ms is the resolution of figure 2.
python3 bench/deploy_path_poll.py "$host" "$cafile" "$version" 240 4 0.05 "$stop" >"$logs/poll.json" &
poller=$!
sleep 3  # the pollers' connections are open and busy before the run starts
run warm
sleep 15  # answers after the run, to see which old task still serves (bounded: the pollers end at 240 s)
touch "$stop"
wait "$poller"
echo "1 warm:      $(stamp); playbook ${run_seconds} s; $(report warm APP)"
python3 - "$logs/poll.json" "$run_start" "$run_end" "$(report warm APP_END)" <<'EOF'
import json, sys
poll, start, end, app_end = json.load(open(sys.argv[1])), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
at = poll["all_new_at"]
print("2 all new:   " + (f"{at - start:.1f} s after the run's start, {at - end:+.1f} s from its end, "
                         f"{at - app_end:+.1f} s from the qoddi_app task's end" if at else "never within the 15 s after the run"))
print(f"7 load:      {poll['ok'] + poll['failed']} keep-alive HTTPS requests through the edge (4 connections, 50 ms apart) "
      f"from 3 s before the warm run to 15 s after it, {poll['failed']} failed{': ' + '; '.join(poll['errors']) if poll['errors'] else ''} "
      f"({poll['retried']} repeated on a new connection as browsers do, {poll['connections']} connections)")
EOF

# 3: the same three tasks again, nothing changed.
run nochange
echo "3 no change: $(stamp); playbook ${run_seconds} s; $(report nochange TASKS)"
# 3, its floor: what any task costs here (bench/task_floor.yml: Ansible's ping, then a module asking the
# engine once through the Docker SDK), right after the no-change run, at the same load.
floor_start=$(now)
ansible-playbook -i "$inventory" bench/task_floor.yml >"$logs/floor.json" 2>"$logs/floor.err" ||
  { echo "the floor playbook failed, see $logs/floor.json" >&2; exit 1; }
python3 - "$logs/floor.json" "$(since "$floor_start")" "$(stamp)" <<'EOF'
import datetime, json, sys
epoch = lambda iso: datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
tasks = [t["task"] for play in json.load(open(sys.argv[1]))["plays"] for t in play["tasks"]]
seconds = {t["name"]: epoch(t["duration"]["end"]) - epoch(t["duration"]["start"]) for t in tasks}
group = lambda word: " + ".join(f"{v:.1f}" for k, v in seconds.items() if k.startswith(word))
total = lambda word: sum(v for k, v in seconds.items() if k.startswith(word))
print(f"3 floor:     {sys.argv[3]}; playbook {sys.argv[2]} s; three ansible.builtin.ping {group('Ping')} = {total('Ping'):.1f} s; "
      f"three community.docker.docker_host_info {group('Engine')} = {total('Engine'):.1f} s")
EOF

# 6: idle, nothing of this script running (2 apps with 2 web tasks each, their datastores, edge, controller).
idle=$(python3 bench/deploy_path_idle.py 30)
python3 - "$idle" "$(stamp)" <<'EOF'
import json, sys
idle = json.loads(sys.argv[1])
pct = idle["percent_of_one_core"]
tasks = sorted({k.rsplit(" ", 1)[0] for k in pct if k.endswith(" cgroup")})
per_task = "; ".join(f"{t} {pct[t + ' cgroup']:.1f} + {pct.get(t + ' shim', 0):.1f} + {pct.get(t + ' shim reaped', 0):.1f}"
                     for t in tasks)
print(f"6 idle:      {sys.argv[2]}; {idle['seconds']} s: machine {idle['machine_percent_of_all_cores']} % of all cores; "
      f"dockerd {pct.get('dockerd', 0):.1f} %, containerd {pct.get('containerd', 0):.1f} % of one core; "
      f"{len(tasks)} web tasks, % of one core (its cgroup + its containerd-shim + what the shim reaped: runc and "
      f"the health checks' processes, those counted in the cgroup too): {per_task}")
EOF

# 4: a new custom domain, from the start of the qoddi_app task to verified HTTPS 200.
run domain --tags app -e "{\"bench_domains\": [\"$domain\"]}"
app_start=$(report domain APP_START)
how="served by itself"
if ! at=$(served "$domain" /version "$(python3 -c "print(int($run_end) + 20)")"); then
  edge domain
  how="not served 20 s after the task: the bench ran the edge playbook (${edge_seconds} s)"
  # Bounded: 180 s from the task's start, but at least 60 s after the edge playbook (4 min on a loaded machine).
  at=$(served "$domain" /version "$(python3 -c "import time; print(max(int($app_start) + 180, int(time.time()) + 60))")") || at=""
fi
if [ -n "$at" ]; then
  echo "4 domain:    $(stamp); $(since "$app_start" "$at") s from the qoddi_app task's start to verified HTTPS 200 ($how); $(report domain APP)"
else
  echo "4 domain:    $(stamp); not served within 180 s of the task's start nor 60 s after the edge playbook ($how); $(report domain APP)"
fi

# 5: a second `make demo` with nothing to change (redeploys the shared controller and edge).
if [ "${BENCH_SITE:-}" = 1 ]; then
  start=$(now)
  ansible-playbook -i "$inventory" playbooks/platform.yml playbooks/sample.yml >"$logs/demo.json" 2>"$logs/demo.err" ||
    { echo "make demo's playbooks failed, see $logs/demo.json" >&2; exit 1; }
  python3 - "$logs/demo.json" "$(since "$start")" "$(stamp)" <<'EOF'
import json, sys
# Two playbooks: the json callback prints one document each.
text, decoder, stats, at = open(sys.argv[1]).read(), json.JSONDecoder(), [], 0
while text[at:].strip():
    document, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
    stats += document["stats"].values()
    at = end
tasks = sum(s.get("ok", 0) + s.get("skipped", 0) for s in stats)
changed = sum(s.get("changed", 0) for s in stats)
print(f"5 make demo: {sys.argv[3]}; second run {sys.argv[2]} s, {tasks} tasks (ok + skipped), changed={changed}")
EOF
else
  echo "5 make demo: not run (BENCH_SITE=1 runs it: it redeploys the shared controller and edge)"
fi
