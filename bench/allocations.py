#!/usr/bin/env python3
"""Heap allocations per request, from a callgrind dump: the calls into the allocator's
entry points (mimalloc's, which hookwarden uses, and the system allocator's, which
hyper-pass uses), summed over every caller.

    python3 bench/allocations.py CALLGRIND_FILE REQUESTS
"""
import re
import sys

ENTRY = re.compile(r"^(mi_malloc_aligned|mi_zalloc_aligned|mi_realloc_aligned|malloc|calloc|realloc)$")


def main(path, requests):
    names = {}
    calls = {}
    target = None
    for line in open(path, errors="replace"):
        if line.startswith(("cfn=", "cfi=", "cob=")) and line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.strip())
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                target = names.get(m.group(1))
        elif line.startswith("fn="):
            m = re.match(r"fn=\((\d+)\)(?: (.*))?", line.strip())
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
        elif line.startswith("calls=") and target is not None:
            if ENTRY.match(target):
                n = int(line.split()[0][6:])
                calls[target] = calls.get(target, 0) + n
            target = None
    total = sum(calls.values())
    detail = ", ".join(f"{k} {v / requests:.1f}" for k, v in sorted(calls.items()))
    print(f"{total / requests:.1f} allocations per request ({detail})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
