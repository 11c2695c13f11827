#!/usr/bin/env bash
# Make the Debian base image qoddi/debian:<suite> with debootstrap, on a node with a Docker engine.
# One recipe for the images role (which runs it with ansible.builtin.script) and for qoddi_app (which
# runs it when an app asks for a Python whose base is missing, and imports the tree itself through
# the Engine API it was given).
# Usage: debian-base.sh SUITE MIRROR WORKDIR [TARFILE]
#   without TARFILE the tree is imported with the docker CLI; with it, the tree is written there.
set -euo pipefail
suite=$1 mirror=$2 tree=$3/rootfs/$1 out=${4:-}
mkdir -p "$3/rootfs"
# One bootstrap of a suite at a time (two deploys may ask for the same new Python at once); the
# second finds the image made and stops there.
exec 9>"$tree.lock"
flock 9
if [ -z "$out" ] && docker image inspect "qoddi/debian:$suite" >/dev/null 2>&1; then
  exit 0
fi
# Remove a half-made tree left by an interrupted run, and this one whatever happens.
rm -rf "$tree"
trap 'rm -rf "$tree"' EXIT
# Two stages, so dpkg can be told not to sync every file it writes before it installs anything
# (minutes on slow disks; a bootstrap that dies is thrown away anyway). The sid script serves every
# release from bookworm on, including ones newer than this host's debootstrap knows by name (forky).
debootstrap --foreign --variant=minbase "$suite" "$tree" "$mirror" /usr/share/debootstrap/scripts/sid
echo force-unsafe-io > "$tree/etc/dpkg/dpkg.cfg.d/qoddi-unsafe-io"
chroot "$tree" /debootstrap/debootstrap --second-stage
if [ -n "$out" ]; then
  tar -C "$tree" -cf "$out" .
else
  tar -C "$tree" -c . |
    # The label's key comes from the caller (the images role: module_utils/_conventions.py owns it).
    docker import --change 'CMD ["bash"]' --change "LABEL ${QODDI_IMAGE_LABEL:?}=debian" - "qoddi/debian:$suite"
fi
