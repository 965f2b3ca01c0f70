"""CPU time of this process, for training times on a shared machine.

Other processes sharing the cores inflate wall-clock times; the CPU time a run consumed is
what it would cost alone. ``cpu_seconds`` counts user and system time of every thread of
this process and of its waited-for child processes (``getrusage``), so ``torchrun`` workers
launched as children are counted once they have exited.
"""
from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """User + system CPU seconds so far of this process (all threads) and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


__all__ = ["cpu_seconds"]
