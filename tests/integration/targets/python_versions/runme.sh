#!/usr/bin/env bash
# The Python an app asks for, as a new user meets it: apps deployed by a playbook of minimal tasks
# (name, stack, source.path: no build settings, no Python setting) on the embedded default's
# inventory, then the collection's own edge playbook, then each app asked over HTTPS which
# interpreter answers. Versions the platform was not set up with are built at the app's first build.
set -eux
# The collection ansible-test points Ansible at: its inventory and playbooks are the user's.
collection=$(bash ../setup_collection_path/collection.sh)
inventory="$collection/inventories/local/hosts.yml"
cleanup() { ansible-playbook -i "$inventory" cleanup.yml "$@" || true; }
trap cleanup EXIT
ansible-playbook -i "$inventory" deploy.yml "$@"
ansible-playbook -i "$inventory" qoddi.paas.edge "$@"
ansible-playbook -i "$inventory" verify.yml "$@"
