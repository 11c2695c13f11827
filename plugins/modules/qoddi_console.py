#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_console
short_description: Run a console command in an app's context (migrations, scripts, one-off tasks)
version_added: 0.2.0
description:
  - Runs a command the way C(heroku run) does, in the context of an app deployed with
    M(qoddi.paas.qoddi_app) - its current release image, all of its config vars (M(qoddi.paas.qoddi_env)),
    its stack network (its datastores and the other apps of its stack by name) and its size.
  - By default (O(mode=run)) the command runs as a one-off Swarm task on any node that can hold it;
    the app's running processes are untouched, and local writes vanish with the task.
  - With O(mode=exec) it runs inside a running task of the app on this node (C(docker exec)), for a
    look at what a live process sees.
  - A one-off task's exited container is removed when it ran on this node; on another node, that node's
    engine keeps it until C(docker container prune).
  - The variables of O(env) are for this command only. Like the config vars, they reach the command
    as Swarm secrets (O(mode=run)) or through the Engine API (O(mode=exec)), never in a spec, a process
    argument, an event or this module's output.
  - Fails when the command exits with a non-zero code, unless O(check_rc=false).
  - Run it on a Swarm manager.
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.docker
  - qoddi.paas.attributes
attributes:
  check_mode:
    support: partial
    details: Checks the app and its process, runs nothing, and reports a change.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: A command is run each time, as M(ansible.builtin.command) does.
options:
  name:
    description: The app whose context the command runs in.
    type: str
    required: true
  command:
    description: The command, run by C(bash -c) as the app's user in the app's directory.
    type: str
    required: true
  process:
    description: The process type whose image, size, placement and networks the command gets.
    type: str
    default: web
  mode:
    description:
      - V(run) starts a one-off task; V(exec) runs inside a running task of O(process) on this node.
    type: str
    choices: [run, exec]
    default: run
  env:
    description:
      - Variables for this command only, as names and string values; they take the place of config vars
        of the same name.
    type: dict
  node:
    description:
      - With O(mode=run), the host name of the Swarm node to run on. By default any that fits, or, with
        O(stdin_file) or O(stdout_file), the node this module runs on.
    type: str
  datastore:
    description:
      - With O(mode=run), run the command in the image of this datastore of the app's stack (the name given
        to M(qoddi.paas.qoddi_db)) instead of the app's image, by C(sh -c), with the app's config vars
        exported - its engine's client tools (C(pg_dump), C(psql), C(mariadb-dump), C(redis-cli)) for the
        app's own C(DATABASE_URL), which app images do not carry.
    type: str
  stdin_file:
    description:
      - With O(mode=run), a file on the node this module runs on, read by the command as its standard input
        (a dump to load, a fixture), byte for byte. The command then runs on this node.
    type: path
  stdout_file:
    description:
      - With O(mode=run), a file on the node this module runs on, where the command's standard output is
        written byte for byte (a dump), with mode C(0600), instead of being returned in RV(stdout). The command
        then runs on this node. Written only when the command exits with 0, in one rename at the end, so a
        failed or stopped command never leaves a partial file there.
      - Bring it to the Ansible controller with M(ansible.builtin.fetch).
    type: path
  wait_timeout:
    description: Seconds the command may run; it is then stopped and the module fails.
    type: int
    default: 600
  check_rc:
    description: Whether a non-zero exit code fails the task.
    type: bool
    default: true
notes:
  - As for every C(no_log) option, Ansible hides any text equal to one of the values of O(env) in the task's
    output, so a short value such as C("1") may blank out unrelated text of RV(stdout).
  - Output comes back whole when the command ends; RV(stdout) is for text (a migration's report). Large or
    binary output goes to O(stdout_file).
seealso:
  - module: qoddi.paas.qoddi_app
  - module: qoddi.paas.qoddi_env
"""

EXAMPLES = r"""
- name: Migrate the database
  qoddi.paas.qoddi_console:
    name: blog
    command: python manage.py migrate --noinput

- name: Create the first admin, with its password for this command only
  qoddi.paas.qoddi_console:
    name: blog
    command: python manage.py createsuperuser --noinput
    env:
      DJANGO_SUPERUSER_USERNAME: admin
      DJANGO_SUPERUSER_EMAIL: admin@example.com
      DJANGO_SUPERUSER_PASSWORD: "{{ vault_blog_admin_password }}"

- name: Ask Django a question
  qoddi.paas.qoddi_console:
    name: blog
    command: python manage.py shell -c "from django.contrib.auth.models import User; print(User.objects.count())"
  register: users

- name: Dump the app's Postgres with the datastore's own pg_dump, to a file on this node
  qoddi.paas.qoddi_console:
    name: blog
    datastore: blog-db
    command: pg_dump --format=custom --no-owner "$DATABASE_URL"
    stdout_file: /var/backups/blog.dump

- name: Bring the dump to the Ansible controller
  ansible.builtin.fetch:
    src: /var/backups/blog.dump
    dest: backups/blog.dump
    flat: true

- name: Load it into another app's database (copied to that app's manager first)
  qoddi.paas.qoddi_console:
    name: blog-staging
    datastore: blog-staging-db
    command: pg_restore --no-owner --clean --if-exists --single-transaction --dbname "$DATABASE_URL"
    stdin_file: /var/backups/blog.dump

- name: See what a running web process sees
  qoddi.paas.qoddi_console:
    name: blog
    mode: exec
    command: env | cut -d= -f1 | sort
"""

RETURN = r"""
rc:
  description: The command's exit code (124 when it was stopped at O(wait_timeout)).
  returned: unless check mode
  type: int
stdout:
  description: What the command wrote to its standard output.
  returned: unless check mode
  type: str
stderr:
  description: What the command wrote to its standard error.
  returned: unless check mode
  type: str
stdout_lines:
  description: RV(stdout) split into lines.
  returned: unless check mode
  type: list
  elements: str
stderr_lines:
  description: RV(stderr) split into lines.
  returned: unless check mode
  type: list
  elements: str
duration:
  description: Seconds from the start of the run to its end, the task's scheduling included.
  returned: unless check mode
  type: float
node:
  description: The host name of the node the command ran on.
  returned: unless check mode
  type: str
stdout_file:
  description: The file written from the command's standard output (path, size in bytes, sha256).
  returned: with O(stdout_file), when the command exited with 0
  type: dict
  sample: {path: /var/backups/blog.dump, size: 1234, sha256: 9f86d0...}
"""

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qoddi.paas.plugins.module_utils import _console as console
from ansible_collections.qoddi.paas.plugins.module_utils import _conventions as conventions
from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _env as store
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._client import (
    DockerException,
    docker_argument_spec,
    docker_client,
)


def check_env(module: AnsibleModule) -> dict[str, str]:
    env = module.params["env"] or {}
    problems = [p for p in map(store.check_key, env) if p]
    problems += [p for p in (store.check_value(k, v) for k, v in env.items()) if p]
    if problems:
        module.fail_json(msg=f"qoddi_console {module.params['name']}: nothing was run, because {'; '.join(problems)}.")
    return env


def find_process(module: AnsibleModule, client) -> dict:
    p = module.params
    services = deploy.current_services(client, p["name"])
    if not services:
        module.fail_json(msg=f"qoddi_console: there is no app '{p['name']}' (no services). Deploy it with "
                             "qoddi.paas.qoddi_app first, or check the name.")
    if p["process"] not in services:
        module.fail_json(msg=f"qoddi_console {p['name']}: it has no {p['process']} process; its processes are "
                             f"{', '.join(sorted(services))}.")
    return services[p["process"]]


def find_datastore(module: AnsibleModule, client, service: dict) -> str | None:
    """The image of the datastore the command runs in, which must be of the app's stack."""
    p = module.params
    if not p["datastore"]:
        return None
    found = deploy.datastore_services(client, p["datastore"])
    stack = service["Spec"]["Labels"].get(conventions.Label.STACK)
    if not found:
        module.fail_json(msg=f"qoddi_console {p['name']}: there is no datastore '{p['datastore']}'; give the name "
                             "it was created with by qoddi.paas.qoddi_db.")
    other = found[0]["Spec"]["Labels"].get(conventions.Label.STACK)
    if other != stack:
        module.fail_json(msg=f"qoddi_console {p['name']}: the datastore '{p['datastore']}' is in the stack '{other}', "
                             f"not in the app's ('{stack}'), whose network the command runs on.")
    return found[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def check_files(module: AnsibleModule, client) -> str | None:
    """This node's ID when the command reads or writes files here, which pins it to this node."""
    p = module.params
    if not (p["stdin_file"] or p["stdout_file"]):
        return None
    if not p["docker_host"].startswith("unix://"):
        module.fail_json(msg=f"qoddi_console {p['name']}: nothing was run, because stdin_file and stdout_file are "
                             f"files of the host this module runs on, and docker_host ({p['docker_host']}) is an "
                             "engine elsewhere; run the module on the node, with its local engine.")
    if p["stdin_file"] and not os.path.isfile(p["stdin_file"]):
        module.fail_json(msg=f"qoddi_console {p['name']}: nothing was run, because stdin_file {p['stdin_file']} "
                             "is not a file on this node.")
    if p["stdout_file"] and not os.path.isdir(os.path.dirname(os.path.abspath(p["stdout_file"]))):
        module.fail_json(msg=f"qoddi_console {p['name']}: nothing was run, because the directory of stdout_file "
                             f"{p['stdout_file']} does not exist on this node; make it first.")
    info = client.info()
    if p["node"] and p["node"] != info["Name"]:
        module.fail_json(msg=f"qoddi_console {p['name']}: stdin_file and stdout_file are files of this node "
                             f"({info['Name']}), where the command then runs, not on {p['node']}.")
    return info["Swarm"]["NodeID"]


def run_job(module: AnsibleModule, client, service: dict, env: dict[str, str], image: str | None,
            node_id: str | None) -> dict:
    p = module.params
    history = store.versions(client, p["name"]).get(p["name"], [])
    networks = {n["Target"]: client.api.inspect_network(n["Target"])["Name"]
                for n in service["Spec"]["TaskTemplate"].get("Networks") or []}
    extra: list[dict] = []
    job = io_dir = None
    name = console.job_name(p["name"])
    started = time.monotonic()
    try:
        console.extra_refs(client, p["name"], env, extra)
        user = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("User") or ""
        if node_id:
            try:
                io_dir = console.make_io_dir(name, int(user) if user.isdigit() else conventions.APP_UID,
                                             p["stdin_file"])
            except OSError as exc:
                module.fail_json(msg=f"qoddi_console {p['name']}: nothing was run, because the command's files could "
                                     f"not be prepared in {console.IO_ROOT} ({exc}); run the module as root.")
        template = console.job_spec(service, p["command"], history, extra, node_id or p["node"], networks,
                                    image=image, io_dir=io_dir, stdin=bool(p["stdin_file"]),
                                    stdout=bool(p["stdout_file"]))
        job = client.api.create_service(template, name=name,
                                        labels={conventions.Label.JOB: "console"},
                                        mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
                                        # No virtual IP: nothing connects to a console task.
                                        endpoint_spec={"Mode": "dnsrr"})["ID"]
        task = console.wait(client, job, p["wait_timeout"])
        duration = round(time.monotonic() - started, 1)
        if task is None:
            return {"rc": console.TIMEOUT_RC, "stdout": console.output(client, job, "stdout"),
                    "stderr": console.output(client, job, "stderr"), "duration": duration, "node": "",
                    "timed_out": True}
        node = client.api.inspect_node(task["NodeID"])["Description"]["Hostname"] if task.get("NodeID") else ""
        result = {"rc": console.exit_code(task), "stdout": console.output(client, job, "stdout"),
                  "stderr": console.output(client, job, "stderr"), "duration": duration, "node": node}
        if task["Status"]["State"] == "rejected" or not task["Status"].get("ContainerStatus"):
            result["stderr"] += f"\nqoddi_console: the task did not start: {task['Status'].get('Err', '')}"
        elif p["stdout_file"] and result["rc"] == 0:
            try:
                result["stdout_file"] = console.keep_stdout(io_dir, p["stdout_file"])
            except OSError as exc:
                module.fail_json(msg=f"qoddi_console {p['name']}: the command ran, but its output could not be written "
                                     f"to {p['stdout_file']} ({exc}).", **result)
        return result
    finally:
        if job:
            try:
                deploy.remove_job(client, job)  # the task's container goes too (on this node)
            except DockerException as exc:
                module.warn(f"the console job {job} could not be removed ({exc}); remove it with docker service rm")
        # A secret is in use until the job's task is gone.
        left = set(swarm.remove_secrets(client, [ref["SecretID"] for ref in extra]))
        for ref in extra:
            if ref["SecretID"] in left:
                module.warn(f"the secret {ref['SecretName']} of this command's variables is still in use; "
                            "remove it later (docker secret rm)")
        if io_dir:  # after the job: its task no longer writes there
            shutil.rmtree(io_dir, ignore_errors=True)


def run_exec(module: AnsibleModule, client, service: dict, env: dict[str, str]) -> dict:
    p = module.params
    container = console.running_container(client, service["Spec"]["Name"])
    if container is None:
        running = client.api.tasks(filters={"service": service["ID"], "desired-state": "running"})
        nodes = sorted({t["NodeID"] for t in running})
        names = [client.api.inspect_node(n)["Description"]["Hostname"] for n in nodes]
        where = ", ".join(names) or "none (it runs nowhere)"
        module.fail_json(msg=f"qoddi_console {p['name']}: no task of its {p['process']} process runs on this node; "
                             f"run mode=exec on one of {where}, or use mode=run.")
    started = time.monotonic()
    rc, out, err = console.exec_in(client, container, p["command"], env, p["wait_timeout"])
    return {"rc": rc, "stdout": out, "stderr": err, "duration": round(time.monotonic() - started, 1),
            "node": client.info()["Name"], "timed_out": rc == console.TIMEOUT_RC}


def main():
    module = AnsibleModule(
        argument_spec=docker_argument_spec(
            name=dict(type="str", required=True),
            command=dict(type="str", required=True),
            process=dict(type="str", default="web"),
            mode=dict(type="str", default="run", choices=["run", "exec"]),
            env=dict(type="dict", no_log=True),
            node=dict(type="str"),
            datastore=dict(type="str"),
            stdin_file=dict(type="path"),
            stdout_file=dict(type="path"),
            wait_timeout=dict(type="int", default=600),
            check_rc=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not conventions.name_ok(p["name"]):
        module.fail_json(msg=f"qoddi_console: '{p['name']}' is not a valid app name ({conventions.NAME_RULE}).")
    if p["wait_timeout"] <= 0:
        module.fail_json(msg="qoddi_console: wait_timeout must be 1 or more seconds.")
    run_only = [option for option in ("node", "datastore", "stdin_file", "stdout_file") if p[option]]
    if run_only and p["mode"] == "exec":
        module.fail_json(msg=f"qoddi_console: {', '.join(run_only)} for mode=run only; mode=exec runs in a running "
                             "task of the app on this node.")
    env = check_env(module)
    client = docker_client(module)
    try:
        service = find_process(module, client)
        image = find_datastore(module, client, service)
        node_id = check_files(module, client)
        if module.check_mode:
            module.exit_json(changed=True, msg="check mode: the command was not run")
        if p["mode"] == "exec":
            result = run_exec(module, client, service, env)
        else:
            result = run_job(module, client, service, env, image, node_id)
    except DockerException as exc:
        module.fail_json(msg=f"qoddi_console {p['name']}: the Docker engine refused an operation: {exc}")
    result.update(changed=True, stdout_lines=result["stdout"].splitlines(), stderr_lines=result["stderr"].splitlines())
    if result.pop("timed_out", False):
        module.fail_json(msg=f"qoddi_console {p['name']}: the command did not end within {p['wait_timeout']} s and was "
                             "stopped.", **result)
    if p["check_rc"] and result["rc"] != 0:
        tail = " | ".join(result["stderr_lines"][-5:])
        kept = f" {p['stdout_file']} was not written." if p["stdout_file"] else ""
        module.fail_json(msg=f"qoddi_console {p['name']}: the command failed (exit code {result['rc']}): {tail}.{kept}",
                         **result)
    module.exit_json(failed=False, **result)  # a non-zero rc without failed=False would count as a failure


if __name__ == "__main__":
    main()
