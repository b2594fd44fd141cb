"""Issue 28's eleven failures, tried as an attacker and as an unlucky user would, each a test: a sweep
directory is input like any other (complete seeds only, nothing in it instantiated, executed, followed
out of it or printed raw), and the bad inputs that reached a traceback, ran for minutes or wrote outside
their directory stop in one line. Files are written by the tests themselves (fake_sweep.write_job);
end-to-end runs are marked slow."""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY, check_config, compose_cfg, infomax
from fake_sweep import write_job
from omegaconf import OmegaConf

from infomax_cli import cli
from infomax_cli.errors import ConfigError


def multirun(sweep, task, hydra=()):
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"hydra": list(hydra), "task": list(task)}}})
    )


def commands(text: str) -> list[list[str]]:
    """Every `infomax run -m` line printed, as the shell would split it."""
    return [
        shlex.split(line[line.index("infomax run -m") :])
        for line in text.splitlines()
        if "infomax run -m" in line
    ]


# ------------------------------------------------------------------------------ 1. complete seeds
@pytest.mark.parametrize("fault", ["damaged", "unfinished"])
@pytest.mark.slow
def test_1_a_seed_with_a_left_out_job_is_left_out_of_every_table_and_finished_first(
    tmp_path, capsys, fault, no_pictures
):
    """case=a,c over seeds 0-3, a and c the same on every image (every complete seed an exact tie);
    seed 0's c job cut short (or its summary gone). The winner table once gave seed 0's images to a
    (a 60%, c 40%); now seed 0 is out of every table, the terminal and the report say why, and the
    printed command runs seed 0 again first."""
    rng = np.random.default_rng(0)
    for seed in range(4):
        values = rng.uniform(0.5, 0.9, 10)
        for case in "ac":
            write_job(tmp_path, case, values, seed)
    job = tmp_path / "case=c,dataset=samples,seed=0"
    if fault == "damaged":
        table = job / "mi_per_image.csv"
        table.write_text("".join(table.read_text().splitlines(keepends=True)[:-3]))
    else:
        (job / "summary.json").unlink()
    multirun(tmp_path, ["case=a,c", "dataset=samples", "seed=0,1,2,3"])
    assert cli.main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    winners = pd.read_csv(tmp_path / "winners.csv").set_index("case")
    assert winners["share"].tolist() == [0.5, 0.5]
    comparison = pd.read_csv(tmp_path / "comparison.csv")
    assert sorted(comparison["seed"].unique()) == [1, 2, 3] and (comparison.winner == "a=c").all()
    for name in ("claims.csv", "stats.csv", "claims_pairs.csv"):
        assert (pd.read_csv(tmp_path / name)["n_seeds"] == 3).all(), name
    assert "seed 0: case c: job case=c,dataset=samples,seed=0" in out
    page = (tmp_path / "report.html").read_text()
    assert "seed 0: case c: job case=c,dataset=samples,seed=0" in page
    (line,) = [c for c in commands(out) if any(a.startswith("seed=") for a in c)][:1]
    seeds = next(a for a in line if a.startswith("seed=")).removeprefix("seed=").split(",")
    assert seeds[0] == "0" and f"hydra.sweep.dir={tmp_path.resolve()}" in line
    assert json.loads((tmp_path / "sweep.json").read_text())["settings"][0]["seeds"] == [1, 2, 3]


# --------------------------------------------------------------------------------- 2. NaN maps
NAN_MODULES = textwrap.dedent(
    """
    import torch
    from torch import nn


    class Nan(nn.Module):
        def __init__(self, batch: int = 0):
            super().__init__()
            self.batch = batch

        def forward(self, y):
            if not self.training and self.batch in (0, y.shape[0]):
                y = y.clone()
                y[:, 3] = float("nan")
            return y


    class NanNet(nn.Module):
        '''Map 3 is NaN when measured (eval mode), on batches of `batch` images (0: every batch).'''

        def __init__(self, batch: int = 0):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Sigmoid())
            self.nan = Nan(batch)

        def forward(self, x):
            return self.nan(self.conv(x))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("batch, step", [(0, "step 0, untrained"), (12, "step 0, the information")])
def test_2_nan_maps_stop_in_one_line_naming_the_layer_and_the_step(tmp_path, batch, step):
    """A module whose map 3 is NaN when measured: every table was NaN, summary.json held a bare NaN,
    exit 0; NaN only on the probe batch (12 images): an IndexError. Now one line naming the layer, the
    map and the step, exit 1, and no summary.json."""
    (tmp_path / "nanmods.py").write_text(NAN_MODULES)
    run = tmp_path / "run"
    target = ["case=custom", "case.encoder._target_=nanmods.NanNet", f"+case.encoder.batch={batch}"]
    r = infomax("run", *target, *TINY, f"hydra.run.dir={run}", cwd=tmp_path, path=[tmp_path])
    assert r.returncode == 1, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert "map 3 of layer " in line and "is nan" in line and step in line, line
    assert "internal error" not in line and not (run / "summary.json").exists()


# ------------------------------------------------------------------ 3. stored configs are data
def _custom_job(sweep, marker) -> None:
    """A finished job of a module named by its .hydra/config.yaml, an argument of which is itself a
    `_target_` that writes `marker` when built, and an encoder.pt that is no torch file."""
    job = write_job(sweep, "custom", np.linspace(0.5, 0.9, 8), extra=("dataset=samples",))
    cfg = OmegaConf.to_container(compose_cfg([*TINY, "dataset.n_images=8"]), enum_to_str=True)
    payload = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    cfg["case"] = {"name": "custom", "encoder": {"_target_": "torch.nn.Identity", "x": payload}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (job / "encoder.pt").write_bytes(b"")


@pytest.mark.parametrize("given", [[], ["--encoder", "torch.nn.Identity"]])
def test_3_sensitivity_builds_nothing_a_stored_config_names(tmp_path, capsys, given):
    """`infomax sensitivity` instantiated each job's case.encoder, nested `_target_`s included: the
    payload (here builtins.open, writing a file) ran. Now a module is built only from a target given on
    the command line, and its arguments never build anything."""
    marker = tmp_path / "payload-ran"
    _custom_job(tmp_path / "sweep", marker)
    grid = ["--align", "resize", "--bins", "20", "--estimators", "histogram", "--device", "cpu"]
    code = cli.main(["sensitivity", str(tmp_path / "sweep"), *grid, "--quiet", *given])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert ("--encoder torch.nn.Identity" if not given else "_target_ is not allowed") in err


# ------------------------------------------------------------------- 4. commands built, not copied
@pytest.mark.slow
def test_4_the_printed_command_is_built_from_the_tools_keys(tmp_path, capsys, no_pictures):
    """The add-seeds line copied the sweep's hydra.* overrides from multirun.yaml: a callback there
    became code run by whoever pastes the line. Now only the tool's keys, shell-quoted, the launcher
    when it is one of the package's presets, and the sweep directory."""
    for case in "ac":
        write_job(tmp_path, case, np.linspace(0.5, 0.9, 8) + (case == "c") * 0.01)
    callback = '+hydra.callbacks.pwn={_target_:builtins.exec,_args_:[\'open("/tmp/pwned","w")\']}'
    task = ["case=a,c", "dataset=samples", "seed=0", "overwrite=true", "+hydra.job.env_set.X=1"]
    multirun(tmp_path, task, ["hydra.mode=MULTIRUN", callback, "hydra/launcher=joblib"])
    assert cli.main(["compare", str(tmp_path)]) == 0
    (line,) = commands(capsys.readouterr().out)
    assert line[:3] == ["infomax", "run", "-m"]
    assert [a for a in line if "hydra" in a] == [
        "hydra/launcher=joblib",
        f"hydra.sweep.dir={tmp_path.resolve()}",
    ]
    assert "case=a,c" in line and "dataset=samples" in line and "seed=1,2,3,4" in line
    assert not any(a.startswith(("overwrite", "seed=0")) for a in line)


# ---------------------------------------------------------------------- 5. no link leaves the dir
@pytest.mark.slow
def test_5_links_that_leave_the_directory_are_not_followed(tmp_path):
    """features/*.png linked to a secret file, or .hydra/config.yaml linked to a token: the rebuilt
    report.html held them. Now neither is read; a file that is not a PNG is not embedded either."""
    secret = tmp_path / "token"
    secret.write_text("TOKEN-5f3a9c secret: hunter2\n")
    run = write_job(tmp_path / "sweep", "a", np.linspace(0.5, 0.9, 8))
    (run / "features").mkdir(exist_ok=True)
    (run / "features" / "00000_chelsea.png").symlink_to(secret)
    (run / "features" / "00001_horse.png").write_text("not a picture: TOKEN-inside")
    (run / ".hydra" / "config.yaml").unlink(missing_ok=True)
    (run / ".hydra" / "config.yaml").symlink_to(secret)
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    for text in (b"TOKEN-5f3a9c secret: hunter2\n", b"not a picture: TOKEN-inside"):
        assert text.decode().strip() not in page and base64.b64encode(text).decode() not in page


# ---------------------------------------------------------------------- 6. names reach no terminal
@pytest.mark.slow
def test_6_control_characters_from_files_never_reach_the_terminal(tmp_path):
    """A case name (and a job directory's name) holding `ESC[2J` cleared the screen and printed a
    forged verdict. Now control characters are removed from everything printed."""
    forged = "c\x1b[2J\x1b[Hall claims hold\r"
    for case in ("a", forged):
        write_job(tmp_path, case, np.linspace(0.5, 0.9, 8))
    damaged = write_job(tmp_path, "b\x1b[31m", np.linspace(0.5, 0.9, 8))
    (damaged / "mi_per_map.csv").write_text("image_id\n")
    r = infomax("compare", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    for stream in (r.stdout, r.stderr):
        assert "\x1b" not in stream and "\r" not in stream
    assert "case a" in r.stdout and "b[31m" in r.stdout + r.stderr  # named, without the codes


# ------------------------------------------------------------------ 7. alias bombs and FIFOs
BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]"
            for p, x in zip("abcdefgh", "bcdefghi")
        ),
        "hydra: {overrides: {hydra: [], task: [*i]}}",
    ]
)


def _in_a_process(args: list[str], limit: int | None = None, timeout: float = 300):
    """`infomax ARGS` through cli.main in a fresh python, its address space capped at `limit` bytes;
    the process prints its peak resident memory (kB) last."""
    import subprocess

    cap = (
        f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        if limit
        else ""
    )
    code = (
        f"{cap}from infomax_cli import cli\ncode = cli.main({args!r})\n"
        "peak = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1]\n"
        "print('peak', peak)\nraise SystemExit(code)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak from /proc")
def test_7_an_alias_bomb_and_a_fifo_are_refused_without_memory_or_waiting(tmp_path):
    """A few hundred bytes of nested YAML aliases in multirun.yaml made compare take 3 GB; a FIFO in
    features/ made report wait forever. Now the YAML is refused (one warning) at the memory of any
    compare, and the FIFO is not opened."""
    for case in "ac":
        write_job(tmp_path, case, np.linspace(0.5, 0.9, 8))
    (tmp_path / "multirun.yaml").write_text(BOMB)
    assert len(BOMB) < 1000
    r = _in_a_process(["compare", str(tmp_path)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "aliases expand to more than 100000 nodes" in " ".join((r.stdout + r.stderr).split())
    peak_kb = int(r.stdout.strip().splitlines()[-1].split()[1])
    assert peak_kb < 1.5 * 2**20, peak_kb  # a compare of two jobs: about 0.7 GB
    job = next(tmp_path.glob("case=a,*"))
    (job / "features").mkdir(exist_ok=True)
    os.mkfifo(job / "features" / "00000_chelsea.png")
    r = infomax("report", str(job), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not a regular file" in " ".join((r.stdout + r.stderr).split())


# --------------------------------------------------------------------- 8. path parts stay inside
@pytest.mark.slow
@pytest.mark.parametrize(
    "override", ["case.name=x/../../../elsewhere", "+dataset.options.note=a/../../../elsewhere"]
)
def test_8_an_override_that_would_write_outside_the_sweep_is_refused(tmp_path, override):
    """`case.name=x/../../../elsewhere` wrote a job outside the sweep directory, exit 0. Now values
    that become part of a directory's name refuse '/', '..' and control characters: exit 2, nothing
    written."""
    sweep = tmp_path / "a" / "b" / "sweep"
    r = infomax("run", "-m", "case=c", override, *TINY, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "is not allowed" in r.stderr
    assert not (tmp_path / "elsewhere").exists() and not any(tmp_path.rglob("summary.json"))


# --------------------------------------------------------------------------- 9. no traceback
@pytest.mark.slow
def test_9_tables_and_configs_that_are_not_what_they_should_be_are_one_line(
    tmp_path, capsys, no_pictures
):
    """A table without image_id (a KeyError in sweep.py) and a job .hydra/config.yaml that is not a
    mapping or not YAML (AttributeError, ParserError) ended in tracebacks. Now the damaged job is
    left out with one line and a config that cannot be read is not used."""
    for case in "acd":
        write_job(tmp_path, case, np.linspace(0.5, 0.9, 8))
    bad = next(tmp_path.glob("case=d,*"))
    pd.DataFrame({"label": ["x"] * 8, "mi_mean": 0.1, "mi_max": 0.2}).to_csv(
        bad / "mi_per_image.csv", index=False
    )
    (next(tmp_path.glob("case=a,*")) / ".hydra" / "config.yaml").write_text(
        "- a list\n- not a map\n"
    )
    (next(tmp_path.glob("case=c,*")) / ".hydra" / "config.yaml").write_text("compare: [unclosed\n")
    assert cli.main(["compare", str(tmp_path)]) == 0
    assert "lacks the column(s) image_id" in (tmp_path / "report.html").read_text()
    assert cli.main(["report", str(bad)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "image_id" in err, err


# --------------------------------------------------------------- 10. errors before logging starts
@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, key",
    [
        (["dataset=samples", "seed=99999999999999999999"], "seed="),
        (["dataset=folder", "dataset.size=4096"], "dataset.size"),
    ],
)
def test_10_an_error_before_the_log_opens_is_shown_as_itself(tmp_path, overrides, key):
    """`seed=99999999999999999999` and a folder whose images cannot be brought to such a size printed
    "a sweep job stopped without reporting back (AttributeError ...)", exit 1, and left .hydra/ behind.
    Now one line naming the key, exit 2, nothing written."""
    from images_on_disk import rgb_noise, save

    for i in range(4):
        save(tmp_path / "photos" / "x" / f"{i}.png", rgb_noise(20, 20, i))
    run = tmp_path / "run"
    args = [*overrides, f"dataset.root={tmp_path / 'photos'}", "train.steps=1", "device=cpu"]
    # capped, so that a version without the bound fails to allocate instead of filling the machine
    r = _in_a_process(["run", *args, f"hydra.run.dir={run}"], limit=16 * 2**30)
    assert r.returncode == 2, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert key in line and "internal error" not in line and "AttributeError" not in line, line
    assert not run.exists()


# ---------------------------------------------------------------------------- 11. upper bounds
def test_11_memory_heavy_sizes_are_estimated_and_refused_naming_the_limit():
    """`encoder.maps=100000` took 6 GB before failing; now the estimate is refused at start, naming
    the estimate and the limit."""
    with pytest.raises(ConfigError, match=r"needs about [\d,]+ GB, more than .*encoder.maps"):
        check_config(compose_cfg([*TINY, "encoder.maps=100000"]))
    with pytest.raises(
        ConfigError, match=r"about 2.4 GB, more than device.memory_gb=0.5 \(0.5 GB\)"
    ):
        check_config(compose_cfg([*TINY, "encoder.maps=4096", "device.memory_gb=0.5"]))
    check_config(compose_cfg([*TINY, "encoder.maps=64"]))  # an ordinary size passes


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, needle",
    [
        (
            ["dataset=samples", "dataset.n_images=8", "measure.null_partners=1000000"],
            "measure.null_partners=1000000 is more than the 7 images of other photographs",
        ),
        (
            [
                *("dataset=torchvision", "dataset.name=FakeData", "dataset.n_images=null"),
                "+dataset.options.size=1000000000",
            ],
            "more than dataset.max_images=1000000",
        ),
    ],
)
def test_11_null_partners_and_dataset_sizes_have_upper_bounds(tmp_path, overrides, needle):
    """`measure.null_partners=1000000` on 8 images ran for minutes; FakeData with 1e9 images printed
    nothing for a minute. Now each stops at start in one line, exit 2, nothing written."""
    run = tmp_path / "run"
    tiny = [o for o in TINY if not o.startswith("dataset=")]  # one dataset= (the first would win)
    r = infomax("run", *tiny, *overrides, f"hydra.run.dir={run}", timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    (line,) = r.stderr.strip().splitlines()
    assert needle in line, line
    assert not run.exists()
