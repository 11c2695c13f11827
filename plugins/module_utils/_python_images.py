# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python images app builds stand on: found on the engine, or provided when an app asks for one.

Each version has two images: ``python`` (the runtime stage) and ``python-build`` (the build stage,
with compilers and headers). The images role makes the versions the platform is set up with; any
other version an app names is made here at its first build, from the same recipes (the role's
files, which qoddi_app's action reads and passes as the module's ``python_images`` option): pulled
from a registry, or built from Debian packages on a debootstrap base.
"""

from __future__ import annotations

import os
import tempfile
import time

from ansible_collections.qoddi.paas.plugins.module_utils._build import BuildError, build_image, context_tar, tail
from ansible_collections.qoddi.paas.plugins.module_utils._buildpack import _version_key as version_key
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

try:
    from docker.errors import DockerException, ImageNotFound
except ImportError:  # reported by the module through _client
    DockerException = ImageNotFound = Exception

# version_key (how versions sort, "3.9" before "3.10") is the buildpack's rule: one definition for every caller.
KINDS = ("python", "python-build")
# In the result: build is the build stage, run the runtime stage.
ROLES = {"python-build": "build", "python": "run"}


class ProvideError(Exception):
    """A Python the platform could not provide, with what was tried."""

    def __init__(self, message: str, log: list[str] | None = None, pull_failed: bool = False):
        super().__init__(message)
        self.log = log or []
        # No registry answered for a version only the official images have: the version is unavailable here.
        self.pull_failed = pull_failed


def present(client, offer: dict | None = None) -> dict[str, dict[str, str]]:
    """{version: {"build": ref, "run": ref}} of the Python images on this engine, newest of each kind.

    Local images carry ``org.qoddi.python``; official ones (registry mode) are known by their references.
    """
    found: dict[str, dict[str, tuple[str, str]]] = {}
    # App images inherit the python image's labels; asking for the exact kind leaves them out.
    for kind in KINDS:
        for image in client.images.list(filters={"label": f"{Label.IMAGE}={kind}"}):
            version = (image.attrs["Config"].get("Labels") or {}).get(Label.PYTHON)
            if not image.tags or not version:
                continue
            best = found.setdefault(version, {}).get(ROLES[kind])
            if best is None or image.attrs["Created"] > best[1]:
                found[version][ROLES[kind]] = (image.tags[0], image.attrs["Created"])
    pairs = {v: {k: ref for k, (ref, unused_created) in kinds.items()} for v, kinds in found.items() if len(kinds) == 2}
    if offer and offer.get("source") != "local":
        for version in offered(offer):
            if version not in pairs:
                refs = {ROLES[kind]: official_ref(offer, kind, version) for kind in KINDS}
                if all(ref and _exists(client, ref) for ref in refs.values()):
                    pairs[version] = refs
    return pairs


def offered(offer: dict) -> list[str]:
    """The versions this platform can provide, oldest first."""
    versions = set(offer.get("versions") or {})
    if offer.get("source") != "local":
        versions |= set(offer.get("official_versions") or [])
    return sorted(versions, key=version_key)


def official_ref(offer: dict, kind: str, version: str) -> str:
    return (offer.get("official") or {}).get(kind, "").replace("{version}", version)


def _exists(client, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def provide(client, version: str, offer: dict, run_command, get_bin_path, timeout: int) -> dict:
    """Make the images of ``version`` available; return how, how long it took and the log's tail.

    Registry mode pulls the official images; local mode builds the role's recipes (bootstrapping
    the Debian base first when missing); auto mode pulls, else builds. Raises ProvideError.
    """
    started, log = time.monotonic(), []
    source, local = offer.get("source", "local"), (offer.get("versions") or {}).get(version)
    refs, how = {}, ""
    if source in ("registry", "auto"):
        try:
            for kind in KINDS:
                ref = official_ref(offer, kind, version)
                log.append(f"pulling {ref}")
                client.images.pull(ref)
                refs[ROLES[kind]] = ref
            how = "pulled"
        except DockerException as exc:
            log.append(f"pull failed: {exc}")
            if source == "registry" or not local:
                raise ProvideError(f"could not pull the official images of Python {version} ({exc})", log,
                                   pull_failed=True) from exc
            refs = {}
    if not refs:
        if not local:
            raise ProvideError(f"Python {version} cannot be built from Debian packages here", log)
        _ensure_base(client, local, offer, run_command, get_bin_path, log)
        for kind in KINDS:
            refs[ROLES[kind]] = _build(client, version, kind, local, log, timeout)
        how = "built"
    return {"version": version, "how": how, "images": refs, "seconds": round(time.monotonic() - started, 1),
            "log": tail(log)}


def _build(client, version: str, kind: str, local: dict, log: list[str], timeout: int) -> str:
    recipe = local[kind]
    log.append(f"building {recipe['ref']} on {local['base']}")
    # The Python images' build context is their Dockerfile alone.
    with tempfile.TemporaryDirectory(prefix="qoddi-context-") as empty:
        try:
            context = context_tar(empty, {"Dockerfile": recipe["dockerfile"].encode()})
            unused_id, build_log = build_image(client, context, recipe["ref"], timeout=timeout)
        except BuildError as exc:
            raise ProvideError(f"building the {kind} image of Python {version} failed: {exc}",
                               log + tail(exc.log)) from None
    log.extend(tail(build_log, 5))
    return recipe["ref"]


def _ensure_base(client, local: dict, offer: dict, run_command, get_bin_path, log: list[str]) -> None:
    """Bootstrap qoddi/debian:<suite> with the images role's own script, unless it is here.

    The script writes the tree as a tar, which is imported through the Engine API this module was
    given (docker_host, TLS), not through a docker CLI that may talk to another engine.
    """
    if _exists(client, local["base"]):
        return
    if not get_bin_path("debootstrap"):
        raise ProvideError(f"the Debian {local['suite']} base image is missing and debootstrap, which makes it, is "
                           "not installed on this node: apt-get install debootstrap, or run the qoddi.paas.images "
                           "role (playbook qoddi.paas.platform), which installs it", log)
    suite = local["suite"]
    log.append(f"bootstrapping {local['base']} from {offer['mirror']}")
    with tempfile.TemporaryDirectory(prefix="qoddi-bootstrap-", dir=_scratch(offer["build_dir"])) as work:
        script = os.path.join(work, offer.get("bootstrap_name") or "debian-base.sh")
        tree_tar = os.path.join(work, "tree.tar")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(offer["bootstrap"])
        rc, out, err = run_command(["bash", script, suite, offer["mirror"], offer["build_dir"], tree_tar],
                                   environ_update={"LANG": "C", "LC_ALL": "C"})
        lines = (out + err).splitlines()
        if rc != 0:
            raise ProvideError(f"bootstrapping the Debian {suite} base image failed (exit {rc})", log + tail(lines))
        log.extend(tail(lines, 3))
        repository, tag = local["base"].rsplit(":", 1)
        client.api.import_image(src=tree_tar, repository=repository, tag=tag,
                                changes=['CMD ["bash"]', f"LABEL {Label.IMAGE}=debian"])


def _scratch(build_dir: str) -> str:
    """The images role's scratch space (large trees do not belong in /tmp, often a small tmpfs)."""
    os.makedirs(build_dir, exist_ok=True)
    return build_dir
