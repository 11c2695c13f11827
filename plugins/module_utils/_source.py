# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where an app's code comes from: a Git repository over SSH, or a directory on the node.

Per app, the platform keeps on the manager that builds it (``state_dir``, by default
/var/lib/qoddi/apps/<app>):

- ``deploy_key`` / ``deploy_key.pub``: an ed25519 key made once; the user registers the public key
  as a read-only deploy key at their Git host.
- ``known_hosts``: the Git host's key, given by the user or learned at the first fetch, then
  pinned: a changed host key stops every later fetch.
- ``repo.git``: a bare repository that fetches incrementally, so a redeploy moves only new objects.

Both kinds of source end as a directory holding exactly the files of one revision, and a
``revision`` string: the commit for Git, a digest of the files for a directory.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_CRYPTOGRAPHY = False

# Never part of a build: VCS data, local virtualenvs, caches.
IGNORED_NAMES = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".mypy_cache", ".pytest_cache",
                           ".ruff_cache", "node_modules", ".DS_Store"})


class SourceError(Exception):
    """A message for the user: what went wrong with the source and what to do."""


def ensure_deploy_key(state_dir: str, app: str) -> tuple[str, bool]:
    """The app's public deploy key, made on first use; returns (public key line, created)."""
    private_path = os.path.join(state_dir, "deploy_key")
    public_path = private_path + ".pub"
    if os.path.exists(private_path) and os.path.exists(public_path):
        with open(public_path) as handle:
            return handle.read().strip(), False
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} qoddi-deploy-{app}"
    # Written with 0600 from the start: ssh refuses a private key others can read.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    with open(public_path, "w") as handle:
        handle.write(line + "\n")
    return line, True


def _host_of(url: str) -> tuple[str, int]:
    """(host, port) of an SSH Git URL: ssh://[user@]host[:port]/path or [user@]host:path."""
    if url.startswith("ssh://"):
        rest = url[len("ssh://"):].split("/", 1)[0]
        rest = rest.rsplit("@", 1)[-1]
        if rest.startswith("["):
            host, unused_bracket, port = rest[1:].partition("]")
            return host, int(port.lstrip(":") or 22)
        host, unused_colon, port = rest.partition(":")
        return host, int(port or 22)
    if ":" in url and not url.startswith(("/", "http://", "https://", "file://")):
        return url.split(":", 1)[0].rsplit("@", 1)[-1], 22
    raise SourceError(
        f"source.git '{url}' is not an SSH Git URL. Use git@host:owner/repo.git or "
        "ssh://git@host[:port]/owner/repo.git; the platform fetches with the app's deploy key over SSH."
    )


def _known_hosts_entry(host: str, port: int, host_key: str) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    fields = host_key.split()
    if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise SourceError(
            f"source.host_key '{host_key[:40]}...' is not a public host key. Give the key type and the key, "
            f"as `ssh-keyscan -p {port} {host}` prints them (e.g. 'ssh-ed25519 AAAA...')."
        )
    return f"{name} {fields[0]} {fields[1]}"


class _GitError(Exception):
    def __init__(self, stderr: str):
        super().__init__(stderr)
        self.stderr = stderr


def _git(run, args: list[str], cwd: str, env: dict | None = None) -> str:
    """Run git through the module's run_command (``run``); raise _GitError on failure."""
    rc, out, err = run(["git", *args], cwd=cwd, environ_update=env or {})
    if rc != 0:
        raise _GitError(err or out)
    return out


def _explain_fetch_failure(url: str, stderr: str, public_key: str) -> str:
    text = stderr.strip().splitlines()
    detail = " ".join(text[-3:]) if text else "no output"
    if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return (f"could not fetch {url}: the Git host's key does not match the pinned one ({detail}). If the host "
                "really changed its key, give the new one in source.host_key; otherwise someone may be in the way.")
    if "Permission denied" in stderr or "publickey" in stderr:
        return (f"could not fetch {url}: the Git host refused the app's deploy key ({detail}). Register this public "
                f"key as a read-only deploy key of the repository: {public_key}")
    if "not found" in stderr.lower() or "does not appear to be a git repository" in stderr:
        return f"could not fetch {url}: the repository was not found ({detail}). Check the URL."
    return f"could not fetch {url}: {detail}"


def fetch_git(run, state_dir: str, public_key: str, url: str, ref: str, host_key: str = "") -> str:
    """Fetch ``ref`` of ``url`` into the app's bare repository with its deploy key; return the commit.

    ``run`` is the module's run_command; ``public_key`` (from ensure_deploy_key) goes into the message
    when the Git host refuses the key.
    """
    if not shutil.which("git") or not shutil.which("ssh"):
        raise SourceError("git and ssh are needed on the manager that builds apps: install the git and "
                          "openssh-client packages there (the qoddi.paas.engine role does).")
    host, port = _host_of(url)
    known_hosts = os.path.join(state_dir, "known_hosts")
    if host_key:
        entry = _known_hosts_entry(host, port, host_key)
        current = open(known_hosts).read() if os.path.exists(known_hosts) else ""
        if current.strip() != entry:
            with open(known_hosts, "w") as handle:
                handle.write(entry + "\n")
        checking = "yes"
    else:
        # Trust on first use, then pinned: accept-new records an unknown host and refuses a changed key.
        checking = "accept-new"
    ssh = (f"ssh -i {os.path.join(state_dir, 'deploy_key')} -o IdentitiesOnly=yes -o BatchMode=yes "
           f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking={checking} -o ConnectTimeout=20")
    env = {"GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0"}
    repo = os.path.join(state_dir, "repo.git")
    if not os.path.isdir(repo):
        os.makedirs(repo)
        _git(run, ["init", "--quiet", "--bare"], repo)
    try:
        _git(run, ["fetch", "--quiet", "--force", "--prune", "--tags", url,
                   "+refs/heads/*:refs/remotes/origin/*"], repo, env=env)
    except _GitError as exc:
        raise SourceError(_explain_fetch_failure(url, exc.stderr, public_key)) from None
    for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
        try:
            return _git(run, ["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], repo).strip()
        except _GitError:
            continue
    raise SourceError(f"source.ref '{ref}' is neither a branch, a tag nor a commit of {url}.")


def export_git(run, state_dir: str, commit: str, dest: str) -> None:
    """Write the files of ``commit`` into ``dest`` (which must exist); ``run`` is run_command."""
    repo = os.path.join(state_dir, "repo.git")
    rc, archive, err = run(["git", "archive", "--format=tar", commit], cwd=repo, encoding=None)
    if rc != 0:
        raise SourceError(f"could not read commit {commit} from the app's Git cache: {err!r}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # The "data" filter (refuse absolute paths, links out of dest...) where this Python has it.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **safe)  # noqa: S202 - git archive output of the app's own commit


def _walk(root: str):
    """Relative paths of the files of a source directory, sorted, without IGNORED_NAMES."""
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_NAMES)
        for name in sorted(files):
            if name not in IGNORED_NAMES and not name.endswith((".pyc", ".pyo")):
                yield os.path.relpath(os.path.join(current, name), root)


def path_revision(root: str) -> str:
    """A digest of a directory's files (names, modes, contents): its revision for a path source."""
    if not os.path.isdir(root):
        raise SourceError(f"source.path '{root}' is not a directory on the node that builds the app.")
    digest = hashlib.sha256()
    for rel in _walk(root):
        full = os.path.join(root, rel)
        digest.update(rel.encode() + b"\0" + oct(os.lstat(full).st_mode & 0o111).encode() + b"\0")
        if os.path.islink(full):
            digest.update(os.readlink(full).encode())
        else:
            with open(full, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(block)
        digest.update(b"\0")
    return "path-" + digest.hexdigest()[:16]


def copy_tree(root: str, dest: str) -> None:
    """Copy a source directory's files (without IGNORED_NAMES) into ``dest``."""
    for rel in _walk(root):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), target, follow_symlinks=False)
