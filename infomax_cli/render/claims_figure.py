"""claims.png: the verdict at a glance, one row per claim, every pre-specified pair's estimate and
interval on the claim's own axis (figures.png renders it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..rundir import SETTING, several_settings
from .figures import case_color, plt

STATUS_COLORS = {
    "holds": "tab:green",
    "fails": "tab:red",
    "equivalent": "tab:blue",
    "not established": "tab:gray",
}


CAP = 20  # the axis reaches at most this many margins each way


def claims_span(est, low, high, margin: float) -> float:
    """The half-width of a claim's axis: every estimate and limit (at least three margins), up to CAP
    margins; an estimate or limit beyond that is drawn at the edge with its value (an early look's
    intervals can be very wide)."""
    values = np.abs(np.concatenate([np.asarray(x, dtype=float) for x in (est, low, high)]))
    reach = np.nanmax(np.where(np.isfinite(values), values, np.nan), initial=0.0)
    if not np.isfinite(margin):
        return float(max(1.1 * reach, 1e-3))
    return float(min(max(1.1 * reach, 3 * margin), CAP * margin))


def _draw_pair(ax, y, e, lo, hi, span, color, scale_unit):
    """One pair's estimate and interval, cut at the axis' edges: a cut limit ends in an arrow with its
    value, an estimate beyond the edge is drawn at the edge with its value."""
    fmt = "{:+.1f}" if scale_unit == "points" else "{:+.3f}"
    edge = 0.985 * span
    if np.isfinite(lo) and np.isfinite(hi):
        a, b = max(lo, -edge), min(hi, edge)
        ax.plot([a, b], [y, y], color=color, lw=1.5)
        for limit, end, side in ((lo, a, -1), (hi, b, 1)):
            if abs(limit) > edge:
                ax.plot(end, y, marker="<" if side < 0 else ">", color=color, ms=6)
                ax.text(
                    end,
                    y + 0.22,
                    fmt.format(limit),
                    ha="left" if side < 0 else "right",
                    va="bottom",
                    fontsize=6,
                    color=color,
                )
            else:
                ax.plot([end, end], [y - 0.12, y + 0.12], color=color, lw=1.2)
    if not np.isfinite(e):
        return
    if abs(e) > edge:
        ax.plot(np.sign(e) * edge, y, marker="D", color=color, ms=5, mfc="white")
        ax.text(
            np.sign(e) * edge,
            y - 0.25,
            f"estimate {fmt.format(e)}",
            ha="right" if e > 0 else "left",
            va="top",
            fontsize=6,
            color=color,
        )
    else:
        ax.plot(e, y, "o", color=color, ms=4)


def claims_figure(claims: pd.DataFrame, pairs: pd.DataFrame, share_claims=frozenset()):
    """The verdict at a glance (claims.png): one row per claim (and setting), every pre-specified
    pair c - o as its estimate with its interval (its lower limit the holds test's, its upper one the
    fails test's) on the claim's own axis, labelled with its decision (undecided with one seed), the
    +-margin band shaded, 0 marked, and the status written beside. Shares in points. Limits and
    estimates beyond the axis are drawn at its edge with their values."""
    if SETTING not in claims.columns:
        claims, pairs = claims.assign(**{SETTING: ""}), pairs.assign(**{SETTING: ""})
    several = several_settings(claims)
    rows = list(claims.itertuples(index=False))
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(9, 0.35 + 1.15 * len(rows)), dpi=100, squeeze=False
    )
    for ax, r in zip(axes[:, 0], rows):
        scale = 100.0 if r.claim in share_claims else 1.0
        unit = "points" if r.claim in share_claims else "nats"
        mine = pairs[(pairs[SETTING] == getattr(r, SETTING)) & (pairs["claim"] == r.claim)]
        margin = float(r.margin) * scale if pd.notna(r.margin) else np.nan
        if np.isfinite(margin):
            ax.axvspan(-margin, margin, color="tab:blue", alpha=0.12, lw=0)
        ax.axvline(0, color="black", lw=0.8)
        y = np.arange(len(mine))[::-1]
        est, low, high = (
            mine[k].to_numpy(dtype=float) * scale for k in ("estimate", "ci_low", "ci_high")
        )
        span = claims_span(est, low, high, margin)
        for yi, e, lo, hi, o in zip(y, est, low, high, mine["other_case"]):
            _draw_pair(ax, yi, e, lo, hi, span, case_color(str(o)), unit)
        labels = [
            f"{r.study_case} − {o}: {d}" for o, d in zip(mine["other_case"], mine["decision"])
        ]
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, max(len(mine), 1) - 0.3)
        ax.set_xlim(-span, span)
        name = f"{r.claim}" + (f" [{getattr(r, SETTING)}]" if several else "")
        seeds = f"{r.n_seeds} seed" + ("s" if r.n_seeds != 1 else "")
        ax.set_title(f"{name} ({unit}, {seeds})", fontsize=9, loc="left", pad=2)
        ax.text(
            1.01,
            0.5,
            str(r.status),
            transform=ax.transAxes,
            va="center",
            fontsize=10,
            fontweight="bold",
            color=STATUS_COLORS.get(str(r.status), "black"),
        )
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        "the study's claims: case c minus each other case (95% intervals by the sweep's plan; "
        "shaded: ±margin)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    return fig
