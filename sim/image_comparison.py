"""What a simulation report says about its images: RTL against the integer reference.

Both simulators (the dataflow network's, ``sim/network_sim.py``, and the engine's,
``sim/engine_report.py``) record one entry per image with ``match`` (every logit equal),
``rtl_class``, ``ref_class`` and ``label``; this is the one place their totals are counted.
"""
from __future__ import annotations


def comparison_totals(per_image: list[dict]) -> dict:
    """``images``, ``mismatches`` (images with any logit unequal), ``class_mismatches``,
    and the RTL's and the reference's top-1 over ``per_image`` (at least one entry)."""
    count = len(per_image)
    return {
        "images": count,
        "mismatches": sum(not p["match"] for p in per_image),
        "class_mismatches": sum(p["rtl_class"] != p["ref_class"] for p in per_image),
        "hw_top1": sum(p["rtl_class"] == p["label"] for p in per_image) / count,
        "ref_top1": sum(p["ref_class"] == p["label"] for p in per_image) / count,
    }
