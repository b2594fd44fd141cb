"""`infomax run --help`: the user's config groups and keys, each key with its type (from the schema in
`config/schema.py`) and the value it has under the overrides given (the default when none are).

Hydra's own help lists the ConfigStore's schema entries as options and shows no types; every config
error points here ("infomax run --help lists every key with its type"), so this page is built from the
schema itself. `--hydra-help` still shows Hydra's.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from . import config

# The config groups a user picks from (group=option); Hydra's launcher is the one of Hydra's own that
# the README documents (sweeps only).
GROUPS = ("case", "dataset", "device", "logger", "train", "hydra/launcher")

HEAD = """usage: infomax run [-m] [OVERRIDES]
  one job: train one encoder case, measure MI, write a run directory;
  -m: a sweep over every comma list (case=a,b,c,d seed=0,1,2), then the sweep's comparison.
  Overrides are group=option or key=value; values below are those the overrides given here compose to.
"""

TAIL = """
infomax run --cfg job [OVERRIDES] prints the whole composed config; infomax run --hydra-help, Hydra's
own options (hydra.run.dir=..., hydra.sweep.dir=..., hydra.launcher.*).
"""


def type_name(tp: Any) -> str:
    """A schema field's type in the words of the README: int, float, bool, str, one|of|these, list of X,
    X or null, dict."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        named = " or ".join(type_name(a) for a in rest)
        return f"{named} or null" if len(rest) < len(args) else named
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict or tp is dict:
        return "dict"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "|".join(str(m.value) for m in tp)
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def schema_keys(schema: type, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, type name) for every leaf of a schema dataclass, in declaration order."""
    hints = typing.get_type_hints(schema)
    out: list[tuple[str, str]] = []
    for f in dataclasses.fields(schema):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += schema_keys(tp, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", type_name(tp)))
    return out


def value_text(value: Any) -> str:
    """A composed value as one would type it in an override."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and value == "":
        return "''"
    return str(value)


def _lookup(cfg: DictConfig, key: str) -> str:
    node = OmegaConf.select(cfg, key, default="???", throw_on_missing=False)
    return "(required)" if node == "???" else value_text(node)


def help_text(cfg: DictConfig, options: dict[str, list[str]], chosen: dict[str, str]) -> str:
    """The help page for a composed config `cfg`: each group's options (`options`, the one in use
    marked with *), then every key of the schema with its type and value. Pure: the caller composes."""
    lines = [HEAD, "config groups (group=option; * the one in use):"]
    width = max(map(len, options))
    for group, names in options.items():
        marked = [f"{n}*" if n == chosen.get(group) else n for n in names]
        note = "  (sweeps: -m)" if group.startswith("hydra/") else ""
        lines.append(f"  {group:<{width}}  {', '.join(marked)}{note}")
    keys = schema_keys(config.Config)
    key_width = max(len(k) for k, _ in keys)
    type_width = max(len(t) for _, t in keys)
    lines += [
        "",
        "config keys (key=value):",
        f"  {'key':<{key_width}}  {'type':<{type_width}}  value",
    ]
    for key, kind in keys:
        lines.append(f"  {key:<{key_width}}  {kind:<{type_width}}  {_lookup(cfg, key)}")
    return "\n".join(lines) + "\n" + TAIL


def print_help(overrides: list[str]) -> None:
    """Compose the config as `infomax run OVERRIDES` would (sweep lists left out: a page shows one
    config) and print its help page. Hydra's and OmegaConf's errors propagate: a bad override is a
    config error, reported as one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    single = [o for o in overrides if not parser.parse_override(o).is_sweep_override()]
    with initialize_config_dir(config_dir=str(config.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=single, return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        options = {
            g: [o for o in loader.get_group_options(g) if not o.startswith("schema_")]
            for g in GROUPS
        }
    chosen = {g: str(c) for g, c in cfg.hydra.runtime.choices.items() if c is not None}
    chosen.setdefault("hydra/launcher", "basic")
    print(help_text(cfg, options, chosen), end="")
