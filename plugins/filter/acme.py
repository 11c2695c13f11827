# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ACME account key's thumbprint, which lets the edge answer http-01 challenges by itself.

An http-01 answer is ``<token>.<thumbprint>`` (RFC 8555 section 8.1); the token is in the request
path, so HAProxy can build the answer from the path and this constant, on every edge node, with
no file to distribute per challenge.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.module_utils import _renewal as renewal

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported when the filter is used
    HAS_CRYPTOGRAPHY = False

_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def _int(value: int, length: int | None = None) -> str:
    length = length or (value.bit_length() + 7) // 8
    return renewal.b64url(value.to_bytes(length, "big"))


def acme_thumbprint(private_key_pem: str) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of the public part of an ACME account key (PEM)."""
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError("acme_thumbprint needs the Python library cryptography on the controller.")
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None).public_key()
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"acme_thumbprint: not an unencrypted PEM private key ({exc}).") from None
    return public_key_thumbprint(key)


def public_key_thumbprint(key) -> str:
    """RFC 7638 thumbprint of an EC or RSA public key object."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise AnsibleFilterError(f"acme_thumbprint: ACME does not use the curve {key.curve.name}.")
        crv, size = _CURVES[key.curve.name]
        numbers = key.public_numbers()
        jwk = {"crv": crv, "kty": "EC", "x": _int(numbers.x, size), "y": _int(numbers.y, size)}
    elif isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        jwk = {"e": _int(numbers.e), "kty": "RSA", "n": _int(numbers.n)}
    else:
        raise AnsibleFilterError("acme_thumbprint: the account key must be an EC or RSA key.")
    # RFC 7638: the required members only, sorted, no whitespace.
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return renewal.b64url(hashlib.sha256(canonical).digest())


def _asn1_time(value: str) -> datetime.datetime:
    # community.crypto's x509_certificate_info gives times as ASN.1 TIME: 20261126120000Z
    return datetime.datetime.strptime(value, "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.timezone.utc)


def acme_renewal_due(info: dict, remaining_fraction: float = 1 / 3, now: str | None = None) -> bool:
    """Whether a certificate is due for renewal: less than ``remaining_fraction`` of its lifetime left.

    ``info`` is community.crypto's x509_certificate_info result; a failed or empty one (no certificate
    yet) is due. Let's Encrypt lifetimes are shrinking (90 days, then 45), so a fraction of the
    lifetime keeps working where a fixed number of days would not; ``now`` (ASN.1 TIME) is for tests.
    """
    if not info or info.get("failed") or not info.get("not_after") or not info.get("not_before"):
        return True
    start, end = _asn1_time(info["not_before"]), _asn1_time(info["not_after"])
    try:
        current = _asn1_time(now) if now else datetime.datetime.now(datetime.timezone.utc)
    except ValueError:
        raise AnsibleFilterError(
            f"acme_renewal_due: now is {now!r}, not an ASN.1 TIME such as 20261130120000Z "
            "(qoddi_letsencrypt_now is for tests: leave it empty to read the clock)."
        ) from None
    # The platform's one rule (module_utils/_renewal.py), without ARI: the filter sees no ACME server.
    return renewal.due(start, end, current, remaining_fraction)


class FilterModule:
    def filters(self):
        return {"acme_thumbprint": acme_thumbprint, "acme_renewal_due": acme_renewal_due}
