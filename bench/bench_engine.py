"""The engine compiler on the UP5K: cycles per image, memory and array use, beside the targets.

    python bench/bench_engine.py [CKPT] [--images 360] [--threads 1] [--listing]

Quantizes the checkpoint (default ``out/model.pt``, from ``make flow``) at the 24-bit default
formats and at the engine's (16-bit stream and constants, 36-bit accumulator), prints the
integer model's top-1 at both on the digits test split, compiles the 16-bit model for the
UP5K engine and prints per instruction class: count, cycles, share, XNOR-array utilisation;
the memory plan against the 128 KiB of SPRAM; and the ISS's mismatches against the integer
reference (bit-exact means 0).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict

import torch

from binaryvit.errors import BinaryVitError
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.intref.bounds import Interval
from binaryvit.golden.intref.int_network import int_predict, run_int_network
from binaryvit.golden.train.data import load_dataset
from binaryvit.hw.engine.compiler import compile_intmodel
from binaryvit.hw.engine.config import UP5K
from binaryvit.hw.engine.cycle_model import constant_bits_per_value
from binaryvit.hw.engine.iss import run_program
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_model

TARGET_CYCLES = 130_000
TARGET_FMAX_MHZ = 40
ENGINE_FORMATS = QuantFormats(stream_width=16, const_bits=16, acc_width=UP5K.accumulator_bits)


def _multiplier_operand_bits(q) -> int:
    """Widest data operand the vector unit multiplies (affine inputs, RPReLU's x + pre_bias),
    from the overflow proof's intervals: what the RTL's multipliers must take besides the
    16-bit constants."""
    widest = max((r.bits for r in q.proof.records
                  if r.op == "rprelu" and r.quantity == "shifted"), default=0)
    for s in q.intmodel.steps:
        if s.op == "affine":
            widest = max(widest, Interval(*q.proof.outputs[s.inputs[0]]).bits)
    return widest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="out/model.pt")
    parser.add_argument("--images", type=int, default=360, help="test images for the ISS check")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--listing", action="store_true", help="print the program")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        ckpt = load_checkpoint(args.checkpoint)
    except BinaryVitError as exc:
        print(f"error: {exc} (run `make flow` first or pass a checkpoint)", file=sys.stderr)
        return 2
    model = ckpt.build_model()
    data = load_dataset(None)
    calibration = data.train_images[:DEFAULT_CALIBRATION_IMAGES]
    labels = torch.as_tensor(data.test_labels)
    test = torch.as_tensor(data.test_images).to(torch.int64)

    print(f"checkpoint {args.checkpoint}: {ckpt.config.name}, float test top-1 "
          f"{100 * ckpt.metrics.get('test_accuracy', float('nan')):.2f}%")
    print(f"\ninteger-model top-1 on the {len(test)} test digits")
    print(f"{'formats':44s} {'top-1':>7}")
    quantized = {}
    for label, formats in (("24-bit default (stream 24, const 20, acc 48)", QuantFormats()),
                           ("16-bit stream (stream 16, const 20, acc 48)",
                            QuantFormats(stream_width=16)),
                           ("engine (stream 16, const 16, acc 36)", ENGINE_FORMATS)):
        try:
            q = quantize_model(model, calibration, formats)
        except BinaryVitError as exc:
            print(f"{label:44s} refused: {exc}")
            continue
        quantized[label] = q
        top1 = (int_predict(q.intmodel, test) == labels).double().mean().item()
        print(f"{label:44s} {100 * top1:6.2f}%")
    q = quantized.get("engine (stream 16, const 16, acc 36)")
    if q is None:
        return 2

    start = time.perf_counter()
    program = compile_intmodel(q.intmodel, UP5K, proof=q.proof)
    compile_s = time.perf_counter() - start
    c = program.config
    lanes = c.pe * c.simd
    print(f"\nUP5K engine: array {c.pe} PE x {c.simd} SIMD, {c.vector_lanes} vector lanes x "
          f"{c.lane_multipliers} multipliers, {len(c.banks)} banks of {c.banks[0].words} words; "
          f"{len(q.intmodel.steps)} steps -> {len(program.instructions)} instructions "
          f"(compiled in {compile_s:.1f} s)")
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for cyc in program.cycles:
        rows[cyc.kind][0] += 1
        rows[cyc.kind][1] += cyc.cycles
        rows[cyc.kind][2] += cyc.binary_macs
    total = program.total_cycles
    macs = sum(r[2] for r in rows.values())
    print(f"{'class':16s} {'count':>5} {'cycles':>9} {'share':>6} {'binary MACs':>12} "
          f"{'array util':>10}")
    for kind, (count, cycles, kind_macs) in sorted(rows.items(), key=lambda kv: -kv[1][1]):
        util = kind_macs / (cycles * lanes) if kind_macs else 0.0
        print(f"{kind:16s} {count:5d} {cycles:9,d} {100 * cycles / total:5.1f}% "
              f"{kind_macs:12,d} {100 * util:9.1f}%")
    print(f"{'total':16s} {len(program.instructions):5d} {total:9,d} {100.0:5.1f}% "
          f"{macs:12,d} {100 * macs / (total * lanes):9.1f}%")

    print(f"\n{'figure':40s} {'value':>12} {'target':>14}")
    print(f"{'cycles per image':40s} {total:12,d} {'<= ' + format(TARGET_CYCLES, ','):>14}")
    fps = TARGET_FMAX_MHZ * 1e6 / total
    print(f"{'images/s at 40 MHz':40s} {fps:12.0f} {'>= 300':>14}")
    payload = program.payload_bytes
    activations = program.activation_bytes()
    print(f"{'parameter payload bytes':40s} {payload:12,d}")
    print(f"{'activation bytes (peak, per bank)':40s} {activations:12,d}")
    print(f"{'memory used / SPRAM bytes':40s} {payload + activations:12,d} "
          f"{'<= ' + format(program.memory_bytes, ','):>14}")
    print(f"{'vector-unit data operand bits (max)':40s} {_multiplier_operand_bits(q):12d} "
          f"{'(x 16-bit const)':>14}")
    widest = max(range(len(program.instructions)), key=lambda i: constant_bits_per_value(
        program.instructions[i], c))
    bits = constant_bits_per_value(program.instructions[widest], c)
    print(f"{'epilogue constant bits per value (max)':40s} {bits:12d} "
          f"{f'{-(-bits // 16)} EBR wide':>14}  ({program.labels[widest]})")
    kinds: dict[str, int] = defaultdict(int)
    for r in program.regions:
        kinds["program" if r.name == "program" else r.name.rsplit("/", 1)[-1]
              if "/" in r.name else "pos_embed"] += 2 * r.words
    print("payload by kind: " + ", ".join(f"{k} {v:,d}" for k, v in sorted(kinds.items())))
    print("payload per bank: " + ", ".join(f"{c.banks[s.bank].name} {2 * s.words:,d}"
                                           for s in program.segments))

    if args.listing:
        print("\n" + "\n".join(program.listing()))

    images = test[:args.images]
    start = time.perf_counter()
    got = run_program(program, images)
    iss_s = time.perf_counter() - start
    want = run_int_network(q.intmodel, images).logits
    mismatches = int((got != want).sum())
    print(f"\nISS vs integer reference on {len(images)} images: {mismatches} mismatching logits "
          f"(target 0), ISS {iss_s:.1f} s")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
