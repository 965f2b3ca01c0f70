"""BinaryViT shapes, parameter counts, ablation switches and the documented block dataflow."""
import math

import pytest
import torch
import torch.nn.functional as F

from binaryvit.errors import ConfigError, DataError
from binaryvit.golden.float_model.config import get_config
from binaryvit.golden.float_model.network import BinaryViT, capture_activations, count_parameters

TINY = get_config("tiny-digits")


# Parameter counts written out from the architecture description (docs/model.md), not from
# the code: a BN has 2 per channel, an RPReLU 3, an RSign 1, an affine 2.
def block_params(c, m, r, branches):
    binary_linear = c * c + c                       # weights + the input RSign's move
    attention = (3 * (binary_linear + 2 * c + 3 * c)  # q, k, v: BL + BN + RPReLU
                 + (binary_linear + 5 * c if r > 1 else 0)  # spatial reduction unit
                 + 3 * c + 1                        # q/k/v signs + attention alpha
                 + 2 * c + 3 * c                    # ctx BN + RPReLU
                 + binary_linear + 2 * c + 3 * c)   # out projection unit
    mlp = (c * m + c + 2 * m + 3 * m) + (m * c + m + 2 * c + 3 * c)
    return 4 * c + attention + mlp + 4 * c + branches * 2 * c


def network_params(cin, patch, tokens0, classes, stages, branches=4, cls_token=False):
    """``stages``: list of (C, depth, mlp, r, tokens)."""
    c0 = stages[0][0]
    total = cin * c0 * patch * patch + c0 + 2 * c0 + tokens0 * c0
    for i, (c, depth, m, r, tokens) in enumerate(stages):
        if i > 0:
            half = c // 2
            total += 2 * half + half + c * half * 4 + 2 * c + 3 * c + tokens * c
        total += depth * block_params(c, m, r, branches)
    c_last = stages[-1][0]
    return total + 2 * c_last + c_last * classes + classes + (c_last if cls_token else 0)


TINY_STAGES = [(32, 2, 128, 2, 64), (64, 2, 256, 1, 16)]


def test_tiny_digits_shapes_and_parameter_count():
    model = BinaryViT(TINY)
    logits = model(torch.randint(0, 17, (3, 1, 8, 8)).float())
    assert logits.shape == (3, 10)
    assert count_parameters(model) == network_params(1, 1, 64, 10, TINY_STAGES)


def test_binaryvit_s_has_22_49_m_parameters_and_runs_at_224():
    config = get_config("binaryvit-s")
    model = BinaryViT(config).eval()
    n = count_parameters(model)
    assert abs(n - 22.49e6) / 22.49e6 < 0.01
    stages = [(64, 3, 512, 8, 3136), (128, 4, 1024, 4, 784), (256, 8, 1024, 1, 196),
              (512, 4, 2048, 1, 49)]
    assert n == network_params(3, 4, 3136, 1000, stages)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 224, 224) * 255).shape == (1, 1000)


def test_grid_and_patch_size_are_parameters():
    config = TINY.replace(image_size=(16, 8), patch_size=2)
    assert BinaryViT(config)(torch.rand(2, 1, 16, 8)).shape == (2, 10)


def module_names(model):
    return [name for name, _ in model.named_modules()]


def test_layer_scale_switch_removes_exactly_the_layer_scales():
    base, ablated = BinaryViT(TINY), BinaryViT(TINY.replace(layer_scale=False))
    assert not any("layer_scale" in n for n in module_names(ablated))
    assert set(module_names(base)) - set(module_names(ablated)) == {
        f"stages.{s}.blocks.{b}.layer_scale{i}" for s in (0, 1) for b in (0, 1) for i in (1, 2)}
    assert count_parameters(base) - count_parameters(ablated) == 2 * 4 * 32 + 2 * 4 * 64


def test_multi_pool_switch_removes_exactly_the_four_branches():
    base, ablated = BinaryViT(TINY), BinaryViT(TINY.replace(multi_pool=False))
    removed = set(module_names(base)) - set(module_names(ablated))
    assert {n.rsplit(".", 1)[-1] for n in removed} == {"pool_branches", "affines",
                                                        "1x3", "3x1", "1x5", "5x1"}
    assert count_parameters(base) - count_parameters(ablated) == 2 * 8 * 32 + 2 * 8 * 64
    assert count_parameters(ablated) == network_params(1, 1, 64, 10, TINY_STAGES, branches=0)


def test_global_pool_switch_adds_a_class_token_instead():
    ablated = BinaryViT(TINY.replace(global_pool=False))
    assert count_parameters(ablated) - count_parameters(BinaryViT(TINY)) == 64
    assert ablated.cls_token.shape == (1, 1, 64)
    assert ablated(torch.rand(2, 1, 8, 8) * 16).shape == (2, 10)


def test_pyramid_switch_gives_one_isotropic_stage():
    ablated = BinaryViT(TINY.replace(pyramid=False))
    names = module_names(ablated)
    assert not any(n.endswith("merge") or "sr_" in n for n in names)
    assert len(ablated.stages) == 1 and len(ablated.stages[0].blocks) == 4
    assert count_parameters(ablated) == network_params(1, 1, 64, 10, [(32, 4, 128, 1, 64)])
    assert ablated(torch.rand(2, 1, 8, 8) * 16).shape == (2, 10)


def test_float_mode_has_the_same_parameters_but_real_activations():
    binary, real = BinaryViT(TINY), BinaryViT(TINY.as_float())
    real.load_state_dict(binary.state_dict())
    x = torch.rand(4, 1, 8, 8) * 16
    name = "stages.0.blocks.0.attention.q_sign"
    with capture_activations(binary, [name]) as b, capture_activations(real, [name]) as r:
        binary(x), real(x)
    assert set(b[name].unique().tolist()) == {-1.0, 1.0}
    assert len(r[name].unique()) > 2


def test_wrong_input_shape_is_a_data_error():
    with pytest.raises(DataError, match=r"\[batch, 1, 8, 8\]"):
        BinaryViT(TINY)(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("changes, word", [
    (dict(num_heads=(3, 4)), "heads"), (dict(mlp_dims=(100, 256)), "mlp_dim"),
    (dict(sr_ratios=(3, 1)), "sr_ratio"), (dict(depths=(2,)), "depths"),
    (dict(patch_size=3), "patch_size"), (dict(embed_dims=(32, 48)), "width")])
def test_contradictory_configs_are_refused(changes, word):
    with pytest.raises(ConfigError, match=word):
        TINY.replace(**changes)


def test_block_matches_the_documented_dataflow():
    """Recompute stage 0, block 0 (SR ratio 2) in eval mode from docs/model.md."""
    torch.manual_seed(0)
    model = BinaryViT(TINY)
    with torch.no_grad():  # non-trivial BN statistics, moves, affines and branch scales
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    block = model.stages[0].blocks[0]
    att, mlp = block.attention, block.mlp
    h = torch.randn(2, 64, 32)

    def sign(x):
        return torch.where(x >= 0, 1.0, -1.0)

    def bn(m, x):
        return (x - m.running_mean) / torch.sqrt(m.running_var + m.eps) * m.weight + m.bias

    def rp(m, x):
        t = x - m.shift_in
        return torch.where(t >= 0, t, m.slope * t) + m.shift_out

    def bl(m, x):
        w = m.weight
        wb = sign(w - w.mean(1, keepdim=True)) * w.abs().mean(1, keepdim=True)
        return sign(x + m.input_sign.move) @ wb.T

    def grid_pool(x, kh, kw, stride, pad):
        img = x.transpose(1, 2).reshape(2, 32, 8, 8)
        out = F.avg_pool2d(img, (kh, kw), stride, pad, count_include_pad=True)
        return out.flatten(2).transpose(1, 2)

    with torch.no_grad():
        u = bn(block.norm1, h)
        q = rp(att.q_act, bn(att.q_norm, bl(att.q_proj, u)) + u)
        ur = grid_pool(u, 2, 2, 2, 0)
        ur = rp(att.sr_act, bn(att.sr_norm, bl(att.sr_proj, ur)) + ur)
        k = rp(att.k_act, bn(att.k_norm, bl(att.k_proj, ur)) + ur)
        v = rp(att.v_act, bn(att.v_norm, bl(att.v_proj, ur)) + ur)
        qb, kb, vb = (sign(t + s.move).reshape(2, -1, 2, 16).transpose(1, 2)
                      for t, s in ((q, att.q_sign), (k, att.k_sign), (v, att.v_sign)))
        probs = torch.softmax(qb @ kb.transpose(-1, -2) / 4.0, dim=-1)
        alpha = att.prob_binarizer.alpha_raw.abs() + 1e-6
        ctx = ((alpha * (probs > alpha / 2)) @ vb).transpose(1, 2).reshape(2, 64, 32)
        # nearest upsample of the 4x4 key grid to 8x8: token (i, j) reads (i // 2, j // 2)
        index = torch.tensor([(i // 2) * 4 + j // 2 for i in range(8) for j in range(8)])
        ctx = rp(att.ctx_act, bn(att.ctx_norm, ctx) + q + k[:, index] + v[:, index])
        a = rp(att.out_act, bn(att.out_norm, bl(att.out_proj, ctx)) + ctx)
        h1 = h + block.layer_scale1.scale * a + block.layer_scale1.bias
        z = bn(block.norm2, h1)
        t = rp(mlp.fc1_act, bn(mlp.fc1_norm, bl(mlp.fc1, z)) + torch.cat([z] * 4, -1))
        group_mean = t.reshape(2, 64, 32, 4).mean(-1)
        o = rp(mlp.fc2_act, bn(mlp.fc2_norm, bl(mlp.fc2, t)) + group_mean)
        expected = h1 + block.layer_scale2.scale * o + block.layer_scale2.bias
        for name, (kh, kw) in {"1x3": (1, 3), "3x1": (3, 1), "1x5": (1, 5), "5x1": (5, 1)}.items():
            branch = block.pool_branches.affines[name]
            pooled = grid_pool(z, kh, kw, 1, (kh // 2, kw // 2))
            expected = expected + branch.scale * pooled + branch.bias
        assert torch.allclose(block(h, (8, 8)), expected, atol=1e-5)
        assert math.isclose(att.prob_binarizer.alpha().item(), alpha.item())


def test_capture_activations_by_module_name():
    model = BinaryViT(TINY).eval()
    names = ["stem", "stages.1.merge", "stages.1.blocks.1", "head_norm"]
    with torch.no_grad(), capture_activations(model, names) as acts:
        model(torch.rand(2, 1, 8, 8) * 16)
    assert acts["stem"].shape == (2, 64, 32)
    assert acts["stages.1.merge"].shape == (2, 16, 64)
    assert acts["stages.1.blocks.1"].shape == (2, 16, 64)
    with pytest.raises(KeyError, match="nonexistent"):
        with capture_activations(model, ["nonexistent"]):
            pass
