"""The table `make gpu-check` writes: rows in the README's "Measured speed" layout (what | where | when |
figure) as markdown, and one row per number as CSV, both rewritten after every row so that a run
stopped at a time limit keeps every row it measured."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

from infomax_cli import rundir

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN, CSV, LOG = "gpu_check.md", "gpu_check.csv", "gpu_check.log"
CSV_COLUMNS = [
    "item",
    "what",
    "metric",
    "value",
    "unit",
    "status",
    "mode",
    "device",
    "gpu",
    "host_cpu",
    "torch",
    "cuda",
    "commit",
    "date",
]
TINY_WARNING = "CPU MODE, TINY SIZES: a check that the script runs, not a speed figure"


def cpu_model() -> str:
    """The host CPU's model name and how many CPUs this process may use."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} ({cpus} CPUs)"


def commit() -> str:
    """The checkout's commit (COMMIT in the environment first: a copy without .git, as on a lent GPU
    machine, is named by whoever starts it), with "+changes" when the work tree differs from it."""
    if os.environ.get("COMMIT"):
        return os.environ["COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class Context:
    """What every row is measured on: the device, the sizes (full or tiny) and the software."""

    device: torch.device
    sizes: str  # "full" | "tiny"
    gpu: str
    host_cpu: str
    torch: str
    cuda: str
    commit: str
    date: str

    @classmethod
    def here(cls, device: torch.device, sizes: str) -> Context:
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
        return cls(
            device,
            sizes,
            gpu,
            cpu_model(),
            torch.__version__,
            torch.version.cuda or "none",
            commit(),
            dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        )

    @property
    def tiny(self) -> bool:
        return self.sizes == "tiny"

    @property
    def where(self) -> str:
        if self.device.type == "cuda":
            out = f"one {self.gpu}, host CPU {self.host_cpu}; torch {self.torch}, CUDA {self.cuda}"
        else:
            out = f"the CPU {self.host_cpu}; torch {self.torch}"
        return f"{out}; **{TINY_WARNING}**" if self.tiny else out

    @property
    def title(self) -> str:
        if self.device.type == "cuda":
            mode = f"{self.gpu}, {self.sizes} sizes"
        else:
            mode = f"CPU mode ({self.sizes} sizes)"
        return f"`make gpu-check`: {mode}"


@dataclass
class Row:
    """One markdown row (item, what, figure) and its numbers for the CSV: (metric, value, unit)."""

    item: int
    what: str
    figure: str
    numbers: list[tuple[str, float | None, str]] = field(default_factory=list)
    status: str = "ok"  # ok | failed | skipped


class Results:
    """The rows measured so far in `out` (gpu_check.md, gpu_check.csv), rewritten after each row."""

    def __init__(self, out: Path, ctx: Context, budget: float):
        self.out, self.ctx, self.budget, self.rows = out, ctx, budget, []
        self.seconds: float | None = None  # the whole check's, once it has finished
        self.write()

    @property
    def log(self) -> Path:
        return self.out / LOG

    def add(self, row: Row) -> None:
        self.rows.append(row)
        self.write()

    def finish(self, seconds: float) -> None:
        self.seconds = seconds
        self.write()

    def failed(self) -> list[Row]:
        return [r for r in self.rows if r.status != "ok"]

    def write(self) -> None:
        rundir.write_text(self.out / MARKDOWN, self.markdown())
        rundir.write_text(self.out / CSV, self.csv())

    def markdown(self) -> str:
        c = self.ctx
        lines = [f"# {c.title}", ""]
        if c.tiny:
            lines += [
                f"**{TINY_WARNING}.** The GPU's figures come from `make gpu-check` on CUDA.",
                "",
            ]
        lines += [
            f"Device {c.device.type} ({c.gpu if c.device.type == 'cuda' else 'no GPU used'}); "
            f"host CPU {c.host_cpu}; torch {c.torch}; CUDA {c.cuda}; commit {c.commit}; "
            f"date {c.date} (UTC); sizes {c.sizes}; time budget {self.budget:.0f} s. Rows in the "
            'README\'s "Measured speed" layout; gpu_check.csv has every number.',
            "",
            "| what | where | when | figure |",
            "| --- | --- | --- | --- |",
        ]
        when = f"{c.commit}, {c.date}"
        for r in sorted(self.rows, key=lambda r: r.item):  # stable: measured order within an item
            figure = r.figure if r.status == "ok" else f"**{r.status}**: {r.figure}"
            lines.append(f"| {_cell(r.what)} | {_cell(c.where)} | {when} | {_cell(figure)} |")
        if self.seconds is None:
            lines += ["", "(unfinished: the rows measured so far)"]
        else:
            lines += ["", f"The whole check took {self.seconds:.0f} s."]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        c, buf = self.ctx, io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        same = [c.sizes, c.device.type, c.gpu, c.host_cpu, c.torch, c.cuda, c.commit, c.date]
        for r in sorted(self.rows, key=lambda r: r.item):
            for metric, value, unit in r.numbers or [("", None, "")]:
                shown = "" if value is None else f"{value:.6g}"
                w.writerow([r.item, r.what, metric, shown, unit, r.status, *same])
        return buf.getvalue()


def _cell(text: str) -> str:
    """Text as one markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")
