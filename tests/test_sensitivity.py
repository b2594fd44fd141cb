"""`infomax sensitivity`: a tiny real sweep's encoders re-measured under a small protocol grid."""

import json

import pandas as pd
import pytest
from conftest import infomax

from infomax_cli import cli, rundir, sensitivity
from infomax_cli.errors import ConfigError

GRID = [
    "--align",
    "resize",
    "crop",
    "--bins",
    "10",
    "20",
    "--estimators",
    "histogram",
    "gcmi",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture(scope="session")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sensitivity") / "sweep"
    r = infomax(
        "run",
        "-m",
        "case=a,c",
        "dataset=samples",
        "dataset.n_images=8",
        "dataset.per_photo=1",
        "train.steps=2",
        "train.batch_size=4",
        "device=cpu",
        f"hydra.sweep.dir={d}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return d


def remeasure(*args: str) -> int:
    """`infomax sensitivity ARGS`, in this process."""
    return cli.main(["sensitivity", *args])


@pytest.fixture(scope="session")
def remeasured(sweep):
    assert remeasure(str(sweep), *GRID) == 0
    return pd.read_csv(sweep / rundir.SENSITIVITY), pd.read_csv(sweep / rundir.SENSITIVITY_JOBS)


def summaries(sweep):
    return {s["case"]: s for s in (json.loads(p.read_text()) for p in sweep.glob("*/summary.json"))}


@pytest.mark.slow
def test_table_rows_and_columns(remeasured):
    table, jobs = remeasured
    assert list(table.columns) == [
        "align",
        "bins",
        "estimator",
        "mi_max_a",
        "mi_max_c",
        "mi_mean_a",
        "mi_mean_c",
        "best",
        "ranking",
        "own_protocol",
        "same_ranking",
    ]
    # bins vary for the histogram only: 2 aligns x (2 bin counts + gcmi once), then the sweep's own protocol
    protocols = list(zip(table["align"], table.bins.fillna(0).astype(int), table.estimator))
    assert protocols == [
        ("resize", 10, "histogram"),
        ("resize", 20, "histogram"),
        ("resize", 0, "gcmi"),
        ("crop", 10, "histogram"),
        ("crop", 20, "histogram"),
        ("crop", 0, "gcmi"),
        ("geometry", 20, "histogram"),
    ]
    assert list(jobs.columns) == sensitivity.JOB_COLUMNS and len(jobs) == 2 * 7
    assert (jobs.n_images == 8).all() and set(jobs.case) == {"a", "c"}


@pytest.mark.slow
def test_own_protocol_reproduces_the_jobs(sweep, remeasured):
    table, _ = remeasured
    own = table[table.own_protocol]
    assert len(own) == 1
    row = own.iloc[0]
    assert (row["align"], int(row.bins), row.estimator) == ("geometry", 20, "histogram")
    for case, s in summaries(sweep).items():
        assert row[f"mi_max_{case}"] == pytest.approx(s["mi_max"], abs=1e-6)
        assert row[f"mi_mean_{case}"] == pytest.approx(s["mi_mean"], abs=1e-6)


@pytest.mark.slow
def test_ranking_flags_are_consistent(remeasured):
    table, _ = remeasured
    reference = table[table.own_protocol].ranking.iloc[0]
    assert (table.same_ranking == (table.ranking == reference)).all()
    for _, r in table.iterrows():
        order = r.ranking.split(">")
        assert sorted(order) == ["a", "c"] and r.best == order[0]
        assert r[f"mi_max_{order[0]}"] >= r[f"mi_max_{order[1]}"]


@pytest.mark.slow
def test_case_c_aligns_alike_under_both_modes(remeasured):
    # case c's maps have the image's size: resize and crop measure the same arrays
    table, _ = remeasured
    by = table.set_index(["align", "estimator", "bins"])
    assert by.loc["resize"].mi_max_c.tolist() == by.loc["crop"].mi_max_c.tolist()


@pytest.mark.slow
def test_own_protocol_is_added_and_images_capped(sweep, tmp_path, monkeypatch):
    g = tmp_path / "grid.yaml"
    g.write_text("align: [crop]\nbins: [10]\nestimators: [gcmi]\n")
    loaded = []  # each job's images are loaded once, to measure them: never to count them
    real = sensitivity.load_datasets
    monkeypatch.setattr(
        sensitivity, "load_datasets", lambda *a, **k: loaded.append(1) or real(*a, **k)
    )
    assert (
        remeasure(str(sweep), "--grid", str(g), "--n-images", "4", "--device", "cpu", "--quiet")
        == 0
    )
    table = pd.read_csv(sweep / rundir.SENSITIVITY)
    assert [(a, e) for a, e in zip(table["align"], table.estimator)] == [
        ("crop", "gcmi"),
        ("geometry", "histogram"),
    ]
    assert table.own_protocol.tolist() == [False, True] and bool(table.same_ranking.iloc[1])
    assert (pd.read_csv(sweep / rundir.SENSITIVITY_JOBS).n_images == 4).all()
    assert len(loaded) == 2


def test_grid_and_its_file():
    cfg = sensitivity.load_grid()
    assert [a.value for a in cfg.align] == ["geometry", "resize", "crop"] and list(cfg.bins) == [
        10,
        20,
        32,
        64,
    ]
    assert [e.value for e in cfg.estimators] == [
        "histogram",
        "ksg",
        "gcmi",
    ] and cfg.n_images is None
    protocols = sensitivity.grid(["resize", "crop"], [20, 10, 20], ["histogram", "ksg"])
    assert [p.label for p in protocols] == [
        "resize histogram 10 bins",
        "resize histogram 20 bins",
        "resize ksg",
        "crop histogram 10 bins",
        "crop histogram 20 bins",
        "crop ksg",
    ]
    with pytest.raises(ConfigError):
        sensitivity.load_grid(bins=[1])


def test_usage_errors_exit_2(tmp_path, capsys):
    assert remeasure(str(tmp_path)) == 2  # no finished job
    assert "no finished job" in capsys.readouterr().err
    assert remeasure(str(tmp_path), "--estimators", "nope") == 2
    assert remeasure(str(tmp_path / "missing")) == 2
    assert remeasure() == 2
