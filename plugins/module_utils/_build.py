# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build an image from a directory plus generated files, through the Engine API.

The context is streamed as an in-memory tar, so nothing is written next to the user's code and
no buildx plugin is needed (the classic builder answers on every engine since 1.x). The classic
builder's cache compares file contents, not timestamps: a code-only change reuses every layer
above the final COPY, which is what makes warm rebuilds take seconds.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import uuid

from ansible_collections.qoddi.paas.plugins.module_utils._source import IGNORED_NAMES

# How many lines of a failed build's log reach the user.
LOG_TAIL = 40
# The classic builder colours a step's stderr; the colour codes mean nothing in Ansible's output.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILED_STEP = re.compile(r"^The command .* returned a non-zero code: (\d+)$", re.DOTALL)


class BuildError(Exception):
    """A failed build, with the last lines of its log."""

    def __init__(self, message: str, log: list[str]):
        super().__init__(message)
        self.log = log


# Where context_tar puts the app's own files: the generated files (.qoddi/...) stay beside them, so
# that `COPY app/ /app/` takes the code alone (no step to delete them again, see _buildpack).
APP_PREFIX = "app/"


def context_tar(root: str, extra: dict[str, bytes | tuple[bytes, int]], prefix: str = "") -> io.BytesIO:
    """A tar of ``root`` (without IGNORED_NAMES) under ``prefix``, plus ``extra`` {path: bytes or (bytes, mode)}.

    With a ``prefix``, the app's own top-level ``.qoddi`` is left out: that name is the platform's.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for current, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in IGNORED_NAMES
                             and not (prefix and d == ".qoddi" and current == root))
            for name in sorted(files):
                if name in IGNORED_NAMES or name.endswith((".pyc", ".pyo")):
                    continue
                full = os.path.join(current, name)
                rel = prefix + os.path.relpath(full, root)
                if rel in extra:
                    continue
                info = tar.gettarinfo(full, arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
        for rel, content in sorted(extra.items()):
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


class _Log(list):
    """A build's log lines, each also handed to ``on_line`` as it comes (a build's live progress)."""

    def __init__(self, on_line=None):
        super().__init__()
        self.on_line = on_line

    def append(self, line: str) -> None:
        super().append(line)
        if self.on_line:
            self.on_line(line)

    def extend(self, lines) -> None:
        for line in lines:
            self.append(line)

    def __iadd__(self, lines):
        self.extend(lines)
        return self


def build_image(client, context: io.BytesIO, tag: str, dockerfile: str = "Dockerfile",
                labels: dict[str, str] | None = None, timeout: int = 3600, on_line=None) -> tuple[str, list[str]]:
    """Build ``context`` as ``tag``; return (image id, log lines). Raises BuildError. ``on_line``, when
    given, gets each line of the log as the builder sends it."""
    log = _Log(on_line)
    image_id = None
    api = client.api
    previous_timeout = api.timeout
    api.timeout = timeout
    try:
        stream = api.build(fileobj=context, custom_context=True, tag=tag, dockerfile=dockerfile, rm=True,
                           forcerm=True, pull=False, decode=True, labels=labels or {})
        for chunk in stream:
            if "stream" in chunk:
                text = _ANSI.sub("", chunk["stream"])
                log.extend(line for line in text.splitlines() if line.strip())
            if "error" in chunk:
                error = chunk["error"].strip()
                log.append(error)
                # The classic builder repeats the whole RUN script here; the log already shows it.
                step = _FAILED_STEP.match(error)
                raise BuildError(f"the build failed: a build step exited with {step.group(1)}" if step
                                 else f"the build failed: {error}", log)
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    finally:
        api.timeout = previous_timeout
    if not image_id:
        image_id = client.images.get(tag).id
    return image_id, list(log)


def tail(log: list[str], lines: int = LOG_TAIL) -> list[str]:
    """The last lines of a build log, which is where a failure explains itself."""
    return log[-lines:]


def cache_summary(log: list[str]) -> dict[str, int]:
    """How many build steps ran, and how many of them the builder took from its cache."""
    return {"steps": sum(1 for line in log if line.startswith("Step ")),
            "cached": sum(1 for line in log if line.strip() == "---> Using cache")}


def run_hooks(client, image: str, script: str, env: dict[str, str], repository: str, tag: str,
              timeout: int = 3600, labels: dict[str, str] | None = None,
              what: str = "the build hooks", finish=None, on_line=None) -> tuple[str, list[str]]:
    """Run ``script`` in a container of ``image`` with ``env``; commit the result as repository:tag.

    Returns (image id, log lines); raises BuildError. The classic builder has no secret mounts, so
    this is how the build hooks get the app's config vars without any image holding them: the
    values go to the hook process alone, as `docker exec`'s environment, which neither the
    container's configuration nor its filesystem holds, so `commit` keeps only the files the hooks
    wrote. The committed image gets ``image``'s own configuration back (CMD, ENV, USER, labels...),
    not the container's, whose command only keeps it alive for the exec, plus ``labels``. The same
    way installs the dependencies from an index whose URL holds credentials (``what`` names the step).
    ``finish(log, changes)``, when given, returns more labels from the log and the container's
    changes (`docker diff`) before the commit, and may take lines out of the log. ``on_line`` gets each
    line as it comes.
    """
    api = client.api
    config = api.inspect_image(image)["Config"]
    config["Labels"] = {**(config.get("Labels") or {}), **(labels or {})}
    previous_timeout = api.timeout
    api.timeout = timeout
    container = api.create_container(image, command=["sleep", str(timeout)],
                                     name=f"qoddi-build-hooks-{uuid.uuid4().hex[:12]}")["Id"]
    log = _Log(on_line)
    try:
        api.start(container)
        exec_id = api.exec_create(container, ["bash", "-c", script], environment=[f"{k}={v}" for k, v in env.items()],
                                  workdir="/app")["Id"]
        pending = b""
        for chunk in api.exec_start(exec_id, stream=True):
            *lines, pending = (pending + chunk).split(b"\n")
            log.extend(text for line in lines if (text := _ANSI.sub("", line.decode(errors="replace"))).strip())
        if pending.strip():
            log.append(_ANSI.sub("", pending.decode(errors="replace")))
        code = api.exec_inspect(exec_id)["ExitCode"]
        if code != 0:
            raise BuildError(f"the build failed: {what} exited with {code}", log)
        api.kill(container)
        if finish:
            config["Labels"].update(finish(log, api.diff(container)))
        committed = api.commit(container, repository=repository, tag=tag, conf=config)["Id"]
    finally:
        api.remove_container(container, force=True)
        api.timeout = previous_timeout
    return committed, list(log)


def copy_paths(client, image: str, source_image: str, paths: list[str], repository: str, tag: str,
               labels: dict[str, str]) -> str:
    """``image`` plus ``paths`` taken from ``source_image`` (ownership and modes kept), committed as
    repository:tag with ``labels``: an earlier release's collectstatic output on a new build.
    Neither container is started."""
    api = client.api
    config = api.inspect_image(image)["Config"]
    config["Labels"] = {**(config.get("Labels") or {}), **labels}
    source = api.create_container(source_image, command=["true"])["Id"]
    try:
        target = api.create_container(image, command=["true"])["Id"]
        try:
            for path in paths:
                stream, unused_stat = api.get_archive(source, path)
                api.put_archive(target, os.path.dirname(path.rstrip("/")) or "/", b"".join(stream))
            return api.commit(target, repository=repository, tag=tag, conf=config)["Id"]
        finally:
            api.remove_container(target, force=True)
    finally:
        api.remove_container(source, force=True)
