#!/usr/bin/env bash
# Installs everything the Go side and the tests need on a fresh Debian machine.
# Idempotent: each step checks first, so a second run takes seconds.
#   scripts/bootstrap.sh            Go side + test tools (libsoxr, sox, ffmpeg, ONNX Runtime, Go modules)
#   scripts/bootstrap.sh --train    also the training side (fluidsynth, sound sets, PyTorch venv)
#   scripts/bootstrap.sh --milvus   also the Milvus test server (PyPI milvus, scripts/requirements-milvus.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

WANT_TRAIN=0
WANT_MILVUS=0
for a in "$@"; do
  case "$a" in
    --train) WANT_TRAIN=1 ;;
    --milvus) WANT_MILVUS=1 ;;
    *) echo "bootstrap: unknown flag $a (use --train and/or --milvus)" >&2; exit 2 ;;
  esac
done

log() { printf '[bootstrap] %s\n' "$*"; }

# --- Debian packages --------------------------------------------------------
APT_PKGS=(libsoxr-dev pkg-config sox libsox-fmt-all ffmpeg)
if [ "$WANT_TRAIN" = 1 ]; then
  APT_PKGS+=(fluidsynth fluid-soundfont-gm hydrogen-drumkits hydrogen-data)
fi
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python tools venv (ONNX Runtime wheel, test-model maker, pytest) -------
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.req-$(sha256sum scripts/requirements-tools.txt | cut -c1-16)
if [ ! -f "$stamp" ]; then
  log "pip install -r scripts/requirements-tools.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-tools.txt
  rm -f .venv/.req-*; touch "$stamp"
fi
# train/'s unit tests (corpus determinism, split, metrics) run in CI without PyTorch.
if [ -f train/requirements-test.txt ]; then
  ttstamp=.venv/.treq-$(sha256sum train/requirements-test.txt | cut -c1-16)
  if [ ! -f "$ttstamp" ]; then
    log "pip install -r train/requirements-test.txt"
    .venv/bin/pip install -q --disable-pip-version-check -r train/requirements-test.txt
    rm -f .venv/.treq-*; touch "$ttstamp"
  fi
fi

# --- ONNX Runtime shared library (project-local copy of the wheel's capi/) --
ORT_DIR="$ROOT/.local/onnxruntime/lib"
if [ -n "${ONNXRUNTIME_LIB:-}" ] && [ "$ONNXRUNTIME_LIB" != "$ORT_DIR/libonnxruntime.so" ] && [ -e "$ONNXRUNTIME_LIB" ]; then
  log "ONNXRUNTIME_LIB=$ONNXRUNTIME_LIB (override; project-local copy not installed)"
elif ! ls "$ORT_DIR"/libonnxruntime.so.* >/dev/null 2>&1; then
  capi=$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
  mkdir -p "$ORT_DIR"
  cp -a "$capi"/libonnxruntime.so.* "$ORT_DIR"/
  lib=$(ls "$ORT_DIR"/libonnxruntime.so.* | head -n1)
  ln -sf "$(basename "$lib")" "$ORT_DIR/libonnxruntime.so"
  log "ONNX Runtime installed: $lib"
fi

# --- Training venv (PyTorch CPU and friends) --------------------------------
if [ "$WANT_TRAIN" = 1 ]; then
  if [ ! -x .venv-train/bin/python ]; then
    log "creating .venv-train"
    "$PY" -m venv .venv-train
  fi
  tstamp=.venv-train/.req-$(sha256sum train/requirements.txt | cut -c1-16)
  if [ ! -f "$tstamp" ]; then
    log "pip install -r train/requirements.txt (first time: several minutes)"
    .venv-train/bin/pip install -q --disable-pip-version-check -r train/requirements.txt
    rm -f .venv-train/.req-*; touch "$tstamp"
  fi
fi

# --- Milvus test server -----------------------------------------------------
if [ "$WANT_MILVUS" = 1 ]; then
  if [ ! -x .venv-milvus/bin/milvus-server ]; then
    log "installing $(cat scripts/requirements-milvus.txt) into .venv-milvus"
    "$PY" -m venv .venv-milvus
    .venv-milvus/bin/pip install -q --disable-pip-version-check -r scripts/requirements-milvus.txt
  fi
fi

# --- Go modules ---------------------------------------------------------------
if [ -f go.sum ]; then
  go mod download
fi
log "ok"
