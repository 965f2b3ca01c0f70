"""The folding pass: targets met and balanced, LUT budgets, overrides, clear refusals."""
import json

import pytest
from network_models import int_model

from binaryvit.errors import ConfigError, FoldingError
from binaryvit.hw.network import folding as folding_pass
from binaryvit.hw.network.folding import (candidates, default_target, fold_network,
                                          load_overrides, step_cycles, step_luts)
from binaryvit.hw.network.graph import infer_tensors
from binaryvit.hw.network.planner import plan_network
from binaryvit.hw.ops.registry import spec_of


@pytest.fixture(scope="module")
def tiny():
    return int_model("tiny-digits")


def test_hand_derived_cycles_of_a_folded_layer(tiny):
    tensors = infer_tensors(tiny)
    fc1 = tiny.step("stages.0.blocks.0.mlp.fc1")  # 64 tokens, K = 32 inputs, N = 128 outputs
    assert step_cycles(fc1, {"pe": 8, "simd": 4}, tensors) == 64 * (32 // 4) * (128 // 8)
    attention = tiny.step("stages.0.blocks.0.attention.context")  # Tq 64, Tk 16, 2 heads of 16
    # Tq·h·max(Tk/P, d/lanes) with P = 4: 64·2·4 (lanes = 16), 64·2·16 (lanes = 1: the
    # output's 16 words per head set the pace)
    assert step_cycles(attention, {"keys_per_cycle": 4, "lanes": 16}, tensors) == 512
    assert step_cycles(attention, {"keys_per_cycle": 4, "lanes": 1}, tensors) == 2048
    # Stride-1 strips and the upsample hide their borders and loads: one word per cycle on
    # the busier port (8×8 grid, 32 channels, 2 per word; 4×4 grid upsampled by 2).
    strip = tiny.step("stages.0.blocks.0.pool_branches.1x5.sum")
    assert step_cycles(strip, {"lanes": 2}, tensors) == 64 * 32 // 2
    upsample = tiny.step("stages.0.blocks.0.attention.k_up")
    assert step_cycles(upsample, {"lanes": 2}, tensors) == 16 * 32 // 2 * 4
    assert default_target(tiny) == 2048  # 32 cycles per token of the 8×8 grid


@pytest.mark.parametrize("target", [300, 1024, 2048, 8192])
def test_every_layer_meets_the_target_and_none_is_needlessly_fast(tiny, target):
    folding = fold_network(tiny, target_cycles=target)
    tensors = infer_tensors(tiny)
    steps = {s.name: s for s in tiny.steps}
    assert folding.bottleneck <= target
    for step in tiny.steps:
        fold = folding.folds[step.name]
        assert step_cycles(step, fold, tensors) == folding.cycles[step.name] <= target
        # balance: no cheaper fold of this layer would also meet the bottleneck (the
        # target, or below it where a strip pool's flush would slow the network)
        cheaper = [c for c in candidates(step, tensors)
                   if step_luts(step, c, tensors, steps) < folding.luts[step.name]
                   and step_cycles(step, c, tensors) <= folding.bottleneck]
        assert not cheaper, step.name


@pytest.mark.parametrize("model, targets, fires", [
    ("micro", [68, 80, 100, 132, 200], True),
    ("tiny-digits", [300, 600, 1200, 2500, 3000], False)])   # its folds avoid it by themselves
def test_no_strip_pool_is_faster_than_the_bottleneck_by_less_than_its_flush(model, targets, fires,
                                                                            monkeypatch):
    # Images B cycles apart and a strip pool of c < B < c + U cycles (U: its flush unit)
    # made the pool flush mid-gap and fall behind: the timing model refused the network
    # (micro at 65 and 129 cycles: the patch unfold's one cycle per image above the pools).
    # The pass lowers such a bottleneck to the pool's.
    network_model = int_model(model)
    tensors = infer_tensors(network_model)
    bottlenecks = {}
    for target in targets:
        folding = fold_network(network_model, target_cycles=target)
        for step in network_model.steps:
            unit = spec_of(step.op).flush_unit(step, folding.folds[step.name], tensors)
            assert not folding.cycles[step.name] < folding.bottleneck \
                < folding.cycles[step.name] + unit, (target, step.name)
        bottlenecks[target] = folding.bottleneck
    with monkeypatch.context() as patched:
        patched.setattr(folding_pass, "_flush_bound", lambda *args: None)
        lowered = [target for target in targets
                   if fold_network(network_model, target_cycles=target).bottleneck
                   > bottlenecks[target]]
    assert bool(lowered) == fires
    for target in lowered:
        folding = fold_network(network_model, target_cycles=target)
        plan_network(network_model, folding)  # the timing model settles


def test_slower_targets_never_cost_more(tiny):
    luts = [fold_network(tiny, target_cycles=t).total_luts for t in (300, 1024, 2048, 8192)]
    assert luts == sorted(luts, reverse=True) and luts[0] > luts[-1]


def test_an_impossible_target_names_the_best_achievable(tiny):
    # The MLP shortcut tiles 32 channels 4 times; its words are at most 32 lanes wide, so
    # 64 tokens × 4 words = 256 cycles is the most parallel any folding gets.
    with pytest.raises(FoldingError, match=r"best achievable for this network is 256 cycles"):
        fold_network(tiny, target_cycles=100)
    assert fold_network(tiny, target_cycles=256).bottleneck == 256


def test_lut_budget_picks_the_fastest_folding_that_fits(tiny):
    reference = fold_network(tiny, target_cycles=1024)
    folding = fold_network(tiny, lut_budget=reference.total_luts)
    assert folding.total_luts <= reference.total_luts
    assert folding.bottleneck <= 1024
    with pytest.raises(FoldingError, match="lut_budget=10 is below"):
        fold_network(tiny, lut_budget=10)
    with pytest.raises(ConfigError, match="either"):
        fold_network(tiny, target_cycles=1024, lut_budget=10 ** 6)


def test_overrides_are_applied_and_checked(tiny, tmp_path):
    name = "stages.0.blocks.0.mlp.fc1"
    path = tmp_path / "fold.json"
    path.write_text(json.dumps({name: {"pe": 8, "simd": 4}}))
    folding = fold_network(tiny, overrides=load_overrides(path))
    assert folding.folds[name] == {"pe": 8, "simd": 4}
    assert folding.cycles[name] == 64 * 8 * 16
    with pytest.raises(FoldingError, match=r"pe=3 is not valid; valid values are \[1, 2, 4"):
        fold_network(tiny, overrides={name: {"pe": 3}})
    with pytest.raises(FoldingError, match="no such step"):
        fold_network(tiny, overrides={"stages.9": {"lanes": 1}})
    with pytest.raises(FoldingError, match="unknown keys"):
        fold_network(tiny, overrides={name: {"lanes": 4}})
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_overrides(path)
