# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the cluster's web services into the edge's routes (which domain goes to which app)."""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.qoddi.paas.plugins.module_utils import _labels as label_rules

# The labels qoddi_app writes on services: one definition for the writer and this reader.
from ansible_collections.qoddi.paas.plugins.module_utils._deploy import LABEL, NAME_RE, app_name_ok

display = Display()
# Swarm service names as qoddi_app makes them (the web process's is the app's name).
_SERVICE_RE = NAME_RE


def label_problems(name: str, labels: dict, platform_domain: str) -> list[str]:
    """Why the labels of the web service ``name`` cannot become a route (empty list when they can).

    Every value the route puts into haproxy.cfg or hosts.map is checked: qoddi_app writes only valid
    ones, so an invalid one was edited by hand, and must neither inject configuration nor break the
    file for the other apps.
    """
    problems = []
    app = labels.get(LABEL + "app", "")
    if not app_name_ok(app):
        problems.append(f"{LABEL}app {app!r} is not an app name")
    if not _SERVICE_RE.match(name):
        problems.append(f"the service name {name!r} is not an app name")
    if not label_rules.domain_ok(f"{app}.{platform_domain}"):
        problems.append(f"the default domain {app!r}.{platform_domain} is not a domain name")
    for domain in labels.get(LABEL + "domains", "").split(","):
        if domain and not label_rules.domain_ok(domain):
            problems.append(f"{LABEL}domains holds {domain!r}, which is not a domain name")
    health = labels.get(LABEL + "health", "")
    if health and (problem := label_rules.health_path_problem(health)):
        problems.append(f"{LABEL}health {health!r} {problem}")
    return problems


def edge_routes(services: list, platform_domain: str) -> list:
    """One route per app's web service: its backend name, service and domains, default domain first.

    ``services`` are Swarm service objects as the Engine API returns them (community.docker's
    docker_swarm_info with verbose_output). Labels edited by hand must not stop the edge for everyone:
    an app whose label values are not valid (see label_problems) is left out with a warning, and a
    domain claimed by two apps (qoddi_app refuses that at deploy) stays with the app whose service is
    older, the one that had it first; the other loses that domain only, with a warning.
    """
    routes, owner = [], {}
    for service in sorted(services, key=lambda s: (s.get("CreatedAt", ""), (s.get("Spec") or {}).get("Name", ""))):
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if labels.get(LABEL + "process") != "web" or not labels.get(LABEL + "app"):
            continue
        app = labels[LABEL + "app"]
        problems = label_problems(spec.get("Name", app), labels, platform_domain)
        if problems:
            display.warning(f"qoddi.paas.edge_routes: the app {app!r} is left out of the edge, as its service's labels "
                            f"hold values the edge cannot use safely (edited by hand, or written by an older "
                            f"qoddi_app): {'; '.join(problems)}. Deploy it again with qoddi_app to fix them.")
            continue
        domains = []
        for domain in [f"{app}.{platform_domain}"] + [d for d in labels.get(LABEL + "domains", "").split(",") if d]:
            if owner.setdefault(domain, app) == app:
                domains.append(domain)
            else:
                display.warning(f"qoddi.paas.edge_routes: the domain {domain} is claimed by the apps {owner[domain]} "
                                f"and {app}; it stays with {owner[domain]}, whose service is older. Remove it from "
                                "one of them (qoddi_app's domains option).")
        routes.append({
            "app": app,
            "service": spec.get("Name", app),
            # HAProxy names: letters, digits, '-', '_', '.' and ':' are allowed; keep the app's name readable.
            "backend": f"app-{app}",
            "domains": domains,
            "health": labels.get(LABEL + "health", ""),
        })
    return sorted(routes, key=lambda route: route["app"])


class FilterModule:
    def filters(self):
        return {"edge_routes": edge_routes}
