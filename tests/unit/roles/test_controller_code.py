# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's code as the role ships it (one zipapp, roles/controller/vars/main.yml) imports
everything it needs from the archive: a module_utils file missing from the list would stop the
controller at its start on a real node, where no collection is installed."""

from __future__ import annotations

import base64
import pathlib
import subprocess
import sys

import yaml

from ansible_collections.qoddi.paas.plugins.filter.zipapp import zipapp

ROLE = pathlib.Path(__file__).parents[3] / "roles" / "controller"


def test_the_shipped_zipapp_imports_the_controller_and_its_module_utils_from_itself(tmp_path):
    variables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    utils = variables["__qoddi_controller_utils"]
    files = [{"src": item["src"].replace("{{ role_path }}", str(ROLE)),
              "target": item["target"].replace("{{ __qoddi_controller_utils }}", utils)}
             for item in variables["__qoddi_controller_code"]]
    archive = tmp_path / "controller.pyz"
    archive.write_bytes(base64.b64decode(zipapp(files, "controller:main")))
    # The archive first on the path, as when Python runs it; the installed collection must not be used.
    check = ("import sys; sys.path.insert(0, sys.argv[1]); import controller, edge, certificates; "
             "import ansible_collections.qoddi.paas.plugins.module_utils as utils; "
             "loaded = [m.__file__ for n, m in sys.modules.items() if n.startswith(utils.__name__ + '.')]; "
             "assert loaded and all(sys.argv[1] in f for f in loaded), loaded; print(len(loaded))")
    ran = subprocess.run([sys.executable, "-c", check, str(archive)], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout) >= 5
