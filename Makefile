# infomax: `make demo` runs the four-case study on the embedded set; `make test` runs the tests.
# Both install what they need first (a .venv in the checkout), so they work on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
HERE := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))

.PHONY: install demo study test test-fast lint sweep bench gpu-check validate sensitivity clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev,cluster,tensorboard]"
	touch $(STAMP)

# The study on the embedded offline set: four cases, 50 steps of 64 images, 20 bins; one seed.
demo: install
	$(BIN)/infomax run -m case=a,b,c,d dataset=samples $(ARGS)
	@echo "make demo trains each case once (one seed), so its claims (claims.csv) are not established;" \
		"the line above adds seeds into the same sweep, and make study runs five; claims.csv then says per claim" \
		"holds, fails, equivalent (within its margin) or the seeds it would need."

# The study with the seed as replicate unit: the four cases x five seeds on the embedded set. Its
# claims.csv says, claim by claim, whether case c keeps the most MI (holds / fails / equivalent within the
# claim's margin / not established, with the seeds it would take: five seeds settle little).
study: install
	$(BIN)/infomax run -m case=a,b,c,d seed=0,1,2,3,4 dataset=samples $(ARGS)

# Every test (CI's command), on two workers of one thread each (tests/conftest.py; pytest-xdist,
# --dist loadgroup: a module whose fixture trains a job runs on one worker, so it trains once). A test
# that runs `infomax` does so in its own process unless a fresh one is the point (a launcher, a signal,
# an environment of its own); a fresh one is forked from a warm interpreter (tests/zygote.py).
# test-fast: the edit-test loop, the tests of a second or less (no `slow` mark: no job, sweep,
# comparison, calibration or browser; no `cli` mark: no `infomax` command).
test: install
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not cli" -n 2 $(ARGS)

# ruff: lint rules and the formatter's layout (pyproject.toml [tool.ruff]); `ruff format .` fixes layout.
lint: install
	$(BIN)/ruff check infomax_cli tests benchmarks
	$(BIN)/ruff format --check infomax_cli tests benchmarks

# The study on STL-10 (train split, 5000 images): data under data/stl10_binary, or add dataset.download=true.
sweep: install
	$(BIN)/infomax run -m case=a,b,c,d dataset=stl10 $(ARGS)

# Speed figures (benchmarks, not tests): histogram_mi pairs/s, then training/measurement images/s per case
# against a plain reference loop and the four-case study's wall time; CUDA rows where a GPU is present.
bench: install
	$(BIN)/python benchmarks/bench_mi.py
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

# The prepared GPU measurement (benchmarks/gpu_check.sh; README "Measured speed"): on CUDA the study's
# speed figures (the STL-sized study, make study's sweep with two launchers, training and histogram_mi
# rates, one job's time by phase) as one table, gpu_check.md and gpu_check.csv, in OUT (default $$OUT,
# else outputs/gpu-check/<date>_<time>). DEVICE=cpu, automatic without CUDA: the same items at tiny
# sizes on the CPU, a check that the script runs (tests/test_gpu_check.py runs it in CI).
DEVICE ?= auto
gpu-check: install
	DEVICE=$(DEVICE) PYTHON=$(BIN)/python bash $(HERE)benchmarks/gpu_check.sh $(OUT)

validate: install
	$(BIN)/infomax validate $(ARGS)

# Protocol sensitivity (infomax sensitivity --help: the grid's defaults): re-measure a finished sweep's encoders under other
# alignments, bins and estimators. SWEEP=outputs/sweeps/... picks one; without it a small sweep on the
# embedded set (64 images) is trained first into outputs/sweeps/sensitivity-base, with RUN_ARGS as its
# extra overrides (e.g. RUN_ARGS="train.steps=5"). ARGS go to `infomax sensitivity` (e.g.
# ARGS="--estimators histogram gcmi").
SWEEP ?=
RUN_ARGS ?=
sensitivity: install
	@if [ -z "$(SWEEP)" ]; then \
		$(BIN)/infomax run -m case=a,b,c,d dataset=samples dataset.n_images=64 hydra.sweep.dir=outputs/sweeps/sensitivity-base $(RUN_ARGS) && \
		$(BIN)/infomax sensitivity outputs/sweeps/sensitivity-base $(ARGS); \
	else $(BIN)/infomax sensitivity $(SWEEP) $(ARGS); fi

clean:
	rm -rf $(VENV) *.egg-info
