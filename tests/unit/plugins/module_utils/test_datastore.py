# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.qoddi.paas.plugins.module_utils import _datastore as ds
from ansible_collections.qoddi.paas.plugins.module_utils import _env as env
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm

CATALOGUE_FILE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "marketplace", "vars",
                              "main.yml")


@pytest.fixture(scope="module")
def catalogue():
    with open(CATALOGUE_FILE, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["qoddi_marketplace_engines"]


def test_every_engine_has_the_whole_contract(catalogue):
    needed = {"image", "port", "scheme", "link_var", "data_path", "versions", "env", "run", "health", "url",
              "backup", "restore", "rotate"}
    for name, spec in catalogue.items():
        assert needed <= set(spec), name
        assert "{password}" in spec["env"].values(), name
        for source in ("local", "registry"):
            assert ds.per_source(spec["run"], source) and ds.per_source(spec["backup"], source), name


def test_credentials_are_strong_url_safe_and_read_back(catalogue):
    made = ds.new_credentials("blog-db")
    assert made["database"] == "blog_db" and len(made["password"]) >= 40
    assert made["password"].replace("-", "").replace("_", "").isalnum()
    assert ds.new_credentials("blog-db")["password"] != made["password"]
    for spec in catalogue.values():
        assert ds.credentials_of(spec, ds.environment(spec, made))["password"] == made["password"]
    assert ds.credentials_of(catalogue["postgres"], {"POSTGRES_USER": "x"}) is None


@pytest.mark.parametrize(("engine", "url"), [
    ("postgres", "postgres://u:p@blog-db:5432/d"),
    ("mysql", "mysql://u:p@blog-db:3306/d"),
    ("mongodb", "mongodb://u:p@blog-db:27017/d?authSource=admin"),
    ("redis", "redis://default:p@blog-db:6379/0"),
])
def test_urls_as_apps_read_them(catalogue, engine, url):
    assert ds.url(catalogue[engine], "blog-db", {"user": "u", "password": "p", "database": "d"}) == url


def test_the_prologue_exports_each_config_var(tmp_path):
    (tmp_path / "POSTGRES_PASSWORD").write_text("s3cret")
    script = ds.PROLOGUE.replace("/run/secrets/qoddi-env", str(tmp_path))
    out = subprocess.run(["sh", "-c", script, "qoddi-datastore", "sh", "-c", 'printf %s "$POSTGRES_PASSWORD"'],
                         capture_output=True, text=True, check=True).stdout
    assert out == "s3cret"


def _history(app: str, pairs) -> list:
    return [env.Version(id=secret_id, name=f"qoddi-env-{app}-{seq}", key=key, seq=seq, due=0, removed=False, digest="")
            for seq, (key, secret_id) in enumerate(pairs, start=1)]


def test_a_datastore_made_by_the_earlier_builder_differs_only_by_its_digest_label(catalogue):
    # The spec the engine returned for a Postgres that the earlier builder (a digest label) created.
    with open(os.path.join(os.path.dirname(__file__), "fixtures", "datastore_service_spec.json"),
              encoding="utf-8") as handle:
        engine = json.load(handle)
    history = _history("itest-nochange-db", [("POSTGRES_DB", "k8lzhcfp7trbc2npvfl38i3kt"),
                                             ("POSTGRES_PASSWORD", "o45sly3vs3uk5eaq05qglgk89"),
                                             ("POSTGRES_USER", "kt4l5i6n57k92xar1e038i8fb")])
    desired = ds.desired_service("itest-nochange-db", "itest-nochange", "postgres", catalogue["postgres"],
                                 "qoddi/postgres:bookworm-f03483d76224", "local", "XS", "wwkd3zfxr1xcmxfjdev1vtgjp",
                                 history, {"itest-nochange-app": "DATABASE_URL"})
    running = swarm.observe_spec(engine, {"toef327utv8ay3x0xxr620sg9": "qoddi-itest-nochange"})
    assert swarm.differences(running, desired) == [
        swarm.Difference("labels.org.qoddi.spec", "58686cf4bec570ad", None)]
    # ...and a new size, image or config vars version is named as such.
    bigger = ds.desired_service("itest-nochange-db", "itest-nochange", "postgres", catalogue["postgres"],
                                "qoddi/postgres:new", "local", "S", "wwkd3zfxr1xcmxfjdev1vtgjp",
                                history[:2] + _history("itest-nochange-db", [("POSTGRES_USER", "x")] * 4)[3:],
                                {"itest-nochange-app": "DATABASE_URL"})
    assert [d.setting for d in swarm.differences(running, bigger)] == [
        "image", "labels.org.qoddi.env.seq", "labels.org.qoddi.spec", "secrets.qoddi-env/POSTGRES_USER", "cpus",
        "memory_mb"]


def test_passwords_never_start_like_an_option():
    assert all(ds.new_password()[0].isalnum() for unused in range(300))


def test_credentials_given_by_hand_are_escaped_in_urls(catalogue):
    url = ds.url(catalogue["postgres"], "db", {"user": "u", "password": "p@ss:w/rd#1", "database": "d"})
    assert url == "postgres://u:p%40ss%3Aw%2Frd%231@db:5432/d"


def _commands(spec):
    for field in ("run", "backup", "restore", "rotate", "health"):
        value = spec.get(field)
        for source in ("local", "registry"):
            command = ds.per_source(value, source)
            yield " ".join(command) if isinstance(command, list) else command or ""


@pytest.mark.parametrize("engine", ["postgres", "mysql", "mongodb", "redis"])
def test_no_command_passes_a_password_as_an_argument(catalogue, engine):
    # ps on the node shows every container's arguments: the engines' variables holding a password may
    # only be read from the environment, a here-document or a file, never expanded into an argument.
    secret_vars = [key for key, template in catalogue[engine]["env"].items() if template == "{password}"]
    for command in _commands(catalogue[engine]):
        for forbidden in (" -a ", " -p", "--password", "--requirepass", "PGPASSWORD=$"):
            for var in secret_vars:
                assert f'{forbidden}"${var}"' not in command and f"{forbidden}${var}" not in command, command
        assert "redis-cli -a" not in command and "--requirepass" not in command, command


def test_postgres_restores_in_one_transaction(catalogue):
    restore = catalogue["postgres"]["restore"]
    assert "--single-transaction" in restore and "--exit-on-error" in restore


def test_a_credential_is_quoted_as_urls_hold_it():
    assert ds.quote("a@b:c/d#e") == "a%40b%3Ac%2Fd%23e"


def _node(node_id, state="ready", availability="active"):
    return {"ID": node_id, "Description": {"Hostname": f"host-{node_id}"}, "Status": {"State": state},
            "Spec": {"Availability": availability}}


@pytest.mark.parametrize("nodes, expected", [
    ([_node("a"), _node("b")], ""),
    ([_node("a", availability="pause")], ""),  # its task keeps running; nothing new is placed
    ([_node("a", state="down"), _node("b")], "its node host-a (a) is down"),
    ([_node("a", state="unknown")], "its node host-a (a) is unknown"),
    ([_node("a", availability="drain")], "its node host-a (a) is drained"),
    ([_node("ab"), _node("b")], "its node a is no longer in the Swarm"),  # ids match whole, not by prefix
])
def test_a_datastore_says_why_its_node_cannot_run_it(nodes, expected):
    assert ds.node_unavailable(nodes, "a") == expected
