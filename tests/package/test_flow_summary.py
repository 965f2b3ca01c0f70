"""`binaryvit flow`'s summary: integer and RTL accuracy on the same images, and says so."""
from types import SimpleNamespace

import torch

from binaryvit.cli import main
from binaryvit.commands import flow
from binaryvit.flow_summary import accuracy_lines, mismatching_logits


def sim_report(rtl: list[list[int]], ref: list[list[int]], labels: list[int]) -> dict:
    """A ``reports/sim.json`` as ``binaryvit sim`` writes it, for these logits."""
    images = []
    for k, (r, q, label) in enumerate(zip(rtl, ref, labels)):
        images.append({"index": k, "label": label, "rtl_logits": r, "ref_logits": q,
                       "match": r == q, "rtl_class": max(range(len(r)), key=r.__getitem__),
                       "ref_class": max(range(len(q)), key=q.__getitem__), "cycles": 2048})
    n = len(images)
    totals = {"images": n, "mismatches": sum(not i["match"] for i in images),
              "hw_top1": sum(i["rtl_class"] == i["label"] for i in images) / n,
              "ref_top1": sum(i["ref_class"] == i["label"] for i in images) / n,
              # the first and the last image never run in steady state
              "cycles_per_image_measured": 2048.0 if n > 2 else None,
              "steady_images": max(n - 2, 0), "cycles_per_image_estimated": 2048,
              "efficiency": 1.0 if n > 2 else None}
    return {"totals": totals, "images": images}


def test_integer_and_rtl_are_given_on_the_same_simulated_images():
    # 5 images, 3 classes; labels 0,1,2,0,1: both models right on 4 of 5 (80 %)
    logits = [[9, 1, 0], [0, 7, 1], [2, 0, 5], [1, 4, 0], [0, 3, 1]]
    report = sim_report(logits, [list(x) for x in logits], [0, 1, 2, 0, 1])
    lines = accuracy_lines(0.9722, 0.9694, 360, report)
    assert lines == [
        "accuracy on the test split (360 images): float binary 97.22 %, integer 96.94 %",
        "on the first 5 test images, simulated in Verilator: integer 80.00 %, RTL 80.00 %",
        "RTL vs integer reference on those 5 images: 0 mismatching logits of 15 (every logit "
        "compared; bit-exact means 0)"]


def test_mismatching_logits_are_counted_per_logit_and_per_image():
    ref = [[9, 1, 0], [0, 7, 1], [2, 0, 5], [1, 4, 0]]
    rtl = [[9, 1, 0], [0, 7, 2], [3, 0, 4], [1, 4, 0]]   # 1 + 2 logits differ, in 2 images
    report = sim_report(rtl, ref, [0, 1, 2, 0])
    assert mismatching_logits(report) == (3, 12)
    assert accuracy_lines(1.0, 1.0, 4, report)[1:] == [
        "on all 4 test images, simulated in Verilator: integer 75.00 %, RTL 75.00 %",
        "RTL vs integer reference on those 4 images: 3 mismatching logits of 12, in 2 images "
        "(every logit compared; bit-exact means 0)"]


def test_a_missing_logit_counts_as_a_mismatch():
    report = sim_report([[1, 2]], [[1, 2, 3]], [1])
    assert mismatching_logits(report) == (1, 3)


def test_the_flow_prints_the_split_then_the_simulated_images(tmp_path, monkeypatch, capsys):
    """The stages are replaced by stand-ins: this checks what the summary is made of."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pt").write_bytes(b"")
    data = SimpleNamespace(source="digits", test_images=torch.zeros(8, 1, 8, 8),
                           test_labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
    predictions = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])               # 7 of 8 right
    logits = [[5, 0, 0], [0, 0, 5]]                                      # right, wrong
    monkeypatch.setattr(flow, "config_and_data", lambda config, path: (None, data))
    monkeypatch.setattr(flow, "load_checkpoint",
                        lambda _: SimpleNamespace(metrics={"test_accuracy": 0.75}))
    monkeypatch.setattr(flow, "quantize_checkpoint",
                        lambda *a, **k: SimpleNamespace(intmodel=None))
    monkeypatch.setattr(flow, "int_predict", lambda model, images: predictions)
    monkeypatch.setattr(flow, "generate", lambda *a, **k: {"resources": {}})
    monkeypatch.setattr(flow, "simulate",
                        lambda *a, **k: sim_report(logits, logits, [0, 1]))
    assert main(["flow", "-o", str(out), "--images", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert ("accuracy on the test split (8 images): float binary 75.00 %, integer 87.50 %"
            in printed)
    assert ("on the first 2 test images, simulated in Verilator: integer 50.00 %, "
            "RTL 50.00 %") in printed
    assert "0 mismatching logits of 6" in printed
    assert ("cycles per image  2048 estimated (too few simulated images for a steady-state "
            "measurement)") in printed
