"""The accuracy lines of `binaryvit flow`'s summary, which compare like with like.

The integer reference runs on the whole test split in a second; Verilator simulates only the
first ``--images`` of it. Printing "integer 96.94 % (360 images)" beside "RTL 80.00 % (20
images)" reads as hardware 17 points worse when the RTL equals the reference on every logit
it ran. So the summary gives the split's accuracy (float and integer), then the integer
reference and the RTL on the *same* simulated images, then how many of those images' logits
differ between the two (bit-exact means 0).
"""
from __future__ import annotations

__all__ = ["mismatching_logits", "accuracy_lines"]


def mismatching_logits(sim_report: dict) -> tuple[int, int]:
    """``(differing, compared)``: logits where the RTL's integer differs from the reference's,
    over every simulated image of ``sim_report`` (``reports/sim.json``'s content)."""
    differing = compared = 0
    for image in sim_report["images"]:
        rtl, ref = image["rtl_logits"], image["ref_logits"]
        compared += max(len(rtl), len(ref))
        differing += sum(a != b for a, b in zip(rtl, ref)) + abs(len(rtl) - len(ref))
    return differing, compared


def accuracy_lines(float_top1: float, int_top1: float, test_images: int,
                   sim_report: dict) -> list[str]:
    """The summary's accuracy lines.

    ``float_top1`` and ``int_top1`` are top-1 on the whole test split of ``test_images``
    images; ``sim_report`` is what ``binaryvit sim`` wrote (its totals' ``ref_top1`` and
    ``hw_top1`` are the integer reference and the RTL on the simulated images).
    """
    totals = sim_report["totals"]
    simulated = totals["images"]
    differing, compared = mismatching_logits(sim_report)
    images_differing = totals["mismatches"]
    which = f"all {simulated}" if simulated == test_images else f"the first {simulated}"
    where = (f", in {images_differing} image{'s' if images_differing != 1 else ''}"
             if differing else "")
    return [
        f"accuracy on the test split ({test_images} images): "
        f"float binary {100 * float_top1:.2f} %, integer {100 * int_top1:.2f} %",
        f"on {which} test images, simulated in Verilator: "
        f"integer {100 * totals['ref_top1']:.2f} %, RTL {100 * totals['hw_top1']:.2f} %",
        f"RTL vs integer reference on those {simulated} images: {differing} mismatching "
        f"logits of {compared}{where} (every logit compared; bit-exact means 0)",
    ]
