#!/usr/bin/env bash
# Run test stages in order: lint sanity unit molecule integration (or "all").
# QODDI_TARGETS limits the integration stage to some targets; QODDI_TEST_TREE moves its copy of the
# collection (default /tmp/qoddi.paas-test), so two checkouts can be tested side by side.
# molecule converges the platform from nothing (playbooks/site.yml: engine, images, one-node Swarm),
# checks idempotence and verifies it; the integration targets then run on that platform.
# "platform" is set-up only (site.yml), for running integration on its own.
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
  stages=(lint sanity-start unit molecule integration sanity-wait)
fi

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
mkdir -p "$ROOT/tests/output"
sanity_pid=""
# A failed stage ends the run: do not leave the background sanity run behind.
trap '[ -z "$sanity_pid" ] || kill -- "$sanity_pid" 2>/dev/null || true' EXIT

banner() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

for stage in "${stages[@]}"; do
  start=$(date +%s)
  case "$stage" in
    lint)
      banner "lint: ruff, and the playbooks' syntax"
      ruff check plugins roles tests bench
      for playbook in playbooks/*.yml; do
        ansible-playbook -i inventories/local/hosts.yml --syntax-check "$playbook" >/dev/null
      done
      ;;
    sanity)
      banner "sanity: ansible-test sanity"
      run_sanity
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
      ;;
    unit)
      banner "unit: pytest tests/unit"
      pytest -q -n 2 tests/unit
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
        --color no ${QODDI_TARGETS:-})
      ;;
    molecule)
      banner "molecule: scenario default (converge, idempotence, verify)"
      molecule test -s default
      ;;
    *)
      echo "unknown stage $stage (lint sanity unit platform molecule integration, or all)" >&2
      exit 2
      ;;
  esac
  echo "--- $stage passed in $(( $(date +%s) - start )) s"
done
