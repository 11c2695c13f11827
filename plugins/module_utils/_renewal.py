# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""When a certificate is due for renewal: the platform's one rule.

- Where the ACME server offers ACME Renewal Information (RFC 9773, the directory's ``renewalInfo``), the
  certificate is due once the window the server suggests for it has started (the CA may move the window
  earlier, e.g. before a mass revocation).
- Everywhere (Debian's pebble has no ARI), it is due once less than ``fraction`` of its lifetime is left:
  Let's Encrypt lifetimes are shrinking (90 days, then 45), which a fixed number of days would not
  follow.

The letsencrypt role decides with community.crypto's ``acme_certificate_renewal_info`` set to this rule
(``ari_algorithm: start``, ``remaining_percentage: fraction``); the controller, which renews between
playbook runs, imports this file (roles/controller/files/certificates.py), as does the filter
``qoddi.paas.acme_renewal_due``. tests/unit checks the three agree.

This file imports nothing from Ansible (the controller runs it).
"""

from __future__ import annotations

import base64
import datetime
import re


def lifetime_due(not_before: datetime.datetime, not_after: datetime.datetime, now: datetime.datetime,
                 fraction: float) -> bool:
    """Less than ``fraction`` of the lifetime left (an expired certificate is due)."""
    return (not_after - now) < (not_after - not_before) * fraction


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2), as ACME writes binary values."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_cert_id(authority_key_identifier: bytes, serial_number: int) -> str:
    """RFC 9773 section 4.1: base64url(the AKI's keyIdentifier) "." base64url(the serial's DER content)."""
    length = serial_number.bit_length() // 8 + 1  # DER INTEGER: a leading zero byte when the top bit is set
    return f"{b64url(authority_key_identifier)}.{b64url(serial_number.to_bytes(length, 'big'))}"


def _rfc3339(value: str) -> datetime.datetime:
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # Fractions of a second beyond microseconds (RFC 3339 allows any): Python 3.10 takes six digits at most.
    text = re.sub(r"\.([0-9]+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return moment


def ari_window_start(renewal_info: dict) -> datetime.datetime | None:
    """The start of the server's suggested window, or None when the answer has none that makes sense."""
    try:
        window = renewal_info["suggestedWindow"]
        start, end = _rfc3339(window["start"]), _rfc3339(window["end"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return start if start <= end else None


def due(not_before: datetime.datetime, not_after: datetime.datetime, now: datetime.datetime, fraction: float,
        renewal_info: dict | None = None) -> bool:
    """The rule: the ARI window has started (where ``renewal_info``, the server's answer, gives one), or less
    than ``fraction`` of the lifetime is left, as community.crypto's acme_certificate_renewal_info decides."""
    start = ari_window_start(renewal_info) if renewal_info else None
    return (start is not None and now >= start) or lifetime_due(not_before, not_after, now, fraction)
