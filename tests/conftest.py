"""Shared helpers: compose configs as Hydra does, and run the real CLI: in this process when nothing
needs a fresh one (a job without a launcher, a signal or an environment of its own), else in a fresh
process as a user would (forked from a warm interpreter, tests/zygote.py, unless a new one is the point)."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

# One CPU thread per test process (before torch or numba is imported): make test runs two workers on
# two cores, and two threads each made small tensors' work several times slower (threads waiting on
# each other); a job the tests run, in this process or a fresh one, gets THREADS.
THREADS = 1
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, str(THREADS))

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from infomax_cli import config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
config.register()

# A tiny job: a dozen images, two steps. Every override a user could type.
TINY = [
    "dataset=samples",
    "dataset.n_images=12",
    "dataset.per_photo=1",
    "train.steps=2",
    "train.batch_size=4",
    "measure.batch_size=8",
    "device=cpu",
]


def user_env(**extra: str) -> dict:
    """This process's environment as a user's shell has it: without what `make test ARGS=...` puts
    there for the commands it starts (ARGS itself, and MAKEFLAGS, which carries it on), which a `make
    demo` the tests start would pass on to `infomax run`."""
    make = ("ARGS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if k not in make}
    return {**env, **extra}


def compose_cfg(overrides: list[str] = ()):
    """The config `infomax run OVERRIDES` composes (conf/ and the registered schema), each caller
    getting its own copy of a composition made once per list of overrides in a test process: 80 of
    the suite's 200 compositions repeat one (0.13 s each, against 3 ms for the copy); no test
    changes conf/ or the schema."""
    return copy.deepcopy(_composed(tuple(overrides)))


@functools.cache
def _composed(overrides: tuple[str, ...]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def check_config(cfg) -> None:
    """Every check a composed config gets before a job writes anything: the schema's range rules on
    the typed config (config.check) and the case's own (model.build.check_case: a stack's geometry,
    a module of your own built and probed)."""
    from infomax_cli.model.build import check_case

    typed = config.typed(cfg)
    config.check(typed)
    check_case(typed)


def infomax(
    *args: str,
    cwd: Path | None = None,
    timeout: float = 600,
    env: dict | None = None,
    process: bool | None = None,
    interpreter: str = "warm",
    path: list[Path] = (),
) -> subprocess.CompletedProcess:
    """Run `infomax ARGS` as a user would; returns its exit status and what it printed. In a fresh
    process when `process`, or by default when `env` is given or a launcher is named (its workers are
    processes); else in this process (cli.main, the same code from argv to exit status, without 3 s of
    imports). A fresh process is forked from this worker's warm interpreter (tests/zygote.py: a process
    of its own, set up as `python -m infomax_cli.cli` would be, without the imports), or with
    `interpreter="new"` is a new interpreter, for what one reads only as it starts (PYTHONHASHSEED).
    `path`: folders holding the user's own modules, put first on the import path as PYTHONPATH puts
    them for a fresh process (README's `PYTHONPATH=. infomax run ...` is run so by test_readme.py)."""
    if process is None:
        process = env is not None or any(a.startswith("hydra/launcher=") for a in args)
    if not process:
        with on_import_path(path):
            return in_process(list(args), cwd or ROOT)
    pythonpath = [*map(str, path), os.environ.get("PYTHONPATH", "")]
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(THREADS),
        **({"PYTHONPATH": os.pathsep.join(pythonpath).rstrip(os.pathsep)} if path else {}),
        **(env or {}),
    }
    new = interpreter == "new"
    command = [sys.executable, "-m", "infomax_cli.cli"] if new else warm_infomax()
    return subprocess.run(
        [*command, *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def warm_infomax() -> list[str]:
    """The command that runs `infomax` as a process forked from this worker's warm interpreter."""
    return [str(warm_python()), "-m", "infomax_cli.cli"]


@functools.cache
def warm_python() -> Path:
    """This test worker's warm interpreter (tests/zygote.py), started on first use with the worker's
    environment and stopped when the worker ends: the `python` that forks `-m infomax_cli.cli` (and
    submitit's jobs, and benchmarks/' scripts) from it, and runs anything else as Python would."""
    import atexit
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="infomax-zygote-"))  # short: a socket path has 107 bytes
    socket_path, log = folder / "socket", folder / "server.log"
    env = {**user_env(), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(THREADS)}
    with log.open("w") as err:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "zygote.py"), "--serve", str(socket_path)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )

    def stop():
        server.kill()
        server.wait(60)
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    if server.stdout.readline().strip() != "ready":
        server.wait(60)
        raise RuntimeError(f"tests/zygote.py did not start:\n{log.read_text()[-3000:]}")
    return folder / "python"


@contextlib.contextmanager
def on_import_path(folders: list[Path]):
    """`folders` first on sys.path for the call; the modules imported from them are forgotten after
    it, so that the next test's module of the same name is its own file, not this one's."""
    import importlib

    folders = [str(Path(f).resolve()) for f in folders]
    saved = sys.path[:]
    sys.path[:0] = folders
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved
        for name, module in list(sys.modules.items()):
            where = getattr(module, "__file__", None) or ""
            if any(where.startswith(f + os.sep) for f in folders):
                del sys.modules[name]
        importlib.invalidate_caches()


def in_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`infomax ARGS` run by cli.main in this process, from `cwd`, its stdout and stderr captured;
    settle's rounds (the one command that starts `sys.executable` itself) are forked from the warm
    interpreter, which no other command needs started. What a command changes for the process is
    put back after it (the working directory, the root logger's handlers, Hydra's global state, the
    thread count, sys.argv, sys.executable)."""
    import torch
    from hydra.core.global_hydra import GlobalHydra

    from infomax_cli import cli

    out, err = io.StringIO(), io.StringIO()
    root, here, argv, threads, executable = (
        logging.getLogger(),
        os.getcwd(),
        sys.argv[:],
        torch.get_num_threads(),
        sys.executable,
    )
    handlers, level = root.handlers[:], root.level
    try:
        os.chdir(cwd)
        torch.set_num_threads(THREADS)
        if args[:1] == ["settle"]:
            sys.executable = str(warm_python())
        # the root logger as a fresh process has it: no handler (pytest's aside), so that the command
        # sets up its own console logging, into the captured output
        root.handlers[:] = []
        root.setLevel(logging.WARNING)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as e:  # argparse's --help
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(here)
        for handler in root.handlers:
            handler.close()
        root.handlers[:], sys.argv[:], sys.executable = handlers, argv, executable
        root.setLevel(level)
        GlobalHydra.instance().clear()
        torch.set_num_threads(threads)
    return subprocess.CompletedProcess(["infomax", *args], code, out.getvalue(), err.getvalue())


# A failure-path test's job: TINY measuring no more than it must (no information plane, no other
# alignments, no example pictures), for tests that run a job to see how something else fails.
LEAN = [*TINY, "measure.infoplane_every=0", "measure.alt_aligns=[]", "measure.examples=0"]

# The one tiny sweep the tests share: the four cases on TINY, one seed.
TINY_SWEEP = ["case=a,b,c,d", *TINY]


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`infomax run -m case=a,b,c,d TINY` run once for the whole session, whatever the number of
    pytest-xdist workers (the first to ask runs it, under a file lock, and the others read it), and
    what it printed. Read it in place; a test that writes into it works on a copy (shutil.copytree)."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's: the session's is the one above it
        shared = shared.parent
    sweep, done = shared / "tiny-sweep", shared / "tiny-sweep.json"
    with FileLock(str(shared / "tiny-sweep.lock")):
        if not done.is_file():
            r = infomax("run", "-m", *TINY_SWEEP, f"hydra.sweep.dir={sweep}")
            done.write_text(json.dumps([r.returncode, r.stdout, r.stderr]))
    code, stdout, stderr = json.loads(done.read_text())
    assert code == 0, stderr[-3000:]
    return sweep, subprocess.CompletedProcess(["infomax", "run", "-m"], code, stdout, stderr)


@pytest.fixture
def tiny():
    return list(TINY)


def _no_pictures(monkeypatch, keep: frozenset = frozenset()) -> None:
    """Every figure function but those in `keep` draws nothing, and each picture file gets a 1x1 blank
    PNG in its place (the same files written, the same number embedded in a report)."""
    from PIL import Image

    from infomax_cli.render import claims_figure, figures

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), "white").save(buf, format="png")
    blank, drawn = buf.getvalue(), figures.png
    for module in (figures, claims_figure):
        for name in dir(module):
            if name.endswith("_figure") and name not in keep and callable(getattr(module, name)):
                monkeypatch.setattr(module, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(figures, "png", lambda fig: blank if fig is None else drawn(fig))


@pytest.fixture
def no_pictures(monkeypatch):
    """For a test about what a job or a comparison computes, decides, prints or writes as text, not
    about its pictures: in this process nothing is drawn (matplotlib's figures are most of a tiny
    job's or a small comparison's time, about 1 s each). A process the test starts draws as always.
    Every picture these tests skip is drawn from the same kind of run or sweep by another test
    (test_report.py's, the end-to-end ones); a test whose input is unusual for a picture (names,
    sizes, a module of your own, NaN intervals) draws its pictures."""
    _no_pictures(monkeypatch)


@pytest.fixture
def no_pictures_but_claims(monkeypatch):
    """As `no_pictures`, but claims.png is drawn: for the tests whose claims reach a status or a look
    that no other test's claims.png shows (holds, a mixed verdict, a second look)."""
    _no_pictures(monkeypatch, keep=frozenset({"claims_figure"}))


def pytest_collection_modifyitems(config, items):
    """Tests that run the `infomax` command in a fresh process (seconds each, mostly imports) get the
    `cli` mark, so `make test-fast` can leave them to `make test`. The `long` tests go first (in their
    order): a worker that takes one last runs alone while the others have finished (a 37 s compile
    at the end of the collection left one of two CPUs idle for 11 s of a 329 s run)."""
    import inspect

    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and "infomax(" in inspect.getsource(fn):
            item.add_marker(pytest.mark.cli)
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable


def pytest_configure(config):
    _refuse_loadgroup_without_groups(config)
    _compile_kernels_once(config)


_COMPILING: list[subprocess.Popen] = []


def _compile_kernels_once(config):
    """numba's kernels compiled once (tests/kernels.py): by the processes xdist's controller starts
    while its workers start, one per part (the workers wait for them at theirs); without workers, here."""
    import kernels

    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        quiet = {
            "stdin": subprocess.DEVNULL,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
        }
        for part in range(len(kernels.PARTS)):
            command = [sys.executable, kernels.__file__, str(part)]
            _COMPILING.append(subprocess.Popen(command, **quiet))
    else:
        kernels.compile_kernels()


def pytest_unconfigure(config):
    """No compile left running after the session (a short one ends before it does)."""
    for process in _COMPILING:
        process.wait(600)


def _refuse_loadgroup_without_groups(config):
    """make test's `--dist loadgroup` sends a module's tests to one worker, so that its module fixture
    (a sweep, a trained reference run) is made once; pytest-xdist 3.8 does so by renaming the tests,
    which pytest 9.2 silently undoes (its groups were ignored). Stop, saying so, rather than run that
    way."""
    if getattr(config.option, "dist", "no") == "loadgroup" and pytest.version_tuple >= (9, 2):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} and pytest-xdist do not keep --dist loadgroup's groups: "
            "install the versions pyproject.toml allows (make install)"
        )
