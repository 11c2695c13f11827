# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Python files as one runnable zip (a zipapp), base64-encoded: the controller's code in one Swarm config.

``files | qoddi.paas.zipapp('controller:main')``: ``files`` is a list of ``{src, target}`` (a file on
the control node, its path in the archive). One config instead of one per file: the controller role
shipped ten configs, one module run each (5 s of every no-change run). The archive is byte-for-byte
the same for the same files (fixed timestamps and order), so an unchanged run changes nothing.
"""

from __future__ import annotations

import base64
import io
import posixpath
import zipfile

from ansible.errors import AnsibleFilterError

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the oldest time a zip can hold


def _entry(archive: zipfile.ZipFile, path: str, data: bytes) -> None:
    info = zipfile.ZipInfo(path, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def zipapp(files: list, main: str) -> str:
    """The archive of ``files`` with a __main__.py that runs ``main`` (``module:function``), as base64.

    Every directory that holds a file (the controller ships Python files only) gets an empty __init__.py
    when it has none: zipimport finds regular packages only, and ansible_collections is a namespace
    package on disk.
    """
    module, unused, function = main.partition(":")
    if not module or not function:
        raise AnsibleFilterError(f"zipapp: main must read module:function, not {main!r}")
    contents = {}
    for item in files:
        target = posixpath.normpath(str(item["target"])).lstrip("/")
        try:
            with open(item["src"], "rb") as handle:
                contents[target] = handle.read()
        except OSError as exc:
            raise AnsibleFilterError(f"zipapp: cannot read {item['src']}: {exc}") from None
    for target in list(contents):
        directory = posixpath.dirname(target)
        while directory:
            contents.setdefault(f"{directory}/__init__.py", b"")
            directory = posixpath.dirname(directory)
    contents["__main__.py"] = f"import sys\n\nimport {module}\n\nsys.exit({module}.{function}())\n".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for target in sorted(contents):
            _entry(archive, target, contents[target])
    return base64.b64encode(buffer.getvalue()).decode()


class FilterModule:
    def filters(self):
        return {"zipapp": zipapp}
