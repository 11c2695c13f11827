#!/usr/bin/env bash
# A new custom domain, three times: seconds from the start of the qoddi_app run (the playbook's
# start, so Ansible's own start-up is counted) to HTTPS 200 with a certificate that verifies against
# pebble's root, with no edge playbook (the controller follows). Each run is a new domain, so a new
# certificate is ordered each time. Needs the platform (make demo) with this collection's
# controller and edge. Copy the printed lines, with the date, into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG=$PWD/ansible.cfg
inventory=inventories/local/hosts.yml
root=/etc/qoddi/pebble/issuing-root.pem
run() { ansible-playbook -i "$inventory" bench/edge_follows.yml "$@" >/tmp/qoddi-bench-follows.log 2>&1; }
cleanup() {
  run -e bench_state=absent || true
  rm -f /etc/qoddi/acme/qoddi-bench-follows.qoddi.localhost.* /etc/qoddi/acme/follows-*.example.test.*
}
trap cleanup EXIT

echo "date: $(date -u +%Y-%m-%dT%H:%MZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
run -e bench_domain=  # the app and its default domain first: the figure is for a new custom domain
for i in 1 2 3; do
  domain="follows-$(date +%s)-$i.example.test"
  start=$(date +%s.%N)
  run -e "bench_domain=$domain"
  deployed=$(date +%s.%N)
  for _ in $(seq 600); do
    if curl -sS --fail --max-time 5 --cacert "$root" --resolve "$domain:443:127.0.0.1" -o /dev/null \
         "https://$domain/" 2>/dev/null; then break; fi
    sleep 0.1
  done
  served=$(date +%s.%N)
  curl -sS --fail --max-time 5 --cacert "$root" --resolve "$domain:443:127.0.0.1" -o /dev/null "https://$domain/"
  python3 -c "print(f'run $i: playbook {$deployed - $start:.1f} s, HTTPS 200 with a valid certificate {$served - $start:.1f} s after its start')"
done
