"""The calibration rules: "range" (the largest value fits) and "fidelity" (of that binary
point and up to FIDELITY_SEARCH_BITS finer ones, the one whose integer logits are closest to
the float model's), on the trained fixture checkpoint."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from binaryvit.cli import main
from binaryvit.errors import ConfigError, OverflowProofError
from binaryvit.golden.float_model.checkpoint import load_model
from binaryvit.golden.intref.int_network import run_int_network
from binaryvit.golden.train.data import load_digits_dataset
from binaryvit.quantize import calibrate as calibration
from binaryvit.quantize.calibrate import FIDELITY_SEARCH_BITS, calibrate
from binaryvit.quantize.fold import fold_model
from binaryvit.quantize.formats import QuantFormats
from binaryvit.quantize.quantizer import quantize_model

WIDTH = 10


@pytest.fixture(scope="module")
def model_and_images(trained_checkpoint):
    model, _ = load_model(trained_checkpoint)
    return model, load_digits_dataset().train_images[:48]


def kl_by_hand(model, formats, images) -> float:
    """mean KL(softmax(float) || softmax(integer)) through torch's kl_div, not the rule's code."""
    with torch.no_grad():
        reference = torch.log_softmax(model(images).double(), dim=-1)
    logits = run_int_network(fold_model(model, formats), images).logits.double()
    integer = torch.log_softmax(logits / 2 ** formats.stream_frac, dim=-1)
    return float(F.kl_div(integer, reference, log_target=True, reduction="batchmean"))


def test_fidelity_keeps_the_candidate_closest_to_the_float_model(model_and_images):
    model, images = model_and_images
    base = QuantFormats(stream_width=WIDTH)
    by_range = calibrate(model, images, base)
    by_fidelity = calibrate(model, images, base, rule="fidelity")
    first = by_range.formats.stream_frac
    assert (by_range.rule, by_range.divergence) == ("range", {})
    assert by_fidelity.rule == "fidelity"
    # every candidate from the range rule's binary point up proves here; none beyond the width
    assert list(by_fidelity.divergence) == list(
        range(first, min(WIDTH - 1, first + FIDELITY_SEARCH_BITS) + 1))
    for frac, divergence in by_fidelity.divergence.items():
        assert divergence == pytest.approx(
            kl_by_hand(model, base.replace(stream_frac=frac,
                                           input_range=by_range.formats.input_range), images),
            rel=1e-9, abs=1e-12)
    chosen = by_fidelity.formats.stream_frac
    assert all(by_fidelity.divergence[chosen] <= d for d in by_fidelity.divergence.values())
    # only the binary point differs; the chosen format folds and proves
    assert by_fidelity.formats == by_range.formats.replace(stream_frac=chosen)
    quantize_model(model, None, by_fidelity.formats)


def test_a_candidate_that_could_overflow_is_skipped_and_ties_keep_the_coarser(
        model_and_images, monkeypatch):
    model, images = model_and_images
    first = calibrate(model, images, QuantFormats(stream_width=16)).formats.stream_frac

    def divergence(_model, formats, _pixels, _batch):
        if formats.stream_frac == first + 2:
            raise OverflowProofError("accumulator too wide")
        return 0.5 if formats.stream_frac == first else 0.25  # ties beyond the first

    monkeypatch.setattr(calibration, "logit_divergence", divergence)
    chosen = calibrate(model, images, QuantFormats(stream_width=16), rule="fidelity")
    assert list(chosen.divergence) == [first, first + 1, first + 3, first + 4]
    assert chosen.formats.stream_frac == first + 1


def test_an_unknown_rule_is_named(model_and_images):
    model, images = model_and_images
    with pytest.raises(ConfigError, match="calibration rule must be one of range, fidelity, "
                                          "got 'widest'"):
        calibrate(model, images, rule="widest")


def test_quantize_cli_calibrates_by_the_fidelity_rule(trained_checkpoint, tmp_path,
                                                       model_and_images):
    model, _ = model_and_images
    assert main(["quantize", str(trained_checkpoint), "-o", str(tmp_path), "--stream-width",
                 str(WIDTH), "--calibration-images", "48", "--calibration", "fidelity"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    expected = calibrate(model, model_and_images[1], QuantFormats(stream_width=WIDTH),
                         rule="fidelity")
    assert manifest["calibration"]["rule"] == "fidelity"
    assert manifest["formats"]["stream_frac"] == expected.formats.stream_frac
    assert manifest["calibration"]["divergence"] == pytest.approx(
        {str(f): d for f, d in expected.divergence.items()})


def test_quantize_cli_refuses_an_unknown_rule(trained_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", str(trained_checkpoint), "-o", str(tmp_path), "--calibration", "max"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'max'" in capsys.readouterr().err
