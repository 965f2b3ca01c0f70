"""Lint generated Verilog with ``verilator --lint-only -Wall``.

Tests assert ``lint_verilog(...) == []``. The few warnings that come from the *style* of
Amaranth's Verilog back end, not from a design's logic, are waived narrowly (by warning
code and signal name); ``docs/verification.md`` explains each waiver.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from binaryvit.errors import ToolError
from binaryvit.sim.toolchain import require_tool, tool_env

__all__ = ["lint_verilog", "WAIVERS"]

# (warning code, regex the whole warning message must match). See docs/verification.md.
WAIVERS: tuple[tuple[str, str], ...] = (
    # Amaranth gives every register its reset value in the declaration (`reg x = 0;`) and
    # assigns it in an always block: that is how it expresses `init`, not a design flaw.
    ("PROCASSINIT", r".*"),
    # Amaranth emits a named alias wire for every field of a structured payload
    # (`\i__payload.last`, `\i__payload.data[0]`) for waveform readability; unused
    # fields leave these aliases unread.
    ("UNUSEDSIGNAL", r".*'[^']*[.\[][^']*'.*"),
    # Yosys temporaries (`$12`) hold an arithmetic result one bit wider than the slice
    # Amaranth takes from it (Amaranth widens `a + b` by a bit; the design truncates).
    ("UNUSEDSIGNAL", r"Bits of signal are not used: '\$[0-9]+'.*"),
    # Mixed-width operands of an operator: Amaranth's back end relies on Verilog's
    # context-width extension (zero- or `$signed` sign-extension) that yields exactly
    # Amaranth's value. Width changes on assignments (ASSIGN, ASSIGNW) stay reported.
    ("WIDTHEXPAND", r"Operator (?!ASSIGN)[A-Z]+ expects .*"),
    ("WIDTHTRUNC", r"Logical operator LOGNOT expects 1 bit .*"),
    # Amaranth writes a whole hierarchy into one file; the file is linted as `<top>.v`, so
    # only the submodules' names differ from it.
    ("DECLFILENAME", r"Filename '[^']*' does not match MODULE name: .*"),
)
# Named wires Amaranth keeps for readability (`assign dot = $43[5:0];`,
# `assign rom_addr = port__addr;`, `assign i__payload = { \port$7 , \port$6 };` where a
# stream's fields come through the hierarchy as separate nets) while the logic reads the
# other nets: unused only as a name, no logic behind it. Waived when the Verilog shows that
# plain alias (a net, a slice of one, or a concatenation of those; never an expression).
_NET = r"\\?[A-Za-z_$][A-Za-z0-9_$.]*\s*(\[[0-9:]+\])?"
_ALIAS = (r"^\s*assign\s+\\?{name}\s*=\s*(" + _NET + r"|\{{\s*" + _NET + r"(\s*,\s*" + _NET
          + r")*\s*\}})\s*;")

_WARNING = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (?:[^:\s]+:\d+:\d+: )?(.*)$")
_UNUSED_NAME = re.compile(r"Signal is not used: '([^']*)'")


def _waived(code: str, message: str, text: str) -> bool:
    if any(code == waived and re.fullmatch(pattern, message) for waived, pattern in WAIVERS):
        return True
    unused = _UNUSED_NAME.fullmatch(message)
    if code == "UNUSEDSIGNAL" and unused:
        alias = _ALIAS.format(name=re.escape(unused.group(1)))
        return re.search(alias, text, re.MULTILINE) is not None
    return False


def lint_verilog(path_or_text: str | os.PathLike, top: str) -> list[str]:
    """Lint the module ``top``; return the warnings left after the waivers, one string
    each (``"CODE: message"``), or ``[]`` when clean.

    ``path_or_text`` is a path to a ``.v`` file or the Verilog text itself. The source is
    linted under the name ``<top>.v``, so ``DECLFILENAME`` can name only submodules. Errors (broken
    Verilog) come back as ``"ERROR: message"`` entries.
    """
    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and "\n" not in path_or_text
            and path_or_text.endswith((".v", ".sv"))):
        text = Path(path_or_text).read_text()
    else:
        text = str(path_or_text)
    env = tool_env()
    verilator = require_tool("verilator")
    with tempfile.TemporaryDirectory(prefix="binaryvit-lint-") as folder:
        source = Path(folder) / f"{top}.v"
        source.write_text(text)
        try:
            completed = subprocess.run(
                [verilator, "--lint-only", "-Wall", "-Wno-fatal", "--top-module", top,
                 str(source)], capture_output=True, text=True, env=env, timeout=600)
        except OSError as exc:
            raise ToolError(f"cannot run verilator: {exc}") from None
    problems = []
    for line in completed.stderr.splitlines():
        match = _WARNING.match(line)
        if not match:
            continue
        kind, code, message = match.groups()
        if kind == "Error":
            if message.startswith("Exiting due to"):
                continue
            problems.append(f"ERROR: {message}")
        elif not _waived(code, message, text):
            problems.append(f"{code}: {message}")
    if completed.returncode != 0 and not problems:
        problems.append(f"ERROR: verilator exited with {completed.returncode}: "
                        f"{completed.stderr.strip()[-500:]}")
    return problems
