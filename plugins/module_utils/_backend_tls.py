# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS between the edge and an app's web tasks (qoddi_app's ``backend_tls``).

For clusters whose overlay networks carry plain traffic between nodes (kernels without IPsec ESP,
see docs/architecture.md, "Transport between nodes"). Each such app has a key and a self-signed
certificate of its own (EC P-256, names: its web service and ``tasks.<service>``), made by
qoddi_app. No cluster CA: the certificate is its own trust anchor, and the edge pins it (HAProxy's
``verify required ca-file`` with that one certificate). The certificate is public and travels in
the web service's label, which the edge reads anyway (module_utils/_edge.py): no CA key to keep on
the managers, any manager can deploy, and the edge needs no new channel. Key and certificate reach
the web tasks as one Swarm secret (tmpfs, readable by the app's user only), never in an image, a
spec or a log.

In the task, PROXY (the image's own Python, standard library only: any image and any web server do)
terminates TLS on WEB_PORT and passes each connection to the app on APP_PORT, which the task's
``$PORT`` then says. The supervisor's health probe talks to the app directly (_deploy.RUN_SCRIPT).
"""

from __future__ import annotations

import datetime
import hashlib

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import APP_UID, WEB_PORT, Label

# Where the app itself listens behind the terminator (its $PORT); other apps of the stack may use it
# plain, or WEB_PORT over TLS.
APP_PORT = WEB_PORT + 1
# The secret's file in the task: key then certificate, as ssl.load_cert_chain reads them.
SECRET_FILE = "qoddi-backend-tls.pem"
IN_TASK = f"/run/secrets/{SECRET_FILE}"
COMPONENT_VALUE = "backend-tls"
VALID_DAYS = 3650
# A deploy makes a new pair once the certificate has less left than this (a pinned certificate that
# expires would stop the edge from reaching the app).
RENEW_BEFORE_DAYS = 365

# The terminator, run by the supervisor as ``python3 -c PROXY <listen port> <app port> <pem>``. Connection
# errors (a client that is not the edge, a task stopping) end that connection only, quietly.
PROXY = """\
import asyncio, ssl, sys
listen, target, pem = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_2
context.load_cert_chain(pem)
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # a client done sending may still be answered: half-close only
            return
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    writer.close()
async def serve(client_reader, client_writer):
    try:
        app_reader, app_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, app_writer), pipe(app_reader, client_writer))
    app_writer.close()
    client_writer.close()
def quiet(loop, context):
    if not isinstance(context.get("exception"), (OSError, ssl.SSLError)):
        loop.default_exception_handler(context)
async def main():
    asyncio.get_running_loop().set_exception_handler(quiet)
    server = await asyncio.start_server(serve, "0.0.0.0", listen, ssl=context, backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def secret_name(app: str, cert: str) -> str:
    return f"qoddi-tls-{app}-{hashlib.sha256(cert.encode()).hexdigest()[:12]}"


def reference(secret_id: str, name: str) -> dict:
    """The SecretReference that gives a web task its key and certificate (the app's user reads it)."""
    return {"SecretID": secret_id, "SecretName": name,
            "File": {"Name": SECRET_FILE, "UID": str(APP_UID), "GID": "0", "Mode": 0o400}}


def mounted(spec: dict | None) -> tuple[str, dict] | None:
    """The certificate and secret reference a web service's spec (Engine API) uses, if any."""
    if not spec:
        return None
    cert = (spec.get("Labels") or {}).get(Label.BACKEND_TLS, "")
    refs = [ref for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets") or []
            if ref.get("File", {}).get("Name") == SECRET_FILE]
    return (cert, refs[0]) if cert and refs else None


def days_left(cert: str, now: datetime.datetime) -> float:
    from cryptography import x509

    parsed = x509.load_pem_x509_certificate(cert.encode())
    # not_valid_after_utc from cryptography 42 on (the naive one is deprecated there); Debian 12 has 38.
    expires = getattr(parsed, "not_valid_after_utc", None)
    expires = expires or parsed.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return (expires - now).total_seconds() / 86400


def new_pair(service: str, now: datetime.datetime) -> tuple[str, str]:
    """A new key and self-signed certificate for ``service`` (PEM strings: key, certificate)."""
    # Imported here: loading cryptography costs a tenth of a second in every run that needs none.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # nodes' clocks differ a little
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(service), x509.DNSName(f"tasks.{service}")]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def ensure(client, app: str, service: str, current_spec: dict | None, create: bool,
           now: datetime.datetime | None = None) -> tuple[str, dict]:
    """The certificate and secret reference the app's web process should use: the running ones while
    their secret exists and the certificate has a year left, else a new pair (its secret created only
    when ``create``; otherwise, as in check mode, a reference that differs from any mounted one)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    kept = mounted(current_spec)
    if kept and days_left(kept[0], now) > RENEW_BEFORE_DAYS:
        if client.api.secrets(filters={"id": kept[1]["SecretID"]}):
            return kept
    if not create:
        return "", reference("", f"qoddi-tls-{app}-(new)")
    key_pem, cert = new_pair(service, now)
    name = secret_name(app, cert)
    created = client.api.create_secret(name, (key_pem + cert).encode(),
                                       labels={Label.APP: app, Label.COMPONENT: COMPONENT_VALUE})
    return cert, reference(created["ID"], name)


def remove_unused(client, app: str, keep: set[str]) -> None:
    """Remove the app's key secrets other than ``keep`` (names): replaced pairs, and those of a deploy
    that failed. Swarm refuses one a service still mounts (a rollback may need it): kept until next time."""
    from docker.errors import APIError

    for secret in client.api.secrets(filters={"label": [f"{Label.APP}={app}", f"{Label.COMPONENT}={COMPONENT_VALUE}"]}):
        if secret["Spec"]["Name"] not in keep:
            try:
                client.api.remove_secret(secret["ID"])
            except APIError:
                pass
