# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The edge follows deploys: the controller's duty that keeps HAProxy's routes and certificates in
step with the apps' web services, so no one has to run the edge playbook after a deploy.

Every tick it lists the web services (one engine call) and computes the routes and the two files
HAProxy reads them from with the qoddi.paas.haproxy role's own code (module_utils/_edge.py): the
role and this duty write the same bytes, so either finds the other's work current. When a file
would change:
1. a routed domain without a certificate gets one (a key and request as the letsencrypt role makes
   them, ordered with the role's ACME account; the edge answers http-01 by itself);
2. the new routes.cfg is checked by HAProxy in the running edge container (``haproxy -c``) before
   anything is written;
3. hosts.map, routes.cfg and certs/ are written (a removed domain's certificate goes), and the edge
   reloads hitlessly: the same two steps as roles/haproxy/tasks/reload.yml.
A bad label leaves its app out (one line, the others keep being served); an ACME failure leaves the
domain on the default certificate and is tried again later; a configuration HAProxy refuses is not
written, and the edge keeps the last good one.

The edge joins the stacks' networks the web processes are on (edge_networks.py) before their routes.
The edge's files are written here on this node (the controller runs on the first manager, which is
an edge node); the edge nodes elsewhere get the same files from a one-off job (edge_nodes.py).
"""

from __future__ import annotations

import glob
import json
import os

import certificates
import edge_networks
import edge_nodes
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.qoddi.paas.plugins.module_utils import _edge
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

log = certificates.log
EDGE_SERVICE = "qoddi-edge"
IN_EDGE = "/usr/local/etc/haproxy"  # where the edge container mounts the configuration directory
DEFAULT_CERT = "000-default.pem"
# After a failed order the domain waits before the next try, twice as long after each failure up to
# an hour: Let's Encrypt allows 5 failed validations per hostname and hour (a domain whose DNS does
# not point at the edge yet fails until it does).
ORDER_RETRY = 60.0
ORDER_RETRY_MAX = 3600.0


def retry_delay(failures: int) -> float:
    return min(ORDER_RETRY * 2 ** (failures - 1), ORDER_RETRY_MAX)


def new_key_and_request(domain: str) -> tuple[bytes, bytes]:
    """An EC P-256 key (traditional PEM) and its request for ``domain`` (CN and SAN), as the
    letsencrypt role's openssl_privatekey and openssl_csr make them, so its next run keeps them."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
               .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return key_pem, request.public_bytes(serialization.Encoding.PEM)


def desired_files(routes: list, max_replicas: int, acme_dir: str | None) -> dict[str, bytes]:
    """What the configuration directory should hold, by path relative to it: the routes' two files,
    the certificates pinned for apps with TLS to their tasks (backends/<app>.pem) and, where
    certificates are on (acme_dir), each routed domain's certificate then key, as the letsencrypt
    role installs them (a domain not issued yet is left out: the default serves it)."""
    files = {"hosts.map": _edge.hosts_map(routes).encode(), "routes.cfg": _edge.backends(routes, max_replicas).encode()}
    files.update({path: cert.encode() for path, cert in _edge.backend_certificates(routes).items()})
    for domain in _edge.routed_domains(routes) if acme_dir else []:
        parts = [os.path.join(acme_dir, domain + extension) for extension in (".crt", ".key")]
        if all(os.path.exists(part) for part in parts):
            files[f"certs/{domain}.pem"] = b"".join(read(part) for part in parts)
    return files


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class EdgeFollower:
    def __init__(self, client, config_dir: str, acme_dir: str):
        self.client = client
        self.config_dir = config_dir  # the edge's configuration directory, mounted at its host path
        self.acme_dir = acme_dir
        self.refused = ""  # digest of the files HAProxy refused: not checked again until they change
        self.order_after: dict[str, float] = {}  # domain -> when its next order may start
        self.failures: dict[str, int] = {}  # domain -> failed orders in a row
        self.chained: dict[str, tuple] = {}  # domain -> (its certificate file and the root, chains to it)
        self.warned: set[str] = set()  # the problems of the last tick, logged when they appeared
        self.problems: set[str] = set()  # this tick's
        self.others = edge_nodes.OtherEdges(client)
        self.networks = edge_networks.EdgeNetworks(client)

    def warn(self, line: str) -> None:
        self.problems.add(line)
        if line not in self.warned:  # once while the problem lasts, not once a second
            log(f"edge: {line}")

    def tick(self, now: float) -> None:
        settings = json.loads(read(os.path.join(self.config_dir, "routes.json")) or b"null")
        if settings is None:
            return  # the haproxy role has not installed the edge on this node
        services = self.client.api.services(filters={"label": f"{Label.PROCESS}=web"})
        self.problems = set()
        # Listed once for both edge duties below (the networks here, the other edge nodes' files).
        nodes = self.client.api.nodes()
        edge_tasks = certificates.edge_tasks(self.client, nodes)
        # First: the edge must be on an app's stack network before its routes resolve the app's tasks.
        try:
            self.networks.tick(services, nodes, edge_tasks, now)
        except Exception as exc:  # noqa: BLE001 - the routes of the stacks the edge has joined go on
            self.warn(f"the edge's networks could not be brought up to date (tried again next tick): "
                      f"{type(exc).__name__} {exc}")
        routes = _edge.edge_routes(services, settings["domain"], self.warn)
        self.warned = self.problems
        acme = certificates.read_settings(self.acme_dir) if os.path.isdir(self.acme_dir) else None
        if acme:
            self.order_missing(routes, acme, now)
        wanted = desired_files(routes, settings["max_replicas"], self.acme_dir if acme else None)
        # A renewed certificate the renewer is installing (its marker is written before it) is the
        # install job's to put in the edge, here and on every edge node: left out until it is done.
        installing = {p for p in wanted if p.startswith("certs/") and os.path.exists(
            certificates.install_marker(self.acme_dir, p[len("certs/"):-len(".pem")]))}
        if self.apply_here(routes, wanted, acme, installing):
            # The edge nodes elsewhere get the same files; not when HAProxy refused them here.
            self.others.sync(wanted, now, prune_certificates=bool(acme), keep=installing, edge_tasks=edge_tasks)

    def apply_here(self, routes: list, wanted: dict[str, bytes], acme: dict | None, installing: set[str]) -> bool:
        """Bring this node's edge to ``wanted``, but the certificates being ``installing``; False when
        HAProxy refused the routes."""
        stale = (self.stale_certificates(wanted) if acme else []) + self.stale_pinned(wanted)
        changed = {path: data for path, data in wanted.items()
                   if path not in installing and read(self.path(path)) != data}
        if not changed and not stale:
            return True
        digest = edge_nodes.digest(changed)
        if digest == self.refused:
            return False
        container = self.edge_container()
        if container is None:
            return True  # no edge task on this node yet: the role (re)starts it with the files it writes
        # The pinned certificates first: the new routes.cfg names them (a file no route names yet is inert).
        for path in sorted(p for p in changed if p.startswith("backends/")):
            os.makedirs(self.path("backends"), exist_ok=True)
            certificates.write_atomic(self.path(path), changed[path], 0o644)
        if "routes.cfg" in changed and not self.valid(container, changed["routes.cfg"]):
            self.refused = digest
            return False
        # Only served domains' certificates replaced (a renewal, a new CA's reissue): swapped into the
        # running edge through its runtime API, as the renewer does, without a reload (a reload would
        # start new workers and drop the old ones' idle connections). New routes or domains reload.
        replaced = [path for path in changed if path.startswith("certs/") and os.path.exists(self.path(path))]
        swap_only = not stale and len(replaced) == len(changed)
        for path, data in changed.items():
            if not path.startswith("backends/"):  # written above, before the check
                certificates.write_atomic(self.path(path), data, 0o600 if path.startswith("certs/") else 0o644)
        for path in stale:
            os.unlink(path)
        if acme:
            self.note_served(_edge.routed_domains(routes))
        # Every certificate is tried (a list, not a generator that would stop at the first failure).
        swapped = [self.swap(container, path) for path in replaced] if swap_only else []
        if swap_only and all(swapped):
            log(f"edge: certificates swapped in without a reload: {', '.join(sorted(replaced))}")
            return True
        self.reload(container)
        log(f"edge: routes applied ({', '.join(r['app'] for r in routes) or 'no app'}); "
            f"changed {', '.join(sorted(changed)) or 'nothing'}"
            f"{'; removed ' + ', '.join(os.path.basename(p) for p in stale) if stale else ''}; reloaded")
        return True

    def path(self, relative: str) -> str:
        return os.path.join(self.config_dir, relative)

    def order_missing(self, routes: list, acme: dict, now: float) -> bool:
        """Order the certificate of every routed domain that has none, or whose kept one no longer chains
        to the letsencrypt role's trust root (a domain routed again after its ACME server was made
        again); True when one was issued."""
        root = certificates.trust_root(acme)
        missing = [d for d in _edge.routed_domains(routes)
                   if self.order_after.get(d, 0) <= now and not self.sound(d, root)]
        issued = False
        client = None
        for domain in missing:
            try:
                paths = [os.path.join(self.acme_dir, domain + extension) for extension in (".key", ".csr")]
                if not all(os.path.exists(path) for path in paths):
                    for path, data, mode in zip(paths, new_key_and_request(domain), (0o600, 0o644), strict=True):
                        certificates.write_atomic(path, data, mode)
                client = client or certificates.Acme(self.acme_dir, acme)
                chain = client.order(domain, timeout=30)
            except Exception as exc:  # noqa: BLE001 - one domain's failure must not stop the others
                self.wait_before_ordering(domain, now, f"could not be ordered: {type(exc).__name__} {exc}")
                continue
            certificates.write_atomic(os.path.join(self.acme_dir, domain + ".crt"), chain)
            issued = True
            try:
                foreign = bool(root) and not certificates.chains_to(chain, root)
            except ValueError:  # a chain this cannot read is the ACME server's to answer for: kept
                foreign = False
            if foreign:
                # Served all the same (better than the default), but not ordered again at every tick.
                self.wait_before_ordering(domain, now, "was issued by a CA other than the trust root "
                                          "(qoddi_letsencrypt_trust_root: is it the ACME server's root?)")
                continue
            self.order_after.pop(domain, None)
            self.failures.pop(domain, None)
            log(f"edge: certificate of {domain} issued")
        return issued

    def sound(self, domain: str, root: bytes | None) -> bool:
        """The domain's kept certificate exists and, where the role names a trust root, chains to it;
        remembered while the file and the root are the same (the edge ticks every few seconds)."""
        try:
            stat = os.stat(os.path.join(self.acme_dir, domain + ".crt"))
        except FileNotFoundError:
            return False
        if not root:
            return True
        key = (stat.st_mtime_ns, stat.st_size, root)
        if self.chained.get(domain, (None,))[0] != key:
            pem = read(os.path.join(self.acme_dir, domain + ".crt")) or b""
            try:
                self.chained[domain] = (key, certificates.chains_to(pem, root))
            except ValueError:  # unreadable: the letsencrypt role's to issue again (as the renewer leaves it)
                self.chained[domain] = (key, True)
        return self.chained[domain][1]

    def wait_before_ordering(self, domain: str, now: float, what: str) -> None:
        self.failures[domain] = self.failures.get(domain, 0) + 1
        delay = retry_delay(self.failures[domain])
        self.order_after[domain] = now + delay
        log(f"edge: the certificate of {domain} {what} (the default certificate serves it meanwhile, if it has "
            f"none; next try in {delay:g} s)")

    def stale_certificates(self, wanted: dict[str, bytes]) -> list[str]:
        """Certificates in the edge of domains it no longer routes (the letsencrypt role's rule)."""
        keep = {self.path(p) for p in wanted} | {self.path("certs/" + DEFAULT_CERT)}
        return sorted(p for p in glob.glob(self.path("certs/*.pem")) if p not in keep)

    def stale_pinned(self, wanted: dict[str, bytes]) -> list[str]:
        """Pinned certificates of apps gone or without TLS to their tasks."""
        pinned = glob.glob(self.path("backends/*.pem"))
        return sorted(p for p in pinned if os.path.relpath(p, self.config_dir) not in wanted)

    def note_served(self, domains: list[str]) -> None:
        """The renewal settings list the domains served (the renewer renews those): as the role writes them."""
        path = os.path.join(self.acme_dir, certificates.SETTINGS)
        settings = json.loads(read(path) or b"{}")
        if settings and settings.get("domains") != domains:
            settings["domains"] = domains
            # Ansible's to_nice_json: the role's next run then finds the same bytes.
            data = json.dumps(settings, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"
            certificates.write_atomic(path, data.encode(), 0o600)

    def edge_container(self):
        found = self.client.containers.list(filters={"label": f"com.docker.swarm.service.name={EDGE_SERVICE}"})
        return found[0] if found else None

    def valid(self, container, routes_cfg: bytes) -> bool:
        """HAProxy's own check, in the running edge, of its configuration with the new routes.cfg."""
        candidate = self.path(".routes.cfg.candidate")
        certificates.write_atomic(candidate, routes_cfg)
        try:
            result = container.exec_run(["haproxy", "-c", "-f", f"{IN_EDGE}/haproxy.cfg",
                                         "-f", f"{IN_EDGE}/.routes.cfg.candidate"])
        finally:
            os.unlink(candidate)
        if result.exit_code != 0:
            lines = result.output.decode(errors="replace").splitlines()
            output = " ".join(" ".join(line.split()) for line in lines if "ALERT" in line) or " ".join(lines)
            log(f"edge: HAProxy refused the new routes (exit {result.exit_code}), the edge keeps its last good "
                f"configuration: {output}")
            return False
        return True

    def swap(self, container, relative: str) -> bool:
        """``set ssl cert`` then ``commit ssl cert`` of one written certificate in the running edge;
        False (the caller reloads) when HAProxy did not take it. No blank line: it would end the payload."""
        script = ('f="$1"; a=$({ printf "set ssl cert %s <<\\n" "$f"; grep -v "^[[:space:]]*$" "$f"; printf "\\n"; }'
                  ' | socat stdio unix:/var/run/haproxy/admin.sock);'
                  ' case "$a" in *Transaction*) ;; *) echo "$a"; exit 1;; esac;'
                  ' a=$(printf "commit ssl cert %s\\n" "$f" | socat stdio unix:/var/run/haproxy/admin.sock);'
                  ' case "$a" in *Success*) ;; *) echo "$a"; printf "abort ssl cert %s\\n" "$f" |'
                  ' socat stdio unix:/var/run/haproxy/admin.sock >/dev/null; exit 1;; esac')
        result = container.exec_run(["sh", "-c", script, "qoddi-swap", f"{IN_EDGE}/{relative}"])
        if result.exit_code != 0:
            log(f"edge: HAProxy did not take {relative} through its runtime API "
                f"({result.output.decode(errors='replace').strip()}); reloading instead")
        return result.exit_code == 0

    def reload(self, container) -> None:
        """roles/haproxy/tasks/reload.yml's steps: save the servers' state, then SIGUSR2 to the master."""
        container.exec_run(["sh", "-c", 'echo "show servers state" | socat stdio unix:/var/run/haproxy/admin.sock '
                                        "> /var/lib/haproxy/server-state"])
        container.kill(signal="SIGUSR2")
