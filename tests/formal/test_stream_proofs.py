"""Every kernel's stream protocol, proven in SymbiYosys (``binaryvit.sim.formal``).

The ``prove`` checks (k-induction, unbounded) and the ``cover`` runs run by default, 1-7 s
each. The other popcount widths and the MVU equivalences (12-35 s each on the shared
2-core machine) are marked slow: ``make formal`` (or ``make test-slow``) runs them.
``tests/formal/test_mutations.py`` shows each property kind fails on a broken kernel.
"""
from __future__ import annotations

import pytest

from binaryvit.sim.formal.suite import FORMAL_CHECKS

DEFAULT = {c.name for c in FORMAL_CHECKS
           if c.mode == "prove" or (c.name.startswith("popcount/") and c.name.endswith("-6"))
           or c.mode == "cover"}


def _param(check):
    marks = () if check.name in DEFAULT else (pytest.mark.slow,)
    return pytest.param(check, id=check.name, marks=marks)


@pytest.mark.parametrize("check", [_param(c) for c in FORMAL_CHECKS])
def test_formal_check_passes(check, tmp_path):
    result = check.run(tmp_path)
    assert result.status == "PASS", (
        f"{check.name} ({check.mode}, depth {check.depth}): {result.status}; "
        f"failed: {', '.join(result.failed) or '-'}\n{result.log[-2000:]}")


# Components without stream ports: their datapath is proven by the popcount/* checks.
NOT_STREAMING = {"XnorPopcount", "XnorPopcountArray"}


def test_every_kernel_module_has_a_stream_proof():
    """A new kernel in hw/kernels or hw/streams needs a case in kernel_cases.py."""
    import inspect
    import pkgutil

    from amaranth.lib import wiring

    import binaryvit.hw.kernels
    import binaryvit.hw.streams
    from binaryvit.sim.formal.kernel_cases import KERNEL_CASES

    from amaranth.hdl import Fragment

    proven = set()
    for case in KERNEL_CASES:
        kernel = case.build()
        proven.add(type(kernel))
        Fragment.get(kernel, None)  # elaborated: it is a valid instance (and "used")
    kernels = set()
    for package in (binaryvit.hw.kernels, binaryvit.hw.streams):
        for info in pkgutil.iter_modules(package.__path__):
            module = __import__(f"{package.__name__}.{info.name}", fromlist=["_"])
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, wiring.Component) and obj.__module__ == module.__name__:
                    kernels.add(obj)
    missing = {k.__name__ for k in kernels if k.__name__ not in NOT_STREAMING
               and not any(issubclass(p, k) or issubclass(k, p) for p in proven)}
    assert not missing, f"kernels without a formal case: {sorted(missing)}"
