# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The cluster's own registry (the images role's ``qoddi_images_registry``, ``host:port``): an image's
name there, and how an image built on one node gets there so that every node runs the same bits."""

from __future__ import annotations

try:
    from docker.errors import DockerException
except ImportError:  # pragma: no cover - the modules say the SDK is missing before this is reached
    DockerException = Exception


class RegistryError(Exception):
    """An image could not be pushed to the cluster's registry."""


def registry_ref(ref: str, registry: str) -> str:
    """The reference of an image in the cluster's registry: the image's repository and tag under
    that registry, without the registry it came from (``docker.io/library/haproxy:2.8`` becomes
    ``<registry>/library/haproxy:2.8``, ``qoddi/python:3.11-<digest>`` becomes
    ``<registry>/qoddi/python:3.11-<digest>``). An empty registry, or a reference already in it, is
    returned unchanged."""
    if not registry or ref.startswith(f"{registry}/"):
        return ref
    first, sep, rest = ref.partition("/")
    # Docker's own rule: a first component with a dot or a port, or localhost, names a registry.
    if sep and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    return f"{registry}/{ref}"


def pinned_ref(image_attrs: dict, target: str) -> str:
    """``target`` (``repository:tag`` in the registry) with the digest the registry gave the image
    when it was pushed (``repository:tag@sha256:...``), or "" when it was never pushed there."""
    repository = target.rpartition(":")[0]
    for repo_digest in image_attrs.get("RepoDigests") or []:
        name, at, digest = repo_digest.partition("@")
        if at and name == repository:
            return f"{target}@{digest}"
    return ""


def holds(client, pinned: str) -> bool:
    """Whether the registry serves ``pinned`` (``repository:tag@digest``) under its tag. The engine's
    record of a push outlives the registry's copy (a registry made again, its volume lost): asked
    before trusting it, so that nodes never get a reference they cannot pull."""
    tagged, unused_at, digest = pinned.partition("@")
    try:
        found = client.api.inspect_distribution(tagged)
    except DockerException:  # not there (NotFound), or no answer: push, which says why if it fails
        return False
    return (found.get("Descriptor") or {}).get("digest") == digest


def publish(client, image: str, registry: str, push: bool = True) -> str:
    """The reference every node pulls ``image`` by: its copy in the cluster's registry, by digest.

    Pushed only when the registry has no copy yet (the image's RepoDigests record each push, and the
    registry is asked whether it still has it), so a re-run pushes nothing. With ``push`` false
    (check mode, deciding without the app's lock), an image the registry does not have gets its
    reference without a digest, which differs from what any service runs: the run that follows
    pushes it.
    No registry: ``image`` itself (one node).
    """
    if not registry:
        return image
    target = registry_ref(image, registry)
    found = pinned_ref(client.api.inspect_image(image), target)
    if found and holds(client, found):
        return found
    if not push:
        return target
    repository, tag = target.rsplit(":", 1)
    client.api.tag(image, repository, tag)
    for line in client.api.push(repository, tag=tag, stream=True, decode=True):
        if line.get("errorDetail"):
            message = line["errorDetail"].get("message")
            raise RegistryError(f"could not push {target} to the cluster's registry: {message}")
    found = pinned_ref(client.api.inspect_image(image), target)
    if not found:
        raise RegistryError(f"pushed {target}, but the engine recorded no digest for it in the cluster's registry")
    return found
