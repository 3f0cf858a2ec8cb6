#!/usr/bin/env bash
# console/build — builds the admin console in common/console (tsc type-check,
# esbuild bundle → dist/) for browser/console, and its unit test
# (→ dist-test/) for console/unit. The npm dependencies come from
# `npm ci` (tests/run.sh runs it); nothing is fetched here.
set -euo pipefail
dir=$1
if [ ! -d "$dir/node_modules" ]; then
  echo "console/build: $dir/node_modules is missing: run (cd common/console && npm ci); tests/run.sh does" >&2
  exit 1
fi
cd "$dir"
npm run --silent build
node build.mjs --test
echo "console/build: dist/ holds $(ls dist | tr '\n' ' ')(console.js $(wc -c < dist/console.js) bytes)"
