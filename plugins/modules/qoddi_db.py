#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_db
short_description: Run a marketplace datastore (Postgres, MySQL, MongoDB, Redis) inside an app's stack
version_added: 0.1.0
description:
  - Runs a datastore as the service O(name) on the private network of O(stack), like Qoddi's
    marketplace apps - the stack's apps reach it by its name on the engine's standard port (5432,
    3306, 27017, 6379); nothing outside the stack can (no published port, no VIP).
  - Makes strong credentials once (Python's C(secrets)) and keeps them as the datastore's own
    environment variables, stored like M(qoddi.paas.qoddi_env) stores an app's - Swarm secrets,
    encrypted at rest. A re-run reads them back and changes nothing.
  - Data lives on the named volume C(qoddi-db-<name>) on the node that first ran the datastore; the
    task is pinned there, so restarts, new images and engine restarts find the data again.
  - O(link_to) sets the connection URL (C(DATABASE_URL), C(REDIS_URL) or C(MONGODB_URL)) as a config
    var of each app named, so a Django app using dj-database-url works without edits; the app restarts
    as after any M(qoddi.paas.qoddi_env) change (or at once with its next M(qoddi.paas.qoddi_app) run).
  - V(backup) writes a consistent dump with the engine's own tools (pg_dump, mariadb-dump/mysqldump,
    mongodump or its stand-in, a Redis RDB snapshot) to a file on the node; V(restore) loads one back.
  - The engines are the marketplace's catalogue (role P(qoddi.paas.marketplace#role), C(vars/main.yml)), which
    this module's action plugin reads on the Ansible controller.
  - Run it on the Swarm manager that holds the datastore (the one that created it).
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff names each setting that changes (as RV(changes) does) with its value before and after; the
        values of credentials and URLs are never shown, only whether they are set and change.
  idempotent:
    support: full
    details: Credentials are made once and never changed by a re-run; V(backup) writes a new file every time.
options:
  name:
    description:
      - The datastore's name, also its host name in the stack. Same rules as app names; it cannot be
        the name of an app.
    type: str
    required: true
  stack:
    description: The stack whose apps reach the datastore.
    type: str
    default: default
  engine:
    description: The engine, from the marketplace's catalogue. Required to create a datastore.
    type: str
  version:
    description:
      - The engine version wanted. The platform provides one per engine and image source (Debian's
        package locally, the official image's tag from a registry); another version is refused.
    type: str
  size:
    description: The plan (CPU and memory), as for apps.
    type: str
    choices: [XS, S, M, L, XL]
    default: S
  state:
    description:
      - V(present) creates or updates the datastore; V(absent) removes it (its volume and credentials
        stay unless O(purge_data), and the same name made again finds them); V(restarted) restarts it;
        V(backup) writes a dump to O(dest); V(restore) dumps the live data first (kept, see RV(safety_backup)),
        then loads the dump O(src) (Postgres in one transaction - a failed restore leaves the data as it was).
    type: str
    choices: [present, absent, restarted, backup, restore]
    default: present
  link_to:
    description:
      - Apps that get the datastore's URL as the config var O(link_var). With O(state=absent), the
        variable is removed from them.
    type: list
    elements: str
    default: []
  link_create:
    description:
      - Link to an app of O(link_to) that has neither services nor variables yet, so that its first build
        and release phase find the URL (as O(qoddi.paas.qoddi_env#module:create) prepares an app's variables).
      - Without it such an app is an error (most likely a typo).
    type: bool
    default: false
  link_var:
    description: The config var that holds the URL (default from the catalogue - DATABASE_URL, REDIS_URL, MONGODB_URL).
    type: str
  rotate_password:
    description:
      - Give the datastore a new password - set in the engine, in the datastore's config vars (a restart)
        and in the URL of every app ever linked to it (which restart as after any config var change).
        Without it, a re-run never changes the password.
    type: bool
    default: false
  restart_delay:
    description: How long after a link changes the linked apps restart (see M(qoddi.paas.qoddi_env)).
    type: int
    default: 60
  purge_data:
    description: With O(state=absent), also delete the data volume and the credentials. There is no undo.
    type: bool
    default: false
  dest:
    description: With O(state=backup), the file to write on the node (made with mode 0600).
    type: path
  src:
    description: With O(state=restore), the dump file on the node to load.
    type: path
  image:
    description: The engine's image; by default the one P(qoddi.paas.images#role) provides (found by its labels).
    type: str
  catalogue:
    description: The marketplace's engines; the action plugin fills it from the marketplace role.
    type: dict
  wait_timeout:
    description: Seconds to wait for the datastore to become ready.
    type: int
    default: 300
notes:
  - The result holds the password and the URL. Their display is hidden whatever the task's C(no_log)
    (the registered result keeps them); a failed result has them masked, its message shown.
  - No password is ever a process argument, in the datastore or in its backups, restores and rotations.
  - A rotation stores the new password before the engine takes it, so that a run that fails after
    that step is finished by the next run (which applies the stored password and updates the links).
  - A datastore whose credentials remain but whose volume is missing on its node is refused, rather than
    started empty.
seealso:
  - module: qoddi.paas.qoddi_env
  - module: qoddi.paas.qoddi_app
"""

EXAMPLES = r"""
- name: A Postgres for the blog, as its DATABASE_URL
  qoddi.paas.qoddi_db:
    name: blog-db
    stack: main
    engine: postgres
    link_to: [blog]
  register: blog_db
  no_log: true

- name: Back it up
  qoddi.paas.qoddi_db:
    name: blog-db
    state: backup
    dest: /var/backups/qoddi/blog-db.dump

- name: A Redis for the blog's cache, as REDIS_URL
  qoddi.paas.qoddi_db:
    name: blog-cache
    stack: main
    engine: redis
    size: XS
    link_to: [blog]
  no_log: true
"""

RETURN = r"""
host:
  description: The datastore's internal host name (its name).
  returned: when the datastore exists
  type: str
  sample: blog-db
port:
  description: The engine's standard port.
  returned: when the datastore exists
  type: int
  sample: 5432
user:
  description: The login.
  returned: when the datastore exists
  type: str
database:
  description: The database made for the stack's apps.
  returned: when the datastore exists
  type: str
password:
  description: The password (sensitive).
  returned: when the datastore exists
  type: str
url:
  description: A ready connection URL (sensitive), e.g. C(postgres://user:pass@blog-db:5432/blog_db).
  returned: when the datastore exists
  type: str
image:
  description: The engine's image.
  returned: with O(state=present)
  type: str
version:
  description: The engine version running.
  returned: when the datastore exists
  type: str
volume:
  description: The data volume.
  returned: always
  type: str
changes:
  description:
    - The settings this run changed (or, in check mode, would change), one name each - V(service) (made or
      removed), V(volume), V(config_vars.<KEY>) (the credentials), V(password) (a rotation),
      V(links.<app>.<VAR>), and each setting of the Swarm service that differs from what runs, such as
      V(image), V(cpus), V(memory_mb), V(labels.<key>), V(secrets.<file>) (a new config vars version),
      V(update.<key>).
    - Empty when nothing changes. The diff (diff mode) gives each one's value before and after, values of
      secrets never shown.
  returned: always
  type: list
  elements: str
  sample: [image, cpus, memory_mb]
links:
  description: The apps linked by this run, with the variable each got.
  returned: always
  type: dict
  sample: {blog: DATABASE_URL}
rotated:
  description: Whether this run gave the datastore a new password.
  returned: when O(rotate_password) was set
  type: bool
backup:
  description: The dump written (path, size in bytes, sha256).
  returned: with O(state=backup)
  type: dict
safety_backup:
  description:
    - The dump of the live data that a restore replaced (path, size in bytes, sha256), taken just before
      the restore, written beside O(src) as C(<name>-before-restore-<UTC time>.dump) and kept. Restore it to undo.
  returned: with O(state=restore), when the restore ran
  type: dict
  sample: {path: /var/backups/blog-db-before-restore-20260101T120000Z.dump, size: 1234, sha256: 9f86d0...}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _datastore as ds
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _env as env
from ansible_collections.qoddi.paas.plugins.module_utils import _lock as lock
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label


class Datastore:
    """One datastore: what runs, what is wanted, what differs, and the steps that make it so.

    Each state's method decides each step from what it read, records what the step changes (a
    swarm.Difference naming the setting), and carries the step out unless in check mode; ``run``
    returns the result, and main() exits once. A failure raises ds.DatastoreError, caught in main().
    """

    def __init__(self, module: AnsibleModule, client):
        self.module = module
        self.p = module.params
        self.name = self.p["name"]
        self.client = client
        self.check_mode = module.check_mode
        self.secrets: set[str] = set()
        self.password_changed = False  # this run gave the engine a new password: the links restart at once
        self.changes: list[swarm.Difference] = []
        self.result = {"changed": False, "name": self.name, "volume": ds.volume_name(self.name), "links": {}}
        self.current = None
        self.engine = None
        self.spec = None
        self._own_node = ""

    def run(self) -> dict:
        """Read what runs, carry out the state's steps, and return the result."""
        self.inspect()
        self.require_node()
        {"present": self.present, "absent": self.absent, "restarted": self.restarted,
         "backup": self.backup, "restore": self.restore}[self.p["state"]]()
        self.result.update(changed=bool(self.changes), changes=swarm.changed_settings(self.changes))
        if self.module._diff:
            self.result["diff"] = swarm.as_diff(self.changes)
        return self.result

    def change(self, setting: str, before, after) -> None:
        """Record one change this run makes (or, in check mode, would make)."""
        self.changes.append(swarm.Difference(setting, before, after))

    def inspect(self) -> None:
        self.current = self._current()
        labels = (self.current or {}).get("Spec", {}).get("Labels") or {}
        self.engine = self.p["engine"] or labels.get(Label.DATASTORE)
        catalogue = self.p["catalogue"] or {}
        if self.engine and self.engine not in catalogue:
            self.fail(f"unknown engine '{self.engine}'; the marketplace offers {', '.join(sorted(catalogue))}.")
        if self.current and labels.get(Label.DATASTORE) not in (None, self.engine):
            self.fail(f"is a {labels[Label.DATASTORE]} datastore, not {self.engine}; remove it first "
                      "(state: absent) or pick another name.")
        self.spec = catalogue.get(self.engine) if self.engine else None

    def require_node(self) -> None:
        """A datastore runs only on the node that holds its volume. When that node is gone, down or
        drained, say so instead of waiting for a task that cannot start; removing it stays possible,
        and so does dropping its credentials once the node has left the Swarm for good, not its data,
        which only that node's engine can delete."""
        if not self.current:
            return
        node_id = (self.current["Spec"].get("Labels") or {}).get(Label.NODE, "")
        # Removing it without its data goes the same way whatever its node's state: nothing to ask.
        matters = self.p["state"] != "absent" or self.p["purge_data"]
        why = self.node_unavailable(node_id) if node_id and matters else ""
        volume = ds.volume_name(self.name)
        gone = why.endswith("no longer in the Swarm")
        if why and self.p["state"] != "absent":
            self.fail(f"{why}, and its data (the volume {volume}) is there: a datastore runs only beside its "
                      "data, so it is stopped until that node is back, when it starts again by itself. Bring the "
                      "node back; if it is lost for good, remove it from the Swarm (docker node rm), then make the "
                      "datastore anew from a backup: state: absent with purge_data: true (its credentials go; "
                      "the lost node's data is not reached), then state: present and state: restore. "
                      "Nothing was changed.")
        local = node_id == self.own_node()
        if self.p["state"] == "absent" and self.p["purge_data"] and not local and not gone:
            where = f": {why}" if why else f" ({node_id})"
            self.fail(f"purge_data deletes the volume {volume}, which is on another node{where}; an engine "
                      "deletes only its own volumes: run this task on that node (delegate_to), or "
                      "remove the datastore without purge_data and delete the volume there later "
                      f"(docker volume rm {volume}). Nothing was changed.")
        if self.p["state"] == "absent" and self.p["purge_data"] and gone:
            self.module.warn(f"qoddi_db {self.name}: {why}: its credentials are removed, and its data (the volume "
                             f"{volume}) stays on that node if it ever comes back.")

    def node_unavailable(self, node_id: str) -> str:
        """ds.node_unavailable, asked again for a while when the node is down or unknown: an engine
        that just restarted (the engine role, a reboot) is such for a few seconds before it is ready."""
        deadline = time.monotonic() + min(30, self.p["wait_timeout"])
        while True:
            why = ds.node_unavailable(self.client.api.nodes(), node_id)
            if not why or why.endswith(("no longer in the Swarm", "drained")) or time.monotonic() > deadline:
                return why
            time.sleep(1)

    def fail(self, msg: str, **extra):
        raise ds.DatastoreError(f"qoddi_db {self.name}: {msg}", **extra)

    def keep_secret(self, password: str) -> None:
        """Remember a password this run has seen, to mask it (as is and as the URL escapes it) on failure."""
        self.secrets.update({password, ds.quote(password)} - {""})

    def _current(self) -> dict | None:
        # An app's services carry its name in org.qoddi.app (the web process is named <app>, the others
        # <app>-<process>, a release job its own way): the name is the app's even with no service of
        # that exact name, and a datastore of that name would share its config vars.
        for service in self.client.api.services(filters={"label": f"{Label.APP}={self.name}"}):
            if Label.DATASTORE not in (service["Spec"].get("Labels") or {}):
                self.fail(f"the name belongs to the app {self.name} (its service {service['Spec']['Name']}); a "
                          "datastore cannot take an app's name: pick another name. Nothing was changed.")
        for service in self.client.api.services(filters={"name": self.name}):
            if service["Spec"]["Name"] != self.name:
                continue
            labels = service["Spec"].get("Labels") or {}
            if Label.DATASTORE not in labels:
                self.fail("this name is already used by an app (or another service); pick another name.")
            return service
        return None

    # ----- facts ----------------------------------------------------------------------------
    def image(self) -> tuple[str, str]:
        """(image reference, source: local or registry)."""
        if self.p["image"]:
            ref = self.p["image"]
            try:
                labels = self.client.api.inspect_image(ref)["Config"].get("Labels") or {}
            except DockerException:
                self.fail(f"the image {ref} is not on this engine; pull or build it first.")
        else:
            # One call: the list's summaries carry each image's tags and labels (images.list would
            # inspect every image it finds, then the chosen one again).
            summaries = self.client.api.images(filters={"label": f"{Label.IMAGE}={self.spec['image']}"})
            found = [(image, [tag for tag in image.get("RepoTags") or [] if tag != "<none>:<none>"])
                     for image in summaries]
            found = sorted(((image, tags) for image, tags in found if tags), key=lambda it: it[0]["Created"],
                           reverse=True)
            if not found:
                self.fail(f"no {self.spec['image']} image on this engine. Run the qoddi.paas.images role with "
                          f"{self.spec['image']} in qoddi_images_wanted (the default), or give image.")
            ref, labels = found[0][1][0], found[0][0].get("Labels") or {}
        return ref, ("local" if labels.get(Label.SOURCE) == "local" else "registry")

    def node_id(self) -> str:
        labels = (self.current or {}).get("Spec", {}).get("Labels") or {}
        return labels.get(Label.NODE) or self.own_node()

    def own_node(self) -> str:
        """The id of the node this runs on (asked once)."""
        if not self._own_node:
            self._own_node = self.client.info()["Swarm"]["NodeID"]
        return self._own_node

    def credentials(self, history, image: str) -> dict | None:
        """Read the credentials back from the datastore's own config vars (None in check mode before creation)."""
        if not env.current(history):
            return None
        values = env.read_values(self.client, history, image, self.node_id(),
                                 [self.current] if self.current else [], start_reader=not self.module.check_mode)
        if values is None:
            return None  # check mode, nothing running to read from: the prediction goes without them
        found = ds.credentials_of(self.spec, values)
        if found is not None:
            self.keep_secret(found["password"])
        if found is None:
            self.fail("its config vars hold no password; remove it (state: absent, the volume stays) and create it "
                      "again, or set the password with qoddi.paas.qoddi_env.")
        return found

    def describe(self, credentials: dict | None, version: str) -> None:
        self.result.update(host=self.name, port=self.spec["port"], version=version, engine=self.engine)
        if credentials:
            self.result.update(user=credentials["user"], database=credentials["database"],
                               password=credentials["password"], url=ds.url(self.spec, self.name, credentials))

    # ----- states ---------------------------------------------------------------------------
    def present(self):
        if not self.spec:
            self.fail("give engine to create a datastore (postgres, mysql, mongodb or redis).")
        image, source = self.image()
        version = str(ds.per_source(self.spec["versions"], source))
        if self.p["version"] and str(self.p["version"]) != version:
            self.fail(f"version {self.p['version']} is not offered: this platform provides {self.engine} {version} "
                      f"(from its {source} images). Leave version out, or change qoddi_image_source.")
        history = env.versions(self.client, self.name).get(self.name, [])
        self._require_volume(history)
        # A datastore removed without purge_data left its credentials with its volume: read back below.
        credentials = self.credentials(history, image)
        known = credentials is not None
        if credentials is None and env.current(history):
            credentials = ds.new_credentials(self.name)  # check mode only: stands in, never written or returned
        elif credentials is None:
            volume = ds.volume_name(self.name)
            if ds.volume_exists(self.client, self.name):
                # New credentials would not open the old data (the engine keeps the users it has).
                self.fail(f"the volume {volume} holds the data of an earlier datastore of this name, whose "
                          "credentials are gone (a Swarm made again?). Give them back as its config vars "
                          "(qoddi.paas.qoddi_env with create: true, the engine's variables, e.g. POSTGRES_PASSWORD), "
                          f"or delete the data (docker volume rm {volume}). Nothing was changed.")
            credentials = ds.new_credentials(self.name)
            self.change("volume", None, volume)
            if not self.module.check_mode:
                # The volume before the credentials: from now on, credentials without a volume mean
                # lost data (see _require_volume), never a first run cut short.
                self.client.api.create_volume(volume, labels={Label.DATASTORE: self.name})
        # Step: the datastore's own config vars (its credentials), stored before the service mounts them.
        change = env.plan(history, ds.environment(self.spec, credentials), [], purge=False)
        stored = env.current(history)
        for key in sorted(change["set"]):
            self.change(f"config_vars.{key}", swarm.A_VALUE if key in stored else None,
                        swarm.ANOTHER_VALUE if key in stored else swarm.A_VALUE)
        if change["set"] and not self.module.check_mode:
            env.write(self.client, self.name, history, change, time.time(), [self.current] if self.current else [])
            history = env.versions(self.client, self.name).get(self.name, [])
        links = self.links()
        if known and self.current is not None and not change["set"] and not self.module.check_mode:
            self._finish_rotation(history, credentials, source)
        # Step: the service, setting by setting.
        desired = ds.desired_service(self.name, self.p["stack"], self.engine, self.spec, image, source,
                                     self.p["size"], self.node_id(), history, links)
        found = swarm.differences(swarm.observe(self.client, self.current) if self.current else None, desired)
        self.changes += found
        service_id = self.current["ID"] if self.current else None
        if found and not self.module.check_mode:
            service_id = self.apply(desired)
        elif not self.module.check_mode:
            self.ready(service_id)
        # Step: a new password.
        if self.p["rotate_password"] and self.current is not None:
            self.change("password", swarm.A_VALUE, swarm.ANOTHER_VALUE)
            if not self.module.check_mode:
                credentials = self.rotate(service_id, credentials, image, source, links)
        self.result["image"] = image
        self.describe(credentials if known or not self.module.check_mode else None, version)
        # Step: the linked apps' URL variables.
        self.link(self.result.get("url"), links)

    def links(self) -> dict[str, str]:
        """The apps that hold this datastore's URL: those linked before, and this run's link_to."""
        labels = (self.current or {}).get("Spec", {}).get("Labels") or {}
        known = ds.parse_links(labels.get(Label.LINKS, ""))
        return dict(known, **{app: self.link_var() for app in self.p["link_to"]})

    def link_var(self) -> str:
        return self.p["link_var"] or self.spec["link_var"]

    def apply(self, desired: swarm.ServiceSpec) -> str:
        warning = deploy.ensure_network(self.client, conventions.network_name(self.p["stack"]))
        if warning:
            self.module.warn(warning)
        # Inspected again: a rotation's or a config vars' write since may have moved its version on.
        current = self.client.api.inspect_service(self.current["ID"]) if self.current else None
        service_id = swarm.apply(self.client, desired, current)
        if current is not None:
            # The old task must be gone before the new one counts as ready.
            self._wait_updated(service_id)
        self.ready(service_id)
        return service_id

    def rotate(self, service_id: str, credentials: dict, image: str, source: str, links: dict) -> dict:
        """A new password: stored first (the datastore's config vars, not yet applied), then set in the
        engine (by the running task, which logs in with the old one), then applied to the datastore (a
        restart) and to every linked app's URL. A refusal by the engine takes the stored value back.

        Stored before the engine step, so that whatever fails after it, the stored password is the one
        the engine has: the next run applies it (see _finish_rotation) and updates the links."""
        if "rotate" not in self.spec:
            self.fail(f"the catalogue has no rotate command for {self.engine}.")
        new = ds.new_password()
        self.keep_secret(new)
        credentials = dict(credentials, password=new)
        before = env.versions(self.client, self.name).get(self.name, [])
        change = env.plan(before, ds.environment(self.spec, credentials), [], purge=False)
        env.write(self.client, self.name, before, change, time.time(), [self.current])
        code, errors = self._engine_password(service_id, new, source)
        if code != 0:
            known = {version.id for version in before}
            for version in env.versions(self.client, self.name).get(self.name, []):
                if version.id not in known:  # this run's, mounted by no task yet
                    self.client.api.remove_secret(version.id)
            self.fail(f"the engine refused the new password (exit {code}: {errors.decode(errors='replace')[-300:]}); "
                      "nothing was changed.")
        self.password_changed = True
        # For tests only (tests/integration/targets/qoddi_db_safety): a failure at the worst moment,
        # after the engine took the new password and before anything else knows it.
        if os.environ.get("QODDI_DB_TEST_FAIL_AFTER_ENGINE_STEP"):
            self.fail("QODDI_DB_TEST_FAIL_AFTER_ENGINE_STEP is set: failing after the engine step, as the tests ask.")
        history = env.versions(self.client, self.name).get(self.name, [])
        self.apply(ds.desired_service(self.name, self.p["stack"], self.engine, self.spec, image, source,
                                      self.p["size"], self.node_id(), history, links))
        self.result["rotated"] = True
        return credentials

    def _engine_password(self, service_id: str, password: str, source: str, login: str | None = None):
        """Set ``password`` in the engine, from the running task: logged in with the password the task
        started with, or with ``login`` (the engine's variables holding the password set to it).
        Both travel in the exec's environment, never as arguments. Returns (exit code, stderr)."""
        command = ds.per_source(self.spec["rotate"], source)
        environment = {"QODDI_NEW_PASSWORD": password}
        if login is not None:
            keys = [key for key, template in self.spec["env"].items() if template == "{password}"]
            command = "".join(f'export {key}="$QODDI_LOGIN_PASSWORD"; ' for key in keys) + command
            environment["QODDI_LOGIN_PASSWORD"] = login
        return ds.run(self.client, self.ready(service_id), command, environment=environment)

    def _finish_rotation(self, history, credentials: dict, source: str) -> None:
        """Stored config vars that the running task does not have yet may hold a new password that the
        engine never got (a rotation cut short): give the engine the stored one before the restart
        that applies it. Setting the password the engine already has changes nothing, so this runs
        whenever the stored variables are ahead of the task."""
        if "rotate" not in self.spec or env.applied_seq(self.current) >= env.head(history):
            return
        container = self.ready(self.current["ID"])
        if not container:
            return  # on another node: nothing to run it in from here
        code, errors = self._engine_password(self.current["ID"], credentials["password"], source)
        if code != 0:
            # The task's password no longer logs in: the engine took the stored one before the run that
            # stored it failed. Logging in with the stored one proves it (and sets it again: a no-op).
            code, errors = self._engine_password(self.current["ID"], credentials["password"], source,
                                                 login=credentials["password"])
        if code != 0:
            self.fail(f"the stored password is not the engine's, and the engine refused it (exit {code}: "
                      f"{errors.decode(errors='replace')[-300:]}). Nothing was changed.")
        self.password_changed = True

    def _require_volume(self, history) -> None:
        """Credentials without their volume: the data is lost (a volume deleted, a disk replaced), and
        the engine would start empty with the old users made again, as if nothing had happened."""
        if not env.current(history) or self.node_id() != self.own_node():
            return  # a new datastore, or one on another node, whose volumes this engine cannot see
        if ds.volume_exists(self.client, self.name):
            return
        volume = ds.volume_name(self.name)
        self.fail(f"its data volume {volume} is missing on node {self.client.info()['Name']} "
                  f"({self.node_id()}) while its credentials remain: it would start empty. Bring the volume "
                  f"back (or create {volume} and restore a backup into it with state: restore once it runs), or "
                  "accept the loss: state: absent with purge_data: true, then create it again. Nothing was changed.")

    def _wait_updated(self, service_id: str) -> None:
        try:
            swarm.wait_converged(self.client, service_id, 1, self.p["wait_timeout"])
        except swarm.ServiceError as exc:
            self.fail(f"{exc}. The datastore runs as before.", task_log=exc.log)

    def ready(self, service_id: str) -> str:
        if self.node_id() != self.own_node():
            if self.p["state"] in ("backup", "restore"):
                # Dumps are read and written by `docker exec` in the task, which only its node's engine reaches.
                self.fail(f"state={self.p['state']} runs on the datastore's node ({self.node_id()}), where its "
                          "task is: run this task there (delegate_to). Nothing was changed.")
            return ""  # on another node: Swarm's own health checks decide
        try:
            return ds.local_container(self.client, service_id, self.p["wait_timeout"])
        except ds.DatastoreError as exc:
            self.fail(str(exc))

    def link(self, url: str | None, links: dict[str, str]) -> None:
        """Set (or with state=absent, remove) the URL variable of each linked app; apps linked by an
        earlier run and since removed are passed over. No url outside state=absent: check mode before
        the datastore exists, which can only say that the links would be set."""
        for app, var in sorted(links.items()):
            services = list(deploy.current_services(self.client, app).values())
            history = env.versions(self.client, app).get(app, [])
            if not services and not history and not (self.p["link_create"] and app in self.p["link_to"]):
                if app in self.p["link_to"]:
                    self.fail(f"link_to: there is no app '{app}' (deploy it first, or set link_create: true to "
                              "prepare its variables for its first deploy).")
                continue
            if url is None and self.p["state"] == "present":
                self.change(f"links.{app}.{var}", None, swarm.A_VALUE)  # check mode, before the datastore exists
                self.result["links"][app] = var
                continue
            change = env.plan(history, {var: url} if url else {}, [] if url else [var], purge=False)
            if app in self.p["link_to"]:
                self.result["links"][app] = var
            if change["set"] or change["remove"]:
                had = var in env.current(history)
                self.change(f"links.{app}.{var}", swarm.A_VALUE if had else None,
                            None if not url else swarm.ANOTHER_VALUE if had else swarm.A_VALUE)
                self.result["links"][app] = var
                if not self.module.check_mode:
                    self.write_link(app, var, url)

    def write_link(self, app: str, var: str, url: str | None) -> None:
        """Write an app's URL variable under the app's lock (one change of an app at a time, as
        qoddi_app, qoddi_env and the controller take it), planned again from what is there then."""
        try:
            who = lock.holder(f"qoddi_db linking {self.p['name']}")
            with lock.held(self.client, app, who, self.p["wait_timeout"]):
                services = list(deploy.current_services(self.client, app).values())
                history = env.versions(self.client, app).get(app, [])
                change = env.plan(history, {var: url} if url else {}, [] if url else [var], purge=False)
                if change["set"] or change["remove"]:
                    # After a rotation the old URL no longer logs in: the apps restart now, not later.
                    delay = 0 if self.password_changed else self.p["restart_delay"]
                    env.write(self.client, app, history, change,
                              env.schedule(history, services, delay, time.time()), services)
        except lock.Busy as exc:
            self.fail(f"link_to: {exc}. The datastore itself is in place; run the task again to link it.")

    def absent(self):
        history = env.versions(self.client, self.name).get(self.name, [])
        # Its volume is on its node: one of the same name here is not its (require_node said why).
        elsewhere = self.current is not None and self.node_id() != self.own_node()
        volume_exists = not elsewhere and ds.volume_exists(self.client, self.name)
        if self.spec and self.p["link_to"]:
            self.link(None, {app: self.link_var() for app in self.p["link_to"]})
        if self.current:
            self.change("service", self.name, None)
        if self.p["purge_data"]:
            for key in sorted(env.current(history)):
                self.change(f"config_vars.{key}", swarm.A_VALUE, None)
            if volume_exists:
                self.change("volume", ds.volume_name(self.name), None)
        if self.module.check_mode or not (self.current or (self.p["purge_data"] and (history or volume_exists))):
            return
        if self.current:
            self.client.api.remove_service(self.current["ID"])
        if self.p["purge_data"]:
            # The credentials belong with the data: kept with the volume, so that the datastore made
            # again later opens it with the users it holds.
            for version in history:
                self._retry(lambda v=version: self.client.api.remove_secret(v.id))
            if volume_exists:
                # The task's container must be gone before its volume can go.
                self._retry(lambda: self.client.api.remove_volume(ds.volume_name(self.name)))

    def _retry(self, action, seconds: int = 60):
        deadline = time.monotonic() + seconds
        while True:
            try:
                return action()
            except DockerException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _require(self):
        if not self.current:
            self.fail("there is no such datastore; create it with state=present first.")

    def restarted(self):
        self._require()
        self.change("tasks", "running", "restarted")
        if not self.module.check_mode:
            swarm.restart(self.client, self.current)
            self._wait_updated(self.current["ID"])
            self.ready(self.current["ID"])

    def backup(self):
        self._require()
        if not self.p["dest"]:
            self.fail("state=backup needs dest, the file to write on this node.")
        unused_image, source = self.image()
        self.change("backup", None, self.p["dest"])
        if not self.module.check_mode:
            container = self.ready(self.current["ID"])
            try:
                self.result["backup"] = ds.backup(self.client, container, ds.per_source(self.spec["backup"], source),
                                                  self.p["dest"])
            except (ds.DatastoreError, OSError) as exc:
                self.fail(f"{exc}. The datastore is unchanged.")

    def restore(self):
        self._require()
        if not self.p["src"]:
            self.fail("state=restore needs src, the dump file on this node.")
        if not os.path.isfile(self.p["src"]):
            self.fail(f"src: there is no file {self.p['src']} on this node. Nothing was changed.")
        unused_image, source = self.image()
        self.change("data", "(live data, kept as safety_backup)", self.p["src"])
        if not self.module.check_mode:
            container = self.ready(self.current["ID"])
            # A restore replaces the live data: dump it first, beside src, and keep that dump.
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            folder = os.path.dirname(os.path.abspath(self.p["src"]))
            safety = os.path.join(folder, f"{self.name}-before-restore-{stamp}.dump")
            count = 1
            while os.path.exists(safety):  # never over an earlier one, nor over src itself
                count += 1
                safety = os.path.join(folder, f"{self.name}-before-restore-{stamp}-{count}.dump")
            try:
                self.result["safety_backup"] = ds.backup(self.client, container,
                                                         ds.per_source(self.spec["backup"], source), safety)
            except (ds.DatastoreError, OSError) as exc:
                self.fail(f"the dump of the live data before the restore failed: {exc}. Nothing was changed.")
            try:
                ds.restore(self.client, container, ds.per_source(self.spec["restore"], source), self.p["src"])
            except (ds.DatastoreError, OSError) as exc:
                self.fail(f"{exc}. The data before the restore is in {safety}.")
            self.ready(self.current["ID"])


def main():
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            name=dict(type="str", required=True),
            stack=dict(type="str", default="default"),
            engine=dict(type="str"),
            version=dict(type="str"),
            size=dict(type="str", default="S", choices=sorted(conventions.SIZES)),
            state=dict(type="str", default="present", choices=["present", "absent", "restarted", "backup", "restore"]),
            link_to=dict(type="list", elements="str", default=[]),
            link_create=dict(type="bool", default=False),
            link_var=dict(type="str"),
            rotate_password=dict(type="bool", default=False, no_log=False),
            restart_delay=dict(type="int", default=60),
            purge_data=dict(type="bool", default=False),
            dest=dict(type="path"),
            src=dict(type="path"),
            image=dict(type="str"),
            catalogue=dict(type="dict"),
            wait_timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for option in ("name", "stack"):
        if not conventions.name_ok(p[option]):
            module.fail_json(msg=f"qoddi_db: '{p[option]}' is not a valid {option} (lower-case letters, digits and "
                                 "single hyphens, starting with a letter, at most 30 characters).")
    if p["link_var"] and env.check_key(p["link_var"]):
        module.fail_json(msg=f"qoddi_db: link_var: {env.check_key(p['link_var'])}.")
    store = Datastore(module, docker_client(module))
    try:
        result = store.run()
    except (ds.DatastoreError, DockerException) as exc:
        message = str(exc) if isinstance(exc, ds.DatastoreError) else \
            f"qoddi_db {p['name']}: the Docker engine refused an operation: {exc}"
        # Whatever the caller's no_log: a failed result is printed, and may hold the credentials read
        # so far (in password and url, or in an engine's error text). Ansible masks these values.
        module.no_log_values.update(store.secrets)
        module.fail_json(msg=message, **{**store.result, "changes": swarm.changed_settings(store.changes),
                                         **getattr(exc, "extra", {})})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
