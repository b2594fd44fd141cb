"""tests/zygote.py's promise, on which the README's and the launchers' tests rely: `infomax` forked
from the warm interpreter is `infomax` in a new one (the same exit status, tables, messages). Its exit
status and one-line errors are checked in the tests that use it (test_runtime's, the README's)."""

from __future__ import annotations

import pytest
from conftest import LEAN, infomax

TABLES = ("loss.csv", "mi_per_map.csv", "mi_per_image.csv")


@pytest.mark.slow
def test_a_forked_infomax_does_what_a_new_interpreter_does(tmp_path):
    done = {}
    for how in ("warm", "new"):
        r = infomax("run", *LEAN, f"hydra.run.dir={tmp_path / how}", process=True, interpreter=how)
        assert r.returncode == 0, r.stderr[-3000:]
        done[how] = r
    for name in TABLES:
        assert (tmp_path / "warm" / name).read_bytes() == (tmp_path / "new" / name).read_bytes()
    assert done["warm"].stdout.count("\n") == done["new"].stdout.count("\n") > 0
    assert done["warm"].stderr == done["new"].stderr
