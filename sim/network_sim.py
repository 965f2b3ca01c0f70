"""Whole-network simulation: real images through the generated accelerator in Verilator.

``build_network_sim`` compiles the top once per Verilog text (cached by its hash, like
``binaryvit.sim.runner``); ``run_network`` streams images through it with the cocotb test
``binaryvit.sim.network_cocotb`` and returns logits, classes, per-image cycle counts and
tapped streams; ``simulate(out_dir)`` is the ``binaryvit sim`` stage: test-split images,
RTL logits against ``golden.int_network``'s, ``OUT/reports/sim.json``.
"""
from __future__ import annotations

import hashlib
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
from filelock import FileLock

from binaryvit.atomic import write_text_atomic
from binaryvit.errors import DataError, OutputPathError, SimulationError, ToolError
from binaryvit.hw.streams.fixed_point_stream import encode_fixed_point
from binaryvit.sim.runner import VERILATOR_BUILD_ARGS, VERILATOR_MAKEFLAGS
from binaryvit.sim.toolchain import cache_dir, require_tool, tool_env

__all__ = ["NetworkRun", "build_network_sim", "run_network", "pixel_words", "decode_words",
           "simulate", "CHUNK_IMAGES"]

TEST_MODULE = "binaryvit.sim.network_cocotb"
CHUNK_IMAGES = 10  # images per cocotb run: progress is reported between runs
IDLE_LIMIT = 20000  # cycles without any transfer on a watched port before a run is a stall
BUILD_RECIPE = "network-2"


@dataclass
class NetworkRun:
    """What one or more cocotb runs observed.

    logits_words, classes : every ``o`` / ``cls`` word in order.
    image_cycles : per image, cycles from the previous image's last logits word (the first
        image: from its first pixel word) to its own last logits word.
    taps : tap index → words seen on that tap; ``tap_cycles`` the cycle of each.
    wall_s : wall-clock seconds spent simulating (build excluded).
    wave_files : VCD files written when ``waves`` (one per cocotb run).
    """

    logits_words: list[int] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    image_cycles: list[int] = field(default_factory=list)
    taps: dict[int, list[int]] = field(default_factory=dict)
    tap_cycles: dict[int, list[int]] = field(default_factory=dict)
    wall_s: float = 0.0
    wave_files: list[str] = field(default_factory=list)


def _environment() -> dict[str, str]:
    env = tool_env()
    env["MAKEFLAGS"] = f"{env['MAKEFLAGS']} {VERILATOR_MAKEFLAGS}"
    return env


def _verilator_commands(name: str, source: Path, build_dir: Path, waves: bool) -> list[list[str]]:
    """cocotb's Verilator build without ``--public-flat-rw``: only the top module's signals
    are made visible to VPI (a control file), which is all the network test touches and
    keeps Verilator's optimisations (the flag costs several times in speed and build)."""
    import cocotb_tools.config

    control = build_dir / "public_ports.vlt"
    control.write_text(f'`verilator_config\npublic_flat_rw -module "{name}" -var "*"\n')
    libs = cocotb_tools.config.libs_dir
    verilator_cpp = cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp"
    return [
        ["verilator", "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", name, "--vpi",
         "--prefix", "Vtop", "-o", name, "-LDFLAGS",
         f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator", *VERILATOR_BUILD_ARGS,
         *(["--trace"] if waves else []), "--timescale", "1ns/1ps", str(control),
         str(verilator_cpp), str(source)],
        ["make", "-j", "2", "-C", str(build_dir), "-f", "Vtop.mk", f"VM_TRACE={int(waves)}"],
    ]


def build_network_sim(verilog: str, name: str, *, waves: bool = False,
                      build_dir: Path | None = None) -> Path:
    """Compile ``verilog`` (top module ``name``) with Verilator for the cocotb test; reuse an
    identical earlier build (a file lock makes concurrent builds of it wait for the first).
    Returns the build folder."""
    digest = hashlib.sha256(f"{BUILD_RECIPE}|{waves}|{verilog}".encode()).hexdigest()
    if build_dir is None:
        build_dir = cache_dir() / "network" / f"{name}-{digest[:16]}{'-waves' if waves else ''}"
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    # pytest workers (and engineers) building the same Verilog wait for one build
    with FileLock(str(build_dir) + ".lock"):
        _build(verilog, name, waves, build_dir, digest)
    return build_dir


def _build(verilog: str, name: str, waves: bool, build_dir: Path, digest: str) -> None:
    import subprocess

    marker = build_dir / ".built"
    if marker.exists() and marker.read_text() == digest:
        return
    source = build_dir / f"{name}.v"
    write_text_atomic(source, verilog)
    env = {**os.environ, **_environment()}
    log = build_dir / "build.log"
    commands = _verilator_commands(name, source, build_dir, waves)
    commands[0][0] = require_tool("verilator")
    commands[1][0] = require_tool("make")
    with open(log, "w") as handle:
        for command in commands:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                  cwd=build_dir)
            if done.returncode:
                tail = log.read_text(errors="replace")[-3000:]
                raise ToolError(f"verilator build of {name} failed ({command[0]} exited "
                                f"{done.returncode}); log {log}:\n{tail}")
    marker.write_text(digest)


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


def run_network(build_dir: Path, name: str, images_words: list[list[int]],
                logits_words_per_image: int, *, taps: Sequence[int] = (),
                stall_prob: float = 0.0, seed: int = 0, waves: bool = False,
                idle_limit: int = IDLE_LIMIT, image_period: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> NetworkRun:
    """Stream ``images_words`` through the built accelerator, ``CHUNK_IMAGES`` per cocotb
    run (``progress(done, total)`` after each); AssertionError on a deadlock or X.

    ``image_period``: offer image ``n`` of a run not before cycle ``n · image_period``
    after reset (the paced source of ``hw/network/timing.py``); default back to back.
    """
    from cocotb_tools.runner import get_runner

    run = NetworkRun(taps={k: [] for k in taps}, tap_cycles={k: [] for k in taps})
    saved = dict(os.environ)
    os.environ.update(_environment())
    try:
        for start in range(0, len(images_words), CHUNK_IMAGES):
            chunk = images_words[start:start + CHUNK_IMAGES]
            run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build_dir))
            job_path, result_path = run_dir / "job.json", run_dir / "result.json"
            job_path.write_text(json.dumps({
                "pixel_words": [w for image in chunk for w in image], "images": len(chunk),
                "logits_words_per_image": logits_words_per_image, "taps": list(taps),
                "stall_prob": stall_prob, "seed": seed + start, "idle_limit": idle_limit,
                "image_period": image_period,
                "result_path": str(result_path)}))
            began = time.perf_counter()
            log = run_dir / "sim.log"
            try:
                get_runner("verilator").test(
                    test_module=TEST_MODULE, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                    build_dir=build_dir, test_dir=run_dir,
                    results_xml=str(run_dir / "results.xml"),
                    extra_env={"BINARYVIT_NETWORK_JOB": str(job_path)}, seed=seed,
                    waves=waves, timescale=("1ns", "1ps"), log_file=log)
            except (SystemExit, RuntimeError):
                pass
            run.wall_s += time.perf_counter() - began
            if not result_path.exists():
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise AssertionError(f"the network simulation gave no result; log {log}:\n{tail}")
            result = json.loads(result_path.read_text())
            if result["error"]:
                raise AssertionError(f"network simulation of images {start}…"
                                     f"{start + len(chunk) - 1}: {result['error']}")
            run.logits_words += result["logits"]
            run.classes += result["classes"]
            done = [result["first_input"]] + result["image_done"]
            run.image_cycles += [b - a for a, b in zip(done, done[1:])]
            for k in taps:
                run.taps[k] += result["taps"][str(k)]
                run.tap_cycles[k] += result["tap_cycles"][str(k)]
            if waves:
                run.wave_files += [str(p) for p in sorted(run_dir.glob("*.vcd"))]
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
            if progress is not None:
                progress(start + len(chunk), len(images_words))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return run


def _print_progress(done: int, total: int) -> None:
    print(f"simulated {done}/{total} images", file=sys.stderr, flush=True)


def simulate(out_dir: str | os.PathLike, images: int = 20, waves: bool = False, *,
             stall_prob: float = 0.0, progress: bool = True) -> dict:
    """The ``binaryvit sim`` stage: ``images`` test-split images through ``OUT/rtl``.

    Writes ``OUT/reports/sim.json`` (per image: RTL and reference logits, match, classes,
    label, cycles; totals: mismatches, hardware and reference top-1, measured and
    estimated cycles per image, latency, simulated images per second) and returns it.
    """
    from binaryvit.golden.intref.int_network import run_int_network
    from binaryvit.golden.intref.intmodel import load_intmodel
    from binaryvit.golden.train.data import load_dataset

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
    data = load_dataset(None)
    if images > len(data.test_images):
        raise DataError(f"images={images}: the test split has only {len(data.test_images)}")
    x = torch.as_tensor(data.test_images[:images]).to(torch.int64)
    labels = [int(v) for v in data.test_labels[:images]]
    reference = run_int_network(model, x).logits
    verilog = (rtl / description["verilog"]).read_text()
    name = description["top"]
    if progress:
        print(f"building {name} in Verilator (reused when the Verilog is unchanged)",
              file=sys.stderr, flush=True)
    build_dir = build_network_sim(verilog, name, waves=waves)
    words = pixel_words(x, description["patch_size"], description["pixel_width"],
                        description["input_lanes"])
    classes = description["classes"]
    lanes = description["logit_lanes"]
    # Between an image's last pixel and its first logit the ports are quiet for up to the
    # network's latency (32k cycles for tiny-digits at 4096 cycles per image): a stall is
    # reported only after twice that.
    latency = description["estimate"].get("latency_cycles", 0)
    try:
        run = run_network(build_dir, name, words, classes // lanes, stall_prob=stall_prob,
                          waves=waves, idle_limit=max(IDLE_LIMIT, 2 * latency),
                          progress=_print_progress if progress else None)
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
    # The first image of each cocotb run includes the pipeline fill (the latency).
    steady = [c for k, c in enumerate(run.image_cycles) if k % CHUNK_IMAGES] \
        or run.image_cycles
    estimated = description["estimate"]["cycles_per_image"]
    measured = float(np.mean(steady))
    totals = {
        "images": images,
        "mismatches": sum(not p["match"] for p in per_image),
        "class_mismatches": sum(p["rtl_class"] != p["ref_class"] for p in per_image),
        "hw_top1": sum(p["rtl_class"] == p["label"] for p in per_image) / images,
        "ref_top1": sum(p["ref_class"] == p["label"] for p in per_image) / images,
        "cycles_per_image_measured": measured,
        "cycles_per_image_estimated": estimated,
        "efficiency": description["estimate"]["ideal_cycles_per_image"] / measured,
        "latency_cycles": run.image_cycles[0],
        "images_per_second_simulated": images / run.wall_s if run.wall_s else None,
        "simulator": "verilator", "stall_prob": stall_prob,
        "waves": run.wave_files,
    }
    report = {"totals": totals, "images": per_image}
    write_text_atomic(out / "reports" / "sim.json", json.dumps(report, indent=2) + "\n")
    return report
