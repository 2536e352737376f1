# Two commands on a fresh machine: `make demo` (set up + run every recipe on the demo data)
# and `make test` (the whole test suite; .ci/run calls it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: venv demo test lint dvc-yaml record checkout baseline mxnet-env cluster-env slurm-packages remote bench bench-env bench-quick clean

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# one line per finished job (scripts/brief_log.py); failures in full; all of it in .snakemake/log/
demo: venv
	set -o pipefail; $(BIN)/snakemake --cores all --quiet host 2>&1 | $(BIN)/python scripts/brief_log.py
	$(BIN)/python scripts/show_metrics.py

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/snakemake --lint

dvc-yaml: venv
	$(BIN)/python scripts/write_dvc_yaml.py

# after `snakemake`: record the finished recipes in dvc.lock without rerunning them
record: venv
	$(BIN)/python scripts/sync_doors.py record

# on a fresh clone: dvc pull, then give the files pipeline-ordered times (snakemake -n: nothing)
checkout: venv
	$(BIN)/python scripts/sync_doors.py checkout --pull

# the committed baseline: every recipe through `dvc repro` (dvc.lock written), then it prints the
# `git add` of dvc.lock, the metrics and plot data to commit (`dvc metrics diff` compares with them)
baseline: venv
	$(BIN)/python scripts/sync_doors.py baseline

# the optional MXNet 1.9.1 judge (its own numpy 1 environment): compatibility tests, packing benchmark
mxnet-env: .venv-mxnet/bin/python

.venv-mxnet/bin/python: envs/mxnet-requirements.txt scripts/setup_mxnet_env.sh
	bash scripts/setup_mxnet_env.sh

# the optional cluster stack in .venv (additive to requirements.lock): SLURM and Kubernetes
# executor plugins for Snakemake, dvc-s3, moto's S3 server for the remote test
cluster-env: $(BIN)/.cluster-installed

$(BIN)/.cluster-installed: requirements-cluster.txt $(BIN)/.installed
	$(BIN)/pip install --quiet -r requirements-cluster.txt
	touch $@

# Debian's SLURM and munge, for the one-node test cluster (scripts/slurm_local.sh; needs root)
slurm-packages:
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge

# the DVC remote that shares data and models (`dvc push` / `dvc pull`), written to .dvc/config:
#   make remote URL=/mnt/shared/imgdag-cache
#   make remote URL=s3://bucket/imgdag [ENDPOINT=https://s3.example.org]   (needs make cluster-env)
# credentials stay out of git: AWS_* variables, or dvc remote modify --local shared ...
remote:
	@test -n "$(URL)" || { echo "usage: make remote URL=<folder|s3://bucket/path|...> [ENDPOINT=<S3 endpoint URL>]" >&2; exit 2; }
	dvc remote add --default --force shared $(URL)
	$(if $(ENDPOINT),dvc remote modify shared endpointurl $(ENDPOINT))
	@echo "remote written to .dvc/config: commit it (git add .dvc/config && git commit -m 'DVC remote'), so that clones find it"

# speed figures as interleaved side-by-side ratios, JSON in benchmarks/out/ (with the load average),
# packing and the .rec loader again beside two CPU-bound competitors (the loaded condition),
# then one table of every ratio (benchmarks/out/summary.json); 30 minutes in all on 2 quiet cores
# (a fresh clone, 2026-12-06), 8 GB of temporary files at its largest (bench_scale.py). On data of
# your own: IMGDAG_BENCH_JPEGS, IMGDAG_BENCH_TINY (docs/benchmarks.md, "On your own data")
BENCHES := benchmarks/bench_codec.py benchmarks/bench_pack.py benchmarks/bench_rec_loader.py \
	benchmarks/bench_threads.py benchmarks/bench_small_images.py benchmarks/bench_tiny_cache.py \
	benchmarks/bench_mnist_epoch.py benchmarks/bench_cpu_isa.py benchmarks/bench_scale.py \
	benchmarks/bench_dag_scale.py
QUICK_OUT := benchmarks/out/quick
# the last fresh-clone run committed: the summary says which of its figures this run reproduces
# (within 15%, issue 17) and which goals flipped; BENCH_AGAINST= leaves the comparison out
BENCH_AGAINST := docs/bench-runs/2026-12-06-01df1d2.json

bench: venv mxnet-env bench-env
	for b in $(BENCHES); do $(BIN)/python $$b || exit 1; done
	for n in pack rec_loader; do $(BIN)/python benchmarks/bench_$$n.py --competitors 2 \
		--out benchmarks/out/$${n}_loaded.json || exit 1; done
	$(BIN)/python benchmarks/summary.py benchmarks/out $(if $(BENCH_AGAINST),--against $(BENCH_AGAINST))

# pyvips for the codec comparison and NVIDIA DALI's CPU pipeline for the .rec loader comparison
# (bench_codec.py and bench_rec_loader.py run without them, leaving them out)
bench-env: $(BIN)/.bench-installed

$(BIN)/.bench-installed: requirements-bench.txt $(BIN)/.installed
	$(BIN)/pip install --quiet -r requirements-bench.txt
	touch $@

# the benchmarks as smoke tests (a few images, one repeat, figures not meaningful), in $(QUICK_OUT)/
bench-quick: venv
	for b in $(BENCHES); do n=$${b#benchmarks/bench_}; \
		$(BIN)/python $$b --quick --out $(QUICK_OUT)/$${n%.py}.json || exit 1; done
	$(BIN)/python benchmarks/summary.py $(QUICK_OUT)

# what the pipeline made; the committed baseline's files under results/ (tracked) stay
clean:
	rm -rf data logs .snakemake smoke
	git clean -q -f -d -X results/
