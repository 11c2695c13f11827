# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64
import subprocess
import sys

from ansible_collections.qoddi.paas.plugins.filter.zipapp import zipapp

TOOL = "from pkg.sub import helper\n\ndef main():\n    print(helper.VALUE)\n    return 3\n"


def test_the_archive_runs_its_main_with_packages_inside_and_is_the_same_each_time(tmp_path):
    (tmp_path / "tool.py").write_text(TOOL)
    (tmp_path / "helper.py").write_text("VALUE = 'from the zip'\n")
    files = [{"src": str(tmp_path / "tool.py"), "target": "tool.py"},
             {"src": str(tmp_path / "helper.py"), "target": "pkg/sub/helper.py"}]
    encoded = zipapp(files, "tool:main")
    archive = tmp_path / "app.pyz"
    archive.write_bytes(base64.b64decode(encoded))
    # Run from the zip alone: the files next to it must not be what is imported.
    (tmp_path / "tool.py").unlink()
    ran = subprocess.run([sys.executable, str(archive)], capture_output=True, text=True, cwd="/", check=False)
    assert (ran.returncode, ran.stdout) == (3, "from the zip\n")
    (tmp_path / "tool.py").write_text(TOOL)
    assert zipapp(files, "tool:main") == encoded
