#!/usr/bin/env bash
# `make gpu-check`: the prepared GPU measurement (benchmarks/gpu_check.py says what it measures).
#
#   bash benchmarks/gpu_check.sh [DIR]
#
# DIR: where the table goes (gpu_check.md, gpu_check.csv, gpu_check.log); default $OUT when set (a lent
# GPU machine's folder that comes back), else outputs/gpu-check/<date>_<time>. Environment:
#   DEVICE  auto (default: CUDA when visible, else the CPU mode) | cuda | cpu
#   SIZES   auto (default: full on CUDA, tiny on the CPU) | full | tiny
#   BUDGET  seconds after which no item starts (default 540: a lent machine allows 10 minutes a command)
#   ITEMS   which items, in order (default 4,5,1,2,3: cheapest first, torch.compile last)
#   PYTHON  the interpreter (default .venv/bin/python, else python3)
#   COMMIT  the commit the table names, where the copy has no .git (a lent GPU machine)
# A machine without this project's packages (a bare CUDA image) can borrow them from .gpu-deps/, which
# benchmarks/gpu_deps.sh fills here from the .venv (pure-Python packages only).
set -euo pipefail
out=${1:-${OUT:-outputs/gpu-check/$(date +%Y-%m-%d_%H-%M-%S)}}
case $out in /*) ;; *) out="$PWD/$out" ;; esac  # relative to where it was called from
cd "$(dirname "$0")/.."
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x .venv/bin/python ]; then py=.venv/bin/python
else py=python3; fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# which of this project's packages the interpreter cannot find (found, not imported: milliseconds)
need='import importlib.util as u, sys
gone = [m for m in ("hydra", "omegaconf", "antlr4", "torch", "numba", "pandas", "matplotlib", "rich",
                    "skimage", "scipy") if u.find_spec(m) is None]
sys.exit("missing " + ", ".join(gone) if gone else 0)'
if ! "$py" -c "$need" 2>/dev/null && [ -d .gpu-deps ]; then
    export PYTHONPATH="$PYTHONPATH:$PWD/.gpu-deps"
fi
if ! missing=$("$py" -c "$need" 2>&1); then
    echo "gpu-check: $py cannot import this project's packages ($(echo "$missing" | tail -n 1)):" \
        "run make install, or PYTHON=<an interpreter that has them>, or carry .gpu-deps (benchmarks/gpu_deps.sh)" >&2
    exit 2
fi
args=(--out "$out" --device "${DEVICE:-auto}" --sizes "${SIZES:-auto}" --budget "${BUDGET:-540}")
[ -n "${ITEMS:-}" ] && args+=(--items "$ITEMS")
exec "$py" benchmarks/gpu_check.py "${args[@]}"
