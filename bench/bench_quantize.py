"""Quantizer fidelity and speed: integer model vs float model on the digits test split.

    python bench/bench_quantize.py [CKPT] [--stream-width 24 ...] [--acc-width 48] [--layers]

Prints top-1 of both models, per-image agreement (targets: within 1.0 point, >= 98%), the
calibrated format, the widest proven intermediate, timings, and with --layers the error of
every comparable layer in LSBs of the stream format (bits: the fraction that flips).
"""
from __future__ import annotations

import argparse
import time

import torch

from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.train.data import load_dataset
from binaryvit.quantize.fidelity import measure_fidelity
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import DEFAULT_CALIBRATION_IMAGES, quantize_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", default="out/model.pt")
    parser.add_argument("--stream-width", type=int, nargs="+", default=[24])
    parser.add_argument("--acc-width", type=int, default=QuantFormats().acc_width,
                        help="widths above 24 bits need more than the default 48")
    parser.add_argument("--layers", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint)
    model = ckpt.build_model()
    data = load_dataset(None)
    print(f"checkpoint {args.checkpoint}: {ckpt.config.name}, "
          f"test_accuracy {ckpt.metrics.get('test_accuracy', float('nan')):.4f}")
    print(f"{'width':>5} {'frac':>4} {'float top1':>10} {'int top1':>9} {'delta':>6} "
          f"{'agree':>7} {'max bits':>8} {'quantize s':>10} {'int fwd s':>9}")
    for width in args.stream_width:
        start = time.perf_counter()
        q = quantize_model(model, data.train_images[:DEFAULT_CALIBRATION_IMAGES],
                           QuantFormats(stream_width=width, acc_width=args.acc_width))
        quantize_s = time.perf_counter() - start
        start = time.perf_counter()
        fid = measure_fidelity(model, q.intmodel, data.test_images, data.test_labels,
                               per_layer=args.layers)
        fwd_s = time.perf_counter() - start
        print(f"{width:5d} {q.intmodel.formats['stream_frac']:4d} {100 * fid.float_top1:9.2f}% "
              f"{100 * fid.int_top1:8.2f}% {100 * (fid.int_top1 - fid.float_top1):+6.2f} "
              f"{100 * fid.agreement:6.2f}% {q.proof.max_bits:8d} {quantize_s:10.1f} "
              f"{fwd_s:9.1f}")
        if args.layers:
            print(f"  {'layer':58s} {'median':>8} {'p99':>9} {'max':>10}  (LSB) / bits flipped")
            for e in fid.layers:
                if e.kind == "stream":
                    print(f"  {e.name:58s} {e.median_lsb:8.2f} {e.p99_lsb:9.1f} {e.max_lsb:10.1f}")
                else:
                    print(f"  {e.name:58s} {100 * e.mismatch:8.3f}% bits")


if __name__ == "__main__":
    main()
