"""The README, run: every command of its ```bash blocks is run as a user would paste it, and the
output tables are held to what the runs write.

The blocks are read by markdown-it-py (the CommonMark parser rich already brings in), from whatever the
README holds when the suite runs, so a command added later is run too. An HTML comment right before a
block tells this test how to run it (README readers never see it):

    <!-- readme-test
    extra: dataset.n_images=24 train.steps=1 train.batch_size=4 case=a,c
    skip make test: the test suite, which runs this test
    exit 2 make sweep: STL-10's files are not in data/
    -->

- `extra [COMMAND-PREFIX]: OVERRIDES`: appended to each `infomax run` the commands start (a `make`
  target's too), to shrink a slow command; the overrides are the documentation of how it was shrunk
  (Hydra takes the last value of a key, so `case=a,c` makes a four-case sweep a two-case one).
- `skip [COMMAND-PREFIX]: REASON`: not run (a download, a GPU, SLURM, a server); each skipped
  command is its own skipped test item, with the reason.
- `exit N [COMMAND-PREFIX]: WHAT`: the command must exit N, with no traceback.
- `file: PATH` (before a block that is not a shell block, e.g. a module or a YAML file the README
  shows): that block's text is written to PATH, relative to the directory where each later shell
  block of the same section runs, as a reader would save it before pasting the commands.
A directive with a COMMAND-PREFIX applies to the block's commands that start with it; without one,
to every command of the block (`extra` lines add up). A command without an `exit` must exit 0.

Each block runs in a fresh empty directory, with HOME pointing at a fresh home that holds `photos/`
(two labels of twelve small PNGs, for the "Your own images" examples), `infomax` being this checkout's
(each command a process forked from a warm interpreter, tests/zygote.py: the same command without
2-5 s of imports) and `make` reading this checkout's Makefile (with `install` taken as done). After
each command every run and sweep directory under the block's directory is checked against the
README's output tables: every file in it is a row, and every row that is not conditional ("only ...")
is there.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest
from conftest import ROOT, THREADS, user_env, warm_infomax
from images_on_disk import rgb_noise, save
from markdown_it import MarkdownIt
from omegaconf import OmegaConf

README = ROOT / "README.md"
TAG = "readme-test"
DIRECTIVE = re.compile(
    r"^(?P<verb>extra|skip|exit (?P<code>\d+))(?: (?P<prefix>[^:]+))?: (?P<text>.*)$"
)
SHELLS = ("bash", "sh", "shell", "console")
TIMEOUT = 600  # seconds per command


@dataclass
class Command:
    text: str  # as written in the README (continuation lines joined)
    line: int  # 1-based line in README.md
    skip: str | None = None
    exit: int = 0
    extra: str = ""  # overrides appended to each `infomax run` it starts


@dataclass
class Block:
    line: int
    section: str
    commands: list[Command]
    errors: list[str] = field(default_factory=list)  # directives that do not parse or match
    files: dict[str, str] = field(
        default_factory=dict
    )  # the section's files, written before it runs


def _tokens() -> list:
    return MarkdownIt("commonmark").enable("table").parse(README.read_text())


def _directives(html: str) -> list[str]:
    body = html.strip().removeprefix("<!--").removesuffix("-->").strip()
    if not body.startswith(TAG):
        return []
    return [line.strip() for line in body[len(TAG) :].strip(" :\n").splitlines() if line.strip()]


def _commands(fence, start: int) -> list[Command]:
    """The block's commands: one per line, `\\`-continued lines joined, comment lines left out."""
    out, pending, first = [], "", 0
    for k, raw in enumerate(fence.content.splitlines()):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        first = first if pending else start + 2 + k
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(Command((pending + line).strip(), first))
        pending = ""
    return out


def _apply(block: Block, directive: str) -> None:
    m = DIRECTIVE.match(directive)
    if m is None:
        block.errors.append(f"line {block.line}: not a directive: {directive!r}")
        return
    prefix = (m["prefix"] or "").strip()
    hit = [c for c in block.commands if c.text.startswith(prefix)]
    if not hit:
        block.errors.append(f"line {block.line}: {directive!r} matches no command of the block")
    for c in hit:
        if m["verb"] == "skip":
            c.skip = m["text"]
        elif m["verb"] == "extra":
            c.extra = f"{c.extra} {m['text']}".strip()
        else:
            c.exit = int(m["code"])


FILE = re.compile(r"^file: (?P<path>[\w./-]+)$")


def blocks() -> list[Block]:
    """Every shell code block of the README, with its directives applied and the files its section
    showed before it (`file:` directives)."""
    out, section, pending, heading, files = [], "", [], False, {}
    for tok in _tokens():
        if tok.type == "heading_open":
            heading, files = True, {}
        elif heading and tok.type == "inline":
            section, heading = tok.content, False
        if tok.type == "html_block":
            pending = _directives(tok.content)
            continue
        if tok.type == "fence" and tok.info.split()[:1] and tok.info.split()[0] in SHELLS:
            block = Block(tok.map[0] + 1, section, _commands(tok, tok.map[0]), files=dict(files))
            for d in pending:
                _apply(block, d)
            out.append(block)
        elif tok.type == "fence":
            for d in pending:
                if m := FILE.match(d):
                    files[m["path"]] = tok.content
        pending = []
    return out


# ------------------------------------------------------------------------------ the output tables
@dataclass
class Row:
    names: list[str]  # the file names of the row's first cell: a name, a glob, or a folder ("x/")
    optional: bool  # "only ...": written under a condition
    when: str | None  # "`key=value` only": the override it is written under


def _cells(tokens: list, start: int) -> list[list]:
    rows, row = [], None
    for tok in tokens[start:]:
        if tok.type == "table_close":
            break
        if tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and row is not None:
            row.append(tok)
        elif tok.type == "tr_close":
            rows.append(row)
    return rows[1:]  # without the header


def output_tables() -> dict[str, list[Row]]:
    """The README's tables of what a run directory and a sweep directory hold ("A run directory",
    "A sweep directory" lead them)."""
    tokens, out, lead = _tokens(), {}, ""
    for i, tok in enumerate(tokens):
        if tok.type == "inline" and tokens[i - 1].type == "paragraph_open":
            lead = tok.content
        if tok.type != "table_open" or not lead.startswith(
            ("A run directory", "A sweep directory")
        ):
            continue
        rows = []
        for first, content, *_ in _cells(tokens, i):
            names = [c.content for c in first.children if c.type == "code_inline"]
            text = content.content
            when = re.match(r"`([^`=]+=[^`]+)` only", text)
            rows.append(Row(names, text.startswith("only") or when is not None, when and when[1]))
        out["run" if lead.startswith("A run") else "sweep"] = rows
        lead = ""
    return out


def _covers(row: Row, rel: str) -> bool:
    return any(
        rel == n.rstrip("/") or (n.endswith("/") and rel.startswith(n)) or fnmatch.fnmatch(rel, n)
        for n in row.names
    )


def _present(folder: Path, name: str) -> bool:
    return any(folder.glob(name.rstrip("/"))) if "*" in name else (folder / name).exists()


def check_directory(folder: Path, rows: list[Row], job_dirs: bool) -> list[str]:
    """What in `folder` the table does not list, and the table's unconditional rows it lacks (for a
    finished run: summary.json there). In a sweep directory the job directories are the run table's."""
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if job_dirs and (folder / rel.split("/")[0] / ".hydra").is_dir():
            continue  # a job directory: checked as a run
        if path.is_file() and not any(_covers(r, rel) for r in rows):
            problems.append(f"{folder}: {rel} is written but not in the README's table")
    if (folder / "summary.json").is_file() or (job_dirs and (folder / "comparison.csv").exists()):
        overrides = _overrides(folder)
        for r in rows:
            needed = r.when in overrides if r.when else not r.optional
            if needed and not any(_present(folder, n) for n in r.names):
                problems.append(f"{folder}: the README lists {r.names} but it is not there")
    return problems


def _overrides(folder: Path) -> list[str]:
    path = folder / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []


def check_outputs(where: Path, tables: dict[str, list[Row]]) -> list[str]:
    problems = []
    for hydra in sorted(where.rglob(".hydra")):
        problems += check_directory(hydra.parent, tables["run"], job_dirs=False)
    for multirun in sorted(where.rglob("multirun.yaml")):
        problems += check_directory(multirun.parent, tables["sweep"], job_dirs=True)
    return problems


# ------------------------------------------------------------------------------ running a block
def _home(base: Path) -> Path:
    """A home whose photos/ holds two labels of twelve small PNGs (the own-images examples)."""
    home = base / "home"
    for k in range(24):
        label = ("owls", "trees")[k % 2]
        save(home / "photos" / label / f"{k:02d}.png", rgb_noise(72 + k, 96, seed=k))
    return home


def _shims(base: Path) -> Path:
    """`infomax` and `python` as this checkout's, the block's extra overrides appended to every
    `infomax run`. `infomax` is each time a fresh process forked from the worker's warm interpreter
    (tests/zygote.py: the command as `python -m infomax_cli.cli` would run it, without 2-5 s of imports)."""
    bin_dir = base / "bin"
    bin_dir.mkdir()
    python = sys.executable
    client = shlex.join(warm_infomax())
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{python}" "$@"\n')
    # this checkout's package even where a command sets PYTHONPATH itself (PYTHONPATH=. for a module)
    (bin_dir / "infomax").write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{ROOT}"; export PYTHONPATH\n'
        f'if [ "$1" = run ]; then exec {client} "$@" $README_TEST_EXTRA; fi\n'
        f'exec {client} "$@"\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def run_command(text: str, cwd: Path, bin_dir: Path, env: dict) -> subprocess.CompletedProcess:
    if text.startswith("make "):  # this checkout's Makefile, `install` taken as done
        text = f"make -s -f {ROOT / 'Makefile'} -o install BIN={bin_dir} " + text[len("make ") :]
    return subprocess.run(
        ["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def _items():
    out = []
    for b in blocks():
        runnable = [c for c in b.commands if c.skip is None]
        if runnable:
            marks = [pytest.mark.slow, pytest.mark.cli]
            out.append(pytest.param(b, None, id=f"line{b.line}", marks=marks))
        for c in b.commands:
            if c.skip is not None:
                out.append(
                    pytest.param(
                        b,
                        c,
                        id=f"line{c.line}-skipped",
                        marks=pytest.mark.skip(
                            reason=f"README.md:{c.line} ({b.section}): `{c.text}`: {c.skip}"
                        ),
                    )
                )
    return out


@pytest.mark.parametrize("block,skipped", _items())
@pytest.mark.long
def test_readme_block_runs_as_documented(block: Block, skipped, tmp_path):
    assert not block.errors, block.errors
    tables = output_tables()
    cwd = tmp_path / "work"
    cwd.mkdir()
    bin_dir = _shims(tmp_path)
    env = {
        **user_env(),
        "HOME": str(_home(tmp_path)),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(THREADS),  # conftest's: one per test worker
        # matplotlib's font cache from the real home, not rebuilt in every fresh one
        "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR") or matplotlib.get_cachedir(),
    }
    for name, text in block.files.items():
        (cwd / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / name).write_text(text)
    for c in block.commands:
        if c.skip is not None:
            continue
        r = run_command(c.text, cwd, bin_dir, {**env, "README_TEST_EXTRA": c.extra})
        said = f"README.md:{c.line}: `{c.text}` exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert r.returncode == c.exit, said
        assert "Traceback" not in r.stdout + r.stderr, said
        if c.exit:  # the documented error: infomax's own line (make adds its own, with the status)
            assert any(line.startswith("infomax:") for line in r.stderr.splitlines()), said
            assert not c.text.startswith("make ") or f"Error {c.exit}" in r.stderr, said
        problems = check_outputs(cwd, tables)
        assert not problems, f"README.md:{c.line}: `{c.text}`:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------ fast checks
def test_every_readme_block_is_run_or_skipped_with_a_reason():
    found = blocks()
    assert len(found) >= 4
    for b in found:
        assert not b.errors, b.errors
        assert b.commands, f"README.md:{b.line}: a shell block without a command"
        for c in b.commands:
            assert c.skip is None or c.skip.strip(), f"README.md:{c.line}: skipped without a reason"
    commands = [c.text for b in found for c in b.commands]
    assert any(c.startswith("infomax run") for c in commands)


def test_the_output_tables_are_read_from_the_readme():
    tables = output_tables()
    run, sweep = tables["run"], tables["sweep"]
    names = {n for r in run for n in r.names}
    assert {"loss.csv", "summary.json", "features/", "failed.json"} <= names
    assert {"comparison.csv", "claims.csv", "report.html"} <= {n for r in sweep for n in r.names}
    failed = next(r for r in run if "failed.json" in r.names)
    images = next(r for r in run if "images.csv" in r.names)
    summary = next(r for r in run if "summary.json" in r.names)
    assert failed.optional and not summary.optional and images.when == "dataset=folder"


def test_the_checker_finds_an_undocumented_file_and_a_missing_one(tmp_path):
    """check_directory fails on a file the table does not list, and on a listed one that is missing."""
    run = tmp_path / "run"
    rows = [
        Row(["summary.json"], False, None),
        Row(["loss.csv"], False, None),
        Row(["features/"], False, None),
        Row(["images.csv"], True, "dataset=folder"),
    ]
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- dataset=folder\n")
    (run / "summary.json").write_text("{}")
    (run / "features").mkdir()
    (run / "features" / "x.png").write_bytes(b"")
    (run / "secret.bin").write_bytes(b"")
    problems = check_directory(run, [*rows, Row([".hydra/"], False, None)], job_dirs=False)
    assert problems == [
        f"{run}: secret.bin is written but not in the README's table",
        f"{run}: the README lists ['loss.csv'] but it is not there",
        f"{run}: the README lists ['images.csv'] but it is not there",
    ]


def test_every_python_file_the_readme_names_exists():
    """A module the README points a reader at (`model/geometry.py`, `benchmarks/bench_mi.py`) is there:
    relative to the checkout, to the package or to benchmarks/."""
    text = README.read_text()
    # the files a reader writes (`file:` blocks, such as the module of "Your own encoder") aside
    written = set(re.findall(r"^file: (\S+)$", text, flags=re.M))
    named = set(re.findall(r"`([\w./-]+\.py)`", text)) - written
    assert len(named) > 20
    missing = [
        n
        for n in sorted(named)
        if not any((d / n).is_file() for d in (ROOT, ROOT / "infomax_cli", ROOT / "benchmarks"))
    ]
    assert missing == []
