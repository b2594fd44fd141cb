"""`make gpu-check`, the prepared GPU measurement, in its CPU mode (as CI runs it, so the script never
rots before a GPU is lent): every item measured, every row labelled as the CPU at tiny sizes; and the
table's rules: rows written as they come, a failing item is its own row, a table is never overwritten,
bad usage is one line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, THREADS, user_env, warm_python

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402
from gpu_table import TINY_WARNING, Context, Results, Row  # noqa: E402

PHASES = list(gpu_check.PHASES.values())


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def table_rows(markdown: str) -> list[list[str]]:
    """The markdown table's body rows, as cells."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r.strip("|").split(" | ")] for r in rows[2:]]  # no header, no rule


@pytest.mark.slow
@pytest.mark.long
def test_make_gpu_check_on_the_cpu_measures_every_item_tiny_and_says_so(tmp_path):
    out = tmp_path / "check"
    # BIN's python: this interpreter, as `make install` would make it, which forks the check's own
    # processes (gpu_check.py, its `infomax run`s) from the worker's warm one (tests/zygote.py)
    bin_dir = warm_python().parent
    cmd = ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", "install", f"BIN={bin_dir}"]
    env = user_env(OMP_NUM_THREADS=str(THREADS), COMMIT="", OUT="")
    r = subprocess.run(
        [*cmd, "gpu-check", "DEVICE=cpu", f"OUT={out}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stdout + r.stderr
    rows = read_csv(out / "gpu_check.csv")
    assert {int(row["item"]) for row in rows} == {1, 2, 3, 4, 5}
    assert {(row["status"], row["mode"], row["device"], row["gpu"]) for row in rows} == {
        ("ok", "tiny", "cpu", "none")
    }
    assert all(float(row["value"]) > 0 for row in rows if row["metric"] != "logger")
    metric = {(int(row["item"]), row["metric"]): float(row["value"]) for row in rows}
    # 1: the STL-sized study, per case training and measuring from each job's summary.json
    for case in ("a", "c"):
        for key in ("train_seconds", "measure_seconds", "measure_init_seconds"):
            assert metric[(1, f"case {case} {key}")] < metric[(1, "wall")]
    # 2: make study's sweep, once per launcher
    assert [row["metric"] for row in rows if row["item"] == "2"] == ["wall", "jobs"] * 2
    assert "hydra/launcher=joblib" in [row for row in rows if row["item"] == "2"][-1]["what"]
    # 3: training against the reference loop (their losses agree on the CPU) and measurement
    what3 = [row["what"] for row in rows if row["item"] == "3" and row["metric"] == "infomax"]
    assert [w.split(":")[0] for w in what3] == ["3. training, case a", "3. training, case c"]
    # 4: histogram_mi against numpy per pair, CPU only
    methods = [row["metric"] for row in rows if row["item"] == "4"]
    assert methods[0] == "numpy histogram2d per pair" and "histogram_mi (numba)" in methods
    assert not any("CUDA" in m for m in methods)
    # 5: one job by phase, summary.json's phases after the process's own start-up
    phases = [row["metric"] for row in rows if row["item"] == "5"]
    assert phases == ["wall", "process start-up and exit", *PHASES]
    job = [metric[(5, p)] for p in phases[1:]]
    assert sum(job) == pytest.approx(metric[(5, "wall")], rel=1e-3)
    markdown = (out / "gpu_check.md").read_text()
    assert "CPU mode (tiny sizes)" in markdown.splitlines()[0]
    body = table_rows(markdown)
    assert len(body) == len({(row["item"], row["what"]) for row in rows})
    assert all(TINY_WARNING in cells[1] for cells in body)  # every row, where it is pasted
    assert all("losses equal the reference's" in c[3] for c in body if "training, case" in c[0])
    assert "The whole check took" in markdown


def cpu_context(sizes: str = "tiny") -> Context:
    return Context(torch.device("cpu"), sizes, "none", "a CPU (2 CPUs)", "2.x", "none", "abc", "d")


def test_every_row_is_on_disk_as_soon_as_it_is_measured(tmp_path):
    """Rows written one by one (a time limit keeps what was measured): markdown and CSV, cells escaped,
    the run marked unfinished until it is."""
    results = Results(tmp_path, cpu_context(), budget=60)
    assert table_rows((tmp_path / "gpu_check.md").read_text()) == []
    results.add(Row(5, "5. a | b", "1.0 s", [("wall", 1.0, "s"), ("start", 0.25, "s")]))
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert table_rows(markdown)[0][0] == "5. a \\| b" and "(unfinished" in markdown
    results.add(Row(2, "2. sweep", "broke", [("wall", None, "s")], status="failed"))
    rows = read_csv(tmp_path / "gpu_check.csv")
    assert [(r["item"], r["metric"], r["value"], r["status"]) for r in rows] == [
        ("2", "wall", "", "failed"),  # in item order
        ("5", "wall", "1", "ok"),
        ("5", "start", "0.25", "ok"),
    ]
    assert table_rows((tmp_path / "gpu_check.md").read_text())[0][3] == "**failed**: broke"
    results.finish(12.3)
    assert "The whole check took 12 s." in (tmp_path / "gpu_check.md").read_text()


def test_a_failing_item_is_its_row_and_the_next_item_still_runs(tmp_path, monkeypatch):
    def half(check):
        yield Row(4, "4. first", "1 pairs/s", [("rate", 1.0, "pairs/s")])
        raise RuntimeError("the second row broke\nsecond line")

    def whole(check):
        yield Row(5, "5. job", "2 s", [("wall", 2.0, "s")])

    monkeypatch.setitem(gpu_check.ITEMS, 4, half)
    monkeypatch.setitem(gpu_check.ITEMS, 5, whole)
    results = Results(tmp_path, cpu_context(), budget=60)
    check = gpu_check.Check(results, cpu_context(), gpu_check.TINY, tmp_path, 60, 0.0)
    monkeypatch.setattr(check, "left", lambda: 1.0)
    gpu_check.run_items(check, [4, 5])
    assert [(r.item, r.status, r.figure) for r in results.rows] == [
        (4, "ok", "1 pairs/s"),
        (4, "failed", "RuntimeError: the second row broke"),
        (5, "ok", "2 s"),
    ]
    assert "the second row broke" in (tmp_path / "gpu_check.log").read_text()  # the traceback
    monkeypatch.setattr(check, "left", lambda: 0.0)  # the budget spent: not started
    gpu_check.run_items(check, [5])
    assert (results.rows[-1].status, results.rows[-1].figure) == (
        "skipped",
        "not started: the time budget ran out",
    )


@pytest.mark.parametrize(
    "args,says",
    [
        (["--device", "cuda"], "no CUDA device is visible: use DEVICE=cpu"),
        (["--items", "1,9"], "--items takes some of 1,2,3,4,5"),
        (["--budget", "0"], "--budget seconds > 0"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stop:
        gpu_check.parse(["--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and says in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_folder_holding_a_table_is_refused_and_left_as_it_was(tmp_path, capsys):
    out = tmp_path / "check"
    Results(out, cpu_context(), budget=60).add(Row(4, "4. a row", "1 pairs/s"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(SystemExit) as stop:
        gpu_check.parse(["--out", str(out), "--device", "cpu"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert f"{out} already holds a gpu-check table" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_sizes_follow_the_device(tmp_path, monkeypatch):
    """Without CUDA the check runs tiny; with it, the study's sizes (unless --sizes says otherwise)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    a = gpu_check.parse(["--out", str(tmp_path)])
    assert (a.device.type, a.sizes) == ("cpu", gpu_check.TINY)
    assert a.items == [4, 5, 1, 2, 3]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    a = gpu_check.parse(["--out", str(tmp_path)])
    assert (a.device.type, a.sizes) == ("cuda", gpu_check.FULL)
    assert gpu_check.FULL.stl_images == 5000 and gpu_check.FULL.study == (
        "case=a,b,c,d",
        "seed=0,1,2,3,4",
    )
    assert gpu_check.FULL.jobs == ()  # the study's settings
