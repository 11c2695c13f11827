# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One way for every qoddi.paas module to reach the Docker engine.

Modules merge ``DOCKER_ARGUMENT_SPEC`` into their own argument spec and call
``docker_client(module)``; a missing SDK or an engine that does not answer becomes one
``fail_json`` with a message that says what to do.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import docker
    from docker.errors import DockerException

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by the missing-SDK message only
    docker = None
    DockerException = Exception
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

DOCKER_ARGUMENT_SPEC = dict(
    docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"],
                     fallback=(env_fallback, ["DOCKER_HOST"])),
    timeout=dict(type="int", default=60, fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
    tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
    validate_certs=dict(type="bool", default=False, aliases=["tls_verify"],
                        fallback=(env_fallback, ["DOCKER_TLS_VERIFY"])),
    ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert"]),
    client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
    client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
)


def docker_argument_spec(**module_options) -> dict:
    """The module's own options plus the common connection options."""
    spec = dict(DOCKER_ARGUMENT_SPEC)
    spec.update(module_options)
    return spec


def tls_config(params: dict):
    """A docker.tls.TLSConfig for the connection options, or None for plain connections."""
    if not (params.get("tls") or params.get("validate_certs")):
        return None
    client_cert = None
    if params.get("client_cert"):
        client_cert = (params["client_cert"], params.get("client_key"))
    return docker.tls.TLSConfig(
        client_cert=client_cert,
        ca_cert=params.get("ca_path"),
        verify=bool(params.get("validate_certs")),
    )


def docker_client(module: AnsibleModule):
    """Connect to the engine named by the module's options, or fail the module clearly."""
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker (the Docker SDK for Python)"),
                         exception=DOCKER_IMPORT_ERROR)
    params = module.params
    try:
        client = docker.DockerClient(
            base_url=params["docker_host"],
            tls=tls_config(params) or False,
            timeout=params["timeout"],
            # "auto" asks the engine for its API version: that request is also the check that it
            # answers (no separate ping, one request less in every run).
            version="auto",
        )
    except DockerException as exc:
        module.fail_json(
            msg=(f"Cannot reach the Docker engine at {params['docker_host']}: {exc}. "
                 "Is it running (the qoddi.paas.engine role starts it) and is docker_host right?"),
            exception=traceback.format_exc(),
        )
    return client
