#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_env
short_description: Set or remove an app's environment variables (config vars), kept as Swarm secrets
version_added: 0.1.0
description:
  - Sets, replaces or removes the environment variables of an app deployed with M(qoddi.paas.qoddi_app),
    like C(heroku config:set). Every process of the app, its release command and its console
    commands see them as real environment variables; the build sees them too (C(collectstatic) can
    read them), from the next build on.
  - Values are stored as Swarm secrets (encrypted in the managers' Raft log, mounted in tasks on a
    tmpfs), one secret per variable and version; they never appear in C(docker service inspect),
    in this module's output or in the platform's logs. Changing a value creates a new version; the
    platform controller removes the old one once no task uses it.
  - A change does not restart the app at once. The first change schedules a zero-downtime rolling
    restart O(restart_delay) seconds later; changes made before then join that restart, so ten
    variables set one by one cost one restart. The platform controller (role P(qoddi.paas.controller#role))
    carries the restart out; a M(qoddi.paas.qoddi_app) run applies pending changes at once.
  - A change is written under the app's lock (the Swarm config C(qoddi-lock-<name>)), so that a
    deploy or the controller never sees half of it; while another run changes the app, it waits
    up to 600 seconds, then fails saying who changes the app since when, and changes nothing.
  - Run it on a Swarm manager.
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
attributes:
  check_mode:
    support: full
    details: Compares the values with the stored ones (by a salted digest) and reports what would change.
  diff_mode:
    support: full
    details: The diff names the keys; every value is shown as C(********) with its version number.
  idempotent:
    support: full
    details: A value equal to the stored one changes nothing and schedules no restart.
options:
  name:
    description: The app whose variables these are.
    type: str
    required: true
  env:
    description:
      - The variables to set (O(state=present)), as a dictionary of names and values; values must be
        strings (quote numbers and booleans in YAML).
      - With O(state=absent), its names are removed (its values are ignored); or use O(names).
      - Names are letters, digits and underscores, not starting with a digit. C(PORT), C(DYNO) and every
        C(QODDI_*) name belong to the platform.
    type: raw
  names:
    description:
      - With O(state=absent), the names of the variables to remove.
      - Names are not secret, unlike the values of O(env), which Ansible hides wherever they appear.
    type: list
    elements: str
  state:
    description: Whether the variables in O(env) are set (V(present)) or removed (V(absent)).
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=present), also remove every variable not in O(env), so the app has exactly O(env).
      - With O(state=absent) and neither O(env) nor O(names), remove every variable.
    type: bool
    default: false
  restart_delay:
    description:
      - Seconds between the first change and the app's restart. Later changes made before the restart
        join it. V(0) restarts at the controller's next look (about a second).
    type: int
    default: 60
  wait_timeout:
    description:
      - Seconds to wait when another run is changing the app (a M(qoddi.paas.qoddi_app) deploy, another
        M(qoddi.paas.qoddi_env), the platform's controller) before failing with who changes it since
        when, having changed nothing.
    type: int
    default: 600
  create:
    description:
      - Accept an app that has no services yet, so its variables are ready for its first build.
      - Without it, an app with neither services nor variables is an error (most likely a typo).
    type: bool
    default: false
notes:
  - As for every C(no_log) option, Ansible hides any text equal to one of the values in the task's
    output, so a one-character value such as C("1") may blank out unrelated text in messages.
  - Build-time use follows Heroku's rule - a change reaches the build at the next build; it restarts the
    running app but does not rebuild it.
  - Console commands see the variables when they run through C(bash) (C(docker exec <task> bash -c '...')),
    as the app's own processes do. A program started directly by C(docker exec) bypasses bash and does not.
seealso:
  - module: qoddi.paas.qoddi_app
"""

EXAMPLES = r"""
- name: Configure the blog (one restart, a minute after the first change)
  qoddi.paas.qoddi_env:
    name: blog
    env:
      DJANGO_SECRET_KEY: "{{ vault_blog_secret_key }}"
      DEBUG: "false"
      ALLOWED_HOSTS: blog.example.com

- name: Exactly these variables, nothing else
  qoddi.paas.qoddi_env:
    name: blog
    env: "{{ blog_env }}"
    purge: true

- name: Remove a variable
  qoddi.paas.qoddi_env:
    name: blog
    names: [DEBUG]
    state: absent

- name: Variables for an app about to be deployed for the first time
  qoddi.paas.qoddi_env:
    name: shop
    create: true
    env:
      DJANGO_SECRET_KEY: "{{ vault_shop_secret_key }}"
"""

RETURN = r"""
added:
  description: Keys that did not exist and were set.
  returned: always
  type: list
  elements: str
  sample: [DEBUG]
updated:
  description: Keys whose value changed.
  returned: always
  type: list
  elements: str
removed:
  description: Keys removed.
  returned: always
  type: list
  elements: str
names:
  description: The name of every variable the app has after this run (values are never returned).
  returned: always
  type: list
  elements: str
  sample: [ALLOWED_HOSTS, DEBUG, DJANGO_SECRET_KEY]
restart_due:
  description:
    - When the app restarts to apply its pending changes (UTC, ISO 8601), or null when nothing is pending
      (or the app has no services yet).
  returned: always
  type: str
  sample: "2026-11-26T09:41:07Z"
restart_in:
  description: Seconds until that restart (0 when overdue), or null.
  returned: always
  type: int
  sample: 58
version:
  description: The newest version number of the app's variables (it grows with every change).
  returned: always
  type: int
"""

import datetime
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _env as store
from ansible_collections.qoddi.paas.plugins.module_utils import _lock as lock
from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)

MASK = "********"
CONTROLLER_SERVICE = "qoddi-controller"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def masked(variables: dict) -> dict[str, str]:
    """What a diff shows of {key: version}: the key and the version, never the value."""
    return {key: f"{MASK} (v{version.seq})" for key, version in sorted(variables.items())}


def parse_request(module: AnsibleModule) -> tuple[dict[str, str], list[str]]:
    """(variables to set, keys to remove) from the options, or one error message for everything wrong."""
    p = module.params
    env = p["env"]
    if env is None:
        env = {}
    wanted: dict[str, str] = {}
    remove: list[str] = []
    if not isinstance(env, dict):
        module.fail_json(msg=f"qoddi_env {p['name']}: env must be a dictionary of names and values; to remove "
                             "variables, list their names in names, with state=absent.")
    if p["names"] and p["state"] == "present":
        module.fail_json(msg=f"qoddi_env {p['name']}: names is for state=absent; to set variables, use env.")
    if p["state"] == "present":
        wanted = env
    else:
        remove = list(env) + list(p["names"] or [])
    problems = [problem for problem in map(store.check_key, list(wanted) + remove) if problem]
    # The type, never the value: the value may be a secret.
    problems += [problem for problem in (store.check_value(key, value) for key, value in wanted.items()
                                         if isinstance(key, str)) if problem]
    if problems:
        module.fail_json(msg=f"qoddi_env {p['name']}: nothing was changed, because " + "; ".join(problems) + ".")
    return wanted, remove


def read_plan(module: AnsibleModule, client, wanted: dict[str, str], remove: list[str] | None):
    """(the app's services, its variables' versions, the change to make) as the cluster has them now."""
    p = module.params
    services = list(deploy.current_services(client, p["name"]).values())
    history = store.versions(client, p["name"]).get(p["name"], [])
    if not services and not history and not p["create"]:
        module.fail_json(msg=f"qoddi_env: there is no app '{p['name']}' (no services, no variables). Check the "
                             "name, or set create: true to prepare the variables of an app before its first deploy.")
    if remove is None:
        remove = list(store.current(history))
    return services, history, store.plan(history, wanted, remove, module.params["purge"] and p["state"] == "present")


def write(module: AnsibleModule, client, app: str, services: list, history: list, change: dict) -> None:
    if change["set"] or change["remove"]:
        due = store.schedule(history, services, module.params["restart_delay"], time.time())
        store.write(client, app, history, change, due, services)


def main():
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            name=dict(type="str", required=True),
            env=dict(type="raw", no_log=True),
            names=dict(type="list", elements="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            purge=dict(type="bool", default=False),
            restart_delay=dict(type="int", default=60),
            wait_timeout=dict(type="int", default=600),
            create=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    app = p["name"]
    if not conventions.name_ok(app):
        module.fail_json(msg=f"qoddi_env: '{app}' is not a valid app name (lower-case letters, digits and single "
                             "hyphens, starting with a letter, at most 30 characters).")
    if p["restart_delay"] < 0:
        module.fail_json(msg="qoddi_env: restart_delay must be 0 or more seconds.")
    if p["wait_timeout"] < 0:
        module.fail_json(msg="qoddi_env: wait_timeout must be 0 or more seconds.")
    wanted, remove = parse_request(module)
    if p["state"] == "absent" and p["purge"] and p["env"] is None and not p["names"]:
        remove = None  # every key, resolved below

    client = docker_client(module)
    try:
        services, history, change = read_plan(module, client, wanted, remove)
        if (change["set"] or change["remove"]) and not module.check_mode:
            try:
                # Under the app's lock, so that a deploy or the controller never sees half of the
                # change and two writers never pick the same version numbers; planned again under
                # it, from what another writer may have changed meanwhile.
                with lock.held(client, app, lock.holder("qoddi_env"), p["wait_timeout"]):
                    write(module, client, app, *read_plan(module, client, wanted, remove))
            except lock.Busy as exc:
                module.fail_json(msg=f"qoddi_env {app}: {exc}. Nothing was changed.")
        before = store.current(history)
        result = {"changed": bool(change["set"] or change["remove"]), "app": app,
                  "added": sorted(k for k in change["set"] if k not in before),
                  "updated": sorted(k for k in change["set"] if k in before),
                  "removed": change["remove"]}
        now = time.time()
        due = store.restart_due(history, services)
        if result["changed"]:
            due = store.schedule(history, services, p["restart_delay"], now)
            if not module.check_mode:
                history = store.versions(client, app).get(app, [])
                due = store.restart_due(history, services)
                if services and not client.api.services(filters={"name": CONTROLLER_SERVICE}):
                    module.warn(f"no {CONTROLLER_SERVICE} service runs on this cluster, so nothing will restart "
                                f"{app} when the restart is due; run the qoddi.paas.controller role, or re-run "
                                "qoddi.paas.qoddi_app, which applies pending variables at once.")
        if not services:
            due = None
        keys = sorted((set(store.current(history)) | set(change["set"])) - set(change["remove"]))
        result.update(names=keys, version=store.head(history), restart_due=_iso(due),
                      restart_in=None if due is None else max(0, round(due - now)))
        if module._diff:
            after = masked(store.current(history))
            if module.check_mode:
                after = {k: v for k, v in after.items() if k not in change["remove"]}
                after.update({k: f"{MASK} (new version)" for k in change["set"]})
            result["diff"] = {"before": masked(before), "after": dict(sorted(after.items()))}
        module.exit_json(**result)
    except DockerException as exc:
        module.fail_json(msg=f"qoddi_env {app}: the Docker engine refused an operation: {exc}")


if __name__ == "__main__":
    main()
