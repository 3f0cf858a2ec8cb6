#!/usr/bin/env bash
# it_api.sh HERALDD HERALD — the open API on `heraldd dev`'s HTTP port, driven by
# curl and by api_check.py (every route of openapi.json: answers, bad input,
# the flows end to end); then the per-app rate limit (429) and a body over
# the cap (413, refused from its Content-Length). Bounded waits.
set -uo pipefail
HERALDD=${1:?usage: it_api.sh HERALDD HERALD}
HERALD=${2:?usage: it_api.sh HERALDD HERALD}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
it_init api

mkdir -p "$dir/console/assets"
echo '<title>console</title>' >"$dir/console/index.html"
echo 'console.log(1)' >"$dir/console/assets/app.js"
printf 'gateway.api_rate = 100000\ngateway.api_burst = 100000\ngateway.console_dir = %s\n' \
  "$dir/console" >"$dir/h.conf"
start
U=$HERALD_HTTP

# The console's static files: /console redirects, only files under the directory.
hdr=$(curl -s -o /dev/null -D - "$U/console" | tr -d '\r')
grep -q '^HTTP/1.1 301 Moved Permanently' <<<"$hdr" && grep -q '^Location: /console/$' <<<"$hdr" \
  && ok "GET /console: 301 to /console/" || bad "/console: $hdr"
grep -q '<title>console' <(curl -sf "$U/console/") && ok "GET /console/: index.html" \
  || bad "/console/ index"
grep -q 'console.log' <(curl -sf "$U/console/assets/app.js") && ok "GET /console/assets/app.js" \
  || bad "/console/assets/app.js"
hdr=$(curl -s -o /dev/null -D - "$U/console/" | tr -d '\r')
grep -q "^Content-Security-Policy: default-src 'none'; script-src 'self'" <<<"$hdr" \
  && grep -q '^X-Content-Type-Options: nosniff' <<<"$hdr" \
  && ok "the console's files carry a Content-Security-Policy and nosniff" || bad "console headers: $hdr"
for p in /console/missing.js /console/../h.conf /console/%2e%2e/h.conf /console/assets//app.js; do
  code=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$U$p")
  [ "$code" = 404 ] && ok "GET $p: 404" || bad "GET $p: $code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$U/console/")
[ "$code" = 405 ] && ok "POST /console/: 405" || bad "POST /console/: $code"
line=$(curl -s -o /dev/null -D - "$U/api/v1/user/get?userid=x" | head -1 | tr -d '\r')
[ "$line" = "HTTP/1.1 401 Unauthorized" ] && ok "no token: $line" || bad "no token: $line"
"$HERALD" --admin app create hr --name "HR system" \
  --scopes message,directory,contact,transfer,conversation,user_token >"$dir/hr.json" \
  || bad "app create"
"$HERALD" --admin app create bot --scopes message >"$dir/bot.json" || bad "app create bot"
grep -q '"secret":"[0-9a-f]\{64\}"' "$dir/hr.json" && ok "app create prints the secret" \
  || bad "app create: $(cat "$dir/hr.json")"
expect "app create twice: EXISTS" 1 'EXISTS' -- "$HERALD" --admin app create hr
expect "app create by an employee: FORBIDDEN" 1 'FORBIDDEN' -- "$HERALD" --as bob app create x
expect "app create with an unknown scope" 1 'unknown scope' -- \
  "$HERALD" --admin app create x --scopes bogus

# curl, as the README shows it.
tok=$(curl -sf -X POST "$U/api/v1/token" -d @"$dir/hr.json" | field access_token)
[ -n "$tok" ] && ok "curl: POST /api/v1/token" || bad "curl token"
out=$(curl -s -X POST "$U/api/v1/user/create" -H "Authorization: Bearer $tok" \
  -d '{"userid":"dave","kind":"internal","name":"Dave"}')
grep -q '"errcode":0' <<<"$out" && ok "curl: user/create" || bad "curl user/create: $out"
out=$(curl -s -X POST "$U/api/v1/message/send" -H "Authorization: Bearer $tok" \
  -d '{"touser":"dave|ghost","agentid":"hr","msgtype":"text","text":{"content":"Welcome"}}')
grep -q '"invaliduser":"ghost"' <<<"$out" && grep -q '"sent":1' <<<"$out" \
  && ok "curl: message/send → invaliduser ghost, sent 1" || bad "curl message/send: $out"
code=$(head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'x' | curl -s -o "$dir/big.out" \
  -w '%{http_code}' -X POST "$U/api/v1/conversation/send" -H "Authorization: Bearer $tok" \
  --data-binary @-)
[ "$code" = 413 ] && grep -q '"errcode":2' "$dir/big.out" && ok "a 2 MiB body: 413 TOO_BIG" \
  || bad "big body: $code $(cat "$dir/big.out")"

ADMIN=$("$HERALD" --admin token --user ops) APPCRED=$(cat "$dir/hr.json") \
  NARROW=$(cat "$dir/bot.json") timeout 120 python3 "$here/api_check.py" "$U" \
  >"$dir/check.out" 2>&1
rc=$?
grep -c '^ok' "$dir/check.out" | sed 's/^/api_check: ok lines: /'
grep '^FAIL' "$dir/check.out"
[ $rc = 0 ] && ok "api_check: every route" || { bad "api_check (rc $rc)"; tail -5 "$dir/check.out"; }

# The rate limit: 5/s, burst 10, per token subject.
stop
printf 'gateway.api_rate = 5\ngateway.api_burst = 10\n' >"$dir/h.conf"
start
U=$HERALD_HTTP
tok=$(curl -sf -X POST "$U/api/v1/token" -d @"$dir/hr.json" | field access_token)
codes=$(for _ in $(seq 30); do
  curl -s -H "Authorization: Bearer $tok" -w '%{http_code}\n' -o /dev/null \
    "$U/api/v1/user/get?userid=dave"
done)
n200=$(grep -c '^200$' <<<"$codes"); n429=$(grep -c '^429$' <<<"$codes")
[ "$n429" -ge 15 ] && [ "$n200" -ge 10 ] && ok "rate limit: 30 calls at once → $n200 × 200, $n429 × 429" \
  || bad "rate limit: $n200 × 200, $n429 × 429"
other=$("$HERALD" --admin token --user ops)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $other" \
  "$U/api/v1/user/get?userid=dave")
[ "$code" = 200 ] && ok "another subject is not limited" || bad "other subject: $code"
stop || bad "heraldd exit status"
echo "$fails failures"
[ $fails = 0 ]
