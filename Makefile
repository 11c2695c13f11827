# The two commands a newcomer needs (see README.md):
#   make demo   - this machine as a one-node platform, set up from nothing
#   make test   - every test: sanity, unit, integration, molecule
# and a quick loop for contributors:
#   make check  - lint, sanity and unit tests only (a few minutes, no Docker needed)
#   make cluster - the platform and the sample on three brand-new Docker-in-Docker nodes
#   make ee      - an execution environment image for AWX (docs/awx.md)
#   make docs    - the reference of every module, filter and role, rendered into .build/docs
SHELL := /bin/bash
VENV  ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Some machines set this globally; Ansible then recompiles its own code on every run (seconds each).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test check unit sanity lint integration molecule cluster bench ee docs venv clean

venv:
	@scripts/venv.sh

demo: venv
	@scripts/demo.sh

test: venv
	@scripts/test.sh all

check: venv
	@scripts/test.sh lint sanity unit

unit: venv
	@scripts/test.sh unit

sanity: venv
	@scripts/test.sh sanity

lint: venv
	@scripts/test.sh lint

integration: venv
	@scripts/test.sh platform integration

molecule: venv
	@scripts/test.sh platform molecule

cluster: venv
	@scripts/test.sh cluster

bench: venv
	@bench/site_rerun.sh

# The collection's reference, rendered by antsibull-docs into .build/docs (its links checked first).
docs: venv
	@scripts/docs.sh

# An execution environment for AWX (docs/awx.md): the collection's tarball, then ansible-builder with Docker.
ee: venv
	@rm -rf .build/ee && ansible-galaxy collection build --output-path .build/ee . && \
	  cp .build/ee/qoddi-paas-*.tar.gz .build/ee/qoddi-paas.tar.gz && \
	  ansible-builder build --container-runtime docker -f execution-environment.yml -c .build/ee/context \
	    -t qoddi-paas-ee:$$(sed -n 's/^version: *//p' galaxy.yml)

clean:
	rm -rf .build tests/output
