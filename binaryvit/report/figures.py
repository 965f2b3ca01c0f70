"""The report's PNGs, each one question answered at a size read without zooming (at most
about 1300 × 700 pixels for tiny-digits, fonts of 9–11 points at 100 dpi).

- ``resources_by_op_class.png``: which kinds of hardware take the logic, flip-flops, block
  RAM and DSPs, per FPGA family (stacked bars, from the resource model's estimate).
- ``cycles_per_block.png``: how many cycles each block of the network needs per image
  (its slowest step), estimated against measured when the simulation measured steps.
- ``accuracy_vs_stream_width.png``: what narrowing the stream format costs in accuracy.
- ``fit_per_board.png``: how full each board would be, against the fit margin.

Each function writes its PNG into ``folder`` atomically and returns the file name, or
``None`` when there is nothing to draw. Matplotlib runs on its Agg backend.
"""
from __future__ import annotations

from pathlib import Path

from binaryvit.atomic import atomic_file
from binaryvit.report.breakdown import CLASS_ORDER, BlockCycles, name_in_block
from binaryvit.report.stream_width_sweep import StreamWidthSweep

__all__ = ["DPI", "resources_by_class_png", "cycles_per_block_png", "stream_width_png",
           "fit_per_board_png", "FIT_CLIP"]

DPI = 100
FIT_CLIP = 150          # fit bars above this share of the device are cut and labelled
_STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9,
          "xtick.labelsize": 9, "ytick.labelsize": 9}
_RESOURCES = (("luts", "logic cells"), ("ffs", "flip-flops"), ("brams", "block RAMs"),
              ("dsps", "DSP blocks"))


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update(_STYLE)
    return plt


def _save(plt, figure, path: Path) -> str:
    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path.name


def _short(count: float) -> str:
    """1234 -> '1234', 101117 -> '101k', 1252810 -> '1.25M'."""
    if count >= 1e6:
        return f"{count / 1e6:.3g}M"
    if count >= 1e4:
        return f"{count / 1e3:.0f}k"
    return f"{count:.0f}"


def _class_colours() -> dict[str, tuple]:
    import matplotlib
    cmap = matplotlib.colormaps["tab20"]
    picks = (0, 2, 4, 6, 8, 10, 12, 16, 18, 14, 15, 7)
    return {name: cmap(picks[i % len(picks)]) for i, name in enumerate(CLASS_ORDER)}


def resources_by_class_png(by_class: dict[str, dict[str, dict[str, int]]],
                           family_labels: dict[str, str], folder: Path) -> str | None:
    """One panel per resource, one stacked bar per family (``family_labels``: family -> tick
    label naming its boards), one colour per op class; each bar's total above it."""
    families = [f for f in by_class if by_class[f]]
    if not families:
        return None
    plt = _pyplot()
    colours = _class_colours()
    present = [c for c in CLASS_ORDER if any(c in by_class[f] for f in families)]
    fig, axes = plt.subplots(1, len(_RESOURCES), figsize=(2.3 * len(_RESOURCES) + 0.4, 4.2))
    for ax, (field, title) in zip(axes, _RESOURCES):
        bottoms = [0.0] * len(families)
        for name in present:
            values = [by_class[f].get(name, {}).get(field, 0) for f in families]
            ax.bar(range(len(families)), values, 0.6, bottom=bottoms, color=colours[name],
                   label=name, edgecolor="white", linewidth=0.4)
            bottoms = [b + v for b, v in zip(bottoms, values)]
        top = max(bottoms) or 1
        for x, total in enumerate(bottoms):
            ax.text(x, total + 0.01 * top, _short(total), ha="center", va="bottom", fontsize=9)
        ax.set_ylim(0, 1.12 * top)
        ax.set_title(title)
        ax.set_xticks(range(len(families)), [family_labels.get(f, f) for f in families])
        ax.set_xlim(-0.6, len(families) - 0.4)
        ax.ticklabel_format(axis="y", style="plain")
        ax.yaxis.set_major_formatter(lambda v, _: _short(v))
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False, title="op class (top to bottom)")
    fig.suptitle("Resources by op class (resource model's estimate)", fontsize=12)
    fig.tight_layout()
    return _save(plt, fig, folder / "resources_by_op_class.png")


def cycles_per_block_png(blocks: list[BlockCycles], network_estimated: int | None,
                         network_measured: float | None, folder: Path) -> str | None:
    """Horizontal bars per block: estimated, ideal and (when any) measured cycles per image,
    the slowest step named under each block, the network's figures as vertical lines."""
    if not blocks:
        return None
    plt = _pyplot()
    has_measured = any(b.measured is not None for b in blocks)
    row = min(0.62, 12 / len(blocks))    # inches per block: two lines of 9-point labels
    fig, ax = plt.subplots(figsize=(8.5, 1.2 + row * len(blocks)))
    bars = [("estimated (cost model)", [b.estimated for b in blocks], "tab:blue"),
            ("ideal (work / lanes)", [b.ideal for b in blocks], "tab:gray")]
    if has_measured:
        bars.append(("measured (Verilator)", [b.measured or 0 for b in blocks], "tab:orange"))
    height = 0.8 / len(bars)
    for k, (label, values, colour) in enumerate(bars):
        offset = (k - (len(bars) - 1) / 2) * height
        ax.barh([i + offset for i in range(len(blocks))], values, height, label=label,
                color=colour)
    labels = []
    for b in blocks:
        step = name_in_block(b.slowest)
        ties = f" and {b.ties} other{'s' if b.ties > 1 else ''}" if b.ties else ""
        labels.append(f"{b.block}\nslowest: {step}{ties}")
    ax.set_yticks(range(len(blocks)), labels)
    ax.set_ylim(len(blocks) - 0.5, -0.5)
    if network_estimated:
        ax.axvline(network_estimated, color="tab:blue", linestyle="--", linewidth=1,
                   label=f"network, estimated: {network_estimated:,}")
    if network_measured:
        ax.axvline(network_measured, color="tab:orange", linestyle=":", linewidth=1.5,
                   label=f"network, measured: {network_measured:,.0f}")
    ax.set_xlabel("cycles per image (a block delivers one image per its slowest step's cycles)")
    ax.set_xlim(0, 1.08 * max(max(v) for _, v, _ in bars))
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("Cycles per image, per block")
    if not has_measured:
        ax.text(1.01, 0.0, "measured: sim.json has\nno per-layer cycles,\nso the estimate alone",
                transform=ax.transAxes, va="bottom", fontsize=9, color="tab:gray")
    fig.tight_layout()
    return _save(plt, fig, folder / "cycles_per_block.png")


def stream_width_png(sweep: StreamWidthSweep, classes: int | None, folder: Path) -> str | None:
    """The integer model's test top-1 at each stream width, the float model's as a line,
    the width OUT was quantized with marked."""
    done = [w for w in sweep.widths if w.int_top1 is not None]
    if not done:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [w.stream_width for w in done]
    ys = [100 * w.int_top1 for w in done]
    ax.plot(xs, ys, "o-", color="tab:blue", label="integer model")
    widest = max(xs)
    for w in done:   # below and right of each point, clear of the rising line on its left
        y = 100 * w.int_top1
        last = w.stream_width == widest
        ax.annotate(f"{y:.1f} %", (w.stream_width, y), textcoords="offset points",
                    xytext=((-6 if last else 6), 6 if y < 20 else -16),
                    ha="right" if last else "left", fontsize=9)
    mine = [w for w in done if w.stream_width == sweep.model_width]
    if mine:
        ax.plot([sweep.model_width], [100 * mine[0].int_top1], "*", markersize=16,
                color="tab:red", label=f"this model ({sweep.model_width}-bit stream)",
                zorder=3)
    if sweep.float_top1 is not None:
        ax.axhline(100 * sweep.float_top1, color="black", linestyle="--", linewidth=1,
                   label=f"float binary model: {100 * sweep.float_top1:.1f} %")
    if classes:
        ax.axhline(100 / classes, color="tab:gray", linestyle=":", linewidth=1,
                   label=f"chance: {100 / classes:.0f} %")
    failed = [w.stream_width for w in sweep.widths if w.int_top1 is None]
    if failed:
        ax.plot(failed, [0] * len(failed), "x", color="tab:red", markersize=9,
                label="cannot be quantized", clip_on=False)
    all_widths = sorted({w.stream_width for w in sweep.widths})
    ax.set_xticks(all_widths, [str(w) for w in all_widths])
    ax.set_ylim(0, 105)
    ax.set_xlabel("stream width (bits of every real-valued activation)")
    ax.set_ylabel(f"top-1 on the test split (%), {sweep.test_images} images")
    ax.set_title("Integer model accuracy vs stream width")
    ax.grid(axis="y", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="lower right", frameon=False)
    fig.tight_layout()
    return _save(plt, fig, folder / "accuracy_vs_stream_width.png")


def fit_per_board_png(panels: list[dict], margin: float, folder: Path) -> str | None:
    """One panel per board: each resource's estimate as a share of the device (bars, red
    where over its limit), nextpnr's count once built (diamonds), the logic margin and the
    device's size as lines. Shares above ``FIT_CLIP`` % are cut and labelled.

    ``panels``: ``{"title", "rows": [{"resource", "kind", "needed", "available", "limit",
    "built"}]}`` (``kind``: the resource in words) where ``limit`` is the largest count
    that fits and ``built`` is nextpnr's count or ``None``; ``needed`` may be ``None`` for a
    board built without an estimate.
    """
    panels = [p for p in panels if p["rows"]]
    if not panels:
        return None
    plt = _pyplot()
    # about 1.5 inches a bar, so nextpnr's cell names under the bars do not run together
    most = max(len(p["rows"]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.6, 1.5 * most) * len(panels), 4.4),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels):
        rows = panel["rows"]
        for x, row in enumerate(rows):
            built = (None if row["built"] is None
                     else min(100 * row["built"] / row["available"], FIT_CLIP))
            if built is not None:
                ax.plot(x, built, "D", color="black", markersize=7, zorder=3)
            if row["needed"] is not None:
                share = 100 * row["needed"] / row["available"]
                over = row["needed"] > row["limit"]
                cut = share > FIT_CLIP
                ax.bar(x, min(share, FIT_CLIP), 0.6, color="tab:red" if over else "tab:green",
                       hatch="//" if cut else None, edgecolor="white")
                label = f"{share:.0f} %\n{_short(row['needed'])}/{_short(row['available'])}"
                top = max(min(share, FIT_CLIP), built or 0)   # above the diamond too
                ax.text(x, top + 4, label, ha="center", va="bottom", fontsize=9)
            if row["limit"] < row["available"]:
                ax.hlines(100 * margin, x - 0.45, x + 0.45, colors="black", linestyles="--",
                          linewidth=1.2, zorder=4)
        ax.axhline(100, color="black", linewidth=0.8)
        ax.set_xticks(range(len(rows)), [f"{r['kind']}\n{r['resource']}" for r in rows],
                      fontsize=8.5)
        ax.set_ylim(0, FIT_CLIP + 30)
        ax.set_yticks(range(0, FIT_CLIP + 1, 25))
        ax.set_ylabel("% of the device")
        ax.set_title(panel["title"], fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    rows = [row for panel in panels for row in panel["rows"]]
    legend = [Patch(color="tab:green", label="estimate, fits"),
              Patch(color="tab:red", label="estimate, over its limit")]
    if any(r["needed"] is not None and r["needed"] > FIT_CLIP / 100 * r["available"]
           for r in rows):
        legend.append(Patch(facecolor="tab:red", hatch="//", edgecolor="white",
                            label=f"above {FIT_CLIP} % (cut)"))
    legend += [Line2D([], [], color="black", linestyle="--",
                     label=f"logic limit: {100 * margin:.0f} % margin"),
              Line2D([], [], color="black", linewidth=0.8, label="the whole device")]
    if any(row["built"] is not None for row in rows):
        legend.append(Line2D([], [], marker="D", color="black", linestyle="",
                             label="nextpnr (built)"))
    fig.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3,
               frameon=False)
    fig.suptitle("Fit per board", fontsize=12)
    fig.tight_layout()
    return _save(plt, fig, folder / "fit_per_board.png")
