"""The renderers: a run's or sweep's report page (report.html) and the sweep's terminal summary.

They render what they are handed (a loaded sweep.Sweep, its analysis.findings.Findings, the pictures
chosen and drawn once by analysis.compare.pictures) and compute no statistic of their own.
"""

from __future__ import annotations

import base64
import html
import sys
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.colors import to_hex
from rich.console import Console
from rich.markup import escape as plain  # names from files are text, never rich markup
from rich.table import Table

from ..errors import printable
from ..rundir import SETTING, several_settings
from .figures import Pictures, case_color

if TYPE_CHECKING:  # the record the statistics hand over; no import of the analysis at run time
    from ..analysis.findings import Findings

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


SETTINGS = [  # summary.json's settings, shown once when every job shares them
    *("dataset", "split", "n_images", "n_train_images", "holdout", "steps", "batch_size", "lr"),
    *("bins", "align", "estimator", "objective", "seed", "device", "versions", "git_commit"),
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
table{display:block;max-width:100%;overflow-x:auto}.row>*{min-width:0;max-width:100%}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}.note{color:#555;font-size:.9em}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:middle;margin-right:.3em}
.kv td,.jobs td:nth-child(2){text-align:left}pre{background:#f7f7f7;padding:.6em;font-size:.85em;overflow:auto}"""


# ------------------------------------------------------------------------------ words of the tables
def interval_text(row, share: bool) -> str:
    """A claim's estimate with its interval: nats, or percentage points for a share."""

    def bare(x: float) -> str:
        return f"{100 * x:+.1f}" if share else f"{x:+.4f}"

    if pd.isna(row["estimate"]):
        return "—"
    if pd.isna(row["ci_low"]):
        return bare(float(row["estimate"]))
    return f"{bare(float(row['estimate']))} [{bare(float(row['ci_low']))}, {bare(float(row['ci_high']))}]"


def margin_text(row, share: bool) -> str:
    """A claim's margin: ±nats, or ±points for a share."""
    if pd.isna(row["margin"]):
        return "—"
    return f"±{100 * row['margin']:.1f}" if share else f"±{row['margin']:.4g}"


def seeds_text(row) -> str:
    """seeds_needed, to seeds_needed_high when the seed variance's uncertainty makes it a range."""
    low, high = row["seeds_needed"], row.get("seeds_needed_high", row["seeds_needed"])
    if pd.isna(low):
        return {"plan": "> plan", "units": "more units"}.get(str(row.get("seeds_why")), "—")
    if pd.isna(high):
        return f"{int(low)} to > plan"
    return f"{int(low)}" + ("" if int(high) == int(low) else f"–{int(high)}")


def _claim_cells(row, share: bool) -> list[str]:
    """claim, best, estimate [interval], seeds, units, margin, seeds needed, status: as shown."""
    best = str(row["best_case"]) if pd.notna(row["best_case"]) else "—"
    return [
        str(row["claim"]),
        best,
        interval_text(row, share),
        str(row["n_seeds"]),
        str(row["n_units"]),
        margin_text(row, share),
        seeds_text(row),
        str(row["status"]),
    ]


def _wins(wins: float) -> str:
    """Images won: whole, or with one decimal where cases within the margin split images."""
    return f"{wins:.0f}" if float(wins).is_integer() else f"{wins:.1f}"


def _share_interval(r) -> list[str]:
    return [f"{r.ci_low:.1%} – {r.ci_high:.1%}"] if pd.notna(r.ci_low) else ["—"]


# ------------------------------------------------------------------------------------ the terminal
def print_found(found: Findings, sweep_dir) -> None:
    """The end of a sweep's terminal output: the winner table, then one line per claim (status,
    estimate, interval, margin, seeds needed), the commands that add the seeds the open claims need,
    and one line saying where each claim's sentence and notes are (claims.csv, report.html): a note
    printed under every claim says less than the one line that points at it."""
    console = Console()
    title = f"which case has the highest max MI ({plain(printable(sweep_dir))})"
    table = Table(title=title, min_width=len(title) + 4)
    for col in ("case", "wins", "share", "95% interval"):
        table.add_column(col, justify="left" if col == "case" else "right")
    for r in found.winners.itertuples():
        table.add_row(
            f"case {plain(printable(r.case))}", _wins(r.wins), f"{r.share:.1%}", *_share_interval(r)
        )
    console.print(table)
    for line in found.seeds:
        print(printable(line))
    print(printable(claim_lines(found, sweep_dir)), flush=True)


def claim_lines(found: Findings, sweep_dir) -> str:
    """One line per claim (`status  estimate [95% interval] unit  ±margin; seeds needed`, case c minus
    the strongest other case), the commands that add the seeds the open claims need, then the line
    that points at claims.csv and report.html; plain text, never wrapped."""
    claims = found.claims
    several = several_settings(claims)
    names = [
        f"{r[SETTING]} {r['claim']}" if several else str(r["claim"]) for _, r in claims.iterrows()
    ]
    width = max(map(len, names), default=0)
    status_width = max((len(str(s)) for s in claims["status"]), default=0)
    out = [
        "the study's claims (claims.csv): status, case c minus the strongest other case "
        "[95% interval], ±margin; seeds needed"
    ]
    for name, (_, r) in zip(names, claims.iterrows()):
        share = r["claim"] in found.share_claims
        estimate = interval_text(r, share)
        unit = (" points" if share else " nats") if estimate != "—" else ""
        detect = f"  {margin_text(r, share)}; seeds {seeds_text(r)}"
        out.append(
            f"  {name:<{width}}  {str(r['status']):<{status_width}}  {estimate}{unit}{detect}"
        )
    out += found.pixels
    if found.advice:
        out.append("to settle the claims not established, add seeds into this sweep:")
        out += [f"  {line}" for line in found.advice]
    out.append(
        f"each claim's sentence and notes: {sweep_dir}/claims.csv and {sweep_dir}/report.html"
    )
    return "\n".join(out)


def print_sensitivity(table: pd.DataFrame, title: str) -> None:
    """sensitivity.csv as a table: each case's mean max-MI under each protocol, the own in bold."""
    cases = [c.removeprefix("mi_max_") for c in table.columns if c.startswith("mi_max_")]
    t = Table(title=title)
    cols = [*(["setting"] if "setting" in table.columns else []), "align", "estimator", "bins"]
    for c in cols:
        t.add_column(c)
    for c in cases:
        t.add_column(f"max MI {plain(printable(c))}", justify="right")
    for c in ("best", "ranking", "same"):
        t.add_column(c, justify="left")
    for _, r in table.iterrows():
        style = "bold" if r.own_protocol else None
        bins = "" if pd.isna(r["bins"]) else str(int(r["bins"]))
        cells = [
            *([plain(printable(r["setting"]))] if "setting" in table.columns else []),
            r["align"],
            r["estimator"],
            bins,
        ]
        cells += [f"{r[f'mi_max_{c}']:.4f}" for c in cases]
        cells += [
            plain(printable(r["best"])),
            plain(printable(r["ranking"])),
            "own" if r.own_protocol else ("yes" if r.same_ranking else "[red]no[/red]"),
        ]
        t.add_row(*cells, style=style)
    Console(width=None if sys.stdout.isatty() else 140).print(t)


# ------------------------------------------------------------------------------------ the page
def _claims_section(found: Findings, picture: bytes | None) -> list[str]:
    """The sweep's claims: the verdict as a picture, a table and one plain sentence per claim (then the
    commands that add the seeds the open claims need)."""
    claims = found.claims
    several = several_settings(claims)
    rows = [
        [*([r[SETTING]] if several else []), *_claim_cells(r, r["claim"] in found.share_claims)]
        for _, r in claims.iterrows()
    ]
    header = ["claim", "best case", "c − strongest other [95% interval]", "seeds", "image units"]
    header += ["margin", "seeds needed", "status"]
    out = [
        "<h2>Does the study hold?</h2>",
        '<p class="note">Each claim of the study (case c keeps the most MI), tested with its own '
        "statistic; the seed (one training run) is the replicate unit, images cut from one photograph "
        "are one unit. Each claim compares c with every other case (claims_pairs.csv) at the levels "
        "of the sweep's plan (looks.csv); it holds when every pair's lower limit is above 0 and its "
        "estimate beyond the margin, fails when some pair's upper limit (corrected for the pairs) is "
        "below 0 and its estimate beyond −margin, is equivalent when every pair's 90% interval lies "
        "within ±margin, and needs two or more seeds for any of these. Estimates: case c minus "
        "the strongest other case (nats; winner share in points). Definitions: claims.csv, README.</p>",
    ]
    if picture is not None:
        out.append(_img(picture, "the claims: each pair's interval against the margin"))
    out += [
        _table([*([SETTING] if several else []), *header], rows, "claims"),
        "<ul>",
        *(f"<li>{html.escape(line)}</li>" for line in [*found.claim_lines, *found.pixels]),
        "</ul>",
    ]
    if found.advice:
        out.append("<p>To settle the claims not established:</p><ul>")
        out += [f"<li><code>{html.escape(line)}</code></li>" for line in found.advice]
        out.append("</ul>")
    return out


def _stats_table(stats: pd.DataFrame) -> str:
    """MI per case from the statistics' own intervals (stats.csv)."""
    if SETTING not in stats.columns:
        stats = stats.assign(**{SETTING: ""})
    several = several_settings(stats)
    rows = []
    for (setting, case), g in stats.groupby([SETTING, "case"], sort=True):
        by = g.set_index("metric")
        cells = [
            *([setting] if several else []),
            f"case {case}",
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
        *([SETTING] if several else []),
        "case",
        "seeds",
        "image units",
        *STATS_NAMES.values(),
    ]
    return _table(header, rows)


GEOMETRY = "receptive fields: stride / offset / radius per layer (measured)"


def _geometry(layers: list[dict]) -> str:
    """A job's measured geometry in one cell: each recorded layer's stride, offset and radius (— when
    the job's format did not measure it)."""
    cells = [f"{g['stride']} / {int(g['offset']):+d} / {g['radius']}" for g in layers]
    return " → ".join(cells) or "—"


def _introduction(sweep, seeds: list[str]) -> list[str]:
    """What was trained and measured, the cases' colours, the jobs left out and the seeds every table
    uses (`seeds`: Findings.seeds)."""
    jobs, s0 = sweep.jobs, sweep.jobs[0].summary
    # every string from the run's files is escaped: case names, labels and folder names are the user's
    legend = " ".join(
        f'<span><span class="swatch" style="background:{to_hex(case_color(c))}"></span>'
        f"case {html.escape(c)}</span>"
        for c in sweep.cases
    )
    what = (
        f"{s0.get('dataset')} ({s0.get('n_images')} images, {s0.get('steps')} steps); MI between each "
        f"image and each of its feature maps, in nats. {len(jobs)} finished job(s):"
    )
    out = [f"<p>Deep InfoMax encoders trained on {html.escape(what)} {legend}</p>"]
    left_out = [f"{j.path.name} (no summary.json)" for j in sweep.unfinished]
    left_out += [f"{m} (never started)" for m in sweep.missing]
    if left_out:
        out.append(
            f'<p class="note">Left out, not finished: {html.escape("; ".join(left_out))}.</p>'
        )
    damaged = [f"{j.path.name}: {j.problem}" for j in sweep.damaged]
    if damaged:
        out.append(f'<p class="note">Left out, damaged: {html.escape("; ".join(damaged))}.</p>')
    if seeds:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in seeds[1:])
        out.append(f'<p class="note">{html.escape(seeds[0])}</p><ul class="note">{items}</ul>')
    return out


def _settings_section(sweep) -> list[str]:
    """The settings every job shares once, then one row per job, then the configuration."""
    jobs, s0 = sweep.jobs, sweep.jobs[0].summary
    common = [[k, s0.get(k)] for k in SETTINGS if all(j.summary.get(k) == s0.get(k) for j in jobs)]
    varying = [k for k in SETTINGS if k not in {r[0] for r in common}]
    out = ["<h2>Settings and timings</h2>", _table(["setting", "value"], common, "kv")]
    rows = [
        [
            f"case {j.case}",
            j.path.name.replace(",", ",\u200b"),
            "→".join(map(str, j.summary.get("layer_sizes") or [])),
            _geometry(j.summary["geometry"]),
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
    return out


def _mi_section(pictures: Pictures, found: Findings) -> list[str]:
    """The loss, then MI per case: the bars beside stats.csv's table, and the per-map distribution."""
    note = (
        f"nats: mean with its 95% interval over {found.over} (stats.csv); above null: minus the same "
        "statistic of the maps against another image."
    )
    return [
        "<h2>Training loss</h2>",
        _img(pictures.loss, "training loss: total, local, global and prior terms per step"),
        "<h2>Mutual information per case</h2>",
        f'<div class="row">{_img(pictures.mi_bars, "mean and max MI per case")}<div>'
        f'{_stats_table(found.stats)}<p class="note">{html.escape(note)}</p></div></div>',
        _img(pictures.violin, "distribution of per-map MI per case"),
    ]


def _winners_section(pictures: Pictures, winners: pd.DataFrame) -> list[str]:
    """How often each case wins: the picture beside winners.csv's table."""
    rows = [
        [f"case {r.case}", _wins(r.wins), f"{r.share:.1%}", *_share_interval(r)]
        for r in winners.itertuples()
    ]
    units = int(winners["n_units"].max()) if len(winners) else 0
    note = (
        f"images on which the case has the highest max MI (cases within compare.tie of the top "
        f"split an image); 95% interval over seeds and {units} independent image units "
        "(Clopper-Pearson at the most clustered case's effective sample size)."
    )
    return [
        "<h2>Which case wins</h2>",
        f'<div class="row">{_img(pictures.winners, "winner histogram")}'
        f"<div>{_table(['case', 'wins', 'share', '95% interval'], rows)}"
        f'<p class="note">{html.escape(note)}</p></div></div>',
    ]


def _examples_section(sweep, pictures: Pictures) -> list[str]:
    """Each example image's pictures, as chosen by the comparison."""
    out = [
        "<h2>Feature maps of the example images</h2>",
        '<p class="note">Each block: the image, then its 32 feature maps sorted by MI with the image '
        "(caption: map number: MI in nats), one colour scale per case."
        + (" Several jobs per case: the first job's maps are shown." if sweep.several else "")
        + "</p>",
    ]
    for name, shown in pictures.examples.items():
        image_id, _, image_label = name.partition("_")
        out.append(
            f"<h3>example image {html.escape(image_id.lstrip('0') or '0')}: {html.escape(image_label)}</h3>"
        )
        out.extend(_img(data, alt) for alt, data in shown)
    if not pictures.examples:
        out.append('<p class="note">No example pictures in features/.</p>')
    return out


def page(sweep, pictures: Pictures, found: Findings) -> str:
    """The HTML report of `sweep` (a sweep.Sweep: a run or a sweep) from what the statistics found
    (stats.csv's intervals; a sweep's winners.csv and claims.csv) and the pictures drawn once."""
    s0 = sweep.jobs[0].summary
    name = sweep.path.resolve().name
    heading = f"sweep {name}" if sweep.kind == "sweep" else f"run {name} (case {s0['case']})"
    out = [f"<h1>infomax report: {html.escape(heading)}</h1>"]
    if found.claims is not None:
        out.extend(_claims_section(found, pictures.claims))
    out.extend(_introduction(sweep, found.seeds))
    out.extend(_settings_section(sweep))
    out.extend(_mi_section(pictures, found))
    if found.winners is not None and pictures.winners is not None:
        out.extend(_winners_section(pictures, found.winners))
    out.extend(_examples_section(sweep, pictures))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}'
        f"</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
