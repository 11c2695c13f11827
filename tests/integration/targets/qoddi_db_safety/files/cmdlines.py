"""Record every process's arguments on this node (what `ps -eo args` shows), until SIGTERM.

usage: python3 cmdlines.py OUT   (each distinct command line once, as it is first seen)
The node sees the containers' processes too. Polled every 10 ms: a short-lived client (a backup's
redis-cli) lives longer than that.
"""
import os
import signal
import sys
import time

running = True


def stop(*unused):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
seen = set()
with open(sys.argv[1], "wb") as out:
    while running:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    line = handle.read()
            except OSError:
                continue
            if line and line not in seen:
                seen.add(line)
                out.write(line.replace(b"\0", b" ") + b"\n")
                out.flush()
        time.sleep(0.01)
