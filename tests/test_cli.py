"""The real command line (in this process, or in a fresh one where that is the point): a run, a
four-case sweep, clear errors without tracebacks, and the commands that train nothing load no torch."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, TINY, infomax

from infomax_cli import config, rundir

RUN_FILES = [
    "loss.csv",
    "loss.png",
    "mi_per_map.csv",
    "mi_per_image.csv",
    "summary.json",
    "encoder.pt",
]
SUMMARY_KEYS = {
    "case",
    "dataset",
    "n_images",
    "bins",
    "align",
    "seed",
    "steps",
    "mi_mean",
    "mi_max",
    "train_seconds",
    "measure_seconds",
    "device",
    "mi_mean_init",
    "mi_max_init",
    "mi_null_mean",
    "mi_max_above_null",
    "mi_mean_above_null",
    "study_examples",
}


def check_run_dir(d, case, n_images=12):
    for name in RUN_FILES:
        assert (d / name).is_file(), name
    summary = json.loads((d / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["case"] == case and summary["n_images"] == n_images and summary["bins"] == 20
    loss = pd.read_csv(d / "loss.csv")
    assert list(loss.columns) == rundir.LOSS_COLUMNS
    assert loss["step"].tolist() == [1, 2]
    # each MI term's own estimate: 2 ln 2 - loss for the default JSD bound
    assert loss["local_mi"].to_numpy() == pytest.approx(
        2 * 0.6931471805599453 - loss["local"].to_numpy(), abs=1e-5
    )
    assert loss["global_mi"].to_numpy() == pytest.approx(
        2 * 0.6931471805599453 - loss["global"].to_numpy(), abs=1e-5
    )
    per_map = pd.read_csv(d / "mi_per_map.csv")
    assert list(per_map.columns) == rundir.MI_PER_MAP_COLUMNS
    assert list(per_map.columns[4:6]) == ["mi_null", "mi_null_sd"]  # the contract's order
    # the null: the mean over 4 partners (other photographs), their spread kept
    assert (per_map["mi_null_sd"] > 0).all() and per_map["mi_null"].notna().all()
    assert len(per_map) == n_images * 32 and sorted(per_map["map"].unique()) == list(range(32))
    assert (per_map["mi"] >= -1e-9).all()
    per_image = pd.read_csv(d / "mi_per_image.csv")
    assert list(per_image.columns[:13]) == rundir.MI_PER_IMAGE_COLUMNS
    assert per_image["image_id"].tolist() == list(range(n_images))
    assert (per_image["group"] == per_image["label"]).all()  # samples: the photograph is the unit
    assert per_image["mi_max_above_null"].to_numpy() == pytest.approx(
        (per_image.mi_max - per_image.mi_null_max).to_numpy(), abs=1e-5
    )
    assert summary["align"] == "geometry" and {"mi_max_resize", "mi_max_crop"} <= set(
        per_image.columns
    )
    # the other alignments measured, named in the summary (no parsing of column suffixes)
    assert summary["alt_aligns"] == ["resize", "crop"]
    # where the job's time went, phase by phase, none counted twice: training's and measurement's own
    # seconds are their phases plus the parts split off them (the information plane, the nulls)
    phases = summary["phase_seconds"]
    assert list(phases) == [
        "start",
        "prepare",
        "measure_init",
        "train",
        "infoplane",
        "measure",
        "null_partners",
        "tables",
        "pictures",
        "logger",
        "report",
    ]
    assert min(phases.values()) >= 0 and phases["null_partners"] > 0 and phases["infoplane"] > 0
    train, measure = summary["train_seconds"], summary["measure_seconds"]
    assert phases["train"] + phases["infoplane"] == pytest.approx(train, abs=0.02)
    assert phases["measure"] + phases["null_partners"] == pytest.approx(measure, abs=0.02)
    assert phases["measure_init"] == pytest.approx(summary["measure_init_seconds"], abs=0.02)
    assert summary["study_examples"] == [0, 1]  # the cat and the horse
    # the per-image table is the per-map table summarised
    g = per_map.groupby("image_id")["mi"]
    assert per_image["mi_max"].to_numpy() == pytest.approx(g.max().to_numpy(), abs=1e-5)
    assert per_image["mi_mean"].to_numpy() == pytest.approx(g.mean().to_numpy(), abs=1e-5)
    assert summary["mi_mean"] == pytest.approx(per_image["mi_mean"].mean(), abs=1e-5)
    plane = pd.read_csv(d / "infoplane.csv")
    assert list(plane.columns) == rundir.INFOPLANE_COLUMNS and sorted(plane["layer"].unique()) == [
        1,
        2,
        3,
        4,
    ]
    assert sorted(plane["step"].unique()) == [
        0
    ]  # every 5 steps: only before training in a 2-step run
    assert (d / "report.html").is_file() and (d / "infoplane.png").is_file()
    pictures = sorted(p.name for p in (d / "features").glob("*.png"))
    assert pictures == [
        "00000_chelsea.png",
        "00001_horse.png",
    ]  # the cat and the horse of the study
    # summary.json is written last: its presence means every other file is there
    written = {
        p.relative_to(d): p.stat().st_mtime_ns
        for p in d.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.name != "infomax.log"
    }
    assert max(written, key=written.get).name == "summary.json", sorted(written, key=written.get)[
        -3:
    ]
    assert not (d / "checkpoint.pt").exists() and not (d / "failed.json").exists()


@pytest.mark.slow
def test_one_run_writes_every_contract_file(tmp_path):
    out = tmp_path / "run"
    r = infomax("run", "case=a", *TINY, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    check_run_dir(out, "a")
    assert "case a: mean MI" in r.stdout  # the one-line summary
    assert "mean MI" in (out / "infomax.log").read_text()
    # finished work is kept: the same command skips it
    r2 = infomax("run", "case=a", *TINY, f"hydra.run.dir={out}")
    assert r2.returncode == 0 and "skipped" in r2.stdout


@pytest.mark.slow
def test_four_case_sweep_writes_the_comparison(tiny_sweep, tmp_path):
    """`infomax run -m case=a,b,c,d` (the session's shared tiny sweep, conftest.TINY_SWEEP): every
    job's directory, the comparison files and what the end of the multirun prints."""
    shared, r = tiny_sweep
    sweep = tmp_path / "sweep"
    shutil.copytree(shared, sweep)  # compare rewrites it below
    assert r.returncode == 0, r.stderr
    named = [o for o in TINY if o.split("=")[0] not in config.name_excluded_keys()]
    for case in "abcd":
        job = sweep / f"case={case},{','.join(sorted(named))}"  # measure.batch_size, device: not
        assert job.is_dir(), sorted(p.name for p in sweep.iterdir())
        check_run_dir(job, case)
    for name in [
        "comparison.csv",
        "winners.csv",
        "winners.png",
        "loss_curves.png",
        "stats.csv",
        "pairwise.csv",
        "claims.csv",
        "report.html",
    ]:
        assert (sweep / name).is_file(), name
    comp = pd.read_csv(sweep / "comparison.csv")
    assert list(comp.columns) == [
        "image_id",
        "label",
        "group",
        *[f"mi_max_{c}" for c in "abcd"],
        *[f"mi_mean_{c}" for c in "abcd"],
        "winner",
    ]
    assert len(comp) == 12
    # the highest max-MI wins, with every case within the MI margin (0.02 nats) of it: they split it
    values = comp[[f"mi_max_{c}" for c in "abcd"]].to_numpy()
    near = values >= values.max(1, keepdims=True) - 0.02
    assert comp["winner"].tolist() == ["=".join(np.array(list("abcd"))[row]) for row in near]
    wins = pd.read_csv(sweep / "winners.csv")
    assert wins["case"].tolist() == list("abcd") and wins["wins"].sum() == pytest.approx(12)
    assert wins["share"].sum() == pytest.approx(1.0)
    assert "highest max MI" in r.stdout  # the winner table at the end of the multirun
    out = " ".join(r.stdout.split())
    # then one line per claim, never a one-seed verdict, and where the sentences and notes are
    assert "the study's claims" in out and "holds at 95%" not in out
    lines = r.stdout.rstrip().splitlines()
    assert (
        lines[-1]
        == f"each claim's sentence and notes: {shared}/claims.csv and {shared}/report.html"
    )
    # before it, the command that adds seeds 1-4 into this sweep (one seed: nothing is established)
    assert "With one seed no claim is established" in lines[-2]
    assert lines[-2].endswith(f"seed=1,2,3,4 hydra.sweep.dir={shared.resolve()}")
    # the claims, then which pixels they compared (the study's four: the same 88 x 88 for each)
    assert lines[-4] == "pixels compared: the same for every case: image pixels 4..91 (88 × 88)"
    assert [line.split()[0] for line in lines[-9:-4]] == [
        "loss_curves",
        "example_images",
        "winner_share",
        "mean_max_mi",
        "mean_mi",
    ]
    assert all("not established" in line for line in lines[-9:-4])
    assert (pd.read_csv(sweep / "claims.csv")["status"] == "not established").all()
    stats = pd.read_csv(sweep / "stats.csv")
    assert list(stats.columns) == rundir.STATS_COLUMNS
    assert (
        set(stats["case"]) == set("abcd")
        and (stats["n_seeds"] == 1).all()
        and (stats["n_images"] == 12).all()
    )
    assert ((stats["ci_low"] <= stats["mean"]) & (stats["mean"] <= stats["ci_high"])).all()
    # `infomax compare` rebuilds the same table from the files
    before = (sweep / "comparison.csv").read_text()
    (sweep / "comparison.csv").unlink()
    r = infomax("compare", str(sweep))
    assert r.returncode == 0, r.stderr
    assert (sweep / "comparison.csv").read_text() == before


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "case=x"], "Could not find 'case/x'"),
        (["run", "train.steps=abc"], "train.steps"),
        (["run", "measure.align=diagonal"], "measure.align"),
        (["run", "dataset=imagenet"], "dataset/imagenet"),
        (["run", "dataset=samples", "train.batch_size=1"], "train.batch_size"),
        (["run", "dataset=samples", "measure.bins=1"], "measure.bins"),
        (["run", "dataset=samples", "train.lr=0"], "train.lr"),
        (["run", "dataset=samples", "train.steps=0"], "train.steps"),
        (["run", "dataset=samples", "dataset.n_images=100000"], "dataset.n_images"),
        (["run", "train.foo=1"], "train.foo: Key 'foo' not in 'TrainConfig'"),
        (["run", "dataset=samples", "+train.stepz=3"], "train.stepz is not a key of the config"),
        (
            ["run", "dataset=samples", "train.compile_mode=fast"],
            "train.compile_mode=fast is not allowed",
        ),
        (
            ["run", "-m", "hydra/launcher=nope"],
            "choose one of basic, joblib, slurm, submitit_local",
        ),
        (
            ["run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=lots"],
            "hydra.launcher.n_jobs",
        ),
        (["run", "case=[a"], "no viable alternative"),
        (["frobnicate"], "unknown command"),
        (["compare"], "usage"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needle):
    extra = [f"hydra.run.dir={tmp_path / 'run'}"] if args[0] == "run" else []
    r = infomax(*args, *extra)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()  # a configuration error writes nothing


def test_stl10_missing_names_the_folder_and_suggests_samples(tmp_path):
    r = infomax(
        "run",
        "dataset=stl10",
        f"dataset.root={tmp_path / 'nowhere'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert r.returncode == 2
    assert str(tmp_path / "nowhere") in r.stderr and "dataset=samples" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "override,expected",
    [
        ("dataset.root=~/photos", "{home}/photos"),
        ("dataset.root='~/photos'", "{home}/photos"),
        ("hydra.run.dir=$RUNS/one", "/scratch/runs/one"),
        ("hydra.sweep.dir=${RUNS}/sweep", "/scratch/runs/sweep"),
        ("+dataset.root=~", "{home}"),
        (
            "dataset.root=$UNSET_IN_THIS_TEST/x",
            "$UNSET_IN_THIS_TEST/x",
        ),  # as written: no such variable
        ("hydra.run.dir=outputs/${now:%H}", "outputs/${{now:%H}}"),  # Hydra's own interpolation
        ("case.name=~x", "~x"),  # not a path key: Hydra's grammar decides
    ],
)
def test_path_overrides_expand_tilde_and_variables_before_hydra_reads_them(
    override, expected, monkeypatch
):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from infomax_cli.app import expand_path_overrides

    home = "/home/new user/ünï"  # a space and letters Hydra's grammar takes only when quoted
    monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("RUNS", "/scratch/runs")
    monkeypatch.delenv("UNSET_IN_THIS_TEST", raising=False)
    (rewritten,) = expand_path_overrides([override])
    if override.startswith("case."):
        assert rewritten == override
        return
    value = OverridesParser.create().parse_override(rewritten).value()
    assert str(value) == expected.format(home=home)


def test_a_sweep_over_two_roots_expands_each(monkeypatch):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from infomax_cli.app import expand_path_overrides

    monkeypatch.setenv("HOME", "/home/me")
    (rewritten,) = expand_path_overrides(["dataset.root=~/cats,~/dogs"])
    sweep = OverridesParser.create().parse_override(rewritten).value()
    assert [str(v) for v in sweep.list] == ["/home/me/cats", "/home/me/dogs"]


IMPORTS = """
import sys
from infomax_cli import cli
code = cli.main(sys.argv[1:])
print("torch" in sys.modules, code)
"""


@pytest.mark.cli  # a fresh interpreter each
@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["compare", "SWEEP"], ["report", "SWEEP"]]
)
def test_commands_that_train_nothing_import_no_torch(args, tmp_path):
    """`infomax --help` took 2.6-4 s, about 2 s of it importing torch through the config: the help,
    run --help, compare and report (on a finished sweep) import no torch, in a fresh interpreter."""
    from fake_sweep import write_sweep

    sweep = write_sweep(tmp_path / "sweep", {(c, 0): [0.5, 0.6, 0.7, 0.8] for c in "ac"})
    argv = [str(sweep) if a == "SWEEP" else a for a in args]
    r = subprocess.run(
        [sys.executable, "-c", IMPORTS, *argv], capture_output=True, text=True, timeout=120
    )
    assert r.stdout.split()[-2:] == ["False", "0"], r.stdout[-2000:] + r.stderr[-2000:]
    if args[0] in ("compare", "report"):
        assert (sweep / rundir.REPORT).is_file()


def test_help_and_cfg_job_still_work():
    r = infomax("run", "--cfg", "job", "case=b")
    assert r.returncode == 0 and "name: b" in r.stdout
    r = infomax("run", "--help")
    assert (
        r.returncode == 0
        and "case            a, b, c*, custom, d, dilated, residual, strided" in r.stdout
    )


def test_run_help_lists_the_users_groups_and_every_key_with_its_type_and_value(capsys):
    """What every config error promises: `infomax run --help` lists every key with its type; the
    values are those the overrides given compose to; Hydra's schema entries are not options."""
    from infomax_cli import cli, config
    from infomax_cli.help import schema_keys

    assert cli.main(["run", "--help", "case=a", "train.steps=7", "dataset=folder"]) == 0
    out = capsys.readouterr().out
    assert "schema" not in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    assert rows["case"] == ["a*,", "b,", "c,", "custom,", "d,", "dilated,", "residual,", "strided"]
    assert rows["dataset"] == ["folder*,", "samples,", "stl10,", "torchvision"]
    assert rows["train"] == ["learn,", "study*"]
    keys = schema_keys(config.Config)
    assert len(keys) > 40 and all(key in rows for key, _ in keys)
    assert rows["train.steps"] == ["int", "7"]
    assert rows["train.lr"] == ["float", "0.0001"]
    assert rows["case.layers"] == ["list", "of", "str", "[conv,conv,conv,conv]"]
    assert rows["case.padding"] == ["int", "0"]  # case a: valid convolutions
    assert rows["dataset.kind"] == ["samples|stl10|folder|torchvision", "folder"]
    assert rows["measure.align"] == ["geometry|resize|crop", "geometry"]
    assert rows["measure.alt_aligns"] == ["list", "of", "geometry|resize|crop", "[resize,crop]"]
    assert rows["device.threads"] == ["int", "or", "null", "null"]
    assert rows["overwrite"] == ["bool", "false"]


def test_run_help_with_a_bad_override_is_one_config_error(capsys):
    from infomax_cli import cli

    assert cli.main(["run", "--help", "train.steps=many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.steps" in err[0], err


@pytest.mark.slow
def test_a_non_editable_install_finds_its_config(tmp_path):
    """`pip install .` (not -e) carries conf/ inside the package: the CLI composes the presets from there."""
    source, wheel_dir, target = tmp_path / "source", tmp_path / "wheel", tmp_path / "site"
    # built from a copy: the build writes build/ and *.egg-info into its tree
    for name in ("infomax_cli", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheel_dir), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from infomax_cli import config; print(config.CONF_DIR, (config.CONF_DIR / 'config.yaml').is_file())",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.stdout.split() == [str(target / "infomax_cli" / "conf"), "True"], r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "infomax_cli.cli", "run", "case=d", "--cfg", "job"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0 and "- deconv" in r.stdout and "name: d" in r.stdout, r.stderr


@pytest.mark.parametrize("args", [["--cfg", "job", "-m", "case=a,b"], ["-m", "--info", "case=a"]])
def test_two_modes_at_once_are_one_usage_error(args, capsys):
    """`--cfg job` with `-m`: Hydra's bare ValueError used to read as a sweep job that stopped (exit 1)."""
    from infomax_cli import cli

    assert cli.main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be combined" in err[0] and "--multirun" in err[0], err
