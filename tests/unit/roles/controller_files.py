# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's scripts (roles/controller/files) loaded as its zipapp runs them: top-level modules
that import one another by name. Each call makes a fresh module (a test file's module state is its
own), registered under its name so that the next one loaded imports it."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

FILES = pathlib.Path(__file__).parents[3] / "roles" / "controller" / "files"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
