# shellcheck shell=sh
# What an app of the stack does with a datastore: write or read the value of key x.
# usage: sh -c "$(cat client.sh)" client ENGINE write|read   (env: URL, VALUE, H U P D)
# The password goes in the environment (PGPASSWORD, MYSQL_PWD, REDISCLI_AUTH), never as an argument.
engine=$1 action=$2
case "$engine.$action" in
  postgres.write) PGPASSWORD="$P" psql -h "$H" -U "$U" -d "$D" -v ON_ERROR_STOP=1 -qc "CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text);
                  INSERT INTO kv VALUES ('x', '$VALUE') ON CONFLICT (k) DO UPDATE SET v = excluded.v" ;;
  postgres.read) PGPASSWORD="$P" psql -h "$H" -U "$U" -d "$D" -tAc "SELECT v FROM kv WHERE k = 'x'" ;;
  mysql.write) MYSQL_PWD="$P" mariadb -h "$H" -u "$U" "$D" -e "CREATE TABLE IF NOT EXISTS kv (k varchar(8) PRIMARY KEY, v text);
               REPLACE INTO kv VALUES ('x', '$VALUE')" ;;
  mysql.read) MYSQL_PWD="$P" mariadb -h "$H" -u "$U" "$D" -N -e "SELECT v FROM kv WHERE k = 'x'" ;;
  # redis-cli exits 0 after an error reply (a refused password too): read its answer.
  redis.*) if [ "$action" = write ]; then set -- SET x "$VALUE"; else set -- GET x; fi
           out=$(REDISCLI_AUTH="$P" redis-cli -h "$H" "$@" 2>&1)
           case "$out" in *NOAUTH*|*WRONGPASS*|ERR*) echo "$out" >&2; exit 1 ;; esac
           if [ "$1" = GET ]; then echo "$out"; fi ;;
  mongodb.*) /opt/secantus/bin/python - "$action" <<'PY'
import os, sys
from pymongo import MongoClient
kv = MongoClient(os.environ["URL"], serverSelectionTimeoutMS=20000).get_default_database().kv
if sys.argv[1] == "write":
    kv.replace_one({"_id": "x"}, {"_id": "x", "v": os.environ["VALUE"]}, upsert=True)
else:
    print(kv.find_one({"_id": "x"})["v"])
PY
  ;;
  *) echo "unknown $engine.$action" >&2; exit 2 ;;
esac
