#!/usr/bin/env bash
# Time the sample app's deploys on the embedded default (run `make demo` once first):
#   cold      - the dependency layer is invalidated (a unique comment in requirements.txt), so pip
#               downloads and installs every requirement again;
#   warm      - one line of code changed: dependency layer reused, code layer and collectstatic redone;
#   no-change - the same source again: must change nothing.
# Each figure is the wall time of one ansible-playbook run, and of the qoddi_app task alone
# (profile_tasks). Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # the project's virtualenv (make venv)
export ANSIBLE_CONFIG=$PWD/ansible.cfg ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
src=$(mktemp -d /tmp/qoddi-bench-app.XXXXXX)
trap 'ansible-playbook -i inventories/local/hosts.yml bench/app_deploy.yml -e bench_src="$src" -e bench_state=absent >/dev/null 2>&1; rm -rf "$src"' EXIT
cp -a examples/django-sample/. "$src/"

run() {
  local name=$1 log=/tmp/qoddi-bench-app-$1.log start end task
  start=$(date +%s.%N)
  ansible-playbook -i inventories/local/hosts.yml bench/app_deploy.yml -e bench_src="$src" >"$log" 2>&1 ||
    { echo "$name: the deploy failed, see $log" >&2; exit 1; }
  end=$(date +%s.%N)
  task=$(grep -E 'Deploy \(or remove\) the bench app -+ ' "$log" | grep -oE '[0-9.]+s$' | tail -1)
  printf '%-10s %6.1f s playbook, %s qoddi_app  (%s)\n' "$name" "$(python3 -c "print($end - $start)")" "$task" \
    "$(sed -n "/msg: 'release=/,/reason=/p" "$log" | tr -s ' \n' ' ' | sed "s/.*msg: '//; s/ reason=.*//")"
}

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# bench $(date +%s%N)" >> "$src/requirements.txt"
run cold
sed -i 's/^APP_VERSION_DEFAULT = .*/APP_VERSION_DEFAULT = "bench"/' "$src/counter/views.py"
run warm
run no-change
