# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""qoddi_app's action hands the module the images role's own recipes and the platform's default."""
from __future__ import annotations

import pytest
from ansible.errors import AnsibleError

from ansible_collections.qoddi.paas.plugins.action.qoddi_app import python_offer
from ansible_collections.qoddi.paas.plugins.filter.images import image_plan, local_recipes
from ansible_collections.qoddi.paas.plugins.module_utils import _python_images as pyimages
from ansible_collections.qoddi.paas.plugins.plugin_utils._images import default_python, role_settings


def settings(**overrides):
    return {**role_settings(), **overrides}


def test_every_locally_buildable_python_is_offered_on_its_debian_release():
    offer = python_offer(settings(qoddi_image_source="local"))
    assert sorted(offer["versions"], key=pyimages.version_key) == ["3.11", "3.13", "3.14", "3.15"]
    assert offer["versions"]["3.14"]["base"] == "qoddi/debian:forky"
    assert "FROM qoddi/debian:forky\n" in offer["versions"]["3.14"]["python-build"]["dockerfile"]
    assert "python3.14-dev" in offer["versions"]["3.14"]["python-build"]["dockerfile"]
    assert offer["bootstrap"].startswith("#!/usr/bin/env bash") and "debootstrap" in offer["bootstrap"]
    # apt skips Release dates for testing (forky) in the build only: the images keep apt's default.
    assert "apt-get -o Acquire::Check-Valid-Until=false update" in offer["versions"]["3.14"]["python"]["dockerfile"]
    assert "RUN apt-get update" in offer["versions"]["3.13"]["python"]["dockerfile"]
    # The newest version Debian ships is the default, as Heroku's follows the newest stable release.
    assert offer["default"] == "3.15"
    assert pyimages.offered(offer) == ["3.11", "3.13", "3.14", "3.15"]


def test_the_recipes_are_the_images_roles_own():
    """What qoddi_app builds on demand is what the role would build: same Dockerfile, same tag."""
    role = settings(qoddi_image_source="local", qoddi_build_ca_bundle="/etc/ssl/certs/ca-certificates.crt")
    plan = image_plan(["python", "python-build"], "local", ["3.13"], role["__qoddi_images_local_catalogue"],
                      role["__qoddi_images_python_suites"], role["qoddi_images_official"], role["qoddi_images_suite"],
                      role["qoddi_images_extra_packages"])
    recipes = local_recipes(plan, True, "", role["qoddi_images_apt_skip_valid_until"])
    offer = python_offer(role)
    assert offer["versions"]["3.13"]["python"]["ref"] == recipes["python-3.13"]["ref"]
    assert offer["versions"]["3.13"]["python-build"]["dockerfile"] == recipes["python-build-3.13"]["dockerfile"]


def test_registry_mode_offers_the_official_versions_too():
    offer = python_offer(settings(qoddi_image_source="registry"))
    assert "3.12" in pyimages.offered(offer) and "3.10" in pyimages.offered(offer)
    assert pyimages.official_ref(offer, "python", "3.12") == "docker.io/library/python:3.12-slim-bookworm"
    assert pyimages.official_ref(offer, "python-build", "3.12") == "docker.io/library/python:3.12-bookworm"
    assert "3.12" not in pyimages.offered(python_offer(settings(qoddi_image_source="local")))


def test_registry_mode_defaults_to_the_newest_version_it_offers():
    offer = python_offer(settings(qoddi_image_source="registry"))
    assert offer["default"] == max(pyimages.offered(offer), key=pyimages.version_key)


def test_an_unquoted_default_is_refused():
    with pytest.raises(AnsibleError, match="quote it"):
        python_offer(settings(qoddi_images_python_default=3.1))


def test_a_configured_default_wins():
    assert default_python({"3.11": "bookworm", "3.13": "trixie"}) == "3.13"
    assert default_python({"3.11": "bookworm", "3.13": "trixie"}, "3.11") == "3.11"
    assert python_offer(settings(qoddi_images_python_default="3.13"))["default"] == "3.13"
