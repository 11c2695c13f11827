# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.qoddi.paas.plugins.module_utils import _env as store


def _v(seq, key, value="x", removed=False, due=100.0):
    return store.Version(id=f"id{seq}", name=f"qoddi-env-blog-{seq}", key=key, seq=seq, due=due, removed=removed,
                         digest="" if removed else store.digest(value))


def _svc(seq, mounted=()):
    return {"Spec": {"Labels": {"org.qoddi.env.seq": str(seq)},
                     "TaskTemplate": {"ContainerSpec": {"Secrets": [
                         {"SecretName": n, "File": {"Name": "qoddi-env/K"}} for n in mounted]}}}}


@pytest.mark.parametrize("key", ["DATABASE_URL", "_x", "a1"])
def test_valid_keys(key):
    assert store.check_key(key) is None


BAD_KEYS = [("1ABC", "not a valid"), ("A-B", "not a valid"), ("", "not a valid"), ("PORT", "set by the platform"),
            ("QODDI_X", "set by the platform"), ("DYNO", "PORT")]


@pytest.mark.parametrize(("key", "says"), BAD_KEYS)
def test_bad_and_reserved_keys_say_why(key, says):
    assert says in store.check_key(key)


def test_digest_is_salted_and_verifies():
    one, two = store.digest("s3cret"), store.digest("s3cret")
    assert one != two and "s3cret" not in one
    assert store.same_value("s3cret", one) and not store.same_value("s3cret ", one)
    assert not store.same_value("x", "garbage")


def test_current_takes_the_newest_version_and_hides_tombstones():
    history = [_v(1, "A", "1"), _v(2, "B"), _v(3, "A", "2"), _v(4, "B", removed=True)]
    assert {k: v.seq for k, v in store.current(history).items()} == {"A": 3}
    assert store.head(history) == 4


def test_plan_sets_only_changed_values_and_purges_the_rest():
    history = [_v(1, "A", "same"), _v(2, "B", "old")]
    assert store.plan(history, {"A": "same", "B": "new", "C": "c"}, [], False) == \
        {"set": {"B": "new", "C": "c"}, "remove": []}
    assert store.plan(history, {"A": "same"}, [], True) == {"set": {}, "remove": ["B"]}
    assert store.plan(history, {}, ["B", "ZZZ"], False) == {"set": {}, "remove": ["B"]}  # absent key: no-op


def test_restart_due_is_the_first_pending_change():
    history = [_v(1, "A", due=10), _v(2, "B", due=50), _v(3, "C", due=50)]
    assert store.restart_due(history, [_svc(1), _svc(3)]) == 50
    assert store.restart_due(history, [_svc(3)]) is None
    assert store.restart_due(history, []) is None  # nothing runs, nothing to restart


def test_garbage_waits_until_no_service_needs_a_version():
    history = [_v(1, "A", "1"), _v(2, "A", "2"), _v(3, "B"), _v(4, "B", removed=True)]
    # The service still runs version 1 of A and B: nothing may go.
    assert store.garbage(history, [_svc(3, ["qoddi-env-blog-1", "qoddi-env-blog-3"])]) == []
    # Applied up to 4: the replaced A=1, the removed B, then B's tombstone, in that order.
    names = [v.seq for v in store.garbage(history, [_svc(4, ["qoddi-env-blog-2"])])]
    assert names == [1, 3, 4]


def test_a_tombstone_stays_while_a_value_it_hides_is_mounted():
    history = [_v(1, "B"), _v(2, "B", removed=True)]
    # A service that claims version 2 yet still mounts version 1 (edited by hand): keep both.
    assert store.garbage(history, [_svc(2, ["qoddi-env-blog-1"])]) == []


def test_without_services_only_replaced_values_go():
    history = [_v(1, "A", "1"), _v(2, "A", "2"), _v(3, "C", removed=True)]
    assert [v.seq for v in store.garbage(history, [])] == [1, 3]


def test_with_variables_replaces_only_the_config_var_mounts():
    spec = {"Labels": {"x": "1"}, "TaskTemplate": {"ContainerSpec": {"Secrets": [
        {"SecretName": "tls", "File": {"Name": "tls.pem"}},
        {"SecretName": "qoddi-env-blog-1", "File": {"Name": "qoddi-env/A"}}]}}}
    history = [_v(1, "A", "1"), _v(2, "A", "2"), _v(3, "B")]
    result = store.with_variables(spec, history)
    refs = result["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [r["SecretName"] for r in refs] == ["tls", "qoddi-env-blog-2", "qoddi-env-blog-3"]
    assert refs[1]["File"] == {"Name": "qoddi-env/A", "UID": "10001", "GID": "0", "Mode": 0o400}
    assert result["Labels"] == {"x": "1", "org.qoddi.env.seq": "3"}


def test_the_read_script_returns_every_value_byte_for_byte(tmp_path):
    import subprocess

    (tmp_path / "A").write_text("two\nlines\n")
    (tmp_path / "B").write_text("")
    (tmp_path / "C").write_text("é = 1")
    script = store._READ_SCRIPT.replace("/run/secrets/qoddi-env", str(tmp_path))
    output = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    assert store.parse_read(output) == {"A": "two\nlines\n", "B": "", "C": "é = 1"}
    empty = store._READ_SCRIPT.replace("/run/secrets/qoddi-env", str(tmp_path / "none"))
    assert store.parse_read(subprocess.run(["sh", "-c", empty], capture_output=True, check=False).stdout) == {}


@pytest.mark.parametrize(("value", "says"), [(5, "of type int"), ("", "is empty"), ("a\0b", "NUL"),
                                             ("x" * (500 * 1024 + 1), "over 500 KiB")])
def test_values_swarm_cannot_store_are_refused_without_quoting_them(value, says):
    problem = store.check_value("K", value)
    assert says in problem and (not isinstance(value, str) or not value or value not in problem)


def test_a_version_the_previous_spec_mounts_is_kept_while_a_rollback_may_need_it():
    history = [_v(1, "A", "1"), _v(2, "A", "2")]
    updating = _svc(2, ["qoddi-env-blog-2"])
    updating["PreviousSpec"] = _svc(1, ["qoddi-env-blog-1"])["Spec"]
    updating["UpdateStatus"] = {"State": "updating"}
    assert store.garbage(history, [updating]) == []
    # Once the update completed, Swarm will not roll back by itself: the old version may go.
    updating["UpdateStatus"] = {"State": "completed"}
    assert [v.seq for v in store.garbage(history, [updating])] == [1]


def test_schedule_joins_a_pending_restart_or_brings_it_forward():
    history = [_v(1, "A", due=150)]
    assert store.schedule(history, [_svc(0)], 60, 100) == 150  # joins
    assert store.schedule(history, [_svc(0)], 0, 100) == 100  # brought forward
    assert store.schedule(history, [_svc(1)], 60, 100) == 160  # nothing pending
