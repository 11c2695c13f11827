# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's certificate renewal: what is due, what the letsencrypt role left, the install job.

The ACME conversation and the job themselves run against pebble and the real edge in the edge
integration target; here, the decisions.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import pathlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

FILE = pathlib.Path(__file__).parents[3] / "roles" / "controller" / "files" / "certificates.py"
spec = importlib.util.spec_from_file_location("certificates", FILE)
certificates = importlib.util.module_from_spec(spec)
spec.loader.exec_module(certificates)

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def certificate(days: int = 90) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(START + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def at(days: float) -> float:
    return (START + datetime.timedelta(days=days)).timestamp()


@pytest.mark.parametrize(("day", "due"), [(0, False), (59, False), (60.5, True), (89, True), (120, True)])
def test_due_once_less_than_a_third_of_the_lifetime_is_left(day, due):
    assert certificates.renewal_due(certificate(90), 1 / 3, at(day)) is due


def test_the_leaf_of_a_full_chain_decides():
    chain = certificate(90) + certificate(3650)  # leaf first, then a long-lived issuer
    assert certificates.renewal_due(chain, 1 / 3, at(70))


def write_domain(directory: pathlib.Path, domain: str, pem: bytes, parts=(".key", ".csr")) -> None:
    (directory / f"{domain}.crt").write_bytes(pem)
    for part in parts:
        (directory / f"{domain}{part}").write_bytes(b"x")


def test_due_domains_are_those_the_role_left_whole_and_due(tmp_path):
    write_domain(tmp_path, "old.example.test", certificate(90))
    write_domain(tmp_path, "young.example.test", certificate(3650))
    write_domain(tmp_path, "nokey.example.test", certificate(90), parts=(".csr",))
    write_domain(tmp_path, "broken.example.test", b"not a certificate")
    (tmp_path / "account.key").write_bytes(b"x")
    assert certificates.due_domains(str(tmp_path), 1 / 3, at(80)) == ["old.example.test"]


def test_settings_absent_or_disabled_mean_no_renewal(tmp_path):
    assert certificates.read_settings(str(tmp_path)) is None
    (tmp_path / certificates.SETTINGS).write_text(json.dumps({"enabled": False, "directory": "https://x/dir"}))
    assert certificates.read_settings(str(tmp_path)) is None
    (tmp_path / certificates.SETTINGS).write_text(json.dumps({"enabled": True, "directory": "https://x/dir"}))
    assert certificates.read_settings(str(tmp_path))["directory"] == "https://x/dir"


def test_the_install_job_runs_where_the_edge_runs_with_its_directories_writable():
    edge = {
        "Spec": {
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "qoddi/haproxy:bookworm-1",
                    "Mounts": [
                        {"Source": "/etc/qoddi/haproxy", "Target": certificates.EDGE_CONFIG, "ReadOnly": True},
                        {"Source": "/var/lib/qoddi/haproxy", "Target": certificates.EDGE_STATE},
                        {"Source": "/elsewhere", "Target": "/other"},
                    ],
                },
                "Placement": {"Constraints": ["node.labels.qoddi.role == edge"]},
            }
        }
    }
    secrets = [{"SecretID": "s1", "SecretName": "qoddi-cert-a-1", "File": {"Name": "/run/secrets/qoddi-cert/a"}}]
    job = certificates.install_job(edge, secrets)
    container = job["ContainerSpec"]
    assert container["Image"] == "qoddi/haproxy:bookworm-1"
    assert [m["Source"] for m in container["Mounts"]] == ["/etc/qoddi/haproxy", "/var/lib/qoddi/haproxy"]
    assert not any(m["ReadOnly"] for m in container["Mounts"])
    assert container["Secrets"] == secrets
    assert job["Placement"] == {"Constraints": ["node.labels.qoddi.role == edge"]}
    assert job["RestartPolicy"] == {"Condition": "none"}
    # The socket the script talks to is the edge's second runtime socket, in its state directory.
    assert f"QODDI_EDGE_SOCKET={certificates.EDGE_STATE}/runtime.sock" in container["Env"]


def test_the_role_and_the_edge_agree_on_the_runtime_socket():
    template = (FILE.parents[2] / "haproxy" / "templates" / "haproxy.cfg.j2").read_text()
    assert f"stats socket {certificates.EDGE_SOCKET} " in template


def test_only_the_domains_the_edge_serves_are_renewed(tmp_path):
    write_domain(tmp_path, "kept.example.test", certificate(90))
    write_domain(tmp_path, "dropped.example.test", certificate(90))
    assert certificates.due_domains(str(tmp_path), 1 / 3, at(80), ["kept.example.test"]) == ["kept.example.test"]


def test_the_pem_for_the_edge_is_chain_then_key_without_blank_lines(tmp_path):
    (tmp_path / "a.example.test.crt").write_bytes(b"CHAIN1\n\nCHAIN2\n")
    (tmp_path / "a.example.test.key").write_bytes(b"\nKEY\n")
    renewer = certificates.Renewer(None, str(tmp_path), 3600)
    assert renewer.pem("a.example.test") == b"CHAIN1\nCHAIN2\nKEY\n"


def ari_certificate(serial: int = 0x87654321) -> bytes:
    """A certificate whose issuer's key identifier is RFC 9773's example, as an ACME CA's leaf has."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example.test")])
    aki = x509.AuthorityKeyIdentifier(bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4"), None, None)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(START).not_valid_after(START + datetime.timedelta(days=90))
            .add_extension(aki, critical=False).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def acme_server():
    """A real HTTP server on loopback answering as an ACME directory and its renewalInfo resource."""
    import http.server
    import threading

    answers = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            body = answers.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(json.dumps(body or {"type": "urn:ietf:params:acme:error:malformed"}).encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answers
    server.shutdown()


def test_the_controller_follows_the_servers_renewal_window_where_it_offers_one(tmp_path, acme_server):
    base, answers = acme_server
    write_domain(tmp_path, "early.example.test", ari_certificate(0x87654321))
    write_domain(tmp_path, "plain.example.test", ari_certificate(0x1234))
    answers["/dir"] = {"newOrder": f"{base}/new-order", "renewalInfo": f"{base}/ari/"}
    # The CA asks for one certificate early (a revocation ahead); it knows nothing of the other.
    answers["/ari/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"] = {
        "suggestedWindow": {"start": "2026-01-10T00:00:00Z", "end": "2026-01-11T00:00:00Z"}}
    ari = certificates.RenewalInfo({"directory": f"{base}/dir"})
    assert certificates.due_domains(str(tmp_path), 1 / 3, at(12), ari=ari) == ["early.example.test"]
    both = ["early.example.test", "plain.example.test"]
    assert certificates.due_domains(str(tmp_path), 1 / 3, at(65), ari=ari) == both


def test_without_renewal_information_the_lifetime_decides(tmp_path, acme_server):
    base, answers = acme_server
    write_domain(tmp_path, "a.example.test", ari_certificate())
    answers["/dir"] = {"newOrder": f"{base}/new-order"}  # Debian's pebble: no renewalInfo
    for ari in (certificates.RenewalInfo({"directory": f"{base}/dir"}),
                certificates.RenewalInfo({"directory": f"{base}/gone"})):  # and a directory that does not answer
        assert certificates.due_domains(str(tmp_path), 1 / 3, at(12), ari=ari) == []
        assert certificates.due_domains(str(tmp_path), 1 / 3, at(65), ari=ari) == ["a.example.test"]


def issued(subject: str, key, issuer_name: x509.Name | None = None, issuer_key=None) -> x509.Certificate:
    """A certificate of ``subject`` for ``key``, signed by ``issuer_key`` (itself when None)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + datetime.timedelta(days=90))
        .sign(issuer_key or key, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def ca(name: str, key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    return issued(name, key), key


def chain_from(root, root_key, leaf_name: str = "a.example.test") -> bytes:
    """A full chain as an ACME server gives it: leaf, then the intermediate the root signed."""
    middle_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    middle = issued("intermediate", middle_key, root.subject, root_key)
    leaf = issued(leaf_name, ec.generate_private_key(ec.SECP256R1()), middle.subject, middle_key)
    return pem(leaf, middle)


def test_a_chain_leads_to_its_root_and_not_to_another_ca_of_the_same_name():
    root, root_key = ca("Pebble Root CA")
    again = ca("Pebble Root CA")[0]  # the same name, a new key: pebble started again
    rsa_root, rsa_key = ca("RSA root", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    chain = chain_from(root, root_key)
    assert certificates.chains_to(chain, pem(root))
    assert certificates.chains_to(chain, pem(again, root))  # a bundle of roots: one is enough
    assert not certificates.chains_to(chain, pem(again))
    assert certificates.chains_to(chain_from(rsa_root, rsa_key), pem(rsa_root))
    assert not certificates.chains_to(chain_from(rsa_root, rsa_key), pem(root))


def test_a_self_signed_or_truncated_chain_leads_nowhere():
    root, root_key = ca("Pebble Root CA")
    self_signed = ca("a.example.test")[0]
    assert not certificates.chains_to(pem(self_signed), pem(root))
    end = b"-----END CERTIFICATE-----"
    leaf_only = chain_from(root, root_key).split(end, maxsplit=1)[0] + end + b"\n"
    assert not certificates.chains_to(leaf_only, pem(root))


def test_the_trusted_root_comes_from_the_roles_settings():
    assert certificates.trust_root({"directory": "https://x/dir"}) is None
    assert certificates.trust_root({"trust_root": ""}) is None
    assert certificates.trust_root({"trust_root": "-----BEGIN CERTIFICATE-----"}) == b"-----BEGIN CERTIFICATE-----"
