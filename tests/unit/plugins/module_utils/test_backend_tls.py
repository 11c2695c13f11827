# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS between the edge and the web tasks: the pair, its reuse, and the terminator run for real
(python3 -c, as the task's supervisor runs it) in front of a real HTTP server."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.qoddi.paas.plugins.module_utils import _backend_tls as backend_tls
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _edge as edge
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def test_the_pair_names_the_service_and_its_tasks_and_is_no_ca():
    key_pem, cert_pem = backend_tls.new_pair("blog", NOW)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["blog", "tasks.blog"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert 3649 < backend_tls.days_left(cert_pem, NOW) <= 3650
    assert edge.label_problems("blog", {Label.APP: "blog", Label.BACKEND_TLS: cert_pem}, "apps.test") == []


class FakeApi:
    def __init__(self):
        self.made: dict[str, dict] = {}
        self.removed: list[str] = []

    def secrets(self, filters):
        if "id" in filters:
            return [s for s in self.made.values() if s["ID"] == filters["id"]]
        return list(self.made.values())

    def create_secret(self, name, data, labels):
        self.made[name] = {"ID": f"id-{len(self.made)}", "Spec": {"Name": name, "Labels": labels}, "data": data}
        return {"ID": self.made[name]["ID"]}

    def remove_secret(self, secret_id):
        self.removed.append(secret_id)


class FakeClient:
    def __init__(self):
        self.api = FakeApi()


def _web_spec(cert: str, ref: dict) -> dict:
    return {"Labels": {Label.BACKEND_TLS: cert}, "TaskTemplate": {"ContainerSpec": {"Secrets": [ref]}}}


def test_a_deploy_keeps_the_pair_while_its_secret_exists_and_it_has_a_year_left():
    client = FakeClient()
    cert, ref = backend_tls.ensure(client, "blog", "blog", None, create=True, now=NOW)
    made = client.api.made[ref["SecretName"]]
    assert made["data"].decode().startswith("-----BEGIN PRIVATE KEY-----") and made["data"].decode().endswith(cert)
    assert ref["File"] == {"Name": "qoddi-backend-tls.pem", "UID": "10001", "GID": "0", "Mode": 0o400}
    # The same again: nothing new.
    assert backend_tls.ensure(client, "blog", "blog", _web_spec(cert, ref), create=True, now=NOW) == (cert, ref)
    assert len(client.api.made) == 1
    # Nine and a half years on, a new pair; in check mode none is made, but the answer differs.
    later = NOW + datetime.timedelta(days=3470)
    assert backend_tls.ensure(client, "blog", "blog", _web_spec(cert, ref), create=False, now=later)[1]["SecretName"] \
        != ref["SecretName"]
    assert len(client.api.made) == 1
    renewed = backend_tls.ensure(client, "blog", "blog", _web_spec(cert, ref), create=True, now=later)
    assert renewed[0] != cert and len(client.api.made) == 2
    # The old secret goes once the new one is in use.
    backend_tls.remove_unused(client, "blog", {renewed[1]["SecretName"]})
    assert client.api.removed == [ref["SecretID"]]


def test_a_lost_secret_gives_a_new_pair():
    client = FakeClient()
    cert, ref = backend_tls.ensure(client, "blog", "blog", None, create=True, now=NOW)
    client.api.made.clear()
    assert backend_tls.ensure(client, "blog", "blog", _web_spec(cert, ref), create=True, now=NOW)[0] != cert


def test_the_web_process_listens_behind_the_terminator_and_the_edge_pins_its_certificate():
    cert, ref = backend_tls.new_pair("blog", NOW)[1], backend_tls.reference("id", "qoddi-tls-blog-x")
    web = deploy.desired_service("blog", "main", "web", "gunicorn blog.wsgi", "img", 1, "abc", 1, "S", {},
                                 "/healthz", tls=(cert, ref))
    assert web["env"]["PORT"] == "5001" and web["labels"][Label.BACKEND_TLS] == cert and ref in web["secrets"]
    assert web["command"][-1] == backend_tls.PROXY
    worker = deploy.desired_service("blog", "main", "worker", "celery", "img", 1, "abc", 1, "S", {}, None,
                                    tls=(cert, ref))
    assert Label.BACKEND_TLS not in worker["labels"] and worker["secrets"] == [] and worker["command"][-1] == ""
    routes = edge.edge_routes([{"Spec": {"Name": "blog", "Labels": web["labels"]}}], "apps.test", print)
    text = edge.backends(routes, 4)
    assert ("init-addr last,none ssl verify required ca-file /usr/local/etc/haproxy/backends/blog.pem verifyhost blog"
            in text)
    # Named apart from plain servers: a reload restores a server's TLS setting from the state file, by name.
    assert "server-template tls 4 tasks.blog:5000" in text
    assert edge.backend_certificates(routes) == {"backends/blog.pem": cert}
    # A hand-edited label that is not a certificate keeps the app out of the edge.
    labels = dict(web["labels"], **{Label.BACKEND_TLS: "x\nbackend evil\n"})
    assert edge.label_problems("blog", labels, "apps.test") == [f"{Label.BACKEND_TLS} is not one PEM certificate"]


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = b"hello over " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def terminator(tmp_path):
    """The terminator in front of a real HTTP server, as a task runs them: (port, certificate path)."""
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    key_pem, cert_pem = backend_tls.new_pair("blog", datetime.datetime.now(datetime.timezone.utc))
    pem = tmp_path / "pair.pem"
    pem.write_text(key_pem + cert_pem)
    (tmp_path / "cert.pem").write_text(cert_pem)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", backend_tls.PROXY, str(port), str(app.server_address[1]), str(pem)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port, tmp_path / "cert.pem"
    proc.terminate()
    proc.wait(timeout=5)
    app.shutdown()


def _get(port: int, context: ssl.SSLContext, path: str, host: str = "blog") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: blog\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
        return answer


def test_the_terminator_serves_the_app_to_a_client_pinning_its_certificate(terminator):
    port, cert = terminator
    pinned = ssl.create_default_context(cafile=str(cert))
    assert _get(port, pinned, "/x").endswith(b"hello over /x")
    # As HAProxy's verifyhost does: the name of the tasks, as the edge resolves them.
    assert _get(port, pinned, "/y", host="tasks.blog").endswith(b"hello over /y")
    # Another app's certificate (or a task that is not the app's) is refused.
    other = ssl.create_default_context(cadata=backend_tls.new_pair("blog", NOW)[1])
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(port, other, "/z")
    # Plain HTTP gets no answer of the app's, and the terminator serves on.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: blog\r\n\r\n")
        assert b"hello" not in raw.recv(65536)
    assert _get(port, pinned, "/again").endswith(b"hello over /again")
