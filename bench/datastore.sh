#!/usr/bin/env bash
# Time one datastore's runs (a Postgres of size XS in the stack `bench`; run `make demo` once first):
#   create    - a new datastore: volume, credentials, service, ready;
#   no-change - the same task again: must change nothing;
#   settings  - one setting changed (size XS -> S): the service is updated (stop-first) and ready again.
# Each figure is the wall time of one ansible-playbook run, and of the qoddi_db task alone
# (profile_tasks). BENCH_NAME names the datastore (default qoddi-bench-db), so two runs do not collide.
# Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
name=${BENCH_NAME:-qoddi-bench-db}
play() { ansible-playbook -i inventories/local/hosts.yml bench/datastore.yml -e bench_name="$name" "$@"; }
trap 'play -e bench_state=absent >/dev/null 2>&1' EXIT

run() {
  local label=$1 log=/tmp/qoddi-bench-db-$1.log start end task
  shift
  start=$(date +%s.%N)
  play "$@" >"$log" 2>&1 || { echo "$label: the run failed, see $log" >&2; exit 1; }
  end=$(date +%s.%N)
  task=$(grep -E 'The bench datastore -+ ' "$log" | grep -oE '[0-9.]+s$' | tail -1)
  printf '%-10s %6.1f s playbook, %s qoddi_db  (%s)\n' "$label" "$(python3 -c "print($end - $start)")" "$task" \
    "$(grep -oE 'changed=(True|False) changes=.*' "$log" | head -1)"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
play -e bench_state=absent >/dev/null 2>&1 || true
run create
run no-change
run no-change
run settings -e bench_size=S
run no-change -e bench_size=S
