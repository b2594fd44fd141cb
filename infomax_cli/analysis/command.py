"""The commands infomax prints for the user to paste, built from its own keys, never copied from files.

A sweep directory may come from someone else, and a line pasted into a shell runs whatever it names: so
the line that finishes a sweep and adds seeds takes from the sweep's record (multirun.yaml, or its jobs'
overrides) only the overrides of the tool's own keys (`case`, `dataset`, `train`, `measure`, `encoder`,
`objective`, `device`, `logger`, `compare`), each parsed by Hydra's grammar and shell-quoted, and the
launcher only when it names one of the package's presets; no other `hydra.*` override (a callback there
would be code run by whoever pastes the line), no `overwrite` or `resume` (finished jobs are kept), and
the sweep directory last.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from .. import config
from ..errors import has_control, printable
from ..store import override_key
from .sweep import Sweep, seed_override

log = logging.getLogger("infomax")

# the schema's top-level keys a printed command may set: all but the seed (the command sets it) and
# those that would redo or force finished jobs
TOOL_KEYS = frozenset(f.name for f in dataclasses.fields(config.Config)) - {
    "seed",
    "overwrite",
    "resume",
}
LAUNCHER = "hydra/launcher"


def launcher_presets() -> set[str]:
    return {p.stem for p in (config.CONF_DIR / "hydra" / "launcher").glob("*.yaml")}


def _allowed(override: str, parser: OverridesParser) -> bool:
    """Whether a recorded override may go into a printed command: one Hydra reads, of a tool key (or
    the launcher, naming a preset of the package), with no control character."""
    if has_control(override):
        return False
    try:
        parsed = parser.parse_override(override)
    except HydraException:
        return False
    key = parsed.key_or_group
    if key == LAUNCHER:
        return parsed.value() in launcher_presets()
    return key.split(".")[0].split("/")[0] in TOOL_KEYS


def tool_overrides(overrides: list[str]) -> list[str]:
    """The overrides a printed command may carry (`_allowed`), the seed and the launcher left out."""
    parser = OverridesParser.create()
    return [
        o
        for o in overrides
        if override_key(o) != "seed" and o.partition("=")[0] != LAUNCHER and _allowed(o, parser)
    ]


def _from_jobs(sweep: Sweep) -> list[str]:
    """A sweep without a readable multirun.yaml: `case=` every case, each other key with every value
    its jobs set (in order), as one sweep."""
    jobs = [*sweep.jobs, *(j for x in sweep.left_out for j in x.set_aside)]
    jobs += [*sweep.unfinished, *sweep.damaged]
    values: dict[str, list[str]] = {}
    for job in jobs:
        for o in job.overrides:
            key, eq, value = o.partition("=")
            if eq and override_key(o) not in ("case", "seed"):
                values.setdefault(key, [])
                if value not in values[key]:
                    values[key].append(value)
    cases = list(dict.fromkeys(j.case for j in sweep.jobs))
    return [f"case={','.join(cases)}", *(f"{k}={','.join(v)}" for k, v in values.items())]


def rerun_args(sweep: Sweep, seeds: list[int]) -> list[str]:
    """The arguments of the `infomax run -m` that runs `seeds` of this sweep in its directory (after
    `run -m`): the recorded overrides of the tool's keys and the launcher (a preset's name), the
    seeds, the sweep directory last. `infomax settle` runs them; `rerun_line` prints them."""
    recorded = sweep.record.task if sweep.record.task is not None else _from_jobs(sweep)
    return run_args(recorded, sweep.record.hydra, sweep.path, seeds)


def run_args(task: list[str], hydra: list[str], sweep_dir: Path, seeds: list[int]) -> list[str]:
    """`rerun_args` from a sweep's recorded overrides (multirun.yaml's `task` and `hydra` lists):
    only those `_allowed`, the seed replaced by `seeds`."""
    recorded = [*task, *(o for o in hydra if o.partition("=")[0] == LAUNCHER)]
    parser = OverridesParser.create()
    keep, dropped = [], []
    for o in recorded:
        if override_key(o) == "seed":
            continue
        (keep if _allowed(o, parser) else dropped).append(o)
    if dropped:
        log.debug(f"not in the printed command: {printable(' '.join(dropped))[:200]}")
    return [*keep, seed_override(seeds), f"hydra.sweep.dir={Path(sweep_dir).resolve()}"]


def recorded_launcher(hydra: list[str]) -> str | None:
    """The launcher a sweep's record names (`hydra/launcher=NAME`), as written; None when it names
    none (Hydra's basic launcher). Whether it is a preset: `launcher_presets`."""
    names = [o.partition("=")[2] for o in hydra if o.partition("=")[0] == LAUNCHER]
    return names[-1] if names else None


def rerun_line(sweep: Sweep, seeds: list[int]) -> str:
    """The `infomax run -m` line that runs `seeds` of this sweep in its directory: it finishes the jobs
    of those seeds that did not finish or are damaged, skips the finished ones, and adds new seeds;
    the comparison at its end covers every finished job."""
    return "infomax run -m " + " ".join(shlex.quote(a) for a in rerun_args(sweep, seeds))
