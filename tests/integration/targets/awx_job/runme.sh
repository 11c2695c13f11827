#!/usr/bin/env bash
# The collection as a user and AWX get it, against the real platform of this host:
# 1. Packaging: `ansible-galaxy collection build` of the collection under test; the tarball holds the
#    licence and no cache, virtualenv, test output or CI file; a release's changelog can be cut from its
#    fragments (antsibull-changelog release, in a copy).
# 2. A fresh virtualenv with only the tarball's requirements.txt (plus ansible-runner and ansible-builder,
#    pinned by constraints.txt); the tarball installed with ansible-galaxy --offline, its galaxy.yml
#    dependencies found in the PyPI `ansible` bundle; every plugin's and role's ansible-doc page renders
#    without a warning, and no plugin is listed as undocumented.
# 3. The execution environment: `ansible-builder create` makes the build context of
#    execution-environment.yml (building the image needs its base image, which no registry here serves),
#    and `ansible-builder introspect` finds the collection's Python and system requirements.
# 4. Jobs as AWX runs them: ansible-runner with a private data dir (an inventory, env/extravars as a
#    survey gives them, a clean environment, a project outside the repository whose playbook imports
#    qoddi.paas.app by FQCN). The first deploys the sample app with a Postgres; its artifacts say
#    successful, its stats carry the app's URL, release and image (set_stats), no artifact holds a
#    secret, the build's log lines came in the job's output while it ran, and the URL answers over
#    verified HTTPS. The same job again (numbers and lists as strings, as survey fields give them)
#    changes nothing and shows no build line. Jobs with a bad extra var fail at the check, with one
#    message naming it. Two scheduled backups keep one dump.
set -eEuo pipefail
# A CI log keeps its last lines: say which command stopped the run, in a line its digest shows.
trap 'echo "FAILED: awx_job, line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")"
HERE=$PWD
collection=$(bash ../setup_collection_path/collection.sh)
BIN=$(dirname "$(python -c 'import sys; print(sys.executable)')")  # the project's virtualenv: uv, antsibull-changelog
WORK=${QODDI_AWX_TEST_DIR:-/tmp/qoddi-test-awx-job}
SECRET="awx-secret-$(python -c 'import secrets; print(secrets.token_hex(16))')"
cleanup() {
  ansible-playbook -i "$collection/inventories/local/hosts.yml" cleanup.yml "$@" || true
  rm -rf "$WORK"
}
rm -rf "$WORK"
trap cleanup EXIT
mkdir -p "$WORK"
step() { printf '\n=== awx_job: %s\n' "$*"; }

step "build the collection"
ansible-galaxy collection build --output-path "$WORK/dist" "$collection"
tarball=$(echo "$WORK"/dist/qoddi-paas-*.tar.gz)
tar -tzf "$tarball" > "$WORK/contents"
grep -qx 'LICENSES/GPL-3.0-or-later.txt' "$WORK/contents"
grep -qx 'meta/execution-environment.yml' "$WORK/contents"
if grep -E '(^|/)(\.venv|\.ci|bench|\.pytest_cache|\.ruff_cache|__pycache__|tests/output)(/|$)|\.pyc$|\.tar\.gz$' "$WORK/contents"; then
  echo "awx_job: the tarball holds files a user's install has no use for (above)" >&2; exit 1
fi

step "cut a release's changelog from the fragments (in a copy)"
mkdir -p "$WORK/release/ansible_collections/qoddi"
cp -a "$collection" "$WORK/release/ansible_collections/qoddi/paas"
version=$(sed -n 's/^version: *//p' "$collection/galaxy.yml")
(cd "$WORK/release/ansible_collections/qoddi/paas" &&
  PATH="$BIN:$PATH" ANSIBLE_COLLECTIONS_PATH="$WORK/release" "$BIN/antsibull-changelog" release --version "$version" &&
  grep -q "^v$version\$" CHANGELOG.rst && [ -z "$(ls changelogs/fragments)" ])

step "a fresh virtualenv with the tarball's requirements only, the collection installed from the tarball"
mkdir -p "$WORK/requirements"
tar -xzf "$tarball" -C "$WORK/requirements" requirements.txt meta/ee-requirements.txt
"$BIN/uv" venv -q --no-python-downloads --python "$(python -c 'import sys; print(sys._base_executable)')" "$WORK/venv"
"$BIN/uv" pip install -q --native-tls --python "$WORK/venv/bin/python" -c "$collection/constraints.txt" \
  -r "$WORK/requirements/requirements.txt" ansible-runner ansible-builder
V=$WORK/venv/bin
# A clean environment, as a job's: nothing of ansible-test's or of this project's settings.
clean=(env -i "PATH=$V:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "HOME=$HOME" LANG=C.UTF-8
       "ANSIBLE_COLLECTIONS_PATH=$WORK/collections")
"${clean[@]}" ansible-galaxy collection install --offline -p "$WORK/collections" "$tarball"

step "every plugin's and role's documentation renders"
for type in module filter role; do
  "${clean[@]}" ansible-doc -t "$type" -l qoddi.paas --json > "$WORK/list-$type.json"
  names=$(python -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))))' "$WORK/list-$type.json")
  [ -n "$names" ]
  for name in $names; do
    # ansible-core's own warning about its internal _protomatter collection (ansible-doc -t role) is no fault of ours.
    "${clean[@]}" ansible-doc -t "$type" "$name" 2>&1 > "$WORK/doc" | { grep -v '_protomatter' || true; } > "$WORK/doc-errors"
    if [ -s "$WORK/doc-errors" ] || [ ! -s "$WORK/doc" ] || grep -q UNDOCUMENTED "$WORK/doc"; then
      echo "awx_job: ansible-doc -t $type $name:" >&2; cat "$WORK/doc-errors" >&2; exit 1
    fi
  done
  echo "$type: $names"
done

step "the execution environment's build context, and what it would install for the collection"
mkdir -p "$WORK/ee-definition/.build/ee"
cp "$collection/execution-environment.yml" "$WORK/ee-definition/"
cp "$tarball" "$WORK/ee-definition/.build/ee/qoddi-paas.tar.gz"
"${clean[@]}" ansible-builder create -f "$WORK/ee-definition/execution-environment.yml" -c "$WORK/ee"
cmp "$tarball" "$WORK/ee/_build/collections/qoddi-paas.tar.gz"
grep -q 'name: collections/qoddi-paas.tar.gz' "$WORK/ee/_build/requirements.yml"
grep -q 'ansible-galaxy collection install .*-r requirements.yml' "$WORK/ee/Dockerfile"
"${clean[@]}" ansible-builder introspect --sanitize "$WORK/collections" > "$WORK/introspect"
for want in 'docker.*qoddi.paas' 'cryptography.*qoddi.paas' 'passlib.*qoddi.paas' 'openssh-client.*qoddi.paas'; do
  grep -Eq "$want" "$WORK/introspect" || { echo "awx_job: introspection lacks $want" >&2; cat "$WORK/introspect" >&2; exit 1; }
done

step "jobs through ansible-runner, as AWX runs them"
R=$WORK/runner
mkdir -p "$R/inventory" "$R/env" "$R/project"
cp -a "$collection/inventories/local/." "$R/inventory/"
printf -- '---\n- name: Deploy an app as a job template does\n  ansible.builtin.import_playbook: qoddi.paas.app\n' > "$R/project/deploy.yml"
printf -- '---\n- name: Back up datastores as a scheduled job does\n  ansible.builtin.import_playbook: qoddi.paas.backup\n' > "$R/project/backup.yml"
# What a survey gives: strings, a multiple choice, a textarea of NAME=value lines; $1 replaces the textarea,
# $2 adds a line.
extravars() {
  cat > "$R/env/extravars" <<YAML
qoddi_app_name: awx-sample
qoddi_app_path: $collection/examples/django-sample
qoddi_app_datastores: ${DATASTORES:-[postgres]}
qoddi_app_health_check_path: /healthz
qoddi_app_env_text: |
$(printf '%s\n' "$1" | sed 's/^/  /')
qoddi_app_env:
  CSRF_TRUSTED_ORIGINS: https://awx-sample.qoddi.localhost
$2
YAML
}
ENV_TEXT="# pasted from a survey
SECRET_KEY=$SECRET
ALLOWED_HOSTS=awx-sample,awx-sample.qoddi.localhost,localhost"
job() {
  local ident=$1; shift
  "${clean[@]}" ansible-runner run "$R" -p "${PLAYBOOK:-deploy.yml}" --ident "$ident" "$@" > "$WORK/$ident.out" 2>&1 || true
  tail -n 5 "$WORK/$ident.out"
}

extravars "$ENV_TEXT" ""
job deploy
python "$HERE/check_job.py" "$R/artifacts/deploy" --status successful --changed yes --secret "$SECRET" --secret postgres:// \
  > "$WORK/stats.json" || { cat "$WORK/deploy.out"; exit 1; }
cat "$WORK/stats.json"
# The build's log came while it ran, into the job's output (AWX's page), before the deploy's own result.
grep -c 'awx-sample build: Step ' "$R/artifacts/deploy/stdout"
grep -q 'awx-sample build: Successfully built' "$R/artifacts/deploy/stdout"
url=$(python -c 'import json, sys; s = json.load(open(sys.argv[1])); assert s["qoddi_app_release"] >= 1 and s["qoddi_app_image_id"].startswith("sha256:") and s["qoddi_app_datastores"] == ["awx-sample-postgres"], s; print(s["qoddi_app_url"])' "$WORK/stats.json")
[ "$url" = https://awx-sample.qoddi.localhost ]
# The controller routes the new app at the edge and orders its certificate by itself.
served=false
for _ in $(seq 60); do
  if answer=$(curl -sS --fail --max-time 10 --cacert /etc/qoddi/pebble/issuing-root.pem \
                   --resolve awx-sample.qoddi.localhost:443:127.0.0.1 "$url/version" 2>&1); then served=true; break; fi
  sleep 2
done
echo "HTTPS $url/version: $answer"
if ! $served; then
  echo "FAILED: awx_job: $url not served over verified HTTPS in 120 s; the controller's last lines:" >&2
  docker service logs --raw --since 5m qoddi-controller 2>&1 | tail -n 30 >&2
  exit 1
fi

# Again, with what a survey's text fields give (a number as a string, a list as a comma-separated string):
# nothing changes, nothing is built, and the job shows no build line (not even the previous build's).
DATASTORES='"postgres"' extravars "$ENV_TEXT" 'qoddi_app_wait_timeout: "900"'
job again
python "$HERE/check_job.py" "$R/artifacts/again" --status successful --changed no --secret "$SECRET" --secret postgres:// \
  || { cat "$WORK/again.out"; exit 1; }
if grep 'awx-sample build:' "$R/artifacts/again/stdout"; then
  echo "awx_job: the job that built nothing showed build lines (above)" >&2; exit 1
fi

extravars "$ENV_TEXT" "qoddi_app_size: XXL"
job bad-size
python "$HERE/check_job.py" "$R/artifacts/bad-size" --status failed --secret "$SECRET" \
  --failed-task "^Validating arguments against arg spec 'main'" \
  --message 'qoddi_app_size.*XXL' || { cat "$WORK/bad-size.out"; exit 1; }

extravars "$ENV_TEXT
pasted-without-equals-$SECRET" ""
job bad-env
python "$HERE/check_job.py" "$R/artifacts/bad-env" --status failed --failed-task 'Check what the job was given$' \
  --message 'qoddi_app_env_text: line 4 is not NAME=value' --secret "$SECRET" || { cat "$WORK/bad-env.out"; exit 1; }
# A scheduled backup, twice, keeping one dump: the second removes the first.
printf 'qoddi_backup_datastores: awx-sample-postgres\nqoddi_backup_dir: %s\nqoddi_backup_keep: 1\n' "$WORK/backups" > "$R/env/extravars"
for ident in backup-1 backup-2; do
  sleep 1  # dumps are named by the second
  PLAYBOOK=backup.yml job "$ident"
  python "$HERE/check_job.py" "$R/artifacts/$ident" --status successful --changed yes --secret "$SECRET" > "$WORK/$ident.json" ||
    { cat "$WORK/$ident.out"; exit 1; }
done
dump=$(python -c 'import json, sys; [f] = json.load(open(sys.argv[1]))["qoddi_backup_files"]; print(f["path"])' "$WORK/backup-2.json")
[ "$(ls "$WORK/backups")" = "$(basename "$dump")" ] && [ -s "$dump" ]
echo "awx_job: passed"
