#!/usr/bin/env bash
# The collection's reference, rendered from its documentation (every module, filter, role) by antsibull-docs
# into .build/docs (reStructuredText, one page per plugin and role, an index per type), after
# `antsibull-docs lint-collection-docs` checked every reference between them (M(), P(), O(), RV()).
# antsibull-docs runs in a virtualenv of its own (.build/docs-venv, pinned by docs/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.build/docs-venv
stamp="$VENV/.requirements.sha256"
want=$(sha256sum docs/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$VENV"
  .venv/bin/uv venv -q --no-python-downloads --python "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" "$VENV"
  .venv/bin/uv pip install -q --native-tls --python "$VENV/bin/python" -r docs/requirements.txt
  echo "$want" > "$stamp"
fi
# The collection as ansible-doc finds it: this checkout, linked into .venv (scripts/venv.sh), beside the
# collections it depends on.
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export PATH="$PWD/$VENV/bin:$PATH"
antsibull-docs lint-collection-docs --plugin-docs .
rm -rf .build/docs && mkdir -p .build/docs
antsibull-docs collection --use-current --dest-dir .build/docs --output-format simplified-rst qoddi.paas
echo "qoddi: the reference is in .build/docs/collections/qoddi/paas/ ($(find .build/docs -name '*.rst' | wc -l) pages)"
