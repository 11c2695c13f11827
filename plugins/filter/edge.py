# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the cluster's web services into the edge's routes (which domain goes to which app)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# The labels qoddi_app writes on services: one definition for the writer and this reader.
from ansible_collections.qoddi.paas.plugins.module_utils._deploy import LABEL


def edge_routes(services: list, platform_domain: str) -> list:
    """One route per app's web service: its backend name, service and domains, default domain first.

    ``services`` are Swarm service objects as the Engine API returns them (community.docker's
    docker_swarm_info with verbose_output). A domain claimed twice is an error naming both apps:
    qoddi_app refuses that, so it means someone edited labels by hand.
    """
    routes, owner = [], {}
    for service in services:
        spec = service.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if labels.get(LABEL + "process") != "web" or not labels.get(LABEL + "app"):
            continue
        app = labels[LABEL + "app"]
        domains = [f"{app}.{platform_domain}"] + [d for d in labels.get(LABEL + "domains", "").split(",") if d]
        for domain in domains:
            if owner.setdefault(domain, app) != app:
                raise AnsibleFilterError(f"the domain {domain} is claimed by the apps {owner[domain]} and {app}: "
                                         f"remove it from one of them (qoddi_app's domains option).")
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
