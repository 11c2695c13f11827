"""A tiny web app for qoddi_env's tests: shows what its process sees.

/env/<KEY> answers the variable's value (404 when unset), /build what the build step saw of GREETING
(bin/post_compile wrote it), /healthz and / say it serves.
"""
import os
import pathlib
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - the name http.server calls
        status, body = 200, f"ok {os.environ.get('DYNO', '?')}\n"
        if self.path.startswith("/env/"):
            value = os.environ.get(self.path[len("/env/"):])
            status, body = (404, "unset") if value is None else (200, value)
        elif self.path == "/build":
            body = pathlib.Path("build-greeting.txt").read_text()
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler)
# As PID 1 the process gets no default SIGTERM handling: stop serving when Swarm asks (gunicorn does).
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
