#!/usr/bin/env bash
# Make this machine look new again for the platform: no Docker engine (packages, data, settings, the
# docker0 bridge), no debootstrap, no pebble, no image build cache, no qoddi state, and no encrypted
# tree of qoddi.paas.disk_encryption (its bind mounts, its filesystem file, its fstab lines, its keys).
# The virtualenv (.venv) and pip's cache stay. DESTROYS every container, image and volume of this
# machine's engine: for the project's own test machines, where `make demo` from nothing is measured
# (bench/demo_encryption.sh). Refuses to run without QODDI_STRIP_THIS_MACHINE=yes.
set -uo pipefail
[ "${QODDI_STRIP_THIS_MACHINE:-}" = yes ] || { echo "set QODDI_STRIP_THIS_MACHINE=yes to wipe this machine's engine" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }

for daemon in dockerd containerd pebble pebble-challtestsrv; do
  start-stop-daemon --stop --oknodo --retry 60 --pidfile "/run/qoddi-$daemon.pid" --remove-pidfile >/dev/null 2>&1
done
pkill -x dockerd; pkill -x containerd; pkill -f containerd-shim; sleep 1

# Everything mounted on the platform's paths (bind mounts of an encrypted tree, the engine's own), deepest first.
paths='/var/lib/docker|/var/lib/containerd|/var/lib/qoddi|/etc/qoddi|/srv/qoddi-disk|/run/docker'
awk '{ print $5 }' /proc/self/mountinfo | grep -E "^($paths)(/|$)" | sort -r | while read -r m; do umount -l "$m"; done
# The role makes bare mount points immutable.
for p in /var/lib/docker /var/lib/containerd /var/lib/qoddi /etc/qoddi/acme /etc/qoddi/haproxy /etc/qoddi/tls /srv/qoddi-disk; do
  [ -e "$p" ] && chattr -i "$p" 2>/dev/null
done
sed -i -E "\\#(/var/lib/qoddi-disk.img|/srv/qoddi-disk)#d" /etc/fstab
rm -rf /var/lib/docker /var/lib/containerd /etc/docker /var/lib/qoddi /etc/qoddi /var/cache/qoddi /var/log/qoddi \
  /var/lib/qoddi-disk.img /srv/qoddi-disk /etc/fscrypt.conf /.fscrypt /usr/local/sbin/qoddi-*lock-* /run/qoddi-*
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq docker.io containerd runc debootstrap pebble fscrypt >/dev/null 2>&1
for link in docker0 docker_gwbridge; do ip link delete "$link" 2>/dev/null; done
echo "qoddi: this machine has no engine, no engine data and no qoddi state now"
