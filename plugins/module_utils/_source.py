# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where an app's code comes from: a Git repository over SSH, or a directory on the node.

Per app, the platform keeps on the manager that builds it (``state_dir``, by default
/var/lib/qoddi/apps/<app>):

- ``deploy_key`` / ``deploy_key.pub``: an ed25519 key made once, or the private key the user gives
  (``source.deploy_key``, e.g. from an AWX credential); the user registers the public key as a
  read-only deploy key at their Git host.
- ``known_hosts``: the Git host's key, given by the user or learned at the first fetch, then
  pinned: a changed host key stops every later fetch.
- ``repo.git``: a bare repository that fetches incrementally, so a redeploy moves only new objects.

Both kinds of source end as a directory holding exactly the files of one revision, and a
``revision`` string: the commit for Git, a digest of the files for a directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import shlex
import shutil
import tarfile

# Imported where a deploy key is made: loading cryptography costs about 0.1 s of CPU in every run
# of qoddi_app, and only a Git source's first deploy needs it.
HAS_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None

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
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    line = f"{public.decode()} qoddi-deploy-{app}"
    _write_key_pair(state_dir, private, line)
    return line, True


def _write_key_pair(state_dir: str, private: bytes, public_line: str) -> None:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    private_path = os.path.join(state_dir, "deploy_key")
    # A new file written with 0600 from the start, then renamed over the old: ssh refuses a private key
    # others can read, and a reader never sees half a key.
    tmp = private_path + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    os.replace(tmp, private_path)
    with open(private_path + ".pub", "w") as handle:
        handle.write(public_line + "\n")


def supplied_key_pair(private_text: str, app: str) -> tuple[bytes, str]:
    """The file bytes and public line of a private key the user gives (OpenSSH or PEM, unencrypted)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = private_text.strip().encode() + b"\n"
    key = None
    for load in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = load(data, password=None)
            break
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        # Never the text itself in the message: it is a secret, and may be one pasted in the wrong field.
        raise SourceError(
            "source.deploy_key is not an unencrypted SSH private key (ed25519, ECDSA or RSA, in OpenSSH or PEM "
            "form, as ssh-keygen writes it): nothing was changed. Give the private key's whole text, or leave the "
            "option out and the platform makes a key (returned as deploy_key) for you to register.")
    try:
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    except (ValueError, UnsupportedAlgorithm):  # an ECDSA curve ssh does not know (secp256k1)
        raise SourceError("source.deploy_key is a key ssh cannot use (ECDSA on the P-256, P-384 or P-521 curve, "
                          "ed25519 and RSA are what ssh takes): nothing was changed.") from None
    return data, f"{public.decode()} qoddi-deploy-{app}"


def supplied_key_differs(state_dir: str, private: bytes) -> bool:
    """Whether the app's stored deploy key is not the one the user gives."""
    try:
        with open(os.path.join(state_dir, "deploy_key"), "rb") as handle:
            return handle.read() != private
    except FileNotFoundError:
        return True


def install_deploy_key(state_dir: str, app: str, private_text: str, write: bool = True) -> tuple[str, bool]:
    """Keep the user's private key as the app's deploy key; returns (public key line, changed). With
    ``write`` false (check mode), only says whether it would change."""
    private, line = supplied_key_pair(private_text, app)
    if not supplied_key_differs(state_dir, private):
        return line, False
    if write:
        _write_key_pair(state_dir, private, line)
    return line, True


# What reaches git and ssh as arguments is refused unless it matches these patterns: an argument
# starting with '-' would be read as an option (`--upload-pack=<command>` runs a command on the
# manager; a host '-oProxyCommand=...' runs one through ssh), and only SSH is a transport the
# platform means to use (no local paths, no ext::, no file://).
_USER = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}"
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_NAME}(?:\.{_NAME})*|\[[0-9A-Fa-f:.]{{2,45}}\])"
_PATH = r"[A-Za-z0-9._~+@/%-]{0,1024}"
SSH_URL = re.compile(rf"^ssh://(?:{_USER}@)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/(?P<path>{_PATH})$")
SCP_URL = re.compile(rf"^(?:{_USER}@)?(?P<host>{_HOST}):(?P<path>(?!-|//){_PATH})$")
# A branch, a tag or a commit: git's ref-name rules, narrowed to what Git hosts allow in practice.
REF = re.compile(r"^(?!.*(?:\.\.|//|@\{|\.lock(?:/|$)|/\.|\.$|/$))[A-Za-z0-9_][A-Za-z0-9._/+-]{0,254}$")
_KEY_BODY = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


def check_git_source(url: str, ref: str) -> None:
    """Refuse a source.git or source.ref git could take for an option or a non-SSH transport."""
    match = SSH_URL.match(url) or SCP_URL.match(url)
    if not match or not 0 < int(match.groupdict().get("port") or 22) < 65536:
        raise SourceError(
            f"source.git {url!r} is not an SSH Git URL. Use git@host:owner/repo.git or "
            "ssh://git@host[:port]/owner/repo.git (letters, digits and . _ ~ + @ / - in the path, nothing that "
            "starts with '-', a port from 1 to 65535); the platform fetches with the app's deploy key over SSH only."
        )
    if not REF.match(ref):
        raise SourceError(
            f"source.ref {ref!r} is not a branch, tag or commit name the platform accepts: use letters, digits "
            "and . _ / + - (not starting with '-' or '.', no '..', no spaces), e.g. main, v1.2 or a commit hash."
        )


def _host_of(url: str) -> tuple[str, int]:
    """(host, port) of an SSH Git URL: ssh://[user@]host[:port]/path or [user@]host:path."""
    check_git_source(url, "main")  # raises the message that says what an SSH URL looks like
    match = SSH_URL.match(url) or SCP_URL.match(url)
    return match.group("host").strip("[]"), int(match.groupdict().get("port") or 22)


def _known_hosts_entry(host: str, port: int, host_key: str) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    fields = host_key.split()
    if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-", "sk-")) or not _KEY_BODY.match(fields[1]):
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
    check_git_source(url, ref)
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
    # git runs GIT_SSH_COMMAND through a shell: quote the paths.
    ssh = (f"ssh -i {shlex.quote(os.path.join(state_dir, 'deploy_key'))} -o IdentitiesOnly=yes -o BatchMode=yes "
           f"-o UserKnownHostsFile={shlex.quote(known_hosts)} -o StrictHostKeyChecking={checking} "
           "-o ConnectTimeout=20")
    env = {"GIT_SSH_COMMAND": ssh, "GIT_TERMINAL_PROMPT": "0"}
    repo = os.path.join(state_dir, "repo.git")
    if not os.path.isdir(repo):
        os.makedirs(repo)
        _git(run, ["init", "--quiet", "--bare"], repo)
    try:
        # `--`: whatever the URL is, git reads it as a repository, never as an option.
        _git(run, ["fetch", "--quiet", "--force", "--prune", "--tags", "--", url,
                   "+refs/heads/*:refs/remotes/origin/*"], repo, env=env)
    except _GitError as exc:
        raise SourceError(_explain_fetch_failure(url, exc.stderr, public_key)) from None
    for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
        try:
            return _git(run, ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"],
                        repo).strip()
        except _GitError:
            continue
    raise SourceError(f"source.ref '{ref}' is neither a branch, a tag nor a commit of {url}.")


def export_git(run, state_dir: str, commit: str, dest: str) -> None:
    """Write the files of ``commit`` into ``dest`` (which must exist); ``run`` is run_command."""
    repo = os.path.join(state_dir, "repo.git")
    if not _COMMIT.match(commit):  # rev-parse's output; anything else is not passed to git
        raise SourceError(f"{commit!r} is not a commit id: deploy again, so the platform fetches the source.")
    rc, archive, err = run(["git", "archive", "--format=tar", commit], cwd=repo, encoding=None)
    if rc != 0:
        raise SourceError(f"could not read commit {commit} from the app's Git cache: {err!r}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        # The "data" filter (refuse absolute paths, links out of dest...) where this Python has it.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, **safe)  # noqa: S202 - git archive output of the app's own commit
    # Where Python has no "data" filter, links out of dest were extracted as they are.
    check_links(dest, f"commit {commit[:12]} of source.git")


def check_links(root: str, what: str) -> None:
    """Refuse symbolic links under ``root`` that resolve outside it (links inside it are fine).

    The module runs as root on the manager: a link such as requirements.txt -> /etc/shadow would
    make it read (and the build log show) any file of the node. Every reader of a source (the
    revision digest, the copy, the buildpack detection, the context tar) runs after this check.
    """
    root_real = os.path.realpath(root)
    outside = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_NAMES)
        # A link to a directory is listed in dirs (os.walk does not enter it), a link to a file in files.
        for name in sorted(dirs + files):
            full = os.path.join(current, name)
            if not os.path.islink(full):
                continue
            if os.path.commonpath([root_real, os.path.realpath(full)]) != root_real:
                outside.append(f"{os.path.relpath(full, root)} -> {os.readlink(full)}")
    if outside:
        shown = ", ".join(outside[:5]) + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        raise SourceError(f"{what} has symbolic links that point outside it: {shown}. The build only takes the "
                          "app's own files: copy what they point to into the source, or remove the links "
                          "(links to files inside the source are fine).")


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
    check_links(root, f"source.path '{root}'")
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
    """Copy a source directory's files (without IGNORED_NAMES) into ``dest``; links stay links."""
    # Checked again: the directory may have changed since its revision was computed.
    check_links(root, f"source.path '{root}'")
    for rel in _walk(root):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), target, follow_symlinks=False)
