#!/bin/sh
# The official mongo image's contract, on SecantusDB (the MongoDB wire protocol, from PyPI):
# MONGO_INITDB_ROOT_USERNAME/PASSWORD create the root user at the first start, then the server
# requires authentication; data in /data/db; port 27017.
set -eu
if [ "${1:-}" != mongod ]; then exec "$@"; fi
shift
bin=/opt/secantus/bin
if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ] && [ ! -e /data/db/.qoddi-root-user ]; then
  # SecantusDB's way: create users on a server without --auth (here on loopback only), then restart.
  "$bin/secantusd-py" --host 127.0.0.1 --port 27018 --storage-path /data/db --standalone --log-level WARNING &
  pid=$!
  "$bin/python" /usr/local/lib/qoddi/mongo_tool.py create-root 27018
  kill "$pid" && wait "$pid" || true
  touch /data/db/.qoddi-root-user
fi
# --standalone: drivers then connect to the address they were given, not to an advertised replica set.
exec "$bin/secantusd-py" --host 0.0.0.0 --port 27017 --storage-path /data/db --standalone ${MONGO_INITDB_ROOT_USERNAME:+--auth} "$@"
