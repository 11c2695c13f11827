#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_logs
short_description: Read an app's logs from every task on every node, merged in time order
version_added: 0.2.0
description:
  - Returns the lines an app's processes wrote (C(heroku logs), as data) - from every task of every process
    on every node of the Swarm, merged in time order, each with its process type, replica number, node and
    release, and whether it went to stdout or stderr.
  - Tasks that ended (a crashed one, the tasks of the previous release) are included while Swarm still
    lists them (its task history, 5 per replica by default), and so is a release job that has not been
    removed yet.
  - The output of the newest release command (the Procfile's C(release), which runs before a release serves)
    is included as process V(release), whether it failed or not, even once its container or job is gone
    (its last 200 lines, each stamped with the time the command ended).
  - Run it on a Swarm manager. It changes nothing.
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: N/A
  idempotent:
    support: full
options:
  name:
    description: The app whose logs to read.
    type: str
    required: true
  lines:
    description:
      - The number of lines to return, the newest (of all processes together). V(0) for all.
      - With O(release), fewer may come back - the newest lines are read, then filtered.
    type: int
    default: 100
  since:
    description:
      - Only lines written since then - an ISO 8601 time (V(2026-11-30T12:00:00Z)) or a duration back from
        now (V(90s), V(15m), V(2h), V(1d)).
    type: str
  processes:
    description:
      - Only these process types (V(web), V(worker), ..., V(release) for the newest release command's output,
        V(build) for the newest build's whole log). By default every process type and V(release).
    type: list
    elements: str
  release:
    description: Only lines of tasks of this release.
    type: int
seealso:
  - module: qoddi.paas.qoddi_app
  - module: qoddi.paas.qoddi_console
"""

EXAMPLES = r"""
- name: The last 200 lines of the blog
  qoddi.paas.qoddi_logs:
    name: blog
    lines: 200
  register: blog_logs

- name: Show them as Heroku does
  ansible.builtin.debug:
    var: blog_logs.text

- name: What the workers of release 12 said in the last hour
  qoddi.paas.qoddi_logs:
    name: blog
    processes: [worker]
    release: 12
    since: 1h
    lines: 0
"""

RETURN = r"""
entries:
  description: The lines, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    time:
      description: When the line was written (RFC 3339, nanoseconds).
      type: str
    process:
      description: The process type.
      type: str
    replica:
      description: The task's replica number.
      type: int
    node:
      description: The host name of the node the task ran on.
      type: str
    release:
      description: The release the task ran.
      type: int
    stream:
      description: V(stdout) or V(stderr).
      type: str
    message:
      description: The line.
      type: str
    task_state:
      description: The task's state now (V(running), V(failed), V(shutdown), ...).
      type: str
text:
  description: "The same lines as text, C(<time> app[<process>.<replica>] (<node>, release <n>): <line>)."
  returned: always
  type: list
  elements: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _logs as logs
from ansible_collections.qoddi.paas.plugins.module_utils import _release_log as release_log
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)


def read_service(client, service: dict, since: int, lines: int, facts: dict[str, dict]) -> list[dict]:
    found = []
    for stream in ("stdout", "stderr"):
        raw = client.api.service_logs(service["ID"], details=True, timestamps=True, since=since,
                                      tail=lines or "all", stdout=stream == "stdout", stderr=stream == "stderr")
        text = b"".join(raw).decode(errors="replace")
        found.append(logs.entries(text.split("\n"), stream, facts))  # not splitlines: \r is a line's own
    return [e for group in found for e in group]


def since_text(since: int) -> str:
    """``since`` (seconds since the epoch; 0: all) as a sortable time, to filter kept lines with."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) + ".000000000" if since else ""


def main():
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            name=dict(type="str", required=True),
            lines=dict(type="int", default=100),
            since=dict(type="str"),
            processes=dict(type="list", elements="str"),
            release=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not conventions.name_ok(p["name"]):
        module.fail_json(msg=f"qoddi_logs: '{p['name']}' is not a valid app name ({conventions.NAME_RULE}).")
    if p["lines"] < 0:
        module.fail_json(msg="qoddi_logs: lines must be 0 (all) or more.")
    try:
        since = logs.since_epoch(p["since"], time.time()) if p["since"] else 0
    except ValueError:
        module.fail_json(msg=f"qoddi_logs: since is '{p['since']}', neither an ISO 8601 time (2026-11-30T12:00:00Z) "
                             "nor a duration (90s, 15m, 2h, 1d).")
    client = docker_client(module)
    try:
        services = deploy.current_services(client, p["name"])
        if not services:
            module.fail_json(msg=f"qoddi_logs: there is no app '{p['name']}' (no services). Check the name.")
        # The build's lines only when asked for, as Heroku shows a build's output apart from the app's logs.
        wanted = set(p["processes"] or [*services, "release"])
        unknown = wanted - set(services) - {"release", "build"}
        if unknown:
            module.fail_json(msg=f"qoddi_logs {p['name']}: it has no {', '.join(sorted(unknown))} process; its "
                                 f"processes are {', '.join(sorted(services))}.")
        chosen = [services[name] for name in sorted(wanted) if name not in ("release", "build")]
        # The app's release jobs still listed (a running one, one a run left) are part of its story.
        if "release" in wanted:
            chosen += deploy.release_jobs(client, p["name"])
        hostnames = {n["ID"]: n["Description"]["Hostname"] for n in client.api.nodes()}
        groups = []
        for service in chosen:
            facts = logs.task_facts(swarm.tasks(client, service["ID"]), hostnames)
            entries = read_service(client, service, since, p["lines"], facts)
            if p["release"] is not None:
                entries = [e for e in entries if e["release"] == p["release"]]
            groups.append(entries)
        for kind, process in ((release_log.KIND, "release"), (release_log.BUILD_KIND, "build")):
            if process in wanted:
                kept = logs.kept_entries(release_log.read(client, p["name"], kind), process)
                groups.append([e for e in kept if (p["release"] is None or e["release"] == p["release"])
                               and e["time"] >= since_text(since)])
        result = logs.merged(groups, p["lines"])
    except DockerException as exc:
        module.fail_json(msg=f"qoddi_logs {p['name']}: the Docker engine refused an operation: {exc}")
    module.exit_json(changed=False, entries=result, text=[logs.format_line(e) for e in result])


if __name__ == "__main__":
    main()
