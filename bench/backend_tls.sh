#!/usr/bin/env bash
# What TLS from the edge to an app's tasks (qoddi_app's backend_tls) costs, on the embedded default
# (run `make demo` first: platform and edge). A copy of the sample (gunicorn, Django), one task:
#   plain - requests/s and p99 through HAProxy, the edge speaking plain HTTP to the task;
#   tls   - the same app redeployed with backend_tls: true (the task's terminator in front of gunicorn);
#   the deploy's wall time each way, and the ratio tls/plain.
# wrk, 1 thread, 32 connections, 10 s each, from a container on the app's stack network, to the edge's
# port 80 (no redirect for this run). Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
inventory=inventories/local/hosts.yml
name=qoddi-bench-tls
src=$(mktemp -d /tmp/qoddi-bench-tls.XXXXXX)
edge_playbook() { ansible-playbook -i "$inventory" playbooks/edge.yml "$@" >/tmp/qoddi-bench-tls-edge.log 2>&1; }
deploy() {  # deploy [true|false|absent]
  local state=present tls=$1
  [ "$1" = absent ] && state=absent tls=false
  ansible-playbook -i "$inventory" bench/app_deploy.yml -e bench_name=$name -e bench_src="$src" -e bench_replicas=1 \
    -e bench_state=$state -e bench_backend_tls="$tls" >/tmp/qoddi-bench-tls-deploy.log 2>&1
}
cleanup() { deploy absent || true; edge_playbook || true; rm -rf "$src"; }
trap cleanup EXIT
cp -a examples/django-sample/. "$src/"

net=qoddi-bench
load() { docker run --rm --network "$net" qoddi-bench/load "$@"; }
figure() { awk -v key="$1" '$1 == key {print $2}'; }
docker build -q -t qoddi-bench/load --build-arg BASE=qoddi/debian:bookworm bench/edge >/dev/null
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"

edge_playbook -e qoddi_haproxy_http_redirect=false
measure() {  # measure <label>: wrk through the edge once the app answers there
  local edge out
  edge=$(docker inspect -f "{{ (index .NetworkSettings.Networks \"$net\").IPAddress }}" \
    "$(docker ps -q --filter label=com.docker.swarm.service.name=qoddi-edge | head -1)")
  for _ in $(seq 30); do
    load wrk -t1 -c1 -d1s -H "Host: $name.qoddi.localhost" "http://$edge:80/version" | grep -q 'Non-2xx' || break
    sleep 1
  done
  out=$(load wrk -t1 -c32 -d10s --latency -H "Host: $name.qoddi.localhost" "http://$edge:80/version")
  echo "$out" | grep -q 'Non-2xx' && echo "$1: some answers were not 2xx: $(echo "$out" | grep Non-2xx)"
  echo "$out" | figure Requests/sec: >"/tmp/qoddi-bench-tls-$1.rps"
  printf '%-6s %8s req/s, p50 %s, p99 %s\n' "$1" "$(cat "/tmp/qoddi-bench-tls-$1.rps")" \
    "$(echo "$out" | figure 50%)" "$(echo "$out" | figure 99%)"
}
timed_deploy() {  # timed_deploy <label> <true|false>
  local start
  start=$(date +%s.%N)
  deploy "$2"
  printf '%-6s deploy %.1f s\n' "$1" "$(python3 -c "print($(date +%s.%N) - $start)")"
}

timed_deploy plain false
measure plain
timed_deploy tls true
measure tls
echo "ratio  tls/plain $(python3 -c "print(round($(cat /tmp/qoddi-bench-tls-tls.rps) / $(cat /tmp/qoddi-bench-tls-plain.rps), 2))")"
