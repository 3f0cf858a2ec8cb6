#!/usr/bin/env bash
# tests/run.sh — installs what is missing, builds a normal tree and an
# ASan+UBSan tree, and runs the whole ctest suite (unit, integration, fuzz
# corpus replay, the TypeScript SDK, its browser test and the admin
# console's) in both. Exit
# status is non-zero if anything fails.
#
#   ./tests/run.sh            both trees
#   HERALD_TEST_TREES=asan ./tests/run.sh   only the sanitizer tree
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/deps.sh
# The TypeScript SDK's npm dependencies, exactly as package-lock.json pins them.
echo "== common/js: npm ci"
(cd common/js && npm ci --no-audit --no-fund --loglevel=error)
# The admin console's (common/console), built into common/console/dist for
# browser/console (console/build rebuilds it inside ctest too).
echo "== common/console: npm ci && npm run build"
(cd common/console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

jobs=$(nproc 2>/dev/null || echo 2)
trees=${HERALD_TEST_TREES:-"release asan"}

for t in $trees; do
  case $t in
    release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHERALD_WERROR=ON) ;;
    asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON -DHERALD_WERROR=ON) ;;
    *) echo "unknown tree $t" >&2; exit 2 ;;
  esac
  echo "== $t: configure and build ($dir)"
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $t: ctest"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 300
done
echo "== all tests passed"
