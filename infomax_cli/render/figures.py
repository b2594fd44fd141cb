"""Every picture of a run or sweep (matplotlib, Agg backend), drawn once, as PNG bytes.

The figure functions take tables and arrays and return a matplotlib figure; `png` renders one to
bytes and closes it. Which pictures a report shows, and which of a job's own pictures it reuses, is
chosen by `analysis.compare`; here they are only drawn.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..rundir import MI_ESTIMATE_COLUMNS, MI_TERMS, SETTING, TERMS, several_settings  # noqa: E402
from .density import violin_stats  # noqa: E402

# zlib level 3 instead of 6: feature-map mosaics encode in 2/3 of the time, 7% larger
PNG_OPTIONS = {"compress_level": 3}

CASE_COLORS = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green", "d": "tab:red"}
TERM_STYLES = dict(zip(("loss", *TERMS), ("-", "--", "-.", ":"), strict=True))


def case_color(case: str) -> str:
    extra = ["tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    # stable across processes
    return CASE_COLORS.get(case, extra[zlib.crc32(case.encode()) % len(extra)])


# loss.csv's objective MI estimates (nats, 0 at chance): column -> its term
MI_ESTIMATES = dict(zip(MI_ESTIMATE_COLUMNS, MI_TERMS, strict=True))


def loss_figure(loss: pd.DataFrame, title: str, color: str = "black"):
    """The total loss and each term against the step; beside it, when loss.csv has them, the objectives'
    own MI estimates (nats; 0 = the critic at chance)."""
    estimates = [c for c in MI_ESTIMATES if c in loss.columns]
    fig, axes = plt.subplots(
        1, 2 if estimates else 1, figsize=(12 if estimates else 7, 4), dpi=100, squeeze=False
    )
    ax = axes[0][0]
    for term, style in TERM_STYLES.items():
        ax.plot(
            loss["step"], loss[term], style, color=color, label=term if term != "loss" else "total"
        )
    ax.set(title=title, xlabel="training step", ylabel="loss (nats; lower = more MI)")
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.legend()
    ax.grid(alpha=0.3)
    if estimates:
        ax = axes[0][1]
        for col, style in zip(estimates, ("--", "-.")):
            ax.plot(loss["step"], loss[col], style, color=color, label=f"{MI_ESTIMATES[col]} term")
        ax.axhline(0, color="gray", lw=1, ls=":", label="chance")
        ax.set(
            title="the objectives' own MI estimates",
            xlabel="training step",
            ylabel="MI estimate (nats)",
        )
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def loss_curves_figure(losses: dict[str, pd.DataFrame]):
    """Every job's loss terms on one figure: one panel per term (and per objective MI estimate, when
    loss.csv has them), one colour per case."""
    panels = [
        *TERM_STYLES,
        *(c for c in MI_ESTIMATES if all(c in t.columns for t in losses.values())),
    ]
    rows = 2 if len(panels) > 4 else 1
    cols = math.ceil(len(panels) / rows)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4 * rows), dpi=100, squeeze=False)
    flat = axes.ravel()
    for ax, term in zip(flat, panels):
        for label, loss in losses.items():
            case = label.split(" ")[0]
            ax.plot(
                loss["step"], loss[term], color=case_color(case), label=f"case {label}", alpha=0.85
            )
        if term in MI_ESTIMATES:
            ax.axhline(0, color="gray", lw=1, ls=":")
            ax.set(
                title=f"{MI_ESTIMATES[term]} MI estimate (0 = chance)",
                xlabel="training step",
                ylabel="nats",
            )
        else:
            ax.set(
                title="total loss" if term == "loss" else f"{term} term",
                xlabel="training step",
                ylabel="loss (nats)",
            )
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    for ax in flat[len(panels) :]:
        ax.set_axis_off()
    flat[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def features_figure(
    image: np.ndarray, maps: np.ndarray, mi: np.ndarray, title: str, case: str, cols: int = 11
):
    """The image beside its feature maps, each captioned with its MI (nats), sorted by MI, one colour scale."""
    return example_grid_figure([(case, image, maps, mi)], cols=cols, title=title)


def winners_figure(winners: pd.DataFrame):
    """How often each case reaches the highest max-MI over all images: the share, with its 95% interval
    where winners.csv has one (a share of 0 still gets one), the count above each bar."""
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    cases = winners["case"].astype(str)
    share = 100 * winners["share"].to_numpy(dtype=float)
    err = None
    if {"ci_low", "ci_high"} <= set(winners.columns) and winners[
        ["ci_low", "ci_high"]
    ].notna().all().all():
        err = np.clip(
            [
                share - 100 * winners["ci_low"].to_numpy(dtype=float),
                100 * winners["ci_high"].to_numpy(dtype=float) - share,
            ],
            0,
            None,
        )
    ax.bar(
        [f"case {c}" for c in cases],
        share,
        yerr=err,
        capsize=4,
        color=[case_color(c) for c in cases],
    )
    for i, (w, s) in enumerate(zip(winners["wins"], share)):
        ax.annotate(
            f"{w} ({s:.0f}%)",
            (i, s),
            ha="left" if err is not None else "center",
            va="bottom",
            fontsize=8,
            xytext=(4 if err is not None else 0, 1),
            textcoords="offset points",
        )
    ax.set(
        title="images on which each case has the highest max MI"
        + ("\n(95% interval over seeds and image units)" if err is not None else ""),
        ylabel="share of images (%)",
    )
    ax.set_ylim(0, 105)
    return fig


def _bar_value(by: pd.DataFrame, metric: str) -> tuple[float, float, float] | None:
    """(mean, distance down to ci_low, up to ci_high) of a stats.csv row, or None when the metric is
    not there."""
    if metric not in by.index:
        return None
    r = by.loc[metric]
    m = float(r["mean"])
    down = m - r["ci_low"] if pd.notna(r["ci_low"]) else 0.0
    up = r["ci_high"] - m if pd.notna(r["ci_high"]) else 0.0
    return m, max(float(down), 0.0), max(float(up), 0.0)


def mi_bars_figure(stats: pd.DataFrame, shuffled: dict[tuple[str, str], float], over: str):
    """Mean and max MI per case with the statistics' own 95% intervals (stats.csv's rows: setting,
    case, metric, mean, ci_low, ci_high); the untrained control beside, the null (the maps against
    another image) and the shuffled-pixel bias (per (setting, case) in `shuffled`) as lines. `over`:
    what the intervals are over, for the titles. The setting is named only when there are several."""
    if SETTING not in stats.columns:
        stats = stats.assign(**{SETTING: ""})
    several = several_settings(stats)
    groups = [(k, g.set_index("metric")) for k, g in stats.groupby([SETTING, "case"])]
    names = [f"case {c}" + (f"\n{s}" if several else "") for (s, c), _ in groups]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.4 * len(groups) + 2), 4.2), dpi=100)
    # one panel per statistic; in each, one slot per (setting, case): the trained bar, the untrained
    # control's paler bar beside it when every case has one, and the floors drawn across the slot
    for ax, metric in zip(axes, ("mi_mean", "mi_max")):
        has_init = all(f"{metric}_init" in by.index for _, by in groups)
        w = 0.38 if has_init else 0.6
        for i, (key, by) in enumerate(groups):
            color, first = case_color(str(key[-1])), i == 0
            bars = [(metric, -w / 2 if has_init else 0.0, {}, "trained")]
            if has_init:
                pale = {"alpha": 0.35, "hatch": "//", "edgecolor": color}
                bars.append((f"{metric}_init", w / 2, pale, "untrained (control)"))
            for col, dx, style, label in bars:
                v = _bar_value(by, col)
                if v is not None:
                    m, lo, hi = v
                    ax.bar(
                        i + dx,
                        m,
                        w,
                        yerr=[[lo], [hi]],
                        capsize=4,
                        color=color,
                        **style,
                        label=label if first else None,
                    )
            # the floor for images (maps against other photographs), for both statistics
            null = _bar_value(by, "mi_null_mean" if metric == "mi_mean" else "mi_null_max")
            if null is not None:
                ax.hlines(
                    null[0],
                    i - 0.45,
                    i + 0.45,
                    color="black",
                    linestyles="--",
                    lw=1.5,
                    label="null: another image" if first else None,
                )
            # the estimator's bias (shuffled pixels) is per map, so only the mean panel shows it
            if metric == "mi_mean" and key in shuffled:
                ax.hlines(
                    shuffled[key],
                    i - 0.45,
                    i + 0.45,
                    color="gray",
                    linestyles=":",
                    lw=1.5,
                    label="shuffled pixels (estimator bias)" if first else None,
                )
        what = "mean" if metric == "mi_mean" else "max"
        ax.set_xticks(range(len(groups)), names)
        title = f"{what} MI over the maps of an image\n(95% interval over {over})"
        ax.set(title=title, ylabel=f"{what} MI (nats)")
        ax.grid(axis="y", alpha=0.3)
    # one legend for both panels, below them (each label was given once, on the first slot)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    handles = axes[0].get_legend_handles_labels()
    fig.legend(*handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    return fig


def mi_violin_figure(per_map: dict[str, pd.DataFrame]):
    """The distribution of per-map MI (every image × map) per case; the untrained maps' in grey beside."""
    cases = list(per_map)
    has_init = all("mi_init" in t for t in per_map.values())
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(cases) + 2), 4), dpi=100)
    off = 0.2 if has_init else 0.0
    for i, case in enumerate(cases):
        for col, dx, alpha in (("mi", -off, 0.7), *((("mi_init", off, 0.25),) if has_init else ())):
            v = per_map[case][col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if len(v) == 0:
                continue
            parts = ax.violin(
                [violin_stats(v)],
                positions=[i + dx],
                widths=0.36 if has_init else 0.7,
                showmedians=True,
            )
            for body in parts["bodies"]:
                body.set(facecolor=case_color(case), edgecolor=case_color(case), alpha=alpha)
            for key in ("cbars", "cmins", "cmaxes", "cmedians"):
                parts[key].set(color=case_color(case) if col == "mi" else "gray", lw=1)
    ax.set_xticks(range(len(cases)), [f"case {c}" for c in cases])
    title = "MI of every feature map with its image" + (
        " (left: trained, right, pale: untrained)" if has_init else ""
    )
    ax.set(title=title, ylabel="MI per map (nats)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def example_grid_figure(
    rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    cols: int = 16,
    title: str | None = None,
):
    """One example image: for each (case, image, maps, mi) a block of the image and its maps sorted by MI,
    each captioned with its MI (nats), with one colour scale per case. The maps of a case are tiled into one
    mosaic drawn by one imshow (fast: a few axes, not one per map), and everything is placed in inches
    inside the figure, so it is saved as laid out (no second drawing pass to find a tight box)."""
    # cases may differ in size (align=crop)
    h, w = (max(r[2].shape[i] for r in rows) for i in (-2, -1))
    # pixels between tiles, and above each tile for its caption
    gap, cap = max(1, w // 12), max(4, h // 4)
    tw, th = w + gap, h + gap + cap
    grid_rows = math.ceil(max(len(r[2]) for r in rows) / cols)
    px = 0.9 / tw  # inches per pixel: a tile is 0.9 in wide
    block, mosaic_h = grid_rows * th * px + 0.4, grid_rows * th * px
    title_h = 0.4 if title else 0.0
    fig_w, fig_h = (cols + 1) * tw * px + 0.9, len(rows) * block + title_h
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=80)
    fig.infomax_exact_layout = True  # read by the savers: no bbox_inches="tight"
    if title:
        fig.text(0.5, 1 - 0.08 / fig_h, title, ha="center", va="top", fontsize=12)

    def box(x, y, width, height):  # inches -> figure fraction
        return (x / fig_w, y / fig_h, width / fig_w, height / fig_h)

    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    for k, (case, image, maps, mi) in enumerate(rows):
        y0 = fig_h - title_h - (k + 1) * block
        fig.text(
            0.1 / fig_w,
            (y0 + block - 0.05) / fig_h,
            f"case {case}: mean MI {mi.mean():.3f} nats, max MI {mi.max():.3f} nats (maps sorted by MI)",
            va="top",
            fontsize=12,
            fontweight="bold",
            color=case_color(case),
        )
        ax = fig.add_axes(box(0.1, y0 + mosaic_h - (cap + h) * px, w * px, h * px))
        ax.imshow(np.squeeze(image), cmap="gray")
        ax.set_title("image", fontsize=8, pad=2)
        ax.set_axis_off()
        order = np.argsort(-mi, kind="stable")
        mosaic = np.full((grid_rows * th, cols * tw), np.nan)
        ax = fig.add_axes(box(0.1 + tw * px, y0, cols * tw * px, mosaic_h))
        for slot, c in enumerate(order):
            y, x = (slot // cols) * th + cap, (slot % cols) * tw
            mosaic[y : y + maps.shape[-2], x : x + maps.shape[-1]] = maps[c]
            ax.text(x + w / 2, y - 1, f"#{c}: {mi[c]:.3f}", ha="center", va="bottom", fontsize=8)
        im = ax.imshow(
            mosaic,
            cmap=cmap,
            vmin=float(np.nanmin(maps)),
            vmax=float(np.nanmax(maps)),
            interpolation="nearest",
        )
        ax.set_axis_off()
        cax = fig.add_axes(box(0.1 + (cols + 1) * tw * px + 0.05, y0 + 0.1, 0.12, mosaic_h - 0.2))
        fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)
    return fig


def infoplane_figure(plane: pd.DataFrame, title: str):
    """Mean MI between the probe images and each layer's maps, against the training step."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for layer, rows in plane.groupby("layer"):
        ax.plot(rows["step"], rows["mi"], marker="o", ms=3, label=f"layer {layer}")
    ax.set(title=title, xlabel="training step", ylabel="mean MI with the image (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


# ------------------------------------------------------------------------------ to bytes, once each
def png(fig) -> bytes:
    """The figure as PNG bytes (deterministic: no Software tag), and close it. A figure laid out
    exactly (`infomax_exact_layout`) is saved as it is; others are cropped to their content."""
    exact = getattr(fig, "infomax_exact_layout", False)
    buf = io.BytesIO()
    try:
        fig.savefig(
            buf,
            format="png",
            dpi=fig.dpi,
            bbox_inches=None if exact else "tight",
            metadata={"Software": None},
            pil_kwargs=PNG_OPTIONS,
        )
    finally:
        plt.close(fig)
    return buf.getvalue()


@dataclass
class Pictures:
    """What a report shows, as PNG bytes: the loss, MI per case, the per-map distribution, the winner
    shares (a sweep of several cases), per example image its pictures as (caption, bytes), and a
    sweep's verdict."""

    loss: bytes
    mi_bars: bytes
    violin: bytes
    winners: bytes | None = None
    examples: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    claims: bytes | None = None  # a sweep's verdict (claims.png)
