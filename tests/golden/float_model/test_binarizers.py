"""Binarizer forward values and straight-through gradients against hand-derived numbers."""
import pytest
import torch

from binaryvit.golden.float_model.binarizers import (approx_sign, binarize_attention, binarize_conv_w,
                                         binarize_linear_w, sign_pm1)
from binaryvit.golden.float_model.binary_layers import BinaryLinear, RSign


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, -1e-30, 3.0])
    assert sign_pm1(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]
    assert approx_sign(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0, 1.0]


def test_approx_sign_gradient_is_bireal_triangle():
    x = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.25, 1.0, 2.0], requires_grad=True)
    approx_sign(x).sum().backward()
    # 2 + 2x on [-1, 0], 2 - 2x on (0, 1], 0 outside
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 2.0, 1.5, 0.0, 0.0]


def test_rsign_moves_the_threshold_and_maps_the_tie_to_plus_one():
    sign = RSign(3)
    with torch.no_grad():
        sign.move.copy_(torch.tensor([0.5, -0.5, 0.0]))
    x = torch.tensor([[-0.5, 0.4, -0.1]])
    assert sign(x).tolist() == [[1.0, -1.0, -1.0]]  # -0.5 + 0.5 = 0 -> +1
    sign(x).sum().backward()
    # gradient w.r.t. move is ApproxSign'(x + move) = 2 - 2|x + move|: at 0, -0.1, -0.1
    assert sign.move.grad.tolist() == pytest.approx([2.0, 1.8, 1.8])


def test_linear_weight_binarizer_forward_and_gradient():
    w = torch.tensor([[0.5, -0.1, 0.2]], requires_grad=True)
    out = binarize_linear_w(w)
    # centred row [0.3, -0.3, 0.0] -> signs [+1, -1, +1]; alpha = mean|w| = 0.8/3
    assert out.flatten().tolist() == pytest.approx([0.8 / 3, -0.8 / 3, 0.8 / 3])
    (out * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    # all |centred| <= 1, so the gradient is g minus its row mean
    assert w.grad.flatten().tolist() == pytest.approx([-1.0, 0.0, 1.0])


def test_linear_weight_binarizer_clips_the_gradient():
    w = torch.tensor([[3.0, -1.0, 1.0]], requires_grad=True)
    out = binarize_linear_w(w)
    # centred [2, -2, 0]: signs [+1, -1, +1]; alpha = 5/3
    assert out.flatten().tolist() == pytest.approx([5 / 3, -5 / 3, 5 / 3])
    (out * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    # only the third entry is inside the clip: masked g = [0, 0, 3], minus its mean 1
    assert w.grad.flatten().tolist() == pytest.approx([-1.0, -1.0, 2.0])


def test_conv_weight_binarizer_per_output_channel():
    w = torch.tensor([[[[0.5, -0.25]]], [[[0.0, 2.0]]]], requires_grad=True)
    out = binarize_conv_w(w)
    assert out.flatten().tolist() == pytest.approx([0.375, -0.375, 1.0, 1.0])
    out.sum().backward()
    assert w.grad.flatten().tolist() == [1.0, 1.0, 1.0, 0.0]


def test_binary_linear_on_zero_input_counts_every_bit_as_plus_one():
    layer = BinaryLinear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.1, 0.2]]))
    # bits all +1 (sign(0) = +1): alpha * (1 - 1 + 1); torch.sign would give 0
    assert layer(torch.zeros(1, 3)).item() == pytest.approx(0.8 / 3)


def test_attention_binarizer_forward_tie_and_gradients():
    alpha = torch.tensor(0.2, requires_grad=True)
    p = torch.tensor([0.05, 0.1, 0.15, 0.2, 0.5], requires_grad=True)
    out = binarize_attention(p, alpha)
    # strict P > alpha/2: the tie 0.1 gives 0
    assert out.tolist() == pytest.approx([0.0, 0.0, 0.2, 0.2, 0.2])
    (out * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert p.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 0.0]
    # ratios 0.25, 0.5, 0.75, 1.0 inside: sum g (b - ratio) = -0.25 - 1 + 0.75 + 0; above: +5
    assert alpha.grad.item() == pytest.approx(4.5, abs=1e-5)


def test_attention_binarizer_equals_round_half_even_form():
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(10000, generator=gen) * 0.1
    alpha = torch.tensor(0.04)
    reference = alpha * torch.clamp(torch.round(p / alpha), 0, 1)
    assert torch.equal(binarize_attention(p, alpha), reference)
