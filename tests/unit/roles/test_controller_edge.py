# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's edge duty: the files it wants, and the key and request it makes.

Following a deploy end to end (HAProxy's check, the reload, pebble) runs in the edge integration
target; here, the decisions, and that the role's templates give the controller's bytes.
"""

from __future__ import annotations

import pathlib

from controller_files import load
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ansible_collections.qoddi.paas.plugins.module_utils import _edge

TEMPLATES = pathlib.Path(__file__).parents[3] / "roles" / "haproxy" / "templates"


load("certificates")
load("edge_nodes")
load("edge_networks")
edge = load("edge")

ROUTES = [
    {"app": "blog", "service": "blog", "backend": "app-blog", "domains": ["blog.apps.test"], "health": ""},
    {"app": "shop", "service": "shop", "backend": "app-shop", "health": "/healthz",
     "domains": ["shop.apps.test", "shop.example.com"]},
]


def _render(template: str, routes: list) -> str:
    """The role's template with the role's filters (by their FQCN, as in a play)."""
    import jinja2

    from ansible_collections.qoddi.paas.plugins.filter.edge import FilterModule

    env = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update({f"qoddi.paas.{name}": function for name, function in FilterModule().filters().items()})
    compiled = env.from_string((TEMPLATES / template).read_text())
    return compiled.render(qoddi_edge_routes=routes, qoddi_haproxy_max_replicas=16)


def test_the_role_and_the_controller_write_the_same_bytes():
    assert _render("hosts.map.j2", ROUTES) == _edge.hosts_map(ROUTES)
    assert _render("routes.cfg.j2", ROUTES) == _edge.backends(ROUTES, 16)


def test_routes_cfg_holds_one_backend_per_app_with_its_health_check():
    text = _edge.backends(ROUTES, 16)
    assert text.count("\nbackend ") == 2 and "Apps: blog, shop." in text
    assert "uri /healthz ver HTTP/1.1 hdr Host shop.apps.test" in text
    assert "server-template web 16 tasks.shop:5000" in text
    assert _edge.backends([], 16).count("backend") == 0
    assert _edge.hosts_map(ROUTES).splitlines()[1:] == [
        "blog.apps.test app-blog", "shop.apps.test app-shop", "shop.example.com app-shop"]


def test_wanted_files_take_issued_certificates_only(tmp_path):
    (tmp_path / "shop.example.com.crt").write_bytes(b"CHAIN\n")
    (tmp_path / "shop.example.com.key").write_bytes(b"KEY\n")
    (tmp_path / "blog.apps.test.crt").write_bytes(b"CHAIN\n")  # no key yet: not served
    files = edge.desired_files(ROUTES, 16, str(tmp_path))
    assert sorted(files) == ["certs/shop.example.com.pem", "hosts.map", "routes.cfg"]
    assert files["certs/shop.example.com.pem"] == b"CHAIN\nKEY\n"  # as the letsencrypt role installs it
    assert sorted(edge.desired_files(ROUTES, 16, None)) == ["hosts.map", "routes.cfg"]


def test_removed_domains_certificates_go_but_the_default_stays(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("000-default.pem", "shop.example.com.pem", "gone.example.com.pem"):
        (certs / name).write_bytes(b"x")
    follower = edge.EdgeFollower(None, str(tmp_path), str(tmp_path / "acme"))
    assert follower.stale_certificates({"certs/shop.example.com.pem": b"x"}) == [str(certs / "gone.example.com.pem")]


def test_the_key_and_request_are_the_letsencrypt_roles():
    key_pem, request_pem = edge.new_key_and_request("shop.example.com")
    assert key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")  # openssl_privatekey's format
    key = serialization.load_pem_private_key(key_pem, password=None)
    request = x509.load_pem_x509_csr(request_pem)
    assert request.is_signature_valid and request.public_key().public_numbers() == key.public_key().public_numbers()
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "shop.example.com"
    san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["shop.example.com"] and not san.critical


def test_a_problem_is_logged_once_while_it_lasts(capsys):
    follower = edge.EdgeFollower(None, "/nonexistent", "/nonexistent")
    for problems in (["bad label"], ["bad label"], [], ["bad label"]):  # one tick each
        follower.problems = set()
        for line in problems:
            follower.warn(line)
        follower.warned = follower.problems
    assert capsys.readouterr().out.count("bad label") == 2


def test_failed_orders_wait_twice_as_long_each_time_up_to_an_hour():
    assert [edge.retry_delay(n) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]


def test_apps_with_tls_to_their_tasks_have_their_certificate_pinned_by_both_writers():
    cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    routes = [*ROUTES, {"app": "api", "service": "api", "backend": "app-api", "domains": ["api.apps.test"],
                        "health": "/", "tls": cert}]
    assert _render("routes.cfg.j2", routes) == _edge.backends(routes, 16)
    assert edge.desired_files(routes, 16, None)["backends/api.pem"] == cert.encode()
    assert sorted(edge.desired_files(routes, 16, None)) == ["backends/api.pem", "hosts.map", "routes.cfg"]


def test_pinned_certificates_of_apps_gone_or_without_tls_go(tmp_path):
    (tmp_path / "backends").mkdir()
    for app in ("api", "gone"):
        (tmp_path / "backends" / f"{app}.pem").write_text("CERT\n")
    follower = edge.EdgeFollower.__new__(edge.EdgeFollower)
    follower.config_dir = str(tmp_path)
    assert follower.stale_pinned({"backends/api.pem": b"CERT\n"}) == [str(tmp_path / "backends" / "gone.pem")]


def _ca_and_leaf(domain: str) -> tuple[bytes, bytes]:
    """A root (PEM) and a leaf of ``domain`` it signed (PEM)."""
    import datetime

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def make(subject: str, key, issuer: str, issuer_key) -> bytes:
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=90))
                .sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))

    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    return make("root", root_key, "root", root_key), make(domain, leaf_key, "root", root_key)


def test_a_kept_certificate_is_ordered_again_once_it_no_longer_chains_to_the_trusted_root(tmp_path):
    follower = edge.EdgeFollower(None, str(tmp_path), str(tmp_path))
    root, leaf = _ca_and_leaf("blog.apps.test")
    new_root, new_leaf = _ca_and_leaf("blog.apps.test")  # the ACME server made again
    crt = tmp_path / "blog.apps.test.crt"
    assert not follower.sound("blog.apps.test", root)  # none yet
    crt.write_bytes(leaf)
    assert follower.sound("blog.apps.test", root)
    assert follower.sound("blog.apps.test", None)  # no trusted root: any certificate will do
    assert not follower.sound("blog.apps.test", new_root)
    crt.write_bytes(new_leaf + b"\n")  # what the order wrote (another size: the remembered answer goes)
    assert follower.sound("blog.apps.test", new_root)
