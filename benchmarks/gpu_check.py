"""`make gpu-check`: the prepared GPU measurement, one run that writes one table (issue 31).

    benchmarks/gpu_check.sh [DIR]            # what `make gpu-check` runs (DEVICE=cpu: the CPU mode)
    python benchmarks/gpu_check.py --out DIR [--device auto|cuda|cpu] [--sizes auto|full|tiny]
                                   [--items 4,5,1,2,3] [--budget SECONDS]

On CUDA, at full sizes, it measures
  1. the four-case study on 5000 STL-sized images (fabricated in STL-10's binary layout, as the tests
     make them), the study's settings: wall time, per case training and measuring seconds;
  2. `make study`'s 20-job sweep on the embedded set: wall time, with Hydra's basic launcher and with
     `hydra/launcher=joblib`;
  3. training images/s per case against the plain eager loop (train_speed.train_case, as
     bench_train.py measures it), eager and with `train.compile=true
     train.compile_mode=reduce-overhead`; measurement images/s per case (bench_train.bench_measure);
  4. histogram_mi pairs/s on CUDA and on the host CPU (bench_mi.throughput);
  5. one job's time by phase (summary.json's `phase_seconds`; the process's start-up and exit are its
     wall time less the phases);
cheapest first and compiling last (--items), each row written as soon as it is measured (gpu_table.Results); an item is
not started once --budget seconds have passed. Without CUDA (or with --device cpu) the same items run
at tiny sizes: a check that the script works (CI runs it), labelled so on every row.
Exit status: 0 every item measured; 1 an item failed or was left out (its row says why); 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time

STARTED = time.perf_counter()  # the check's clock (its budget and its time) counts its imports too

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_mi  # noqa: E402
import bench_train  # noqa: E402
import train_speed  # noqa: E402
from gpu_table import CSV, MARKDOWN, ROOT, Context, Results, Row  # noqa: E402

from infomax_cli import config  # noqa: E402
from infomax_cli.app import keep_large_buffers_in_the_heap  # noqa: E402
from infomax_cli.errors import first_line  # noqa: E402
from infomax_cli.sources.stl10 import write_stl10_binary  # noqa: E402

PHASES = {  # summary.json's phase_seconds, as the table names them
    "start": "start",
    "prepare": "prepare",
    "measure_init": "untrained measurement",
    "train": "training",
    "infoplane": "information plane",
    "measure": "trained measurement",
    "null_partners": "null partners",
    "tables": "tables",
    "pictures": "pictures",
    "logger": "logger",
    "report": "report",
}


@dataclass(frozen=True)
class Sizes:
    """How big each item is: the study's sizes (full) or a few images and one step (tiny)."""

    name: str
    stl_images: int  # item 1: fabricated STL-sized images
    stl_cases: str  # item 1: the cases
    study: tuple[str, ...]  # item 2: the sweep's cases and seeds
    jobs: tuple[str, ...]  # overrides every job of items 1, 2 and 5 gets
    samples: tuple[str, ...]  # and those on the embedded set (items 2 and 5)
    train: tuple[int, int, int, int]  # item 3: images (0: the embedded set), batch, warm-up, steps
    train_cases: tuple[str, ...]  # item 3: the cases
    mi: tuple[int, int, int, int]  # item 4: images, maps, size, timed runs

    def jobs_text(self) -> str:
        return "the study's settings" if not self.jobs else " ".join(self.jobs)


FULL = Sizes(
    name="full",
    stl_images=5000,
    stl_cases="a,b,c,d",
    study=("case=a,b,c,d", "seed=0,1,2,3,4"),
    jobs=(),
    samples=(),
    train=(0, 64, 3, 100),
    train_cases=("a", "b", "c", "d"),
    mi=(64, 32, 96, 3),
)
TINY = Sizes(  # sweeps of one or two jobs, each job 8 images and one step: a check, not a figure
    name="tiny",
    stl_images=8,
    stl_cases="a,c",
    study=("case=c", "seed=0"),
    jobs=("dataset.n_images=8", "train.steps=1", "train.batch_size=8", "measure.batch_size=8"),
    samples=("dataset.per_photo=1",),
    train=(8, 4, 1, 1),
    train_cases=("a", "c"),
    mi=(8, 4, 32, 1),
)


class Stop(Exception):
    """An item that could not finish: its row says why."""


@dataclass
class Check:
    """One run of the check: where it writes, what it measures on, and its clock."""

    results: Results
    ctx: Context
    sizes: Sizes
    work: Path  # scratch: the fabricated data and the run directories (removed at the end)
    budget: float
    t0: float

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def infomax_run(self, args: list[str]) -> float:
        """`infomax run ARGS` in a fresh process, as a user runs it; its wall seconds. Its output goes
        to gpu_check.log; a failure is a Stop with its last line."""
        cmd = [sys.executable, "-m", "infomax_cli.cli", "run", *args]
        shown = "infomax run " + " ".join(args)
        t = time.perf_counter()
        try:
            r = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(self.left(), 30)
            )
        except subprocess.TimeoutExpired as e:
            self.note(shown, (e.stdout or b"").decode(errors="replace") if e.stdout else "")
            raise Stop(f"`{shown}` stopped at the time budget") from None
        seconds = time.perf_counter() - t
        self.note(shown, r.stdout + r.stderr)
        if r.returncode:
            last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Stop(f"`{shown}` exited {r.returncode}: {last}")
        return seconds

    def note(self, title: str, text: str) -> None:
        with self.results.log.open("a") as f:
            f.write(f"$ {title}\n{text}\n")

    @property
    def device(self) -> str:
        return f"device={self.ctx.device.type}"


# ------------------------------------------------------------------------------------------- items
def summaries(folder: Path) -> list[dict]:
    """The summary.json of every job under `folder`, in path order."""
    return [json.loads(p.read_text()) for p in sorted(folder.rglob("summary.json"))]


def fabricate_stl10(root: Path, n: int, seed: int = 0) -> None:
    """n STL-sized RGB images (smoothed noise) with labels 1..10 in turn, in STL-10's binary layout."""
    g = torch.Generator().manual_seed(seed)
    chunks = []
    for lo in range(0, n, 500):
        x = torch.rand(min(500, n - lo), 3, 96, 96, generator=g)
        chunks.append((torch.nn.functional.avg_pool2d(x, 5, 1, 2) * 255).round().to(torch.uint8))
    labels = [1 + k % 10 for k in range(n)]
    write_stl10_binary(root, "train", torch.cat(chunks).numpy(), labels)


def item_stl_study(c: Check):
    """1. The four-case study on fabricated STL-sized images: wall, per case training and measuring."""
    n = c.sizes.stl_images
    fabricate_stl10(c.work / "stl", n)
    sweep = c.work / "stl-sweep"
    cases = c.sizes.stl_cases
    args = ["-m", f"case={cases}", "dataset=stl10", f"dataset.root={c.work / 'stl'}", c.device]
    wall = c.infomax_run([*args, *c.sizes.jobs, f"hydra.sweep.dir={sweep}"])
    jobs = {s["case"]: s for s in summaries(sweep)}
    rest = wall - sum(sum(s["phase_seconds"].values()) for s in jobs.values())
    numbers = [("wall", wall, "s"), ("start-up, comparison and report", rest, "s")]
    for case, s in sorted(jobs.items()):
        for key in ("train_seconds", "measure_seconds", "measure_init_seconds"):
            numbers.append((f"case {case} {key}", s[key], "s"))

    def per_case(key: str) -> str:
        return ", ".join(f"{k} {s[key]:.1f}" for k, s in sorted(jobs.items()))

    figure = (
        f"{wall:.1f} s wall; per case training {per_case('train_seconds')} s, measuring after "
        f"training {per_case('measure_seconds')} s, before {per_case('measure_init_seconds')} s; "
        f"the rest (start-up, the sweep's comparison and report) {rest:.1f} s"
    )
    what = (
        f"1. the {'four-case ' if cases == 'a,b,c,d' else ''}study on {n} STL-sized images "
        f"(fabricated in STL-10's binary layout; `infomax run -m case={cases} dataset=stl10`), "
        f"{c.sizes.jobs_text()}"
    )
    yield Row(1, what, figure, numbers)


def item_study_sweep(c: Check):
    """2. `make study`'s sweep on the embedded set, with the basic and the joblib launcher."""
    for launcher in ("basic", "joblib"):
        chosen = [] if launcher == "basic" else [f"hydra/launcher={launcher}"]
        sweep = c.work / f"study-{launcher}"
        args = ["-m", *c.sizes.study, "dataset=samples", c.device, *chosen]
        wall = c.infomax_run([*args, *c.sizes.jobs, *c.sizes.samples, f"hydra.sweep.dir={sweep}"])
        jobs = summaries(sweep)
        train = float(np.median([s["train_seconds"] for s in jobs]))
        what = (
            f"2. `make study`'s sweep ({' '.join(c.sizes.study)} dataset=samples: {len(jobs)} "
            f"job{'s' if len(jobs) != 1 else ''}), "
            f"{c.sizes.jobs_text()}, " + (f"`{chosen[0]}`" if chosen else "Hydra's basic launcher")
        )
        figure = (
            f"{wall:.1f} s wall ({wall / len(jobs):.1f} s a job; median training {train:.1f} s)"
        )
        yield Row(2, what, figure, [("wall", wall, "s"), ("jobs", len(jobs), "jobs")])


class _Warnings(logging.Handler):
    """The infomax logger's warnings while it is attached (a compile that fell back to eager)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def item_training(c: Check):
    """3. Training images/s per case against the plain eager loop, eager and with the switches (CUDA:
    compile with reduce-overhead; the CPU mode: channels_last, leaving compile to the GPU); then
    measurement images/s per case."""
    n, batch, warmup, steps = c.sizes.train
    data = train_speed.images_set("synthetic" if n else "samples", n, 0)
    batch = min(batch, len(data))
    cuda = c.ctx.device.type == "cuda"
    switches = "compile,compile_mode=reduce-overhead" if cuda else "channels_last"
    timed = f"{steps} timed step{'s' if steps != 1 else ''} after {warmup}"
    sizes = f"batch {batch} of {len(data)} {data.name} images, {timed}"
    trained = {}
    for case in c.sizes.train_cases:
        if c.left() <= 0:
            raise Stop(f"the time budget ran out before case {case}")
        caught, logger = _Warnings(), logging.getLogger("infomax")
        logger.addHandler(caught)
        try:
            r = train_speed.train_case(
                case,
                [f"train.batch_size={batch}"],
                switches,
                data,
                c.ctx.device,
                warmup,
                steps,
                0,
                1,
            )
        finally:
            logger.removeHandler(caught)
        trained[case] = r
        fell_back = [w for w in caught.lines if "compile" in w]
        fast = f"{r.switched:,.0f} img/s" if r.switched else "none"
        figure = (
            f"infomax {r.infomax:,.0f} vs {r.reference:,.0f} img/s ({r.ratio()}); with "
            f"{r.switches}: {fast}; {r.note()}"
            + (f"; **compile fell back to eager**: {fell_back[0][:160]}" if fell_back else "")
        )
        what = (
            f"3. training, case {case}: infomax vs the plain eager loop (`bench_train.py`), {sizes}"
        )
        numbers = [("reference", r.reference, "img/s"), ("infomax", r.infomax, "img/s")]
        numbers.append((f"infomax with {r.switches}", r.switched, "img/s"))
        yield Row(3, what, figure, numbers)
    for case, r in trained.items():
        rate = bench_train.bench_measure(r.cfg, r.encoder, data, c.ctx.device, 0)
        what = f"3. measurement, case {case}: {len(data)} images, MI, both nulls and the other alignments"
        yield Row(3, what, f"{rate:,.0f} img/s", [("measure", rate, "img/s")])


def item_histogram(c: Check):
    """4. histogram_mi pairs/s on CUDA (when used) and the host CPU, against numpy per pair."""
    n, maps, size, repeat = c.sizes.mi
    for r in bench_mi.throughput(n, maps, size, 20, repeat):
        if r["device"] != "cpu" and c.ctx.device.type != "cuda":
            continue
        where = "the host CPU" if r["device"] == "cpu" else "CUDA"
        what = (
            f"4. `histogram_mi` pairs/s on {where}, {r['method']} (`bench_mi.py`): {n} images x "
            f"{maps} maps of {size}x{size}, 20 bins"
        )
        figure = (
            f"{r['rate']:,.0f} pairs/s ({r['vs_numpy']:.1f}x numpy per pair; max diff "
            f"{r['diff']:.1e}; median of {repeat})"
        )
        yield Row(4, what, figure, [(r["method"], r["rate"], "pairs/s")])


def item_phases(c: Check):
    """5. One job's time by phase: summary.json's phase_seconds, and the process's own start-up."""
    run = c.work / "job"
    args = ["case=c", "dataset=samples", c.device, *c.sizes.jobs, *c.sizes.samples]
    wall = c.infomax_run([*args, f"hydra.run.dir={run}"])
    (summary,) = summaries(run)
    phases = summary["phase_seconds"]
    startup = wall - sum(phases.values())
    parts = [("process start-up and exit", startup)]
    parts += [(PHASES.get(k, k), v) for k, v in phases.items()]
    outside = wall - phases["train"]
    figure = (
        f"{wall:.1f} s wall, {outside:.1f} s of it outside the training steps: "
        + ", ".join(f"{name} {v:.2f}" for name, v in parts)
        + " s"
    )
    what = (
        f"5. one job's time by phase (`infomax run case=c dataset=samples`, {summary['n_images']} "
        f"images, {c.sizes.jobs_text()})"
    )
    yield Row(5, what, figure, [("wall", wall, "s"), *((n, v, "s") for n, v in parts)])


ITEMS = {
    1: item_stl_study,
    2: item_study_sweep,
    3: item_training,
    4: item_histogram,
    5: item_phases,
}
ITEM_NAMES = {1: "STL-sized study", 2: "study sweep", 3: "training", 4: "histogram_mi", 5: "phases"}


# -------------------------------------------------------------------------------------------- main
class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own adds the usage)
        self.exit(2, f"gpu-check: {message}\n")


def parse(argv: list[str]) -> argparse.Namespace:
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder the table is written to")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--sizes", choices=["auto", "full", "tiny"], default="auto")
    p.add_argument("--items", default="4,5,1,2,3", help="which items, in this order")
    p.add_argument("--budget", type=float, default=540, help="seconds; no item starts after them")
    a = p.parse_args(argv)
    try:
        a.items = [int(k) for k in a.items.split(",") if k.strip()]
    except ValueError:
        a.items = []
    if not a.items or any(k not in ITEMS for k in a.items) or a.budget <= 0:
        p.error(f"--items takes some of {','.join(map(str, ITEMS))}, --budget seconds > 0")
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("DEVICE=cuda, but no CUDA device is visible: use DEVICE=cpu (the CPU mode).")
    cuda = a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available())
    a.device = torch.device("cuda" if cuda else "cpu")
    a.sizes = {"full": FULL, "tiny": TINY}.get(a.sizes, FULL if cuda else TINY)
    if a.out.exists() and not a.out.is_dir():
        p.error(f"{a.out} is a file: name a folder for the table (make gpu-check OUT=DIR).")
    if any((a.out / name).exists() for name in (MARKDOWN, CSV)):
        p.error(f"{a.out} already holds a gpu-check table: name another folder or move it away.")
    return a


def run_items(check: Check, items: list[int]) -> None:
    """Each item in turn, each row added (and written) as soon as it is measured; an item that fails
    is a row saying why (its traceback in gpu_check.log) and the next item runs."""
    results = check.results
    for k in items:
        name = f"{k}. {ITEM_NAMES[k]}"
        if check.left() <= 0:
            results.add(Row(k, name, "not started: the time budget ran out", status="skipped"))
            continue
        print(f"gpu-check: item {name}...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            for row in ITEMS[k](check):
                results.add(row)
                print(f"  {row.what}: {row.figure}", flush=True)
            print(f"  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        except Exception as e:  # one item's failure is its row; the others still run
            import traceback

            check.note(f"item {name} failed", traceback.format_exc())
            why = str(e) if isinstance(e, Stop) else f"{type(e).__name__}: {first_line(e)}"
            results.add(Row(k, name, why, status="failed"))
            print(f"  item {name} failed: {why}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    a = parse(argv)
    keep_large_buffers_in_the_heap()  # as `infomax` does at start
    config.register()
    ctx = Context.here(a.device, a.sizes.name)
    results = Results(a.out, ctx, a.budget)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    check = Check(results, ctx, a.sizes, work, a.budget, STARTED)
    try:
        run_items(check, a.items)
    except KeyboardInterrupt:
        print(f"gpu-check: interrupted; the rows measured are in {a.out}", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results.finish(time.perf_counter() - STARTED)
    print(results.markdown())
    missing = results.failed()
    print(
        f"gpu-check: {len(results.rows)} rows in {a.out / MARKDOWN} and {a.out / CSV}"
        + (
            f"; {len(missing)} failed or left out (see {a.out / 'gpu_check.log'})"
            if missing
            else ""
        ),
        file=sys.stderr,
    )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
