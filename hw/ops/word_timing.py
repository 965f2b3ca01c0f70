"""The primitives of the word-level timing models: cycle arrays and one-word-a-cycle ports.

Times are numpy int64 arrays over all simulated images, stream order. ``NEVER`` stands for
"no lower bound". Each op's spec has its kernel's timing model (``OpSpec.timing``); the
network schedule (``binaryvit.hw.network.timing``) runs them.
"""
from __future__ import annotations

import numpy as np

__all__ = ["NEVER", "FIFO_LATENCY", "Times", "chain"]

NEVER = -(1 << 40)
# StreamFIFO (SyncFIFOBuffered): a word written on cycle w is valid at the output on w + 2.
FIFO_LATENCY = 2

Times = np.ndarray


def chain(ready: Times, start: int = NEVER) -> Times:
    """Transfer cycles of a port that takes one word per cycle as soon as it is ready:
    ``c[k] = max(ready[k], c[k−1] + 1)``, ``c[0] ≥ start``."""
    k = np.arange(len(ready), dtype=np.int64)
    return k + np.maximum(np.maximum.accumulate(ready - k), start)
