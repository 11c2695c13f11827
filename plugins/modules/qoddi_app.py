#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_app
short_description: Build a Python/Django app from its source and run it on the Swarm
version_added: 0.1.0
description:
  - Fetches an app's code from a Git repository over SSH (with a deploy key the platform makes for
    the app) or from a directory on the node, builds it like Heroku's Python buildpack (Procfile,
    requirements.txt, .python-version, collectstatic), runs the Procfile's C(release) command and
    runs every other process type as a Swarm service.
  - The web process is the service O(name) on the stack network C(qoddi-<stack>), listening on
    port 5000 (C($PORT)); other apps of the stack reach it as C(http://<name>:5000). Other process
    types run as C(<name>--<type>).
  - Updates start new tasks before stopping old ones and roll back by themselves when the new tasks
    do not serve; a failed build or release changes nothing that runs. There is no Docker health
    check (it would run C(docker exec) at every interval in every task); each web task probes its own
    O(health_check_path) and says in its log when it answers; a web service that serves is first
    joined by a surge service C(<name>--next) with the new release, and updated only once that one's
    tasks answer, so a release that never answers (within 60 s) or dies is rolled back while the
    previous release serves on. Every process moves
    to the new release or none does - when one process does not become healthy, the others go
    back to the previous release, whose image is kept - and the services of process types the
    new Procfile dropped are removed only once all the others are healthy.
  - Changes of one app take turns (a lock in the cluster, the Swarm config C(qoddi-lock-<name>)),
    with other runs of this module, M(qoddi.paas.qoddi_env) and the platform's controller; a run
    that finds the app being changed waits up to O(wait_timeout) seconds, then fails saying who
    changes it since when, and changes nothing. A deploy with nothing to change (from O(source.path)
    or a O(rollback) to the running release) decides so without the lock, and does not wait for it.
  - A datastore's name (M(qoddi.paas.qoddi_db)) is refused in every state, and nothing changes.
  - The app's config vars (set with M(qoddi.paas.qoddi_env)) are environment variables of every
    process, of the release command and of the build steps (collectstatic, C(bin/post_compile)). The
    build hooks run after the image is built, in a container that alone gets the values, so that no
    image, layer or build cache holds them. They run in the runtime image as the app's user, so they can
    write under C(/app) but not into the virtualenv, and have no compilers (what must be compiled
    belongs in C(requirements.txt)). When nothing collectstatic reads has changed since a kept release (its
    settings, static files and every other file it opened, the names of the source's files, the dependencies,
    the config vars), its output is taken from that release and the hooks do not run (never with C(bin/post_compile)).
  - Run it on a Swarm manager. The cluster is the record of what is deployed (service and image
    labels C(org.qoddi.*)); the node keeps only the app's deploy key and Git cache under O(state_dir).
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
attributes:
  check_mode:
    support: full
    details: Fetches the source to tell whether it changed, then reports what a deploy would do.
  diff_mode:
    support: full
  idempotent:
    support: full
    details: The same revision and settings deploy nothing; no image is rebuilt.
options:
  name:
    description:
      - The app's name; also its internal host name in the stack.
      - Lower-case letters, digits and single hyphens, starting with a letter, at most 30 characters.
    type: str
    required: true
  stack:
    description: The stack (private network) the app joins; apps of a stack reach each other on any port.
    type: str
    default: default
  state:
    description:
      - V(present) builds (when the source changed) and deploys, applying any config var changed with
        M(qoddi.paas.qoddi_env) since the last restart (new variables make a new release, so the
        C(release) command runs first, as on Heroku); V(absent) removes the app's services, images,
        config vars and deploy key; V(restarted) restarts every task without downtime (with the
        current config vars); V(stopped) scales every process to zero.
    type: str
    choices: [present, absent, restarted, stopped]
    default: present
  source:
    description: Where the code comes from. Give O(source.git) or O(source.path).
    type: dict
    suboptions:
      git:
        description:
          - SSH URL of a Git repository (C(git@host:owner/repo.git) or C(ssh://git@host:port/owner/repo.git)).
          - The first run makes the app's deploy key and returns it as RV(deploy_key); register it at the
            Git host (read-only) before the fetch can succeed. Or give a key already registered in
            O(source.deploy_key).
        type: str
      deploy_key:
        description:
          - The private SSH key (ed25519, ECDSA or RSA, unencrypted, OpenSSH or PEM text) to fetch with, for a
            key already registered at the Git host, e.g. from an AWX credential or Ansible Vault. It replaces
            the app's stored deploy key (the task reports a change) and RV(deploy_key) returns its public half.
          - Without it the app keeps the key it has, or gets a new one at its first Git fetch.
          - Never logged nor returned.
        type: str
      ref:
        description: Branch, tag or commit to deploy.
        type: str
        default: main
      host_key:
        description:
          - The Git host's public key (C(ssh-ed25519 AAAA...)), pinned for every fetch.
          - Without it the key seen at the first fetch is recorded and pinned (trust on first use).
        type: str
      path:
        description: A directory on the node (development); its file contents are the revision.
        type: path
  replicas:
    description: Number of tasks of the web process.
    type: int
    default: 1
  processes:
    description: Number of tasks of each other Procfile process type (default 1 each).
    type: dict
    default: {}
  size:
    description:
      - The plan of every task (CPU / memory limit) XS 0.25/256M, S 0.5/512M, M 1/1G, L 2/2G, XL 4/4G.
      - A size that no active node of the cluster can hold is refused before anything changes, naming the
        sizes that fit.
    type: str
    choices: [XS, S, M, L, XL]
    default: S
  python_version:
    description:
      - Python version when the app names none in C(.python-version) or C(runtime.txt).
      - Without it, the version of the app's previous build, else the platform's default (the newest
        version the platform can build, or C(qoddi_images_python_default)), as on Heroku.
    type: str
  python_images:
    description:
      - How the platform provides each Python version (the C(qoddi.paas.images) role's recipes and settings).
        The action plugin fills it from that role and the inventory; playbooks do not set it.
      - A version the app asks for whose images are missing is provided at its first build, once
        (pulled, or built from Debian packages), with its time in RV(python_image).
    type: dict
  domains:
    description:
      - Custom domains the edge routes to the web process, besides the platform's default domain
        C(<name>.<platform domain>). Each gets its own certificate.
      - A domain another app already serves (one of its custom domains, or its default domain) is refused,
        naming that app, and nothing changes.
    type: list
    elements: str
    default: []
  platform_domain:
    description:
      - The platform's domain (C(qoddi_domain)). Every app's default domain is C(<name>.<platform domain>),
        which no other app may take as a custom domain. The action plugin fills it from C(qoddi_domain)
        (the C(qoddi.paas.haproxy) role's default when unset); playbooks do not set it.
      - Empty skips the check against default domains.
    type: str
    default: ""
  health_check_path:
    description:
      - Path the platform requests on the web process to call a task ready (any answer below 500) and, every
        15 s, alive (3 failures in a row restart the task); empty disables the check, and a new task then
        counts once it ran 5 s.
      - "At most 256 characters, starting with C(/), of letters, digits and C(/ . _ ~ - ! * + , ; = : @ % ? &)
        (no spaces, quotes or control characters; percent-encode others). The edge writes it into its configuration."
    type: str
    default: /
  boot_timeout:
    description:
      - Seconds a new web task has to answer on O(health_check_path) before the deploy fails and is rolled
        back (Heroku's boot timeout). Raise it for an app that loads a lot before it listens.
      - From 1 to 3600; O(wait_timeout) still bounds the whole wait. Without a health check path, a new
        task counts once it ran 5 s, and this does not apply.
    type: int
    default: 60
  backend_tls:
    description:
      - TLS between the edge and the web tasks, for clusters whose nodes cannot encrypt the overlay
        networks (a kernel without IPsec ESP; the C(qoddi.paas.swarm) role labels such nodes C(qoddi.esp=no) and
        stack networks are then made plain, with a warning). The app gets a key and a self-signed certificate of its
        own (EC P-256, ten years, a new pair at a deploy once less than a year is left); the edge pins that certificate
        and verifies every task against it.
      - In each web task a small TLS terminator (the image's own C(python3), standard library only) listens on port
        5000, where the edge connects, and passes connections to the app, which then listens on C($PORT=5001). So any
        web server that honours C($PORT) works, as without it. Other apps of the stack reach it over TLS on 5000
        (RV(internal_url), pinning RV(backend_certificate)) or plainly on 5001.
      - The key reaches the tasks as a Swarm secret (C(/run/secrets/qoddi-backend-tls.pem), readable by the app's user
        only); it is in no image, service spec, log or result. Turning it off removes the key.
    type: bool
    default: false
  registry:
    description:
      - Address (C(host:port)) of the cluster's own registry (C(qoddi_images_registry) of the C(qoddi.paas.images)
        role, which the action plugin passes). The release image is pushed there once (a re-run pushes nothing),
        and the services and the release command run its copy by digest, so a task runs the same bits on any
        node; the release images kept on this node stay the record of releases (O(rollback)).
      - Empty runs the image built on this node, which other nodes do not have (a cluster of one node).
    type: str
    default: ""
  keep_releases:
    description: Release images kept for O(rollback).
    type: int
    default: 5
  rollback:
    description: Redeploy this earlier release (its image, with the current settings) instead of building.
    type: int
  build:
    description:
      - Options for builds behind proxies. Each defaults to the platform-wide setting of the inventory
        (C(qoddi_build_ca_bundle), C(qoddi_build_pip_index_url)), which the action plugin reads.
    type: dict
    default: {}
    suboptions:
      ca_bundle:
        description: A CA bundle file on the node that pip inside the build trusts (TLS-intercepting proxies).
        type: path
      pip_index_url:
        description:
          - A PyPI mirror for the build.
          - Credentials in it (V(https://user:token@host/simple)) stay out of the image, its history and the
            build log; pip then installs the dependencies in a container that alone gets the URL, and the
            result is kept as the image C(qoddi-deps/<name>:<key>) (untagged with the app), reused while the
            requirements are unchanged.
        type: str
  wait_timeout:
    description:
      - Seconds to wait for a build, the release command, or the tasks to serve (a web task that has not
        answered after O(boot_timeout) seconds fails the rollout sooner).
      - Also how long to wait for another run that is changing the app to finish.
    type: int
    default: 600
  state_dir:
    description:
      - Where the node keeps each app's deploy key and Git cache, and the running build's log as it comes
        (C(<state_dir>/<name>/build.log), for C(tail -f)); M(qoddi.paas.qoddi_logs) shows the newest build's
        whole log once it ended (process V(build)).
    type: path
    default: /var/lib/qoddi/apps
notes:
  - The Python images an app builds on come from the C(qoddi.paas.images) role's recipes; a version the
    platform was not set up with is pulled or built at the app's first build (a minute or two, once).
"""

EXAMPLES = r"""
- name: Deploy from a Git repository
  qoddi.paas.qoddi_app:
    name: blog
    source:
      git: git@github.com:example/blog.git
      ref: main
    replicas: 2
    size: M
  register: blog

- name: Show the deploy key to register at the Git host
  ansible.builtin.debug:
    msg: "{{ blog.deploy_key }}"

- name: Deploy from a directory on the manager
  qoddi.paas.qoddi_app:
    name: sample
    source:
      path: /srv/src/sample

- name: Go back to release 3
  qoddi.paas.qoddi_app:
    name: sample
    source:
      path: /srv/src/sample
    rollback: 3
"""

RETURN = r"""
app:
  description: The app's name.
  returned: always
  type: str
internal_url:
  description: How other apps of the stack reach the web process.
  returned: when state is present
  type: str
  sample: http://blog:5000
backend_certificate:
  description: >-
    The certificate the web tasks serve on port 5000 with O(backend_tls) (PEM), which the edge pins; empty without.
  returned: when state is present
  type: str
release:
  description: The release number now deployed (0 when nothing is).
  returned: always
  type: int
revision:
  description: The deployed Git commit, or the digest of a path source.
  returned: when state is present
  type: str
image:
  description: The image of the deployed release.
  returned: when state is present
  type: str
  sample: qoddi-app/blog:r4
image_ref:
  description: The reference the services run, the image's copy in O(registry) by digest (or RV(image) without one).
  returned: when state is present
  type: str
  sample: 10.0.0.2:5000/qoddi-app/blog:r4@sha256:4f1c...
image_id:
  description: The image's ID.
  returned: when state is present
  type: str
built:
  description: Whether this run built a new image.
  returned: always
  type: bool
reason:
  description: Why the app changed (or would change in check mode).
  returned: always
  type: str
  sample: revision 1f3a2b4 -> 9c0d1e2
deploy_key:
  description: The app's public SSH deploy key (Git sources).
  returned: when source.git is set
  type: str
services:
  description: Service name of each process type.
  returned: always
  type: dict
  sample: {web: blog, worker: blog--worker}
releases:
  description: The releases kept, newest first.
  returned: always
  type: list
  elements: dict
warnings_build:
  description: What the builder noticed (deprecated runtime.txt, missing gunicorn...).
  returned: when a build ran
  type: list
  elements: str
timings:
  description:
    - Seconds each phase of this run took (C(build), C(release), C(rollout)), for the phases that ran.
    - Within C(build), C(build_image) is the image builder's part and C(build_hooks) the build hooks' (or the
      copy of collectstatic's output they were spared); C(read_env) is the reading of the config vars' values,
      for the hooks or the release command.
  returned: always
  type: dict
  sample: {build: 3.1, release: 1.8, rollout: 2.4}
build_cache:
  description:
    - How many steps the build had, and how many the builder reused from its cache. A code-only
      change reuses the dependency layer (C(pip install)), which is what makes it fast.
  returned: when a build ran
  type: dict
  sample: {steps: 25, cached: 9}
python_image:
  description: How this run provided the Python images of a version the engine did not have yet.
  returned: when a build needed a Python the engine lacked
  type: dict
  sample: {version: "3.14", how: built, seconds: 84.2, images: {build: "qoddi/python-build:3.14-0123456789ab",
           run: "qoddi/python:3.14-0123456789ab"}, log: ["bootstrapping qoddi/debian:forky ..."]}
static:
  description:
    - When this build took collectstatic's output from a kept release instead of running the build hooks
      (nothing collectstatic read had changed, nor the dependencies or the config vars), which release and
      which paths.
  returned: when a build reused collectstatic's output
  type: dict
  sample: {reused_from: 4, paths: [/app/staticfiles]}
build_log:
  description: The last lines of the build log.
  returned: when a build ran or failed
  type: list
  elements: str
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.qoddi.paas.plugins.module_utils import _backend_tls as backend_tls
from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _env as env_store
from ansible_collections.qoddi.paas.plugins.module_utils import _labels as label_rules
from ansible_collections.qoddi.paas.plugins.module_utils import _lock as lock
from ansible_collections.qoddi.paas.plugins.module_utils import _python_images as pyimages
from ansible_collections.qoddi.paas.plugins.module_utils import _registry as registry
from ansible_collections.qoddi.paas.plugins.module_utils import _release_log as release_log
from ansible_collections.qoddi.paas.plugins.module_utils import _static as static
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._build import (
    APP_PREFIX,
    BuildError,
    build_image,
    cache_summary,
    context_tar,
    copy_paths,
    run_hooks,
    tail,
)
from ansible_collections.qoddi.paas.plugins.module_utils._buildpack import (
    ENV_SCRIPT,
    INSTALL_SCRIPT,
    BuildpackError,
    dependencies_dockerfile,
    detect,
    dockerfile,
    hooks,
    needs_hooks,
    unavailable,
    without_credentials,
)
from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label
from ansible_collections.qoddi.paas.plugins.module_utils._datastore import volume_exists, volume_name
from ansible_collections.qoddi.paas.plugins.module_utils._source import (
    HAS_CRYPTOGRAPHY,
    SourceError,
    check_git_source,
    copy_tree,
    ensure_deploy_key,
    export_git,
    fetch_git,
    install_deploy_key,
    path_revision,
)

IMAGE_REPO = "qoddi-app"
# The running build's log, in the app's state directory (progress).
BUILD_PROGRESS = "build.log"
# Dependencies installed from an index whose URL holds credentials (App.dependencies), per app.
DEPS_REPO = "qoddi-deps"


def releases(client, app: str) -> list[dict]:
    """The app's release images, newest first."""
    kept = []
    for image in client.images.list(name=f"{IMAGE_REPO}/{app}"):
        labels = image.attrs["Config"].get("Labels") or {}
        if labels.get(Label.APP) != app or not labels.get(Label.RELEASE):
            continue
        kept.append({"release": int(labels[Label.RELEASE]), "revision": labels.get(Label.REVISION, ""),
                     "image": f"{IMAGE_REPO}/{app}:r{labels[Label.RELEASE]}", "image_id": image.id,
                     "processes": labels.get(Label.PROCESSES, ""), "python": labels.get(Label.PYTHON, "")})
    return sorted(kept, key=lambda r: -r["release"])


def domain_clashes(name: str, domains: list[str], platform: str, services: list[dict]) -> list[str]:
    """Why ``name`` may not serve ``domains`` beside the apps whose web ``services`` are given (Engine API).

    Another app serves its custom domains and its default domain <app>.<platform>; this app's own
    default domain must not be another app's custom domain either. The edge cannot route one name to
    two apps: it would stop for every app.
    """
    taken = {}
    for svc in services:
        labels = svc["Spec"].get("Labels") or {}
        other = labels.get(Label.APP)
        if not other or other == name:
            continue
        if platform:
            taken[f"{other}.{platform}"] = f"{other} (its default domain)"
        for domain in filter(None, labels.get(Label.DOMAINS, "").split(",")):
            taken[domain] = other
    problems = []
    clashes = [f"{domain} (served by app {taken[domain]})" for domain in domains if domain in taken]
    if clashes:
        problems.append(f"the domain {', '.join(clashes)} is already taken: remove it from that app first, or "
                        "pick another domain.")
    mine = f"{name}.{platform}"
    if platform and mine in taken:
        problems.append(f"the app's default domain {mine} is a custom domain of app {taken[mine]}: remove it from "
                        "that app's domains first, or give this app another name.")
    return problems


class NeedsChange(Exception):
    """The lock-free look of App.decide found something to change: decide again under the app's lock."""


class App:
    def __init__(self, module: AnsibleModule):
        self.module = module
        self.p = module.params
        self.name = self.p["name"]
        self.client = docker_client(module)
        self.state_dir = os.path.join(self.p["state_dir"], self.name)
        # The app's config vars (qoddi_env): mounted by every process, exported to the build.
        self.variables = env_store.versions(self.client, self.name).get(self.name, [])
        self._values = None  # (version, their values), once read (build_env)
        self.deciding = False
        self.key_installed = False  # this run replaced the app's deploy key with source.deploy_key
        self.on_line = None  # where a build's steps write their log lines as they come (progress)
        self.result = self.fresh_result()

    def fresh_result(self) -> dict:
        return {"changed": False, "app": self.name, "built": False, "reason": "", "release": 0,
                "services": {}, "releases": [], "timings": {}}

    def decide(self) -> None:
        """Decide without the lock whether a deploy changes anything: most runs change nothing, and
        they then end here, unchanged, without the two Raft writes of the lock and without waiting
        for another run that holds it. present() runs as in check mode (it only reads the engine);
        when it would change something, this returns and the caller takes the lock and runs
        present() again under it, reading everything again (another run may have changed the app
        in between), so two runs still never both change the app."""
        self.deciding, self.module.check_mode = True, True
        try:
            self.present()  # nothing to change: exit_json (changed=False) ends the module here
        except NeedsChange:
            pass
        finally:
            self.deciding, self.module.check_mode = False, False
        self.result = self.fresh_result()

    @contextlib.contextmanager
    def timed(self, phase: str):
        """Record how long a phase took in the result's timings (seconds), so a slow deploy shows why."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.result["timings"][phase] = round(time.monotonic() - started, 1)

    def fail(self, msg: str, **extra):
        self.module.fail_json(msg=f"qoddi_app {self.name}: {msg}", **{**self.result, **extra})

    def refuse_datastore(self) -> None:
        """A datastore's name is not an app's: removing "the app" would take the datastore's
        credentials (its config vars, kept under the same name), a deploy its service name."""
        if deploy.datastore_services(self.client, self.name) or volume_exists(self.client, self.name):
            self.fail(f"'{self.name}' is the name of a datastore (qoddi.paas.qoddi_db; its volume is "
                      f"{volume_name(self.name)}), not of an app: nothing was changed. Manage it with "
                      "qoddi.paas.qoddi_db, or give the app another name.")

    # ----- source -------------------------------------------------------------------------------
    def resolve_source(self) -> str:
        src = self.p["source"] or {}
        if bool(src.get("git")) == bool(src.get("path")):
            self.fail("give exactly one of source.git (an SSH Git URL) and source.path (a directory on the node).")
        try:
            if src.get("path"):
                return path_revision(src["path"])
            if not HAS_CRYPTOGRAPHY:
                self.module.fail_json(msg=missing_required_lib("cryptography"))
            if src.get("deploy_key"):
                public_key = self.supplied_deploy_key(src["deploy_key"])
                if public_key is None:
                    return "unknown"
            else:
                if self.module.check_mode and not os.path.exists(os.path.join(self.state_dir, "deploy_key")):
                    self.result["reason"] = "would create the app's deploy key and fetch the source"
                    return "unknown"
                public_key = ensure_deploy_key(self.state_dir, self.name)[0]
            # Known before the fetch, so a fetch refused for the unregistered key still returns it.
            self.result["deploy_key"] = public_key
            return fetch_git(self.module.run_command, self.state_dir, public_key, src["git"], src["ref"],
                             src.get("host_key") or "")
        except SourceError as exc:
            self.fail(str(exc))

    def supplied_deploy_key(self, private_text: str):
        """The public half of the user's key, kept as the app's deploy key (None in check mode when
        it would replace the stored key: the fetch needs the key in place)."""
        public_key, changed = install_deploy_key(self.state_dir, self.name, private_text,
                                                 write=not self.module.check_mode)
        if changed and self.module.check_mode:
            self.result.update(deploy_key=public_key, reason="would install the given deploy key and fetch the source")
            return None
        self.key_installed = changed
        return public_key

    def export(self, revision: str, dest: str) -> None:
        src = self.p["source"]
        try:
            if src.get("path"):
                copy_tree(src["path"], dest)
            else:
                export_git(self.module.run_command, self.state_dir, revision, dest)
        except SourceError as exc:
            self.fail(str(exc))

    # ----- build --------------------------------------------------------------------------------
    def python_for(self, workdir: str):
        """Detect the app in ``workdir``; return its spec and the images of its Python (None when missing)."""
        offer = self.p["python_images"] or {}
        images = pyimages.present(self.client, offer)
        available = sorted(set(images) | set(pyimages.offered(offer)), key=pyimages.version_key)
        if not available:
            self.fail("no Python builder images on this engine. Run the qoddi.paas.images role "
                      "(playbook qoddi.paas.site) first.")
        # Heroku's rule for apps that name no version: the previous build's, else the platform's default.
        previous = next((r["python"] for r in self.result["releases"] if r.get("python")), "")
        if self.p["python_version"]:
            default, origin = self.p["python_version"], "the task's python_version"
        elif previous:
            default, origin = previous, "the app's previous build"
        else:
            default, origin = offer.get("default") or available[-1], "the platform's default"
        try:
            spec = detect(workdir, available, default, elsewhere(offer), origin)
        except BuildpackError as exc:
            self.fail(str(exc))
        return spec, images.get(spec.python_version)

    @contextlib.contextmanager
    def exported(self, revision: str, purpose: str):
        """The source at ``revision`` in a directory of its own, removed afterwards."""
        workdir = tempfile.mkdtemp(prefix=f"qoddi-{purpose}-{self.name}-")
        try:
            self.export(revision, workdir)
            yield workdir
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def preview(self, revision: str) -> None:
        """Check mode: detect the app as a build would, so a refused app fails and a new Python shows."""
        if self.deciding:  # a new revision: the build under the lock detects the app
            raise NeedsChange()
        with self.exported(revision, "check") as workdir:
            spec, pair = self.python_for(workdir)
            if pair is None:
                self.result["python_image"] = {"version": spec.python_version, "how": "to be provided"}

    @contextlib.contextmanager
    def progress(self):
        """The build's log as it comes, line by line, in <state_dir>/build.log (0600, made again at each
        build): ``tail -f`` on the manager, and the progress lines qoddi_app_follow shows while the module
        runs (plugins/action/qoddi_app_follow.py). Yields the function each builder step hands its lines to."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.state_dir, BUILD_PROGRESS)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # never through a link someone left in its place
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            def on_line(line: str) -> None:
                if line.startswith(static.MANIFEST):  # collectstatic's inputs, for the build only
                    return
                handle.write(line + "\n")
                handle.flush()
            yield on_line

    def build(self, revision: str, release: int) -> tuple[str, str, dict[str, str]]:
        with self.exported(revision, "build") as workdir, self.progress() as on_line:
            self.on_line = on_line
            spec, pair = self.python_for(workdir)
            if pair is None:
                pair = self.provide_python(spec)
            self.result["warnings_build"] = list(spec.warnings)
            extra = {".qoddi/env.sh": ENV_SCRIPT.encode()}
            ca_bundle = (self.p["build"] or {}).get("ca_bundle")
            if ca_bundle:
                try:
                    with open(ca_bundle, "rb") as handle:
                        extra[".qoddi/ca-bundle.crt"] = handle.read()
                except OSError as exc:
                    self.fail(f"cannot read the build's CA bundle {ca_bundle} ({exc.strerror}): fix build.ca_bundle, "
                              "or qoddi_build_ca_bundle in the inventory, which sets it for every app.")
            index = (self.p["build"] or {}).get("pip_index_url") or ""
            tag = f"{IMAGE_REPO}/{self.name}:r{release}"
            labels = {Label.APP: self.name, Label.RELEASE: str(release), Label.REVISION: revision,
                      Label.PROCESSES: ",".join(spec.processes),
                      Label.PROCFILE: deploy.procfile_label(spec.processes)}
            # With build hooks, the image is committed under the release's tag only once they succeeded.
            with_hooks = needs_hooks(spec, workdir)
            try:
                deps_image, log = "", []
                if index != without_credentials(index):
                    deps_image, log = self.dependencies(spec, pair["build"], workdir, extra, bool(ca_bundle), index)
                text = dockerfile(spec, pair["build"], pair["run"], ca_bundle=bool(ca_bundle),
                                  pip_index_url="" if deps_image else index, deps_image=deps_image)
                extra[".qoddi/Dockerfile"] = text.encode()
                # With hooks, the release's labels go on the image the hooks commit: the builder would add
                # one step (a container and a commit) per label.
                with self.timed("build_image"):
                    image_id, build_log = build_image(self.client, context_tar(workdir, extra, prefix=APP_PREFIX),
                                                      None if with_hooks else tag, dockerfile=".qoddi/Dockerfile",
                                                      labels=None if with_hooks else labels,
                                                      timeout=self.p["wait_timeout"], on_line=on_line)
                log += build_log
                if with_hooks:
                    with self.timed("build_hooks"):
                        image_id, hooks_log = self.run_hooks(spec, image_id, tag, pair["build"], labels, workdir)
                    log += hooks_log
            except BuildError as exc:
                # The steps before the failing one too (the dependencies' image, the image's own build).
                self.keep_log(release, log + exc.log, False, self.client.info()["Name"], release_log.BUILD_KIND)
                self.fail(f"{exc}. The running release is unchanged. Last lines of the build log (all of it: "
                          f"qoddi.paas.qoddi_logs with processes [build]):\n" + "\n".join(tail(exc.log)),
                          build_log=tail(exc.log))
            # The whole build log, for qoddi_logs (process build) once this run is over.
            self.keep_log(release, log, True, self.client.info()["Name"], release_log.BUILD_KIND)
            self.result["build_log"] = tail(log)
            self.result["build_cache"] = cache_summary(log)
            self.result["built"] = True
            return tag, image_id, spec.processes

    def provide_python(self, spec) -> dict[str, str]:
        """Pull or build the images of a Python the app asks for and this engine lacks (once)."""
        offer, version = self.p["python_images"] or {}, spec.python_version
        with self.timed("python_image"):
            try:
                provided = pyimages.provide(self.client, version, offer, self.module.run_command,
                                            self.module.get_bin_path, self.p["wait_timeout"])
            except pyimages.ProvideError as exc:
                message = str(exc)
                if exc.pull_failed:
                    # Only a registry has this version, and none answered: unavailable here, said as such.
                    local = sorted(set(pyimages.present(self.client)) | set(offer.get("versions") or {}),
                                   key=pyimages.version_key)
                    message = unavailable(version, spec.python_version_source, local,
                                          f"No registry answered for the official python images ({exc}).")
                self.fail(f"{message} The running release is unchanged.",
                          python_image={"version": version, "log": exc.log})
        self.result["python_image"] = provided
        return provided["images"]

    def build_env(self, reader_image: str) -> dict[str, str]:
        """The config vars' values, for the build hooks (collectstatic may read them) and the release
        command run beside a task; read once per run, and only when one of them runs."""
        if not env_store.current(self.variables):
            return {}
        head = env_store.head(self.variables)
        if self._values is not None and self._values[0] == head:
            return self._values[1]
        node = self.client.info()["Swarm"]["NodeID"]
        with self.timed("read_env"):
            try:
                values = env_store.read_values(self.client, self.variables, reader_image, node,
                                               list(deploy.current_services(self.client, self.name).values()))
            except RuntimeError as exc:
                self.fail(f"{exc}. The running release is unchanged.")
        self._values = (head, values)
        return values

    def release(self, current: dict, command: str, image: str, release: int) -> list[str]:
        """Run the release command from ``image`` with the app's current config vars; its log.

        Beside a running task of the app that mounts exactly those variables (its network namespace,
        its values: see deploy.run_release_beside), which starts in a fraction of a second; else (a
        first deploy, new variables, no task on this node) as a Swarm job that mounts them itself.
        """
        network = conventions.network_name(self.p["stack"])
        neighbour = env_store.task_with_current(self.client, self.variables, list(current.values()), network)
        # Its output, failed or not, stays readable by qoddi_logs once the container or job is gone.
        node = "" if neighbour is None else self.client.info()["Name"]
        try:
            if neighbour is None:
                log, node = deploy.run_release(self.client, self.name, self.p["stack"], command, image,
                                               env_store.references(self.variables), release, self.p["wait_timeout"])
            else:
                values = self.build_env(image)
                log = deploy.run_release_beside(self.client, self.name, command, image, release, values, neighbour,
                                                self.p["wait_timeout"])
        except deploy.DeployError as exc:
            self.keep_log(release, exc.log, False, getattr(exc, "node", node))
            raise
        self.keep_log(release, log, True, node)
        return log

    def keep_log(self, release: int, log: list[str], ok: bool, node: str, kind: str = release_log.KIND) -> None:
        """A release command's (or a build's) output, for qoddi_logs once it is gone; only warned about."""
        problem = release_log.keep(self.client, self.name, release, log or [], ok, node, kind)
        if problem:
            self.module.warn(problem)

    def dependencies(self, spec, builder: str, workdir: str, extra: dict, ca_bundle: bool,
                     index: str) -> tuple[str, list[str]]:
        """The dependencies installed from an index whose URL holds credentials: an image, and its log.

        The classic builder would keep the URL in the image config, `docker history` and the build
        log, so pip runs in a container that alone gets it (run_hooks). The image is kept under a
        tag that names what pip read (the files before the install, the index without credentials),
        so a code-only change reuses it as the classic builder's cache would.
        """
        context = {**extra, ".qoddi/Dockerfile": dependencies_dockerfile(spec, builder, ca_bundle=ca_bundle).encode()}
        base, log = build_image(self.client, context_tar(workdir, context, prefix=APP_PREFIX), None,
                                dockerfile=".qoddi/Dockerfile",
                                timeout=self.p["wait_timeout"], on_line=self.on_line)
        repository = f"{DEPS_REPO}/{self.name}"
        key = hashlib.sha256(f"{base}\n{without_credentials(index)}".encode()).hexdigest()[:16]
        image = f"{repository}:{key}"
        if self.client.api.images(name=image, quiet=True):
            return image, log + [f"qoddi: dependencies unchanged, using {image}"]
        try:
            # Labelled as what it is: with the builder's org.qoddi.image, the images found by that label
            # (pyimages.present) would take it for the newest builder of its Python.
            unused, install_log = run_hooks(self.client, base, INSTALL_SCRIPT, {"PIP_INDEX_URL": index}, repository,
                                            key, timeout=self.p["wait_timeout"], what="pip install",
                                            labels={Label.IMAGE: "deps", Label.APP: self.name}, on_line=self.on_line)
        except BuildError as exc:
            raise BuildError(str(exc), log + exc.log) from None
        # The app's earlier dependency images: no build starts from them any more.
        self.forget_dependencies(keep=image)
        return image, log + install_log

    def forget_dependencies(self, keep: str = "") -> None:
        """Untag the app's dependencies images but ``keep``; the build cache above them keeps the layers
        until it goes (by tag: an image with cached children cannot be removed by id)."""
        for found in self.client.api.images(name=f"{DEPS_REPO}/{self.name}"):
            for ref in found.get("RepoTags") or []:
                if ref != keep and ref.startswith(f"{DEPS_REPO}/{self.name}:"):
                    with contextlib.suppress(DockerException):
                        self.client.api.remove_image(ref)

    def run_hooks(self, spec, built: str, tag: str, reader_image: str, labels: dict[str, str],
                  workdir: str) -> tuple[str, list[str]]:
        """collectstatic and bin/post_compile with the config vars, committed as the release's image,
        with ``labels``; or, when nothing collectstatic depends on changed since a kept release (see
        _static), that release's output copied onto the build, without running anything or reading
        any value."""
        repository, unused, release_tag = tag.rpartition(":")
        script = hooks(spec)
        # bin/post_compile may do anything: never reused.
        reuse = spec.django and not os.path.exists(os.path.join(workdir, "bin", "post_compile"))
        base = self.client.api.inspect_image(built)["RootFS"]["Layers"][:-1]  # all but the code's layer
        variables = {key: version.seq for key, version in env_store.current(self.variables).items()}
        try:
            for kept in releases(self.client, self.name) if reuse else []:
                kept_labels = self.client.api.inspect_image(kept["image_id"])["Config"].get("Labels") or {}
                paths = static.reusable(kept_labels, base, script, variables, workdir)
                if paths is not None:
                    names = (static.KEY_LABEL, static.INPUTS_LABEL, static.PATHS_LABEL)
                    carried = {name: kept_labels[name] for name in names}
                    image_id = copy_paths(self.client, built, kept["image"], paths, repository, release_tag,
                                          {**labels, **carried})
                    self.result["static"] = {"reused_from": kept["release"], "paths": paths}
                    return image_id, [f"qoddi: collectstatic's inputs are unchanged since release {kept['release']}: "
                                      f"its output ({', '.join(paths) or 'nothing'}) is reused, collectstatic not run"]

            def finish(log: list[str], changes: list[dict]) -> dict[str, str]:
                inputs, paths = static.take_manifest(log), static.added_paths(changes)
                if not reuse or inputs is None or paths is None:
                    return {}
                return static.labels(static.key(base, script, variables, workdir, inputs), inputs, paths, workdir)

            env = {"PYTHONDONTWRITEBYTECODE": "1", **self.build_env(reader_image)}
            return run_hooks(self.client, built, script, env, repository, release_tag,
                             timeout=self.p["wait_timeout"], labels=labels, finish=finish, on_line=self.on_line)
        except BaseException:
            # The image without the hooks' files has no tag: nothing else would ever remove it.
            with contextlib.suppress(DockerException):
                self.client.api.remove_image(built)
            raise

    # ----- deploy -------------------------------------------------------------------------------
    def desired(self, image: str, release: int, revision: str, processes: dict[str, str],
                tls: tuple[str, dict] | None = None) -> dict[str, dict]:
        wanted = {}
        for process, command in processes.items():
            if process == "release":
                continue
            replicas = self.p["replicas"] if process == "web" else int(self.p["processes"].get(process, 1))
            wanted[process] = deploy.desired_service(
                self.name, self.p["stack"], process, command, image, release, revision, replicas, self.p["size"],
                env={}, health_path=self.p["health_check_path"] or None, domains=self.p["domains"],
                secrets=env_store.references(self.variables), env_seq=env_store.head(self.variables), tls=tls,
                boot_timeout=self.p["boot_timeout"])
        return wanted

    def backend_tls(self, web: dict | None) -> tuple[str, dict] | None:
        """The web process's certificate and key secret with backend_tls (the running pair, or a new one:
        its secret is made only when this run may change things); None without."""
        if not self.p["backend_tls"]:
            return None
        if not HAS_CRYPTOGRAPHY:
            self.fail("backend_tls makes a key and certificate with the Python library cryptography, which this "
                      "node's Python lacks (the qoddi.paas.engine role installs python3-cryptography). Nothing was "
                      "changed.")
        return backend_tls.ensure(self.client, self.name, conventions.service_name(self.name, "web"),
                                  web["Spec"] if web else None, create=not self.module.check_mode)

    def check_domains(self):
        """Refuse a domain that another app already serves, before anything changes (see domain_clashes)."""
        services = self.client.api.services(filters={"label": f"{Label.PROCESS}=web"})
        clashes = domain_clashes(self.name, self.p["domains"], self.p["platform_domain"], services)
        if clashes:
            self.fail(" ".join(clashes))

    def present(self):
        self.check_domains()
        current = deploy.current_services(self.client, self.name)
        cpus = int(deploy.SIZES[self.p["size"]][0] * 1e9)
        if any(((s["Spec"]["TaskTemplate"].get("Resources") or {}).get("Limits") or {}).get("NanoCPUs") != cpus
               for s in current.values()) or not current:
            unfit = deploy.size_unfit(self.client, self.p["size"])  # only when the size changes
            if unfit:
                self.fail(unfit)
        web = current.get("web")
        labels = web["Spec"]["Labels"] if web else {}
        current_release = int(labels.get(Label.RELEASE, 0))
        current_revision = labels.get(Label.REVISION, "")
        history = releases(self.client, self.name)
        self.result["releases"] = history
        before = {"release": current_release, "revision": current_revision,
                  "processes": {p: deploy.replicas_of(s["Spec"]) for p, s in current.items()}}

        if self.p["rollback"] is not None:
            target = next((r for r in history if r["release"] == self.p["rollback"]), None)
            if target is None:
                self.fail(f"release {self.p['rollback']} is not kept; kept releases: "
                          f"{', '.join(str(r['release']) for r in history) or 'none'}.")
            revision, image, release = target["revision"], target["image"], target["release"]
            processes = deploy.processes_of(self.client, image)
            reason = f"rollback to release {release}"
            image_id = target["image_id"]
        else:
            revision = self.resolve_source()
            same = [r for r in history if r["revision"] == revision]
            if revision == current_revision and same:
                release, image, image_id = current_release, same[0]["image"], same[0]["image_id"]
                processes = deploy.processes_of(self.client, image)
                reason = ""
            else:
                release = max([current_release] + [r["release"] for r in history]) + 1
                reason = (f"revision {current_revision[:12] or 'none'} -> {revision[:12]}" if current_revision
                          else f"first deploy of {revision[:12]}")
                if self.module.check_mode:
                    self.result.update(release=release, revision=revision)
                    if revision != "unknown":
                        self.preview(revision)
                    self._finish(before, {"release": release, "revision": revision}, reason, changed=True)
                with self.timed("build"):
                    image, image_id, processes = self.build(revision, release)

        # What the tasks run, on any node: the registry's copy (pushed only once the run may change things).
        run_image = self.published(image)
        # Read again: during a long build the controller may have applied newer versions and removed old ones.
        self.variables = env_store.versions(self.client, self.name).get(self.name, [])
        tls = self.backend_tls(web)
        wanted = self.desired(run_image, release, revision, processes, tls)
        stale = [p for p in current if p not in wanted and not p.startswith("release")]
        to_apply = {p: d for p, d in wanted.items() if p not in current or deploy.differs(current[p], d)}
        self.result.update(release=release, revision=revision, image=image, image_ref=run_image, image_id=image_id,
                           internal_url=f"{'https' if tls else 'http'}://{self.name}:{conventions.WEB_PORT}",
                           backend_certificate=tls[0] if tls else "",
                           services={p: d["name"] for p, d in wanted.items()})
        after = {"release": release, "revision": revision,
                 "processes": {p: d["replicas"] for p, d in wanted.items()}}
        if not to_apply and not stale:
            self._finish(before, after, reason or "", changed=False)
        reason = reason or "settings changed: " + ", ".join(sorted(to_apply) + [f"-{p}" for p in stale])
        if self.module.check_mode:
            self._finish(before, after, reason, changed=True)

        for network in sorted({n for desired in wanted.values() for n in desired["networks"]}):
            warning = deploy.ensure_network(self.client, network)
            if warning:
                self.module.warn(warning)
        running = [svc for process, svc in current.items() if process in wanted]
        if "release" in processes and deploy.release_due(running, env_store.head(self.variables), self.result["built"]):
            try:
                with self.timed("release"):
                    deploy.wait_other_releases(self.client, self.name, self.p["wait_timeout"])
                    self.result["release_log"] = self.release(current, processes["release"], run_image, release)
            except deploy.DeployError as exc:
                # Only an image this run built: without a build, ``image`` is the one the app runs.
                if self.result["built"]:
                    self._forget(image)
                self.fail(str(exc), release_log=exc.log)
        with self.timed("rollout"):
            self.roll_out(current, wanted, to_apply, image)
        # Only now that every process runs the new release: the previous release's leftovers go.
        for process in stale:
            self.client.api.remove_service(current[process]["ID"])
        backend_tls.remove_unused(self.client, self.name, {tls[1]["SecretName"]} if tls else set())
        self._prune()
        self.result["releases"] = releases(self.client, self.name)
        self._finish(before, after, reason, changed=True)

    def published(self, image: str) -> str:
        """``image`` as every node can pull it (registry.publish): pushed only when this run may change
        things (not in check mode, which deciding without the app's lock also is)."""
        try:
            return registry.publish(self.client, image, self.p["registry"], push=not self.module.check_mode)
        except (registry.RegistryError, DockerException) as exc:
            if self.result["built"]:
                self._forget(image)
            self.fail(f"{exc}. Check that the cluster's registry {self.p['registry']} runs (service qoddi-registry, "
                      "the qoddi.paas.images role) and that this node's engine lists it in insecure-registries.")

    def roll_out(self, current: dict, wanted: dict, to_apply: dict, image: str) -> None:
        """Apply every changed process and wait until all serve (deploy.rollout); one that fails puts
        every process back on the previous release (one release for the whole app, as on Heroku)."""
        changes = [(current.get(process), deploy.service_spec(desired)) for process, desired in to_apply.items()]
        try:
            deploy.rollout(self.client, self.name, changes, self.p["wait_timeout"])
        except deploy.DeployError as exc:
            # After the rollback, so that no task of the previous release is left without its image; and
            # only an image this run built (a settings change runs the previous release's image).
            if self.result["built"]:
                self._forget(image)
            self.fail(f"{exc}.", task_log=exc.log)

    def _forget(self, image: str):
        # force: the tag goes even while stopped containers of a rolled-back update still use it. Its
        # registry name too, which would keep the image here. (The registry's copy stays: not collected yet.)
        for ref in dict.fromkeys([registry.registry_ref(image, self.p["registry"]), image]):
            try:
                self.client.images.remove(ref, force=True, noprune=False)
            except DockerException:
                pass

    def _prune(self):
        for old in releases(self.client, self.name)[self.p["keep_releases"]:]:
            self._forget(old["image"])

    def _finish(self, before, after, reason, changed):
        if self.key_installed and not changed:
            changed, reason = True, "deploy key replaced (source.deploy_key)"
        if changed and self.deciding:
            raise NeedsChange()
        self.result["changed"] = changed
        self.result["reason"] = reason if changed else "up to date"
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}
        self.module.exit_json(**self.result)

    def absent(self):
        current = deploy.current_services(self.client, self.name)
        history = releases(self.client, self.name)
        has_state = os.path.isdir(self.state_dir)
        deps = self.client.api.images(name=f"{DEPS_REPO}/{self.name}", quiet=True)
        logs = release_log.found_all(self.client, self.name)
        if not current and not history and not has_state and not self.variables and not deps and not logs:
            self.module.exit_json(**self.result)
        self.result.update(changed=True, reason="removed")
        if self.module._diff:
            self.result["diff"] = {"before": {"services": sorted(current)}, "after": {"services": []}}
        if not self.module.check_mode:
            # Its release jobs too (the controller's may still run): they mount the app's config vars,
            # which could not be removed while a job holds them.
            for svc in list(current.values()) + deploy.release_jobs(self.client, self.name):
                self.client.api.remove_service(svc["ID"])
            deploy.remove_surges(self.client, self.name)  # left by an interrupted rollout
            for old in history:
                self._forget(old["image"])
            self.forget_dependencies()
            # Read again after the services went: the controller may have removed some meanwhile.
            for version in env_store.versions(self.client, self.name).get(self.name, []):
                try:
                    self.client.api.remove_secret(version.id)
                except deploy.NotFound:
                    pass
            release_log.remove(self.client, self.name)
            backend_tls.remove_unused(self.client, self.name, set())
            shutil.rmtree(self.state_dir, ignore_errors=True)
        self.module.exit_json(**self.result)

    def _update_all(self, change, reason: str):
        """Apply ``change(spec)`` to every service of the app and wait for them to settle."""
        current = deploy.current_services(self.client, self.name)
        if not current:
            self.fail("is not deployed; deploy it with state=present first.")
        changed = {}
        for process, svc in current.items():
            spec = change(json_copy(svc["Spec"]))
            if spec != svc["Spec"]:
                changed[process] = (svc, spec)
        if not changed:
            self.module.exit_json(**self.result)
        self.result.update(changed=True, reason=reason)
        if self.module.check_mode:
            self.module.exit_json(**self.result)
        try:
            deploy.rollout(self.client, self.name, list(changed.values()), self.p["wait_timeout"])
        except deploy.DeployError as exc:
            self.fail(str(exc), task_log=exc.log)
        self.module.exit_json(**self.result)

    def restarted(self):
        def force(spec):
            # A restart also applies the config vars changed since the last one.
            return swarm.forced(env_store.with_variables(spec, self.variables))
        self._update_all(force, "rolling restart")

    def stopped(self):
        def scale_to_zero(spec):
            spec["Mode"] = {"Replicated": {"Replicas": 0}}
            return spec
        self._update_all(scale_to_zero, "scaled to zero")


def elsewhere(offer: dict) -> str:
    """Where the versions this platform does not offer can be had: the end of an unavailable version's message."""
    if offer.get("source") == "local" and offer.get("official_versions"):
        versions = sorted(offer["official_versions"], key=pyimages.version_key)
        return (f"Or, where a registry is reachable, set qoddi_image_source: registry (or auto) for the platform: "
                f"the official python images provide {versions[0]} to {versions[-1]}.")
    return ""


def json_copy(value):
    return json.loads(json.dumps(value))


def main():
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            name=dict(type="str", required=True),
            stack=dict(type="str", default="default"),
            state=dict(type="str", default="present", choices=["present", "absent", "restarted", "stopped"]),
            source=dict(type="dict", options=dict(
                git=dict(type="str"),
                ref=dict(type="str", default="main"),
                host_key=dict(type="str", no_log=False),
                deploy_key=dict(type="str", no_log=True),
                path=dict(type="path"),
            )),
            replicas=dict(type="int", default=1),
            processes=dict(type="dict", default={}),
            size=dict(type="str", default="S", choices=sorted(conventions.SIZES)),
            python_version=dict(type="str"),
            python_images=dict(type="dict"),
            health_check_path=dict(type="str", default="/"),
            boot_timeout=dict(type="int", default=60),
            backend_tls=dict(type="bool", default=False),
            domains=dict(type="list", elements="str", default=[]),
            platform_domain=dict(type="str", default=""),
            registry=dict(type="str", default=""),
            keep_releases=dict(type="int", default=5),
            rollback=dict(type="int"),
            build=dict(type="dict", default={}, options=dict(
                ca_bundle=dict(type="path"),
                # A mirror's URL may hold credentials.
                pip_index_url=dict(type="str", no_log=True),
            )),
            wait_timeout=dict(type="int", default=600),
            state_dir=dict(type="path", default="/var/lib/qoddi/apps"),
        ),
        required_if=[("state", "present", ["source"])],
        supports_check_mode=True,
    )
    p = module.params
    if not conventions.name_ok(p["name"]):
        module.fail_json(msg=f"qoddi_app: '{p['name']}' is not a valid app name. Use lower-case letters, digits and "
                             "single hyphens, starting with a letter and not ending with a hyphen, at most 30 "
                             "characters (it becomes a host name inside the stack).")
    if not conventions.NAME_RE.match(p["stack"]):
        module.fail_json(msg=f"qoddi_app: '{p['stack']}' is not a valid stack name (same rules as app names).")
    if p["replicas"] < 0 or any(not str(v).isdigit() for v in p["processes"].values()):
        module.fail_json(msg="qoddi_app: replicas and the counts in processes must be whole numbers, 0 or more.")
    if p["keep_releases"] < 1:
        module.fail_json(msg="qoddi_app: keep_releases must be at least 1 (the running release).")
    p["domains"] = sorted({domain.strip().lower().rstrip(".") for domain in p["domains"]})
    bad = [domain for domain in p["domains"] if not label_rules.domain_ok(domain)]
    if bad:
        module.fail_json(msg=f"qoddi_app: {', '.join(repr(d) for d in bad)} is not a valid domain name. Give host "
                             "names such as www.example.com: letters, digits and hyphens in dot-separated labels of "
                             "at most 63 characters, no scheme, port, path or wildcard.")
    if not 1 <= p["boot_timeout"] <= 3600:
        module.fail_json(msg=f"qoddi_app: boot_timeout {p['boot_timeout']} is out of range: give the seconds a new web "
                             "task has to answer, from 1 to 3600 (default 60).")
    if p["health_check_path"] and (problem := label_rules.health_path_problem(p["health_check_path"])):
        module.fail_json(msg=f"qoddi_app: health_check_path {p['health_check_path']!r} {problem}. Give the path the "
                             "platform requests to check the web process, such as /healthz, or '' for no check.")
    if (p["source"] or {}).get("git"):
        try:
            check_git_source(p["source"]["git"], p["source"]["ref"])
        except SourceError as exc:
            module.fail_json(msg=f"qoddi_app: {exc}")
    app = App(module)
    run = {"present": app.present, "absent": app.absent, "restarted": app.restarted, "stopped": app.stopped}[p["state"]]
    try:
        app.refuse_datastore()
        if module.check_mode:
            run()  # changes nothing, so takes no lock (run() ends the module: exit_json or fail_json)
            return
        if p["state"] == "present" and not (p["source"] or {}).get("git"):
            # A path or a rollback is read without writing anything; a Git source is fetched into
            # the app's state directory, which only the lock's holder may write.
            app.decide()
        # One change of the app at a time (another playbook, the controller applying config vars):
        # the release number is picked and the services changed under the app's lock, which this
        # run keeps alive however long its build, release command and rollouts take.
        with lock.held(app.client, app.name, lock.holder(f"qoddi_app state={p['state']}"), p["wait_timeout"]):
            # Read again under the lock: a run that held it may have changed them.
            app.variables = env_store.versions(app.client, app.name).get(app.name, [])
            run()
    except lock.Busy as exc:
        app.fail(f"{exc}. Nothing was changed.")
    except DockerException as exc:
        app.fail(f"the Docker engine refused an operation: {exc}", exception=traceback.format_exc())


if __name__ == "__main__":
    main()
