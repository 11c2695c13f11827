# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""collectstatic's output, reused while nothing it depends on changed.

collectstatic needs the app's config vars, so it runs in a container after the build (see
_build.run_hooks): a container, Django's start and a commit, about two seconds here for a
code-only change that leaves the static files as they were. Its output is reused from an earlier
release when the key below is the same; when unsure, it runs again (a stale static file is a bug
users cannot see).

The key covers exactly what can change collectstatic's result:
- the image below the app's code (the Python, the virtualenv with every installed package, their
  static files and the storage code: whitenoise, Django), by its layers;
- the hooks script (what runs, from which directory) and every config var (by version, not value:
  settings may read any variable, DISABLE_COLLECTSTATIC among them);
- the names of all the source's files: a file added, removed or renamed anywhere recomputes (a new
  static directory, a module that shadows another, a settings file that appears);
- the contents of every source file collectstatic opened when it last ran: the settings and every
  module Django imported, the static files its finders found, any file the settings read (an
  .env file...). Python reports each open to an audit hook (sys.addaudithook), which the hooks'
  wrapper installs before running manage.py.
Anything else (bin/post_compile, which may do anything) is never reused. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label
from ansible_collections.qoddi.paas.plugins.module_utils._source import _walk

KEY_LABEL = Label.STATIC_KEY
INPUTS_LABEL = Label.STATIC_INPUTS  # JSON list of the source files collectstatic opened
PATHS_LABEL = Label.STATIC_PATHS  # JSON list of what it added to the image
MANIFEST = "qoddi-static-inputs: "
# More added paths than this, and the output is not taken over (an app writing all over the image).
MAX_PATHS = 20

# Runs manage.py collectstatic as `python manage.py` would, recording every file Python opens.
_WRAPPER = """\
import json, os, runpy, sys
opened = set()
def _record(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes)):
        opened.add(os.path.normpath(os.path.join(os.getcwd(), os.fsdecode(args[0]))))
sys.addaudithook(_record)
sys.argv = ["manage.py", "collectstatic", "--noinput"]
try:
    runpy.run_path("manage.py", run_name="__main__")
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
print("qoddi-static-inputs: " + json.dumps(sorted(p[5:] for p in opened if p.startswith("/app/"))))
"""  # the line take_manifest() looks for (MANIFEST)


def collect_command(manage_dir: str) -> str:
    """The bash command that runs collectstatic in ``manage_dir`` and prints the files it opened."""
    return (f"(cd {shlex.quote(manage_dir)} && PYTHONPATH=/app python - <<'QODDI_COLLECTSTATIC'\n"
            f"{_WRAPPER}QODDI_COLLECTSTATIC\n  )")


def take_manifest(log: list[str]) -> list[str] | None:
    """The files collectstatic opened (relative to /app), taken out of the hooks' ``log``; None if absent."""
    for index in range(len(log) - 1, -1, -1):
        if log[index].startswith(MANIFEST):
            line = log.pop(index)
            try:
                return json.loads(line[len(MANIFEST):])
            except ValueError:
                return None
    return None


def added_paths(changes: list[dict]) -> list[str] | None:
    """What the hooks added to the container (``docker diff``), topmost paths only; None when they
    also changed or deleted a file, which a copy of their output could not repeat. The engine answers
    null, not an empty list, when the hooks wrote nothing (an app without static files)."""
    changes = changes or []
    added = sorted(change["Path"] for change in changes if change["Kind"] == 1)
    tops = [path for path in added if not any(path.startswith(other + "/") for other in added)]
    for change in changes:
        if change["Kind"] == 2:
            return None
        # A changed directory is fine when it only gained what was added (its parent /app...).
        if change["Kind"] == 0 and not any(top.startswith(change["Path"].rstrip("/") + "/") for top in tops):
            return None
    return tops if len(tops) <= MAX_PATHS else None


def key(base_layers: list[str], hooks_script: str, variables: dict[str, int], root: str, inputs: list[str]) -> str:
    """The key of collectstatic's output for the source in ``root`` (see the module's docstring)."""
    digest = hashlib.sha256(b"qoddi-static-1\0")
    for part in [*base_layers, hooks_script, json.dumps(sorted(variables.items()))]:
        digest.update(part.encode() + b"\0")
    files = list(_walk(root))
    digest.update("\n".join(files).encode() + b"\0")
    for rel in sorted(set(inputs) & set(files)):
        full = os.path.join(root, rel)
        digest.update(rel.encode() + b"\0")
        if os.path.islink(full):
            digest.update(b"link:" + os.readlink(full).encode())
        else:
            with open(full, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:32]


def labels(key_value: str, inputs: list[str], paths: list[str], root: str) -> dict[str, str]:
    """The labels a release image keeps for the next build: the key, its inputs (source files only), its output."""
    files = set(_walk(root))
    return {KEY_LABEL: key_value, INPUTS_LABEL: json.dumps(sorted(set(inputs) & files)), PATHS_LABEL: json.dumps(paths)}


def reusable(image_labels: dict, base_layers: list[str], hooks_script: str, variables: dict[str, int],
             root: str) -> list[str] | None:
    """The paths to take from the release image with ``image_labels`` when its output holds for this
    source; None when it must run again."""
    try:
        inputs = json.loads(image_labels[INPUTS_LABEL])
        paths = json.loads(image_labels[PATHS_LABEL])
        wanted = image_labels[KEY_LABEL]
    except (KeyError, ValueError):
        return None
    return paths if key(base_layers, hooks_script, variables, root, inputs) == wanted else None
