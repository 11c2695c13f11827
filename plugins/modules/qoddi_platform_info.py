#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_platform_info
short_description: Report the state of a qoddi.paas platform
version_added: 0.1.0
description:
  - Reads the engine, the Swarm, its nodes and the platform's images from a Swarm manager's
    Docker engine and returns them, so playbooks and operators can see what the platform is made of.
  - The cluster is the source of truth; this module keeps no state of its own.
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
  - qoddi.paas.attributes.info_module
options: {}
notes:
  - Nodes are listed only when the engine is a Swarm manager (workers cannot list the Swarm).
"""

EXAMPLES = r"""
- name: Show what the platform is made of
  qoddi.paas.qoddi_platform_info:
  register: platform

- name: Fail unless the Swarm is formed
  ansible.builtin.assert:
    that: platform.swarm.active
"""

RETURN = r"""
engine:
  description: The Docker engine answering.
  returned: always
  type: dict
  contains:
    version:
      description: Engine version.
      type: str
      sample: 20.10.24+dfsg1
    api_version:
      description: Engine API version.
      type: str
      sample: "1.41"
swarm:
  description: This engine's view of the Swarm.
  returned: always
  type: dict
  contains:
    active:
      description: Whether this engine is part of an active Swarm.
      type: bool
    state:
      description: The local node state (V(inactive), V(pending), V(active), V(error), V(locked)).
      type: str
    node_id:
      description: This engine's node ID, when in a Swarm.
      type: str
    is_manager:
      description: Whether this node is a manager.
      type: bool
    cluster_id:
      description: The Swarm's ID (managers only).
      type: str
    managers:
      description: Number of managers.
      type: int
    nodes:
      description: Number of nodes.
      type: int
nodes:
  description: Every node of the Swarm (managers only; empty elsewhere).
  returned: always
  type: list
  elements: dict
  sample:
    - id: k2v8...
      hostname: node1
      role: manager
      availability: active
      state: ready
      address: 127.0.0.1
      labels: {qoddi.role: manager}
      engine_version: 20.10.24+dfsg1
      cpus: 2.0
      memory_mb: 24000
      leader: true
images:
  description: The platform's images on this engine (labelled C(org.qoddi.image)).
  returned: always
  type: list
  elements: dict
  sample:
    - image: haproxy
      tags: ["qoddi/haproxy:bookworm-0123456789ab"]
      id: sha256:...
      source: local
      python: null
      size_mb: 120.5
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label
from ansible_collections.qoddi.paas.plugins.module_utils._platform import (
    summarize_images,
    summarize_node,
    summarize_swarm,
)


def main():
    module = AnsibleModule(argument_spec=docker_argument_spec(), supports_check_mode=True)
    client = docker_client(module)
    try:
        info = client.info()
        version = client.version()
        swarm = summarize_swarm(info)
        nodes = []
        if swarm["active"] and swarm["is_manager"]:
            nodes = [summarize_node(n.attrs) for n in client.nodes.list()]
        # Tagged images only: the build stages of app images are left untagged (dangling).
        images = [i.attrs for i in client.images.list(filters={"label": Label.IMAGE, "dangling": False})]
    except DockerException as exc:
        module.fail_json(msg=f"Reading the platform's state failed: {exc}")
    module.exit_json(
        changed=False,
        engine={"version": version.get("Version"), "api_version": version.get("ApiVersion")},
        swarm=swarm,
        nodes=sorted(nodes, key=lambda n: (n["role"] != "manager", n["hostname"] or "")),
        images=summarize_images(images),
    )


if __name__ == "__main__":
    main()
