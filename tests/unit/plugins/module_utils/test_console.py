# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""The console job's shape (qoddi_console's one-off task); the runs themselves need the engine."""
from __future__ import annotations

import hashlib

from ansible_collections.qoddi.paas.plugins.module_utils import _console as console
from ansible_collections.qoddi.paas.plugins.module_utils import _env as store
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import EDGE_NETWORK


def _v(seq, key, removed=False):
    return store.Version(id=f"id{seq}", name=f"qoddi-env-blog-{seq}", key=key, seq=seq, due=0.0, removed=removed,
                         digest="" if removed else store.digest("x"))


WEB = {"Spec": {"Name": "blog", "TaskTemplate": {
    "ContainerSpec": {"Image": "reg:5000/qoddi-app/blog@sha256:1", "Env": ["PORT=5000", "DYNO=web.1", "QODDI_APP=blog"],
                      "Secrets": [{"SecretID": "old", "SecretName": "qoddi-env-blog-1",
                                   "File": {"Name": "qoddi-env/TOKEN"}}]},
    "Resources": {"Limits": {"NanoCPUs": 500000000}},
    "Placement": {"Constraints": ["node.role==worker"], "MaxReplicas": 1},
    "Networks": [{"Target": "stack-net", "Aliases": ["blog"]}, {"Target": "edge-net"}]}}}
NETWORKS = {"stack-net": "qoddi-blog", "edge-net": EDGE_NETWORK}


def test_the_job_has_the_apps_image_size_stack_network_and_newest_variables():
    history = [_v(1, "TOKEN"), _v(2, "TOKEN"), _v(3, "DEBUG")]
    spec = console.job_spec(WEB, "python manage.py migrate", history, [], None, NETWORKS)
    container = spec["ContainerSpec"]
    assert container["Image"] == WEB["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert container["Command"] == ["bash", "-c", "python manage.py migrate"]
    assert sorted(s["SecretName"] for s in container["Secrets"]) == ["qoddi-env-blog-2", "qoddi-env-blog-3"]
    assert "DYNO=run.1" in container["Env"] and "DYNO=web.1" not in container["Env"] and "PORT=5000" in container["Env"]
    assert spec["Networks"] == [{"Target": "stack-net"}]  # not the edge's, and not the app's name as an alias
    assert spec["Resources"] == WEB["Spec"]["TaskTemplate"]["Resources"]
    assert spec["Placement"] == {"Constraints": ["node.role==worker"]}
    assert spec["RestartPolicy"] == {"Condition": "none"}
    assert "MaxReplicas" in WEB["Spec"]["TaskTemplate"]["Placement"]  # the service's own spec is untouched


def test_the_commands_own_variables_take_the_place_of_config_vars_and_a_node_can_be_chosen():
    extra = [{"SecretID": "tmp", "SecretName": "blog--console-1-0", "File": {"Name": "qoddi-env/TOKEN"}}]
    spec = console.job_spec(WEB, "true", [_v(2, "TOKEN"), _v(3, "DEBUG")], extra, "node-2", NETWORKS)
    names = [s["SecretName"] for s in spec["ContainerSpec"]["Secrets"]]
    assert sorted(names) == ["blog--console-1-0", "qoddi-env-blog-3"]
    assert spec["Placement"]["Constraints"] == ["node.role==worker", "node.hostname==node-2"]


def test_a_task_that_never_started_has_a_failing_code():
    assert console.exit_code({"Status": {"State": "rejected", "Err": "no such image"}}) == 127
    assert console.exit_code({"Status": {"State": "complete", "ContainerStatus": {"ExitCode": 0}}}) == 0
    assert console.exit_code({"Status": {"State": "failed", "ContainerStatus": {"ExitCode": 3}}}) == 3


def test_files_pin_the_job_to_this_node_and_a_datastore_image_exports_the_config_vars():
    spec = console.job_spec(WEB, 'pg_dump "$DATABASE_URL"', [_v(2, "DATABASE_URL")], [], "node-id-1", NETWORKS,
                            image="qoddi/postgres:16", io_dir="/var/lib/qoddi/console/blog--console-1",
                            stdin=False, stdout=True)
    container = spec["ContainerSpec"]
    assert container["Image"] == "qoddi/postgres:16"
    shell, flag, script = container["Command"]
    assert (shell, flag) == ("sh", "-c")  # a datastore's image may have no bash
    assert script.startswith(console.EXPORT_PRELUDE)  # nor the app image's BASH_ENV script
    assert script.endswith(f'exec >{console.IO_DIR}/stdout\npg_dump "$DATABASE_URL"')
    assert "stdin" not in script
    assert container["Mounts"] == [{"Type": "bind", "Source": "/var/lib/qoddi/console/blog--console-1",
                                    "Target": console.IO_DIR}]
    assert spec["Placement"]["Constraints"] == ["node.role==worker", "node.id==node-id-1"]
    assert container["User"] == str(console.APP_UID)


def test_the_apps_image_reads_stdin_from_the_file_under_bash():
    spec = console.job_spec(WEB, "python manage.py loaddata -", [], [], "node-id-1", NETWORKS,
                            io_dir="/x", stdin=True)
    script = f"exec <{console.IO_DIR}/stdin\npython manage.py loaddata -"
    assert spec["ContainerSpec"]["Command"] == ["bash", "-c", script]
    assert spec["ContainerSpec"]["Image"] == WEB["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def test_stdout_is_kept_whole_with_its_digest(tmp_path):
    io_dir = tmp_path / "job"
    io_dir.mkdir()
    (io_dir / "stdout").write_bytes(b"PGDMP\x00\x01binary")
    dest = tmp_path / "out.dump"
    dest.write_text("earlier")
    kept = console.keep_stdout(str(io_dir), str(dest))
    assert dest.read_bytes() == b"PGDMP\x00\x01binary"
    assert kept == {"path": str(dest), "size": 13, "sha256": hashlib.sha256(b"PGDMP\x00\x01binary").hexdigest()}
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "out.dump"]  # no partial file left
