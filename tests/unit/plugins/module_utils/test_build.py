# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.module_utils import _build
from ansible_collections.qoddi.paas.plugins.module_utils._build import cache_summary


def test_cache_summary_counts_steps_and_reused_ones():
    log = ["Step 1/3 : FROM x", " ---> 1", "Step 2/3 : RUN pip install -r requirements.txt", " ---> Using cache",
           " ---> 2", "Step 3/3 : COPY . /app", " ---> 3"]
    assert cache_summary(log) == {"steps": 3, "cached": 1}


def test_context_puts_the_app_under_its_prefix_and_leaves_its_qoddi_out(tmp_path):
    import tarfile

    from ansible_collections.qoddi.paas.plugins.module_utils._build import APP_PREFIX, context_tar
    (tmp_path / "counter").mkdir()
    (tmp_path / "counter" / "views.py").write_text("x = 1\n")
    (tmp_path / ".qoddi").mkdir()  # the app's own: that name is the platform's in the context
    (tmp_path / ".qoddi" / "Dockerfile").write_text("FROM evil\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".qoddi").write_text("kept: only the top-level name is the platform's\n")
    context = context_tar(str(tmp_path), {".qoddi/Dockerfile": b"FROM ok\n"}, prefix=APP_PREFIX)
    with tarfile.open(fileobj=context) as tar:
        names = sorted(tar.getnames())
        dockerfile = tar.extractfile(".qoddi/Dockerfile").read()
    assert names == [".qoddi/Dockerfile", "app/counter/views.py", "app/sub/.qoddi"]
    assert dockerfile == b"FROM ok\n"


def test_the_log_hands_each_line_on_as_it_comes():
    seen = []
    log = _build._Log(seen.append)
    log.append("Step 1/3")
    log.extend(["a", "b"])
    log += ["c"]  # list's += is extend: every way a step adds lines reaches the progress
    assert seen == ["Step 1/3", "a", "b", "c"] and log == seen
