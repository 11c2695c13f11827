"""The worker process: runs until stopped (the Procfile fails it at once when worker-fails is present)."""

import time

while True:
    time.sleep(60)
