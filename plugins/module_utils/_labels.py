# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a value the edge reads from a service label may be: one definition for qoddi_app, which
writes the labels, and the edge's route filter, which reads them back into haproxy.cfg.

The labels are the cluster's record, and anyone with access to the engine can edit them by hand:
so the filter checks them again, and a value outside these patterns never reaches the edge's
configuration (a newline would add configuration lines; a space breaks the file for every app).
"""

from __future__ import annotations

import re

_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_RE = re.compile(rf"^(?:{_DNS_LABEL}\.)+{_DNS_LABEL}$")
DOMAIN_MAX = 253
# A URL path (and query) of characters HAProxy's configuration parser reads as one plain word: no
# space, quote, backslash, '#' (a comment), '$' (variable expansion) or control character.
HEALTH_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!*+,;=:@%/?&-]*$")
HEALTH_PATH_MAX = 256


def domain_ok(domain: str) -> bool:
    return bool(DOMAIN_RE.match(domain)) and len(domain) <= DOMAIN_MAX


def health_path_problem(path: str) -> str:
    """Why ``path`` cannot be a health check path (empty string when it can)."""
    if not path.startswith("/"):
        return "must start with '/'"
    if len(path) > HEALTH_PATH_MAX:
        return f"is longer than {HEALTH_PATH_MAX} characters"
    if not HEALTH_PATH_RE.match(path):
        return ("may hold only letters, digits and the URL characters / . _ ~ - ! * + , ; = : @ % ? & "
                "(no spaces, quotes, '#', '$' or control characters; percent-encode others)")
    return ""
