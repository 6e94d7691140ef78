#!/usr/bin/env bash
# End-to-end tests of the web page: builds bin/loopmatch, which the tests run as a real
# `loopmatch serve` over the demo library (embedded store in a temporary folder), and
# drives the page in headless Chromium (Debian's chromium) with playwright-core.
#   scripts/e2e.sh                 run the tests
#   scripts/e2e.sh --screenshots   also save the page's main states to docs/web/*.png
# LOOPMATCH_SKIP_BOOTSTRAP=1 skips scripts/bootstrap.sh (scripts/test.sh has run it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
E2E=query/web/e2e

SHOTS=""
for a in "$@"; do
  case "$a" in
    --screenshots) SHOTS="$ROOT/docs/web" ;;
    *) echo "e2e: unknown flag $a (use --screenshots)" >&2; exit 2 ;;
  esac
done

log() { printf '[e2e] %s\n' "$*"; }

if [ "${LOOPMATCH_SKIP_BOOTSTRAP:-0}" != 1 ]; then
  scripts/bootstrap.sh
fi

# --- Chromium (Debian package) and Node --------------------------------------
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "apt-get install chromium"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
CHROMIUM=${CHROMIUM:-$(command -v chromium)}
if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "e2e: Node.js >= 20 is needed (Debian: apt-get install nodejs)" >&2
  exit 1
fi

# --- playwright-core, pinned by package-lock.json ------------------------------
stamp="$E2E/node_modules/.lock-$(sha256sum "$E2E/package-lock.json" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  log "npm ci in $E2E"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# --- the server binary, with the page as this tree has it ---------------------
export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$ROOT/.local/onnxruntime/lib/libonnxruntime.so}
log "go build -o bin/loopmatch ./cmd/loopmatch"
go build -o bin/loopmatch ./cmd/loopmatch

log "node --test (Chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1))"
cd "$E2E"
LOOPMATCH_BIN="$ROOT/bin/loopmatch" CHROMIUM="$CHROMIUM" LOOPMATCH_SCREENSHOTS="$SHOTS" \
  node --test --test-concurrency=1 --test-reporter=spec unit.test.mjs page.test.mjs
