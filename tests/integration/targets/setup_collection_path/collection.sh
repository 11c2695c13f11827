#!/usr/bin/env bash
# Prints the copy of qoddi.paas ansible-test points Ansible at, whose inventories, playbooks and examples
# are the user's; for the script targets (needs/target/setup_collection_path in their aliases):
#   collection=$(bash ../setup_collection_path/collection.sh)
set -euo pipefail
python - <<'PY'
import os
import sys

for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
    candidate = os.path.join(path, "ansible_collections", "qoddi", "paas")
    if os.path.isdir(os.path.join(candidate, "inventories")):
        print(candidate)
        sys.exit(0)
sys.exit("setup_collection_path: no qoddi.paas with inventories/ in ANSIBLE_COLLECTIONS_PATH")
PY
