"""Plots of a run or sweep, drawn from its files (matplotlib, Agg backend)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CASE_COLORS = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green", "d": "tab:red"}
TERM_STYLES = {"loss": "-", "local": "--", "global": "-.", "prior": ":"}


def case_color(case: str) -> str:
    extra = ["tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    return CASE_COLORS.get(case, extra[hash(case) % len(extra)])


def loss_figure(loss: pd.DataFrame, title: str, color: str = "black"):
    """The total loss and each term against the step."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for term, style in TERM_STYLES.items():
        ax.plot(loss["step"], loss[term], style, color=color, label=term if term != "loss" else "total")
    ax.set(title=title, xlabel="training step", ylabel="loss (nats; lower = more MI)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def loss_curves_figure(losses: dict[str, pd.DataFrame]):
    """Every job's loss terms on one figure: one panel per term, one colour per case."""
    fig, axes = plt.subplots(1, 4, figsize=(16, 4), dpi=100)
    for ax, (term, _) in zip(axes, TERM_STYLES.items()):
        for label, loss in losses.items():
            case = label.split(" ")[0]
            ax.plot(loss["step"], loss[term], color=case_color(case), label=f"case {label}", alpha=0.85)
        ax.set(title="total loss" if term == "loss" else f"{term} term", xlabel="training step", ylabel="loss (nats)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def features_figure(image: np.ndarray, maps: np.ndarray, mi: np.ndarray, title: str, cols: int = 11):
    """The image beside its feature maps, each titled with its MI (nats), maps sorted by MI, one colour scale."""
    order = np.argsort(-mi)
    rows = math.ceil((len(maps) + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.45), dpi=100)
    axes = np.atleast_1d(axes).ravel()
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("image", fontsize=8)
    lo, hi = float(maps.min()), float(maps.max())
    for ax, c in zip(axes[1:], order):
        ax.imshow(maps[c], cmap="viridis", vmin=lo, vmax=hi)
        ax.set_title(f"#{c}: {mi[c]:.3f}", fontsize=7)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def winners_figure(winners: pd.DataFrame):
    """How often each case reaches the highest max-MI over all images."""
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    cases = winners["case"].astype(str)
    ax.bar([f"case {c}" for c in cases], winners["wins"], color=[case_color(c) for c in cases])
    for i, (w, s) in enumerate(zip(winners["wins"], winners["share"])):
        ax.annotate(f"{w} ({s:.0%})", (i, w), ha="center", va="bottom", fontsize=8)
    ax.set(title="images on which each case has the highest max MI", ylabel="images (count)")
    ax.margins(y=0.15)
    return fig
