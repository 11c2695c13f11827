# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from ansible_collections.qoddi.paas.plugins.module_utils._build import cache_summary


def test_cache_summary_counts_steps_and_reused_ones():
    log = ["Step 1/3 : FROM x", " ---> 1", "Step 2/3 : RUN pip install -r requirements.txt", " ---> Using cache",
           " ---> 2", "Step 3/3 : COPY . /app", " ---> 3"]
    assert cache_summary(log) == {"steps": 3, "cached": 1}
