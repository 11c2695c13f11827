#!/usr/bin/env bash
# What encryption at rest costs `make demo` on the embedded default, from a machine stripped of its
# engine each time (bench/strip_machine.sh: DESTROYS this machine's containers, images and volumes):
# `make demo` plain; stripped again, `QODDI_DISK_ENCRYPTION=fscrypt make demo`, then again (no change).
# Prints the three times, each run's PLAY RECAP line, and where Docker's data root is.
# Logs in /tmp/qoddi-bench-demo-*.log. Requires QODDI_STRIP_THIS_MACHINE=yes (see strip_machine.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${QODDI_STRIP_THIS_MACHINE:-}" = yes ] || { echo "set QODDI_STRIP_THIS_MACHINE=yes: each run starts by wiping this machine's engine" >&2; exit 2; }

# run NAME [VAR=value ...]: one make demo, timed; prints "NAME <seconds> s <recap>".
run() {
  local name=$1 start status=0; shift
  start=$(date +%s)
  env "$@" make demo >"/tmp/qoddi-bench-demo-$name.log" 2>&1 || status=$?
  echo "$name $(( $(date +%s) - start )) s, exit $status: $(grep -a '^localhost' "/tmp/qoddi-bench-demo-$name.log" | tail -n 1 | tr -s ' ')"
  [ "$status" = 0 ] || { tail -n 30 "/tmp/qoddi-bench-demo-$name.log"; exit "$status"; }
}

echo "qoddi bench demo_encryption, $(date -u +%FT%TZ), $(nproc) cores"
bench/strip_machine.sh
run plain-fresh
bench/strip_machine.sh
run fscrypt-fresh QODDI_DISK_ENCRYPTION=fscrypt
run fscrypt-again QODDI_DISK_ENCRYPTION=fscrypt
echo "data root: $(docker info --format '{{.DockerRootDir}} {{.Driver}}') on $(findmnt -n -o SOURCE,FSTYPE --target /var/lib/docker)"
fscrypt status /srv/qoddi-disk/encrypted | grep -E '^(Policy|Unlocked|Options)'
