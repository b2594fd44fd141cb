"""Shared helpers: compose configs as Hydra does, and run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from infomax_cli import config

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
config.register()

# A tiny job: a dozen images, two steps. Every override a user could type.
TINY = [
    "dataset=samples",
    "dataset.n_images=12",
    "dataset.per_photo=1",
    "train.steps=2",
    "train.batch_size=4",
    "measure.batch_size=8",
    "device=cpu",
]


def compose_cfg(overrides: list[str] = ()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def check_config(cfg) -> None:
    """Every check a composed config gets before a job writes anything: the schema's range rules on
    the typed config (config.check) and the case's own (model.build.check_case: a stack's geometry,
    a module of your own built and probed)."""
    from infomax_cli.model.build import check_case

    typed = config.typed(cfg)
    config.check(typed)
    check_case(typed)


def infomax(
    *args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `infomax ARGS` as a user would, in a fresh process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "infomax_cli.cli", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def tiny():
    return list(TINY)


def pytest_collection_modifyitems(config, items):
    """Tests that run the `infomax` command in a fresh process (seconds each, mostly imports) get the
    `cli` mark, so `make test-fast` can leave them to `make test`."""
    import inspect

    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and "infomax(" in inspect.getsource(fn):
            item.add_marker(pytest.mark.cli)
