"""Paths and names from the config: `~` and environment variables in path keys (`expand_path`), and a
sweep job's directory name (Hydra's override_dirname, with dataset.root put back shortened: the
`infomax_job_dir` resolver) without the keys that do not change results (`infomax_not_in_names`)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from .remembered import NOT_RESULTS, changes_results, schema_keys

# Keys whose values are paths: `~` and environment variables in them are expanded (`expand_path`).
PATH_KEYS = ("dataset.root", "hydra.run.dir", "hydra.sweep.dir")
# $NAME or ${NAME}; `${now:...}` and `${hydra.job.num}` (Hydra's interpolations) do not match
_ENV_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def expand_path(value: str) -> str:
    """A path as the shell would read it: a leading `~` (or `~user`) is the home folder, `$NAME` and
    `${NAME}` the environment variable's value when it is set (else left as written)."""
    expanded = _ENV_VAR.sub(lambda m: os.environ.get(m[1] or m[2], m[0]), str(value))
    return os.path.expanduser(expanded)


# paths: not in a job's directory name (dataset.root is put back shortened, by root_tag)
NOT_IN_NAMES = ("dataset.root", "hydra.run.dir", "hydra.sweep.dir")


def name_excluded_keys() -> list[str]:
    """The `infomax_not_in_names` resolver (hydra.job.config.override_dirname.exclude_keys): every key
    of NOT_RESULTS and every key under one in the schema, and the paths (NOT_IN_NAMES)."""
    keys = [*NOT_RESULTS, *NOT_IN_NAMES]
    for dotted in schema_keys():
        if not changes_results(dotted):
            keys.append(dotted)
    return list(dict.fromkeys(keys))


PLAIN_ROOT = re.compile(r"[\w.-]{1,32}")


def root_tag(root: str) -> str:
    """dataset.root in a directory name: as typed when short and plain, else its last part and a hash
    of the whole (no '/' in a name, and two roots never share one)."""
    if PLAIN_ROOT.fullmatch(root):
        return root
    last = re.sub(r"[^\w.-]", "_", Path(root.rstrip("/")).name)[:24] or "root"
    return f"{last}-{hashlib.sha256(root.encode()).hexdigest()[:8]}"


def job_dir_name(dirname: str, task: Any, exclude: Any) -> str:
    """The `infomax_job_dir` resolver (hydra.sweep.subdir): Hydra's override_dirname, the job's overrides
    sorted, with `dataset.root` (which Hydra's name leaves out: a path) put back as root_tag. A job
    without a dataset.root override keeps Hydra's name unchanged."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides([str(o) for o in task])
    roots = [o for o in overrides if o.key_or_group == "dataset.root"]
    if not roots:
        return dirname
    lines = [
        f"dataset.root={root_tag(str(o.value()))}" if o is roots[-1] else o.input_line
        for o in overrides
        if o is roots[-1] or o.key_or_group not in set(exclude)
    ]
    return ",".join(sorted(lines))
