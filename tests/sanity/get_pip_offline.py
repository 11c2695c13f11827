# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the get-pip.py that ansible-test downloads before making its sanity venvs.

ansible-test fetches get-pip.py from ci-files.testing.ansible.com, which hosts without general
internet access (air-gapped CI, these machines) cannot reach, while PyPI or a mirror of it is
reachable. This script does the same job from the standard library's ensurepip and then pip
itself, with the arguments ansible-test passes (e.g. pip==25.2). scripts/test.sh places it in
ansible-test's cache only when no real get-pip.py is there.
"""

from __future__ import annotations

import ensurepip
import os
import shutil
import subprocess
import sys

# ansible-test passes pip's own options (--no-setuptools, ...) and the pip to install (pip==25.2).
wanted = [arg for arg in sys.argv[1:] if not arg.startswith("-")]

# uv (in requirements-test.txt) puts pip into the new venv in well under a second, where
# ensurepip followed by a pip upgrade takes minutes on a busy 2-core machine.
uv = shutil.which("uv")
if uv:
    sys.exit(subprocess.call([uv, "pip", "install", "--quiet", "--native-tls", "--python", sys.executable, *wanted]))

ensurepip.bootstrap(upgrade=True)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
# The pip that ensurepip brings trusts only its bundled certifi; the host's CA bundle is what a
# TLS-intercepting proxy is trusted through. (The pip it upgrades to uses the system store.)
for bundle in (os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"),
               os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
    if bundle and os.path.isfile(bundle):
        args = ["--cert", bundle, *args]
        break
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
