"""Whole-network simulation: real images through the generated accelerator in Verilator.

Two paths share ``NetworkRun``:

- the fast path (``binaryvit.sim.network_fast``, the default of ``binaryvit sim``): a
  Verilog harness streams the images in and the logits out inside the simulator;
- the per-cycle path here: ``build_network_sim`` compiles the top alone (with
  ``binaryvit.sim.simulator``, cached by the Verilog's hash) and ``run_network`` moves
  every word from the cocotb test ``binaryvit.sim.network_cocotb``, ``CHUNK_IMAGES``
  images per run; it records tap ports too, so the divergence finder uses it.

``simulate(out_dir)`` is the ``binaryvit sim`` stage: test-split images, RTL logits against
``golden.intref.int_network``'s, ``OUT/reports/sim.json``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import DataError, OutputPathError, SimulationError
from binaryvit.hw.streams.fixed_point_stream import encode_fixed_point
from binaryvit.sim.image_comparison import comparison_totals
from binaryvit.sim.simulator import Build, Design, build, run_test

__all__ = ["NetworkRun", "build_network_sim", "run_network", "pixel_words", "decode_words",
           "simulate", "steady_cycles", "CHUNK_IMAGES"]

TEST_MODULE = "binaryvit.sim.network_cocotb"
CHUNK_IMAGES = 10  # images per cocotb run: progress is reported between runs
IDLE_LIMIT = 20000  # cycles without any transfer on a watched port before a run is a stall
MONITOR_IMAGES = 8  # images whose per-kernel output spans the fast path records


@dataclass
class NetworkRun:
    """What one or more cocotb runs observed.

    logits_words, classes : every ``o`` / ``cls`` word in order.
    image_cycles : per image, cycles from the previous image's last logits word (a run's
        first image: from its first pixel word) to its own last logits word.
    run_images : how many images each simulator run (from reset) streamed, in order.
    jobs : simulator runs at a time (the fast path runs them side by side).
    taps : tap index → words seen on that tap; ``tap_cycles`` the cycle of each.
    wall_s : wall-clock seconds spent simulating (build excluded; runs side by side
        count once).
    wave_files : waveform files written when the build has waves (one per cocotb run).
    monitor_spans : fast path only: monitor index → per image ``(first, last)`` cycle of
        its words on the monitored stream.
    extra_words : fast path only: logits words offered beyond the expected ones.
    """

    logits_words: list[int] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    image_cycles: list[int] = field(default_factory=list)
    run_images: list[int] = field(default_factory=list)
    jobs: int = 1
    taps: dict[int, list[int]] = field(default_factory=dict)
    tap_cycles: dict[int, list[int]] = field(default_factory=dict)
    wall_s: float = 0.0
    wave_files: list[str] = field(default_factory=list)
    monitor_spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    extra_words: int = 0


def build_network_sim(verilog: str, name: str, *, waves: bool = False) -> Build:
    """Compile ``verilog`` (top module ``name``) with Verilator for the per-cycle cocotb
    test; an identical earlier build is reused (concurrent builds of it wait for one)."""
    return build(Design(name, {f"{name}.v": verilog}), waves=waves, kind="network")


def pixel_words(images: torch.Tensor, patch_size: int, pixel_width: int, lanes: int) -> list[list[int]]:
    """Per image, the words of its patches (``unfold_patches`` order) on the pixel port."""
    from binaryvit.golden.intref.int_network import unfold_patches

    patches = unfold_patches(torch.as_tensor(images, dtype=torch.int64), patch_size)
    return [encode_fixed_point(p, pixel_width, lanes, is_signed=False) for p in patches]


def decode_words(words: Sequence[int], kind: str, width: int, lanes: int, channels: int,
                 tokens: int) -> torch.Tensor:
    """``[images, tokens, channels]`` from stream words (``last`` ignored: counted)."""
    bits = 1 if kind == "binary" else width
    per_image = tokens * channels // lanes
    count = len(words) // per_image if per_image else 0
    values = np.zeros((count * per_image, lanes), dtype=np.int64)
    mask = (1 << bits) - 1
    for w, word in enumerate(words[:count * per_image]):
        for j in range(lanes):
            values[w, j] = (word >> (j * bits)) & mask
    if kind == "fixed":
        values = np.where(values >= 1 << (width - 1), values - (1 << width), values)
    tensor = torch.from_numpy(values.reshape(count, tokens, channels))
    return tensor.bool() if kind == "binary" else tensor


def run_network(built: Build, images_words: list[list[int]],
                logits_words_per_image: int, *, taps: Sequence[int] = (),
                stall_prob: float = 0.0, seed: int = 0,
                idle_limit: int = IDLE_LIMIT, image_period: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> NetworkRun:
    """The per-cycle path: stream ``images_words`` through the built accelerator,
    ``CHUNK_IMAGES`` per cocotb run (``progress(done, total)`` after each); AssertionError
    on a deadlock or X. Waves are recorded when the build has them.

    ``image_period``: offer image ``n`` of a run not before cycle ``n · image_period``
    after reset (the paced source of ``hw/network/timing.py``); default back to back.
    """
    run = NetworkRun(taps={k: [] for k in taps}, tap_cycles={k: [] for k in taps})
    for start in range(0, len(images_words), CHUNK_IMAGES):
        chunk = images_words[start:start + CHUNK_IMAGES]
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=built.build_dir))
        job_path, result_path = run_dir / "job.json", run_dir / "result.json"
        job_path.write_text(json.dumps({
            "pixel_words": [w for image in chunk for w in image], "images": len(chunk),
            "logits_words_per_image": logits_words_per_image, "taps": list(taps),
            "stall_prob": stall_prob, "seed": seed + start, "idle_limit": idle_limit,
            "image_period": image_period,
            "result_path": str(result_path)}))
        began = time.perf_counter()
        cocotb_run = run_test(built, TEST_MODULE, env={"BINARYVIT_NETWORK_JOB": str(job_path)},
                              seed=seed, run_dir=run_dir)
        run.wall_s += time.perf_counter() - began
        if not result_path.exists():
            raise AssertionError(f"the network simulation gave no result; log "
                                 f"{cocotb_run.log}:\n{cocotb_run.log_tail()}")
        result = json.loads(result_path.read_text())
        if result["error"]:
            raise AssertionError(f"network simulation of images {start}…"
                                 f"{start + len(chunk) - 1}: {result['error']}")
        run.logits_words += result["logits"]
        run.classes += result["classes"]
        done = [result["first_input"]] + result["image_done"]
        run.image_cycles += [b - a for a, b in zip(done, done[1:])]
        run.run_images.append(len(chunk))
        for k in taps:
            run.taps[k] += result["taps"][str(k)]
            run.tap_cycles[k] += result["tap_cycles"][str(k)]
        if built.waves:
            run.wave_files += [str(p) for p in cocotb_run.wave_files]
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        if progress is not None:
            progress(start + len(chunk), len(images_words))
    return run


def steady_cycles(image_cycles: Sequence[int], run_images: Sequence[int] | None = None
                  ) -> list[int]:
    """The per-image intervals of images in steady state: without each run's first image
    (it includes the pipeline fill) and its last (no image follows it, so a kernel such
    as the strip pool flushes its tail early and it finishes sooner than a steady one).
    ``run_images``: images of each run, in order (``NetworkRun.run_images``); None: one
    run."""
    sizes = [len(image_cycles)] if run_images is None else run_images
    if sum(sizes) != len(image_cycles):
        raise ValueError(f"runs of {list(sizes)} images do not add up to the "
                         f"{len(image_cycles)} intervals")
    steady, start = [], 0
    for size in sizes:
        steady += list(image_cycles[start:start + size])[1:-1]
        start += size
    return steady


def _print_progress(done: int, total: int) -> None:
    print(f"simulated {done}/{total} images", file=sys.stderr, flush=True)


def _per_layer_cycles(description: dict, run: NetworkRun) -> dict[str, float]:
    """Per kernel step, the mean over the monitored steady images (not the first nor the
    last) of its output span: cycles from its first to its last output word of an image,
    both included. Empty on the per-cycle path or with fewer than 3 monitored images."""
    measured = {}
    for k, stream in enumerate(description.get("streams", [])):
        spans = [last - first + 1 for first, last in run.monitor_spans.get(k, [])][1:-1]
        if spans:
            measured[stream["step"]] = float(np.mean(spans))
    return measured


def simulate(out_dir: str | os.PathLike, images: int = 20, waves: bool = False, *,
             stall_prob: float = 0.0, bubble_prob: float = 0.0, seed: int = 1,
             per_cycle: bool = False, progress: bool = True,
             data: str | os.PathLike | None = None, jobs: int | None = None) -> dict:
    """The ``binaryvit sim`` stage: ``images`` test-split images of ``data`` (a .npz or image
    folder; None: the embedded digits) through ``OUT/rtl``.

    The fast path (``binaryvit.sim.network_fast``) by default; ``per_cycle`` moves every
    word from Python (``run_network``; no input bubbles there). ``bubble_prob`` and
    ``stall_prob``: probability of an idle input cycle before a pixel word and of a cycle
    with the logits stream's ``ready`` low. ``jobs``: fast-path simulator runs at a time
    (default: one per usable CPU, at most one per run of ``network_fast.SHARD_IMAGES``
    images); it changes the wall time only, not what is simulated.

    Writes ``OUT/reports/sim.json`` (per image: RTL and reference logits, match, classes,
    label, cycles; totals: mismatches, hardware and reference top-1, steady-state measured
    and estimated cycles per image, latency, simulated images and cycles per second) and
    returns it. The keys are documented in ``docs/verification.md``.
    """
    from binaryvit.golden.intref.int_network import run_int_network
    from binaryvit.golden.intref.intmodel import load_intmodel
    from binaryvit.golden.train.data import check_dataset_fits, load_dataset
    from binaryvit.sim.network_fast import build_network_harness, network_top, run_network_fast
    from binaryvit.sim.stream_harness import Monitor

    out = Path(out_dir)
    rtl = out / "rtl"
    description_path = rtl / "network.json"
    if not description_path.is_file():
        raise OutputPathError(f"{description_path} not found: run `binaryvit generate {out}` "
                              f"first")
    description = json.loads(description_path.read_text())
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise DataError(f"images must be a positive integer, got {images!r}")
    model = load_intmodel(out / "intmodel.npz")
    config = model.config
    dataset = load_dataset(data, config.in_channels)
    check_dataset_fits(dataset, (config.in_channels, *config.image_size), config.name)
    if images > len(dataset.test_images):
        raise DataError(f"images={images}: the test split has only {len(dataset.test_images)}")
    x = torch.as_tensor(dataset.test_images[:images]).to(torch.int64)
    labels = [int(v) for v in dataset.test_labels[:images]]
    # One torch thread: the reference's tensors are small and, on a busy machine, intra-op
    # threads spin against each other and the simulators (360 tiny digits at a load of 9
    # on 2 cores: 19.4 s wall and 6.9 s CPU with 2 threads, 2.8 s and 1.3 s with one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = run_int_network(model, x).logits
    finally:
        torch.set_num_threads(threads)
    verilog = (rtl / description["verilog"]).read_text()
    name = description["top"]
    if progress:
        print(f"building {name} in Verilator (reused when the Verilog is unchanged)",
              file=sys.stderr, flush=True)
    words = pixel_words(x, description["patch_size"], description["pixel_width"],
                        description["input_lanes"])
    classes = description["classes"]
    lanes = description["logit_lanes"]
    # Between an image's last pixel and its first logit the ports are quiet for up to the
    # network's latency (32k cycles for tiny-digits at 4096 cycles per image): a stall is
    # reported only after twice that.
    latency = description["estimate"].get("latency_cycles", 0)
    idle_limit = max(IDLE_LIMIT, 2 * latency)
    show = _print_progress if progress else None
    try:
        if per_cycle:
            built = build_network_sim(verilog, name, waves=waves)
            run = run_network(built, words, classes // lanes, stall_prob=stall_prob,
                              seed=seed, idle_limit=idle_limit, progress=show)
            steady = steady_cycles(run.image_cycles, run.run_images)
        else:
            monitors = [Monitor(s["instance"], s["words_per_image"])
                        for s in description.get("streams", [])]
            top = network_top(description, monitors)
            built = build_network_harness(verilog, top, waves=waves)
            run = run_network_fast(built, top, words, classes // lanes,
                                   bubble_prob=bubble_prob, stall_prob=stall_prob,
                                   seed=seed, idle_limit=idle_limit, progress=show,
                                   monitor_images=min(images, MONITOR_IMAGES), jobs=jobs)
            steady = steady_cycles(run.image_cycles, run.run_images)
    except AssertionError as exc:
        raise SimulationError(f"{out}: {exc}") from None
    rtl_logits = decode_words(run.logits_words, "fixed", description["logit_width"], lanes,
                              classes, 1)[:, 0, :]
    per_image = []
    for k in range(images):
        match = bool(torch.equal(rtl_logits[k], reference[k]))
        per_image.append({"index": k, "label": labels[k],
                          "rtl_logits": rtl_logits[k].tolist(),
                          "ref_logits": reference[k].tolist(), "match": match,
                          "rtl_class": run.classes[k] & ((1 << description["class_bits"]) - 1),
                          "ref_class": int(reference[k].argmax()),
                          "cycles": run.image_cycles[k]})
    estimated = description["estimate"]["cycles_per_image"]
    measured = float(np.mean(steady)) if steady else None
    cycles_simulated = sum(run.image_cycles)
    totals = {
        **comparison_totals(per_image),
        "cycles_per_image_measured": measured,
        "steady_images": len(steady),
        "cycles_per_image_estimated": estimated,
        "efficiency": (description["estimate"]["ideal_cycles_per_image"] / measured
                       if measured else None),
        "latency_cycles": run.image_cycles[0],
        "runs": run.run_images, "jobs": run.jobs,
        "images_per_second_simulated": images / run.wall_s if run.wall_s else None,
        "cycles_per_second_simulated": cycles_simulated / run.wall_s if run.wall_s else None,
        "simulator": "verilator", "path": "per-cycle" if per_cycle else "fast",
        "stall_prob": stall_prob, "bubble_prob": 0.0 if per_cycle else bubble_prob,
        "seed": seed, "waves": run.wave_files,
    }
    report = {"totals": totals, "images": per_image,
              "per_layer_cycles": _per_layer_cycles(description, run)}
    write_text_atomic(out / "reports" / "sim.json", json.dumps(report, indent=2) + "\n")
    return report
