#!/usr/bin/env bash
# Rebuild models/loopmatch-v1 and demo/ from scratch: corpus -> features -> VAEs -> mappers
# -> baselines -> eval -> ONNX export -> golden fixtures -> bundle + model card -> demo.
# Intermediate files go to train/out/ (gitignored). Prints the total time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 PYTHONHASHSEED=0
start=$(date +%s)
mkdir -p train/out
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.run --out train/out \
  --bundle models/loopmatch-v1 --demo demo "$@" 2>&1 | tee train/out/make_models.log
end=$(date +%s)
echo "make models: total $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s" | tee -a train/out/make_models.log
