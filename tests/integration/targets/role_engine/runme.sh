#!/usr/bin/env bash
# The engine role against real hosts: this one (engine running) and two Debian containers reached
# through the docker connection plugin: one with no network (cannot get Docker), one that
# presents itself as Alpine (a system the role cannot install Docker on).
set -eux
trap "docker rm -f qoddi-test-nonet qoddi-test-alpine >/dev/null 2>&1 || true" EXIT
ansible-playbook -i ../../inventory -e @../../integration_config.yml playbook.yml "$@"
