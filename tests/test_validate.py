"""`infomax validate`: the estimator scorecard against known MI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infomax_cli import cli
from infomax_cli.mi import validate as V


@pytest.mark.slow
def test_quick_run_writes_the_table_and_the_plot(tmp_path, capsys):
    out = tmp_path / "v"
    assert cli.main(["validate", "--out", str(out), "--quick"]) == 0
    df = pd.read_csv(out / "validation.csv")
    assert list(df.columns) == V.COLUMNS
    assert set(df.task) == {t[0] for t in V.TASKS}
    assert set(zip(df.estimator, df.options)) == {(e, o) for e, o, _ in V.ESTIMATORS}
    assert set(df.n) == {1024}
    assert set(df[df.task == "identity"].estimator) == {
        "histogram"
    }  # infinite for KSG and GCMI: not scored
    assert np.allclose(df.bias, df["mean"] - df.truth, atol=1e-5)
    assert (out / "validation.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir()) == [
        "validation.csv",
        "validation.png",
    ]  # no temp files left
    assert "gaussian_rho=0.9" in capsys.readouterr().out


def test_truths_and_scores():
    df = V.run_validation([400], seeds=2)
    truth = dict(zip(df.task, df.truth))
    assert truth["gaussian_rho=0.75"] == pytest.approx(0.4133, abs=1e-4)
    assert truth["uniform_eps=0.1"] == pytest.approx(1.7094, abs=1e-4)
    assert truth["uniform_eps=0.75"] == pytest.approx(1 / 3)
    assert truth["monotone_rho=0.75"] == truth["gaussian_rho=0.75"]
    ident = df[df.task == "identity"].set_index("options")
    # I(X; X) is the binned entropy
    assert ident.loc["bins=20", "bias"] == pytest.approx(0, abs=1e-5)
    assert ident.loc["bins=20 quantile", "truth"] == pytest.approx(math.log(20), abs=1e-3)
    gcmi = df[(df.estimator == "gcmi") & df.task.str.startswith("gaussian")]
    assert gcmi.bias.abs().max() < 0.05


def test_binned_entropy():
    x = np.random.default_rng(0).standard_normal(1000)
    assert V.binned_entropy(x, 10, "quantile") == pytest.approx(math.log(10))
    p = np.histogram(x, 7)[0] / 1000
    assert V.binned_entropy(x, 7, "width") == pytest.approx(-(p[p > 0] * np.log(p[p > 0])).sum())


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--seeds", "x"], ["--bogus"]])
def test_bad_arguments_are_a_usage_error(argv, tmp_path, capsys):
    assert cli.main(["validate", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("infomax validate:") and "\n" not in err
    assert not any(tmp_path.iterdir())
