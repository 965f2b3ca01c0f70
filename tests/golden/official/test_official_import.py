"""Importing checkpoints of the official BinaryViT code: our logits equal theirs on the
fixture made by their code, every layout they write loads (without running pickled code),
and the imported checkpoint quantizes into an integer model like a trained one."""
import dataclasses

import numpy as np
import pytest
import torch

from binaryvit.golden.float_model.checkpoint import load_checkpoint
from binaryvit.golden.official.importer import import_official, official_model
from binaryvit.golden.official.key_map import alpha_raw_for_clip, official_key
from official_files import (BINARY_CKPT, VIT_CONFIG, binary_state_dict, float_state_dict,
                            inputs_and_logits, save, training_checkpoint)

NORMALISED = dict(input_mean=(0.0, 0.0, 0.0), input_std=(1.0, 1.0, 1.0))
RELATIVE_TOLERANCE = 1e-4


def assert_logits_match(model, expected):
    x, _, _ = inputs_and_logits()
    with torch.no_grad():
        ours = model(x)
    scale = expected.abs().max()
    assert (ours - expected).abs().max() <= RELATIVE_TOLERANCE * scale
    assert torch.equal(ours.argmax(dim=1), expected.argmax(dim=1))
    return (ours - expected).abs().max()


def test_binary_logits_equal_the_official_ones():
    imported = official_model(BINARY_CKPT, VIT_CONFIG, **NORMALISED)
    assert imported.config.binary and imported.layout == "{'model': state_dict}"
    assert sum(p.numel() for p in imported.model.parameters()) == 149_599
    _, expected, _ = inputs_and_logits()
    assert_logits_match(imported.model, expected)


def test_float_logits_equal_the_official_ones(tmp_path):
    path = save({"model": float_state_dict()}, tmp_path / "official_ckpt_float.pth")
    imported = official_model(path, VIT_CONFIG, **NORMALISED)
    assert not imported.config.binary
    _, _, expected = inputs_and_logits()
    assert_logits_match(imported.model, expected)


def test_raw_pixels_with_imagenet_statistics_give_the_same_logits():
    """Their model takes normalised pixels; ours by default takes 0..255 pixels and
    normalises with ImageNet's statistics as their data loader did."""
    imported = official_model(BINARY_CKPT, VIT_CONFIG)
    c = imported.config
    assert c.input_mean == pytest.approx((123.675, 116.28, 103.53))
    assert c.input_std == pytest.approx((58.395, 57.12, 57.375))
    x, expected, _ = inputs_and_logits()
    raw = x * torch.tensor(c.input_std).view(1, 3, 1, 1) + torch.tensor(c.input_mean).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = imported.model(raw)
    assert (ours - expected).abs().max() <= RELATIVE_TOLERANCE * expected.abs().max()


def test_training_checkpoint_and_bare_state_dict_import_alike(tmp_path):
    x, expected, _ = inputs_and_logits()
    training = save(training_checkpoint(binary_state_dict(), epoch=41),
                    tmp_path / "checkpoint.pth")
    bare = save(binary_state_dict(), tmp_path / "bare.pth")
    out = tmp_path / "out" / "model.pt"
    imported = import_official(training, out, VIT_CONFIG, name="fixture", **NORMALISED)
    assert imported.layout == "training checkpoint" and imported.epoch == 41
    checkpoint = load_checkpoint(out)     # ours: weights_only, no allow-list
    assert checkpoint.config.name == "fixture" and checkpoint.metrics["official_epoch"] == 41
    assert_logits_match(checkpoint.build_model(), expected)
    from_bare = official_model(bare, VIT_CONFIG, **NORMALISED)
    assert from_bare.layout == "bare state_dict"
    assert dataclasses.replace(from_bare.config, name="fixture") == checkpoint.config
    for key, value in from_bare.model.state_dict().items():
        assert torch.equal(value, checkpoint.state_dict[key]), key


def test_a_ddp_prefixed_state_dict_is_unwrapped(tmp_path):
    path = save({f"module.{k}": v for k, v in binary_state_dict().items()}, tmp_path / "ddp.pth")
    _, expected, _ = inputs_and_logits()
    assert_logits_match(official_model(path, VIT_CONFIG, **NORMALISED).model, expected)


def test_every_official_key_has_one_place_with_its_shape():
    imported = official_model(BINARY_CKPT, VIT_CONFIG, **NORMALISED)
    theirs = binary_state_dict()
    ours = imported.model.state_dict()
    mapped = {official_key(k, imported.config): k for k in ours
              if official_key(k, imported.config) is not None}
    assert set(mapped) == set(theirs) and len(mapped) == len(theirs) == 553
    for key, value in theirs.items():
        if key.endswith("att_prob_clip"):
            continue
        assert torch.equal(ours[mapped[key]].reshape(value.shape), value), key
    # Spot checks written out from the official module tree (modeling_vit_extra_res_pyramid.py).
    assert mapped["vit.encoder.layer.3.attention.attention.movek2"] == \
        "stages.2.blocks.1.attention.k_sign.move"
    assert mapped["vit.encoder.layer.1.layerscale_w5.alpha"] == \
        "stages.1.blocks.0.pool_branches.affines.1x5.scale"
    assert mapped["vit.encoder.layer.0.layerscale_h3.move"] == \
        "stages.0.blocks.0.pool_branches.affines.3x1.bias"
    assert mapped["vit.encoder.layer.4.output.rprelu.prelu.weight"] == \
        "stages.3.blocks.0.mlp.fc2_act.slope"
    assert mapped["vit.encoder.patch_embed2.move"] == "stages.2.merge.conv.input_sign.move"
    assert mapped["vit.encoder.layer.0.attention.attention.mover"] == \
        "stages.0.blocks.0.attention.sr_proj.input_sign.move"


@pytest.mark.parametrize("clip", [0.0058047352358698845, 0.034765563905239105, 1e-6, 2e-6, 0.5,
                                  1.0, 123.0])
def test_the_attention_clip_maps_exactly(clip):
    c = torch.tensor(clip, dtype=torch.float32)
    raw = alpha_raw_for_clip(c, "clip")
    assert torch.equal(raw.abs() + 1e-6, c)


def test_the_imported_checkpoint_quantizes_into_a_running_integer_model(tmp_path):
    from binaryvit.golden.intref.int_network import run_int_network
    from binaryvit.quantize.quantizer import quantize_checkpoint

    checkpoint = tmp_path / "model.pt"
    import_official(BINARY_CKPT, checkpoint, VIT_CONFIG)
    x, _, _ = inputs_and_logits()
    config = load_checkpoint(checkpoint).config
    raw = (x * torch.tensor(config.input_std).view(1, 3, 1, 1)
           + torch.tensor(config.input_mean).view(1, 3, 1, 1)).round().clamp(0, 255)
    data = tmp_path / "calibration.npz"
    np.savez(data, images=raw.numpy().astype(np.uint8), labels=np.array([0, 1]),
             test_images=raw.numpy().astype(np.uint8), test_labels=np.array([0, 1]))
    quantized = quantize_checkpoint(checkpoint, tmp_path / "q", data=data)
    assert quantized.intmodel.config == config
    result = run_int_network(quantized.intmodel, raw.to(torch.int64))
    model = load_checkpoint(checkpoint).build_model()
    with torch.no_grad():
        float_logits = model(raw)
    # An untrained random network with two calibration images: the integer model agrees in
    # class, not to float round-off (sign flips on 1-bit paths; docs/quantization.md).
    assert result.logits.shape == (2, 10) and result.logits.dtype == torch.int64
    assert torch.equal(result.logits.argmax(dim=1), float_logits.argmax(dim=1))
