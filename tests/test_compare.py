"""A sweep's comparison from job directories' files alone (synthetic jobs: no training)."""

import json
import logging

import pandas as pd
import pytest
import yaml
from fake_sweep import write_job
from hydra.core.override_parser.overrides_parser import OverridesParser

from infomax_cli.analysis.compare import compare
from infomax_cli.errors import ConfigError


def make_job(sweep, case, mi_max, seed=0, finished=True, extra=("dataset=samples",)):
    """A finished job (format 2) named by its sorted overrides, the seed only when not 0; each image
    its own unit (group), all labelled chelsea."""
    overrides = sorted([f"case={case}", *extra] + ([f"seed={seed}"] if seed else []))
    n = len(mi_max)
    return write_job(
        sweep,
        case,
        mi_max,
        seed,
        labels=["chelsea"] * n,
        groups=[str(i) for i in range(n)],
        overrides=overrides,
        finished=finished,
    )


@pytest.mark.slow
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
    ]  # each image its own unit
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


@pytest.mark.slow
def test_seeds_get_their_own_rows(tmp_path, no_pictures):
    for seed in (0, 1):
        make_job(tmp_path, "a", [0.1, 0.2], seed=seed)
        make_job(tmp_path, "c", [0.3, 0.0 + seed], seed=seed)
    comp = pd.read_csv(tmp_path / "comparison.csv") if compare(tmp_path) else None
    assert comp.columns[0] == "seed" and len(comp) == 4
    assert comp["winner"].tolist() == ["c", "a", "c", "c"]


@pytest.mark.slow
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
    from infomax_cli.errors import sweep_status

    assert sweep_status([]) == 0
    assert sweep_status([2, 2]) == 2  # every job rejected its config
    assert sweep_status([2, 1]) == 1  # a runtime failure outranks a config error
    assert sweep_status([143, 1]) == 1
    assert sweep_status([2, 140]) == 140  # stopped by a signal: resumable


def _truncate(d):
    t = d / "mi_per_image.csv"
    t.write_text("".join(t.read_text().splitlines(keepends=True)[:-2]))


def _nan(d):
    t = pd.read_csv(d / "mi_per_image.csv")
    t.loc[1, "mi_max"] = float("nan")
    t.to_csv(d / "mi_per_image.csv", index=False)


DAMAGES = {
    "truncated table": (_truncate, "mi_per_image.csv has 3 rows but summary.json says n_images=5"),
    "NaN": (_nan, "mi_per_image.csv has 1 NaN or non-numeric value(s) in mi_max"),
    "missing table": (lambda d: (d / "mi_per_image.csv").unlink(), "mi_per_image.csv is missing"),
    "empty table": (lambda d: (d / "mi_per_map.csv").write_text(""), "mi_per_map.csv is empty"),
    "wrong columns": (
        lambda d: (d / "loss.csv").write_text("a,b\n1,2\n"),
        "loss.csv lacks the column(s) step, loss, local, global, prior",
    ),
    "random bytes": (
        lambda d: (d / "mi_per_image.csv").write_bytes(bytes(range(256)) * 8),
        "mi_per_image.csv ",
    ),
    "truncated summary": (
        lambda d: (d / "summary.json").write_text('{"case": "b", "seed'),
        "summary.json is damaged",
    ),
}


@pytest.mark.slow
def test_one_null_partner_leaves_mi_null_sd_empty_and_that_is_no_damage(tmp_path):
    """measure.null_partners=1: one partner has no spread, so mi_null_sd is left empty, as the contract
    allows; compare takes the job (it once called every such job damaged). Text there is damage."""
    from fake_sweep import write_job

    jobs = [write_job(tmp_path, case, [0.1, 0.5, 0.3]) for case in ("a", "c")]
    for job in jobs:
        t = pd.read_csv(job / "mi_per_map.csv")
        t["mi_null_sd"] = float("nan")
        t.to_csv(job / "mi_per_map.csv", index=False)
    sweep, _ = compare(tmp_path)
    assert sorted(j.path for j in sweep.jobs) == sorted(jobs) and not sweep.damaged
    t = pd.read_csv(jobs[0] / "mi_per_map.csv")
    t["mi_null_sd"] = t["mi_null_sd"].astype(object)
    t.loc[0, "mi_null_sd"] = "abc"
    t.to_csv(jobs[0] / "mi_per_map.csv", index=False)
    sweep, _ = compare(tmp_path)
    assert [j.path for j in sweep.damaged] == [jobs[0]]
    assert "1 NaN or non-numeric value(s) in mi_null_sd" in sweep.damaged[0].problem


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.slow
def test_a_damaged_job_is_left_out_with_one_line_naming_the_file(
    tmp_path, caplog, damage, no_pictures
):
    """A damaged table used to be used silently (winners taken over the other cases) or to end in a
    traceback; now the job is left out, as an unfinished one is, with one line naming the file."""
    from fake_sweep import write_job

    for case, mi in (
        ("a", [0.1, 0.9, 0.3, 0.2, 0.5]),
        ("b", [0.9] * 5),
        ("c", [0.5, 0.2, 0.8, 0.4, 0.1]),
    ):
        job = write_job(tmp_path, case, mi)
    damaged = next(tmp_path.glob("case=b,*"))
    fix, needle = DAMAGES[damage]
    fix(damaged)
    with caplog.at_level(logging.WARNING, logger="infomax"):
        sweep, _ = compare(tmp_path)
    assert [j.path for j in sweep.damaged] == [damaged] and job in [j.path for j in sweep.jobs]
    (line,) = [r.message for r in caplog.records if "damaged" in r.message]
    assert f"job {damaged.name} is damaged (left out): {damaged}" in line and needle in line, line
    comp = pd.read_csv(tmp_path / "comparison.csv")
    assert "mi_max_b" not in comp.columns and comp["winner"].tolist() == ["c", "a", "c", "c", "a"]
    assert "Left out, damaged: case=b," in (tmp_path / "report.html").read_text()


@pytest.mark.slow
def test_compare_and_report_on_damaged_files_exit_in_one_line(tmp_path, capsys, caplog):
    """The command line in this process (cli.main): a damaged job is a warning, a damaged run one line
    (exit 1), a run directory given to compare a usage error (exit 2, it used to exit 1)."""
    from fake_sweep import write_job

    from infomax_cli import cli

    run = write_job(tmp_path / "sweep", "a", [0.1, 0.2])
    other = write_job(tmp_path / "sweep", "c", [0.3, 0.1])
    (run / "summary.json").write_text("{")
    with caplog.at_level(logging.WARNING, logger="infomax"):
        assert cli.main(["compare", str(tmp_path / "sweep")]) == 0
    assert f"{run / 'summary.json'} is damaged" in caplog.text
    capsys.readouterr()
    assert cli.main(["report", str(run)]) == 1  # a damaged run: nothing to report
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{run / 'summary.json'} is damaged" in err, err
    assert cli.main(["compare", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a run directory" in err, err


@pytest.mark.slow
def test_a_sweep_job_stopped_by_its_data_before_writing_is_named(tmp_path, caplog):
    """A sweep job whose config the data cannot serve (more images asked for than there are) stops
    before its first write: its directory holds only failed.json, and the sweep still names it (and
    counts it in its exit status)."""
    from infomax_cli.errors import sweep_status

    make_job(tmp_path, "a", [0.1, 0.2])
    stopped = tmp_path / "case=c,dataset.n_images=100000"
    stopped.mkdir()
    message = "dataset.n_images=100000 is larger than samples (20 images)"
    (stopped / "failed.json").write_text(json.dumps({"exit_code": 2, "message": message}))
    with caplog.at_level(logging.WARNING, logger="infomax"):
        sweep, _ = compare(tmp_path)
    assert [j.path for j in sweep.unfinished] == [stopped]
    assert f"job {stopped.name} did not finish (left out): {message}" in caplog.text
    assert sweep_status([2]) == 2


@pytest.mark.slow
def test_the_printed_command_adds_seeds_into_the_sweep_and_keeps_its_finished_jobs(
    tmp_path, no_pictures
):
    """A two-seed sweep whose claims need two more seeds (c and a the same network, as in the study):
    compare prints the `infomax run -m` line that adds them into the same directory; running that line
    trains only the new seeds' jobs, leaves the finished ones as they were, and its comparison covers
    every job (claims over 4 seeds). The two-seed sweep is written as finished jobs (no training)."""
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
    assert (found.claims.seeds_needed == 4).all(), found.claims[["claim", "seeds_needed"]]
    line = next(a for a in found.advice if "infomax run -m" in a)
    args = shlex.split(line[line.index("infomax run -m") :])[1:]
    assert "seed=2,3" in args and f"hydra.sweep.dir={tmp_path.resolve()}" in args
    done = infomax(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(p.read_bytes() == data for p, data in before.items())  # the finished jobs, untouched
    assert len(list(tmp_path.glob("*/summary.json"))) == 8
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert (claims.n_seeds == 4).all()
    assert sorted(pd.read_csv(tmp_path / "comparison.csv").seed.unique()) == [0, 1, 2, 3]


def test_the_seeds_to_add_are_one_short_override_hydra_sweeps():
    """A command that adds 232 seeds is one line: Hydra's range(a,b) (stop excluded) for a run of
    consecutive seeds, the plain list for a few."""
    from infomax_cli.analysis.sweep import seed_override

    assert seed_override([2]) == "seed=2"
    assert seed_override([5, 6, 7]) == "seed=5,6,7"
    assert seed_override(list(range(5, 237))) == "seed=range(5,237)"
    assert seed_override([1, 2, 3, 4]) == "seed=1,2,3,4"
    assert seed_override([1, 3, 5, 7, 9, 11, 13, 15, 17]) == "seed=1,3,5,7,9,11,13,15,17"
    parsed = OverridesParser.create().parse_override("seed=range(5,237)")
    assert list(parsed.sweep_iterator()) == list(range(5, 237))


@pytest.mark.slow
def test_the_printed_command_first_finishes_the_seed_a_damaged_job_left_out(
    tmp_path, capsys, no_pictures
):
    """Seeds 0-2 of case=a,c (as jobs named the way Hydra names them); seed 0's c job cut short: every
    table uses seeds 1 and 2, and the command compare prints runs seed 0 again: the damaged job is
    trained again (with a warning), the intact ones are skipped untouched, and the comparison at its
    end covers all three seeds."""
    import shlex

    import numpy as np
    from conftest import TINY, infomax

    from infomax_cli import cli, config

    excluded = set(config.name_excluded_keys())
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.9, 12)
    for seed in range(3):
        for case in "ac":
            task = [f"case={case}", *TINY, f"seed={seed}"]
            name = ",".join(sorted(o for o in task if o.split("=")[0] not in excluded))
            values = base + rng.normal(0, 0.05, 12)
            write_job(tmp_path, case, values, seed, overrides=task, directory=name)
    multirun_task = ["case=a,c", *TINY, "seed=0,1,2"]
    (tmp_path / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"hydra": [], "task": multirun_task}}})
    )
    damaged = next(tmp_path.glob("case=c,*seed=0*"))
    table = damaged / "mi_per_image.csv"
    table.write_text("".join(table.read_text().splitlines(keepends=True)[:-4]))
    intact = {
        p: p.read_bytes()
        for p in tmp_path.glob("*/*.*")
        if p.is_file() and damaged not in p.parents
    }
    assert cli.main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (pd.read_csv(tmp_path / "claims.csv").n_seeds == 2).all()
    line = next(x for x in out.splitlines() if "infomax run -m" in x and "seed=0" in x)
    args = shlex.split(line[line.index("infomax run -m") :])[1:]
    # the seeds the line runs: seed 0 first (finished again), then any the claims ask to add
    ran = [int(s) for s in next(a for a in args if a.startswith("seed=")).split("=")[1].split(",")]
    assert ran[0] == 0 and all(s > 2 for s in ran[1:])
    done = infomax(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "holds a damaged run" in done.stdout + done.stderr
    assert all(p.read_bytes() == data for p, data in intact.items())  # the intact jobs, untouched
    assert len(pd.read_csv(damaged / "mi_per_image.csv")) == 12
    every = sorted({1, 2, *ran})
    assert (pd.read_csv(tmp_path / "claims.csv").n_seeds == len(every)).all()
    assert sorted(pd.read_csv(tmp_path / "comparison.csv").seed.unique()) == every
