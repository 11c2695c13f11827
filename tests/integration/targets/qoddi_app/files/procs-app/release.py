"""The release command: fails when the config var FAIL_RELEASE says so (a failed migration)."""

import os
import sys

if os.environ.get("FAIL_RELEASE") == "yes":
    sys.exit("FAIL_RELEASE=yes: the release command fails")
print("release command ran for release", os.environ.get("QODDI_RELEASE"))
