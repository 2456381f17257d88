#!/usr/bin/env python3
"""Two copies at once on one asyncio loop with the ferry binding, printing progress.

    copy.py SRC1 DST1 [SRC2 DST2]

Each SRC is copied whole to the start of its DST (paths or device URIs: file:PATH,
ram:SIZE, iscsi://...). Needs python/ on PYTHONPATH and libferry (FERRY_LIBRARY=path or
installed)."""

import asyncio
import sys

import ferry


def show(src, dst):
    def report(p):
        print(f"  {src} -> {dst}: {p.bytes_done}/{p.bytes_total} bytes "
              f"({p.bytes_offloaded} offloaded) {p.mechanism}")
    return report


async def main(pairs):
    results = await asyncio.gather(
        *[ferry.copy(s, d, fua=True, progress=show(s, d)) for s, d in pairs],
        return_exceptions=True)
    failed = False
    for (s, d), r in zip(pairs, results):
        if isinstance(r, Exception):
            print(f"{s} -> {d}: FAILED: {r}", file=sys.stderr)
            failed = True
        else:
            print(f"{s} -> {d}: done, {r.bytes_done} bytes ({r.bytes_offloaded} offloaded, "
                  f"{r.bytes_emulated} emulated, mostly {r.mechanism})")
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 4):
        sys.exit(f"usage: {sys.argv[0]} SRC1 DST1 [SRC2 DST2]")
    sys.exit(asyncio.run(main(list(zip(args[::2], args[1::2])))))
