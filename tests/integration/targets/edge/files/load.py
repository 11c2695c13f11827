"""Send HTTPS requests to one URL for a bounded time from a few threads; print a JSON summary.

usage: load.py URL HOST_IP CAFILE SECONDS THREADS
An http:// URL goes to port 80 (CAFILE is then ignored), an https:// one to 443.
Each request opens a new connection (the case a reload could break). Bounded by SECONDS and by
MAX_REQUESTS per thread; only loopback addresses are accepted.
"""
import http.client
import json
import socket
import ssl
import sys
import threading
import time
import urllib.parse

MAX_REQUESTS = 20000


def main():
    url, address, cafile, seconds, threads = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
    if not address.startswith("127."):
        sys.exit("load.py sends traffic to loopback addresses only")
    parsed = urllib.parse.urlsplit(url)
    plain = parsed.scheme == "http"
    context = None if plain else ssl.create_default_context(cafile=cafile)
    counts = {"ok": 0, "failed": 0, "errors": []}

    class EdgeConnection(http.client.HTTPConnection if plain else http.client.HTTPSConnection):
        """SNI and Host name the app; the TCP connection goes to the edge's loopback address."""

        def connect(self):
            sock = socket.create_connection((address, 80 if plain else 443), 10)
            self.sock = sock if plain else context.wrap_socket(sock, server_hostname=self.host)

    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        for _unused_request in range(MAX_REQUESTS):
            if time.monotonic() > deadline:
                return
            try:
                conn = EdgeConnection(parsed.hostname, timeout=10, **({} if plain else {"context": context}))
                conn.request("GET", parsed.path or "/")
                status = conn.getresponse().status
                conn.close()
                ok = status == 200
                error = f"status {status}"
            except Exception as exc:  # noqa: BLE001 - every failure counts, whatever its kind
                ok, error = False, repr(exc)
            with lock:
                counts["ok" if ok else "failed"] += 1
                if not ok and len(counts["errors"]) < 5:
                    counts["errors"].append(error)

    pool = [threading.Thread(target=worker) for _unused_thread in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
