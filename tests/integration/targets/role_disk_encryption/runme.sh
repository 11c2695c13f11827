#!/usr/bin/env bash
# qoddi.paas.disk_encryption on this host, both backends, without touching this host's engine (the test
# starts an engine of its own, files/engine.sh, and only reads one image out of the host's):
# - fscrypt end to end on an ext4 loop file: check mode changes nothing, a first run changes, a second
#   run and a check-mode run change nothing; then fscrypt_e2e.yml (Postgres on the encrypted data root,
#   raw image, lock/unlock, simulated reboot, rotation, recovery passphrase).
# - luks on a loop file as far as the kernel allows (luks_checks.yml): without device-mapper the device is
#   formatted and checked but not opened, and the skipped steps are named.
# - no key or passphrase in any output: every run's log (one at -vvv) is searched for them.
# Everything lives under $TEST_DIR; the EXIT trap stops the engine, unmounts, detaches and removes it.
set -euo pipefail
cd "$(dirname "$0")"
TEST_DIR=${QODDI_ENC_TEST_DIR:-/tmp/qoddi-test-disk-encryption}
LOGS=$TEST_DIR/logs
PASSPHRASE=qoddi-recovery-7d1e9c-Never-Printed  # the same as vars.yml's enc_recovery_passphrase
made_fscrypt_conf=false

# A subshell: set +e must not outlive the clean-up (it runs first, too).
cleanup() (
  set +e
  bash files/engine.sh stop "$TEST_DIR" 2>/dev/null
  # Deepest first: the bind mounts, then the test filesystem (its loop device goes with it).
  awk -v d="$TEST_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount "$m"; done
  losetup --noheadings --output NAME --associated "$TEST_DIR/luks/disk.img" 2>/dev/null | while read -r l; do losetup -d "$l"; done
  # The role makes bare mount points immutable.
  [ -d "$TEST_DIR" ] && find "$TEST_DIR" -xdev -type d -exec chattr -i {} + 2>/dev/null
  rm -rf "$TEST_DIR"
  # The cgroups its engine made its containers in (files/engine.sh's --cgroup-parent), deepest first.
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name qoddi-test-enc | while read -r cg; do
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  if $made_fscrypt_conf; then rm -f /etc/fscrypt.conf; rm -rf /.fscrypt; fi
)
cleanup
trap cleanup EXIT
mkdir -p "$LOGS"
[ -e /etc/fscrypt.conf ] || made_fscrypt_conf=true

# device-mapper: loaded as a module where the kernel has one, missing on the project's test machines.
modprobe -q dm_crypt 2>/dev/null || true
if grep -qw device-mapper /proc/misc; then DM=true; else DM=false; fi

PB=(ansible-playbook -i ../../inventory -e @../../integration_config.yml -e "test_dir=$TEST_DIR" -e "dm_available=$DM")
# run NAME EXPECT ARGS...: run a playbook, keep its log, check the recap's changed count (any, 0, or >0).
run() {
  local name=$1 expect=$2 changed; shift 2
  "${PB[@]}" "$@" 2>&1 | tee "$LOGS/$name.log"
  changed=$(sed -n 's/^testhost *:.* changed=\([0-9]*\).*/\1/p' "$LOGS/$name.log" | tail -n 1)
  case "$expect" in
    0) [ "$changed" = 0 ] || { echo "--- $name: expected no change, the recap says changed=$changed" >&2; exit 1; } ;;
    +) [ "${changed:-0}" -gt 0 ] || { echo "--- $name: expected changes, the recap says changed=$changed" >&2; exit 1; } ;;
  esac
}

# The tools the setup below needs before the role installs its own.
command -v mkfs.ext4 >/dev/null

# QODDI_ENC_ONLY=luks or =fscrypt runs one backend (a quicker loop while developing).
ONLY=${QODDI_ENC_ONLY:-}

if [ "$ONLY" != luks ]; then
# fscrypt: the role makes a 3 GB sparse ext4 file (qoddi_disk_encryption_fscrypt_file), loop-mounts it and
# encrypts a directory of it.
run fscrypt-check-fresh + -e backend=fscrypt apply.yml --check
[ ! -e "$TEST_DIR/fscrypt/keys/qoddi-data.key" ] && [ ! -e "$TEST_DIR/fscrypt/disk.img" ] && [ ! -e "$TEST_DIR/fscrypt/fs" ] \
  || { echo "--- check mode made the key, the filesystem or its mount point" >&2; exit 1; }
run fscrypt-first + -e backend=fscrypt apply.yml -vvv
run fscrypt-second 0 -e backend=fscrypt apply.yml
run fscrypt-check 0 -e backend=fscrypt apply.yml --check
run fscrypt-e2e any -e backend=fscrypt fscrypt_e2e.yml
# After the end-to-end run the tree is unlocked and mounted: unlock changes nothing.
run fscrypt-unlock-again 0 -e backend=fscrypt -e entry=unlock apply.yml

fi

if [ "$ONLY" != fscrypt ]; then
# luks on a 64 MB loop file.
run luks-check-fresh + -e backend=luks apply.yml --check
[ ! -e "$TEST_DIR/luks/disk.img" ] || { echo "--- check mode made the LUKS file" >&2; exit 1; }
run luks-first + -e backend=luks apply.yml -vvv
run luks-second 0 -e backend=luks apply.yml
run luks-check 0 -e backend=luks apply.yml --check
run luks-checks any -e backend=luks luks_checks.yml
fi

# No secret in any output: the recovery passphrase, and each key as it was and as it is now (raw, hex, base64).
secrets=("$PASSPHRASE")
for k in "$TEST_DIR"/fscrypt/keys/qoddi-data.key "$TEST_DIR"/luks/keys/qoddi-data.key "$TEST_DIR"/old-*.key "$TEST_DIR"/old-luks.key; do
  [ -f "$k" ] || continue
  secrets+=("$(od -An -tx1 "$k" | tr -d ' \n')" "$(base64 -w0 "$k")")
done
for s in "${secrets[@]}"; do
  if grep -rqF -- "$s" "$LOGS"; then echo "--- a key or passphrase appears in the logs: $(grep -rlF -- "$s" "$LOGS")" >&2; exit 1; fi
done
echo "--- no key or passphrase in $(find "$LOGS" -type f | wc -l) logs"
