"""`infomax sensitivity`: a tiny real sweep's encoders (the session's shared one, conftest.tiny_sweep:
the four cases on 12 images) re-measured under a small protocol grid."""

import json
import shutil

import pandas as pd
import pytest

from infomax_cli import cli, rundir, sensitivity
from infomax_cli.errors import ConfigError

# one worker runs this module (make test: --dist loadgroup), so its module fixture (sweep, remeasured) is
# made once, not once per worker
pytestmark = pytest.mark.xdist_group("test_sensitivity")

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


CASES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def sweep(tiny_sweep, tmp_path_factory):
    """A copy of the shared sweep: sensitivity writes its tables into it."""
    d = tmp_path_factory.mktemp("sensitivity") / "sweep"
    shutil.copytree(tiny_sweep[0], d)
    return d


def remeasure(*args: str) -> int:
    """`infomax sensitivity ARGS`, in this process."""
    return cli.main(["sensitivity", *args])


@pytest.fixture(scope="module")
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
        *[f"mi_max_{c}" for c in CASES],
        *[f"mi_mean_{c}" for c in CASES],
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
    assert list(jobs.columns) == sensitivity.JOB_COLUMNS and len(jobs) == 4 * 7
    assert (jobs.n_images == 12).all() and set(jobs.case) == set(CASES)


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
        assert sorted(order) == CASES and r.best == order[0]
        for higher, lower in zip(order, order[1:]):
            assert r[f"mi_max_{higher}"] >= r[f"mi_max_{lower}"]


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
    assert len(loaded) == 4  # one per job


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
