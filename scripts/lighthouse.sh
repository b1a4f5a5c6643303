#!/usr/bin/env bash
# Lighthouse scores of the pages Kinoteka serves, for docs/benchmarks.md
# (recorded there, not asserted in tests: a score depends on the Lighthouse and
# Chromium versions).
# Usage: scripts/lighthouse.sh URL…   e.g. scripts/lighthouse.sh http://127.0.0.1:8025/ http://127.0.0.1:8081/docs
# Prints, per URL, the accessibility, best-practices and performance scores
# (0–100, desktop preset) and every weighted audit that did not pass.
# Needs Node 20+ and Chromium or Chrome (CHROME_PATH, else found on PATH).
# Lighthouse itself is installed once from the npm registry into
# LIGHTHOUSE_DIR (default: the user cache folder), never into the repository.
# LIGHTHOUSE_OUT=folder keeps each JSON report.
set -euo pipefail

version=12.2.3 # 13.x needs Node 22
dir=${LIGHTHOUSE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kinoteka-lighthouse/$version}
lh=$dir/node_modules/.bin/lighthouse

if [ $# -eq 0 ]; then
  sed -n '5,7s/^# //p' "$0" >&2
  exit 2
fi
if [ ! -x "$lh" ]; then
  echo "installing lighthouse@$version into $dir" >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --silent --no-audit --no-fund -E "lighthouse@$version" >&2)
fi
if [ -z "${CHROME_PATH:-}" ]; then
  for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$c" >/dev/null; then CHROME_PATH=$(command -v "$c"); break; fi
  done
fi
: "${CHROME_PATH:?no Chromium or Chrome found; set CHROME_PATH}"
export CHROME_PATH

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for url in "$@"; do
  n=$((n + 1))
  report=$tmp/$n.json
  "$lh" "$url" --preset=desktop --only-categories=accessibility,best-practices,performance \
    --chrome-flags="--headless=new --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update --disable-sync" \
    --output=json --output-path="$report" --quiet
  if [ -n "${LIGHTHOUSE_OUT:-}" ]; then mkdir -p "$LIGHTHOUSE_OUT" && cp "$report" "$LIGHTHOUSE_OUT/$n.json"; fi
  node -e '
    const r = require(process.argv[1]);
    const pct = (s) => (s == null ? "n/a" : String(Math.round(s * 100)));
    const c = r.categories;
    console.log(["accessibility", "best-practices", "performance"]
      .map((k) => `${k} ${pct(c[k] && c[k].score)}`).join("  ") + "  " + r.finalDisplayedUrl);
    for (const k of Object.keys(c)) {
      for (const ref of c[k].auditRefs) {
        const a = r.audits[ref.id];
        if (ref.weight > 0 && a.score !== null && a.score < 1) {
          console.log(`  ${k}: ${a.id} (${pct(a.score)}) ${a.title}`);
        }
      }
    }' "$report"
done
