"""What the official mongo image's tools do for the SecantusDB stand-in, with pymongo.

usage: mongo_tool.py create-root PORT   (MONGO_INITDB_ROOT_USERNAME/PASSWORD, at the first start)
       mongo_tool.py rotate              (the root user's new password, from QODDI_NEW_PASSWORD)
       mongo_tool.py dump               (every database but admin/local/config, to stdout)
       mongo_tool.py restore FILE       (drops and reloads the collections the dump holds)
A dump is one JSON line per document, in MongoDB's canonical Extended JSON, so every BSON type
comes back as it was: {"db": ..., "collection": ..., "doc": ...}.
"""
import os
import sys
import time

from bson import json_util
from pymongo import MongoClient

SYSTEM = {"admin", "local", "config"}


def local_client(port=27017, auth=True):
    kwargs = {}
    if auth and os.environ.get("MONGO_INITDB_ROOT_USERNAME"):
        kwargs = {"username": os.environ["MONGO_INITDB_ROOT_USERNAME"],
                  "password": os.environ["MONGO_INITDB_ROOT_PASSWORD"], "authSource": "admin"}
    return MongoClient("127.0.0.1", int(port), serverSelectionTimeoutMS=30000, **kwargs)


def create_root(port):
    client = local_client(port, auth=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.admin.command("ping")
            break
        except Exception:  # noqa: BLE001 - the server is still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    client.admin.command("createUser", os.environ["MONGO_INITDB_ROOT_USERNAME"],
                         pwd=os.environ["MONGO_INITDB_ROOT_PASSWORD"], roles=["root"])


def rotate(password):
    local_client().admin.command("updateUser", os.environ["MONGO_INITDB_ROOT_USERNAME"], pwd=password)


def dump():
    client = local_client()
    out = sys.stdout
    for db_name in client.list_database_names():
        if db_name in SYSTEM:
            continue
        for name in client[db_name].list_collection_names():
            for doc in client[db_name][name].find():
                out.write(json_util.dumps({"db": db_name, "collection": name, "doc": doc},
                                          json_options=json_util.CANONICAL_JSON_OPTIONS) + "\n")


def restore(path):
    client = local_client()
    dropped = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            item = json_util.loads(line)
            where = (item["db"], item["collection"])
            if where not in dropped:
                client[where[0]].drop_collection(where[1])
                dropped.add(where)
            client[where[0]][where[1]].insert_one(item["doc"])


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "create-root":
        create_root(sys.argv[2])
    elif command == "rotate":
        rotate(os.environ["QODDI_NEW_PASSWORD"])
    elif command == "dump":
        dump()
    elif command == "restore":
        restore(sys.argv[2])
    else:
        sys.exit(__doc__)
