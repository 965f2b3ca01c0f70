"""BinaryViT, the whole network (Le & Li, CVPR-W 2023), built from a :class:`BinaryViTConfig`.

Forward pass for raw pixels ``x`` of shape ``[B, C_in, H, W]`` (module names in brackets)::

    h = stem(x)                                   # [stem] normalise, float conv, BN, + pos
    for i, stage in enumerate(stages):            # [stages.<i>]
        if i > 0: h = stage.merge(h)              # [stages.<i>.merge] binary 2x2 patch merge
        if last stage and not global_pool:
            h = concat(cls_token, h)              # [cls_token] one leading token
        for block in stage.blocks: h = block(h)   # [stages.<i>.blocks.<j>]
    h = BN[head_norm](h)
    f = mean over tokens (global_pool) or h[:, 0] (class token)
    logits = Linear[classifier](f)                # float, with bias

Run it in ``eval()`` mode for inference; :func:`capture_activations` records the output of
any named module for the quantizer and the tests.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn

from binaryvit.errors import DataError
from binaryvit.golden.float_model.block import BinaryViTBlock
from binaryvit.golden.float_model.config import BinaryViTConfig, StageSpec
from binaryvit.golden.float_model.patch_merge import BinaryPatchMerge
from binaryvit.golden.float_model.stem import PatchStem


class BinaryViTStage(nn.Module):
    """An optional patch merge into this stage's grid, then ``depth`` blocks."""

    def __init__(self, spec: StageSpec, config: BinaryViTConfig, merge_from: int | None):
        super().__init__()
        self.spec = spec
        self.merge = (BinaryPatchMerge(merge_from, spec.num_tokens, config.binary)
                      if merge_from is not None else None)
        alpha_init = config.attention_alpha_init or 1.0 / spec.num_keys
        self.blocks = nn.ModuleList(
            BinaryViTBlock(spec.dim, spec.heads, spec.mlp_dim, spec.sr_ratio, alpha_init,
                           config.binary, config.layer_scale, config.layer_scale_init,
                           config.multi_pool, config.pool_kernels)
            for _ in range(spec.depth))


class BinaryViT(nn.Module):
    """The BinaryViT classifier; ``forward(x)`` maps raw pixels ``[B, C, H, W]`` to logits."""

    def __init__(self, config: BinaryViTConfig):
        super().__init__()
        self.config = config
        specs = config.stages()
        self.stem = PatchStem(config.in_channels, specs[0].dim, config.patch_size,
                              specs[0].num_tokens, config.input_mean, config.input_std)
        self.stages = nn.ModuleList(
            BinaryViTStage(spec, config, specs[i - 1].dim if i > 0 else None)
            for i, spec in enumerate(specs))
        self.cls_token = None
        if not config.global_pool:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, specs[-1].dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.head_norm = nn.BatchNorm1d(specs[-1].dim)
        self.classifier = nn.Linear(specs[-1].dim, config.num_classes)

    def check_input(self, x: Tensor) -> None:
        """Raise DataError unless ``x`` is ``[B, in_channels, H, W]`` of the configured size."""
        c = self.config
        expected = (c.in_channels, *c.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise DataError(f"images must have shape [batch, {expected[0]}, {expected[1]}, "
                            f"{expected[2]}] for config {c.name!r}, got {list(x.shape)}")

    def forward_features(self, x: Tensor) -> Tensor:
        """Raw pixels -> the final token tensor, before ``head_norm``."""
        self.check_input(x)
        h = self.stem(x)
        grid = self.stages[0].spec.grid
        for stage in self.stages:
            if stage.merge is not None:
                h = stage.merge(h, grid)
                grid = stage.spec.grid
            extra = 0
            if self.cls_token is not None and stage is self.stages[-1]:
                h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
                extra = 1
            for block in stage.blocks:
                h = block(h, grid, extra)
        return h

    def forward(self, x: Tensor) -> Tensor:
        h = self.forward_features(x)
        h = self.head_norm(h.reshape(-1, h.shape[-1])).reshape(h.shape)
        features = h.mean(dim=1) if self.cls_token is None else h[:, 0]
        return self.classifier(features)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics and buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


@contextlib.contextmanager
def capture_activations(model: nn.Module, names: list[str]) -> Iterator[dict[str, Tensor]]:
    """Record the forward output of each named module while the context is open.

    ``names`` are ``model.named_modules()`` names such as ``"stages.0.blocks.1.attention.q_sign"``;
    an unknown name raises KeyError naming it. The dict fills as the model runs.
    """
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise KeyError(f"no module named {unknown[0]!r} in the model")
    captured: dict[str, Tensor] = {}
    handles = [modules[n].register_forward_hook(
        lambda _m, _i, out, n=n: captured.__setitem__(n, out.detach())) for n in names]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
