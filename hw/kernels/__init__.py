"""Streaming hardware kernels: one Amaranth component per operation of the integer program,
each with stream ports, a ``model()`` calling ``golden/intref`` and a stated latency."""
