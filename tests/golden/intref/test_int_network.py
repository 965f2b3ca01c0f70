"""The integer network against the float network, layer by layer, on real digit images.

Each step is checked in isolation: the float module is fed the integer model's own input to
that step (converted to real units), so errors do not compound. The claims:

* every sign (threshold) step gives exactly the float RSign's bits (no tolerance: the
  threshold ``ceil(−move·2^F)`` is exact on the grid);
* every affine / RPReLU / MAC step is within the bound its format implies, in LSBs of the
  stream: ``(|Δmul|·|x| + |Δbias|)/2^shift + 1/2`` with ``|Δmul|, |Δbias| ≤ 1/2`` (constants
  rounded to the nearest integer, the output rounded once); RPReLU adds ``1/2`` LSB of its
  rounded ``pre_bias`` times its slope;
* the whole network: top-1 within 1 point of the float model, ≥ 98% per-image agreement,
  and at wide formats (28-bit stream, 20-bit constants) the two agree on ≥ 99.5%.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from binaryvit.errors import CheckpointError, DataError
from binaryvit.golden.float_model.binary_layers import BinaryConv2d, BinaryLinear
from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.float_model.token_grid import image_to_tokens, tokens_to_image
from binaryvit.golden.intref import signed_range
from binaryvit.golden.intref.int_network import int_predict, run_int_network
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.quantize.fidelity import measure_fidelity
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_model

SLACK = 1e-6  # float64 evaluation of the float reference


@pytest.fixture(scope="module")
def setup(trained_checkpoint):
    model = load_checkpoint(trained_checkpoint).build_model()
    data = load_digits_dataset()
    q = quantize_model(model, data.train_images[:128])
    images = data.test_images[:120]
    taps = run_int_network(q.intmodel, images, taps=True).taps
    taps["input"] = images.to(torch.int64)
    return model, _double_with_float32_weight_signs(model), q.intmodel, data, images, taps


def _double_with_float32_weight_signs(model):
    """The model in float64, binary layers keeping the weights the float32 model binarized.

    Row centring ``W - mean(W)`` in float64 can flip the sign of a weight that float32 put
    within an ulp of its row mean; the quantizer took float32's bits, so the reference must.
    """
    model64 = copy.deepcopy(model).double()
    layers32 = dict(model.named_modules())
    for name, layer in model64.named_modules():
        if isinstance(layer, (BinaryLinear, BinaryConv2d)):
            weight = layers32[name].effective_weight().detach().double()
            layer.effective_weight = lambda weight=weight: weight
    return model64


def _real(taps, name, frac):
    return taps[name].double() / 2.0 ** frac


def _unsaturated(q, width):
    lo, hi = signed_range(width)
    return (q > lo) & (q < hi)


def _check(name, float_value, q, bound, frac, width):
    err = (float_value * 2.0 ** frac - q.double()).abs()
    keep = _unsaturated(q, width)
    assert keep.double().mean() > 0.99, f"{name}: too many saturated values"
    worst = float(err[keep].max())
    assert worst <= bound + SLACK, f"{name}: {worst:.3f} LSB > bound {bound:.3f}"
    return worst


def test_every_sign_equals_the_float_rsign_bit_for_bit(setup):
    _, model64, intmodel, _, _, taps = setup
    modules = dict(model64.named_modules())
    frac = intmodel.formats["stream_frac"]
    checked = 0
    for step in intmodel.steps:
        if step.op != "threshold":
            continue
        move = modules[step.name].move.double()
        expected = (_real(taps, step.inputs[0], frac) + move) >= 0
        assert torch.equal(expected, taps[step.name]), step.name
        checked += 1
    assert checked == 27 + 12  # the inputs of 27 binary layers, and Q, K, V of 4 blocks


def _affine_reference(step, intmodel, modules, taps, frac):
    """The float computation an affine step stands for, on the integer model's inputs."""
    name = step.name
    source = intmodel.step(step.inputs[0])
    if source.op == "xnor_popcount_dot":
        sign = intmodel.step(source.inputs[0])
        if sign.op == "token_patches":
            grid = (sign.params["grid_h"], sign.params["grid_w"])
            sign = intmodel.step(sign.inputs[0])
            image = tokens_to_image(_real(taps, sign.inputs[0], frac), grid)
            dot = image_to_tokens(modules[source.name](image))
        else:
            dot = modules[source.name](_real(taps, sign.inputs[0], frac))
        return modules[name](dot), source.arrays["weight_bits"].shape[1]
    if source.op == "and_popcount_context":
        attention = modules[name.rsplit(".", 1)[0]]
        alpha = attention.prob_binarizer.alpha()
        return modules[name](alpha * taps[source.name].double()), source.params["keys"]
    if source.op == "window_sum2d":
        p = source.params
        z = tokens_to_image(_real(taps, source.inputs[0], frac), (p["grid_h"], p["grid_w"]))
        pooled = F.avg_pool2d(z, (p["kh"], p["kw"]), stride=1, padding=(p["pad_h"], p["pad_w"]),
                              count_include_pad=True)
        x_max = int(taps[source.name].abs().max())
        return modules[name](image_to_tokens(pooled)), x_max
    x = taps[step.inputs[0]]
    return modules[name](_real(taps, step.inputs[0], frac)), int(x.abs().max())


def test_affine_steps_within_their_format_bound(setup):
    _, model64, intmodel, _, _, taps = setup
    modules = dict(model64.named_modules())
    frac, width = intmodel.formats["stream_frac"], intmodel.formats["stream_width"]
    checked = 0
    for step in intmodel.steps:
        if step.op != "affine":
            continue
        with torch.no_grad():
            reference, x_max = _affine_reference(step, intmodel, modules, taps, frac)
        bound = (0.5 * x_max + 0.5) / 2 ** step.params["shift"] + 0.5
        _check(step.name, reference, taps[step.name], bound, frac, width)
        checked += 1
    # per block: norm1, q/k/v/out/ctx norms, norm2, fc1/fc2 norms, 4 branches = 13, +1 sr_norm
    # in stage 0 (r = 2); 2 blocks per stage; the merge's norm and conv_norm: 28 + 26 + 2
    assert checked == 56


def _rprelu_reference(name, modules):
    """RPReLU module, followed by the LayerScale the step folds in (if the name says so)."""
    block = name.rsplit(".", 1)[0]
    if name.endswith("layer_scale1"):
        return lambda x: modules[name](modules[f"{block}.attention.out_act"](x))
    if name.endswith("layer_scale2"):
        return lambda x: modules[name](modules[f"{block}.mlp.fc2_act"](x))
    return modules[name]


def test_rprelu_steps_with_folded_layer_scale_within_bound(setup):
    _, model64, intmodel, _, _, taps = setup
    modules = dict(model64.named_modules())
    frac, width = intmodel.formats["stream_frac"], intmodel.formats["stream_width"]
    names = [s.name for s in intmodel.steps if s.op == "rprelu"]
    assert sum(n.endswith("layer_scale1") or n.endswith("layer_scale2") for n in names) == 8
    for step in (intmodel.step(n) for n in names):
        with torch.no_grad():
            reference = _rprelu_reference(step.name, modules)(_real(taps, step.inputs[0], frac))
        s = step.params["shift"]
        t_max = int((taps[step.inputs[0]] + torch.from_numpy(step.arrays["pre_bias"])).abs().max())
        slope = max(abs(int(v)) for v in (*step.arrays["mul_pos"], *step.arrays["mul_neg"])) / 2 ** s
        bound = 0.5 * slope + (0.5 * t_max + 0.5) / 2 ** s + 0.5
        _check(step.name, reference, taps[step.name], bound, frac, width)


def test_stem_mac_folds_the_normalisation(setup):
    _, model64, intmodel, _, images, taps = setup
    frac, width = intmodel.formats["stream_frac"], intmodel.formats["stream_width"]
    stem = model64.stem
    with torch.no_grad():
        reference = stem.norm(image_to_tokens(stem.conv(stem.input_norm(images.double()))))
    step = intmodel.step("stem.norm")
    k = step.arrays["weight"].shape[1]
    bound = (0.5 * 16 * k + 0.5) / 2 ** step.params["shift"] + 0.5
    _check("stem.norm", reference, taps["stem.norm"], bound, frac, width)
    with torch.no_grad():
        full = stem(images.double())
    # + the position embedding, itself rounded to the grid (another 1/2 LSB)
    _check("stem", full, taps["stem"], bound + 0.5, frac, width)


def test_whole_network_fidelity_on_the_test_split(setup):
    model, _, intmodel, data, _, _ = setup
    fid = measure_fidelity(model, intmodel, data.test_images, data.test_labels, per_layer=False)
    assert abs(fid.int_top1 - fid.float_top1) <= 0.01
    assert fid.agreement >= 0.98


def test_wide_formats_converge_to_the_float_model(setup):
    model, _, _, data, _, _ = setup
    q = quantize_model(model, data.train_images[:128],
                       QuantFormats(stream_width=28, const_bits=20, acc_width=62))
    fid = measure_fidelity(model, q.intmodel, data.test_images[:200], data.test_labels[:200],
                           per_layer=False)
    assert fid.agreement >= 0.995


def test_predict_is_batch_independent(setup):
    _, _, intmodel, data, _, _ = setup
    images = data.test_images[:30]
    whole = int_predict(intmodel, images, batch_size=30)
    pieces = int_predict(intmodel, images, batch_size=11)
    assert torch.equal(whole, pieces)


def test_bad_pixels_and_tap_names_are_refused(setup):
    _, _, intmodel, _, images, _ = setup
    with pytest.raises(DataError, match="raw integer pixels"):
        run_int_network(intmodel, images[:2] + 0.5)
    with pytest.raises(DataError, match="shape"):
        run_int_network(intmodel, images[:2, :, :4])
    with pytest.raises(CheckpointError, match="no step named 'nope'"):
        run_int_network(intmodel, images[:2], taps=["nope"])
