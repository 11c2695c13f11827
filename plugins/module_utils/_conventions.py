# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform's conventions, in one place: what every module, filter, role and the controller
must agree on, because the cluster's labels and names are the only record of what is deployed.

Modules and the controller import this file; roles read it through the ``qoddi.paas.label`` and
``qoddi.paas.conventions`` filters (plugins/filter/conventions.py), and the images role's Dockerfile
templates through the same filter (plugins/plugin_utils/_images.py registers it). Change a value
here and every reader follows; a name spelled out anywhere else is a bug.
"""

from __future__ import annotations

import re

# ----- labels ------------------------------------------------------------------------------------
PREFIX = "org.qoddi."


class Label:
    """Every label key the platform writes or reads (services, images, secrets, configs, networks)."""

    # Apps' services (qoddi_app) and what the edge reads from the web process.
    APP = PREFIX + "app"
    STACK = PREFIX + "stack"
    PROCESS = PREFIX + "process"
    RELEASE = PREFIX + "release"
    REVISION = PREFIX + "revision"
    SPEC = PREFIX + "spec"  # digest of the platform's settings of a service (equal: nothing to do)
    DOMAINS = PREFIX + "domains"
    HEALTH = PREFIX + "health"
    BOOT_TIMEOUT = PREFIX + "boot-timeout"  # seconds a new web task has to answer (absent: BOOT_SECONDS)
    BACKEND_TLS = PREFIX + "backend-tls"  # the web tasks' pinned certificate (PEM), see _backend_tls
    ENV_SEQ = PREFIX + "env.seq"  # the config-vars version a service mounts
    RELEASE_ENV_SEQ = PREFIX + "release.env.seq"  # the version its release command last ran with
    JOB = PREFIX + "job"  # one-off services: release jobs, config-var readers
    SURGE = PREFIX + "surge"  # a rollout's surge service <app>--next (its web process's name)
    # Release images (qoddi_app) and the images role's images.
    PROCESSES = PREFIX + "processes"
    PROCFILE = PREFIX + "procfile"
    PYTHON = PREFIX + "python"
    DJANGO = PREFIX + "django"
    IMAGE = PREFIX + "image"
    SOURCE = PREFIX + "source"
    SUITE = PREFIX + "suite"
    # What collectstatic's output depended on (a release image's), to reuse it while unchanged.
    STATIC_KEY = PREFIX + "static.key"
    STATIC_INPUTS = PREFIX + "static.inputs"
    STATIC_PATHS = PREFIX + "static.paths"
    # Datastores (qoddi_db).
    DATASTORE = PREFIX + "datastore"
    VERSION = PREFIX + "version"
    LINKS = PREFIX + "links"
    NODE = PREFIX + "node"
    # Config-var versions (qoddi_env: Swarm secrets).
    ENV_KEY = PREFIX + "env.key"
    ENV_DUE = PREFIX + "env.due"
    ENV_DIGEST = PREFIX + "env.digest"
    ENV_REMOVED = PREFIX + "env.removed"
    # Locks (Swarm configs), networks and the platform's own services.
    LOCK_HOLDER = PREFIX + "lock.holder"
    LOCK_SINCE = PREFIX + "lock.since"
    LOCK_EXPIRES = PREFIX + "lock.expires"
    NETWORK = PREFIX + "network"
    COMPONENT = PREFIX + "component"


def label(name: str) -> str:
    """``"env.seq"`` -> ``"org.qoddi.env.seq"``, for a name this file knows (a typo fails loudly)."""
    key = PREFIX + name
    if key not in LABELS:
        raise KeyError(f"{key} is not a label of the platform (plugins/module_utils/_conventions.py)")
    return key


LABELS = frozenset(value for key, value in vars(Label).items() if key.isupper())

# ----- names -------------------------------------------------------------------------------------
# App, datastore and stack names become host names in the stack and parts of service names, where
# "--" joins an app's name to its process (<app>--worker): so no "--", and no trailing hyphen.
NAME_RE = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-)){0,29}$")
NAME_RULE = ("lower-case letters, digits and single hyphens, starting with a letter and not ending with a "
             "hyphen, at most 30 characters")


def name_ok(name: str) -> bool:
    """An app's, a datastore's or a stack's name (see NAME_RE)."""
    return bool(NAME_RE.match(name)) and not name.endswith("-")


def service_name(app: str, process: str) -> str:
    """The web process is the service ``<app>`` (other apps reach it by the app's name)."""
    return app if process == "web" else f"{app}--{process}"


def network_name(stack: str) -> str:
    """A stack's private overlay network."""
    return f"qoddi-{stack}"


# The network the edge (HAProxy) shares with every app's web process. App and stack names cannot
# hold "--", so no stack network can take this name.
EDGE_NETWORK = "qoddi--edge"

# ----- how apps run ------------------------------------------------------------------------------
WEB_PORT = 5000  # $PORT of the web process, which the edge and the stack reach
APP_UID = 10001  # the user apps (and the build hooks) run as in the runtime image
# Named plans, as on Qoddi/Heroku: CPU (cores) and memory (MiB) limits per task.
SIZES = {
    "XS": (0.25, 256),
    "S": (0.5, 512),
    "M": (1.0, 1024),
    "L": (2.0, 2048),
    "XL": (4.0, 4096),
}
# Variables the platform sets itself; users may not set them (qoddi_env refuses them, and every
# QODDI_* name).
RESERVED_ENV = ("PORT", "DYNO", "QODDI_APP", "QODDI_PROCESS", "QODDI_RELEASE", "QODDI_REVISION")
RESERVED_PREFIX = "QODDI_"


def web_concurrency(size: str) -> int:
    """Heroku's rule for gunicorn workers: min(2 x CPUs + 1, max(1, memory MB / 256))."""
    cpus, memory = SIZES[size]
    return max(1, min(int(2 * max(cpus, 1) + 1), max(1, memory // 256)))


def as_dict() -> dict:
    """What roles read through the ``qoddi.paas.conventions`` filter."""
    return {"labels": {key.lower(): value for key, value in vars(Label).items() if key.isupper()},
            "edge_network": EDGE_NETWORK, "web_port": WEB_PORT, "app_uid": APP_UID,
            "sizes": {name: {"cpus": cpus, "memory_mb": memory} for name, (cpus, memory) in SIZES.items()},
            "reserved_env": list(RESERVED_ENV)}
