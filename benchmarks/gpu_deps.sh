#!/usr/bin/env bash
# Fill .gpu-deps/ (git-ignored) with the pure-Python packages a bare CUDA image lacks: Hydra, OmegaConf,
# the ANTLR runtime Hydra's parser needs and the joblib launcher plugin, copied from this checkout's .venv.
# A machine whose python3 has torch, numba, pandas, matplotlib, scikit-image and rich but not these (a
# lent GPU machine) then runs `bash benchmarks/gpu_check.sh` with .gpu-deps carried beside the checkout;
# gpu_check.sh adds it to PYTHONPATH only when the interpreter cannot import Hydra itself.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf .gpu-deps
mkdir -p .gpu-deps/hydra_plugins
for pkg in hydra omegaconf antlr4; do cp -r "$site/$pkg" .gpu-deps/; done
cp -r "$site/hydra_plugins/hydra_joblib_launcher" .gpu-deps/hydra_plugins/
for dist in hydra_core omegaconf antlr4_python3_runtime hydra_joblib_launcher; do
    cp -r "$site/$dist"-*.dist-info .gpu-deps/
done
find .gpu-deps -name __pycache__ -prune -exec rm -rf {} +
echo "gpu-deps: $(du -sh .gpu-deps | cut -f1) in .gpu-deps ($(ls .gpu-deps | tr '\n' ' '))"
