"""A sweep's comparison from job directories' files alone (synthetic jobs: no training)."""

import json
import logging

import pandas as pd
import pytest
import yaml

from infomax_cli.analysis.compare import compare
from infomax_cli.errors import ConfigError


def make_job(sweep, case, mi_max, seed=0, finished=True, extra=("dataset=samples",)):
    overrides = [f"case={case}", *extra] + ([f"seed={seed}"] if seed else [])
    d = sweep / ",".join(sorted(overrides))
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    n = len(mi_max)
    pd.DataFrame(
        {
            "image_id": range(n),
            "label": ["chelsea"] * n,
            "mi_mean": [m / 2 for m in mi_max],
            "mi_max": mi_max,
            "best_map": 0,
        }
    ).to_csv(d / "mi_per_image.csv", index=False)
    pd.DataFrame(
        {
            "image_id": [i for i in range(n) for _ in range(2)],
            "label": "chelsea",
            "map": [0, 1] * n,
            "mi": [m for m in mi_max for _ in range(2)],
        }
    ).to_csv(d / "mi_per_map.csv", index=False)
    pd.DataFrame(
        {
            "step": [1, 2],
            "loss": [2.0, 1.9],
            "local": [1.3, 1.2],
            "global": [1.3, 1.3],
            "prior": [0.7, 0.7],
        }
    ).to_csv(d / "loss.csv", index=False)
    if finished:
        (d / "summary.json").write_text(json.dumps({"case": case, "seed": seed}))
    return d


def test_winner_is_the_case_with_the_highest_max_mi(tmp_path):
    make_job(tmp_path, "a", [0.1, 0.9, 0.3])
    make_job(tmp_path, "b", [0.2, 0.1, 0.3])
    make_job(tmp_path, "c", [0.5, 0.2, 0.8])
    sweep, found = compare(tmp_path)
    comp = pd.read_csv(tmp_path / "comparison.csv")
    assert list(comp.columns) == [
        "image_id",
        "label",
        "group",
        "mi_max_a",
        "mi_max_b",
        "mi_max_c",
        "mi_mean_a",
        "mi_mean_b",
        "mi_mean_c",
        "winner",
    ]
    assert comp["group"].astype(str).tolist() == [
        "0",
        "1",
        "2",
    ]  # a run without `group`, not the embedded set: each image its own unit
    assert comp["winner"].tolist() == ["c", "a", "c"]
    wins = pd.read_csv(tmp_path / "winners.csv")
    assert wins[["case", "wins", "share"]].to_dict("list") == {
        "case": ["a", "b", "c"],
        "wins": [1, 0, 2],
        "share": pytest.approx([1 / 3, 0, 2 / 3], abs=1e-5),
    }
    assert ((wins["ci_low"] <= wins["share"]) & (wins["share"] <= wins["ci_high"])).all()
    assert (tmp_path / "stats.csv").is_file() and (tmp_path / "pairwise.csv").is_file()
    assert wins.loc[wins.case == "b", "ci_high"].item() > 0  # no wins, still a proper interval
    assert (pd.read_csv(tmp_path / "claims.csv")["status"] == "not established").all()  # one seed
    assert (tmp_path / "winners.png").stat().st_size > 0 and (
        tmp_path / "loss_curves.png"
    ).stat().st_size > 0
    assert sweep.unfinished == [] and sweep.missing == []


def test_seeds_get_their_own_rows(tmp_path):
    for seed in (0, 1):
        make_job(tmp_path, "a", [0.1, 0.2], seed=seed)
        make_job(tmp_path, "c", [0.3, 0.0 + seed], seed=seed)
    comp = pd.read_csv(tmp_path / "comparison.csv") if compare(tmp_path) else None
    assert comp.columns[0] == "seed" and len(comp) == 4
    assert comp["winner"].tolist() == ["c", "a", "c", "c"]


def test_unfinished_and_missing_jobs_are_named(tmp_path, caplog):
    make_job(tmp_path, "a", [0.1])
    make_job(tmp_path, "b", [0.2], finished=False)
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": ["case=a,b,c", "dataset=samples"]}}})
    )
    with caplog.at_level(logging.WARNING, logger="infomax"):
        sweep, _ = compare(tmp_path)
    assert [j.path.name for j in sweep.unfinished] == ["case=b,dataset=samples"]
    assert sweep.missing == ["case=c dataset=samples"]
    assert (
        "case=b,dataset=samples has not finished" in caplog.text
        and "case=c dataset=samples is missing" in caplog.text
    )
    assert pd.read_csv(tmp_path / "comparison.csv")["winner"].tolist() == ["a"]


def test_a_folder_without_jobs_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no finished job"):
        compare(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        compare(tmp_path / "nope")


def test_sweep_exit_code_says_how_the_worst_job_stopped():
    from infomax_cli.analysis.compare import sweep_exit_code

    assert sweep_exit_code([]) == 0
    assert sweep_exit_code([2, 2]) == 2  # every job rejected its config
    assert sweep_exit_code([2, 1]) == 1  # a runtime failure outranks a config error
    assert sweep_exit_code([143, 1]) == 1
    assert sweep_exit_code([2, 140]) == 140  # stopped by a signal: resumable


@pytest.mark.slow
def test_the_printed_command_adds_seeds_into_the_sweep_and_keeps_its_finished_jobs(tmp_path):
    """A two-seed sweep whose claims need a third seed (c and a the same network, as in the study):
    compare prints the `infomax run -m` line that adds it into the same directory; running that line
    trains only the new seed's jobs, leaves the finished ones as they were, and its comparison covers
    every job (claims over 3 seeds). The two-seed sweep is written as finished jobs (no training)."""
    import shlex

    import numpy as np
    from conftest import TINY, infomax
    from fake_sweep import write_job

    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, 12)
    for seed in (0, 1):
        for case in "ac":
            write_job(tmp_path, case, base + rng.normal(0, 1e-4, 12), seed, extra=tuple(TINY))
    task = ["case=a,c", *TINY, "seed=0,1"]
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": task}}})
    )
    before = {p: p.read_bytes() for p in tmp_path.glob("*/*.*") if p.is_file()}
    _, found = compare(tmp_path)
    assert (found.claims.seeds_needed == 3).all(), found.claims[["claim", "seeds_needed"]]
    line = next(a for a in found.advice if "infomax run -m" in a)
    args = shlex.split(line[line.index("infomax run -m") :])[1:]
    assert "seed=2" in args and f"hydra.sweep.dir={tmp_path.resolve()}" in args
    done = infomax(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(p.read_bytes() == data for p, data in before.items())  # the finished jobs, untouched
    assert len(list(tmp_path.glob("*/summary.json"))) == 6
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert (claims.n_seeds == 3).all()
    assert sorted(pd.read_csv(tmp_path / "comparison.csv").seed.unique()) == [0, 1, 2]
