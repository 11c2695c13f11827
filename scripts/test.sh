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
# "all" runs the cluster scenario in the background beside the integration targets (see below):
# integration-engine, cluster-start, integration-rest and cluster-wait are those steps.
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

# Integration targets that stop this host's engine (to test what survives a restart): they cannot
# share the engine with the cluster scenario's nodes, which are containers on it.
ENGINE_STOPPING_TARGETS=(qoddi_db)

stages=("$@")
if [ "${stages[*]:-all}" = all ]; then
  # Sanity needs no Docker and spends much of its time waiting on package downloads, as the image
  # builds of molecule's converge do: run it beside the other stages and collect it at the end.
  # The cluster scenario, on nodes of its own, runs beside the integration targets too (most of
  # both is waiting: rollouts, health checks, downloads), once the targets that stop the engine
  # have run.
  # The disk-encryption target runs beside them as well, on an engine of its own (its own data root,
  # in a network namespace of its own): it only reads one image out of this host's engine.
  stages=(lint sanity-start unit molecule integration-engine cluster-start encryption-start integration-rest
          encryption-wait cluster-wait sanity-wait)
fi

# Every integration target is needs/root (they install and drive the Docker engine and the Swarm):
# as another user ansible-test would skip them all and exit 0. Say so before anything runs.
if [[ " ${stages[*]} " == *" integration"* ]] && [ "$(id -u)" != 0 ]; then
  echo "qoddi: the integration stage must run as root: its targets drive the Docker engine and the Swarm" >&2
  echo "qoddi: as root, and ansible-test would skip every one of them for another user. Run it as root," >&2
  echo "qoddi: e.g. sudo make test (the molecule or platform stage before it installs and starts the engine)." >&2
  exit 2
fi
# The cluster nodes' engines make cgroups in this host's tree, which only root can remove.
if [[ " ${stages[*]} " == *" cluster"* ]] && [ "$(id -u)" != 0 ]; then
  echo "qoddi: the cluster stage must run as root: its nodes' engines make cgroups on this host, removed after." >&2
  exit 2
fi

fail_stage() { printf '\n--- %s FAILED: %s\n' "$1" "$2" >&2; exit 1; }

# ansible-test sanity exits 0 after skipping a test whose tool is missing (shellcheck, pwsh) or whose
# Python or virtualenv it cannot find; it says so only in a warning. Two tests run and find nothing
# to check here, which is not a skip: empty-init (no __init__.py in plugins/) and pslint (no PowerShell).
check_sanity_log() {
  local skipped ran
  skipped=$(grep -aE '^WARNING: (Skipping |Required program )' "$1" || true)
  [ -z "$skipped" ] || fail_stage sanity "ansible-test skipped tests:"$'\n'"$skipped"
  ran=$(grep -c '^Running sanity test ' "$1" || true)
  [ "$ran" -gt 0 ] || fail_stage sanity "ansible-test ran no sanity test"
  echo "--- sanity: $ran tests ran, none skipped"
}

# ansible-test integration excludes targets it cannot run here with a warning (needs/root, skip/python,
# destructive...), and ends "All targets skipped." with exit 0 when none is left.
check_integration_log() {
  local skipped ran
  # Targets marked disabled run in a stage of their own (encryption), not with the others.
  skipped=$(grep -aE '^WARNING: (Excluding .*tests|All targets skipped)' "$1" | grep -v 'marked "disabled"' || true)
  [ -z "$skipped" ] || fail_stage integration "ansible-test skipped targets:"$'\n'"$skipped"
  ran=$({ grep -aE '^Running .+ integration test (role|script)$' "$1" || true; } | sort -u | wc -l)
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
# ansible-test integration on the collection's copy, its arguments (targets, --exclude) appended;
# the log is checked for targets it skipped.
# The disk-encryption target (aliases: disabled, so that the other integration runs leave it out), from a
# copy of its own: it may run beside another integration run.
run_encryption() {
  local tree="${QODDI_TEST_TREE:-/tmp/qoddi.paas-test}-encryption"
  (cd "$(collection_copy "$tree")" && ansible-test integration --local --allow-destructive --allow-disabled \
    --python-interpreter "$PY" --color no role_disk_encryption) 2>&1 | tee "$ENCRYPTION_LOG"
}
run_integration() {
  local log=$1; shift
  (cd "$(collection_copy)" && ansible-test integration --local --allow-destructive --python-interpreter "$PY" \
    --color no "$@") 2>&1 | tee "$log"
  check_integration_log "$log"
}

SANITY_LOG="$ROOT/tests/output/sanity.log"
ENCRYPTION_LOG="$ROOT/tests/output/encryption.log"
INTEGRATION_LOG="$ROOT/tests/output/integration.log"
CLUSTER_LOG="$ROOT/tests/output/cluster.log"
mkdir -p "$ROOT/tests/output"
RUN_STARTED=$(mktemp)  # logs older than this run are not its own
sanity_pid=""
cluster_pid=""
encryption_pid=""
# A failed stage ends the run: do not leave a background run behind. Each runs in a process group
# of its own (started under set -m), and the whole group is stopped: molecule's playbook would
# otherwise go on converging. Its nodes stay; the next run's create removes them.
stop_background() {
  local pid
  for pid in $sanity_pid $cluster_pid $encryption_pid; do kill -- "-$pid" 2>/dev/null || true; done
}
# A CI log shows its last lines: after a failure, say again there which tasks failed, in every log
# this run wrote (a playbook's clean-up prints hundreds of lines after the task that failed).
failure_digest() {
  local log lines
  for log in "$INTEGRATION_LOG" "$ROOT/tests/output/integration-rest.log" "$ENCRYPTION_LOG" "$CLUSTER_LOG" \
    "$SANITY_LOG"; do
    [ -s "$log" ] && [ "$log" -nt "$RUN_STARTED" ] || continue
    # Molecule's log frames each line ("  │ ") and colours it: both taken off first.
    lines=$(LC_ALL=C awk '
      function show(line) { print substr(line, 1, 800) }
      { l = $0; gsub(/\033\[[0-9;]*m/, "", l); sub(/^ *(\342\224\202|\|) */, "", l) }
      pending != "" { if (l !~ /^\.\.\.ignoring/) { show(task); show(pending) } pending = "" }
      l ~ /^TASK \[/ { task = l }
      l ~ /^(fatal|failed): \[/ { pending = l }
      l ~ /^(\[?ERROR\]?|FATAL|FAILED)[: ]/ && l !~ /^FAILED - RETRYING/ { show(l) }
      END { if (pending != "") { show(task); show(pending) } }' "$log" | tail -n 40)
    [ -z "$lines" ] || printf '\n=== failed tasks in %s (the last 40 lines; a test of bad input fails on purpose)\n%s\n' \
      "$log" "$lines"
  done
}
on_exit() {
  local status=$?
  stop_background
  [ "$status" = 0 ] || failure_digest
  rm -f "$RUN_STARTED"
}
trap on_exit EXIT
# Under set -m bash no longer gives a background job /dev/null as its input: give it here.
in_background() { set -m; "$@" </dev/null & set +m; }

# A run stopped half-way leaves molecule's record of nodes it made, which its next create believes
# (and skips) even once the nodes are gone: start from no record; create removes leftover nodes.
forget_cluster() { molecule reset -s cluster >/dev/null 2>&1 || true; }
banner() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

for stage in "${stages[@]}"; do
  start=$(date +%s)
  case "$stage" in
    lint)
      banner "lint: ruff, the playbooks' syntax, ansible-lint (profile production, see .ansible-lint), the reference's links"
      ruff check plugins roles tests bench
      for playbook in playbooks/*.yml; do
        ansible-playbook -i inventories/local/hosts.yml --syntax-check "$playbook" >/dev/null
      done
      # qoddi.paas as this checkout, whichever checkout the virtualenv links (scripts/venv.sh).
      lint_collections="${QODDI_TEST_TREE:-/tmp/qoddi.paas-test}-lint"
      mkdir -p "$lint_collections/ansible_collections/qoddi"
      ln -sfn "$ROOT" "$lint_collections/ansible_collections/qoddi/paas"
      ANSIBLE_COLLECTIONS_PATH="$lint_collections" ansible-lint
      # Every reference between the plugins' and roles' documentation resolves; the reference renders.
      scripts/docs.sh
      ;;
    sanity)
      banner "sanity: ansible-test sanity"
      run_sanity 2>&1 | tee "$SANITY_LOG"
      check_sanity_log "$SANITY_LOG"
      ;;
    sanity-start)
      banner "sanity: ansible-test sanity, in the background (log: $SANITY_LOG)"
      in_background run_sanity >"$SANITY_LOG" 2>&1
      sanity_pid=$!
      ;;
    sanity-wait)
      banner "sanity: waiting for the background run"
      status=0; wait "$sanity_pid" || status=$?
      sanity_pid=""
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
      run_integration "$INTEGRATION_LOG" ${QODDI_TARGETS:-}
      ;;
    integration-engine)
      banner "integration: the targets that stop the engine (${ENGINE_STOPPING_TARGETS[*]}), alone on it"
      run_integration "$INTEGRATION_LOG" "${ENGINE_STOPPING_TARGETS[@]}"
      ;;
    integration-rest)
      banner "integration: every other target"
      excludes=()
      for target in "${ENGINE_STOPPING_TARGETS[@]}"; do excludes+=(--exclude "$target"); done
      run_integration "$ROOT/tests/output/integration-rest.log" "${excludes[@]}"
      ;;
    encryption)
      # Needs the platform's postgres image (the platform or molecule stage first); runs an engine of
      # its own beside the host's.
      banner "encryption: qoddi.paas.disk_encryption, fscrypt end to end and LUKS as far as this kernel goes"
      run_encryption
      check_integration_log "$ENCRYPTION_LOG"
      ;;
    encryption-start)
      banner "encryption: the disk-encryption target, in the background (log: $ENCRYPTION_LOG)"
      in_background run_encryption >/dev/null 2>&1
      encryption_pid=$!
      ;;
    encryption-wait)
      banner "encryption: waiting for the background run"
      status=0; wait "$encryption_pid" || status=$?
      encryption_pid=""
      cat "$ENCRYPTION_LOG"
      [ "$status" = 0 ] || fail_stage encryption "the disk-encryption target exited $status (log: $ENCRYPTION_LOG)"
      check_integration_log "$ENCRYPTION_LOG"
      ;;
    molecule)
      banner "molecule: scenario default (converge, idempotence, verify)"
      molecule test -s default
      ;;
    cluster)
      banner "cluster: the platform and the sample on three brand-new nodes (molecule scenario cluster)"
      forget_cluster
      molecule test -s cluster
      ;;
    cluster-start)
      banner "cluster: the three-node scenario, in the background (log: $CLUSTER_LOG)"
      forget_cluster
      in_background molecule test -s cluster >"$CLUSTER_LOG" 2>&1
      cluster_pid=$!
      ;;
    cluster-wait)
      banner "cluster: waiting for the background run"
      status=0; wait "$cluster_pid" || status=$?
      cluster_pid=""
      cat "$CLUSTER_LOG"
      [ "$status" = 0 ] || fail_stage cluster "molecule test -s cluster exited $status (log: $CLUSTER_LOG)"
      ;;
    *)
      echo "unknown stage $stage (lint sanity unit platform molecule integration cluster encryption, or all)" >&2
      exit 2
      ;;
  esac
  echo "--- $stage passed in $(( $(date +%s) - start )) s"
done
