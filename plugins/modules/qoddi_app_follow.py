#!/usr/bin/python
# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: qoddi_app_follow
short_description: Show a running qoddi_app build's log as it comes, then return the run's result
version_added: 0.1.0
description:
  - Follows a M(qoddi.paas.qoddi_app) task started with C(async) and C(poll=0) - a first build can take
    minutes, during which a plain task shows nothing (an AWX job page stays silent). Every few seconds it
    prints the build's new log lines (what the module writes to C(<state_dir>/<name>/build.log) on the
    node), until the run ends.
  - Only this run's build is shown - the module makes the file anew when a build starts; a file already
    there and untouched for a few seconds when following starts is an earlier build's and stays unshown,
    so a run that builds nothing shows no build line.
  - Then it returns the run's result exactly as the waiting task would have, failure included, and removes
    the async job's status file.
  - Runs on the Ansible controller (an action); the node is asked with C(async_status) and one C(tail) per look.
author:
  - Qoddi PaaS maintainers (@qoddi)
extends_documentation_fragment:
  - qoddi.paas.attributes
options:
  jid:
    description: The C(ansible_job_id) the async M(qoddi.paas.qoddi_app) task registered.
    type: str
    required: true
  name:
    description: The app's name, as given to M(qoddi.paas.qoddi_app).
    type: str
    required: true
  state_dir:
    description: The M(qoddi.paas.qoddi_app) task's O(qoddi.paas.qoddi_app#module:state_dir).
    type: path
    default: /var/lib/qoddi/apps
  interval:
    description: Seconds between two looks.
    type: int
    default: 5
  timeout:
    description: Seconds to follow at most; the run goes on after, and this task fails saying so.
    type: int
    default: 3600
attributes:
  check_mode:
    support: none
    details: An async task in check mode returns its prediction at once; there is nothing to follow.
  diff_mode:
    support: N/A
    details: It changes nothing itself; the run's result carries its own diff.
  idempotent:
    support: full
    details: It reports the followed run's C(changed).
  action_group:
    support: none
    membership: []
notes:
  - The role P(qoddi.paas.app#role) (playbook C(qoddi.paas.app)) follows its deploys this way.
seealso:
  - module: qoddi.paas.qoddi_app
  - module: qoddi.paas.qoddi_logs
"""

EXAMPLES = r"""
- name: Build and deploy, in the background
  qoddi.paas.qoddi_app:
    name: blog
    source:
      git: git@github.com:me/blog.git
  async: 1800
  poll: 0
  register: blog_job

- name: Show the build as it goes, then the deploy's result
  qoddi.paas.qoddi_app_follow:
    jid: "{{ blog_job.ansible_job_id }}"
    name: blog
  register: blog
"""

RETURN = r"""
changed:
  description: Whether the followed M(qoddi.paas.qoddi_app) run changed the app.
  returned: always
  type: bool
release:
  description: As M(qoddi.paas.qoddi_app) returns it; every other value that module returns is returned too.
  returned: when the run succeeded
  type: int
"""
