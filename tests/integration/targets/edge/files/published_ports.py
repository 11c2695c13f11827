# Copyright (c) qoddi.paas contributors
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as JSON, the ports the platform's services publish and its running containers bind on
an address other than the loopback: {"services": [[name, port]...], "containers": [[name, port]...]}.

The platform's: services and containers labelled org.qoddi.* or named qoddi*.
"""
import json
import subprocess


def inspect(kind: str) -> list:
    ids = subprocess.run(["docker", kind, "ls", "-q"], check=True, capture_output=True, text=True).stdout.split()
    if not ids:
        return []
    return json.loads(subprocess.run(["docker", kind, "inspect", *ids], check=True, capture_output=True,
                                     text=True).stdout)


def platform(name: str, labels: dict | None) -> bool:
    return name.lstrip("/").startswith("qoddi") or any(key.startswith("org.qoddi.") for key in labels or {})


# The spec's ports (host mode included) and the ones the engine assigned (ingress, published: 0).
services = sorted({(s["Spec"]["Name"], port["PublishedPort"]) for s in inspect("service")
                   if platform(s["Spec"]["Name"], s["Spec"].get("Labels"))
                   for port in ((s.get("Endpoint") or {}).get("Ports") or [])
                   + ((s["Spec"].get("EndpointSpec") or {}).get("Ports") or []) if port.get("PublishedPort")})
containers = [[c["Name"].lstrip("/"), int(binding["HostPort"])] for c in inspect("container")
              if platform(c["Name"], c["Config"].get("Labels"))
              for bindings in ((c["NetworkSettings"].get("Ports") or {}).values()) if bindings
              for binding in bindings if not binding["HostIp"].startswith(("127.", "::1"))]
print(json.dumps({"services": services, "containers": containers}))
