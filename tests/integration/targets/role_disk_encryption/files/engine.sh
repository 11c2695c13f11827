#!/usr/bin/env bash
# A container engine of the test's own, apart from this host's: its own containerd (root, state and
# socket under the test directory, CRI off) and a dockerd with its own socket, data root, exec root,
# pid file, containerd namespace and cgroup parent, and no networking of its own (no bridge, no
# iptables rules). The host's engine is only read from, by `docker save` (see load below).
#   engine.sh start DIR DATA_ROOT CONTAINERD_ROOT   start both, wait until dockerd answers
#   engine.sh stop DIR                               stop dockerd, then containerd (what a shutdown does)
#   engine.sh containerd-only DIR CONTAINERD_ROOT    start containerd alone for 10 s, print its log (exit status: its own)
# DOCKER_HOST for the client: unix://DIR/run/docker.sock
set -euo pipefail
cmd=$1 dir=$2
run=$dir/run
mkdir -p "$run"

write_containerd_config() {
  cat >"$run/containerd.toml" <<EOF
version = 2
root = "$1"
state = "$run/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd.sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
}

stop_pid() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || { rm -f "$file"; return 0; }
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  rm -f "$file"
}

case "$cmd" in
  start)
    write_containerd_config "$4"
    echo '{}' >"$run/daemon.json"
    setsid containerd --config "$run/containerd.toml" >>"$run/containerd.log" 2>&1 </dev/null &
    echo $! >"$run/containerd.pid"
    for _ in $(seq 60); do ctr --address "$run/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.5; done
    # In a network namespace of its own: a dockerd started with --bridge none deletes the interface
    # named docker0 it finds (moby's removeDefaultBridgeInterface), which would be the host engine's.
    setsid unshare --net -- dockerd --config-file "$run/daemon.json" -H "unix://$run/docker.sock" --data-root "$3" \
      --exec-root "$run/exec" --pidfile "$run/docker.pid" \
      --bridge none --iptables=false --ip6tables=false --ip-masq=false \
      --containerd "$run/containerd.sock" --containerd-namespace qoddi-test-enc \
      --containerd-plugins-namespace qoddi-test-enc-plugins --cgroup-parent /qoddi-test-enc \
      >>"$run/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 120); do
      docker -H "unix://$run/docker.sock" version >/dev/null 2>&1 && exit 0
      sleep 0.5
    done
    echo "the test engine did not answer; its log ends:" >&2
    tail -n 20 "$run/dockerd.log" "$run/containerd.log" >&2
    exit 1
    ;;
  stop)
    stop_pid "$run/docker.pid"
    stop_pid "$run/containerd.pid"
    ;;
  containerd-only)
    write_containerd_config "$3"
    : >"$run/containerd-only.log"
    status=0
    timeout 10 containerd --config "$run/containerd.toml" >"$run/containerd-only.log" 2>&1 </dev/null || status=$?
    cat "$run/containerd-only.log"
    exit "$status"
    ;;
  *)
    echo "usage: engine.sh start|stop|containerd-only DIR ..." >&2
    exit 2
    ;;
esac
