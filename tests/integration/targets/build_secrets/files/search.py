"""Search every image a build left on this engine for secret values; print where each was found.

The markers come from the environment (ITEST_MARKERS, a JSON object name -> value), not from the
command line, and only their names are printed. Images searched: those created since ITEST_SINCE
(an RFC 3339 time: the build's layers, intermediate build-cache images, dangling images) and the
images named as arguments with all their parents (`docker save` writes every layer of an image).
Each is searched in its `docker save` bytes (uncompressed layer tars), `docker history --no-trunc`
and `docker inspect`.
"""
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime


def docker(*args: str) -> bytes:
    return subprocess.run(["docker", *args], check=True, capture_output=True).stdout


def created(text: str) -> datetime:
    # Docker writes nanoseconds, which fromisoformat does not read before Python 3.11.
    head, unused_dot, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "." + (rest[:6] or "0") + "+00:00")


def main() -> None:
    markers = {name: value.encode() for name, value in json.loads(os.environ["ITEST_MARKERS"]).items()}
    since = created(os.environ["ITEST_SINCE"])
    ids = docker("images", "-a", "-q", "--no-trunc").decode().split()
    chosen = set(docker("inspect", "--format", "{{.Id}}", *sys.argv[1:]).decode().split()) if sys.argv[1:] else set()
    for attrs in json.loads(docker("inspect", *sorted(set(ids)))) if ids else []:
        if created(attrs["Created"]) >= since:
            chosen.add(attrs["Id"])
    found = {name: [] for name in markers}

    def search(where: str, data: bytes) -> None:
        for name, value in markers.items():
            if value in data:
                found[name].append(where)

    for image in sorted(chosen):
        search(f"docker history {image}", docker("history", "--no-trunc", image))
        search(f"docker inspect {image}", docker("inspect", image))
    with tempfile.TemporaryDirectory(prefix="itest-secrets-save-") as tmp:
        archive = os.path.join(tmp, "images.tar")
        if chosen:
            docker("save", "-o", archive, *sorted(chosen))
            # In overlapping chunks, so a value split across two reads is still found.
            longest = max(len(v) for v in markers.values())
            with open(archive, "rb") as handle:
                previous = b""
                while chunk := handle.read(1 << 24):
                    search("docker save", previous + chunk)
                    previous = chunk[-longest:]
    print(json.dumps({"images": len(chosen), "found": {k: sorted(set(v)) for k, v in found.items()}}))


main()
