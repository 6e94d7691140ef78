#!/usr/bin/env bash
# Starts or stops the Milvus test server (PyPI package `milvus`: a real Milvus standalone
# with embedded etcd and local storage).
#   scripts/milvus.sh start DIR   launch in the background, wait for /healthz (<= 3 min)
#   scripts/milvus.sh stop DIR    stop it and its children
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: scripts/milvus.sh start|stop DIR" >&2; exit 2; }
server=.venv-milvus/bin/milvus-server
case "$cmd" in
  start)
    [ -x "$server" ] || scripts/bootstrap.sh --milvus
    mkdir -p "$dir"
    if curl -sf http://127.0.0.1:9091/healthz >/dev/null 2>&1; then
      echo "milvus.sh: a Milvus already answers on 127.0.0.1:9091; stop it first" >&2; exit 1
    fi
    # milvus-server silently moves its health port off 9091 when 9091 is busy (a server
    # that is still shutting down): wait until both ports are free.
    for _ in $(seq 1 60); do
      ss -ltn 2>/dev/null | grep -qE ':(9091|19530)\b' || break
      sleep 1
    done
    # Not under setsid and with stdin left alone: milvus-server 2.3.5 stalls at start-up
    # when its stdin is /dev/null.
    "$server" --data "$dir" >"$dir/milvus.log" 2>&1 &
    echo $! > "$dir/milvus.pid"
    # The health port is 9091 unless that port was still in TIME_WAIT: milvus-server then
    # picks another and passes it to the server process as METRICS_PORT; read it there.
    for i in $(seq 1 180); do
      port=9091
      child=$(pgrep -f "$dir/bin/milvus run" | head -n1 || true)
      if [ -n "$child" ] && [ -r "/proc/$child/environ" ]; then
        p=$(tr '\0' '\n' < "/proc/$child/environ" | sed -n 's/^METRICS_PORT=//p')
        [ -n "$p" ] && port=$p
      fi
      if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
        echo "$port" > "$dir/health.port"
        echo "milvus.sh: Milvus healthy after ${i}s (gRPC 19530, health :$port, data in $dir)"; exit 0
      fi
      if ! kill -0 "$(cat "$dir/milvus.pid")" 2>/dev/null; then
        echo "milvus.sh: milvus-server exited:" >&2; tail -n 40 "$dir/milvus.log" >&2; exit 1
      fi
      sleep 1
    done
    echo "milvus.sh: Milvus not healthy after 180 s:" >&2; tail -n 40 "$dir/milvus.log" >&2; exit 1 ;;
  stop)
    if [ -f "$dir/milvus.pid" ]; then
      pid=$(cat "$dir/milvus.pid")
      kill -TERM "$pid" 2>/dev/null || true
      pkill -TERM -f "$dir/bin/milvus run" 2>/dev/null || true
      for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || pgrep -f "$dir/bin/milvus run" >/dev/null || break
        sleep 0.5
      done
      kill -KILL "$pid" 2>/dev/null || true
      pkill -KILL -f "$dir/bin/milvus run" 2>/dev/null || true
      rm -f "$dir/milvus.pid"
    fi ;;
  *) echo "usage: scripts/milvus.sh start|stop DIR" >&2; exit 2 ;;
esac
