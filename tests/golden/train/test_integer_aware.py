"""Hardware-aware fine-tuning: the stream rounding equals the integer contract's, gradients
pass straight through, the rounded modules are the integer model's stream steps, and a
fine-tuning run leaves BatchNorm statistics alone."""
import pytest
import torch
from torch import nn

from binaryvit.golden.float_model.channelwise import ChannelAffine, RPReLU
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT
from binaryvit.golden.intref import affine, rprelu
from binaryvit.golden.train.data import ImageDataset, load_digits_dataset
from binaryvit.golden.train.integer_aware import (FinetuneSettings, fake_quantize,
                                                  integer_aware_finetune, integer_rounding,
                                                  stream_integers)
from binaryvit.quantize.calibrate import stream_module_names
from binaryvit.quantize.fold import round_half_up


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_stream_integers_round_half_up_and_saturate():
    # frac 2: x·4 = 0.5 → 1, −0.5 → 0 (half up), 1.5 → 2, −1.5 → −1, 0.49.. → 0
    x = torch.tensor([0.125, -0.125, 0.375, -0.375, 0.1249, 10.0, -10.0])
    assert stream_integers(x, frac=2, width=6).tolist() == [1, 0, 2, -1, 0, 31, -32]


def test_rounded_channel_affine_equals_the_integer_affine_exactly():
    """A ChannelAffine whose constants the integer affine represents exactly: scale
    ``mul·2^-M``, bias ``bias·2^-(F+M)``, input ``q·2^-F``. Its rounded output, in stream
    words, is ``intref.affine(q, mul, bias, M, width)``, ties and saturation included."""
    frac, point, width, channels = 4, 6, 10, 5
    gen = torch.Generator().manual_seed(3)
    mul = torch.randint(-200, 200, (channels,), generator=gen)
    bias = torch.randint(-3000, 3000, (channels,), generator=gen)
    q = torch.randint(-512, 512, (40, 7, channels), generator=gen)
    q[0, 0] = torch.tensor([511, -512, 0, 1, -1])   # extremes and zero
    mul[0], bias[0] = 1 << (point - 1), 0            # scale 1/2, no bias: odd q tie exactly
    layer = nn.Sequential()
    layer.add_module("scale", ChannelAffine(channels, 0.0))
    with torch.no_grad():
        layer.scale.scale.copy_(mul.double() * 2.0 ** -point)
        layer.scale.bias.copy_(bias.double() * 2.0 ** -(frac + point))
    layer.double()
    with integer_rounding(layer, ["scale"], frac, width):
        out = layer(q.double() * 2.0 ** -frac)
    words = out * 2.0 ** frac
    assert torch.equal(words, words.round())
    expected = affine(q, mul, bias, point, width)
    assert torch.equal(words.to(torch.int64), expected)
    assert (expected == 511).any() or (expected == -512).any()   # saturation exercised
    assert (q[..., 0] % 2 == 1).any()                             # ties exercised


def test_gradient_passes_straight_through_rounding_and_saturation():
    x = torch.tensor([0.3, -0.7, 100.0, -100.0, 0.125], requires_grad=True)
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    (fake_quantize(x, frac=2, width=6) * weights).sum().backward()
    assert torch.equal(x.grad, weights)


def test_rounded_modules_are_the_integer_models_stream_steps():
    model = BinaryViT(get_config("tiny-digits"))
    names = stream_module_names(model)
    assert {"stem", "stem.norm", "stages.0.blocks.0.norm1", "stages.0.blocks.0",
            "stages.0.blocks.0.layer_scale1", "stages.0.blocks.0.attention.q_act",
            "stages.0.blocks.0.pool_branches.affines.1x3", "stages.1.merge"} <= set(names)
    # the poolings the integer model rounds on their own
    assert {"stages.0.blocks.0.attention.sr_pool", "stages.0.blocks.0.mlp.fc2_shortcut",
            "stages.1.merge.shortcut_pool"} <= set(names)
    # folded into the LayerScale that follows it, and the head folds into the classifier
    assert "stages.0.blocks.0.attention.out_act" not in names
    assert "head_norm" not in names and "classifier" not in names


def test_finetuning_moves_weights_and_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    model = BinaryViT(get_config("tiny-digits").replace(input_mean=(4.9,), input_std=(6.0,)))
    data = load_digits_dataset()
    small = ImageDataset(data.train_images[:16], data.train_labels[:16],
                         data.test_images[:8], data.test_labels[:8], 10, "subset")
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    weight = model.stages[0].blocks[0].mlp.fc1.weight.detach().clone()
    names = stream_module_names(model)
    metrics = integer_aware_finetune(model, small, names, frac=5, width=12,
                                     settings=FinetuneSettings(epochs=1, batch_size=16,
                                                               lr=1e-2, progress=False))
    assert metrics["final_loss"] > 0
    assert not torch.equal(model.stages[0].blocks[0].mlp.fc1.weight, weight)
    for key, value in stats.items():
        assert torch.equal(model.state_dict()[key], value), key
    probe = model.stem
    assert not probe._forward_hooks   # the rounding hooks are gone afterwards


def test_rounded_rprelu_equals_the_integer_rprelu_exactly():
    """An RPReLU with an off-grid ``shift_in`` and representable slope and ``shift_out``:
    under the rounding its output words are ``intref.rprelu`` with the fold's constants
    (``pre_bias = round_half_up(−shift_in·2^F)``), also where the kink moved."""
    frac, point, width, channels = 3, 5, 9, 4
    gen = torch.Generator().manual_seed(5)
    shift_in = torch.tensor([0.30, -0.0625, 1.1, -2.26])      # none on the 1/8 grid
    slope = torch.tensor([-7, 3, 8, 21]) * 2.0 ** -point      # mul_neg = slope·2^5
    shift_out = torch.tensor([-13, 40, 0, 7]) * 2.0 ** -(frac + point)
    q = torch.randint(-256, 256, (30, 6, channels), generator=gen)
    q[0, 0] = torch.tensor([2, 0, 9, -18])                    # at and beside the moved kinks
    act = RPReLU(channels)
    with torch.no_grad():
        act.shift_in.copy_(shift_in)
        act.slope.copy_(slope)
        act.shift_out.copy_(shift_out)
    layer = nn.Sequential()
    layer.add_module("act", act.double())
    with integer_rounding(layer, ["act"], frac, width):
        words = layer(q.double() * 2.0 ** -frac) * 2.0 ** frac
    pre_bias = torch.from_numpy(round_half_up(-shift_in.double().numpy() * 2.0 ** frac))
    expected = rprelu(q, pre_bias, 1 << point, (slope * 2 ** point).to(torch.int64),
                      (shift_out * 2 ** (frac + point)).to(torch.int64), point, width)
    assert torch.equal(words, words.round())
    assert torch.equal(words.to(torch.int64), expected)
