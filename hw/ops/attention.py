"""``and_popcount_context``: one ``BinaryAttention`` kernel computes the whole attention
group (``attention_scores`` → ``attention_mask`` → ``and_popcount_context``), named after
the context step; folds ``keys_per_cycle`` (``P``) and ``lanes`` (context values per
word)."""
from __future__ import annotations

import numpy as np

from binaryvit.golden.intref.intmodel import IntModel, Step
from binaryvit.golden.intref.validation import divisors
from binaryvit.hw.estimate.resource_model import KernelCost, MemoryShape, control, counter, plus
from binaryvit.hw.kernels.binary_attention import BinaryAttention
from binaryvit.hw.ops.demand import token_demand
from binaryvit.hw.ops.spec import Built, OpSpec, Port, array
from binaryvit.hw.ops.tensor_info import TensorInfo
from binaryvit.hw.ops.word_timing import NEVER, chain

__all__ = ["AndPopcountContextSpec"]


class AndPopcountContextSpec(OpSpec):
    """``and_popcount_context`` and the scores and mask it reads: ``BinaryAttention``."""

    op = "and_popcount_context"
    engine_role = "anchor"
    engine_instruction = "context"
    fold_keys = ("keys_per_cycle", "lanes")
    calibration = (1.16, 1.14)
    kernels = (BinaryAttention,)

    def tensor(self, step, tensors, model: IntModel) -> TensorInfo:
        q = tensors[model.step(model.step(step.inputs[0]).inputs[0]).inputs[0]]
        keys = tensors[step.inputs[1]].tokens
        return TensorInfo("fixed", keys.bit_length() + 1, q.channels, q.tokens, q.grid)

    def candidates(self, step, tensors):
        d = tensors[step.name].channels // step.params["heads"]
        return [{"keys_per_cycle": kp, "lanes": lanes}
                for kp in divisors(step.params["keys"]) for lanes in divisors(d)]

    def cycles(self, step, fold, tensors) -> int:
        out, heads = tensors[step.name], step.params["heads"]
        return BinaryAttention.image_cycles(
            query_tokens=out.tokens, heads=heads, head_dim=out.channels // heads,
            key_tokens=step.params["keys"], keys_per_cycle=fold["keys_per_cycle"],
            lanes=fold["lanes"])

    def structure(self, step, fold, tensors, steps) -> KernelCost:
        p = step.params
        out = tensors[step.name]
        heads, keys = p["heads"], p["keys"]
        d = out.channels // heads
        per_cycle, lanes = fold["keys_per_cycle"], fold["lanes"]
        channels = out.channels
        lut_w = max(d.bit_length() + 8, 8)
        score = d.bit_length()
        ones = (keys + 1).bit_length()
        threshold = lut_w + (keys.bit_length()) + 8
        blocks = keys // per_cycle
        # Keys and values: per store P banks of two image slots of Tk/P tokens (block RAM).
        stores = [MemoryShape(f"{store}{j}", channels, 2 * blocks, writable=True)
                  for store in ("k_store", "v_store") for j in range(per_cycle)]
        return plus(control(), counter(keys), counter(out.tokens), counter(heads),
                    counter(per_cycle), counter(blocks), counter(per_cycle), counter(blocks),
                    KernelCost(adder_bits=per_cycle * (2 * d + lut_w) + threshold + d * ones,
                               luts=per_cycle * (2 * d + score + threshold) + 2 * channels
                               + d * ones / 2 + lanes * out.width
                               + 2 * per_cycle * d + keys * lut_w,   # head slices, row shifts
                               ffs=2 * per_cycle * d + 2 * keys * lut_w + channels
                               + 2 * threshold + d * (ones + out.width),
                               memories=stores))

    @staticmethod
    def group(step: Step, steps) -> tuple[Step, Step]:
        """The (scores, mask) steps the context step reads (``graph.attention_groups``
        checks the chain)."""
        mask = steps[step.inputs[0]]
        return steps[mask.inputs[0]], mask

    def build(self, step, fold, tensors, steps) -> Built:
        scores, mask = self.group(step, steps)
        q, k = scores.inputs
        v = step.inputs[1]
        out = tensors[step.name]
        unit = BinaryAttention(heads=scores.params["heads"], head_dim=scores.params["head_dim"],
                               query_tokens=tensors[q].tokens, key_tokens=tensors[k].tokens,
                               lut=[int(e) for e in array(mask, "lut")],
                               theta=mask.params["theta"], theta_shift=mask.params["theta_shift"],
                               keys_per_cycle=fold["keys_per_cycle"], lanes=fold["lanes"])
        full = tensors[q].channels
        return Built(unit, [Port("q", q, full, token_demand("pointwise", tensors[q], out)),
                            Port("k", k, full, token_demand("whole_image", tensors[k], out)),
                            Port("v", v, full, token_demand("whole_image", tensors[v], out))])

    def timing(self, unit: BinaryAttention, ready):
        """Two image slots: an image's keys and values load (each port a word a cycle) into
        the slot its image before last has freed, once the previous image's load is
        complete; its queries are taken once it is loaded. Per query and head, stage A
        scores in ``Tk/P`` cycles and hands over on its last block once B is free; B needs
        ``Tk/P`` cycles and the output register; the context leaves ``d/lanes`` words a
        cycle apart; the next query is taken when its predecessor's last head is handed
        over."""
        tk, tq, heads = unit.key_tokens, unit.query_tokens, unit.heads
        blocks = unit.blocks_per_head
        words = unit.head_dim // unit.lanes
        takes = {port: np.empty_like(ready[port]) for port in ("q", "k", "v")}
        out = []
        loaded = NEVER  # the previous image's load completes
        released = [NEVER, NEVER]  # B's last final step of images n−2 and n−1
        finished, query = NEVER, NEVER  # B's last final step; the next query may be taken
        for image in range(len(ready["q"]) // tq):
            start = max(loaded + 1, released[0] + 1)
            for port in ("k", "v"):
                takes[port][image * tk:(image + 1) * tk] = chain(
                    ready[port][image * tk:(image + 1) * tk], start)
            loaded = max(int(takes["k"][(image + 1) * tk - 1]),
                         int(takes["v"][(image + 1) * tk - 1]))
            query = max(query, loaded + 1)
            for i in range(tq):
                query = max(int(ready["q"][image * tq + i]), query)
                takes["q"][image * tq + i] = query
                scoring = query + 1
                for _ in range(heads):
                    handoff = max(scoring + blocks - 1, finished)
                    finished = max(handoff + blocks, finished + words)
                    out.append(finished + 1 + np.arange(words))
                    scoring = handoff + 1
                query = handoff
            released = [released[1], finished]
        return takes, np.concatenate(out)
