# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # What every qoddi.paas module declares about itself.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of the change without modifying anything.
  diff_mode:
    description: Returns details of what changed (or would change in check mode) in diff mode.
  idempotent:
    description: Run twice in a row with the same arguments, the second run reports no change.
  action_group:
    description:
      - Use C(group/qoddi.paas.platform) in C(module_defaults) to set options (such as the Docker connection) once.
    support: full
    membership:
      - qoddi.paas.platform
"""

    # For modules that only read.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module only reads, so it runs the same in check mode.
  diff_mode:
    support: N/A
    details: This module only reads.
  idempotent:
    support: full
"""
