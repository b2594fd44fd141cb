"""Bootstrap intervals, paired differences, winner shares and the ranking verdict (synthetic data)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from infomax_cli import stats
from infomax_cli.compare import comparison, find_jobs


def per_image(means: dict, n_images=200, seeds=(0,), sd=0.05, rng_seed=0, shared_sd=0.0):
    """Long per-image frame: case -> mean mi_max; mi_mean = mi_max / 2, init controls smaller.
    `shared_sd`: an image effect common to every case (what pairing cancels)."""
    rng = np.random.default_rng(rng_seed)
    frames = []
    shared = {s: rng.normal(0, shared_sd, n_images) for s in seeds}
    for case, mu in means.items():
        for s in seeds:
            x = mu + shared[s] + rng.normal(0, sd, n_images)
            frames.append(pd.DataFrame({
                "case": case, "seed": s, "image_id": np.arange(n_images), "mi_mean": x / 2, "mi_max": x,
                "mi_mean_init": x / 8, "mi_max_init": x / 4,
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_interval_covers_the_mean_and_shrinks_like_one_over_root_n():
    rng = np.random.default_rng(42)
    small, large = rng.normal(1.0, 1.0, 100), rng.normal(1.0, 1.0, 2000)
    a, b = stats.bootstrap_ci(small), stats.bootstrap_ci(large)
    for ci, x in ((a, small), (b, large)):
        assert ci.mean == pytest.approx(x.mean())
        assert ci.ci_low < ci.mean < ci.ci_high
        assert ci.n_seeds == 1 and ci.n_images == len(x)
    ratio = (a.ci_high - a.ci_low) / (b.ci_high - b.ci_low)
    assert 3.5 < ratio < 5.5  # sqrt(2000 / 100) = 4.47
    assert a.ci_high - a.ci_low == pytest.approx(2 * 1.96 * small.std() / np.sqrt(100), rel=0.15)  # the normal interval


def test_the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = [stats.bootstrap_ci(rng.exponential(1.0, 100), n_boot=400, seed=i) for i in range(200)]
    coverage = np.mean([ci.ci_low < 1.0 < ci.ci_high for ci in hits])
    assert 0.88 <= coverage <= 0.99


def test_bootstrap_is_reproducible_and_takes_every_input_form():
    rng = np.random.default_rng(1)
    seeds = [rng.normal(size=50), rng.normal(size=50), rng.normal(size=50)]
    a = stats.bootstrap_ci(seeds, n_boot=500, seed=3)
    assert a == stats.bootstrap_ci(seeds, n_boot=500, seed=3)
    assert a != stats.bootstrap_ci(seeds, n_boot=500, seed=4)
    long = pd.DataFrame({"seed": np.repeat([0, 1, 2], 50), "image_id": np.tile(np.arange(50), 3), "v": np.concatenate(seeds)})
    assert stats.bootstrap_ci(long, n_boot=500, seed=3) == a
    assert a.n_seeds == 3 and a.n_images == 50
    assert a.mean == pytest.approx(np.mean([s.mean() for s in seeds]))


def test_seed_variation_widens_the_interval():
    """Seeds whose means differ: the hierarchical interval sees it, a pooled image bootstrap would not."""
    rng = np.random.default_rng(0)
    offsets = [-0.5, 0.0, 0.5, 0.2, -0.2]
    seeds = [o + rng.normal(0, 0.1, 1000) for o in offsets]
    h = stats.bootstrap_ci(seeds)
    pooled = stats.bootstrap_ci(np.concatenate(seeds))
    assert (h.ci_high - h.ci_low) > 5 * (pooled.ci_high - pooled.ci_low)
    assert h.n_seeds == 5


def test_stats_table_columns_and_counts():
    df = per_image({"a": 0.3, "c": 0.5}, n_images=60, seeds=(0, 1, 2))
    t = stats.stats_table(df, n_boot=300)
    assert list(t.columns) == stats.STATS_COLUMNS
    assert len(t) == 2 * 4 and set(t.metric) == set(stats.METRICS)
    assert (t.n_seeds == 3).all() and (t.n_images == 60).all()
    assert (t.ci_low <= t["mean"]).all() and (t["mean"] <= t.ci_high).all()
    row = t[(t.case == "c") & (t.metric == "mi_max")].iloc[0]
    assert row["mean"] == pytest.approx(df[df.case == "c"].mi_max.mean())
    # _init columns are optional
    t2 = stats.stats_table(df.drop(columns=["mi_mean_init", "mi_max_init"]), n_boot=100)
    assert set(t2.metric) == {"mi_mean", "mi_max"}


def test_paired_differences_cancel_the_shared_image_effect():
    # every image moves both cases alike (sd 1.0); case c is 0.05 above a on each image (+ small noise)
    df = per_image({"a": 0.3, "c": 0.35}, n_images=200, sd=0.01, shared_sd=1.0)
    p = stats.pairwise_table(df, n_boot=500)
    assert list(p.columns) == stats.PAIRWISE_COLUMNS
    assert list(p.metric) == ["mi_mean", "mi_max"]
    row = p[p.metric == "mi_max"].iloc[0]
    assert (row.case_x, row.case_y) == ("a", "c")
    x = df[df.case == "a"].mi_max.to_numpy() - df[df.case == "c"].mi_max.to_numpy()
    assert row["diff"] == pytest.approx(x.mean())
    assert row.ci_low < row["diff"] < row.ci_high < 0 and bool(row.significant)
    assert row.ci_high - row.ci_low < 0.01  # unpaired, the shared sd 1.0 would make it ~0.28 wide
    # only images both cases measured are paired
    p2 = stats.pairwise_table(df[~((df.case == "a") & (df.image_id < 50))], n_boot=100)
    assert (p2.n_images == 150).all()


def test_no_difference_is_not_significant():
    df = per_image({"a": 0.3, "b": 0.3}, n_images=200, sd=0.05, seeds=(0, 1))
    p = stats.pairwise_table(df, n_boot=500)
    assert not p.significant.any()
    assert (p.ci_low < 0).all() and (p.ci_high > 0).all() and (p.n_seeds == 2).all()


def test_verdict_holds_when_c_is_clearly_best():
    df = per_image({"a": 0.30, "b": 0.25, "c": 0.50, "d": 0.40}, seeds=(0, 1, 2))
    s, p = stats.stats_table(df, n_boot=500), stats.pairwise_table(df, n_boot=500)
    v = stats.ranking_verdict(p, s)
    assert v.startswith("The study's ranking holds at 95%: case c has the highest max MI")
    assert "beats a, b, d (intervals exclude 0)" in v


def test_verdict_does_not_hold_when_a_is_best():
    df = per_image({"a": 0.60, "b": 0.25, "c": 0.50, "d": 0.40}, seeds=(0, 1, 2))
    v = stats.ranking_verdict(stats.pairwise_table(df, n_boot=500), stats.stats_table(df, n_boot=500))
    assert v.startswith("The study's ranking does not hold at 95%: case a has the highest max MI")
    assert "a beats case c" in v


def test_verdict_does_not_hold_when_c_is_best_but_not_distinguishable():
    df = per_image({"a": 0.30, "c": 0.301}, n_images=50, sd=0.2)
    v = stats.ranking_verdict(stats.pairwise_table(df, n_boot=500), stats.stats_table(df, n_boot=500))
    assert "does not hold" in v and "not distinguishable from a" in v


def test_verdict_without_case_c_cannot_be_tested():
    df = per_image({"a": 0.3, "b": 0.2})
    v = stats.ranking_verdict(stats.pairwise_table(df, n_boot=100), stats.stats_table(df, n_boot=100))
    assert "cannot be tested" in v and "case c is not in the sweep" in v


def test_winner_shares_intervals_contain_the_share():
    rng = np.random.default_rng(0)
    n = 300
    comp = pd.DataFrame({
        "seed": np.repeat([0, 1], n), "image_id": np.tile(np.arange(n), 2),
        "mi_max_a": rng.random(2 * n), "mi_max_c": rng.random(2 * n) + 0.2,
    })  # fmt: skip
    comp["winner"] = np.where(comp.mi_max_a > comp.mi_max_c, "a", "c")
    w = stats.winner_shares(comp, n_boot=500)
    assert list(w.columns) == ["case", "wins", "share", "ci_low", "ci_high"]
    assert w.wins.sum() == 2 * n and w.share.sum() == pytest.approx(1.0)
    assert (w.ci_low <= w.share).all() and (w.share <= w.ci_high).all()
    assert (w.ci_high - w.ci_low < 0.2).all()
    # a case that never wins: share 0, interval [0, 0]
    comp["mi_max_b"] = -1.0
    w = stats.winner_shares(comp[["seed", "image_id", "mi_max_a", "mi_max_b", "mi_max_c", "winner"]], n_boot=100)
    assert w.set_index("case").loc["b", ["wins", "share", "ci_low", "ci_high"]].tolist() == [0, 0, 0, 0]


def make_job(sweep, case, values, seed=0):
    overrides = [f"case={case}", "dataset=samples", f"seed={seed}"]
    d = sweep / ",".join(overrides)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    v = np.asarray(values, dtype=float)
    pd.DataFrame({
        "image_id": range(len(v)), "label": "x", "mi_mean": v / 2, "mi_max": v, "best_map": 0,
        "mi_null_mean": 0.02, "mi_mean_init": v / 8, "mi_max_init": v / 4,
    }).to_csv(d / "mi_per_image.csv", index=False)  # fmt: skip
    (d / "summary.json").write_text(json.dumps({"case": case, "seed": seed}))


def test_write_stats_from_job_files(tmp_path):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        for case, mu in (("a", 0.3), ("b", 0.2), ("c", 0.6)):
            make_job(tmp_path, case, mu + rng.normal(0, 0.05, 40), seed)
    jobs = find_jobs(tmp_path)
    verdict = stats.write_stats(tmp_path, jobs)
    assert verdict.startswith("The study's ranking holds at 95%")
    s = pd.read_csv(tmp_path / "stats.csv")
    assert list(s.columns) == stats.STATS_COLUMNS and len(s) == 3 * 4
    assert (s.n_seeds == 2).all() and (s.n_images == 40).all()
    p = pd.read_csv(tmp_path / "pairwise.csv")
    assert list(p.columns) == stats.PAIRWISE_COLUMNS and len(p) == 2 * 3
    # the winners table of compare, with intervals
    w = stats.winner_shares(comparison(jobs), n_boot=200)
    assert w.case.tolist() == ["a", "b", "c"] and w.set_index("case").loc["c", "share"] == 1.0
