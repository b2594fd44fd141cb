"""The config a run remembers (.hydra/config.yaml) against the one it is run with: which keys change
results (`NOT_RESULTS`: the one list of those that do not), and how two configs differ, in words."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from omegaconf import MISSING

from .schema import Config

# The one list of keys (each with the keys under it) that change where, how fast, whether or how a job
# runs, or how a sweep is compared, not what a job computes: they may differ when a directory is resumed
# or skipped (the thread count and device move only the last digits of a sum), and they do not name a
# sweep job's directory (config.yaml's exclude_keys is this list, through `name_excluded_keys`).
NOT_RESULTS = (
    "compare",  # how a sweep is compared, not what a job computes
    "overwrite",
    "resume",
    "device",
    "logger",
    "dataset.download",
    "dataset.max_images",
    "train.checkpoint_every",
    "train.compile",
    "train.compile_mode",
    "train.channels_last",
    "measure.batch_size",
    "case.description",
)
_NOTHING = object()


def changes_results(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_RESULTS)


def schema_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, the nodes and the leaves."""
    hints, out = typing.get_type_hints(schema), []
    for f in dataclasses.fields(schema):
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += schema_keys(hints[f.name], f"{prefix}{f.name}.")
    return out


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested dict as {dotted key: value} (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def schema_defaults(schema: type = Config, prefix: str = "") -> dict[str, Any]:
    """{dotted key: default} of every key the schema gives a default (presets aside)."""
    hints, out = typing.get_type_hints(schema), {}
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out.update(schema_defaults(kind, f"{prefix}{f.name}."))
        elif f.default is not dataclasses.MISSING and f.default is not MISSING:
            out[prefix + f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out.update(flatten(f.default_factory(), f"{prefix}{f.name}."))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b  # a StrEnum equals its value


def differing_keys(stored: dict, current: dict) -> dict[str, tuple[Any, Any]]:
    """{key: (stored value, current value)} for every key that changes results on which two configs
    (plain nested dicts) differ; a key one of them lacks (the schema has grown since) has its default."""
    a, b, defaults = flatten(stored), flatten(current), schema_defaults()
    out = {}
    for key in sorted(a.keys() | b.keys()):
        if not changes_results(key):
            continue
        va, vb = a.get(key, defaults.get(key, _NOTHING)), b.get(key, defaults.get(key, _NOTHING))
        if not _same(va, vb):
            out[key] = (va, vb)
    return out


def describe(diff: dict[str, tuple[Any, Any]], most: int = 4) -> str:
    """'seed 1 -> 7, train.lr 0.0001 -> 0.5' (at most `most` keys, then how many more)."""

    def show(v: Any) -> str:
        text = "(none)" if v is _NOTHING else json.dumps(v, default=str)
        return text if len(text) <= 40 else text[:37] + "..."

    shown = [f"{k} {show(a)} -> {show(b)}" for k, (a, b) in list(diff.items())[:most]]
    more = f" and {len(diff) - most} more" if len(diff) > most else ""
    return ", ".join(shown) + more
