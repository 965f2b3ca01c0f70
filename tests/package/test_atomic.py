"""Atomic outputs appear whole or not at all, with ordinary permissions."""
import os
import stat

import pytest

from binaryvit.atomic import atomic_directory, atomic_file, write_text_atomic
from binaryvit.errors import OutputPathError


def test_file_appears_only_on_success(tmp_path):
    target = tmp_path / "result.txt"
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_file_gets_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert (tmp_path / "a.txt").read_text() == "x"


def test_directory_refuses_existing_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OutputPathError, match="exists already"):
        with atomic_directory(out):
            pass


def test_directory_replaced_only_when_complete(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(out, force=True) as tmp:
            (tmp / "new").write_text("new")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in out.iterdir()) == ["old"]
    with atomic_directory(out, force=True) as tmp:
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_sigterm_leaves_no_temporary_output(tmp_path):
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from binaryvit.cli import _exit_on_sigterm\n"
        "import signal\n"
        "signal.signal(signal.SIGTERM, _exit_on_sigterm)\n"
        "from binaryvit.atomic import atomic_directory\n"
        f"with atomic_directory({str(tmp_path / 'out')!r}) as tmp:\n"
        "    (tmp / 'partial').write_text('x')\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()
    assert proc.wait(timeout=30) == 128 + 15
    assert list(tmp_path.iterdir()) == []
