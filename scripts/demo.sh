#!/usr/bin/env bash
# Run the platform on this machine (the embedded default inventory) and say what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml "$@"
echo "qoddi: platform ready on this machine in $(( $(date +%s) - start )) s (inventory: inventories/local)."
