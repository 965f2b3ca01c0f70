"""Emit Verilog from an Amaranth component, deterministically.

The same component always gives the same text: no source-location attributes
(``emit_src=False``) and always Amaranth's built-in Yosys (``AMARANTH_USE_YOSYS=builtin``),
whatever other Yosys the user has installed. Build caches key on this text.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import ConfigError

__all__ = ["to_verilog", "write_verilog"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def to_verilog(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` as module ``name`` (ports ``clk``, ``rst`` and the
    flattened stream ports such as ``i__payload``, ``i__valid``, ``i__ready``)."""
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"module name {name!r} is not a Verilog identifier "
                          "(letters, digits, '_', not starting with a digit)")
    previous = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        return verilog.convert(component, name=name, emit_src=False)
    finally:
        if previous is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = previous


def write_verilog(component: wiring.Component, name: str, path: str | os.PathLike) -> Path:
    """Write ``to_verilog(component, name)`` to ``path`` atomically; return the path."""
    path = Path(path)
    write_text_atomic(path, to_verilog(component, name))
    return path
