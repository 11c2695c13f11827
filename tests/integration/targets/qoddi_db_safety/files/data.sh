# shellcheck shell=sh
# Data with binary and non-ASCII values, as an app of the stack would write it, and a digest of all of
# it in a fixed order: equal digests, equal data, byte for byte.
# usage: sh -c "$(cat data.sh)" data ENGINE write|change|sum   (env: H U P D; URL for MongoDB)
# The password comes in the environment only (PGPASSWORD, MYSQL_PWD, REDISCLI_AUTH): never an argument.
engine=$1 action=$2
set -eu
case "$engine.$action" in
  postgres.*)
    export PGPASSWORD="$P"
    sql() { psql -h "$H" -U "$U" -d "$D" -v ON_ERROR_STOP=1 -qtAc "$1"; }
    case $action in
      write) sql "CREATE TABLE blobs (k int PRIMARY KEY, t text, b bytea);
                  INSERT INTO blobs SELECT i, 'é€😀 ключ ' || i || chr(1114111), decode(lpad(to_hex(i), 2, '0'), 'hex')
                  FROM generate_series(0, 255) i;
                  INSERT INTO blobs SELECT 1000, 'all bytes', decode(string_agg(lpad(to_hex(i), 2, '0'), ''), 'hex')
                  FROM generate_series(0, 255) i" ;;
      change) sql "UPDATE blobs SET t = t || '!', b = b || '\x00'::bytea WHERE k = 7; INSERT INTO blobs VALUES (2000, 'ü', '\xff')" ;;
      sum) sql "SELECT md5(string_agg(k || ':' || encode(convert_to(t, 'UTF8'), 'hex') || ':' || encode(b, 'hex'), ',' ORDER BY k))
                FROM blobs" ;;
    esac ;;
  mysql.*)
    export MYSQL_PWD="$P"
    sql() { mariadb --default-character-set=utf8mb4 -h "$H" -u "$U" -N "$D" -e "$1"; }
    case $action in
      write) sql "CREATE TABLE blobs (k int PRIMARY KEY, t text CHARACTER SET utf8mb4, b blob);
                  INSERT INTO blobs SELECT seq, CONCAT('é€😀 ключ ', seq), UNHEX(LPAD(HEX(seq), 2, '0')) FROM seq_0_to_255;
                  INSERT INTO blobs SELECT 1000, 'all bytes', UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR ''))
                  FROM seq_0_to_255" ;;
      change) sql "UPDATE blobs SET t = CONCAT(t, '!'), b = CONCAT(b, X'00') WHERE k = 7; INSERT INTO blobs VALUES (2000, 'ü', X'FF')" ;;
      sum) sql "SET SESSION group_concat_max_len = 16777216;
                SELECT MD5(GROUP_CONCAT(k, ':', HEX(t), ':', HEX(b) ORDER BY k SEPARATOR ',')) FROM blobs" ;;
    esac ;;
  redis.*)
    export REDISCLI_AUTH="$P"
    r() { redis-cli --no-auth-warning -h "$H" "$@"; }
    case $action in
      write) i=0; while [ $i -lt 256 ]; do printf %b "\\0$(printf %o "$i")"; i=$((i + 1)); done > /tmp/all
             r -x SET 'all bytes' < /tmp/all >/dev/null
             printf 'é€😀 ключ' | r -x SET 'ключ:é' >/dev/null
             printf '\000\377\n\r' | r -x HSET h 'bïn' >/dev/null
             r RPUSH l 'a' 'ü' '' >/dev/null ;;
      change) r APPEND 'all bytes' x >/dev/null; r SET new 'ü' >/dev/null ;;
      # DUMP: the engine's own serialisation of each value (type, encoding, bytes), in key order.
      sum) r --scan | LC_ALL=C sort | while IFS= read -r key; do printf '%s\n' "$key"; r --raw DUMP "$key" | od -An -tx1; done \
             | sha256sum | cut -d' ' -f1 ;;
    esac ;;
  mongodb.*) /opt/secantus/bin/python - "$action" <<'PY'
import hashlib, os, sys
from bson import Binary, json_util
from pymongo import MongoClient
db = MongoClient(os.environ["URL"], serverSelectionTimeoutMS=20000).get_default_database()
action = sys.argv[1]
if action == "write":
    db.blobs.insert_many([{"_id": i, "t": f"é€😀 ключ {i}", "b": Binary(bytes([i]))} for i in range(256)])
    db.blobs.insert_one({"_id": "all bytes", "b": Binary(bytes(range(256))), "nested": {"ü": [1.5, None, True]}})
elif action == "change":
    db.blobs.update_one({"_id": 7}, {"$set": {"t": "changed"}})
    db.blobs.insert_one({"_id": "new", "t": "ü"})
else:
    digest = hashlib.sha256()
    for name in sorted(db.list_collection_names()):
        docs = [json_util.dumps(d, json_options=json_util.CANONICAL_JSON_OPTIONS) for d in db[name].find()]
        for doc in sorted(docs):
            digest.update(f"{name}\t{doc}\n".encode())
    print(digest.hexdigest())
PY
  ;;
  *) echo "unknown $engine.$action" >&2; exit 2 ;;
esac
