"""``python -m binaryvit.sim.formal [--only TEXT] [--workdir DIR]``: run the formal checks.

Runs every check of ``binaryvit.sim.formal.suite`` (or those whose name contains one of
the ``--only`` texts) one after the other, printing one line per check as it finishes
(name, mode, depth, verdict, seconds) and a summary; exits 1 if any check did not pass
(its SymbiYosys folder under ``--workdir``, default ``build/formal``, holds the trace),
2 when ``--only`` matches nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from binaryvit.sim.formal.suite import FORMAL_CHECKS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m binaryvit.sim.formal", description=__doc__)
    parser.add_argument("--only", action="append", default=[],
                        help="run only checks whose name contains this text (repeatable)")
    parser.add_argument("--workdir", type=Path, default=Path("build/formal"))
    args = parser.parse_args(argv)
    checks = [c for c in FORMAL_CHECKS if not args.only or any(t in c.name for t in args.only)]
    if not checks:
        print(f"error: --only {args.only} matches no check", file=sys.stderr)
        return 2
    start = time.perf_counter()
    failed = []
    print(f"{len(checks)} formal checks (SymbiYosys, smtbmc yices), work folder {args.workdir}")
    for n, check in enumerate(checks, 1):
        result = check.run(args.workdir)
        print(f"[{n:2d}/{len(checks)}] {check.name:38s} {check.mode:5s} depth {check.depth:2d}  "
              f"{result.status:7s} {result.seconds:6.1f} s", flush=True)
        if not result.passed:
            failed.append((check.name, result))
    print(f"{len(checks) - len(failed)}/{len(checks)} passed in {time.perf_counter() - start:.0f} s")
    for name, result in failed:
        detail = ", ".join(result.failed) or result.status
        print(f"FAILED {name}: {detail} (trace in {result.workdir})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
