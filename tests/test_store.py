"""The one door for reading a run or sweep directory back (infomax_cli/store): only regular files inside
the directory, each within its size bound; YAML with bounded aliases; PNG signatures; the format version,
its one migration and its refusals; the one list of keys that do not change results."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from fake_sweep import write_job

from infomax_cli import config, dirlock, rundir, store
from infomax_cli.analysis import sweep
from infomax_cli.errors import ConfigError, Damaged, printable
from infomax_cli.store import files


def test_a_link_inside_the_directory_is_read_and_one_leaving_it_is_refused(tmp_path):
    root = tmp_path / "run"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.json").write_text('{"x": 1}')
    (root / "inside.json").symlink_to(root / "sub" / "a.json")
    assert files.read_json(root, root / "inside.json") == {"x": 1}
    (tmp_path / "secret.json").write_text('{"token": 2}')
    (root / "outside.json").symlink_to(tmp_path / "secret.json")
    with pytest.raises(
        Damaged, match=r"outside.json is a link to .*secret.json, outside .*: not read"
    ):
        files.read_json(root, root / "outside.json")
    (root / "up.json").symlink_to("../secret.json")  # a relative link out, too
    with pytest.raises(Damaged, match="outside"):
        files.read_json(root, root / "up.json")


def test_a_fifo_a_folder_and_a_missing_file_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it for reading would wait for a writer
    with pytest.raises(Damaged, match=r"pipe.png is not a regular file \(a FIFO or device\)"):
        files.read_png(tmp_path, tmp_path / "pipe.png")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(Damaged, match="folder.csv is a folder"):
        files.read_csv(tmp_path, tmp_path / "folder.csv")
    with pytest.raises(Damaged, match="nothing.json is missing"):
        files.read_json(tmp_path, tmp_path / "nothing.json")


def test_each_kind_of_file_has_a_size_bound_checked_before_reading(tmp_path, monkeypatch):
    (tmp_path / "summary.json").write_text(json.dumps({"x": "y" * 5000}))
    monkeypatch.setitem(files.LIMITS, "json", 1024)
    with pytest.raises(Damaged, match=r"holds 5009 bytes, more than the 1024 bytes infomax reads"):
        files.read_json(tmp_path, tmp_path / "summary.json")


def test_a_picture_is_embedded_only_with_the_png_signature(tmp_path):
    (tmp_path / "fake.png").write_text("<script>alert(1)</script>")
    with pytest.raises(Damaged, match="fake.png is not a PNG picture"):
        files.read_png(tmp_path, tmp_path / "fake.png")
    (tmp_path / "real.png").write_bytes(files.PNG_SIGNATURE + b"rest")
    assert files.read_png(tmp_path, tmp_path / "real.png").endswith(b"rest")


def test_an_archive_is_checked_decompressed_before_it_is_read(tmp_path, monkeypatch):
    with open(tmp_path / "examples.npz", "wb") as f:
        np.savez_compressed(f, big=np.zeros(1_000_000))  # 8 MB of zeros: a few kB on disk
    assert (tmp_path / "examples.npz").stat().st_size < 100_000
    monkeypatch.setitem(files.LIMITS, "npz", 2**20)
    with pytest.raises(Damaged, match="decompresses to 8 MiB, more than the 1 MiB"):
        files.read_npz(tmp_path, tmp_path / "examples.npz")


ALIASES = """
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
"""


def test_yaml_aliases_are_bounded_and_may_not_refer_to_themselves(tmp_path):
    path = tmp_path / "multirun.yaml"
    path.write_text(ALIASES.replace("\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]", ""))
    assert len(files.read_yaml(tmp_path, path)["d"]) == 10  # 1,111 nodes: plain data
    path.write_text(ALIASES)  # 111,111 nodes from 250 bytes
    with pytest.raises(Damaged, match="aliases expand to more than 100000 nodes"):
        files.read_yaml(tmp_path, path)
    path.write_text("a: &a [1, *a]\n")
    with pytest.raises(Damaged, match="refers to the node that holds it"):
        files.read_yaml(tmp_path, path)
    path.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(Damaged, match="not readable YAML"):
        files.read_yaml(tmp_path, path)


# ------------------------------------------------------------------------------ the format version
def test_format_1_is_migrated_in_one_place(tmp_path):
    """A run written before the format was versioned: no `format`, `alt_aligns` or `geometry` in its
    summary, no mi_null_sd (one partner): read as format 2, its other alignments from its own keys."""
    job_dir = write_job(
        tmp_path, "a", [0.5, 0.6, 0.7], aligns={"resize": [0.4, 0.5, 0.6]}, format=1
    )
    assert "format" not in json.loads((job_dir / "summary.json").read_text())
    job = store.Job.read(job_dir)
    assert job.problem is None and job.written_format == 1
    assert job.summary["format"] == 2 and job.summary["alt_aligns"] == ["resize"]
    assert job.summary["geometry"] == [] and job.damage() is None
    assert job.per_map["mi_null_sd"].isna().all()
    assert list(job.per_map.columns) == rundir.MI_PER_MAP_COLUMNS


@pytest.mark.parametrize(
    "value, words",
    [
        (3, "is format 3, newer than this infomax reads (format 2): update infomax"),
        ("2", "names format '2', not a format of infomax's: rerun the job with overwrite=true"),
    ],
)
def test_a_format_infomax_does_not_read_is_refused_in_one_line(tmp_path, value, words):
    job_dir = write_job(tmp_path, "a", [0.5, 0.6, 0.7], overrides=["case=a"])
    summary = json.loads((job_dir / "summary.json").read_text())
    (job_dir / "summary.json").write_text(json.dumps({**summary, "format": value}))
    with pytest.raises(store.FormatRefused) as e:
        store.read_summary(job_dir)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_summary_with_a_nan_or_a_key_of_the_wrong_type_is_damaged(tmp_path):
    job_dir = write_job(tmp_path, "a", [0.5, 0.6, 0.7], overrides=["case=a"])
    summary = json.loads((job_dir / "summary.json").read_text())
    (job_dir / "summary.json").write_text(json.dumps({**summary, "mi_max": float("nan")}))
    with pytest.raises(Damaged, match=r"mi_max is nan, not a number"):
        store.read_summary(job_dir)
    (job_dir / "summary.json").write_text(json.dumps({**summary, "seed": "zero"}))
    with pytest.raises(Damaged, match=r"seed is 'zero', not an integer"):
        store.read_summary(job_dir)


def test_a_sweep_of_a_newer_format_is_refused_in_one_line(tmp_path):
    write_job(tmp_path, "a", [0.5, 0.6, 0.7])
    (tmp_path / rundir.SWEEP_JSON).write_text(json.dumps({"format": 9}))
    with pytest.raises(Damaged, match="sweep.json is format 9, newer than this infomax reads"):
        sweep.load(tmp_path)


def test_infinite_numbers_and_text_in_a_table_are_damage(tmp_path):
    job_dir = write_job(tmp_path, "a", [0.5, 0.6, 0.7], overrides=["case=a"])
    t = pd.read_csv(job_dir / rundir.MI_PER_MAP)
    t.loc[2, "mi"] = float("inf")
    t.to_csv(job_dir / rundir.MI_PER_MAP, index=False)
    assert "1 NaN or non-numeric value(s) in mi" in store.Job.read(job_dir).damage()


# ----------------------------------------------------------------------- one list, names, bounds
def test_one_list_of_keys_that_do_not_change_results():
    """compare.margin.* needs no rerun: a rerun that changes only it is not refused (it was), and the
    same list leaves it (and train.checkpoint_every, which Hydra's list lacked) out of job names."""
    stored = {
        "seed": 0,
        "compare": {"margin": {"mean_mi": 0.02}},
        "train": {"checkpoint_every": 10},
    }
    current = {"seed": 0, "compare": {"margin": {"mean_mi": 0.5}}, "train": {"checkpoint_every": 3}}
    assert config.differing_keys(stored, current) == {}
    names = config.name_excluded_keys()
    assert {"compare.margin.mean_mi", "train.checkpoint_every", "device.threads"} <= set(names)
    assert "seed" not in names and "train.steps" not in names
    task = ["case=a", "compare.margin.mean_mi=0.5", "train.checkpoint_every=3", "train.steps=2"]
    hydra_name = ",".join(sorted(o for o in task if o.split("=")[0] not in names))
    assert config.job_dir_name(hydra_name, task, names) == "case=a,train.steps=2"


@pytest.mark.parametrize(
    "override", ["case.name=x/../../y", "+dataset.options.x=..", "dataset.name=a\x1b[2J"]
)
def test_sweep_overrides_that_name_a_directory_refuse_slashes_dots_and_control(override):
    from infomax_cli import jobstart

    with pytest.raises(ConfigError, match="becomes part of a directory's name"):
        jobstart.check_named(["case=a", override])
    jobstart.check_named(["case=a", "dataset.root=/data/photos", "overwrite=true"])  # not in names


def test_printable_removes_control_and_invisible_characters():
    assert printable("c\x1b[2J\x1b[Hall claims hold\r\x07") == "c[2J[Hall claims hold"
    assert printable("a\u202eb\u200bc\tkeep\nlines") == "abc\tkeep\nlines"


def test_sensitivity_rebuilds_built_in_cases_from_the_package_and_no_other_target(tmp_path):
    from infomax_cli import sensitivity

    job = store.Job(tmp_path, [], None, root=tmp_path)
    study = {"case": {"name": "a", "layers": ["conv"] * 4, "padding": 0}}
    assert sensitivity._case_node(job, study, ())["encoder"] is None
    beyond = {
        "case": {"name": "strided", "encoder": {"_target_": "infomax_cli.model.cases.Strided"}}
    }
    assert sensitivity._case_node(job, beyond, ()) == beyond["case"]
    forged = {"case": {"name": "strided", "encoder": {"_target_": "os.system", "command": "true"}}}
    with pytest.raises(ConfigError, match="--encoder os.system"):
        sensitivity._case_node(job, forged, ())
    assert sensitivity._case_node(job, forged, ("os.system",))["encoder"]["_target_"] == "os.system"


@pytest.mark.parametrize(
    "spec, words",
    [
        (
            {"_target_": "os.system", "command": "true"},
            "is a builtin_function_or_method, not a torch",
        ),
        (
            {"_target_": "torch.nn.Identity", "x": {"_target_": "builtins.open", "file": "f"}},
            r"case.encoder.x._target_ is not allowed",
        ),
        ({"_target_": "torch.nn.Identity", "l": [{"_partial_": True}]}, r"x?l\[0\]._partial_"),
    ],
)
def test_a_module_target_is_checked_before_anything_is_called(spec, words, tmp_path):
    from infomax_cli.model.probe import instantiate_module

    with pytest.raises(ConfigError, match=words):
        instantiate_module(spec)


def test_nothing_is_written_through_a_link_a_received_directory_holds(tmp_path):
    """A received run directory is written into when it is resumed or extended: its lock, its .hydra/
    and features/ folders and its log are never followed out of it (the lock would truncate the file it
    points at)."""
    import logging

    from infomax_cli.errors import RunError

    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    precious = outside / "bashrc"
    precious.write_text("precious\n")
    (run / rundir.LOCK).symlink_to(precious)
    with pytest.raises(RunError, match=r"\.infomax\.lock is a link"):
        with dirlock.lock(run):
            pass
    (run / ".hydra").symlink_to(outside)
    with pytest.raises(RunError, match=r"\.hydra is a link"):
        rundir.write_text(run / rundir.HYDRA_CONFIG, "seed: 0\n")
    (run / rundir.LOG).symlink_to(precious)
    handler = rundir.JobLogHandler(run / rundir.LOG, delay=True)
    handler.emit(logging.makeLogRecord({"msg": "a line"}))
    handler.close()
    assert precious.read_text() == "precious\n" and sorted(p.name for p in outside.iterdir()) == [
        "bashrc"
    ]
