"""A process that serves no HTTP: it echoes one line, upper-cased, on TCP port 7000, for the stack's
other apps (upper-cased: the test sends it as a no_log value, which Ansible would mask in the answer)."""
import socketserver


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"echo " + self.rfile.readline().upper())


socketserver.ThreadingTCPServer.allow_reuse_address = True
print("tcp echo on 7000", flush=True)
socketserver.ThreadingTCPServer(("0.0.0.0", 7000), Echo).serve_forever()
