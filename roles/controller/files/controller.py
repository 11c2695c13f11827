# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform controller: the timed duties nobody's playbook is running for.

It runs as the Swarm service ``qoddi-controller`` on a manager (roles/controller), talks to the
engine through its socket and keeps no state of its own: what is due lives in the cluster (labels
of services and of config-var secrets), so a restarted controller picks up where it stopped.

Each tick (every QODDI_CONTROLLER_INTERVAL seconds), for every app:
- applies config vars changed with qoddi_env once their restart is due: the Procfile's release
  command first (a config change is a new release, as on Heroku), then one rolling update
  (deploy.rollout, as qoddi_app's) per service, however many variables changed. The release command
  runs as a Swarm job that later ticks follow, never waited for: no app's duty waits for another's;
- restarts services whose oldest task is older than QODDI_MAX_AGE (24 h, like Heroku's daily
  restart: local writes never live longer);
- removes config-var versions no task needs any more;
and every QODDI_CERTIFICATES_CHECK_EVERY seconds renews the certificates qoddi.paas.letsencrypt
issued that are due, and swaps them into the running edge (certificates.py); and, every tick in a
thread of its own, keeps the edge's routes and certificates in step with the apps (edge.py).
With more than one manager it copies the files those duties read to the other managers, where a
standby of it takes over while the first manager is lost (standby.py).

It never reads a variable's value and logs keys and version numbers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time

import certificates
import docker
import edge
import standby

from ansible_collections.qoddi.paas.plugins.module_utils import _deploy as deploy
from ansible_collections.qoddi.paas.plugins.module_utils import _env as env
from ansible_collections.qoddi.paas.plugins.module_utils import _lock as lock
from ansible_collections.qoddi.paas.plugins.module_utils import _release_log as release_log
from ansible_collections.qoddi.paas.plugins.module_utils import _swarm as swarm
from ansible_collections.qoddi.paas.plugins.module_utils._conventions import Label

# The controller holds an app's lock for one tick's work on it (never for a release job's whole run),
# kept alive while it works (lock.held); should it be stopped meanwhile (a role run updating its
# service), the app's deploys wait until the lock expires (lock.DEFAULT_TTL). A rollout
# (deploy.rollout) runs within one tick: its surge, its update and, when it fails, its undo are
# each bounded by ROLLOUT_TIMEOUT.
ROLLOUT_TIMEOUT = 90
log = certificates.log  # one format for every line the controller writes


# Heroku restarts each dyno daily plus up to 216 random minutes, so that a platform's apps do not all
# restart in the same minute. The platform promises a restart at least every max_age (24 h): the
# spread is taken off it instead, the same for an app at every check (from its name): between 85 %
# and 100 % of max_age, 20.4 h to 24 h by default.
AGE_SPREAD = 216 / 1440


def age_limit(app: str, max_age: float) -> float:
    """The age at which ``app``'s tasks are restarted."""
    share = int.from_bytes(hashlib.sha256(app.encode()).digest()[:4], "big") / 2**32
    return max_age * (1 - AGE_SPREAD * share)


def age_seconds(timestamp: str, now: float) -> float:
    """Seconds since a Swarm timestamp."""
    return now - deploy.swarm_time(timestamp)


class Controller:
    def __init__(self, client, max_age: float, age_check_every: float = 60.0, release_timeout: int = 600):
        self.client = client
        self.release_timeout = release_timeout
        self.max_age = max_age
        self.age_check_every = age_check_every
        self.next_age_check = 0.0
        # {service id: variables version} whose rollout failed and was rolled back: not retried until
        # the variables change again (a restart loop helps nobody). Lost on restart: one more try.
        self.rolled_back: dict[str, int] = {}

    def tick(self, now: float | None = None) -> None:
        now = now if now is not None else time.time()
        apps: dict[str, list[dict]] = {}  # app processes, which the controller restarts
        others: dict[str, list[dict]] = {}  # datastores: their variables are qoddi_db's to apply
        jobs: dict[str, list[dict]] = {}  # the release jobs this controller started for config vars
        surges: dict[str, list[dict]] = {}  # rollouts' surge services (deploy.surge_spec)
        for service in self.client.api.services(filters={"label": Label.APP}):
            labels = service["Spec"]["Labels"]
            kind = (apps if Label.PROCESS in labels else surges if Label.SURGE in labels
                    else jobs if self.vars_job(service) else others)
            kind.setdefault(labels[Label.APP], []).append(service)
        for app, services in sorted(surges.items()):
            self.remove_left_surges(app, services)
        variables = env.versions(self.client)
        check_ages = now >= self.next_age_check
        if check_ages:
            self.next_age_check = now + self.age_check_every
        for app, services in sorted(apps.items()):
            # One app's trouble (an update conflict, a label edited by hand) must not stop the others.
            try:
                history = variables.get(app, [])
                due = env.restart_due(history, services)
                if due is not None and due <= now:
                    self.apply_variables(app, services, history, due, now, jobs.get(app, []))
                elif jobs.get(app):
                    # Left when the variables were applied meanwhile by qoddi_app: removed once over.
                    self.release_over(jobs[app], now)
                if check_ages:
                    self.restart_old(app, services, history, now)
                if not any(self.busy(service) for service in services):
                    self.collect(app, history, services)
            except lock.Busy:
                pass  # a playbook is changing the app: its duties wait for the next tick
            except Exception as exc:  # noqa: BLE001 - logged, and tried again at the next tick
                log(f"{app}: error (will retry): {exc}")
        for app, history in variables.items():
            if app not in apps:
                self.collect(app, history, others.get(app, []))

    def remove_left_surges(self, app: str, surges: list[dict]) -> None:
        """Remove the surges no rollout runs for: left by a run that was killed (a playbook interrupted,
        a node restarted). They would serve the app's old release beside it until its next rollout,
        stopped or not. Every rollout runs under the app's lock and removes its surge before releasing
        it, so a surge whose app's lock is free has no rollout; a running one holds the lock (Busy)."""
        try:
            with lock.held(self.client, app, lock.holder("the controller removing a left surge"), 0):
                for surge in surges:
                    if swarm.remove(self.client, surge["ID"]):  # False: its rollout ended since the listing
                        log(f"{app}: removed {surge['Spec']['Name']}, the surge of a rollout that was interrupted")
        except lock.Busy:
            pass  # a rollout is running: its surge is its own
        except Exception as exc:  # noqa: BLE001 - logged, and tried again at the next tick
            log(f"{app}: error removing a left surge (will retry): {exc}")

    def busy(self, service: dict) -> bool:
        return (service.get("UpdateStatus") or {}).get("State") in ("updating", "rollback_started")

    def apply_variables(self, app: str, services: list[dict], history: list, due: float, now: float,
                        jobs: list[dict]) -> None:
        head = env.head(history)
        keys = sorted({v.key for v in history if v.seq > min(env.applied_seq(s) for s in services)})
        waiting = [s for s in services if env.applied_seq(s) < head and not self.busy(s)
                   and self.rolled_back.get(s["ID"]) != head]
        if not waiting:
            return
        # Not while a playbook changes the app (qoddi_app, qoddi_env): the next tick tries again. The
        # lock is taken per tick, not for the release job's whole run (the tick must not wait): a
        # deploy meanwhile applies the variables itself, and this job is then removed once over.
        with lock.held(self.client, app, lock.holder("the controller applying config vars"), 0):
            self._apply_variables(app, services, history, head, keys, waiting, now, due, jobs)

    def _apply_variables(self, app, services, history, head, keys, waiting, now, due, jobs) -> None:
        # While the release command runs this returns at once, and the tick goes on to other apps.
        if not self.release(app, services, history, head, now, jobs):
            return
        log(f"restart {app}: config vars changed ({', '.join(keys)}; now version {head}), due {now - due:.1f} s ago "
            f"({', '.join(s['Spec']['Name'] for s in waiting)})")
        changes = []
        for service in waiting:
            spec = env.with_variables(json.loads(json.dumps(service["Spec"])), history)
            spec["Labels"][Label.RELEASE_ENV_SEQ] = str(head)
            changes.append((service, spec))
        try:
            # The rollout qoddi_app runs: a surge for the web process, gated on the tasks' ready lines.
            deploy.rollout(self.client, app, changes, ROLLOUT_TIMEOUT)
        except deploy.DeployError as exc:
            for service in waiting:
                self.rolled_back[service["ID"]] = head
            log(f"restart {app}: the new tasks did not serve ({exc}); the app keeps its previous config vars "
                "until they change again or qoddi_app runs")

    def release(self, app: str, services: list[dict], history: list, head: int, now: float, jobs: list[dict]) -> bool:
        """Heroku's rule: new config vars make a new release, whose release command runs first (a new
        DATABASE_URL is migrated before the app uses it). True once it ran (or there is none); False
        while it runs, and when it failed: the app then keeps its variables until they change again
        or qoddi_app runs. Its output is not in the controller's log (a platform log, which never holds
        values; the app's command may print them): it is kept as the app's own, for qoddi_logs.

        The command runs as a Swarm job that this method starts, then follows at the next ticks
        (never waiting for it), so that one app's slow migration delays no other app's duty. The
        job's name says which release and variables version it is for: a restarted controller finds
        it in the cluster and follows it on, without any state of its own."""
        labels = services[0]["Spec"]["Labels"]
        release = int(labels.get(Label.RELEASE, "0"))
        # Its own job name: a qoddi_app deploy may be running the release of a new build meanwhile.
        name = f"{app}--release-{release}-vars-{head}"
        done = not deploy.release_due(services, head, built=False)
        mine = None if done else next((job for job in jobs if job["Spec"]["Name"] == name), None)
        # One release command of an app at a time, and none cut short: a job for variables that have
        # changed since finishes first (its outcome no longer matters), then it is removed.
        if not self.release_over([job for job in jobs if job is not mine], now):
            return False
        if done:
            return True
        # As the services run it: by digest where the cluster has a registry, so that any node can pull it.
        image = services[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        try:
            if mine is None:
                command = deploy.processes_of(self.client, image).get("release")
                if not command:
                    return True
                deploy.start_release(self.client, app, labels[Label.STACK], command, image,
                                     env.references(history), release, name=name)
                log(f"{app}: release command started with config vars version {head}")
                return False
            if not self.finished(mine, now):
                return False
        except Exception as exc:  # noqa: BLE001 - a DeployError, or the engine's: either way, not applied
            if mine is not None:
                self.keep_release_log(app, release, mine, ok=False)
                self.remove_job(mine)
            for service in services:
                self.rolled_back[service["ID"]] = head
            reason = exc.cause if isinstance(exc, deploy.ReleaseFailed) else str(exc)
            log(f"{app}: the release command failed with config vars version {head} ({reason}); "
                "the app keeps its previous config vars until they change again or qoddi_app runs")
            return False
        self.keep_release_log(app, release, mine, ok=True)
        self.remove_job(mine)
        log(f"{app}: release command ran with config vars version {head}")
        return True

    @staticmethod
    def vars_job(service: dict) -> bool:
        """Whether a service is a release job the controller started for config vars (a deploy's is not)."""
        labels = service["Spec"].get("Labels") or {}
        app = labels.get(Label.APP, "")
        return labels.get(Label.JOB) == "release" and bool(
            re.fullmatch(re.escape(app) + r"--release-[0-9]+-vars-[0-9]+", service["Spec"]["Name"]))

    def release_over(self, jobs: list[dict], now: float) -> bool:
        """Remove the jobs that are over, whatever their outcome; True when none is left running."""
        running = False
        for job in jobs:
            if self.finished(job, now, quiet=True):
                self.remove_job(job)
            else:
                running = True
        return not running

    def finished(self, job: dict, now: float, quiet: bool = False) -> bool:
        """Whether a release job is over: True when it completed, False while it runs; raises when it
        failed or ran longer than release_timeout (quiet: it is over all the same)."""
        command = job["Spec"]["TaskTemplate"]["ContainerSpec"]["Command"][-1]
        try:
            if age_seconds(job["CreatedAt"], now) > self.release_timeout:
                raise deploy.ReleaseFailed(command, f"did not finish within {self.release_timeout} s")
            return deploy.release_finished(self.client, job["ID"], command)
        except deploy.DeployError:
            if quiet:
                return True
            raise

    def keep_release_log(self, app: str, release: int, job: dict, ok: bool) -> None:
        """The job's output, for qoddi_logs once the job is gone (module_utils/_release_log.py); never in
        the way of the release's outcome."""
        try:
            node = deploy.job_node(self.client, job["ID"])
            output = swarm.logs(self.client, job["ID"], release_log.MAX_LINES)
        except Exception as exc:  # noqa: BLE001 - see above
            node, output = "", [f"(qoddi: the release's output could not be read: {exc})"]
        problem = release_log.keep(self.client, app, release, output, ok, node)
        if problem:
            log(f"{app}: {problem}")

    def remove_job(self, job: dict) -> None:
        # The job's exited container too, which Swarm leaves behind (deploy.remove_job).
        deploy.remove_job(self.client, job["ID"])

    def restart_old(self, app: str, services: list[dict], history: list, now: float) -> None:
        changes, why = [], []
        for service in services:
            if self.busy(service):
                continue
            running = [task for task in self.client.api.tasks(filters={"service": service["ID"]})
                       if task["Status"]["State"] == "running" and task.get("DesiredState") == "running"]
            if not running:
                continue
            oldest = max(age_seconds(task["CreatedAt"], now) for task in running)
            limit = age_limit(app, self.max_age)
            if oldest <= limit:
                continue
            spec = env.with_variables(json.loads(json.dumps(service["Spec"])), history)
            changes.append((service, swarm.forced(spec)))
            why.append(f"restart {service['Spec']['Name']}: its oldest task is {oldest / 3600:.2f} h old "
                       f"(this app's limit: {limit / 3600:.2f} h of at most {self.max_age / 3600:.1f} h)")
        if not changes:
            return
        for line in why:
            log(line)
        with lock.held(self.client, app, lock.holder("the controller restarting old tasks"), 0):
            try:
                deploy.rollout(self.client, app, changes, ROLLOUT_TIMEOUT)
            except deploy.DeployError as exc:
                log(f"restart {app}: the new tasks did not serve ({exc}); the previous tasks serve on")

    def collect(self, app: str, history: list, services: list[dict]) -> None:
        removed = []
        for version in env.garbage(history, services):
            try:
                self.client.api.remove_secret(version.id)
                removed.append(f"{version.key} v{version.seq}")
            except docker.errors.APIError:
                break  # in use after all (a task still shutting down): next tick
        if removed:
            log(f"{app}: removed config var versions no task uses: {', '.join(removed)}")


def forever(duty, interval: float) -> None:
    while True:
        try:
            duty()
        except Exception as exc:  # noqa: BLE001 - an engine hiccup must not stop the controller
            log(f"error (will retry): {exc}")
        time.sleep(interval)


def main() -> int:
    interval = float(os.environ.get("QODDI_CONTROLLER_INTERVAL", "1"))
    max_age = float(os.environ.get("QODDI_MAX_AGE", "86400"))
    acme_dir, edge_dir = "/etc/qoddi/acme", os.environ.get("QODDI_EDGE_CONFIG_DIR", "/etc/qoddi/haproxy")
    started = time.time()
    controller = Controller(docker.from_env(timeout=30), max_age,
                            age_check_every=float(os.environ.get("QODDI_AGE_CHECK_EVERY", "60")))
    # The standby (standby.py) does nothing while the first manager, whose node id it is given, is ready.
    gate = standby.Standby(docker.from_env(timeout=10), os.environ.get("QODDI_STANDBY_FOR", ""),
                           float(os.environ.get("QODDI_STANDBY_GRACE", "30")), started)
    service = os.environ.get("QODDI_CONTROLLER_SERVICE", "qoddi-controller")
    copies = standby.ManagerCopies(docker.from_env(timeout=30), service, acme_dir, edge_dir, started)
    check_every = float(os.environ.get("QODDI_CERTIFICATES_CHECK_EVERY", "3600"))
    # Renewals talk to a distant ACME server (up to 90 s a domain): their own thread and engine
    # client, so a due restart never waits for them.
    renewer = certificates.Renewer(docker.from_env(timeout=30), acme_dir, check_every)
    log(f"qoddi controller started{' as the standby' if gate.primary else ''}: every {interval:g} s; apps restart "
        f"after {max_age / 3600:g} h at most; certificates checked every {renewer.every:g} s")

    def when_active(duty, reads_files=False):
        def run():
            now = time.time()
            if gate.active(now) and (not reads_files or gate.may_read_files(now)):
                duty(now)
        return run

    threading.Thread(target=forever, args=(when_active(renewer.tick, reads_files=True), interval), daemon=True).start()
    # Its own thread and client too: ordering a new domain's certificate must not hold up a restart.
    follower = edge.EdgeFollower(docker.from_env(timeout=30), edge_dir, acme_dir)
    threading.Thread(target=forever, args=(when_active(follower.tick, reads_files=True), interval), daemon=True).start()
    threading.Thread(target=forever, args=(lambda: copies.duty(gate, time.time()), interval), daemon=True).start()
    forever(when_active(controller.tick), interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
