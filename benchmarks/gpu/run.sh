#!/usr/bin/env bash
# GPU proof (issue 16): benchmarks/gpu/run.sh OUTDIR [--device cpu] [options of gpu_check.py]
# Runs with $PYTHON (default python3): the interpreter that has torch/torchvision preinstalled.
set -uo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python3}" benchmarks/gpu/gpu_check.py "$@"
