"""The cluster check app: answers every GET with the name of the task that answered (its container's
host name), so a client can tell which node's task served it. Standard library only."""
import http.server
import os
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the edge: Content-Length is always set

    def do_GET(self):  # noqa: N802 - http.server's name
        body = f"{socket.gethostname()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # one line per request would flood the service's log under load


http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
