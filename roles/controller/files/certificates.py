# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Certificate renewal: the controller's timed TLS duty.

qoddi.paas.letsencrypt issues the certificates when a playbook runs, on the first manager, and
leaves in its directory (QODDI_ACME_DIR, mounted here): the account key, each domain's key, request
(CSR) and certificate, and ``renewal.json`` saying which ACME directory it used. Between playbook
runs this module keeps them fresh: a certificate with less than the role's fraction of its lifetime
left is ordered again for the same request with certbot's ``acme`` library (the edge answers the
http-01 challenge by itself from the account's thumbprint), and written where the role keeps it, so
the role's next run finds it current and changes nothing. "Due" is the platform's one rule
(module_utils/_renewal.py): the window the ACME server suggests where it offers renewal information
(RFC 9773) has started, or less than the fraction of the lifetime is left.

The edge then gets it without a reload: a one-off global job, on the edge's own image and placement,
writes the file HAProxy loads at its next start and swaps the certificate in the running HAProxy
through its runtime API (``set ssl cert`` then ``commit ssl cert``), on every edge node.
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
import tempfile
import time
import urllib.request
from collections.abc import Iterator

try:  # the controller's image has Debian's python3-acme; the unit tests need only the pure parts
    import josepy
    from acme import challenges, messages
    from acme import client as acme_client
    from acme import errors as acme_errors
except ImportError:  # pragma: no cover
    josepy = None

from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from ansible_collections.qoddi.paas.plugins.module_utils import _renewal as renewal
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

SETTINGS = "renewal.json"
EDGE = "qoddi-edge"
EDGE_CONFIG = "/usr/local/etc/haproxy"
EDGE_STATE = "/var/lib/haproxy"
# The edge's second runtime socket, in its state directory (a bind mount) so the job can reach it.
EDGE_SOCKET = EDGE_STATE + "/runtime.sock"
COMPONENT = Label.COMPONENT

# Run by the job in the edge's image (sh and socat, as the edge's own reloads use): for each domain,
# the new PEM (certificate chain, then key) arrives as a Swarm secret named after it. The file is
# replaced first (a reload or restart loads it), then the running HAProxy swaps it in memory.
INSTALL_SCRIPT = r"""
set -u
SOCKET=$QODDI_EDGE_SOCKET
status=0
for pem in /run/secrets/qoddi-cert/*; do
  case "$pem" in *.domain) continue;; esac
  domain=$(cat "$pem.domain")
  file="$QODDI_EDGE_CONFIG/certs/$domain.pem"
  # Only a certificate the edge serves (the role removes the others); written beside certs/, where
  # HAProxy would load a half-written file, then moved in.
  if [ ! -f "$file" ]; then echo "$domain: not served by this edge, skipped"; continue; fi
  cp "$pem" "$QODDI_EDGE_CONFIG/.qoddi-cert.new" && chmod 0600 "$QODDI_EDGE_CONFIG/.qoddi-cert.new" &&
    mv "$QODDI_EDGE_CONFIG/.qoddi-cert.new" "$file" || { status=1; continue; }
  if [ ! -S "$SOCKET" ]; then echo "$domain: written; no running edge on this node"; continue; fi
  answer=$({ printf 'set ssl cert %s <<\n' "$file"; cat "$pem"; printf '\n'; } | socat stdio "unix:$SOCKET")
  case "$answer" in
    *"Transaction created"*|*"Transaction updated"*) ;;
    *) echo "$domain: $answer" >&2; status=1; continue;;
  esac
  answer=$(printf 'commit ssl cert %s\n' "$file" | socat stdio "unix:$SOCKET")
  case "$answer" in
    *Success*) echo "$domain: installed";;
    # HAProxy allows one open transaction: never leave one behind.
    *) echo "$domain: $answer" >&2; printf 'abort ssl cert %s\n' "$file" | socat stdio "unix:$SOCKET"; status=1;;
  esac
done
exit $status
"""


def log(message: str) -> None:
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} {message}", flush=True)


def certificates_of(pem: bytes) -> Iterator[x509.Certificate]:
    """Every certificate of a PEM bundle, in order (Debian 12's cryptography 38 has no
    load_pem_x509_certificates)."""
    end = b"-----END CERTIFICATE-----"
    start = 0
    while (stop := pem.find(end, start)) >= 0:
        yield x509.load_pem_x509_certificate(pem[start: stop + len(end)])
        start = stop + len(end)


def first_certificate(pem: bytes) -> x509.Certificate:
    """The leaf of a full chain (the file starts with it)."""
    for leaf in certificates_of(pem):
        return leaf
    raise ValueError("no certificate in it")


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    """Whether ``issuer`` signed ``cert``; None for a signature this cannot check (RSA-PSS, DSA)."""
    if cert.issuer != issuer.subject:
        return False
    key, signature, data = issuer.public_key(), cert.signature, cert.tbs_certificate_bytes
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and cert.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
            key.verify(signature, data, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return None
    except exceptions.InvalidSignature:
        return False
    return True


def chains_to(pem: bytes, roots_pem: bytes) -> bool:
    """Whether the full chain ``pem`` (leaf first) leads, signature by signature, to one of the roots:
    the letsencrypt role's `openssl verify` question (dates are the renewal rule's). A link this cannot
    check counts as sound: only a chain known to be broken is ordered again, never one at every tick."""
    chain, roots = list(certificates_of(pem)), list(certificates_of(roots_pem))
    if not chain:
        raise ValueError("no certificate in it")
    current = chain[0]
    for _link in chain:  # at most as many links as certificates: a loop of issuers ends too
        if current in roots or any(signed_by(current, root) is not False for root in roots):
            return True
        current = next((c for c in chain if c is not current and signed_by(current, c) is not False), None)
        if current is None:
            return False
    return False


def trust_root(settings: dict) -> bytes | None:
    """The root the letsencrypt role's qoddi_letsencrypt_trust_root names (None: not checked)."""
    return settings["trust_root"].encode() if settings.get("trust_root") else None


def validity(leaf: x509.Certificate) -> tuple[datetime.datetime, datetime.datetime]:
    """Start and end, aware (Debian 12's cryptography 38 has only the naive UTC properties)."""
    if hasattr(leaf, "not_valid_after_utc"):
        return leaf.not_valid_before_utc, leaf.not_valid_after_utc
    utc = datetime.timezone.utc
    return leaf.not_valid_before.replace(tzinfo=utc), leaf.not_valid_after.replace(tzinfo=utc)


def renewal_due(pem: bytes, fraction: float, now: float, ari=None) -> bool:
    """The platform's rule (module_utils/_renewal.py): the window the ACME server suggests (``ari``, which
    returns its renewalInfo answer for a certificate, or None) has started, or less than ``fraction`` of
    the lifetime is left."""
    leaf = first_certificate(pem)
    start, end = validity(leaf)
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    return renewal.due(start, end, moment, fraction, ari(leaf) if ari else None)


class RenewalInfo:
    """ACME Renewal Information (RFC 9773) from the letsencrypt role's ACME server, where it offers it:
    an unauthenticated GET of <renewalInfo>/<certID> per certificate. Any failure falls back to the
    lifetime rule (None), as community.crypto's module does in the role."""

    def __init__(self, settings: dict, timeout: float = 10):
        self.timeout = timeout
        self.directory = settings["directory"]
        self.context = ssl.create_default_context()
        if settings.get("directory_ca"):
            self.context.load_verify_locations(cadata=settings["directory_ca"])
        self.base = None  # the directory's renewalInfo URL ('' without one), read at the first certificate

    def renewal_info_url(self) -> str:
        if self.base is None:
            self.base = ""
            try:
                self.base = str(self.get_json(self.directory).get("renewalInfo") or "").rstrip("/")
            except Exception as exc:  # noqa: BLE001 - no directory now: the lifetime rule still holds
                log(f"certificates: ACME directory unreadable for renewal information ({exc}); using the lifetime rule")
        return self.base

    def get_json(self, url: str) -> dict:
        request = urllib.request.Request(url, headers={"User-Agent": "qoddi-controller"})
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as answer:  # noqa: S310
            return json.loads(answer.read())

    def __call__(self, leaf: x509.Certificate) -> dict | None:
        if not self.renewal_info_url():
            return None
        try:
            aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            return self.get_json(f"{self.base}/{renewal.ari_cert_id(aki, leaf.serial_number)}")
        except Exception as exc:  # noqa: BLE001 - see the class
            log(f"certificates: no renewal information for serial {leaf.serial_number:x} ({exc}); "
                "using the lifetime rule")
            return None


def read_settings(acme_dir: str) -> dict | None:
    """What the letsencrypt role wrote; None when it never ran (or certificates are off)."""
    try:
        with open(os.path.join(acme_dir, SETTINGS), encoding="utf-8") as handle:
            settings = json.load(handle)
    except FileNotFoundError:
        return None
    return settings if settings.get("enabled", True) else None


def due_domains(acme_dir: str, fraction: float, now: float, served: list[str] | None = None, ari=None) -> list[str]:
    """Domains the edge serves (``served``: the role's list at its last run; None: all) whose
    certificate, key and request the role left here, and that are due (``ari``: see renewal_due). One
    that no longer chains to the role's trusted root is the edge duty's to order again (edge.py's
    order_missing, every tick), not the renewer's: one order of it, not two at once."""
    due = []
    for name in sorted(os.listdir(acme_dir)):
        domain, extension = os.path.splitext(name)
        if extension != ".crt" or (served is not None and domain not in served):
            continue
        if not all(os.path.exists(os.path.join(acme_dir, domain + e)) for e in (".key", ".csr")):
            continue
        with open(os.path.join(acme_dir, name), "rb") as handle:
            pem = handle.read()
        try:
            if renewal_due(pem, fraction, now, ari):
                due.append(domain)
        except ValueError:  # unreadable: the role issues it again at its next run
            log(f"certificate {domain}: unreadable, left to the letsencrypt role")
    return due


def install_marker(acme_dir: str, domain: str) -> str:
    """The file that says a renewed certificate is not yet in every edge (the edge duty leaves it be)."""
    return os.path.join(acme_dir, f"{domain}.to-install")


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".qoddi-")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


class Acme:
    """One ACME conversation with the account the letsencrypt role made (kept in ``account.key``)."""

    def __init__(self, acme_dir: str, settings: dict):
        self.acme_dir = acme_dir
        with open(os.path.join(acme_dir, "account.key"), "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        self.key = josepy.JWKEC(key=key)
        verify: bool | str = True
        if settings.get("directory_ca"):
            # A private ACME server's CA (pebble): the role copied it into the settings.
            verify = os.path.join(tempfile.gettempdir(), "qoddi-acme-directory-ca.pem")
            write_atomic(verify, settings["directory_ca"].encode())
        network = acme_client.ClientNetwork(
            self.key, alg=josepy.ES256, verify_ssl=verify, user_agent="qoddi-controller"
        )
        self.client = acme_client.ClientV2(acme_client.ClientV2.get_directory(settings["directory"], network), network)
        registration = messages.NewRegistration.from_data(terms_of_service_agreed=True)
        try:
            self.client.new_account(registration)
        except acme_errors.ConflictError as known:  # the usual case: the role registered this key
            network.account = messages.RegistrationResource(uri=known.location, body=messages.Registration())

    def order(self, domain: str, timeout: float = 90) -> bytes:
        with open(os.path.join(self.acme_dir, domain + ".csr"), "rb") as handle:
            order = self.client.new_order(handle.read())
        for authorization in order.authorizations:
            if authorization.body.status == messages.STATUS_VALID:
                continue
            challenge = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01))
            self.client.answer_challenge(challenge, challenge.response(self.key))
        deadline = datetime.datetime.now() + datetime.timedelta(seconds=timeout)
        return self.client.poll_and_finalize(order, deadline).fullchain_pem.encode()


def install_job(edge: dict, secrets: list[dict]) -> dict:
    """The task template of the job that hands new certificates to every edge node.

    The edge's own image and placement (so it runs where HAProxy runs and needs no other image),
    and the edge's own configuration and state directories (the sources of its bind mounts).
    """
    template = edge["Spec"]["TaskTemplate"]
    container = template["ContainerSpec"]
    wanted = (EDGE_CONFIG, EDGE_STATE)
    mounts = [dict(m, ReadOnly=False) for m in container.get("Mounts", []) if m.get("Target") in wanted]
    return {
        "ContainerSpec": {
            "Image": container["Image"],
            "Command": ["sh", "-c", INSTALL_SCRIPT],
            "Env": [f"QODDI_EDGE_CONFIG={EDGE_CONFIG}", f"QODDI_EDGE_SOCKET={EDGE_SOCKET}"],
            "Mounts": mounts,
            "Secrets": secrets,
            "Labels": {COMPONENT: "certificates"},
        },
        "Placement": template.get("Placement", {}),
        "RestartPolicy": {"Condition": "none"},
    }


class Renewer:
    """Checks every ``every`` seconds; a failed renewal is tried again at the next check."""

    def __init__(self, client, acme_dir: str, every: float):
        self.client = client
        self.acme_dir = acme_dir
        self.every = every
        self.next_check = 0.0

    def tick(self, now: float) -> None:
        if now < self.next_check or not os.path.isdir(self.acme_dir):
            return
        self.next_check = now + self.every
        settings = read_settings(self.acme_dir)
        if settings is None:
            return
        served = settings.get("domains")
        due = due_domains(self.acme_dir, float(settings.get("renew_fraction", 1 / 3)), now, served,
                          RenewalInfo(settings))
        # Renewed earlier but not yet in the edge (no edge then, a failed job): a marker file says so,
        # so a restarted controller tries again too.
        pending = [d for d in sorted(served or []) if os.path.exists(self.marker(d)) and d not in due]
        renewed: dict[str, bytes] = {}
        if due:
            acme = Acme(self.acme_dir, settings)
            for domain in due:
                try:
                    renewed[domain] = acme.order(domain)
                except Exception as exc:  # noqa: BLE001 - one domain's failure must not stop the others
                    log(f"certificate {domain}: renewal failed (next check in {self.every:g} s): {exc}")
        for domain, chain in renewed.items():
            # The marker first: the edge duty leaves a certificate that has one to this install (HAProxy's
            # runtime API holds one transaction at a time; two swaps of it at once would meet there).
            write_atomic(self.marker(domain), b"")
            write_atomic(os.path.join(self.acme_dir, domain + ".crt"), chain)
            pending.append(domain)
            until = validity(first_certificate(chain))[1]
            log(f"certificate {domain}: renewed, valid until {until:%Y-%m-%dT%H:%M:%SZ}")
        if pending and self.install(sorted(pending)):
            for domain in pending:
                os.unlink(self.marker(domain))

    def marker(self, domain: str) -> str:
        return install_marker(self.acme_dir, domain)

    def pem(self, domain: str) -> bytes:
        """What the edge loads: the chain, then the key (as the role installs it). No blank line: it
        would end HAProxy's runtime payload early."""
        parts = []
        for extension in (".crt", ".key"):
            with open(os.path.join(self.acme_dir, domain + extension), "rb") as handle:
                parts.append(handle.read())
        return b"".join(line + b"\n" for line in b"".join(parts).splitlines() if line.strip())

    def install(self, domains: list[str], timeout: float = 120) -> bool:
        """Hand the domains' certificates to every edge node; True once every node has them."""
        try:
            edge = self.client.api.inspect_service(EDGE)
        except Exception:  # noqa: BLE001 - no edge yet: tried again at the next check
            log(f"certificates: no edge service to give {', '.join(domains)} to; next check in {self.every:g} s")
            return False
        self.sweep()
        stamp = f"{time.time():.0f}"
        secrets = []
        try:
            for index, domain in enumerate(domains):
                # Secret names have 64 characters at most, domains up to 253: numbered, the domain beside.
                for suffix, data in (("", self.pem(domain)), (".domain", domain.encode())):
                    name = f"qoddi-cert-{stamp}-{index}{suffix.replace('.', '-')}"
                    secret = self.client.api.create_secret(name, data, labels={COMPONENT: "certificate"})
                    target = {"Name": f"/run/secrets/qoddi-cert/{index}{suffix}", "UID": "0", "GID": "0", "Mode": 0o400}
                    secrets.append({"SecretID": secret["ID"], "SecretName": name, "File": target})
            states, output = run_global_job(self.client, f"qoddi-certs-{stamp}", "certificates",
                                            install_job(edge, secrets), timeout)
            failed = [t for t in states if t["Status"]["State"] != "complete"]
            if failed or not states:
                log(f"certificates: install failed on {len(failed)} of {len(states)} edge node(s) "
                    f"({'; '.join(t['Status'].get('Err') or t['Status']['State'] for t in failed)}: {output}); "
                    f"next check in {self.every:g} s")
                return False
            log(f"certificates: {', '.join(domains)} installed on {len(states)} edge node(s) without a reload")
            return True
        finally:
            self.remove_secrets([s["SecretID"] for s in secrets])

    def sweep(self) -> None:
        """What an interrupted install (a controller restarted mid-way) left behind."""
        sweep_jobs(self.client, "certificates", "certificate")

    def remove_secrets(self, ids: list[str]) -> None:
        left = swarm.remove_secrets(self.client, ids)
        if left:
            log(f"certificates: {len(left)} secret(s) still in use; removed at the next renewal")


# The one-off global jobs that reach every edge node (this module's install, edge_nodes' routes).
def run_global_job(client, name: str, component: str, template: dict, timeout: float) -> tuple[list[dict], str]:
    """Run a one-off global job to its end (or ``timeout``): its tasks as they ended, and what they
    printed, one line each (Swarm gathers it from every node). The job is removed after."""
    job = client.api.create_service(template, name=name, labels={COMPONENT: component}, mode={"GlobalJob": {}})
    try:
        tasks = wait_job(client, job["ID"], timeout)
        return tasks, "; ".join(line.strip() for line in swarm.logs(client, job["ID"]) if line.strip())
    finally:
        swarm.remove(client, job["ID"])


def run_files_job(client, kind: str, contents: dict[str, bytes], directory: str, template, timeout: float
                  ) -> tuple[list[dict], list[dict], str]:
    """Run a one-off global job whose tasks find ``contents`` as files of ``directory``: Swarm secrets
    named ``qoddi-<kind>-<time>-<file>`` and labelled ``kind`` (as the job is, for sweep_jobs), removed
    after. ``template(secrets)`` makes its task template. Returns its tasks as they ended, those that
    did not complete, and what they printed."""
    stamp = f"{time.time():.0f}"
    secrets = []
    try:
        for target, data in contents.items():
            name = f"qoddi-{kind}-{stamp}-{target}"
            secret = client.api.create_secret(name, data, labels={COMPONENT: kind})
            secrets.append({"SecretID": secret["ID"], "SecretName": name,
                            "File": {"Name": f"{directory}/{target}", "UID": "0", "GID": "0", "Mode": 0o400}})
        tasks, output = run_global_job(client, f"qoddi-{kind}-{stamp}", kind, template(secrets), timeout)
        return tasks, [t for t in tasks if t["Status"]["State"] != "complete"], output
    finally:
        swarm.remove_secrets(client, [s["SecretID"] for s in secrets])


def takes_jobs(node: dict) -> bool:
    """Whether a job's task can run on the node: ready and active (a lost node keeps its tasks'
    desired state until it is back, and would fail every job)."""
    return node["Status"].get("State") == "ready" and node["Spec"].get("Availability") == "active"


def edge_tasks(client, nodes: list[dict]) -> list[dict]:
    """The edge's tasks Swarm wants running on ``nodes`` (the Swarm's node list) that take jobs: where
    the edge duties' jobs go. None before the edge service exists: the haproxy role writes the edge's
    files, which start those duties, before it creates the service (not an error to log every second)."""
    try:
        tasks = client.api.tasks(filters={"service": EDGE, "desired-state": "running"})
    except Exception as exc:
        if getattr(exc, "status_code", None) == 404:
            return []
        raise
    usable = {n["ID"] for n in nodes if takes_jobs(n)}
    return [t for t in tasks if t.get("NodeID") in usable]


def job_errors(failed: list[dict]) -> str:
    """What Swarm says of each task that did not complete."""
    return "; ".join(t["Status"].get("Err") or t["Status"]["State"] for t in failed)


def wait_job(client, service_id: str, timeout: float) -> list[dict]:
    """The job's tasks once each is over, or as they are when ``timeout`` seconds have passed."""
    deadline = time.time() + timeout
    while True:
        tasks = client.api.tasks(filters={"service": service_id})
        done = [t for t in tasks if t["Status"]["State"] in ("complete", "failed", "rejected", "shutdown")]
        if tasks and len(done) == len(tasks) or time.time() > deadline:
            return tasks
        time.sleep(0.3)


def sweep_jobs(client, jobs: str, secrets: str) -> None:
    """The jobs and secrets an interrupted run (a controller restarted mid-way) left behind, by their
    ``org.qoddi.component`` labels."""
    for job in client.api.services(filters={"label": f"{COMPONENT}={jobs}"}):
        client.api.remove_service(job["ID"])
    swarm.remove_secrets(client, [s["ID"] for s in client.api.secrets(filters={"label": f"{COMPONENT}={secrets}"})])
