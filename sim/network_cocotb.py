"""The cocotb test that ``binaryvit.sim.network_sim`` runs on the generated accelerator.

It reads a JSON job named by ``$BINARYVIT_NETWORK_JOB``: the pixel words of every image
(sent back to back on ``i``, or image ``n`` not before cycle ``n · image_period`` when
that is set), the logits words per image expected on ``o``, the tap ports to record, the
output stall probability and a no-progress limit. One coroutine does all
the per-cycle work (one write and a few reads per cycle keep Verilator runs fast). It
writes what it saw to the job's result file: every ``o`` and ``cls`` word, the cycle on
which each image's last logits word left, the first input cycle, and the tapped words.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

JOB_ENV = "BINARYVIT_NETWORK_JOB"


@cocotb.test()
async def network_inference(dut):
    """Stream all images through the accelerator and record outputs, cycles and taps."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    result = {"logits": [], "classes": [], "image_done": [], "first_input": None,
              "taps": {str(k): [] for k in job["taps"]},
              "tap_cycles": {str(k): [] for k in job["taps"]}, "error": None, "cycles": 0}
    try:
        await _run(dut, job, result)
    except AssertionError as exc:
        result["error"] = str(exc)
    finally:
        Path(job["result_path"]).write_text(json.dumps(result))


async def _run(dut, job: dict, result: dict) -> None:
    words = job["pixel_words"]
    logits_per_image = job["logits_words_per_image"]
    images = job["images"]
    rng = random.Random(job["seed"])
    stall = job["stall_prob"]
    period = job.get("image_period") or 0
    words_per_image = len(words) // images
    taps = [(str(k), getattr(dut, f"tap{k}_valid"), getattr(dut, f"tap{k}_payload"))
            for k in job["taps"]]
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.cls__ready.value = 0
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    sent, cycle, idle = 0, 0, 0
    total_logits = images * logits_per_image
    i_valid, i_payload, i_ready = dut.i__valid, dut.i__payload, dut.i__ready
    o_valid, o_payload, o_ready = dut.o__valid, dut.o__payload, dut.o__ready
    c_valid, c_payload = dut.cls__valid, dut.cls__payload
    dut.cls__ready.value = 1
    while len(result["logits"]) < total_logits or len(result["classes"]) < images:
        offering = sent < len(words) and cycle >= period * (sent // words_per_image)
        if offering:
            i_payload.value = words[sent]
        i_valid.value = int(offering)
        take = not (stall and rng.random() < stall)
        o_ready.value = int(take)
        await ReadOnly()
        progress = False
        if offering and i_ready.value == 1:
            if sent == 0:
                result["first_input"] = cycle
            sent += 1
            progress = True
        if take and o_valid.value == 1:
            value = o_payload.value
            if not value.is_resolvable:
                raise AssertionError(f"logits word {len(result['logits'])} has X/Z bits")
            result["logits"].append(int(value))
            if len(result["logits"]) % logits_per_image == 0:
                result["image_done"].append(cycle)
            progress = True
        if c_valid.value == 1:
            result["classes"].append(int(c_payload.value))
            progress = True
        for key, valid, payload in taps:
            if valid.value == 1:
                result["taps"][key].append(int(payload.value))
                result["tap_cycles"][key].append(cycle)
                progress = True
        await RisingEdge(dut.clk)
        cycle += 1
        idle = 0 if progress else idle + 1
        if idle > job["idle_limit"]:
            raise AssertionError(
                f"no stream moved for {job['idle_limit']} cycles (deadlock?) after cycle "
                f"{cycle}: {sent}/{len(words)} pixel words sent, {len(result['logits'])}/"
                f"{total_logits} logits words and {len(result['classes'])}/{images} classes "
                f"received")
    result["cycles"] = cycle
