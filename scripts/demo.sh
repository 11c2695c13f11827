#!/usr/bin/env bash
# The main job on the embedded default: this machine as a one-node platform (engine, images, Swarm),
# then the sample Django app built from examples/django-sample and deployed on it.
set -euo pipefail
cd "$(dirname "$0")/.."
# Some machines set this globally; Ansible then compiles its own code again on every run (a no-change
# run of an app's three tasks used 1.5-2 s more CPU here), as the Makefile and scripts/test.sh know.
unset PYTHONDONTWRITEBYTECODE
start=$(date +%s)
# platform.yml is site.yml without its edge play: sample.yml runs the edge once its app is deployed.
# QODDI_DISK_ENCRYPTION=fscrypt puts the engine's data, the datastores' volumes and the platform's state
# on encrypted storage first (a machine whose engine has no data yet: the role refuses to hide data).
encryption=()
[ -z "${QODDI_DISK_ENCRYPTION:-}" ] || encryption=(-e "qoddi_disk_encryption_backend=$QODDI_DISK_ENCRYPTION")
ansible-playbook -i inventories/local/hosts.yml playbooks/platform.yml playbooks/sample.yml "${encryption[@]}" "$@"
echo "qoddi: platform and sample app ready on this machine in $(( $(date +%s) - start )) s (inventory: inventories/local)."
