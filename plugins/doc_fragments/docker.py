# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How every qoddi.paas module reaches the Docker engine of a Swarm manager.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - URL or Unix socket path of the Docker engine API of a Swarm manager.
      - If not given, the E(DOCKER_HOST) environment variable is used, else the local socket.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for an answer from the Docker engine API.
      - If not given, the E(DOCKER_TIMEOUT) environment variable is used, else 60.
    type: int
    default: 60
  tls:
    description:
      - Talk to the engine over TLS (without verifying its certificate unless O(validate_certs) is set).
      - If not given, the E(DOCKER_TLS) environment variable is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk over TLS and verify the engine's certificate against O(ca_path).
      - If not given, the E(DOCKER_TLS_VERIFY) environment variable is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert).
    type: path
    aliases: [tls_client_key, key_path]
requirements:
  - Docker SDK for Python 7.1 or newer (C(docker) on PyPI, C(python3-docker) on Debian)
"""
