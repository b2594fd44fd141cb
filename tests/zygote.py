"""A fresh `infomax` process without its imports: forked from a warm interpreter (the tests' `infomax`).

A fresh `infomax` spends 2-5 s importing torch, its compiler front end (which the optimizer imports),
Hydra, pandas, matplotlib and numba before it reads its arguments; the README's blocks and the tests
of launchers start dozens. Here one server per test worker imports them once and forks a child per
command. The child is set up as `python -m infomax_cli.cli ARGS` would be in the caller's place: the
caller's stdin, stdout and stderr (passed over the socket), working directory, environment, import
path (the working directory, then PYTHONPATH), then the module run as `python -m` runs it (runpy:
`__main__`, sys.argv) and the interpreter's own exit (atexit handlers, the log files' flush). What it
cannot give is what an interpreter reads only as it starts (PYTHONHASHSEED, PYTHON* flags): those are
the server's, and a test about them starts a new interpreter (`conftest.infomax(..., interpreter="new")`).
A signal sent to the client is not passed on: a test that signals a job starts a new interpreter too.

    python tests/zygote.py --serve SOCKET     # the server: prints `ready` once it listens
    python -S tests/zygote.py SOCKET ARGS...  # a command: exits with the child's status

The client imports only the standard library (milliseconds), so it can stand where `infomax` is.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

STATUS_LOST = 1  # the child ended without reporting a status (killed): what a crash exits with
PARENT_CHECK_S = 2  # how often the server checks that the test worker that started it is alive


# ------------------------------------------------------------------------------------------ client
def client(path: str, argv: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        socket.send_fds(s, [b"\0"], [0, 1, 2])
        request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        s.sendall(json.dumps(request).encode())
        s.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: s.recv(4096), b""))  # until the child has exited
    if not reply.strip():
        print("zygote: the infomax process ended without an exit status", file=sys.stderr)
        return STATUS_LOST
    return int(reply)


# ------------------------------------------------------------------------------------------ server
def preload() -> None:
    """What the `infomax` commands import, loaded once and nothing run (the idle native threads
    torch starts on import are those a DataLoader worker is forked beside)."""
    import matplotlib.pyplot  # noqa: F401
    import torch._dynamo  # noqa: F401  (torch.optim's first call imports it)

    import infomax_cli.analysis.compare  # noqa: F401
    import infomax_cli.app  # noqa: F401
    import infomax_cli.commands  # noqa: F401
    import infomax_cli.experiment  # noqa: F401
    import infomax_cli.mi.validate  # noqa: F401
    import infomax_cli.render.report  # noqa: F401
    import infomax_cli.sensitivity  # noqa: F401
    import infomax_cli.settle  # noqa: F401


def serve(path: str) -> None:
    import threading

    preload()
    if threading.active_count() != 1:  # a fork copies no thread: only a lock one of them held
        sys.exit(f"zygote: {threading.active_count()} Python threads after the imports; no fork")
    base_path = [p for p in sys.path[1:] if p not in _pythonpath(os.environ)]  # no script folder
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
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
                child(conn, base_path)  # exits
            conn.close()


def _pythonpath(env: dict) -> list[str]:
    return [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


def child(conn: socket.socket, base_path: list[str]) -> None:
    """Become `python -m infomax_cli.cli ARGS` as the client would have started it; never returns."""
    import runpy

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # subprocess must be able to wait for its own
    _, fds, _, _ = socket.recv_fds(conn, 1, 3)
    request = json.loads(b"".join(iter(lambda: conn.recv(1 << 16), b"")))
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = [os.getcwd(), *_pythonpath(request["env"]), *base_path]
    sys.argv = ["infomax", *request["argv"]]
    # as in a new interpreter, the module is run as __main__ and not yet imported
    sys.modules.pop("infomax_cli.cli", None)
    try:  # what `python -m` does: the module run as __main__, sys.argv[0] its file
        runpy.run_module("infomax_cli.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(str(code).encode())  # the client reads on until this process has ended
    sys.exit(code)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    else:
        sys.exit(client(sys.argv[1], sys.argv[2:]))
