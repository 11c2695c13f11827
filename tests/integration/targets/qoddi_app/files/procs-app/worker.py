"""The worker process: runs until stopped, or fails when its release says so (as an import error would)."""

import os
import sys
import time

if os.path.exists("worker-fails"):
    # Later than the one second Swarm watches a new task for: only the platform's own wait sees it.
    time.sleep(2)
    sys.exit("worker-fails is present: this release's worker fails")
while True:
    time.sleep(60)
