# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The newest release command's output of each app, kept for qoddi_logs (Heroku's ``release`` lines),
and the same way the newest build's whole log (qoddi_logs' ``build`` lines).

A release command runs beside a task, in a container the engine removes as soon as it stops, or as a
Swarm job, removed once over: its output would go with it. qoddi_app and the controller keep its last
MAX_LINES lines, failed or not, as a Swarm config labelled with the app and the release (any manager
reads it; Swarm takes 500 KB at most), and remove the one it replaces. The lines are the app's own
output; the platform adds no value to them.

This file imports nothing from Ansible.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid

from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

KIND = "release-log"
# The newest build's whole log, kept the same way (qoddi_logs' process build).
BUILD_KIND = "build-log"
MAX_LINES = 200
MAX_LINES_OF = {KIND: MAX_LINES, BUILD_KIND: 5000}
MAX_LINE = 2000  # characters of one line kept
MAX_BYTES = 400_000  # below Swarm's 500 KB for a config, whatever the characters' UTF-8 length


def keep(client, app: str, release: int, lines: list[str], ok: bool, node: str, kind: str = KIND) -> str:
    """Keep ``lines`` as the app's newest release (or build) log; the older ones go. What went wrong ('' when
    nothing did), for a warning: the log is a courtesy, which must not fail the release's run."""
    try:
        kept = [line[:MAX_LINE] for line in lines[-MAX_LINES_OF[kind]:]]
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        while True:
            body = json.dumps({"release": release, "ok": ok, "node": node, "time": stamp, "lines": kept},
                              ensure_ascii=False).encode()
            if len(body) <= MAX_BYTES or not kept:
                break
            kept = kept[len(kept) // 4 or 1:]  # the oldest lines go first
        older = found(client, app, kind)
        client.api.create_config(f"{app}--{kind}-{release}-{uuid.uuid4().hex[:6]}", body,
                                 labels={Label.APP: app, Label.JOB: kind, Label.RELEASE: str(release)})
        for config in older:
            client.api.remove_config(config["ID"])
    except Exception as exc:  # noqa: BLE001 - see above
        return f"the release's output could not be kept for qoddi_logs ({exc})"
    return ""


def found(client, app: str, kind: str = KIND) -> list[dict]:
    return client.api.configs(filters={"label": [f"{Label.APP}={app}", f"{Label.JOB}={kind}"]})


def found_all(client, app: str) -> list[dict]:
    """Every log kept for the app, its release's and its build's."""
    return found(client, app, KIND) + found(client, app, BUILD_KIND)


def read(client, app: str, kind: str = KIND) -> list[dict]:
    """The app's kept release (or build) logs (normally one): release, ok, node, time (when it ended), lines."""
    logs = []
    for config in found(client, app, kind):
        data = config["Spec"].get("Data") or client.api.inspect_config(config["ID"])["Spec"].get("Data", "")
        try:
            logs.append(json.loads(base64.b64decode(data)))
        except ValueError:
            continue
    return logs


def remove(client, app: str) -> None:
    """When the app goes."""
    for config in found_all(client, app):
        try:
            client.api.remove_config(config["ID"])
        except Exception:  # noqa: BLE001, S110 - gone meanwhile
            pass
