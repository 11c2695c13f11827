"""The web process: answers its release number (a test of the platform, not a real app)."""

import http.server
import os
import sys

if os.path.exists("web-fails"):
    sys.exit("web-fails is present: this release's web process refuses to start")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the standard library's name
        body = os.environ.get("QODDI_RELEASE", "?").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
