#!/usr/bin/env bash
# js/build — compiles the TypeScript SDK in common/js (tsc → dist/, esbuild →
# dist/herald.browser.js) for the js/ and browser/ tests that need it. The
# npm dependencies come from `npm ci` (tests/run.sh runs it); nothing is
# fetched here.
set -euo pipefail
js=$1
if [ ! -d "$js/node_modules" ]; then
  echo "js/build: $js/node_modules is missing: run (cd common/js && npm ci); tests/run.sh does" >&2
  exit 1
fi
cd "$js"
npm run --silent build
echo "js/build: built $(ls dist/src/*.js | wc -l) modules and dist/herald.browser.js ($(wc -c < dist/herald.browser.js) bytes)"
