"""Fresh Python processes without their imports: forked from a warm interpreter (the tests' `python`).

A fresh `infomax` spends 2-5 s importing torch, its compiler front end (which the optimizer imports),
Hydra, pandas, matplotlib and numba before it reads its arguments; the README's blocks, the launcher and
signal tests, settle's rounds and the GPU check's CPU mode start dozens. Here one server per test worker
imports them once and forks a process per command. It stands where the interpreter does: a file named
`python` beside the server's socket, which the tests use as `sys.executable` (conftest.warm_python), so
that a command's own processes (settle's rounds, submitit's and joblib's jobs, the GPU check's jobs) are
forked too.

    python tests/zygote.py --serve SOCKET     # the server: writes SOCKET's `python`, prints `ready`
    <folder>/python [-u] -m MODULE ARGS...     # as `python -m MODULE ARGS` (FORKED below), forked
    <folder>/python ANY OTHER ARGS...          # the interpreter itself (exec), a new one

The forked process is set up as the new interpreter would be in the caller's place: the caller's stdin,
stdout, stderr and any other descriptor it was started with (passed over the socket, under the same
numbers: loky's pipes to its workers), working directory, environment, import path (the working
directory or the script's folder, then PYTHONPATH), the module or script run as `__main__` (runpy), and
the interpreter's exit as a program sees it (threads joined, atexit handlers, the log files' flush; not the
modules' teardown, `_exit`). It runs in a process group of its own.
The caller's process (the client, standard library only: milliseconds) passes on the signals a user or
a parent sends (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2) to that group and ends as the
forked process ends: with its exit status, or killed by the same signal; a client killed outright takes
its forked process with it. What it cannot give is what an interpreter reads only as it starts
(PYTHONHASHSEED, PYTHON* flags): those are the server's, and a test about them starts a new interpreter
(`conftest.infomax(..., interpreter="new")`).
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import sys

STATUS_LOST = 1  # the forked process's status never came (its waiter was killed): a crash's exit
MAX_FDS = 256  # descriptors a client may pass (stdin, stdout, stderr and those it inherited)
PARENT_CHECK_S = 2  # how often the server checks that the test worker that started it is alive
PASSED_ON = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What is forked: the modules whose imports the server holds (infomax, submitit's and joblib's job
# processes), and the scripts of benchmarks/ (the GPU check); anything else (`-c`, inductor's compile
# workers) is a new interpreter.
FORKED = (
    "infomax_cli.cli",
    "submitit.core._submit",
    "joblib.externals.loky.backend.popen_loky_posix",
)
SCRIPTS = os.path.join(ROOT, "benchmarks")


# ------------------------------------------------------------------------------------------ client
def python(path: str, real: str, argv: list[str]) -> int:
    """`python ARGV` for the caller: forked from the server at `path` when it is a command it serves,
    else `real` (the interpreter) exec'd with the same arguments and descriptors."""
    run = _forked_command(argv)
    if run is None:
        os.execv(real, [real, *argv])
    return client(path, run)


def _forked_command(argv: list[str]) -> dict | None:
    """{"module": M} or {"script": S}, with "argv", when ARGV is `[-u] -m M ARGS` for M in FORKED or
    `[-u] S ARGS` for a .py file in SCRIPTS; None otherwise."""
    args = argv[1:] if argv[:1] == ["-u"] else argv
    if args[:1] == ["-m"] and len(args) > 1 and args[1] in FORKED:
        return {"module": args[1], "argv": args[2:]}
    if args and args[0].endswith(".py") and not args[0].startswith("-"):
        script = os.path.abspath(args[0])
        if os.path.dirname(script) == SCRIPTS and os.path.isfile(script):
            return {"script": script, "argv": args[1:]}
    return None


def client(path: str, run: dict) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        # stdin, stdout, stderr, and every other descriptor this process was started with (a pipe a
        # parent passed on, as loky does to its workers): the forked process gets them under the same
        # numbers and this process keeps none but the first three, so a pipe's reader sees its end
        # when the forked process ends, as with a new interpreter
        inherited = _inherited_fds(s.fileno())
        socket.send_fds(s, [b"\0"], [0, 1, 2, *inherited])
        for fd in inherited:
            os.close(fd)
        # the signals this process was started with ignored (a parent's SIG_IGN outlives exec): the
        # forked process ignores them too, as a new interpreter would
        ignored = [n for n in PASSED_ON if signal.getsignal(signal.Signals[n]) == signal.SIG_IGN]
        here = {"cwd": os.getcwd(), "env": dict(os.environ), "ignored": ignored, "fds": inherited}
        request = json.dumps({**run, **here}).encode()
        s.sendall(len(request).to_bytes(8, "big") + request)
        # the socket stays open both ways: the server sees this process end (then ends the fork)
        reader = s.makefile("rb")
        pid = int(reader.readline() or 0)
        if pid:
            for name in PASSED_ON:
                signal.signal(signal.Signals[name], lambda n, _: _pass_on(pid, n))
        status = reader.readline().strip()
    if not status:
        print("zygote: the forked process ended without an exit status", file=sys.stderr)
        return STATUS_LOST
    code = int(status)
    if code < 0:  # killed by a signal: so is this process, as a parent would see it
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: no handler to reset
            pass
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _inherited_fds(own: int) -> list[int]:
    """The open descriptors above 2 but `own` (the socket), from /proc (none where there is no /proc)."""
    try:
        listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return []
    fds = []
    for fd in sorted(listed):
        if fd > 2 and fd != own:
            try:
                os.fstat(fd)  # the listing's own descriptor is closed by now
            except OSError:
                continue
            fds.append(fd)
    return fds


def _pass_on(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)  # its group: as a terminal's Ctrl-C reaches a command's processes
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------------------------------ server
def preload() -> None:
    """What the forked commands import, loaded once, and numba's kernels; nothing else run (the idle
    native threads torch starts on import are those a DataLoader worker is forked beside)."""
    import hydra_plugins.hydra_joblib_launcher._core  # noqa: F401
    import joblib.externals.loky.backend.popen_loky_posix  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import submitit.core._submit  # noqa: F401
    import torch._dynamo  # noqa: F401  (torch.optim's first call imports it)

    import infomax_cli.analysis.compare  # noqa: F401
    import infomax_cli.app  # noqa: F401
    import infomax_cli.commands  # noqa: F401
    import infomax_cli.experiment  # noqa: F401
    import infomax_cli.mi.validate  # noqa: F401
    import infomax_cli.render.report  # noqa: F401
    import infomax_cli.sensitivity  # noqa: F401
    import infomax_cli.settle  # noqa: F401

    _compile_kernels()


def _compile_kernels() -> None:
    """numba's kernels, compiled (or loaded from numba's cache) here once rather than in each forked
    process (its workqueue threading layer is fork-safe): tests/kernels.py."""
    import kernels  # tests/, this script's folder

    kernels.compile_kernels()
    del sys.modules["kernels"]  # not a module a forked command finds already imported


def write_python(path: str) -> str:
    """The `python` beside the socket: this interpreter's stand-in, forking what the server serves."""
    shim = os.path.join(os.path.dirname(path), "python")
    with open(shim + ".tmp", "w") as f:
        f.write(
            f"#!{sys.executable} -S\nimport sys\nsys.path.insert(0, {os.path.dirname(__file__)!r})\n"
            f"import zygote\nsys.exit(zygote.python({path!r}, {sys.executable!r}, sys.argv[1:]))\n"
        )
    os.chmod(shim + ".tmp", 0o755)
    os.replace(shim + ".tmp", shim)
    return shim


def serve(path: str) -> None:
    import threading

    preload()
    if threading.active_count() != 1:  # a fork copies no thread: only a lock one of them held
        sys.exit(f"zygote: {threading.active_count()} Python threads after the imports; no fork")
    base_path = [p for p in sys.path[1:] if p not in _pythonpath(os.environ)]  # no script folder
    # what the imports made stays for good, out of the collector's sight: a forked process's
    # collections no longer walk (and so copy, page by page) the whole inherited heap
    gc.collect()
    gc.freeze()
    shim = write_python(path)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the waiters
    parent = os.getppid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen()
        listener.settimeout(PARENT_CHECK_S)
        print("ready", flush=True)
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                # the test worker that started it is gone (even killed): so is the server
                if os.getppid() != parent:
                    return
                continue
            conn.settimeout(None)
            if os.fork() == 0:
                listener.close()
                wait_on(conn, base_path, shim)  # exits
            conn.close()


def _pythonpath(env: dict) -> list[str]:
    return [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the client left before its request was read")
        data += chunk
    return data


def wait_on(conn: socket.socket, base_path: list[str], shim: str) -> None:
    """The waiter: set up the caller's process, fork it, tell the client its pid, wait for it as a
    parent does (its exit status, or the signal that killed it) and send that; kill it when the client
    is gone first. Never returns (the forked process exits through _exit)."""
    try:
        _, fds, _, _ = socket.recv_fds(conn, 1, MAX_FDS)
        size = int.from_bytes(_recv_exactly(conn, 8), "big")
        request = json.loads(_recv_exactly(conn, size))
        for target, fd in zip((0, 1, 2), fds[:3], strict=True):
            os.dup2(fd, target)
            os.close(fd)
        extra = fds[3:]
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # waited for below, and by its own parents
        pid = os.fork()
    except BaseException:
        os._exit(1)
    if pid == 0:
        try:
            conn.close()
            _renumber(extra, request["fds"])
        except BaseException:
            os._exit(1)
        become(request, base_path, shim)  # exits as the interpreter would (_exit)
    try:
        for fd in (0, 1, 2, *extra):  # the caller's descriptors are the forked process's alone
            os.close(fd)
        conn.sendall(f"{pid}\n".encode())
        status, client_gone = _wait(conn, pid)
        if not client_gone:
            conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    finally:
        os._exit(0)  # the server's atexit handlers are not the waiter's


def _renumber(fds: list[int], numbers: list[int]) -> None:
    """Give the received descriptors `fds` the numbers they had in the client (inheritable, as there):
    first moved above every number involved, so that none is closed by another's dup2."""
    import fcntl

    if len(fds) != len(numbers):
        raise OSError(f"zygote: {len(fds)} descriptors came for {len(numbers)} numbers")
    floor = max([*fds, *numbers], default=0) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in fds]
    for fd in fds:
        os.close(fd)
    for fd, number in zip(moved, numbers):
        os.dup2(fd, number, inheritable=True)
        os.close(fd)


def _wait(conn: socket.socket, pid: int) -> tuple[int, bool]:
    """Wait for the forked process `pid` to end: its wait status, and whether the client went first
    (killed: then the forked process and its group are killed too)."""
    client_gone = False
    try:
        ended = os.pidfd_open(pid)  # readable once the process has ended
    except OSError:  # no pidfd (Linux before 5.3): look every 50 ms
        ended = None
    while True:
        watch = ([] if client_gone else [conn]) + ([] if ended is None else [ended])
        ready, _, _ = select.select(watch, [], [], None if ended is not None else 0.05)
        if ended is None or ended in ready:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, client_gone
        if conn in ready and not conn.recv(1):  # the client was killed: its process goes with it
            client_gone = True
            _kill_group(pid)


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def become(request: dict, base_path: list[str], shim: str) -> None:
    """Become `python -m MODULE ARGS` (or `python SCRIPT ARGS`) as the client would have started it,
    in a process group of its own; never returns."""
    import runpy

    os.setpgid(0, 0)
    for name in PASSED_ON:  # the caller's dispositions, not the server's (its parent's)
        default = signal.default_int_handler if name == "SIGINT" else signal.SIG_DFL
        ignore = name in request["ignored"]
        signal.signal(signal.Signals[name], signal.SIG_IGN if ignore else default)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = request.get("script")
    first = os.path.dirname(script) if script else os.getcwd()
    sys.path[:] = [first, *_pythonpath(request["env"]), *base_path]
    sys.executable = shim  # its own processes are forked as well
    try:
        if script:
            sys.argv = [script, *request["argv"]]
            runpy.run_path(script, run_name="__main__")
        else:
            # as in a new interpreter, the module is run as __main__ and not yet imported
            sys.modules.pop(request["module"], None)
            sys.argv = ["-m", *request["argv"]]  # runpy puts the module's file first
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    _exit(code)


def _exit(code: int) -> None:
    """The interpreter's exit as a program sees it: non-daemon threads waited for (with what
    concurrent.futures registers there), atexit handlers (logging's flush, weakref finalizers),
    stdout and stderr flushed, this status; without tearing down the modules, which in a forked
    process writes to (and so copies) every page of the inherited heap: about 1 s of a CPU."""
    import atexit
    import threading

    threading._shutdown()  # what Py_FinalizeEx calls first (CPython's own, private)
    atexit._run_exitfuncs()  # and then
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # replaced, or closed by the command
            pass
    os._exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] != ["--serve"] or len(sys.argv) != 3:
        sys.exit("usage: python tests/zygote.py --serve SOCKET (the docstring says the rest)")
    serve(sys.argv[2])
