# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn the cluster's web services into the edge's routes and files (module_utils/_edge.py, which
the controller runs too, so the role and the controller write the same bytes)."""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.qoddi.paas.plugins.module_utils import _edge

display = Display()


def edge_routes(services: list, platform_domain: str) -> list:
    """One route per app's web service (services as community.docker's docker_swarm_info returns them
    with verbose_output); an app with hand-edited, invalid labels is left out with a warning."""
    return _edge.edge_routes(services, platform_domain, lambda line: display.warning(f"qoddi.paas.edge_routes: {line}"))


def edge_hosts_map(routes: list) -> str:
    """The content of the edge's hosts.map (domain -> backend)."""
    return _edge.hosts_map(routes)


def edge_backends(routes: list, max_replicas: int) -> str:
    """The content of the edge's routes.cfg (one backend per app)."""
    return _edge.backends(routes, max_replicas)


def edge_backend_certificates(routes: list) -> dict:
    """The apps' pinned backend certificates (backend_tls), by path in the edge's configuration directory."""
    return _edge.backend_certificates(routes)


class FilterModule:
    def filters(self):
        return {"edge_routes": edge_routes, "edge_hosts_map": edge_hosts_map, "edge_backends": edge_backends,
                "edge_backend_certificates": edge_backend_certificates}
