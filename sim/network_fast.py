"""The fast whole-network simulation: images in and logits out on the simulator side.

``build_network_harness`` compiles the generated top together with a
``binaryvit.sim.stream_harness`` testbench (one Verilator build per Verilog text, cached by
``binaryvit.sim.simulator``); ``run_network_fast`` splits the images into runs of about
``SHARD_IMAGES``, writes each run's pixel words to a stimulus file, runs the cocotb test
``binaryvit.sim.stream_harness_test`` once per run (cocotb awaits completion instead of
moving each word; the runs go side by side, one simulator process per CPU), and reads the
logits, classes and per-image cycles back from the harness's result files. It returns the
same ``NetworkRun`` as the per-cycle path (``binaryvit.sim.network_sim.run_network``),
which stays for tapped debug builds (the divergence finder) and as the reference of speed.

Input bubbles and output back-pressure come from the harness's xorshift generators, so a
run is deterministic for a seed (but not the same pattern as the per-cycle path's).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from binaryvit.sim.network_sim import NetworkRun
from binaryvit.sim.simulator import Build, Design, build, run_test, tool_environment
from binaryvit.sim.stream_harness import PROBABILITY_ONE, Monitor, StreamTop, harness_verilog

__all__ = ["build_network_harness", "run_network_fast", "network_top", "shard_count",
           "usable_cpus", "HARNESS_OPT", "SHARD_IMAGES"]

TEST_MODULE = "binaryvit.sim.stream_harness_test"
JOB_ENV = "BINARYVIT_HARNESS_JOB"
# g++ level of the harness build. The whole tiny-digits network is evaluated every cycle
# from 3.6 MB of machine code (more than L2): smaller code runs faster. 360 images, 2 jobs,
# quiet machine: -Os 53.3 images/s (30.7 one job) against -O1's 49.5 (27.6); -O2 ran no
# faster than -O1 (69.6k vs 68.5k cycles/s). The -Os build: 158 s wall at a load of 2.
HARNESS_OPT = "-Os"
PROGRESS_CYCLES = 200_000
EXTRA_CYCLES = 64
POLL_S = 0.5
PROGRESS_FILE = "progress.txt"
# Images per simulator run (``shard_count``): the runs' processes go side by side on the
# machine's cores. Each run pays the pipeline's fill once (17,311 cycles, 8.5 images, on
# tiny-digits) and a simulator start (about 0.5 s of CPU), so runs are long: the test
# split's 360 images make two, one per core of the 2-core CI machine (4.5 % more cycles
# than one run; runs of 90 cost 9 %, and gain only where more than 2 cores are free).
SHARD_IMAGES = 180


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


def shard_count(images: int, waves: bool = False) -> int:
    """How many simulator runs ``images`` images are split into: one per ``SHARD_IMAGES``
    (rounded up), one with waves (a single waveform holds every image). Depends on the
    images alone, so a run's words and cycles do not depend on the machine's cores."""
    return 1 if waves else max(1, -(-images // SHARD_IMAGES))


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def run_network_fast(built: Build, top: StreamTop, images_words: list[list[int]],
                     logits_words_per_image: int, *, bubble_prob: float = 0.0,
                     stall_prob: float = 0.0, seed: int = 1, idle_limit: int = 20000,
                     image_period: int = 0, monitor_images: int = 0,
                     shards: int | None = None, jobs: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> NetworkRun:
    """Stream ``images_words`` (every image the same number of words) through the harness
    build; ``progress(done, total)`` about every ``POLL_S`` seconds of progress.

    The images are split into ``shards`` contiguous runs (default ``shard_count``), each a
    simulator process of its own from reset, ``jobs`` of them at a time (default: as many
    as there are shards and usable CPUs): the simulated cycles of one run are sequential,
    runs are independent. Run ``k`` draws its bubbles and stalls from seed ``seed + k``;
    ``NetworkRun.run_images`` gives each run's image count, and each run's first image
    includes the pipeline's fill. ``monitor_images``: the harness's monitors time the
    first that many images of the first run (``NetworkRun.monitors``). AssertionError on a
    stall, an extra or a missing word (naming the run's images)."""
    count = len(images_words)
    per_image = len(images_words[0]) if count else 0
    if count == 0 or any(len(words) != per_image for words in images_words):
        raise ValueError("every image needs the same, non-zero number of input words")
    shards = shard_count(count, built.waves) if shards is None else shards
    if not 1 <= shards <= count:
        raise ValueError(f"shards must be between 1 and the {count} images, not {shards}")
    jobs = min(shards, usable_cpus()) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    bounds = [count * k // shards for k in range(shards + 1)]
    runs = [_Shard(index=k, first_image=bounds[k], images_words=images_words[a:b],
                   run_dir=Path(tempfile.mkdtemp(prefix="run-", dir=built.build_dir)))
            for k, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    settings = dict(top=top, logits_words_per_image=logits_words_per_image,
                    bubble=_probability("bubble_prob", bubble_prob),
                    stall=_probability("stall_prob", stall_prob), seed=seed,
                    idle_limit=idle_limit, image_period=image_period)
    finished = threading.Event()
    if progress is not None:
        threading.Thread(target=_report_progress, daemon=True,
                         args=([r.run_dir / PROGRESS_FILE for r in runs], count, progress,
                               finished)).start()
    began = time.perf_counter()
    try:
        with tool_environment(), ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda shard: _run_shard(
                built, shard, monitor_images=monitor_images if shard.index == 0 else 0,
                **settings), runs))
    finally:
        finished.set()
    run = NetworkRun(wall_s=time.perf_counter() - began, jobs=jobs)
    for shard, (part, error) in zip(runs, results):
        if error:
            last = shard.first_image + len(shard.images_words) - 1
            where = f"images {shard.first_image}…{last}" if shards > 1 else "the run"
            raise AssertionError(f"{where}: {error} (run folder {shard.run_dir})")
        run.logits_words += part.logits_words
        run.classes += part.classes
        run.image_cycles += part.image_cycles
        run.wave_files += part.wave_files
        run.run_images.append(len(shard.images_words))
        if shard.index == 0:
            run.monitor_spans = part.monitor_spans
    if progress is not None:
        progress(count, count)
    if not built.waves:
        for shard in runs:
            shutil.rmtree(shard.run_dir, ignore_errors=True)
    return run


@dataclass(frozen=True)
class _Shard:
    index: int
    first_image: int
    images_words: list[list[int]]
    run_dir: Path


def _run_shard(built: Build, shard: _Shard, *, top: StreamTop, logits_words_per_image: int,
               bubble: int, stall: int, seed: int, idle_limit: int, image_period: int,
               monitor_images: int) -> tuple[NetworkRun | None, str]:
    """One simulator run over ``shard``'s images: its ``NetworkRun``, or an error text."""
    count, per_image = len(shard.images_words), len(shard.images_words[0])
    run_dir = shard.run_dir
    stimulus, result_path = run_dir / "stimulus.hex", run_dir / "result.txt"
    digits = (top.in_width + 3) // 4
    stimulus.write_text("".join(f"{word:0{digits}x}\n" for words in shard.images_words
                                for word in words))
    job_path, status_path = run_dir / "job.json", run_dir / "status.json"
    job_path.write_text(json.dumps({"progress_path": str(run_dir / PROGRESS_FILE),
                                    "progress_cycles": PROGRESS_CYCLES,
                                    "extra_cycles": EXTRA_CYCLES,
                                    "status_path": str(status_path)}))
    plusargs = [f"+stimulus={stimulus}", f"+result={result_path}",
                f"+in_words={count * per_image}", f"+in_per_image={per_image}",
                f"+out_per_image={logits_words_per_image}", f"+images={count}",
                f"+bubble={bubble}", f"+stall={stall}", f"+seed={seed + shard.index}",
                f"+idle_limit={idle_limit}", f"+period={image_period}",
                f"+monitor_images={monitor_images}"]
    cocotb_run = run_test(built, TEST_MODULE, env={JOB_ENV: str(job_path)},
                          seed=seed + shard.index, plusargs=plusargs, run_dir=run_dir)
    status = json.loads(status_path.read_text()) if status_path.exists() else None
    if cocotb_run.failed or status is None or not result_path.exists():
        return None, (f"the network simulation gave no result; log {cocotb_run.log}:\n"
                      f"{cocotb_run.log_tail()}")
    run = _parse_result(result_path.read_text(), len(top.monitors))
    run.wave_files = [str(p) for p in cocotb_run.wave_files]
    expected = count * logits_words_per_image
    if status["stalled"]:
        return None, (f"no stream moved for {idle_limit} cycles (deadlock?): "
                      f"{len(run.logits_words)}/{expected} logits words and "
                      f"{len(run.classes)}/{count} classes received")
    if run.extra_words:
        return None, (f"the network offered {run.extra_words} logits words beyond the "
                      f"expected {expected}")
    if len(run.logits_words) != expected or len(run.classes) != count:
        return None, (f"the harness finished with {len(run.logits_words)}/{expected} "
                      f"logits words and {len(run.classes)}/{count} classes")
    return run, ""


def _report_progress(paths: Sequence[Path], total: int,
                     progress: Callable[[int, int], None], finished: threading.Event) -> None:
    shown = 0
    while not finished.wait(POLL_S):
        done = 0
        for path in paths:
            try:
                done += int(path.read_text())
            except (OSError, ValueError):
                pass
        if shown < done < total:
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
