# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an AWX survey's fields give, as the playbooks want it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def survey_list(value) -> list:
    """A list as it is; a survey's text field (a comma-separated string) split, each item trimmed, empty
    ones dropped. An argument spec of type list accepts such a string but only checks it: the variable
    stays a string."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise AnsibleFilterError(f"survey_list: expected a list or a comma-separated string, got {type(value).__name__}")


class FilterModule:
    def filters(self):
        return {"survey_list": survey_list}
