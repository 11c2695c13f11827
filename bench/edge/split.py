"""Send COUNT requests over CONNS keep-alive connections to URL; count answers by the task that gave them.

The bench's balance test: the hello app answers "hello from <app> <task hostname> ...". Bounded by COUNT.
usage: split.py URL HOST COUNT CONNS
"""
import collections
import http.client
import sys
import threading
import urllib.parse

url, host, count, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
parsed = urllib.parse.urlsplit(url)
tally, errors, lock = collections.Counter(), [0], threading.Lock()


def worker(n):
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=30)
    for _unused_request in range(n):
        try:
            conn.request("GET", parsed.path or "/", headers={"Host": host})
            body = conn.getresponse().read().decode()
            task = body.split()[3] if body.startswith("hello from") else "other"
        except Exception:  # noqa: BLE001 - a failure is counted, whatever its kind
            task = None
            conn.close()
            conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=30)
        with lock:
            if task is None:
                errors[0] += 1
            else:
                tally[task] += 1


threads = [threading.Thread(target=worker, args=(count // conns,)) for _unused_conn in range(conns)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
for task, n in tally.most_common():
    print(f"{task} {n}")
print(f"errors {errors[0]}")
