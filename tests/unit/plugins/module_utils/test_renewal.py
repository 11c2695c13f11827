# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform's one renewal rule (module_utils/_renewal.py): ARI's window where the server gives one, or
the fraction of the lifetime; the filter and the controller decide with it (the letsencrypt role with
community.crypto's acme_certificate_renewal_info, ari_algorithm start and remaining_percentage: the same)."""
from __future__ import annotations

import datetime
import importlib.util
import pathlib

import pytest

from ansible_collections.qoddi.paas.plugins.filter.acme import acme_renewal_due
from ansible_collections.qoddi.paas.plugins.module_utils import _renewal as renewal

UTC = datetime.timezone.utc
START = datetime.datetime(2026, 1, 1, tzinfo=UTC)
END = START + datetime.timedelta(days=90)


def day(n: float) -> datetime.datetime:
    return START + datetime.timedelta(days=n)


def test_the_cert_id_is_rfc_9773s_example():
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    assert renewal.ari_cert_id(aki, 0x87654321) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert renewal.ari_cert_id(aki, 0x1234).endswith(".EjQ")  # no leading zero when the top bit is clear


@pytest.mark.parametrize(("n", "due"), [(0, False), (59.9, False), (60.1, True), (95, True)])
def test_without_renewal_information_a_third_of_the_lifetime(n, due):
    assert renewal.due(START, END, day(n), 1 / 3) is due
    assert renewal.due(START, END, day(n), 1 / 3, {"error": "no such certificate"}) is due


def test_the_servers_window_decides_where_it_gives_one():
    early = {"suggestedWindow": {"start": "2026-01-10T00:00:00Z", "end": "2026-01-12T00:00:00.123456789Z"}}
    assert not renewal.due(START, END, day(8), 1 / 3, early)
    assert renewal.due(START, END, day(9), 1 / 3, early)  # a revocation ahead: long before a third is left
    late = {"suggestedWindow": {"start": "2026-03-25T00:00:00+00:00", "end": "2026-03-26T00:00:00+00:00"}}
    assert not renewal.due(START, END, day(50), 1 / 3, late)
    assert renewal.due(START, END, day(70), 1 / 3, late)  # the lifetime still counts, as in community.crypto


NONSENSE = [{"suggestedWindow": {"start": "tomorrow", "end": "later"}},
            {"suggestedWindow": {"start": "2026-01-12T00:00:00Z", "end": "2026-01-10T00:00:00Z"}},  # ends first
            {"suggestedWindow": {"start": "2026-01-10T00:00:00"}}, {"suggestedWindow": None}, {}]


@pytest.mark.parametrize("answer", NONSENSE)
def test_an_answer_that_makes_no_sense_falls_back_to_the_lifetime(answer):
    assert not renewal.due(START, END, day(30), 1 / 3, answer)
    assert renewal.due(START, END, day(61), 1 / 3, answer)


def test_the_filter_and_the_controller_decide_as_the_rule():
    spec = importlib.util.spec_from_file_location(
        "certificates", pathlib.Path(__file__).parents[4] / "roles" / "controller" / "files" / "certificates.py")
    certificates = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(certificates)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test")])
    pem = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(7).not_valid_before(START).not_valid_after(END).sign(key, hashes.SHA256())
           .public_bytes(serialization.Encoding.PEM))
    info = {"not_before": START.strftime("%Y%m%d%H%M%SZ"), "not_after": END.strftime("%Y%m%d%H%M%SZ")}
    for n in range(0, 100, 3):
        expected = renewal.due(START, END, day(n), 1 / 3)
        assert acme_renewal_due(info, 1 / 3, day(n).strftime("%Y%m%d%H%M%SZ")) is expected
        assert certificates.renewal_due(pem, 1 / 3, day(n).timestamp()) is expected
