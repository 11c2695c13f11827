"""Send HTTPS requests to one URL for a bounded time from a few threads; print a JSON summary.

usage: load.py URL HOST_IP CAFILE SECONDS THREADS [keepalive]
An http:// URL goes to port 80 (CAFILE is then ignored), an https:// one to 443; a CAFILE of "-"
verifies no certificate (the edge's default one, for a test about routing, not TLS).
By default each request opens a new connection (the case a reload could break). With "keepalive",
each thread keeps one persistent HTTP/1.1 connection as a browser does, and behaves like one:
it opens a new connection when the server closed the last one (Connection: close, or closed while
idle), and repeats a GET once, on a new connection, only when a reused connection was closed before
any byte of the answer came (RFC 9112 9.3.1; what browsers do). Any other failure counts. The summary
then also counts the connections opened ("connections") and such repeats ("retried").
Bounded by SECONDS and by MAX_REQUESTS per thread, and ends sooner once the file named by the
environment variable LOAD_STOP_FILE exists (the end of what the load is for, e.g. a deploy); only
loopback addresses and Docker's default bridge pool (172.16.0.0/12: test nodes on this host) are
accepted. The summary counts answers by body ("answers", at most 16 kinds: which task answered, for an
app that says so) and says when the first and last failures came (seconds from the start).
"""
import http.client
import ipaddress
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

MAX_REQUESTS = 20000
LOCAL_BRIDGES = ipaddress.ip_network("172.16.0.0/12")  # Docker's default address pool
# A reused connection the server closed before answering: what a client may repeat the GET for.
CLOSED_UNANSWERED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def main():
    url, address, cafile, seconds, threads = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    keepalive = sys.argv[6:7] == ["keepalive"]
    if not (ipaddress.ip_address(address).is_loopback or ipaddress.ip_address(address) in LOCAL_BRIDGES):
        sys.exit("load.py sends traffic to loopback addresses and Docker's bridges on this host only")
    parsed = urllib.parse.urlsplit(url)
    plain = parsed.scheme == "http"
    context = None if plain else ssl.create_default_context(cafile=None if cafile == "-" else cafile)
    if cafile == "-" and context:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    counts = {"ok": 0, "failed": 0, "errors": [], "last": "", "answers": {}, "first_failure": None,
              "last_failure": None}
    started = time.monotonic()
    if keepalive:
        counts.update(connections=0, retried=0)

    class EdgeConnection(http.client.HTTPConnection if plain else http.client.HTTPSConnection):
        """SNI and Host name the app; the TCP connection goes to the edge's loopback address."""

        def connect(self):
            sock = socket.create_connection((address, 80 if plain else 443), 10)
            self.sock = sock if plain else context.wrap_socket(sock, server_hostname=self.host)
            if keepalive:
                with lock:
                    counts["connections"] += 1

    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    stop_file = os.environ.get("LOAD_STOP_FILE")

    def new_connection():
        return EdgeConnection(parsed.hostname, timeout=10, **({} if plain else {"context": context}))

    def get(conn):
        """One GET on conn; returns (status, body, whether the server keeps the connection open)."""
        conn.request("GET", parsed.path or "/")
        response = conn.getresponse()
        body = response.read()
        return response.status, body, not response.will_close

    def worker():
        conn, reused = None, False
        for _unused_request in range(MAX_REQUESTS):
            if time.monotonic() > deadline or (stop_file and os.path.exists(stop_file)):
                break
            try:
                if not keepalive:
                    conn = new_connection()
                    status, body, _unused_open = get(conn)
                    conn.close()
                else:
                    if conn is None:
                        conn, reused = new_connection(), False
                    try:
                        status, body, still_open = get(conn)
                    except CLOSED_UNANSWERED:
                        if not reused:
                            raise
                        conn.close()
                        conn, reused = new_connection(), False
                        with lock:
                            counts["retried"] += 1
                        status, body, still_open = get(conn)
                    if still_open:
                        reused = True
                    else:
                        conn.close()
                        conn = None
                ok = status == 200
                error = f"status {status}"
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
                ok, error = False, repr(exc)
                if conn is not None:
                    conn.close()
                    conn = None
            with lock:
                counts["ok" if ok else "failed"] += 1
                if ok:
                    counts["last"] = body.decode(errors="replace").strip()
                    answers = counts["answers"]
                    if counts["last"] in answers or len(answers) < 16:
                        answers[counts["last"]] = answers.get(counts["last"], 0) + 1
                else:
                    at = round(time.monotonic() - started, 2)
                    if counts["first_failure"] is None:
                        counts["first_failure"] = at
                    counts["last_failure"] = at
                    if len(counts["errors"]) < 5:
                        counts["errors"].append(error)
        if conn is not None:
            conn.close()

    pool = [threading.Thread(target=worker) for _unused_thread in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
