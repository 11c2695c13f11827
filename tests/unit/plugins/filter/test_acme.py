# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import base64

import pytest
from ansible.errors import AnsibleFilterError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.qoddi.paas.plugins.filter.acme import acme_renewal_due, acme_thumbprint, public_key_thumbprint

# RFC 7638 section 3.1: the example RSA key and its published thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhM"
    "stn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvR"
    "L5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_rsa_thumbprint_is_rfc7638s_example():
    n = int.from_bytes(base64.urlsafe_b64decode(RFC7638_N + "=" * (-len(RFC7638_N) % 4)), "big")
    assert public_key_thumbprint(rsa.RSAPublicNumbers(65537, n).public_key()) == RFC7638_THUMBPRINT


def test_thumbprint_of_a_pem_key_is_that_of_its_public_part():
    key = ec.generate_private_key(ec.SECP256R1())
    assert acme_thumbprint(_pem(key)) == public_key_thumbprint(key.public_key())
    assert acme_thumbprint(_pem(key)) != acme_thumbprint(_pem(ec.generate_private_key(ec.SECP256R1())))
    assert len(acme_thumbprint(_pem(key))) == 43  # 32 bytes, base64url without padding


def test_not_a_key_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="not an unencrypted PEM private key"):
        acme_thumbprint("hello")


def test_renewal_is_due_when_a_third_of_the_lifetime_remains():
    info = {"not_before": "20260101000000Z", "not_after": "20260131000000Z"}  # 30 days
    assert not acme_renewal_due(info, now="20260110000000Z")  # 21 days left
    assert not acme_renewal_due(info, now="20260120235900Z")  # just over 10 days left
    assert acme_renewal_due(info, now="20260121000100Z")  # under 10 days left
    assert acme_renewal_due(info, 0.5, now="20260116000100Z")


def test_no_certificate_yet_is_due():
    assert acme_renewal_due({}) and acme_renewal_due({"failed": True, "msg": "no such file"})


def test_a_clock_that_is_no_time_is_a_clear_error():
    # qoddi_letsencrypt_now reaches the rule as given: a typo must say what it should look like.
    info = {"not_before": "20260101000000Z", "not_after": "20260131000000Z"}
    with pytest.raises(AnsibleFilterError, match="not an ASN.1 TIME such as 20261130120000Z .*qoddi_letsencrypt_now"):
        acme_renewal_due(info, now="2026-01-10")
