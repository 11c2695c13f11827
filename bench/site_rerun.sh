#!/usr/bin/env bash
# Time the platform playbook twice on the embedded default: the first run does whatever is
# missing, the second must change nothing and take a small fraction of the first.
# Prints one line per run and the ratio; copy the figures, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# Some machines set this globally; Ansible then compiles its own code again on every run (a no-change
# run of an app's three tasks used 1.5-2 s more CPU here), as the Makefile and scripts/test.sh know.
unset PYTHONDONTWRITEBYTECODE
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
run() {
  local log=$1 start end
  start=$(date +%s.%N)
  ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml >"$log" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(round($end - $start, 1))"
}
first=$(run /tmp/qoddi-bench-site-1.log)
second=$(run /tmp/qoddi-bench-site-2.log)
changed=$(grep -o 'changed=[0-9]*' /tmp/qoddi-bench-site-2.log | head -1)
echo "date:        $(date -u +%Y-%m-%d)"
echo "first run:   ${first} s ($(grep -o 'changed=[0-9]*' /tmp/qoddi-bench-site-1.log | head -1))"
echo "second run:  ${second} s (${changed})"
echo "ratio:       $(python3 -c "print(round($second / $first, 3))")"
[ "$changed" = "changed=0" ] || { echo "second run changed something: see /tmp/qoddi-bench-site-2.log" >&2; exit 1; }
