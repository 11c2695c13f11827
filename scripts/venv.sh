#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv and install the pinned tools.
# Idempotent: it reinstalls only when a requirements file changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${QODDI_VENV:-.venv}

find_python() {
  # ansible-core 2.20+ needs Python 3.12+ on the controller.
  local candidate
  for candidate in python3.13 python3.12 python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 15) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  # pyenv-managed interpreters that are installed but not on the shim path
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[234].*/bin/python3; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python) || {
    echo "qoddi: no Python 3.12-3.14 found; ansible-core needs one on the controller." >&2
    echo "qoddi: install python3.12 or newer (e.g. apt-get install python3.12, or pyenv) and retry." >&2
    exit 1
  }
  echo "qoddi: creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt meta/ee-requirements.txt requirements-test.txt constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "qoddi: installing Python requirements into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
  # constraints.txt pins every package to versions known to work together, so the resolver never
  # backtracks; the requirements files keep the ranges a user may widen. uv installs them in a
  # fraction of pip's time; --native-tls makes it trust the system CA store, as pip does here.
  "$VENV/bin/uv" pip install --quiet --native-tls --python "$VENV/bin/python" \
    -c constraints.txt -r requirements.txt -r requirements-test.txt
  echo "$want" > "$stamp"
fi

# Make this checkout importable as the qoddi.paas collection without copying it.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/ansible_collections/qoddi"
ln -sfn "$PWD" "$site/ansible_collections/qoddi/paas"
