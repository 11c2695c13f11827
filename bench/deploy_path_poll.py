"""Keep-alive HTTPS load on an app's /version through the edge; when new code is first served everywhere.

usage: deploy_path_poll.py HOST CAFILE NEW_VERSION SECONDS THREADS PAUSE STOP_FILE

Each thread keeps one HTTP/1.1 connection to the edge (127.0.0.1:443, SNI and Host = HOST, the
certificate verified against CAFILE), as a browser does: a new connection when the server closed the
last one, and one repeat of a GET only when a reused connection was closed before any byte of the
answer came (RFC 9112 9.3.1). Any other failure counts.
Each thread waits PAUSE seconds after each answer: the load stays light enough not to slow the deploy it
watches on a 2-core machine, and PAUSE is the resolution of all_new_at.
Bounded by SECONDS and by MAX_REQUESTS per thread; ends sooner once STOP_FILE exists.
Prints one JSON line: ok, failed, retried, connections, the first errors, and all_new_at: the epoch
time of the first answer NEW_VERSION after which no answer was anything else (null if never).
"""
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

MAX_REQUESTS = 20000
EDGE = "127.0.0.1"
CLOSED_UNANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def main():
    host, cafile, new_version = sys.argv[1], sys.argv[2], sys.argv[3]
    seconds, threads, pause, stop_file = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
    context = ssl.create_default_context(cafile=cafile)
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0, "retried": 0, "connections": 0, "errors": []}
    # (epoch, is it the new version?) of every answer, failures counted as not new.
    answers = []

    class EdgeConnection(http.client.HTTPSConnection):
        def connect(self):
            sock = socket.create_connection((EDGE, 443), 10)
            self.sock = context.wrap_socket(sock, server_hostname=host)
            with lock:
                counts["connections"] += 1

    def get(conn):
        conn.request("GET", "/version")
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace").strip(), not response.will_close

    def worker():
        conn, reused = None, False
        for _unused in range(MAX_REQUESTS):
            if time.monotonic() > deadline or os.path.exists(stop_file):
                break
            try:
                if conn is None:
                    conn, reused = EdgeConnection(host, timeout=10, context=context), False
                try:
                    status, body, still_open = get(conn)
                except CLOSED_UNANSWERED:
                    if not reused:
                        raise
                    conn.close()
                    conn, reused = EdgeConnection(host, timeout=10, context=context), False
                    with lock:
                        counts["retried"] += 1
                    status, body, still_open = get(conn)
                if still_open:
                    reused = True
                else:
                    conn.close()
                    conn = None
                ok, error = status == 200, f"status {status}"
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
                ok, error, body = False, repr(exc), ""
                if conn is not None:
                    conn.close()
                    conn = None
            with lock:
                answers.append((time.time(), ok and body == new_version))
                counts["ok" if ok else "failed"] += 1
                if not ok and len(counts["errors"]) < 5:
                    counts["errors"].append(error)
            time.sleep(pause)
        if conn is not None:
            conn.close()

    pool = [threading.Thread(target=worker) for _unused in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    answers.sort()
    last_not_new = max((i for i, (_t, new) in enumerate(answers) if not new), default=-1)
    tail = answers[last_not_new + 1:]
    counts["all_new_at"] = tail[0][0] if tail else None
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
