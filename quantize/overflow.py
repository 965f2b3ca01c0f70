"""The overflow prover: interval bounds through the whole integer program.

Starting from the raw pixel interval, every step's exact intermediate intervals come from
``binaryvit.golden.intref.bounds`` (sound and tight per op, inputs taken as independent);
a step that saturates hands on its output interval clipped to its width. Every
intermediate (products, accumulators, popcounts, window and row sums, the attention
compare's two sides) must fit ``acc_width`` signed bits, or :class:`OverflowProofError`
names the step, the quantity, its interval and the bits it needs. Saturating outputs are
not overflows: the contract clamps them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from binaryvit.errors import OverflowProofError
from binaryvit.golden.intref import bounds as B
from binaryvit.golden.intref import signed_range
from binaryvit.golden.intref.intmodel import IntModel, Step

Interval = B.Interval


@dataclass(frozen=True)
class WidthRecord:
    """One proven intermediate: ``step``'s ``quantity`` lies in ``[lo, hi]`` (``bits`` wide)."""

    step: str
    op: str
    quantity: str
    lo: int
    hi: int
    bits: int


@dataclass
class OverflowProof:
    """Every intermediate's interval, the accumulator limit and each tensor's output interval."""

    acc_width: int
    records: list[WidthRecord]
    outputs: dict[str, tuple[int, int] | None]

    @property
    def max_bits(self) -> int:
        return max(r.bits for r in self.records)

    def widest(self) -> WidthRecord:
        return max(self.records, key=lambda r: r.bits)

    def to_json(self) -> dict:
        return {"acc_width": self.acc_width, "max_bits": self.max_bits,
                "records": [asdict(r) for r in self.records]}


def _clip(x: Interval, width: int | None) -> Interval:
    if not width:
        return x
    lo, hi = signed_range(width)
    return Interval(min(max(x.lo, lo), hi), max(min(x.hi, hi), lo))


def _list(step: Step, key: str) -> list[int]:
    return [int(v) for v in step.arrays[key].reshape(-1)]


def _step_bounds(step: Step, ins: list) -> tuple[Interval | None, dict[str, Interval]]:
    """Output interval (None for bits) and the named intermediates of one step."""
    p, op = step.params, step.op
    width = p.get("width") or None
    if op in ("image_patches", "token_patches", "tile_channels", "nearest_upsample"):
        return ins[0], {}
    if op == "constant":
        v = step.arrays["value"]
        return Interval(int(v.min()), int(v.max())), {}
    if op == "threshold":
        return None, {"threshold": Interval(min(_list(step, "thresh")), max(_list(step, "thresh")))}
    if op == "xnor_popcount_dot":
        k = step.arrays["weight_bits"].shape[1]
        r = B.xnor_popcount_dot_bounds(k)
        return r.dot, {"popcount": r.popcount, "dot": r.dot}
    if op == "affine":
        r = B.affine_bounds(ins[0], _list(step, "mul"), _list(step, "bias"), p["shift"])
        return _clip(r.output, width), {"product": r.product, "accumulator": r.accumulator}
    if op == "rprelu":
        r = B.rprelu_bounds(ins[0], _list(step, "pre_bias"), _list(step, "mul_pos"),
                            _list(step, "mul_neg"), _list(step, "post_bias"), p["shift"])
        return _clip(r.output, width), {"shifted": r.shifted, "product": r.product,
                                        "accumulator": r.accumulator}
    if op == "residual_add":
        total = B.residual_add_bounds(ins[0], ins[1])
        return _clip(total, width), {"sum": total}
    if op == "fixed_mac":
        r = B.fixed_mac_bounds(ins[0], step.arrays["weight"].tolist(), _list(step, "bias"),
                               p["shift"])
        return _clip(r.output, width), {"partial": r.partial, "dot": r.dot,
                                        "accumulator": r.accumulator}
    if op in ("window_sum2d", "avgpool2d"):
        r = B.avgpool2d_bounds(ins[0], p["kh"], p["kw"], p["stride"], p["pad_h"], p["pad_w"],
                               p["grid_h"], p["grid_w"], p.get("mul", 1), p.get("shift", 0))
        if op == "window_sum2d":
            return r.window_sum, {"window_sum": r.window_sum}
        return _clip(r.output, width), {"window_sum": r.window_sum, "product": r.product}
    if op == "channel_group_avgpool":
        r = B.channel_group_avgpool_bounds(ins[0], p["group"], p["mul"], p["shift"])
        return _clip(r.output, width), {"window_sum": r.window_sum, "product": r.product}
    if op == "global_avgpool":
        r = B.global_avgpool_bounds(ins[0], p["tokens"], p["mul"], p["shift"])
        return _clip(r.output, width), {"token_sum": r.window_sum, "product": r.product}
    if op == "attention_scores":
        d = p["head_dim"]
        return Interval(-d, d), {"score": Interval(-d, d)}
    if op == "attention_mask":
        r = B.attention_mask_bounds(_list(step, "lut"), p["keys"], p["theta"], p["theta_shift"])
        return None, {"row_sum": r.row_sum, "scaled_exp": r.scaled_exp,
                      "scaled_row_sum": r.scaled_row_sum}
    if op == "and_popcount_context":
        r = B.and_popcount_context_bounds(p["keys"])
        return r.dot, {"popcount": r.popcount, "context": r.dot}
    raise OverflowProofError(f"step {step.name!r}: no bounds for operation {op!r}")


def prove_no_overflow(model: IntModel, acc_width: int | None = None) -> OverflowProof:
    """Prove every intermediate of ``model`` fits ``acc_width`` bits (default: the model's).

    Raises
    ------
    OverflowProofError
        At the first step with an intermediate wider than ``acc_width``, naming it.
    """
    limit = int(acc_width if acc_width is not None else model.formats["acc_width"])
    lo, hi = model.input_range
    intervals: dict[str, Interval | None] = {"input": Interval(int(lo), int(hi))}
    records: list[WidthRecord] = []
    for step in model.steps:
        out, quantities = _step_bounds(step, [intervals[name] for name in step.inputs])
        for quantity, iv in quantities.items():
            record = WidthRecord(step.name, step.op, quantity, iv.lo, iv.hi, iv.bits)
            records.append(record)
            if quantity != "threshold" and iv.bits > limit:
                raise OverflowProofError(
                    f"step {step.name!r} ({step.op}) would overflow: its {quantity} spans "
                    f"[{iv.lo}, {iv.hi}] and needs {iv.bits} bits, more than the accumulator "
                    f"width {limit}; raise the accumulator width or lower stream_frac / const_bits")
        intervals[step.name] = out
    outputs = {k: (v.lo, v.hi) if v is not None else None for k, v in intervals.items()}
    return OverflowProof(limit, records, outputs)


__all__ = ["WidthRecord", "OverflowProof", "prove_no_overflow"]
