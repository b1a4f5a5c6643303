#!/usr/bin/env bash
# Measures, for docs/benchmarks.md (issue 9): the embedded mode's films service
# against a bare net/http server answering the very same bytes, with wrk, on
# two routes: the page `GET /v1/films?limit=20` and a walk over one film at a
# time, `GET /v1/films/1` … `/v1/films/3200`. Prints requests/s and the ratio.
#
# The embedded binary is built and started on free ports with a fresh data
# folder (the demo catalogue seeded, auth's throttle off); the bare server
# first fetches every answer from it, then serves them from memory. The two
# are measured one after the other, never at once, so they do not share the
# 2 cores; each gets a 2 s warm-up first.
#
# Usage: scripts/bench-embedded-films.sh   (needs wrk: apt-get install -y wrk)
# Environment: DURATION (default 10s), CONNECTIONS (64), THREADS (2), FILMS (3200).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
FILMS=${FILMS:-3200}

command -v wrk >/dev/null || { echo "bench-embedded-films: needs wrk (apt-get install -y wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
  # TERM, not INT: a script's background jobs start with SIGINT ignored.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The bare server: fetches each answer once from films, then serves the same
# status, Content-Type and body from memory. It prints its URL when ready.
cat >"$work/bare.go" <<'EOF'
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
)

type answer struct {
	status int
	ctype  string
	body   []byte
}

func fetch(url string) answer {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), body}
}

func main() {
	films, n := os.Args[1], 0
	n, _ = strconv.Atoi(os.Args[2])
	page := fetch(films + "/v1/films?limit=20")
	one := make([]answer, n+1)
	for id := 1; id <= n; id++ {
		one[id] = fetch(films + "/v1/films/" + strconv.Itoa(id))
	}
	serve := func(w http.ResponseWriter, a answer) {
		w.Header().Set("Content-Type", a.ctype)
		w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/films", func(w http.ResponseWriter, r *http.Request) { serve(w, page) })
	mux.HandleFunc("GET /v1/films/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > n {
			http.NotFound(w, r)
			return
		}
		serve(w, one[id])
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	fmt.Println("http://" + ln.Addr().String())
	_ = http.Serve(ln, mux)
}
EOF

echo "building ./cmd/kinoteka and the bare server …" >&2
go build -o "$work/kinoteka" ./cmd/kinoteka
go build -o "$work/bare" "$work/bare.go"

any=127.0.0.1:0
"$work/kinoteka" -data "$work/data" -throttle off -auth-addr $any -films-addr $any -mailer-addr $any \
  -smtp-addr $any -mail-ui-addr $any -kafka-addr $any >"$work/banner" 2>"$work/kinoteka.log" &
pids+=($!)
films=""
for _ in $(seq 600); do # the banner is printed once every service answers
  films=$(awk '$1 == "films" { print $2; exit }' "$work/banner")
  [ -n "$films" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "kinoteka did not start:" >&2; cat "$work/kinoteka.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$films" ] || { echo "kinoteka did not print its banner in 60 s" >&2; exit 1; }

"$work/bare" "$films" "$FILMS" >"$work/bare.url" &
pids+=($!)
bare=""
for _ in $(seq 600); do
  bare=$(head -1 "$work/bare.url")
  [ -n "$bare" ] && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "the bare server did not start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$bare" ] || { echo "the bare server did not start in 60 s" >&2; exit 1; }

cat >"$work/walk.lua" <<EOF
-- one film at a time, ids 1 … $FILMS in turn (each wrk thread walks on its own)
local i = 0
request = function()
  i = i % $FILMS + 1
  return wrk.format("GET", "/v1/films/" .. i)
end
EOF

# rps URL [wrk args…]: requests per second; fails on socket errors or non-2xx answers.
rps() {
  local url=$1; shift
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" "$url")
  if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
    echo "wrk reported errors against $url:" >&2; echo "$out" >&2; exit 1
  fi
  awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out"
}
warm() { wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$@" >/dev/null; }

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %14s %14s %8s\n' route "embedded films" "bare net/http" ratio
for route in page walk; do
  if [ "$route" = page ]; then path="/v1/films?limit=20"; label="GET /v1/films?limit=20"; args=()
  else path=""; label="GET /v1/films/{1..$FILMS}"; args=(-s "$work/walk.lua"); fi
  warm "${args[@]}" "$bare$path"; b=$(rps "$bare$path" "${args[@]}")
  warm "${args[@]}" "$films$path"; f=$(rps "$films$path" "${args[@]}")
  printf '%-34s %14s %14s %7s%%\n' "$label" "$f" "$b" "$(awk "BEGIN { printf \"%.0f\", 100 * $f / $b }")"
done
