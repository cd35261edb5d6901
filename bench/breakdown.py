#!/usr/bin/env python3
"""Where hookwarden's instructions per request go, by subsystem, from a callgrind dump
(bench/instructions.sh with KEEP=1 leaves them in its work folder).

    python3 bench/breakdown.py CALLGRIND_FILE REQUESTS

Each subsystem is the inclusive cost of the functions that enter it, chosen so that
none is inside another; SHA-256 is taken out of verification and dedup (valgrind runs
the portable SHA-256, which the CPU's SHA extensions replace natively). What no entry
covers (the runtime's scheduling, polling sockets, the glue between the steps) is
"runtime and glue".
"""
import re
import subprocess
import sys

SUBSYSTEMS = [
    ("HTTP server (hyper, our framing watch)", [r"hookwarden::server::connection::\{\{closure\}\}$"]),
    ("verification without SHA-256", [r"hookwarden::providers::\w+::verify$"]),
    ("JSON check, id and type (normalize)", [r"hookwarden::providers::\w+::normalize$"]),
    ("envelope", [r"hookwarden::envelope::(render|pieces)$"]),
    ("dedup without SHA-256", [r"hookwarden::dedup::key$", r"hookwarden::dedup::Ticket<F>::\w+$",
                               r"hookwarden::dedup::Dedup<F>::\w+$", r"hookwarden::dedup::delivered::Delivered::insert$"]),
    ("rate limit", [r"hookwarden::ratelimit::Limiter::check$"]),
    ("metrics", [r"hookwarden::metrics::\w+::\w+$"]),
    ("request log", [r"hookwarden::request_log::RequestLog::record$"]),
    ("forwarding (request, client connection; envelope apart)", [r"hookwarden::delivery::sync::Delivery::forward::\{\{closure\}\}$",
                                                 r"hookwarden::forward::pool::handshake::\{\{closure\}\}::\{\{closure\}\}$"]),
    ("tracing", [r"^tracing::", r"^tracing_core::", r"^tracing_subscriber::"]),
]
SHA = r"sha2::sha256::compress256$"


def inclusive(path):
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+\?\?\?:(.*?) \[", line)
        if m:
            costs[m.group(2)] = int(m.group(1).replace(",", ""))
    return costs


def main(path, requests):
    costs = inclusive(path)
    total = max(costs.values())
    sha = sum(v for k, v in costs.items() if re.search(SHA, k))
    dedup_sha = costs.get("hookwarden::dedup::key", 0)
    rows = []
    for name, patterns in SUBSYSTEMS:
        v = sum(c for k, c in costs.items() if any(re.search(p, k) for p in patterns))
        if name.startswith("verification"):
            v -= sha - dedup_sha
        if name.startswith("forwarding"):
            # The envelope is written inside the forward.
            v -= sum(c for k, c in costs.items() if re.search(r"hookwarden::envelope::(render|pieces)$", k))
        if name.startswith("dedup"):
            # dedup::key is one SHA-256 block and little else.
            v -= dedup_sha
        rows.append((name, v))
    named = sum(v for _, v in rows)
    rows.append(("runtime and glue (the rest)", total - sha - named))
    print(f"| subsystem | instructions per request |")
    print(f"| --- | ---: |")
    for name, v in rows:
        print(f"| {name} | {v / requests / 1000:.1f}k |")
    print(f"| **total without SHA-256** | **{(total - sha) / requests / 1000:.1f}k** |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
