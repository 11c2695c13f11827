#!/usr/bin/env bash
# Ten config vars set on the sample app by ten qoddi_env calls, with the default one-minute
# debounce, under HTTPS load through the edge (run `make demo` once first). Prints when the one
# restart started after the first change, how many tasks it made, and the requests that failed.
# Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg
echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
ansible-playbook -i inventories/local/hosts.yml bench/env_restart.yml | sed -n '/TASK \[Report\]/,/^$/p'
