"""The worker process: runs until stopped, or fails at once when its release says so."""

import os
import sys
import time

if os.path.exists("worker-fails"):
    sys.exit("worker-fails is present: this release's worker fails")
while True:
    time.sleep(60)
