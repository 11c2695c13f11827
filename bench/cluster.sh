#!/usr/bin/env bash
# The three-node figures of issue 15, from the molecule scenario cluster (three fresh Docker-in-Docker
# nodes on this host; needs root and this host's engine): the seconds of each stage, then what
# molecule/cluster/node_loss.yml measured through the edge node under load (scale 1 -> 3, a drain, a
# node killed), and what manager_loss.yml measured (the first manager killed: seconds until the
# controller's standby took over and acted). Copy the figures, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
unset PYTHONDONTWRITEBYTECODE
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
log=/tmp/qoddi-bench-cluster.log
stage() {
  local start
  start=$(date +%s)
  molecule "$1" -s cluster >>"$log" 2>&1
  echo "$1: $(( $(date +%s) - start )) s"
}
: >"$log"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1 /proc/loadavg)"
trap 'molecule destroy -s cluster >>"$log" 2>&1 || true' EXIT
stage create
stage converge
stage idempotence
stage verify
# The assertion's message, as molecule printed it (its lines are wrapped and framed).
sed 's/\x1b\[[0-9;]*m//g; s/^ *│ *//' "$log" | tr '\n' ' ' | grep -o 'scale 1 -> 3: [^"]*' | head -1
sed 's/\x1b\[[0-9;]*m//g; s/^ *│ *//' "$log" | tr '\n' ' ' | grep -o 'first manager killed: [^"]*' | head -1
