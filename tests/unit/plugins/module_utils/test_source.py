# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""What reaches git from source.git and source.ref: SSH URLs and plain ref names only."""
from __future__ import annotations

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils import _source
from ansible_collections.qoddi.paas.plugins.module_utils._source import SourceError, check_git_source

GOOD_URLS = {
    "git@github.com:owner/repo.git": ("github.com", 22),
    "github.com:owner/repo.git": ("github.com", 22),
    "ssh://git@127.0.0.1:22022/srv/git/sample.git": ("127.0.0.1", 22022),
    "ssh://git.example.com/owner/repo": ("git.example.com", 22),
    "ssh://git@[::1]:2222/repo.git": ("::1", 2222),
    "deploy_user@git.example.com:~/apps/shop.git": ("git.example.com", 22),
}
BAD_URLS = [
    "--upload-pack=touch /tmp/x",
    "--upload-pack=touch /tmp/x;:",
    "-oProxyCommand=touch /tmp/x:repo",
    "ssh://-oProxyCommand=touch%20x/repo",
    "git@-oProxyCommand=x:repo",
    "git@host:-repo",
    "git@host:repo; touch /tmp/x",
    "git@host:repo\n--upload-pack=x",
    "https://github.com/owner/repo.git",
    "file:///srv/git/repo.git",
    "ext::sh -c touch% /tmp/x",
    "/srv/git/repo.git",
    "./repo.git",
    "ssh://host:99999/repo",
    "",
]
GOOD_REFS = ["main", "v1.2.3", "feature/new-thing", "release_2024", "0123abcd" * 5, "HEAD"]
BAD_REFS = ["-h", "--output=/tmp/x", "--upload-pack=touch /tmp/x", "a b", "a..b", ".hidden", "x.lock", "a//b",
            "main@{1}", "main\nx", "ref/", "x" * 300, ""]


@pytest.mark.parametrize("url", sorted(GOOD_URLS))
def test_ssh_urls_are_accepted_with_their_host_and_port(url):
    check_git_source(url, "main")
    assert _source._host_of(url) == GOOD_URLS[url]


@pytest.mark.parametrize("url", BAD_URLS)
def test_anything_else_is_refused_before_git_runs(url):
    with pytest.raises(SourceError, match="is not an SSH Git URL"):
        check_git_source(url, "main")
    with pytest.raises(SourceError):
        _source._host_of(url)


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_plain_refs_are_accepted(ref):
    check_git_source("git@host:repo.git", ref)


@pytest.mark.parametrize("ref", BAD_REFS)
def test_refs_that_git_could_read_as_options_are_refused(ref):
    with pytest.raises(SourceError, match="source.ref .* is not a branch, tag or commit name"):
        check_git_source("git@host:repo.git", ref)


def test_fetch_refuses_before_running_anything(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_source.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(SourceError):
        _source.fetch_git(lambda *a, **k: calls.append(a) or (0, "", ""), str(tmp_path), "key",
                          "--upload-pack=touch /tmp/x;:", "main")
    with pytest.raises(SourceError):
        _source.fetch_git(lambda *a, **k: calls.append(a) or (0, "", ""), str(tmp_path), "key",
                          "git@host:repo.git", "--output=/tmp/x")
    assert calls == []


def test_git_gets_the_url_and_the_ref_after_the_end_of_options(tmp_path, monkeypatch):
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        return 0, "0" * 40 + "\n", ""

    monkeypatch.setattr(_source.shutil, "which", lambda name: f"/usr/bin/{name}")
    _source.fetch_git(run, str(tmp_path), "key", "git@host:repo.git", "main")
    fetch = next(c for c in calls if c[1] == "fetch")
    assert fetch[fetch.index("--") + 1] == "git@host:repo.git"
    rev_parse = next(c for c in calls if c[1] == "rev-parse")
    assert rev_parse[-2] == "--end-of-options"


def test_a_host_key_adds_one_line_to_known_hosts_only():
    with pytest.raises(SourceError, match="is not a public host key"):
        _source._known_hosts_entry("h", 22, "ssh-ed25519 AAAA,*;x")
    assert _source._known_hosts_entry("h", 22, "ssh-ed25519 AAAA\n@cert-authority * ssh-ed25519 AAAA") == \
        "h ssh-ed25519 AAAA"
    assert _source._known_hosts_entry("h", 2222, "ssh-ed25519 AAAAC3Nz== comment") == "[h]:2222 ssh-ed25519 AAAAC3Nz=="


def _app(tmp_path):
    root = tmp_path / "app"
    (root / "pkg").mkdir(parents=True)
    (root / "requirements.txt").write_text("Django\n")
    (root / "pkg" / "settings.py").write_text("X = 1\n")
    (tmp_path / "secret").write_text("outside\n")
    return root


def test_links_inside_the_source_are_kept_as_links(tmp_path):
    root = _app(tmp_path)
    (root / "reqs.txt").symlink_to("requirements.txt")
    (root / "code").symlink_to("pkg")
    (root / "pkg" / "up.txt").symlink_to("../requirements.txt")
    revision = _source.path_revision(str(root))
    assert revision.startswith("path-")
    dest = tmp_path / "copy"
    dest.mkdir()
    _source.copy_tree(str(root), str(dest))
    assert (dest / "reqs.txt").is_symlink() and (dest / "reqs.txt").read_text() == "Django\n"
    assert (dest / "pkg" / "up.txt").read_text() == "Django\n"


@pytest.mark.parametrize("name,target", [
    ("requirements.txt", "{tmp}/secret"),           # absolute, to a file
    ("requirements.txt", "../secret"),              # relative, climbing out
    ("pkg/settings.py", "../../secret"),            # from a subdirectory
    ("etc", "/etc"),                                 # a directory
    ("pkg/loop", "../code"),                         # through another link that leaves
])
def test_links_out_of_the_source_are_refused_by_every_reader(tmp_path, name, target):
    root = _app(tmp_path)
    if name == "pkg/loop":
        (root / "code").symlink_to(tmp_path)  # itself refused, named too
    link = root / name
    if link.exists():
        link.unlink()
    link.symlink_to(target.format(tmp=tmp_path))
    dest = tmp_path / "copy"
    dest.mkdir()
    for read in (lambda: _source.path_revision(str(root)), lambda: _source.copy_tree(str(root), str(dest))):
        with pytest.raises(SourceError, match=rf"has symbolic links that point outside it: .*{name} -> .*copy what"):
            read()
    assert list(dest.iterdir()) == []


def test_a_git_commit_with_a_link_out_is_refused_after_extraction(tmp_path):
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("requirements.txt")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../../../etc/passwd"
        tar.addfile(info)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises((SourceError, tarfile.FilterError) if hasattr(tarfile, "FilterError") else SourceError):
        _source.export_git(lambda *a, **k: (0, buffer.getvalue(), b""), str(tmp_path), "a" * 40, str(dest))


def _key_text(kind: str, fmt: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = {"ed25519": ed25519.Ed25519PrivateKey.generate, "rsa": lambda: rsa.generate_private_key(65537, 2048),
           "ecdsa": lambda: ec.generate_private_key(ec.SECP256R1())}[kind]()
    form = {"openssh": serialization.PrivateFormat.OpenSSH, "pem": serialization.PrivateFormat.PKCS8}[fmt]
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()


@pytest.mark.parametrize("kind,fmt", [("ed25519", "openssh"), ("rsa", "openssh"), ("ecdsa", "pem"), ("rsa", "pem")])
def test_a_given_deploy_key_is_kept_0600_and_its_public_half_returned(tmp_path, kind, fmt):
    text = _key_text(kind, fmt)
    state = tmp_path / "app"
    line, changed = _source.install_deploy_key(str(state), "blog", "\n" + text + "\n\n")
    assert changed and line.endswith(" qoddi-deploy-blog")
    assert line.split()[0] == {"ed25519": "ssh-ed25519", "rsa": "ssh-rsa", "ecdsa": "ecdsa-sha2-nistp256"}[kind]
    assert (state / "deploy_key").stat().st_mode & 0o777 == 0o600
    assert (state / "deploy_key").read_text() == text.strip() + "\n"
    assert (state / "deploy_key.pub").read_text() == line + "\n"
    # The same key again (other surrounding blank lines) changes nothing; the app's key is now this one.
    assert _source.install_deploy_key(str(state), "blog", text.strip()) == (line, False)
    assert _source.ensure_deploy_key(str(state), "blog") == (line, False)


def test_a_given_deploy_key_replaces_a_made_one(tmp_path):
    made = _source.ensure_deploy_key(str(tmp_path), "blog")[0]
    given, changed = _source.install_deploy_key(str(tmp_path), "blog", _key_text("ed25519", "openssh"))
    assert changed and given != made
    assert (tmp_path / "deploy_key.pub").read_text().strip() == given


NOT_KEYS = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBZrnZr0kRK2OTs1dPtn1jXqIUD1tNSqW1nGp7yWZdbm",  # a public key
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----",
            "hunter2-secret-value"]


@pytest.mark.parametrize("text", NOT_KEYS)
def test_what_is_not_a_private_key_is_refused_without_showing_it(tmp_path, text):
    with pytest.raises(SourceError) as exc:
        _source.install_deploy_key(str(tmp_path), "blog", text)
    assert "not an unencrypted SSH private key" in str(exc.value)
    assert text[:20] not in str(exc.value) and "hunter2" not in str(exc.value)
    assert not (tmp_path / "deploy_key").exists()


def test_a_passphrase_protected_key_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    text = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")).decode()
    with pytest.raises(SourceError, match="unencrypted"):
        _source.install_deploy_key(str(tmp_path), "blog", text)


def test_a_key_on_a_curve_ssh_does_not_know_is_refused(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = ec.generate_private_key(ec.SECP256K1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(SourceError, match="a key ssh cannot use"):
        _source.install_deploy_key(str(tmp_path), "blog", text)
    assert not (tmp_path / "deploy_key").exists()


def test_without_write_it_only_says_whether_the_key_would_change(tmp_path):
    text = _key_text("ed25519", "openssh")
    line, changed = _source.install_deploy_key(str(tmp_path), "blog", text, write=False)
    assert changed and line.endswith(" qoddi-deploy-blog") and not (tmp_path / "deploy_key").exists()
    _source.install_deploy_key(str(tmp_path), "blog", text)
    assert _source.install_deploy_key(str(tmp_path), "blog", text, write=False) == (line, False)
