"""An exponential moving average (EMA) of a network's trainable parameters.

After every optimiser step ``update`` moves each shadow parameter towards the live one::

    shadow <- d·shadow + (1 − d)·param,   d = min(decay, (1 + t) / (10 + t))

with ``t`` the number of earlier updates (the usual warm-up, so the first steps do not
drag the random initialisation along). At the end :meth:`copy_to` writes the averages into
the network. For a binary network the average is of the latent real-valued weights, whose
signs are what the forward pass uses; BatchNorm running statistics are buffers, not
parameters, so they are not averaged: recompute them for the averaged weights afterwards
(``training.recalibrate_batchnorm``).
"""
from __future__ import annotations

import torch
from torch import nn

from binaryvit.errors import ConfigError


class WeightAverage:
    """EMA shadow of ``model``'s parameters, in the parameters' dtype, on their device."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters()}

    def current_decay(self) -> float:
        """The ``d`` the next :meth:`update` uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """``shadow <- d·shadow + (1 − d)·param`` for every parameter of ``model``."""
        weight = 1.0 - self.current_decay()
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach(), weight)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters with the averages."""
        for name, p in model.named_parameters():
            p.copy_(self.shadow[name])


__all__ = ["WeightAverage"]
