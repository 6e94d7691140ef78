#!/usr/bin/env bash
# Rebuild models/loopmatch-v2 and demo/ from scratch: corpus v2 -> features -> VAE codecs ->
# decoders -> compatibility towers -> mappers -> baselines (v1 included) -> evaluation on the
# test and transfer splits -> ONNX export -> golden fixtures -> bundle + model card ->
# instrument classifier (loopmatch_train.instrument) -> decoder evaluation -> demo library ->
# the pair reranker (loopmatch_train.run_nlc) -> the hubness correction (loopmatch_train.hubness)
# -> the anomaly models (loopmatch_train.anomaly) ->
# the embedders compared for similar and profile (loopmatch_train.similar_eval) -> the
# embedders added to the bundle (loopmatch_train.embedders) -> SampleMatch
# (loopmatch_train.samplematch, oneshot_kind, context_bass, loopmatch_train.samplematch_bundle).
# Intermediate files go to train/out/ (gitignored).
# Prints the total time. (loopmatch-v1, kept in models/ as a baseline and for v1 libraries,
# was built by `python -m loopmatch_train.run`.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv-train/bin/python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
start=$(date +%s)
mkdir -p train/out
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.run2 --out train/out \
  --bundle models/loopmatch-v2 --demo demo "$@" 2>&1 | tee train/out/make_models.log
# the Neural Loop Combiner reranker (pair models, ablation, evaluation as recommend's second
# stage), added to the bundle just written
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.run_nlc --out train/out \
  --bundle models/loopmatch-v2 2>&1 | tee -a train/out/make_models.log
# the first stage's hubness correction (CSLS: k and beta chosen on val from the bi-encoder's
# latents run_nlc cached), its manifest block and model card section
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.hubness --out train/out \
  --bundle models/loopmatch-v2 2>&1 | tee -a train/out/make_models.log
# the anomaly models (Deep SVDD and the largest tails per instrument, the one that wins on val shipped; baselines and the damage evaluation),
# added to the bundle just written; alone from an existing train/out:
#   PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.anomaly --out train/out --bundle models/loopmatch-v2
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.anomaly --out train/out \
  --bundle models/loopmatch-v2 2>&1 | tee -a train/out/make_models.log
# "more like this" and taste profiles: representations compared on simulated producers,
# the table written into the model card
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.similar_eval --out train/out \
  --bundle models/loopmatch-v2 --card models/loopmatch-v2/MODEL_CARD.md 2>&1 | tee -a train/out/make_models.log
# the embedders (role embedder: logmel_stats, musicnn_vgg) added to the bundle with their
# golden fixtures and similar_eval's rows; alone from an existing train/out:
#   PYTHONPATH=train .venv-train/bin/python -m loopmatch_train.embedders --out train/out --bundle models/loopmatch-v2
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.embedders --out train/out \
  --bundle models/loopmatch-v2 2>&1 | tee -a train/out/make_models.log
# SampleMatch (one-shots for a context): the main row, the ablation,
# the ONNX export into train/out/samplematch, and the row with processed real kits
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.samplematch --out train/out \
  2>&1 | tee -a train/out/make_models.log
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.samplematch --out train/out \
  --only samplematch --real-kits 0.5 --label samplematch-realkits 2>&1 | tee -a train/out/make_models.log
# the one-shot kind classifier (ingest's kind for one-shots whose names do not say) and
# context -> bass retrieval beside single-seed Drum2Bass (train/out/samplematch/*.json)
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.oneshot_kind --out train/out --steps 3000 \
  2>&1 | tee -a train/out/make_models.log
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.context_bass --out train/out --train \
  2>&1 | tee -a train/out/make_models.log
# SampleMatch's exported encoders into the bundle (roles context_encoder and oneshot_encoder),
# their golden fixtures and model card section, and the demo library's one-shots
PYTHONPATH=train nice -n "${NICE:-5}" "$PY" -m loopmatch_train.samplematch_bundle --out train/out \
  --bundle models/loopmatch-v2 --demo demo 2>&1 | tee -a train/out/make_models.log
end=$(date +%s)
echo "make models: total $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s" | tee -a train/out/make_models.log
