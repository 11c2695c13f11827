#!/usr/bin/env bash
# Console commands on the sample app (run `make demo` once first): qoddi_console's one-off task and
# exec against docker exec and docker run, five each, and qoddi_logs; with ansible-playbook's own
# per-task times (profile_tasks) for the logs. Copy the printed lines, with the date, into
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks \
  ansible-playbook -i inventories/local/hosts.yml bench/console.yml |
  sed -n -e '/TASK \[Report\]/,/^$/p' -e '/^The last 200 lines.*[0-9]s$/p' -e '/^A one-off task.*[0-9]s$/p' \
    -e '/^Inside a running task.*[0-9]s$/p'
