"""`infomax validate`'s picture and table: the estimators' estimates against the known MI."""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402


def validation_figure(df: pd.DataFrame, estimators: list[tuple[str, str]]):
    """Estimated against true MI, one panel per sample size, one colour per (estimator, options) of
    `estimators` (mi.validate.ESTIMATORS' order), the diagonal."""
    sizes = sorted(df.n.unique(), reverse=True)
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.8), squeeze=False)
    top = float(np.nanmax(np.r_[df.truth, df["mean"]])) * 1.05
    for ax, n in zip(axes[0], sizes):
        ax.plot([0, top], [0, top], color="gray", lw=1, ls="--", label="estimate = truth")
        for i, (name, options) in enumerate(estimators):
            d = df[(df.n == n) & (df.estimator == name) & (df.options == options)]
            ax.errorbar(
                d.truth,
                d["mean"],
                yerr=d["std"],
                fmt="os^Dv"[i],
                ms=5,
                capsize=2,
                alpha=0.8,
                label=f"{name} {options}",
            )
        ax.set(
            xlabel="true MI (nats)",
            ylabel="estimated MI (nats)",
            title=f"n = {n} samples per pair",
            xlim=(0, top),
            ylim=(0, top),
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def print_validation(df: pd.DataFrame) -> None:
    """The table, with rich: a bias past 0.05 nats in red."""
    table = Table(title="MI estimators against known MI (nats)")
    for col in df.columns:
        table.add_column(
            col, justify="right" if col in ("n", "truth", "mean", "std", "bias") else "left"
        )
    for r in df.itertuples(index=False):
        flag = "bold red" if abs(r.bias) > 0.05 else ""
        table.add_row(
            r.estimator,
            r.options,
            r.task,
            str(r.n),
            f"{r.truth:.4f}",
            f"{r.mean:.4f}",
            f"{r.std:.4f}",
            f"[{flag}]{r.bias:+.4f}" if flag else f"{r.bias:+.4f}",
        )
    Console(width=None if sys.stdout.isatty() else 120).print(table)
