"""The formal checks: how many, of what kind, and what each costs (SymbiYosys + Yices, one core).

Runs every check of ``binaryvit.sim.formal.suite`` (``--only TEXT`` to pick some) and
prints one row per check: its mode (``prove`` = k-induction, unbounded; ``bmc`` = bounded
to ``depth`` cycles from reset; ``cover`` = reaches its covers within ``depth``), depth,
verdict and wall time, then a summary by mode and the figures with their targets: every
kernel's stream protocol, word balance and framing by induction (issue 15), and the whole
suite in at most a tenth of CI's 90-minute run.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
from collections import defaultdict
from pathlib import Path

from binaryvit.sim.formal.kernel_cases import KERNEL_CASES
from binaryvit.sim.formal.suite import FORMAL_CHECKS

CI_BUDGET_S = 5400  # one CI run (docs: .ci/run); the formal suite should use a small part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    checks = [c for c in FORMAL_CHECKS if not args.only or any(t in c.name for t in args.only)]
    rows = []
    cpu_before = _children_cpu_s()
    with tempfile.TemporaryDirectory() as work:
        print(f"{'check':40s} {'mode':5s} {'depth':>5s} {'verdict':7s} {'s':>6s}")
        for check in checks:
            result = check.run(Path(work))
            rows.append((check, result))
            print(f"{check.name:40s} {check.mode:5s} {check.depth:5d} {result.status:7s} "
                  f"{result.seconds:6.1f}", flush=True)
    cpu = _children_cpu_s() - cpu_before
    by_mode: dict[str, list[float]] = defaultdict(list)
    for check, result in rows:
        by_mode[check.mode].append(result.seconds)
    total = sum(r.seconds for _, r in rows)
    passed = sum(r.passed for _, r in rows)
    print()
    print(f"{'mode':8s} {'checks':>6s} {'total s':>8s} {'max s':>6s}")
    for mode, times in sorted(by_mode.items()):
        print(f"{mode:8s} {len(times):6d} {sum(times):8.1f} {max(times):6.1f}")
    proven = [case for case in KERNEL_CASES if case.mode == "prove"]
    balanced = sum(1 for case in proven if case.spec.outputs
                   and all(a.pending is not None for a in case.spec.outputs))
    framed = sum(1 for case in proven if case.spec.outputs
                 and all(a.pending_last is not None for a in case.spec.outputs))
    kernels = len({c.name.split(":")[0] for c in KERNEL_CASES})
    print()
    print(f"{'figure':52s} {'measured':>10s} {'target':>10s}")
    print(f"{'checks passed':52s} {f'{passed}/{len(rows)}':>10s} {'all':>10s}")
    print(f"{'kernels with the protocol proven by induction':52s} "
          f"{len(proven):>10d} {kernels:>10d}")
    print(f"{'... and the word balance (nothing lost or duplicated)':52s} "
          f"{balanced:>10d} {kernels:>10d}")
    print(f"{'... and framing (lasts balanced; FIFOs store them)':52s} "
          f"{framed:>10d} {kernels:>10d}")
    print(f"{'wall time of these checks, one core (s)':52s} {total:10.0f} "
          f"{f'< {CI_BUDGET_S // 10}':>10s}")
    print(f"{'CPU time of the solvers and Yosys (s)':52s} {cpu:10.0f} {'':>10s}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall time "
          f"grows with the load, CPU time much less)")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
