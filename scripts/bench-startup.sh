#!/usr/bin/env bash
# Measures, for docs/benchmarks.md: time from `go run ./cmd/kinoteka` to every
# service ready, with a cold build cache (modules already downloaded) and a warm
# one, and the embedded process's resident memory after 10 s idle.
# Usage: scripts/bench-startup.sh   (needs free ports 8081-8083, 9092, 1025, 8025)
set -euo pipefail
cd "$(dirname "$0")/.."

ready_after() { # $1: GOCACHE; prints seconds until films and auth answer /readyz
  local data; data=$(mktemp -d)
  local t0; t0=$(date +%s.%N)
  GOCACHE="$1" go run ./cmd/kinoteka -data "$data" >/dev/null 2>&1 &
  local pid=$!
  until curl -sf http://127.0.0.1:8082/readyz >/dev/null 2>&1 && curl -sf http://127.0.0.1:8081/readyz >/dev/null 2>&1; do sleep 0.05; done
  local t1; t1=$(date +%s.%N)
  awk "BEGIN{printf \"%.2f\", $t1 - $t0}"
  if [ "${2:-}" = "rss" ]; then
    sleep 10
    local child; child=$(pgrep -f "kinoteka -data $data" | grep -v "^$pid$" | tail -1)
    grep -E 'VmRSS' "/proc/$child/status" | awk '{printf "idle RSS: %.1f MiB\n", $2/1024}' >&2
  fi
  kill -INT "$pid" 2>/dev/null; pkill -INT -f "kinoteka -data $data" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

cold=$(mktemp -d)
echo "cold build to ready: $(ready_after "$cold") s"
rm -rf "$cold"
echo "warm build to ready: $(ready_after "$(go env GOCACHE)" rss) s"
