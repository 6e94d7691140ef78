#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, starts a real Milvus,
# then gofmt, go vet, go test -race, the Python tests of train/ and the web page's
# end-to-end tests in headless Chromium (scripts/e2e.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/bootstrap.sh --milvus

export ONNXRUNTIME_LIB=${ONNXRUNTIME_LIB:-$ROOT/.local/onnxruntime/lib/libonnxruntime.so}
export LOOPMATCH_PYTHON=${LOOPMATCH_PYTHON:-$ROOT/.venv/bin/python}

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== Milvus test server"
MILVUS_DIR=$(mktemp -d /tmp/loopmatch-milvus.XXXXXX)
cleanup() { scripts/milvus.sh stop "$MILVUS_DIR" || true; rm -rf "$MILVUS_DIR"; }
trap cleanup EXIT
scripts/milvus.sh start "$MILVUS_DIR"
export LOOPMATCH_MILVUS_ADDR=127.0.0.1:19530
export LOOPMATCH_REQUIRE_MILVUS=1

echo "== go test -race"
GOLOG=$(mktemp)
set +e
go test -race -count=1 -timeout 40m ./... 2>&1 | tee "$GOLOG"
gorc=${PIPESTATUS[0]}
set -e
go_ok=$(grep -c '^ok ' "$GOLOG" || true)
go_fail=$(grep -c '^FAIL' "$GOLOG" || true)
rm -f "$GOLOG"

py_rc=0
if [ -d train/tests ]; then
  echo "== python tests (train/)"
  .venv/bin/python -m pytest -q train/tests || py_rc=$?
fi

echo "== web page end-to-end (headless Chromium)"
e2e_rc=0
LOOPMATCH_SKIP_BOOTSTRAP=1 scripts/e2e.sh || e2e_rc=$?
[ "$e2e_rc" -eq 0 ] || echo "web page end-to-end tests FAILED (exit $e2e_rc)"
echo "go packages: $go_ok passed, $go_fail failed"
[ "$gorc" -eq 0 ] && [ "$py_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ]
