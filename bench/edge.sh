#!/usr/bin/env bash
# The edge's figures, on the embedded default (run `make demo` first: platform, edge, sample app).
#  1. requests/s and p99 through HAProxy against the same gunicorn replica addressed directly
#     (plain HTTP, wrk with 1 thread and 32 connections, 10 s each), and their ratio;
#  2. failed requests while HAProxy reloads 20 times under steady load (wrk, 30 s);
#  3. balance: three replicas of a test app, one of them slow (0.2 s a request); the split of 600
#     requests over 12 connections under leastconn.
# All load runs in a container on the sample's stack network against addresses of this machine's
# Swarm, bounded in time and count. Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
inventory=inventories/local/hosts.yml
hello=$(mktemp -d /tmp/qoddi-bench-edge.XXXXXX)

edge_playbook() { ansible-playbook -i "$inventory" playbooks/edge.yml "$@" >/tmp/qoddi-bench-edge-playbook.log 2>&1; }
cleanup() {
  ansible-playbook -i "$inventory" bench/app_deploy.yml -e bench_name=qoddi-bench-lc -e bench_src="$hello" \
    -e bench_state=absent >/dev/null 2>&1 || true
  docker service scale --detach sample=2 >/dev/null 2>&1 || true
  edge_playbook || true
  rm -rf "$hello"
}
trap cleanup EXIT

# The sample's stack network: the sample's web process is on it alone, and the edge joins it (private
# stacks); the load runs there, beside both.
net=qoddi-$(docker service inspect -f '{{ index .Spec.Labels "org.qoddi.stack" }}' sample)
ip_of() {  # the stack-network address of the first running container of a service
  docker inspect -f "{{ (index .NetworkSettings.Networks \"$net\").IPAddress }}" \
    "$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" | head -1)"
}
load() { docker run --rm --network "$net" qoddi-bench/load "$@"; }
figure() { awk -v key="$1" '$1 == key {print $2}'; }

docker build -q -t qoddi-bench/load --build-arg BASE=qoddi/debian:bookworm bench/edge >/dev/null
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Plain HTTP through the edge (no redirect for this run) versus the replica itself.
edge_playbook -e qoddi_haproxy_http_redirect=false
docker service scale --detach sample=1 >/dev/null
sleep 8
app=$(ip_of sample) edge=$(ip_of qoddi-edge)
direct=$(load wrk -t1 -c32 -d10s --latency "http://$app:5000/version")
through=$(load wrk -t1 -c32 -d10s --latency -H "Host: sample.qoddi.localhost" "http://$edge:80/version")
d_rps=$(echo "$direct" | figure Requests/sec:) e_rps=$(echo "$through" | figure Requests/sec:)
echo "direct:     ${d_rps} req/s, p99 $(echo "$direct" | figure 99%)"
echo "via edge:   ${e_rps} req/s, p99 $(echo "$through" | figure 99%)"
echo "ratio:      $(python3 -c "print(round($e_rps / $d_rps, 2))")"

# 2. Twenty hitless reloads (state saved, SIGUSR2) while wrk keeps sending.
docker service scale --detach sample=2 >/dev/null
sleep 8
container=$(docker ps -q --filter label=com.docker.swarm.service.name=qoddi-edge | head -1)
load wrk -t1 -c16 -d30s -H "Host: sample.qoddi.localhost" "http://$edge:80/version" >/tmp/qoddi-bench-reload.txt &
wrk_pid=$!
sleep 3
for _ in $(seq 20); do
  docker exec "$container" sh -c \
    'echo "show servers state" | socat stdio unix:/var/run/haproxy/admin.sock > /var/lib/haproxy/server-state'
  docker kill --signal USR2 "$container" >/dev/null
  sleep 1
done
wait "$wrk_pid"
requests=$(grep -oE '[0-9]+ requests in' /tmp/qoddi-bench-reload.txt | cut -d' ' -f1)
non2xx=$(grep -oE 'Non-2xx or 3xx responses: [0-9]+' /tmp/qoddi-bench-reload.txt | grep -oE '[0-9]+$' || echo 0)
sockets=$(grep -oE 'Socket errors: .*' /tmp/qoddi-bench-reload.txt || echo "Socket errors: none")
echo "reloads:    20 under load, ${requests} requests, ${non2xx} non-2xx, ${sockets}"

# 3. leastconn with one slow replica of three.
cp -a tests/integration/targets/edge/files/hello/. "$hello/"
echo 'web: SLOW_TASK_SLOT=1 SLOW_SECONDS=0.2 python app.py' >"$hello/Procfile"
ansible-playbook -i "$inventory" bench/app_deploy.yml -e bench_name=qoddi-bench-lc -e bench_src="$hello" \
  -e bench_replicas=3 -e bench_health=/healthz >/tmp/qoddi-bench-lc.log 2>&1
edge_playbook -e qoddi_haproxy_http_redirect=false
sleep 12  # slowstart: new servers ramp up over 10 s
echo "leastconn split of 600 requests (task: count; the slow task is web.1):"
load python3 /usr/local/bin/split.py "http://$edge:80/" qoddi-bench-lc.qoddi.localhost 600 12 | sed 's/^/            /'
docker service ps qoddi-bench-lc --filter desired-state=running --format '            {{.Name}} runs on container {{.ID}}' || true
