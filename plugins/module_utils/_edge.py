# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The edge's routes: which domain goes to which app, and the two files HAProxy reads them from.

One owner for both readers of the cluster: the qoddi.paas.haproxy role (through the edge_routes,
edge_hosts_map and edge_backends filters and its templates) and the controller, which follows
deploys by itself (roles/controller/files/edge.py). Both therefore write byte-identical files, so a
playbook run after the controller applied a change reports no change, and the other way round.
Pure functions: no engine, no Ansible.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ansible_collections.qoddi.paas.plugins.module_utils import _labels as label_rules
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import NAME_RE, WEB_PORT, Label, name_ok

# How often the edge checks a task it holds down, and how many answers in a row bring it up: a new task
# is down from its first check (made before its app answers) until then. _deploy's rollouts wait for it.
DOWN_INTER_SECONDS = 0.25
RISE = 2
# A rising task (up from its first check that passed) and a failing one are checked this often.
FAST_INTER_SECONDS = 0.25
# Connection errors in a row, in live traffic, that take a task down at once (its node lost).
ERROR_LIMIT = 3

# Swarm service names as qoddi_app makes them (the web process's is the app's name).
_SERVICE_RE = NAME_RE
# Where the edge container sees its configuration directory; an app's pinned backend certificate
# (qoddi_app's backend_tls) is backends/<app>.pem in it.
IN_EDGE = "/usr/local/etc/haproxy"
_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n\Z")


def label_problems(name: str, labels: dict, platform_domain: str) -> list[str]:
    """Why the labels of the web service ``name`` cannot become a route (empty list when they can).

    Every value the route puts into the edge's files is checked: qoddi_app writes only valid ones,
    so an invalid one was edited by hand, and must neither inject configuration nor break the file
    for the other apps.
    """
    problems = []
    app = labels.get(Label.APP, "")
    if not name_ok(app):
        problems.append(f"{Label.APP} {app!r} is not an app name")
    if not _SERVICE_RE.match(name):
        problems.append(f"the service name {name!r} is not an app name")
    if not label_rules.domain_ok(f"{app}.{platform_domain}"):
        problems.append(f"the default domain {app!r}.{platform_domain} is not a domain name")
    for domain in labels.get(Label.DOMAINS, "").split(","):
        if domain and not label_rules.domain_ok(domain):
            problems.append(f"{Label.DOMAINS} holds {domain!r}, which is not a domain name")
    health = labels.get(Label.HEALTH, "")
    if health and (problem := label_rules.health_path_problem(health)):
        problems.append(f"{Label.HEALTH} {health!r} {problem}")
    cert = labels.get(Label.BACKEND_TLS, "")
    if cert and not _CERT_RE.match(cert):
        problems.append(f"{Label.BACKEND_TLS} is not one PEM certificate")
    return problems


def edge_routes(services: list, platform_domain: str, warn: Callable[[str], None]) -> list:
    """One route per app's web service: its backend name, service and domains, default domain first.

    ``services`` are Swarm service objects as the Engine API returns them. Labels edited by hand
    must not stop the edge for everyone: an app whose label values are not valid (see
    label_problems) is left out, and a domain claimed by two apps (qoddi_app refuses that at deploy)
    stays with the app whose service is older, the one that had it first; the other loses that
    domain only. ``warn`` receives one line for each.
    """
    routes, owner = [], {}
    for service in sorted(services, key=lambda s: (s.get("CreatedAt", ""), (s.get("Spec") or {}).get("Name", ""))):
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if labels.get(Label.PROCESS) != "web" or not labels.get(Label.APP):
            continue
        app = labels[Label.APP]
        problems = label_problems(spec.get("Name", app), labels, platform_domain)
        if problems:
            warn(f"the app {app!r} is left out of the edge, as its service's labels hold values the edge "
                 f"cannot use safely (edited by hand, or written by an older qoddi_app): {'; '.join(problems)}. "
                 "Deploy it again with qoddi_app to fix them.")
            continue
        domains = []
        for domain in [f"{app}.{platform_domain}"] + [d for d in labels.get(Label.DOMAINS, "").split(",") if d]:
            if owner.setdefault(domain, app) == app:
                domains.append(domain)
            else:
                warn(f"the domain {domain} is claimed by the apps {owner[domain]} and {app}; it stays with "
                     f"{owner[domain]}, whose service is older. Remove it from one of them "
                     "(qoddi_app's domains option).")
        routes.append({
            "app": app,
            "service": spec.get("Name", app),
            # HAProxy names: letters, digits, '-', '_', '.' and ':' are allowed; keep the app's name readable.
            "backend": f"app-{app}",
            "domains": domains,
            "health": labels.get(Label.HEALTH, ""),
            "tls": labels.get(Label.BACKEND_TLS, ""),
        })
    return sorted(routes, key=lambda route: route["app"])


def routed_domains(routes: list) -> list[str]:
    """Every domain the edge serves, sorted: the certificates it needs."""
    return sorted({domain for route in routes for domain in route["domains"]})


def backend_certificates(routes: list) -> dict[str, str]:
    """The pinned certificates of the apps with backend TLS, by path in the configuration directory."""
    return {f"backends/{route['app']}.pem": route["tls"] for route in routes if route.get("tls")}


def hosts_map(routes: list) -> str:
    """hosts.map: one ``domain backend`` line per domain, read by both frontends' use_backend."""
    lines = ["# Managed by qoddi.paas (the haproxy role and the controller) from the apps' labels: domain -> backend."]
    lines += [f"{domain} {route['backend']}" for route in routes for domain in route["domains"]]
    return "\n".join(lines) + "\n"


def backends(routes: list, max_replicas: int) -> str:
    """routes.cfg: one backend per app, loaded after haproxy.cfg (which holds ``resolvers docker``)."""
    apps = ", ".join(route["app"] for route in routes) or "none"
    out = [f"# Managed by qoddi.paas (the haproxy role and the controller) from the apps' labels. Apps: {apps}."]
    for route in routes:
        out += ["", f"backend {route['backend']}", "    balance leastconn"]
        if route["health"]:
            # No domain left (another app's custom domain took its default one): the check still needs a Host.
            host = (route["domains"] or ["localhost"])[0]
            out += [
                "    option httpchk",
                f"    http-check send meth GET uri {route['health']} ver HTTP/1.1 hdr Host {host}",
                "    # Like the app's own health check: any answer below 500 means the process serves.",
                "    http-check expect rstatus ^[1-4]",
            ]
        out += [
            "    # init-addr last: after a reload, servers start at the addresses saved in the state file, not empty",
            "    # until the first DNS answer (which would answer 503 for a moment).",
            "    # A task joins Docker's DNS when its container starts, before its app answers: HAProxy adds it",
            "    # up, its first failed check takes it down, and a down one is checked every "
            f"{round(DOWN_INTER_SECONDS * 1000)} ms,",
            f"    # so it is up again {RISE} checks after its app answers, the later ones "
            f"{round(FAST_INTER_SECONDS * 1000)} ms apart (the rollout",
            "    # waits for that, see _deploy).",
            "    # A task whose node is lost fails connections at once, before a check notices: with leastconn it",
            f"    # would look the least busy and draw every request (each a 503 after its retries). {ERROR_LIMIT}",
            "    # connection errors in a row in live traffic take it down until its checks pass again.",
        ]
        tls, servers = "", "web"
        if route.get("tls"):
            out += [
                "    # TLS to the tasks (qoddi_app's backend_tls), checks included: only a task holding the app's own",
                "    # key answers, as its certificate is the only one this backend trusts. Servers named apart from",
                "    # plain ones: a reload restores each server's TLS setting from the state file, by name.",
            ]
            tls = f" ssl verify required ca-file {IN_EDGE}/backends/{route['app']}.pem verifyhost {route['service']}"
            servers = "tls"
        out += [
            f"    default-server check inter 2s fastinter {round(FAST_INTER_SECONDS * 1000)}ms"
            f" downinter {round(DOWN_INTER_SECONDS * 1000)}ms fall 2 rise {RISE} slowstart 10s"
            f" observe layer4 error-limit {ERROR_LIMIT} on-error mark-down"
            f" resolvers docker resolve-prefer ipv4 init-addr last,none{tls}",
        ]
        out += [f"    server-template {servers} {int(max_replicas)} tasks.{route['service']}:{WEB_PORT}"]
    return "\n".join(out) + "\n"
