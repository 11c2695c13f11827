# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""collectstatic's output is reused only while every input of its key is the same (_static)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils import _static as static

BASE = ["sha256:python", "sha256:venv"]
HOOKS = "set -e\n(collectstatic)\n"
VARIABLES = {"SECRET_KEY": 3, "ALLOWED_HOSTS": 4}
INPUTS = ["manage.py", "proj/settings.py", "app/static/app.css"]


@pytest.fixture
def source(tmp_path):
    files = {"manage.py": "main()\n", "proj/settings.py": "STATIC_ROOT = 'staticfiles'\n",
             "app/static/app.css": "body {}\n", "app/views.py": "def index(): return 1\n",
             "app/templates/index.html": "<p>hi</p>\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def recorded(root) -> dict[str, str]:
    return static.labels(static.key(BASE, HOOKS, VARIABLES, str(root), INPUTS + ["staticfiles/x.css"]),
                         INPUTS + ["staticfiles/x.css"], ["/app/staticfiles"], str(root))


def test_unchanged_inputs_reuse_the_output_and_a_code_change_outside_them_too(source):
    labels = recorded(source)
    # Only source files are kept as inputs: what collectstatic wrote is not the source's.
    assert json.loads(labels[static.INPUTS_LABEL]) == sorted(INPUTS)
    (source / "app/views.py").write_text("def index(): return 2\n")
    assert static.reusable(labels, BASE, HOOKS, VARIABLES, str(source)) == ["/app/staticfiles"]


@pytest.mark.parametrize("change", [
    "settings", "static file", "new file", "removed file", "variables", "base", "hooks",
])
def test_any_input_changed_runs_it_again(source, change):
    labels = recorded(source)
    base, hooks, variables = BASE, HOOKS, VARIABLES
    if change == "settings":
        (source / "proj/settings.py").write_text("STATIC_ROOT = 'elsewhere'\n")
    elif change == "static file":
        (source / "app/static/app.css").write_text("body { color: red }\n")
    elif change == "new file":  # a new static directory, a module that shadows another...
        (source / "other").mkdir()
        (source / "other/static.css").write_text("")
    elif change == "removed file":
        (source / "app/templates/index.html").unlink()
    elif change == "variables":  # settings may read any of them: by version, never by value
        variables = {**VARIABLES, "DISABLE_COLLECTSTATIC": 5}
    elif change == "base":  # another virtualenv (a package's static files, the storage's code)
        base = ["sha256:python", "sha256:venv2"]
    else:
        hooks = HOOKS + "bin/post_compile\n"
    assert static.reusable(labels, base, hooks, variables, str(source)) is None


def test_a_release_without_the_labels_is_not_reused(source):
    assert static.reusable({}, BASE, HOOKS, VARIABLES, str(source)) is None


def test_only_additions_can_be_taken_over():
    assert static.added_paths([{"Path": "/app", "Kind": 0}, {"Path": "/app/staticfiles", "Kind": 1},
                               {"Path": "/app/staticfiles/a.css", "Kind": 1}]) == ["/app/staticfiles"]
    # A source file the hooks changed, or a file they deleted, cannot be repeated by a copy.
    assert static.added_paths([{"Path": "/app", "Kind": 0}, {"Path": "/app/proj/settings.py", "Kind": 0},
                               {"Path": "/app/staticfiles", "Kind": 1}]) is None
    assert static.added_paths([{"Path": "/app/old.txt", "Kind": 2}]) is None


def test_the_manifest_line_is_taken_out_of_the_log():
    log = ["qoddi: running manage.py collectstatic --noinput", "3 static files copied",
           static.MANIFEST + json.dumps(["manage.py"])]
    assert static.take_manifest(log) == ["manage.py"] and log == log[:2]
    assert static.take_manifest(["no manifest"]) is None


def test_the_wrapper_records_what_python_opens(tmp_path):
    # The wrapper as the hooks run it, on a manage.py that imports a module and reads a file.
    (tmp_path / "mod.py").write_text("X = 1\n")
    (tmp_path / "data.txt").write_text("x\n")
    (tmp_path / "manage.py").write_text("import mod\nopen('data.txt').read()\n")
    root = str(tmp_path) + "/"  # for /app/
    script = static._WRAPPER.replace('"/app/"', repr(root)).replace("p[5:]", f"p[{len(root)}:]")
    out = subprocess.run([sys.executable, "-"], input=script, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    inputs = static.take_manifest(out.splitlines())
    assert {"manage.py", "mod.py", "data.txt"} <= set(inputs)


def test_hooks_that_wrote_nothing_added_nothing():
    """The engine's diff of a container that changed nothing is null."""
    assert static.added_paths(None) == []
