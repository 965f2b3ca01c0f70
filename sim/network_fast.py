"""The fast whole-network simulation: images in and logits out on the simulator side.

``build_network_harness`` compiles the generated top together with a
``binaryvit.sim.stream_harness`` testbench (one Verilator build per Verilog text, cached by
``binaryvit.sim.simulator``); ``run_network_fast`` writes every image's pixel words to a
stimulus file, runs the cocotb test ``binaryvit.sim.stream_harness_test`` once for all
images (cocotb awaits completion instead of moving each word), and reads the logits,
classes and per-image cycles back from the harness's result file. It returns the same
``NetworkRun`` as the per-cycle path (``binaryvit.sim.network_sim.run_network``), which
stays for tapped debug builds (the divergence finder) and as the reference of speed.

Input bubbles and output back-pressure come from the harness's xorshift generators, so a
run is deterministic for a seed (but not the same pattern as the per-cycle path's).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from binaryvit.sim.network_sim import NetworkRun
from binaryvit.sim.simulator import Build, Design, build, run_test
from binaryvit.sim.stream_harness import PROBABILITY_ONE, Monitor, StreamTop, harness_verilog

__all__ = ["build_network_harness", "run_network_fast", "network_top", "HARNESS_OPT"]

TEST_MODULE = "binaryvit.sim.stream_harness_test"
JOB_ENV = "BINARYVIT_HARNESS_JOB"
# g++ level of the harness build: on tiny-digits -O2 ran no faster than -O1 (69.6k vs
# 68.5k cycles/s, 200 images each) and takes longer to build.
HARNESS_OPT = "-O1"
PROGRESS_CYCLES = 200_000
EXTRA_CYCLES = 64
POLL_S = 0.5


def network_top(description: dict, monitors: Sequence[Monitor] = ()) -> StreamTop:
    """The harness view of a generated accelerator described by ``rtl/network.json``:
    pixel words in on ``i``, logits words out on ``o``, the class on ``cls``."""
    return StreamTop(name=description["top"],
                     in_width=description["pixel_width"] * description["input_lanes"],
                     out_width=description["logit_width"] * description["logit_lanes"],
                     side={"cls": description["class_bits"]}, monitors=tuple(monitors))


def build_network_harness(verilog: str, top: StreamTop, *, waves: bool = False) -> Build:
    """Compile ``verilog`` (which holds ``top.name``) with the harness around it; an
    identical earlier build is reused."""
    design = Design(top.harness_name, {f"{top.name}.v": verilog,
                                       f"{top.harness_name}.v": harness_verilog(top)})
    return build(design, waves=waves, kind="network", opt=HARNESS_OPT)


def _probability(name: str, value: float) -> int:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {value}")
    return round(value * PROBABILITY_ONE)


def run_network_fast(built: Build, top: StreamTop, images_words: list[list[int]],
                     logits_words_per_image: int, *, bubble_prob: float = 0.0,
                     stall_prob: float = 0.0, seed: int = 1, idle_limit: int = 20000,
                     image_period: int = 0, monitor_images: int = 0,
                     progress: Callable[[int, int], None] | None = None) -> NetworkRun:
    """Stream ``images_words`` (every image the same number of words) through the harness
    build in one cocotb run; ``progress(done, total)`` about every ``POLL_S`` seconds of
    progress. ``monitor_images``: the harness's monitors time the first that many images
    (``NetworkRun.monitors``). AssertionError on a stall, an extra or a missing word."""
    count = len(images_words)
    per_image = len(images_words[0]) if count else 0
    if count == 0 or any(len(words) != per_image for words in images_words):
        raise ValueError("every image needs the same, non-zero number of input words")
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=built.build_dir))
    stimulus, result_path = run_dir / "stimulus.hex", run_dir / "result.txt"
    digits = (top.in_width + 3) // 4
    stimulus.write_text("".join(f"{word:0{digits}x}\n" for words in images_words
                                for word in words))
    job_path, status_path, progress_path = (run_dir / name for name in
                                            ("job.json", "status.json", "progress.txt"))
    job_path.write_text(json.dumps({"progress_path": str(progress_path),
                                    "progress_cycles": PROGRESS_CYCLES,
                                    "extra_cycles": EXTRA_CYCLES,
                                    "status_path": str(status_path)}))
    plusargs = [f"+stimulus={stimulus}", f"+result={result_path}",
                f"+in_words={count * per_image}", f"+in_per_image={per_image}",
                f"+out_per_image={logits_words_per_image}", f"+images={count}",
                f"+bubble={_probability('bubble_prob', bubble_prob)}",
                f"+stall={_probability('stall_prob', stall_prob)}", f"+seed={seed}",
                f"+idle_limit={idle_limit}", f"+period={image_period}",
                f"+monitor_images={monitor_images}"]
    finished = threading.Event()
    if progress is not None:
        threading.Thread(target=_report_progress, daemon=True,
                         args=(progress_path, count, progress, finished)).start()
    began = time.perf_counter()
    try:
        cocotb_run = run_test(built, TEST_MODULE, env={JOB_ENV: str(job_path)}, seed=seed,
                              plusargs=plusargs, run_dir=run_dir)
    finally:
        finished.set()
    wall = time.perf_counter() - began
    status = json.loads(status_path.read_text()) if status_path.exists() else None
    if cocotb_run.failed or status is None or not result_path.exists():
        raise AssertionError(f"the network simulation gave no result; log {cocotb_run.log}:\n"
                             f"{cocotb_run.log_tail()}")
    run = _parse_result(result_path.read_text(), len(top.monitors))
    run.wall_s = wall
    run.wave_files = [str(p) for p in cocotb_run.wave_files]
    expected = count * logits_words_per_image
    if status["stalled"]:
        raise AssertionError(
            f"no stream moved for {idle_limit} cycles (deadlock?): "
            f"{len(run.logits_words)}/{expected} logits words and {len(run.classes)}/{count} "
            f"classes received (run folder {run_dir})")
    if run.extra_words:
        raise AssertionError(f"the network offered {run.extra_words} logits words beyond the "
                             f"expected {expected} (run folder {run_dir})")
    if len(run.logits_words) != expected or len(run.classes) != count:
        raise AssertionError(f"the harness finished with {len(run.logits_words)}/{expected} "
                             f"logits words and {len(run.classes)}/{count} classes "
                             f"(run folder {run_dir})")
    if progress is not None:
        progress(count, count)
    if not built.waves:
        for path in run_dir.iterdir():
            path.unlink()
        run_dir.rmdir()
    return run


def _report_progress(path: Path, total: int, progress: Callable[[int, int], None],
                     finished: threading.Event) -> None:
    shown = 0
    while not finished.wait(POLL_S):
        try:
            done = int(path.read_text())
        except (OSError, ValueError):
            continue
        if done > shown and done < total:
            shown = done
            progress(done, total)


def _parse_result(text: str, monitors: int) -> NetworkRun:
    run = NetworkRun()
    run.monitor_spans = {k: [] for k in range(monitors)}
    first_input, done = None, []
    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "o":
            run.logits_words.append(int(rest, 16))
        elif tag == "s0":
            run.classes.append(int(rest, 16))
        elif tag == "d":
            done.append(int(rest))
        elif tag == "f":
            first_input = int(rest)
        elif tag == "x":
            run.extra_words += 1
        elif tag.startswith("m"):
            _, first, last = (int(v) for v in rest.split())
            run.monitor_spans[int(tag[1:])].append((first, last))
    if done:
        stamps = [first_input if first_input is not None else 0] + done
        run.image_cycles = [b - a for a, b in zip(stamps, stamps[1:])]
    return run
