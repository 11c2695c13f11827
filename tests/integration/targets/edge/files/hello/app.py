"""A tiny web app for the edge's tests: says which app and which task answered.

SLOW_TASK_SLOT=<n> makes the task in that slot take SLOW_SECONDS per request, for the balancing test.
"""
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

APP = os.environ.get("QODDI_APP", "?")
HOST = socket.gethostname()
SLOW = os.environ.get("DYNO", "") == "web." + os.environ.get("SLOW_TASK_SLOT", "none")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        if SLOW and self.path != "/healthz":
            time.sleep(float(os.environ.get("SLOW_SECONDS", "0.2")))
        body = f"hello from {APP} {HOST} proto={self.headers.get('X-Forwarded-Proto', '')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "5000"))), Handler).serve_forever()
