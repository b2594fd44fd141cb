"""Plots of a run or sweep, drawn from its files (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import html
import io
import math
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import rundir  # noqa: E402
from .errors import ConfigError  # noqa: E402

EXAMPLES_NPZ = (
    "examples.npz"  # features/examples.npz: the example images' feature maps, for the report
)

CASE_COLORS = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green", "d": "tab:red"}
TERM_STYLES = {"loss": "-", "local": "--", "global": "-.", "prior": ":"}


def case_color(case: str) -> str:
    extra = ["tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan"]
    return CASE_COLORS.get(
        case, extra[zlib.crc32(case.encode()) % len(extra)]
    )  # stable across processes


MI_ESTIMATES = {
    "local_mi": "local",
    "global_mi": "global",
}  # loss.csv's objective MI estimates (nats, 0 at chance)


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


def save_example_maps(
    run_dir: Path, examples: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> Path:
    """Write features/examples.npz: for each example name (as its features/NAME.png), the image (S, S),
    its maps (C, S, S) and their MI (C,) in nats. Maps are kept as float16 (pictures, not measurements)."""
    arrays = {}
    for name, (image, maps, mi) in examples.items():
        arrays[f"{name}.image"] = np.asarray(image, dtype=np.float16)
        arrays[f"{name}.maps"] = np.asarray(maps, dtype=np.float16)
        arrays[f"{name}.mi"] = np.asarray(mi, dtype=np.float64)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez_compressed(f, **arrays)

    return rundir.atomic_write(Path(run_dir) / rundir.FEATURES / EXAMPLES_NPZ, write)


def load_example_maps(run_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The example maps save_example_maps wrote (name -> (image, maps, mi), float32), {} when there are none."""
    path = Path(run_dir) / rundir.FEATURES / EXAMPLES_NPZ
    if not path.is_file():
        return {}
    with np.load(path) as z:
        names = sorted({k.rsplit(".", 1)[0] for k in z.files})
        return {
            n: (z[f"{n}.image"].astype(np.float32), z[f"{n}.maps"].astype(np.float32), z[f"{n}.mi"])
            for n in names
        }


# ---------------------------------------------------------------- the report page: figures drawn from the files


def ci95(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for fewer than two values)."""
    from scipy.special import (
        stdtrit,
    )  # Student t quantile (scipy.stats would add a second to every import)

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (float(x.mean()) if len(x) else math.nan), 0.0
    return float(x.mean()), float(stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / math.sqrt(len(x)))


KDE_POINTS = (
    20_000  # a violin's density is estimated on at most this many of its values (evenly spaced)
)


def _violin_stats(v: np.ndarray) -> dict:
    """matplotlib's violin statistics of v: median and extremes from every value, the Gaussian KDE from
    an even subsample (the full one costs seconds on 5000 x 32 maps) with the bandwidth Scott's rule gives
    all the values."""
    from matplotlib import cbook, mlab

    def density(x, coords):
        sub = x[:: max(1, len(x) // KDE_POINTS)]
        if np.ptp(sub) == 0:  # one value (coords are all that value): a flat line at full width
            return np.ones_like(coords)
        return mlab.GaussianKDE(sub, len(x) ** -0.2).evaluate(coords)

    return cbook.violin_stats(v, density)[0]


def mi_bars_figure(per_image: dict[str, pd.DataFrame]):
    """Mean and max MI per case, mean ± 95% interval over images; the untrained control, the null (the maps
    against another image) and the shuffled-pixel bias beside."""
    cases = list(per_image)
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 2.4 * len(cases) + 2), 4.2), dpi=100)
    for ax, metric in zip(axes, ("mi_mean", "mi_max")):
        has_init = all(f"{metric}_init" in t for t in per_image.values())
        w = 0.38 if has_init else 0.6
        for i, case in enumerate(cases):
            t, color = per_image[case], case_color(case)
            m, h = ci95(t[metric])
            ax.bar(
                i - (w / 2 if has_init else 0),
                m,
                w,
                yerr=h,
                capsize=4,
                color=color,
                label="trained" if i == 0 else None,
            )
            if has_init:
                m0, h0 = ci95(t[f"{metric}_init"])
                ax.bar(
                    i + w / 2,
                    m0,
                    w,
                    yerr=h0,
                    capsize=4,
                    color=color,
                    alpha=0.35,
                    hatch="//",
                    edgecolor=color,
                    label="untrained (control)" if i == 0 else None,
                )
            null = "mi_null_mean" if metric == "mi_mean" else "mi_null_max"
            if null in t:
                ax.hlines(
                    t[null].mean(),
                    i - 0.45,
                    i + 0.45,
                    color="black",
                    linestyles="--",
                    lw=1.5,
                    label="null: another image" if i == 0 else None,
                )
            if metric == "mi_mean" and "mi_shuffled_mean" in t:
                ax.hlines(
                    t["mi_shuffled_mean"].mean(),
                    i - 0.45,
                    i + 0.45,
                    color="gray",
                    linestyles=":",
                    lw=1.5,
                    label="shuffled pixels (estimator bias)" if i == 0 else None,
                )
        what = "mean" if metric == "mi_mean" else "max"
        ax.set_xticks(range(len(cases)), [f"case {c}" for c in cases])
        ax.set(
            title=f"{what} MI over the maps of an image\n(± 95% CI over images)",
            ylabel=f"{what} MI (nats)",
        )
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(
        *axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9, frameon=False
    )
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
                [_violin_stats(v)],
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
    h, w = (
        max(r[2].shape[i] for r in rows) for i in (-2, -1)
    )  # cases may differ in size (align=crop)
    gap, cap = (
        max(1, w // 12),
        max(4, h // 4),
    )  # pixels between tiles, and above each tile for its caption
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


# ---------------------------------------------------------------- the report page: build_report


def _png_uri(fig) -> str:
    """The figure as a PNG data URI (deterministic bytes: no Software tag), and close it."""
    buf = io.BytesIO()
    try:
        fig.savefig(
            buf,
            format="png",
            dpi=fig.dpi,
            bbox_inches=rundir.bbox(fig),
            metadata={"Software": None},
            pil_kwargs=rundir.PNG_OPTIONS,
        )
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _file_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _table(header: list[str], rows: list[list], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return " → ".join(map(str, v))
    return "—" if v is None else str(v)


def _jobs_of(path: Path, summary: dict | None = None) -> tuple[str, list, list[str]]:
    """('run' | 'sweep', finished jobs, unfinished job names) of a directory, or a ConfigError saying what
    it is not. `summary`: a run's summary before it is written (the job writes it after the report)."""
    from .compare import Job, find_jobs, missing_jobs

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(
            f"{path} is not a directory: give a run directory (infomax run) or a sweep directory (infomax run -m)."
        )
    summary = summary if summary is not None else rundir.read_summary(path)
    if summary is not None:
        return "run", [Job(path, [], summary)], []
    if (path / ".hydra").is_dir() or (path / rundir.CHECKPOINT).exists():
        raise ConfigError(
            f"{path} is a run directory whose job has not finished (no summary.json): rerun it, then report."
        )
    jobs = find_jobs(path)
    if not jobs:
        raise ConfigError(
            f"{path} is not a run or sweep directory: it holds no summary.json and no job directories."
        )
    finished = [j for j in jobs if j.summary is not None]
    if not finished:
        raise ConfigError(
            f"{path} is a sweep directory with no finished job (no */summary.json): nothing to report."
        )
    finished.sort(
        key=lambda j: (str(j.summary["case"]), int(j.summary.get("seed", 0)), j.path.name)
    )
    left_out = [f"{j.path.name} (no summary.json)" for j in jobs if j.summary is None]
    return "sweep", finished, left_out + [f"{m} (never started)" for m in missing_jobs(path, jobs)]


SETTINGS = [
    "dataset",
    "split",
    "n_images",
    "n_train_images",
    "holdout",
    "steps",
    "batch_size",
    "lr",
    "bins",
    "align",
    "estimator",
    "objective",
    "seed",
    "device",
    "versions",
    "git_commit",
]
JOB_COLUMNS = {
    "mi_mean": "mean MI",
    "mi_max": "max MI",
    "mi_mean_above_null": "mean MI above null",
    "mi_max_above_null": "max MI above null",
    "mi_mean_init": "mean MI untrained",
    "mi_max_init": "max MI untrained",
    "mi_null_mean": "null mean MI",
    "mi_shuffled_mean": "shuffled mean MI",
    "final_local_mi": "final local MI estimate",
    "final_global_mi": "final global MI estimate",
    "final_loss": "final loss",
    "train_seconds": "train (s)",
    "measure_seconds": "measure (s)",
}

CSS = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1500px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%;height:auto;display:block}table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.note{color:#555;font-size:.9em}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;margin-right:.3em}
.kv td,.jobs td:nth-child(2){text-align:left}pre{background:#f7f7f7;padding:.6em;font-size:.85em;overflow:auto}"""


def _claims_section(path: Path, jobs: list) -> list[str]:
    """The sweep's claims (claims.csv, or computed from the jobs when the sweep has none): a table and one
    plain sentence per claim; with one seed, the line saying what establishes them."""
    from . import claims

    file = path / rundir.CLAIMS
    try:
        table = (
            pd.read_csv(file, dtype={"setting": str, "best_case": str})
            if file.is_file()
            else claims.claims_table(claims.read_sweep(jobs))
        )
    except (
        ValueError,
        KeyError,
        OSError,
    ) as e:  # a sweep whose files cannot support the claims: say so, keep the page
        return [
            "<h2>Does the study hold?</h2>",
            f'<p class="note">The claims could not be computed: {html.escape(str(e))}</p>',
        ]
    several = "setting" in table.columns
    rows = [
        [
            *([r["setting"]] if several else []),
            r["claim"],
            r["best_case"] if pd.notna(r["best_case"]) else "—",
            claims.interval_text(r),
            int(r["n_seeds"]),
            int(r["n_units"]),
            r["status"],
        ]
        for _, r in table.iterrows()
    ]
    header = [
        *(["setting"] if several else []),
        "claim",
        "best case",
        "c − strongest other [95% interval]",
        "seeds",
        "image units",
        "status",
    ]
    out = [
        "<h2>Does the study hold?</h2>",
        '<p class="note">Each claim of the study (case c keeps the most MI), tested with its own statistic; the seed '
        "(one training run) is the replicate unit, images cut from one photograph are one unit. Estimates: case c minus "
        "the strongest other case (nats; winner share in percentage points); holds / fails need two or more seeds. "
        "Definitions: claims.csv and the README.</p>",
        _table(header, rows, "claims"),
        "<ul>",
    ]
    for line in claims.lines(table):
        out.append(f"<li>{html.escape(line)}</li>")
    out.append("</ul>")
    return out


def _stats_table(st: pd.DataFrame, per_image: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """The MI-per-case table from stats.csv's own intervals (and the null's plain mean from the jobs)."""
    names = {
        "mi_mean": "mean MI",
        "mi_max": "max MI",
        "mi_mean_above_null": "mean MI above null",
        "mi_max_above_null": "max MI above null",
        "mi_mean_init": "mean MI untrained",
        "mi_max_init": "max MI untrained",
        "mi_null_mean": "null mean MI",
    }
    several = "setting" in st.columns
    keys = ["setting", "case"] if several else ["case"]
    rows = []
    for key, g in st.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        case = str(key[-1])
        by = g.set_index("metric")
        cells = [
            *([key[0]] if several else []),
            f"case {case}",
            int(by["n_seeds"].max()),
            int(by["n_units"].max()) if "n_units" in by else "—",
        ]
        for metric in names:
            r = by.loc[metric] if metric in by.index else None
            cells.append(
                "—" if r is None else f"{r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]"
            )
        rows.append(cells)
    table = _table(
        [*(["setting"] if several else []), "case", "seeds", "image units", *names.values()], rows
    )
    note = (
        "nats: mean over seeds and independent image units with its 95% interval (stats.csv; with one seed, over "
        "image units only); above null: minus the same statistic of the maps against another image."
    )
    return table, note


def build_report(path: Path, summary: dict | None = None) -> Path:
    """Write DIR/report.html for a run or sweep directory from its files alone (and a run's `summary`
    when it is not written yet); return its path."""
    path = Path(path)
    kind, jobs, unfinished = _jobs_of(path, summary)
    cases = list(dict.fromkeys(str(j.summary["case"]) for j in jobs))
    several = len(jobs) > len(cases)

    def label(j) -> str:
        return str(j.summary["case"]) + (f" {j.path.name}" if several else "")

    per_image = {
        c: pd.concat(
            [pd.read_csv(j.path / rundir.MI_PER_IMAGE) for j in jobs if j.summary["case"] == c]
        )
        for c in cases
    }
    per_map = {
        c: pd.concat(
            [pd.read_csv(j.path / rundir.MI_PER_MAP) for j in jobs if j.summary["case"] == c]
        )
        for c in cases
    }
    first = {
        c: next(j for j in jobs if j.summary["case"] == c) for c in cases
    }  # whose feature maps are shown
    s0 = jobs[0].summary
    out = []
    heading = (
        f"sweep {path.resolve().name}"
        if kind == "sweep"
        else f"run {path.resolve().name} (case {s0['case']})"
    )
    out.append(f"<h1>infomax report: {html.escape(heading)}</h1>")
    if kind == "sweep":
        out.extend(_claims_section(path, jobs))
    legend = " ".join(
        f'<span><span class="swatch" style="background:{matplotlib.colors.to_hex(case_color(c))}"></span>case {c}</span>'
        for c in cases
    )
    out.append(
        f"<p>Deep InfoMax encoders trained on {html.escape(str(s0.get('dataset')))} ({s0.get('n_images')} images, "
        f"{s0.get('steps')} steps); MI between each image and each of its feature maps, in nats. "
        f"{len(jobs)} finished job(s): {legend}</p>"
    )
    if unfinished:
        out.append(
            f'<p class="note">Left out, not finished: {html.escape("; ".join(unfinished))}.</p>'
        )

    # settings: what all jobs share once, then one row per job
    common = [[k, s0.get(k)] for k in SETTINGS if all(j.summary.get(k) == s0.get(k) for j in jobs)]
    varying = [k for k in SETTINGS if k not in {r[0] for r in common}]
    out.append("<h2>Settings and timings</h2>")
    out.append(_table(["setting", "value"], common, "kv"))
    rows = [
        [
            f"case {j.summary['case']}",
            j.path.name.replace(",", ",\u200b"),
            "→".join(map(str, j.summary.get("layer_sizes") or [])),
            *[j.summary.get(k) for k in varying],
            *[j.summary.get(k) for k in JOB_COLUMNS],
        ]
        for j in jobs
    ]
    out.append(
        _table(["case", "directory", "map sizes", *varying, *JOB_COLUMNS.values()], rows, "jobs")
    )
    out.append(
        '<p class="note">MI in nats: the mean over images of each image\'s mean / max MI over its maps; '
        "above null: minus the same statistic of the maps against another image (null, the floor for images); untrained: the same encoder "
        "before training (control); shuffled: against the image's pixels shuffled (the estimator's bias); MI estimates: the objectives' own, 0 at chance.</p>"
    )
    cfg_file = jobs[0].path / ".hydra" / "config.yaml"
    if cfg_file.is_file():
        out.append(
            f"<details><summary>configuration ({html.escape(jobs[0].path.name)}/.hydra/config.yaml)</summary>"
            f"<pre>{html.escape(cfg_file.read_text())}</pre></details>"
        )

    # loss
    out.append("<h2>Training loss</h2>")
    losses = {label(j): pd.read_csv(j.path / rundir.LOSS_CSV) for j in jobs}
    if kind == "run" and (path / rundir.LOSS_PNG).is_file():
        uri = _file_uri(path / rundir.LOSS_PNG)  # the job drew it from the same file
    elif kind == "run":
        uri = _png_uri(
            loss_figure(
                losses[label(jobs[0])],
                f"case {s0['case']}: training loss",
                case_color(str(s0["case"])),
            )
        )
    else:
        uri = _png_uri(loss_curves_figure(losses))
    out.append(_img(uri, "training loss: total, local, global and prior terms per step"))

    # MI per case
    out.append("<h2>Mutual information per case</h2>")
    stats_file = path / rundir.STATS
    if (
        kind == "sweep" and stats_file.is_file()
    ):  # the sweep's own intervals (seeds and image units), not a second one
        table, note = _stats_table(
            pd.read_csv(stats_file, dtype={"case": str, "setting": str}), per_image
        )
    else:
        rows = []
        for c, t in per_image.items():
            cells = [f"case {c}", len(t)]
            for col in (
                "mi_mean",
                "mi_max",
                "mi_mean_above_null",
                "mi_max_above_null",
                "mi_mean_init",
                "mi_max_init",
                "mi_null_mean",
            ):
                m, h = ci95(t[col]) if col in t else (None, None)
                cells.append("—" if m is None else f"{m:.4f} ± {h:.4f}")
            rows.append(cells)
        table = _table(
            [
                "case",
                "images",
                "mean MI",
                "max MI",
                "mean MI above null",
                "max MI above null",
                "mean MI untrained",
                "max MI untrained",
                "null mean MI",
            ],
            rows,
        )
        note = "nats, mean ± 95% t-interval over images."
    out.append(
        f'<div class="row">{_img(_png_uri(mi_bars_figure(per_image)), "mean and max MI per case")}<div>{table}'
        f'<p class="note">{html.escape(note)}</p></div></div>'
    )
    out.append(_img(_png_uri(mi_violin_figure(per_map)), "distribution of per-map MI per case"))

    # winners
    if kind == "sweep" and len(cases) > 1:
        from . import compare, stats

        out.append("<h2>Which case wins</h2>")
        if (path / rundir.WINNERS_CSV).is_file():
            wins = pd.read_csv(path / rundir.WINNERS_CSV, dtype={"case": str})
        else:
            wins = stats.winner_shares(compare.comparison(jobs))
        has_ci = {"ci_low", "ci_high"} <= set(wins.columns)
        rows = [
            [
                f"case {r.case}",
                int(r.wins),
                f"{r.share:.1%}",
                *([f"{r.ci_low:.1%} – {r.ci_high:.1%}"] if has_ci else []),
            ]
            for r in wins.itertuples()
        ]
        units = (
            f" over seeds and {int(wins['n_units'].max())} independent image units (Wilson, effective sample size)"
            if "n_units" in wins.columns
            else ""
        )
        out.append(
            f'<div class="row">{_img(_png_uri(winners_figure(wins)), "winner histogram")}'
            f"<div>{_table(['case', 'wins', 'share', *(['95% interval'] if has_ci else [])], rows)}"
            f'<p class="note">images on which the case has the highest max MI; 95% interval{html.escape(units)}.</p></div></div>'
        )

    # feature maps of the example images
    out.append("<h2>Feature maps of the example images</h2>")
    out.append(
        '<p class="note">Each block: the image, then its 32 feature maps sorted by MI with the image '
        "(caption: map number: MI in nats), one colour scale per case."
        + (" Several jobs per case: the first job's maps are shown." if several else "")
        + "</p>"
    )
    maps = {c: load_example_maps(first[c].path) for c in cases}
    pngs = {
        c: {p.stem: p for p in sorted((first[c].path / rundir.FEATURES).glob("*.png"))}
        for c in cases
    }
    names = sorted(set().union(*maps.values(), *pngs.values()))
    for name in names:
        image_id, _, image_label = name.partition("_")
        out.append(
            f"<h3>example image {html.escape(image_id.lstrip('0') or '0')}: {html.escape(image_label)}</h3>"
        )
        if all(
            name in pngs[c] for c in cases
        ):  # each case's features/ picture, one under another: reused, not redrawn
            out.extend(
                _img(_file_uri(pngs[c][name]), f"case {c}: feature maps of {name}") for c in cases
            )
        elif all(
            name in maps[c] for c in cases
        ):  # pictures missing: the cases drawn as one figure from examples.npz
            rows = [(c, *maps[c][name]) for c in cases]
            out.append(
                _img(_png_uri(example_grid_figure(rows)), f"feature maps of {name}, every case")
            )
        else:  # some cases have neither: the pictures there are
            for c in cases:
                if name in pngs[c]:
                    out.append(
                        f"<p>case {c}</p>"
                        + _img(_file_uri(pngs[c][name]), f"case {c}: feature maps of {name}")
                    )
    if not names:
        out.append('<p class="note">No example pictures in features/.</p>')

    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
    return rundir.write_text(path / rundir.REPORT, page)


def infoplane_figure(plane: pd.DataFrame, title: str):
    """Mean MI between the probe images and each layer's maps, against the training step."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for layer, rows in plane.groupby("layer"):
        ax.plot(rows["step"], rows["mi"], marker="o", ms=3, label=f"layer {layer}")
    ax.set(title=title, xlabel="training step", ylabel="mean MI with the image (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
