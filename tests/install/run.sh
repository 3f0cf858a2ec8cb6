#!/usr/bin/env bash
# shellcheck disable=SC2086 # pkg-config output and $static_libs are meant to split into words
# run.sh CMAKE BUILD_DIR HERALDD SOURCE_DIR CC SANITIZE — libherald as an
# outside program sees it. `cmake --install` into a temp prefix; the
# library's soname, its exports (exactly the functions of include/herald/*.h)
# and herald.pc; tests/install/hello.c (the README's example, checked to be
# the same text) built with nothing but
# `$CC hello.c $(pkg-config --cflags --libs herald)`, once against
# libherald.so and once against libherald.a, both run against a `heraldd dev`
# on a free loopback port: mint a token, connect, create a conversation,
# send, check the ACK and the push. A wrong secret must be refused;
# token_errors.c checks the token API's error codes. Every wait is bounded;
# the temp dir and the server go away on exit.
set -uo pipefail
# pkg-config's output is meant to be split into words:
CMAKE=$1
BUILD=$2
HERALDD=$3
SRC=$4
CC=${5:-cc}
SANITIZE=${6:-OFF}
# A sanitized libherald needs the sanitizer runtime in the program.
extra=()
case "$SANITIZE" in ON | on | 1 | TRUE | true) extra=("-fsanitize=address,undefined") ;; esac

dir=$(mktemp -d /tmp/herald-install-XXXXXX)
pid=
fails=0
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -rf "$dir"
}
trap cleanup EXIT
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }

# --- install -----------------------------------------------------------------
prefix=$dir/prefix
if timeout 60 "$CMAKE" --install "$BUILD" --prefix "$prefix" >"$dir/install.log" 2>&1; then
  ok "cmake --install"
else
  bad "cmake --install: $(cat "$dir/install.log")"
  exit 1
fi
pc=$(find "$prefix" -name herald.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || { bad "no herald.pc under $prefix"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$libdir/pkgconfig
cflags=$(pkg-config --cflags herald) || bad "pkg-config --cflags herald"
for h in client.h error.h protocol.h token.h; do
  [ -f "$prefix/include/herald/$h" ] || bad "include/herald/$h not installed"
done

# --- the shared library: soname, symlinks, exports -----------------------------
so=$(find "$libdir" -maxdepth 1 -type f -name 'libherald.so.*.*.*' | head -n 1)
soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ -n "$so" ] && [[ "$soname" =~ ^libherald\.so\.[0-9]+$ ]] &&
  [ "$(readlink -f "$libdir/$soname")" = "$so" ] &&
  [ "$(readlink -f "$libdir/libherald.so")" = "$so" ]; then
  ok "shared library $(basename "$so"), soname $soname"
else
  bad "shared library: file '$so', soname '$soname'"
fi
[ -f "$libdir/libherald.a" ] && ok "static library" || bad "libherald.a not installed"

# Every function the public headers declare (declarations start in column 0
# with the name on their first line), and what the libraries export.
grep -hE '^[A-Za-z].*[ *]herald_[a-z0-9_]+\(' "$prefix"/include/herald/*.h |
  sed -E 's/^[^(]*[ *](herald_[a-z0-9_]+)\(.*/\1/' | sort -u >"$dir/declared"
nm -D --defined-only "$so" | awk '$2 != "A" {sub(/@.*/, "", $3); print $3}' | sort -u >"$dir/exported"
nm -g --defined-only "$libdir/libherald.a" | awk 'NF == 3 {print $3}' | sort -u >"$dir/static"
n_decl=$(wc -l <"$dir/declared")
if [ "$n_decl" -gt 50 ] && cmp -s "$dir/declared" "$dir/exported"; then
  ok "libherald.so exports exactly the $n_decl functions of include/herald/*.h"
else
  bad "exports differ from the headers (< declared only, > exported only):
$(diff "$dir/declared" "$dir/exported")"
fi
if cmp -s "$dir/declared" "$dir/static"; then
  ok "libherald.a: the same $n_decl global symbols, nothing else"
else
  bad "libherald.a globals differ from the headers:
$(diff "$dir/declared" "$dir/static" | head -n 40)"
fi

# --- headers and the example compile cleanly for an outside program ----------
hello=$SRC/tests/install/hello.c
for h in client.h error.h protocol.h token.h; do
  printf '#include <herald/%s>\n' "$h" >"$dir/h_$h.c"
  "$CC" -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
    $cflags "$dir/h_$h.c" 2>"$dir/h.log" ||
    bad "herald/$h alone, -std=c99 -Wpedantic: $(cat "$dir/h.log")"
  if command -v c++ >/dev/null; then
    c++ -x c++ -Wall -Wextra -Werror -fsyntax-only $cflags \
      "$dir/h_$h.c" 2>"$dir/h.log" || bad "herald/$h from C++: $(cat "$dir/h.log")"
  fi
done
"$CC" -Wall -Wextra -Werror -fsyntax-only $cflags "$hello" 2>"$dir/h.log" &&
  ok "headers and hello.c compile warning-free (C99 pedantic, C++)" ||
  bad "hello.c -Wall -Wextra: $(cat "$dir/h.log")"

# The README's example is this file, verbatim.
awk '/^### C \(libherald\)/ {s = 1} s && /^```c$/ {c = 1; next} c && /^```$/ {exit} c {print}' \
  "$SRC/README.md" >"$dir/readme.c"
if [ -s "$dir/readme.c" ] && cmp -s "$dir/readme.c" "$hello"; then
  ok "README's C example is tests/install/hello.c"
else
  bad "README's C example differs from tests/install/hello.c:
$(diff "$hello" "$dir/readme.c" | head -n 20)"
fi

# --- build it the way an outside program does ----------------------------------
flags=$(pkg-config --cflags --libs herald) || bad "pkg-config --cflags --libs herald"
echo "# pkg-config --cflags --libs herald: $flags"
echo "# pkg-config --static --libs herald: $(pkg-config --static --libs herald)"
if "$CC" "${extra[@]}" "$hello" $flags -o "$dir/hello" 2>"$dir/cc.log"; then
  ok "$CC hello.c \$(pkg-config --cflags --libs herald)"
else
  bad "building hello against libherald.so: $(cat "$dir/cc.log")"
fi
# Static: libherald.a, its private dependencies from herald.pc (--static).
static_libs=$(pkg-config --static --libs herald | sed 's/-lherald\b/-Wl,-Bstatic -lherald -Wl,-Bdynamic/')
if "$CC" "${extra[@]}" "$hello" $cflags $static_libs \
  -o "$dir/hello_static" 2>"$dir/cc.log"; then
  ok "static link: \$(pkg-config --static --libs herald) with libherald.a"
else
  bad "building hello against libherald.a: $(cat "$dir/cc.log")"
fi
# (ldd's output in a variable: grep -q closing the pipe early would fail
# the pipeline under pipefail.)
libs=$(LD_LIBRARY_PATH=$libdir ldd "$dir/hello" 2>&1)
if grep -q "libherald.so.* => $libdir/" <<<"$libs"; then
  ok "hello loads libherald.so from the prefix"
else
  bad "hello's libraries: $libs"
fi
libs=$(ldd "$dir/hello_static" 2>&1)
grep -q libherald <<<"$libs" && bad "hello_static needs libherald.so: $libs"

# The token API's error contract (no server needed).
if "$CC" "${extra[@]}" "$SRC/tests/install/token_errors.c" $flags -o "$dir/token_errors" \
  2>"$dir/cc.log"; then
  out=$(LD_LIBRARY_PATH=$libdir timeout 20 "$dir/token_errors" 2>&1) &&
    ok "herald/token.h: errors, \"\" after an error, sizes" || bad "token_errors: $out"
else
  bad "building token_errors: $(cat "$dir/cc.log")"
fi

# --- run them against heraldd dev ------------------------------------------------
mkdir -p "$dir/data"
"$HERALDD" dev --data "$dir/data" --listen 127.0.0.1:0 --log-level warn 2>>"$dir/heraldd.log" &
pid=$!
for _ in $(seq 150); do [ -f "$dir/data/dev.env" ] && break; sleep 0.1; done
[ -f "$dir/data/dev.env" ] || { bad "heraldd did not start: $(cat "$dir/heraldd.log")"; exit 1; }
set -a
. "$dir/data/dev.env"
set +a

check_run() { # NAME BINARY
  local out rc
  out=$(LD_LIBRARY_PATH=$libdir timeout 20 "$2" 2>&1)
  rc=$?
  if [ "$rc" = 0 ] && grep -qx 'connected as alice@demo' <<<"$out" &&
    grep -qxE 'ack [0-9a-f]+ seq [0-9]+' <<<"$out" &&
    grep -qx "$(sed -n 's/^ack \([0-9a-f]*\) seq \([0-9]*\)$/push \1 seq \2 from alice: hello/p' <<<"$out")" <<<"$out"; then
    ok "$1: token, connect, conv create, send → ACK, push"
  else
    bad "$1 (rc=$rc): $out"
  fi
}
[ -x "$dir/hello" ] && check_run "hello (libherald.so)" "$dir/hello"
[ -x "$dir/hello_static" ] && check_run "hello (libherald.a)" "$dir/hello_static"

# The token is what the broker checks: another secret is refused, a
# malformed one never leaves the app server.
out=$(HERALD_SECRET=$(printf '0%.0s' $(seq 64)) LD_LIBRARY_PATH=$libdir timeout 20 "$dir/hello" 2>&1)
[ $? = 1 ] && grep -q '^connect: UNAUTHORIZED' <<<"$out" && ok "a wrong secret: UNAUTHORIZED" ||
  bad "a wrong secret: $out"
out=$(HERALD_SECRET=xyz LD_LIBRARY_PATH=$libdir timeout 20 "$dir/hello" 2>&1)
[ $? = 1 ] && grep -q '^token: INVAL' <<<"$out" && ok "a malformed secret: INVAL" ||
  bad "a malformed secret: $out"

# The server stops cleanly (under the sanitizers a report fails it).
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] && ok "heraldd stopped cleanly" || bad "heraldd exit $rc: $(tail -n 20 "$dir/heraldd.log")"

echo "# $fails failure(s)"
[ "$fails" = 0 ]
