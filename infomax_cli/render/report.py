"""The renderers: a run's or sweep's report page (report.html) and the sweep's terminal summary.

They render what they are handed (a loaded sweep.Sweep, the statistics' own tables, the pictures
drawn once by figures.report_pictures) and compute no statistic of their own.
"""

from __future__ import annotations

import base64
import html
import sys

import pandas as pd
from matplotlib.colors import to_hex
from rich.console import Console
from rich.table import Table

from .figures import Pictures, case_color

ESTIMATE_CAPTION = (
    "c − other: case c minus the strongest other case, in nats (winner_share: percentage points)"
)
STATS_NAMES = {
    "mi_mean": "mean MI",
    "mi_max": "max MI",
    "mi_mean_above_null": "mean MI above null",
    "mi_max_above_null": "max MI above null",
    "mi_mean_init": "mean MI untrained",
    "mi_max_init": "max MI untrained",
    "mi_null_mean": "null mean MI",
}


def _img(data: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
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
    **STATS_NAMES,
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
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.note{color:#555;font-size:.9em}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;margin-right:.3em}
.kv td,.jobs td:nth-child(2){text-align:left}pre{background:#f7f7f7;padding:.6em;font-size:.85em;overflow:auto}"""


# ------------------------------------------------------------------------------ words of the tables
def interval_text(row) -> str:
    """A claim's estimate with its interval: nats, or percentage points for the winner share."""
    share = row["claim"] == "winner_share"

    def bare(x: float) -> str:
        return f"{100 * x:+.1f}" if share else f"{x:+.4f}"

    if pd.isna(row["estimate"]):
        return "—"
    if pd.isna(row["ci_low"]):
        return bare(float(row["estimate"]))
    return f"{bare(float(row['estimate']))} [{bare(float(row['ci_low']))}, {bare(float(row['ci_high']))}]"


def _share_interval(r) -> list[str]:
    return [f"{r.ci_low:.1%} – {r.ci_high:.1%}"] if pd.notna(r.ci_low) else ["—"]


# ------------------------------------------------------------------------------------ the terminal
def print_found(winners: pd.DataFrame, claims: pd.DataFrame, lines: list[str], sweep_dir) -> None:
    """The end of a sweep's terminal output: the winner table, then the claims table and its
    sentences (with one seed, last, the line saying the claims are not established and what does)."""
    console = Console()
    title = f"which case has the highest max MI ({sweep_dir})"
    table = Table(title=title, min_width=len(title) + 4)
    for col in ("case", "wins", "share", "95% interval"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in winners.itertuples():
        table.add_row(f"case {r.case}", str(r.wins), f"{r.share:.1%}", *_share_interval(r))
    console.print(table)
    title = "the study's claims: does case c keep the most MI? (claims.csv)"
    table = Table(title=title, min_width=len(title) + 4, caption=ESTIMATE_CAPTION)
    several = "setting" in claims.columns
    header = ["claim", "best", "c − other [95% CI]", "seeds", "units", "status"]
    for col in (["setting"] if several else []) + header:
        table.add_column(col, justify="left" if col in ("setting", "claim", "status") else "right")
    for _, r in claims.iterrows():
        best = str(r["best_case"]) if pd.notna(r["best_case"]) else "—"
        cells = [str(r["claim"]), best, interval_text(r), str(r["n_seeds"]), str(r["n_units"])]
        table.add_row(*([str(r["setting"])] if several else []), *cells, str(r["status"]))
    console.print(table)
    for line in lines:
        console.print(line, markup=False, highlight=False)


def print_sensitivity(table: pd.DataFrame, title: str) -> None:
    """sensitivity.csv as a table: each case's mean max-MI under each protocol, the own in bold."""
    cases = [c.removeprefix("mi_max_") for c in table.columns if c.startswith("mi_max_")]
    t = Table(title=title)
    cols = [*(["setting"] if "setting" in table.columns else []), "align", "estimator", "bins"]
    for c in cols:
        t.add_column(c)
    for c in cases:
        t.add_column(f"max MI {c}", justify="right")
    for c in ("best", "ranking", "same"):
        t.add_column(c, justify="left")
    for _, r in table.iterrows():
        style = "bold" if r.own_protocol else None
        bins = "" if pd.isna(r["bins"]) else str(int(r["bins"]))
        cells = [
            *([str(r["setting"])] if "setting" in table.columns else []),
            r["align"],
            r["estimator"],
            bins,
        ]
        cells += [f"{r[f'mi_max_{c}']:.4f}" for c in cases]
        cells += [
            r["best"],
            r["ranking"],
            "own" if r.own_protocol else ("yes" if r.same_ranking else "[red]no[/red]"),
        ]
        t.add_row(*cells, style=style)
    Console(width=None if sys.stdout.isatty() else 140).print(t)


# ------------------------------------------------------------------------------------ the page
def _claims_section(claims: pd.DataFrame, lines: list[str]) -> list[str]:
    """The sweep's claims: a table and one plain sentence per claim (then, with one seed, the line
    saying what establishes them)."""
    several = "setting" in claims.columns
    rows = [
        [
            *([r["setting"]] if several else []),
            r["claim"],
            r["best_case"] if pd.notna(r["best_case"]) else "—",
            interval_text(r),
            int(r["n_seeds"]),
            int(r["n_units"]),
            r["status"],
        ]
        for _, r in claims.iterrows()
    ]
    header = ["claim", "best case", "c − strongest other [95% interval]", "seeds", "image units"]
    out = [
        "<h2>Does the study hold?</h2>",
        '<p class="note">Each claim of the study (case c keeps the most MI), tested with its own '
        "statistic; the seed (one training run) is the replicate unit, images cut from one photograph "
        "are one unit. Estimates: case c minus the strongest other case (nats; winner share in "
        "percentage points); holds / fails need two or more seeds. Definitions: claims.csv and the "
        "README.</p>",
        _table([*(["setting"] if several else []), *header, "status"], rows, "claims"),
        "<ul>",
        *(f"<li>{html.escape(line)}</li>" for line in lines),
        "</ul>",
    ]
    return out


def _stats_table(stats: pd.DataFrame) -> str:
    """MI per case from the statistics' own intervals (stats.csv)."""
    several = "setting" in stats.columns
    rows = []
    for key, g in stats.groupby(["setting", "case"] if several else ["case"], sort=True):
        by = g.set_index("metric")
        cells = [
            *([key[0]] if several else []),
            f"case {key[-1]}",
            int(by["n_seeds"].max()),
            int(by["n_units"].max()),
        ]
        for metric in STATS_NAMES:
            r = by.loc[metric] if metric in by.index else None
            if r is None:
                cells.append("—")
            elif pd.isna(r["ci_low"]):
                cells.append(f"{r['mean']:.4f}")
            else:
                cells.append(f"{r['mean']:.4f} [{r['ci_low']:.4f}, {r['ci_high']:.4f}]")
        rows.append(cells)
    header = [
        *(["setting"] if several else []),
        "case",
        "seeds",
        "image units",
        *STATS_NAMES.values(),
    ]
    return _table(header, rows)


GEOMETRY = "receptive fields: stride / offset / radius per layer (measured)"


def _geometry(layers: list[dict] | None) -> str:
    """A job's measured geometry in one cell: each recorded layer's stride, offset and radius."""
    if not layers:
        return ""  # written before the geometry was measured
    return " → ".join(f"{g['stride']} / {g['offset']:+d} / {g['radius']}" for g in layers)


def page(
    sweep,
    pictures: Pictures,
    stats: pd.DataFrame,
    over: str,
    winners: pd.DataFrame | None = None,
    claims: pd.DataFrame | None = None,
    claim_lines: list[str] = (),
) -> str:
    """The HTML report of `sweep` (a sweep.Sweep: a run or a sweep) from the statistics' tables
    (`stats`: stats.csv's rows, its intervals over `over`; a sweep's winners.csv and claims.csv) and
    the pictures drawn once."""
    jobs, cases, s0 = sweep.jobs, sweep.cases, sweep.jobs[0].summary
    name = sweep.path.resolve().name
    heading = f"sweep {name}" if sweep.kind == "sweep" else f"run {name} (case {s0['case']})"
    out = [f"<h1>infomax report: {html.escape(heading)}</h1>"]
    if claims is not None:
        out.extend(_claims_section(claims, list(claim_lines)))
    legend = " ".join(
        f'<span><span class="swatch" style="background:{to_hex(case_color(c))}"></span>case {c}</span>'
        for c in cases
    )
    out.append(
        f"<p>Deep InfoMax encoders trained on {html.escape(str(s0.get('dataset')))} "
        f"({s0.get('n_images')} images, {s0.get('steps')} steps); MI between each image and each of "
        f"its feature maps, in nats. {len(jobs)} finished job(s): {legend}</p>"
    )
    left_out = [f"{j.path.name} (no summary.json)" for j in sweep.unfinished]
    left_out += [f"{m} (never started)" for m in sweep.missing]
    if left_out:
        out.append(
            f'<p class="note">Left out, not finished: {html.escape("; ".join(left_out))}.</p>'
        )

    # settings: what all jobs share once, then one row per job
    common = [[k, s0.get(k)] for k in SETTINGS if all(j.summary.get(k) == s0.get(k) for j in jobs)]
    varying = [k for k in SETTINGS if k not in {r[0] for r in common}]
    out.append("<h2>Settings and timings</h2>")
    out.append(_table(["setting", "value"], common, "kv"))
    rows = [
        [
            f"case {j.case}",
            j.path.name.replace(",", ",\u200b"),
            "→".join(map(str, j.summary.get("layer_sizes") or [])),
            _geometry(j.summary.get("geometry")),
            *[j.summary.get(k) for k in varying],
            *[j.summary.get(k) for k in JOB_COLUMNS],
        ]
        for j in jobs
    ]
    out.append(
        _table(
            ["case", "directory", "map sizes", GEOMETRY, *varying, *JOB_COLUMNS.values()],
            rows,
            "jobs",
        )
    )
    out.append(
        '<p class="note">MI in nats: the mean over images of each image\'s mean / max MI over its '
        "maps; above null: minus the same statistic of the maps against another image (null, the "
        "floor for images); untrained: the same encoder before training (control); shuffled: against "
        "the image's pixels shuffled (the estimator's bias); MI estimates: the objectives' own, 0 at "
        "chance.</p>"
    )
    if (text := jobs[0].config_text) is not None:
        out.append(
            f"<details><summary>configuration ({html.escape(jobs[0].path.name)}/.hydra/config.yaml)"
            f"</summary><pre>{html.escape(text)}</pre></details>"
        )

    out.append("<h2>Training loss</h2>")
    out.append(_img(pictures.loss, "training loss: total, local, global and prior terms per step"))

    out.append("<h2>Mutual information per case</h2>")
    note = (
        f"nats: mean with its 95% interval over {over} (stats.csv); above null: minus the same "
        "statistic of the maps against another image."
    )
    out.append(
        f'<div class="row">{_img(pictures.mi_bars, "mean and max MI per case")}<div>'
        f'{_stats_table(stats)}<p class="note">{html.escape(note)}</p></div></div>'
    )
    out.append(_img(pictures.violin, "distribution of per-map MI per case"))

    if winners is not None and pictures.winners is not None:
        out.append("<h2>Which case wins</h2>")
        rows = [
            [f"case {r.case}", r.wins, f"{r.share:.1%}", *_share_interval(r)]
            for r in winners.itertuples()
        ]
        units = int(winners["n_units"].max()) if len(winners) else 0
        note = (
            f"images on which the case has the highest max MI; 95% interval over seeds and {units} "
            "independent image units (Wilson, effective sample size)."
        )
        out.append(
            f'<div class="row">{_img(pictures.winners, "winner histogram")}'
            f"<div>{_table(['case', 'wins', 'share', '95% interval'], rows)}"
            f'<p class="note">{html.escape(note)}</p></div></div>'
        )

    out.append("<h2>Feature maps of the example images</h2>")
    out.append(
        '<p class="note">Each block: the image, then its 32 feature maps sorted by MI with the image '
        "(caption: map number: MI in nats), one colour scale per case."
        + (" Several jobs per case: the first job's maps are shown." if sweep.several else "")
        + "</p>"
    )
    for name, shown in pictures.examples.items():
        image_id, _, image_label = name.partition("_")
        out.append(
            f"<h3>example image {html.escape(image_id.lstrip('0') or '0')}: {html.escape(image_label)}</h3>"
        )
        out.extend(_img(data, alt) for alt, data in shown)
    if not pictures.examples:
        out.append('<p class="note">No example pictures in features/.</p>')
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}'
        f"</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
