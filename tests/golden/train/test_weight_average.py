"""The weight EMA: its update arithmetic (decay warm-up and cap) and copying back."""
import pytest
import torch
from torch import nn

from binaryvit.errors import ConfigError
from binaryvit.golden.train.training import TrainSettings
from binaryvit.golden.train.weight_average import WeightAverage


def one_parameter(value: float) -> nn.Module:
    module = nn.Module()
    module.w = nn.Parameter(torch.tensor([value], dtype=torch.float64))
    return module


def test_average_follows_the_warm_up_then_the_capped_decay():
    model = one_parameter(0.0)
    average = WeightAverage(model, decay=0.5)
    model.w.data.fill_(1.0)
    average.update(model)   # d = min(0.5, 1/10) = 0.1: 0.1·0 + 0.9·1
    assert average.shadow["w"].item() == pytest.approx(0.9, abs=1e-15)
    model.w.data.fill_(2.0)
    average.update(model)   # d = min(0.5, 2/11): (2/11)·0.9 + (9/11)·2 = 19.8/11
    assert average.shadow["w"].item() == pytest.approx(1.8, abs=1e-15)
    for _ in range(10):
        average.update(model)
    assert average.current_decay() == 0.5   # (1+12)/(10+12) > 0.5: the cap holds
    model.w.data.fill_(4.0)
    before = average.shadow["w"].item()
    average.update(model)
    assert average.shadow["w"].item() == pytest.approx(0.5 * before + 0.5 * 4.0, abs=1e-15)


def test_copy_to_writes_the_average_and_the_live_weights_are_untouched_until_then():
    model = one_parameter(3.0)
    average = WeightAverage(model, decay=0.9)
    model.w.data.fill_(5.0)
    average.update(model)   # 0.1·3 + 0.9·5
    assert model.w.item() == 5.0
    average.copy_to(model)
    assert model.w.item() == pytest.approx(4.8, abs=1e-15)


@pytest.mark.parametrize("decay", [-0.1, 1.0])
def test_decay_outside_zero_one_is_refused(decay):
    with pytest.raises(ConfigError, match="decay"):
        WeightAverage(one_parameter(0.0), decay)
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainSettings(ema_decay=decay)
