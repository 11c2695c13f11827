"""Try each KIND:HOST:PORT given (a name or an address), 3 s each; print one JSON object of what
answered, keyed by the argument: false when nothing did (no such name, refused, timed out).

Who answered matters, not only that a connection opened: an address no route leads to inside the
cluster goes out by the default route, and on this project's machines whatever is out there accepts
every connection. So each kind speaks its service's protocol and returns its answer:
  http  GET / -> the body's first line
  pg    Postgres's SSLRequest -> its one-byte answer, "S" or "N"
  echo  the line "ping" -> the answer's first line (tcp_echo.py: "echo PING")
"""
import json
import socket
import struct
import sys


def ask(kind, conn):
    if kind == "http":
        conn.sendall(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        return answer.partition(b"\r\n\r\n")[2].decode(errors="replace").split("\n")[0]
    if kind == "pg":
        conn.sendall(struct.pack("!ii", 8, 80877103))
        return conn.recv(1).decode(errors="replace")
    conn.sendall(b"ping\n")
    return conn.makefile().readline().strip()


found = {}
for target in sys.argv[1:]:
    kind, host, port = target.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3) as conn:
            conn.settimeout(3)
            found[target] = ask(kind, conn)
    except OSError as exc:
        found[target] = False
        print(f"{target}: {exc}", file=sys.stderr)
print(json.dumps(found))
