#!/usr/bin/env bash
# Run test stages in order: lint sanity unit molecule integration cluster (or "all").
# QODDI_TARGETS limits the integration stage to some targets; QODDI_TEST_TREE moves its copy of the
# collection (default /tmp/qoddi.paas-test), so two checkouts can be tested side by side.
# molecule converges the platform from nothing (playbooks/site.yml: engine, images, one-node Swarm),
# checks idempotence and verifies it; the integration targets then run on that platform.
# "platform" is set-up only (site.yml), for running integration on its own.
# cluster converges the platform and the sample on three brand-new Docker-in-Docker nodes (molecule
# scenario cluster: 1 manager, 2 workers), which catches what only a long-lived engine has and what
# only several nodes show (needs the host's engine only).
# A stage passes only if it ran its tests: one that ran none, or skipped some (ansible-test skips a
# test or target that lacks root or a tool, and still exits 0), fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
PY=$(command -v python)
unset PYTHONDONTWRITEBYTECODE
# Where the time goes, task by task, in every playbook run of the tests.
export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks

stages=("$@")
if [ "${stages[*]:-all}" = all ]; then
  # Sanity needs no Docker and spends much of its time waiting on package downloads, as the image
  # builds of molecule's converge do: run it beside the other stages and collect it at the end.
  stages=(lint sanity-start unit molecule integration cluster sanity-wait)
fi

# Every integration target is needs/root (they install and drive the Docker engine and the Swarm):
# as another user ansible-test would skip them all and exit 0. Say so before anything runs.
if [[ " ${stages[*]} " == *" integration "* ]] && [ "$(id -u)" != 0 ]; then
  echo "qoddi: the integration stage must run as root: its targets drive the Docker engine and the Swarm" >&2
  echo "qoddi: as root, and ansible-test would skip every one of them for another user. Run it as root," >&2
  echo "qoddi: e.g. sudo make test (the molecule or platform stage before it installs and starts the engine)." >&2
  exit 2
fi
# The cluster nodes' engines make cgroups in this host's tree, which only root can remove.
if [[ " ${stages[*]} " == *" cluster "* ]] && [ "$(id -u)" != 0 ]; then
  echo "qoddi: the cluster stage must run as root: its nodes' engines make cgroups on this host, removed after." >&2
  exit 2
fi

fail_stage() { printf '\n--- %s FAILED: %s\n' "$1" "$2" >&2; exit 1; }

# ansible-test sanity exits 0 after skipping a test whose tool is missing (shellcheck, pwsh) or whose
# Python or virtualenv it cannot find; it says so only in a warning. Two tests run and find nothing
# to check here, which is not a skip: empty-init (no __init__.py in plugins/) and pslint (no PowerShell).
check_sanity_log() {
  local skipped ran
  skipped=$(grep -E '^WARNING: (Skipping |Required program )' "$1" || true)
  [ -z "$skipped" ] || fail_stage sanity "ansible-test skipped tests:"$'\n'"$skipped"
  ran=$(grep -c '^Running sanity test ' "$1" || true)
  [ "$ran" -gt 0 ] || fail_stage sanity "ansible-test ran no sanity test"
  echo "--- sanity: $ran tests ran, none skipped"
}

# ansible-test integration excludes targets it cannot run here with a warning (needs/root, skip/python,
# destructive...), and ends "All targets skipped." with exit 0 when none is left.
check_integration_log() {
  local skipped ran
  skipped=$(grep -E '^WARNING: (Excluding .*tests|All targets skipped)' "$1" || true)
  [ -z "$skipped" ] || fail_stage integration "ansible-test skipped targets:"$'\n'"$skipped"
  ran=$({ grep -E '^Running .+ integration test (role|script)$' "$1" || true; } | sort -u | wc -l)
  [ "$ran" -gt 0 ] || fail_stage integration "ansible-test ran no target"
  echo "--- integration: $ran targets ran, none skipped"
}

# ansible-test must run from inside ansible_collections/<ns>/<name>: mirror the checkout there.
collection_copy() {
  # Outside this git checkout: inside it, ansible-test would list files with git and skip them.
  # Sanity and integration each get their own copy, as they may run at the same time.
  local dest="${1:-${QODDI_TEST_TREE:-/tmp/qoddi.paas-test}}/ansible_collections/qoddi/paas"
  rm -rf "$dest" && mkdir -p "$dest"
  tar -C "$ROOT" --exclude ./.venv --exclude ./.build --exclude ./tests/output --exclude ./.git \
    --exclude __pycache__ --exclude .pytest_cache --exclude .ruff_cache -cf - . | tar -C "$dest" -xf -
  echo "$dest"
}

# ansible-test bootstraps pip in its venvs with a get-pip.py from a host that air-gapped machines
# cannot reach; give it an equivalent built on ensurepip (see tests/sanity/get_pip_offline.py).
offline_get_pip() {
  local version
  version=$(python - <<'PY'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
match = re.search(r"pip='([0-9.]+)'", src)
print(match.group(1) if match else "")
PY
)
  [ -n "$version" ] || return 0
  local cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
  # Never replace a real get-pip.py; refresh our own stand-in.
  if [ ! -s "$cache" ] || grep -q qoddi.paas "$cache"; then
    mkdir -p "$(dirname "$cache")" && cp tests/sanity/get_pip_offline.py "$cache"
  fi
}

run_sanity() {
  offline_get_pip
  (cd "$(collection_copy "${QODDI_TEST_TREE:-/tmp/qoddi.paas-test}-sanity")" &&
    ansible-test sanity --local --python "$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no)
}
SANITY_LOG="$ROOT/tests/output/sanity.log"
INTEGRATION_LOG="$ROOT/tests/output/integration.log"
mkdir -p "$ROOT/tests/output"
sanity_pid=""
# A failed stage ends the run: do not leave the background sanity run behind.
trap '[ -z "$sanity_pid" ] || kill -- "$sanity_pid" 2>/dev/null || true' EXIT

banner() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

for stage in "${stages[@]}"; do
  start=$(date +%s)
  case "$stage" in
    lint)
      banner "lint: ruff, the playbooks' syntax, ansible-lint (profile production, see .ansible-lint)"
      ruff check plugins roles tests bench
      for playbook in playbooks/*.yml; do
        ansible-playbook -i inventories/local/hosts.yml --syntax-check "$playbook" >/dev/null
      done
      # qoddi.paas as this checkout, whichever checkout the virtualenv links (scripts/venv.sh).
      lint_collections="${QODDI_TEST_TREE:-/tmp/qoddi.paas-test}-lint"
      mkdir -p "$lint_collections/ansible_collections/qoddi"
      ln -sfn "$ROOT" "$lint_collections/ansible_collections/qoddi/paas"
      ANSIBLE_COLLECTIONS_PATH="$lint_collections" ansible-lint
      ;;
    sanity)
      banner "sanity: ansible-test sanity"
      run_sanity 2>&1 | tee "$SANITY_LOG"
      check_sanity_log "$SANITY_LOG"
      ;;
    sanity-start)
      banner "sanity: ansible-test sanity, in the background (log: $SANITY_LOG)"
      run_sanity >"$SANITY_LOG" 2>&1 &
      sanity_pid=$!
      ;;
    sanity-wait)
      banner "sanity: waiting for the background run"
      status=0; wait "$sanity_pid" || status=$?
      cat "$SANITY_LOG"
      [ "$status" = 0 ] || { echo "--- sanity FAILED (exit $status)"; exit "$status"; }
      check_sanity_log "$SANITY_LOG"
      ;;
    unit)
      banner "unit: pytest tests/unit"
      status=0; pytest -q -n 2 tests/unit || status=$?
      # pytest's 5: it collected no test, which is no pass.
      [ "$status" != 5 ] || fail_stage unit "pytest collected no test in tests/unit (exit 5)"
      [ "$status" = 0 ] || exit "$status"
      ;;
    platform)
      banner "platform: engine, images and one-node Swarm (playbooks/site.yml)"
      ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml
      ;;
    integration)
      banner "integration: ansible-test integration on the real engine and Swarm"
      # QODDI_TARGETS="qoddi_app role_images" runs only those targets (a quicker loop while developing).
      # shellcheck disable=SC2086
      (cd "$(collection_copy)" && ansible-test integration --local --allow-destructive --python-interpreter "$PY" \
        --color no ${QODDI_TARGETS:-}) 2>&1 | tee "$INTEGRATION_LOG"
      check_integration_log "$INTEGRATION_LOG"
      ;;
    molecule)
      banner "molecule: scenario default (converge, idempotence, verify)"
      molecule test -s default
      ;;
    cluster)
      banner "cluster: the platform and the sample on three brand-new nodes (molecule scenario cluster)"
      molecule test -s cluster
      ;;
    *)
      echo "unknown stage $stage (lint sanity unit platform molecule integration cluster, or all)" >&2
      exit 2
      ;;
  esac
  echo "--- $stage passed in $(( $(date +%s) - start )) s"
done
