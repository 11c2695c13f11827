# Copyright (c) qoddi.paas contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""survey_list: what a survey's text field gives, as the list the argument spec accepted."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.qoddi.paas.plugins.filter.survey import survey_list


@pytest.mark.parametrize(("given", "wanted"), [
    ("postgres", ["postgres"]),
    (" postgres , redis,,", ["postgres", "redis"]),
    ("", []),
    (["a.example.com", "b.example.com"], ["a.example.com", "b.example.com"]),
    ([], []),
])
def test_a_list_or_a_comma_separated_string_gives_the_list(given, wanted):
    assert survey_list(given) == wanted


@pytest.mark.parametrize("given", [3, {"a": 1}, None])
def test_anything_else_is_refused_with_its_type(given):
    with pytest.raises(AnsibleFilterError, match=type(given).__name__):
        survey_list(given)
