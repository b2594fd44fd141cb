"""The looks a sweep has had at its claims (looks.csv), so that its plan (sequential.py) can keep the
error rate over all of them, and so that a user need not remember them.

A look is a comparison of the sweep on a set of seeds (per setting, the seeds every case finished):
`infomax compare`, the comparison at the end of `infomax run -m`, `infomax report` of a sweep. A
comparison on the seeds of the last look is that look again (its rows are rewritten: a changed margin
changes its statuses, not the plan). The plan, `compare.max_seeds` and `compare.spending`, is fixed by
the sweep's first look: a plan changed after looking would let the data choose it. The first look
with at least max_seeds seeds is the plan's last: it spends what is left, and every later comparison
re-reads it (the claims are computed on that look's seeds; seeds added since are in the other tables).

For `infomax settle` and scripts: `take` (where a sweep's next comparison stands), `record` (write its
rows) and `states` (per claim: decided or not, and what would settle it).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import rundir, store
from ..errors import Damaged, RunError
from ..rundir import SETTING
from . import sequential
from .verdict import ALPHA, DECIDED, alphas

log = logging.getLogger("infomax")


@dataclass(frozen=True)
class LookState:
    """Where a sweep's comparison stands: its look number, whether it is a new look, the plan, each
    (setting, claim)'s seed counts at its earlier looks, and per setting the seeds the claims use."""

    number: int
    new: bool
    plan: sequential.Plan
    before: Mapping[tuple[str, str], tuple[int, ...]]
    seeds: Mapping[str, tuple[int, ...]]
    ended: frozenset[str] = frozenset()  # settings whose plan ended at an earlier look
    history: pd.DataFrame = field(default_factory=pd.DataFrame)


def seeds_text(seeds) -> str:
    """'0-4,7' for seeds 0, 1, 2, 3, 4, 7."""
    seeds, runs = sorted(int(s) for s in seeds), []
    for s in seeds:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def parse_seeds(text) -> tuple[int, ...]:
    """seeds_text's inverse; ValueError when the text is not such a list."""
    if isinstance(text, float) and math.isnan(text):
        return ()
    out: list[int] = []
    for part in str(text).split(","):
        a, _, b = part.partition("-")
        out += range(int(a), int(b or a) + 1)
    return tuple(out)


def complete_seeds(per_image: pd.DataFrame) -> dict[str, tuple[int, ...]]:
    """Per setting, the seeds for which every case of the setting has rows."""
    out = {}
    for setting, part in per_image.groupby(SETTING, sort=True):
        cases = part.groupby("seed")["case"].nunique()
        out[str(setting)] = tuple(int(s) for s in cases.index[cases == part["case"].nunique()])
    return out


def read(sweep_dir: Path) -> pd.DataFrame:
    """looks.csv of a sweep (an empty table when it has none); RunError in one line when it cannot be
    read as the contract has it: it is the sweep's record of its looks, never silently replaced."""
    path = Path(sweep_dir) / rundir.LOOKS
    if not os.path.lexists(path):
        return pd.DataFrame(columns=[SETTING, *rundir.LOOK_COLUMNS])
    try:
        table = store.files.read_csv(sweep_dir, path)  # a regular file inside the sweep, bounded
        if missing := [c for c in (SETTING, *rundir.LOOK_COLUMNS) if c not in table.columns]:
            raise ValueError(f"it lacks the column(s) {', '.join(missing)}")
        table[SETTING] = table[SETTING].astype(object).fillna("").astype(str)
        table["look"] = table["look"].astype(int)
        table["n_seeds"] = table["n_seeds"].astype(int)
        table["max_seeds"] = table["max_seeds"].astype(int)
        table["seeds"].map(parse_seeds)
        if not set(table["spending"]) <= set(sequential.SPENDING):
            raise ValueError("an unknown spending function")
    except (Damaged, ValueError, TypeError) as e:
        raise RunError(
            f"{path} is damaged ({str(e).removeprefix(str(path) + ' ')}): it records the sweep's looks "
            "at its claims; restore it, or delete it to start the plan again from the next look."
        ) from None
    return table


def take(sweep_dir: Path, per_image: pd.DataFrame, plan: sequential.Plan) -> LookState:
    """Where a comparison of the sweep (its per-image rows) stands: a new look when some setting's
    seeds changed since the last look, else the last look again. `plan`: the configuration's, used
    when the sweep has no look yet (afterwards the recorded one)."""
    history = read(sweep_dir)
    if len(history):
        first = history.iloc[0]
        recorded = sequential.Plan(int(first["max_seeds"]), str(first["spending"]))
        if recorded != plan:
            log.warning(
                f"compare.max_seeds={plan.max_seeds} compare.spending={plan.spending} differ from the "
                f"plan of this sweep's first look ({recorded.max_seeds}, {recorded.spending}; "
                f"{Path(sweep_dir) / rundir.LOOKS}): the sweep keeps its plan (one chosen after "
                "looking would let the data choose it)."
            )
        plan = recorded
    seeds = complete_seeds(per_image)
    last_number = int(history["look"].max()) if len(history) else 0
    final = {}  # setting -> the look at which its plan ended, and that look's seeds
    for setting in seeds:
        mine = history[(history[SETTING] == setting) & (history["n_seeds"] >= plan.max_seeds)]
        if len(mine):
            final[setting] = (int(mine["look"].min()), parse_seeds(mine.iloc[0]["seeds"]))
    last = history[history["look"] == last_number]
    last_seeds = {str(r[SETTING]): parse_seeds(r["seeds"]) for _, r in last.iterrows()}
    changed = any(last_seeds.get(s) != seeds[s] for s in seeds if s not in final)
    new = not len(history) or changed
    number = last_number + 1 if new else last_number
    ended = frozenset(s for s, (k, _) in final.items() if k < number)
    seeds.update({s: look_seeds for s, (_, look_seeds) in final.items()})  # for good
    earlier = history[history["look"] < number]
    before = {
        (str(s), str(c)): tuple(int(n) for n in g.sort_values("look")["n_seeds"])
        for (s, c), g in earlier.groupby([SETTING, "claim"])
    }
    return LookState(number, new, plan, before, seeds, ended, history)


def restrict(frame: pd.DataFrame, seeds: Mapping[str, tuple[int, ...]]) -> pd.DataFrame:
    """The rows of `frame` (setting, seed, ...) on each setting's look seeds."""
    keep = [s in seeds.get(str(st), ()) for st, s in zip(frame[SETTING], frame["seed"])]
    return frame[np.asarray(keep, dtype=bool)]


def configured(configs, given: Mapping | None = None) -> tuple[float, sequential.Plan]:
    """compare.tie and the plan (compare.max_seeds, compare.spending): the schema's defaults, then the
    first job config (plain data, as the store reads .hydra/config.yaml) that holds them, then `given`
    (a multirun's own compare node)."""
    from ..config import CompareConfig

    default = CompareConfig()
    node: dict = {"tie": default.tie, "max_seeds": default.max_seeds, "spending": default.spending}
    for tree in configs:
        found = tree.get("compare") if isinstance(tree, dict) else None
        if isinstance(found, dict) and "max_seeds" in found and _valid_plan(found):
            node.update({k: found[k] for k in node if k in found})
            break
    node.update({k: given[k] for k in node if given and k in given})
    return float(node["tie"]), sequential.Plan(int(node["max_seeds"]), str(node["spending"]))


def _valid_plan(node: Mapping) -> bool:
    """Whether a stored compare node's tie, max_seeds and spending are what the schema allows (a file
    is data: a value of another type is skipped, never trusted)."""
    tie, most, spending = (
        node.get("tie", 0.0),
        node.get("max_seeds"),
        node.get("spending", "pocock"),
    )
    return (
        isinstance(tie, int | float)
        and not isinstance(tie, bool)
        and math.isfinite(tie)
        and tie >= 0
        and isinstance(most, int)
        and not isinstance(most, bool)
        and most >= 2
        and spending in sequential.SPENDING
    )


def rows(state: LookState, claims: pd.DataFrame) -> pd.DataFrame:
    """This look's rows of looks.csv: one per (setting, claim) of claims.csv, for the settings whose
    plan has not ended."""
    out = []
    for _, r in claims.iterrows():
        setting = str(r[SETTING]) if SETTING in claims.columns else ""
        if setting in state.ended:
            continue
        n = int(r["n_seeds"])
        before = state.before.get((setting, str(r["claim"])), ())
        out.append(
            {
                SETTING: setting,
                "look": state.number,
                "n_seeds": n,
                "claim": r["claim"],
                "status": r["status"],
                "alpha_spent": state.plan.spent([*before, n], ALPHA),
                "level": state.plan.level(before, n, alphas(1)[0]),
                "seeds": seeds_text(state.seeds.get(setting, ())),
                "max_seeds": state.plan.max_seeds,
                "spending": state.plan.spending,
            }
        )
    return pd.DataFrame(out, columns=["look", SETTING, *rundir.LOOK_COLUMNS[1:]])


def record(sweep_dir: Path, state: LookState, claims: pd.DataFrame) -> Path:
    """Write looks.csv (atomically): the earlier looks as they were, then this look's rows (replacing
    its own when it is the last look again)."""
    kept = state.history[state.history["look"] != state.number]
    table = pd.concat([kept, rows(state, claims)], ignore_index=True)
    table = table[["look", SETTING, *rundir.LOOK_COLUMNS[1:]]].sort_values(
        ["look", SETTING], kind="stable"
    )
    return rundir.write_csv(Path(sweep_dir) / rundir.LOOKS, table)


@dataclass(frozen=True)
class ClaimState:
    """One claim at a look, for a loop that adds seeds until the claims are decided."""

    setting: str
    claim: str
    status: str
    decided: bool
    n_seeds: int
    seeds_needed: float  # NaN: see why
    seeds_needed_high: float
    why: str  # "" | "units" (more photographs, not seeds) | "plan" (more than max_seeds) | "one seed"


def states(claims: pd.DataFrame) -> list[ClaimState]:
    """Per claim of claims.csv: its status, whether it is decided, and the seeds that would settle it."""
    out = []
    for _, r in claims.iterrows():
        needed = float(r["seeds_needed"]) if pd.notna(r["seeds_needed"]) else math.nan
        high = r.get("seeds_needed_high")
        high = float(high) if high is not None and pd.notna(high) else math.nan
        why = "" if np.isfinite(needed) else str(r.get("seeds_why") or "")
        if int(r["n_seeds"]) < 2 and not why:
            why = "one seed"
        out.append(
            ClaimState(
                str(r[SETTING]) if SETTING in claims.columns else "",
                str(r["claim"]),
                str(r["status"]),
                str(r["status"]) in DECIDED,
                int(r["n_seeds"]),
                needed,
                high,
                why,
            )
        )
    return out
