#!/usr/bin/env bash
# it_cli.sh HERALDD HERALD — the CLI contract end to end against a real
# `heraldd dev` on a free loopback port: conv create/info, send, sub, history,
# read, receipts, duplicate cmid, caps, errors and exit codes, restart with
# history intact, sub --state catch-up. Every wait is bounded.
set -uo pipefail
HERALDD=$1
HERALD=$2
. "$(dirname "$0")/lib.sh"
it_init cli
# The server stops cleanly at the end (a sanitizer report fails it).
cli_cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cli_cleanup EXIT

# --- configuration errors name the key; the server does not start ----------
printf '[gateway]\nidle_ms = 5\n' >"$dir/bad.conf"
expect "config: value out of range" 2 'bad.conf:2: gateway.idle_ms: must be between' -- "$HERALDD" dev --data "$dir" --config "$dir/bad.conf"
printf 'gateway.listne = 1\n' >"$dir/bad.conf"
expect "config: unknown key" 2 'gateway.listne: unknown key' -- "$HERALDD" dev --data "$dir" --config "$dir/bad.conf"
expect "flag out of range" 2 'gateway.rate: must be between' -- "$HERALDD" dev --data "$dir" --rate 0
expect "data dir required" 2 'store.data: required' -- "$HERALDD" dev
"$HERALDD" sample-config >"$dir/sample.conf"
grep -q '^gateway.listen = 127.0.0.1:7400$' "$dir/sample.conf" && ok "sample-config" || bad "sample-config"

start

# --- conversations -----------------------------------------------------------
expect "create group" 0 '"id":"g1"' -- "$HERALD" --as alice conv create --kind group --members alice,bob,carol --id g1
expect "duplicate id" 1 'EXISTS' -- "$HERALD" --as alice conv create --kind group --members alice,bob --id g1
expect "unknown kind: usage, the valid kinds listed" 2 "unknown --kind 'party' \(valid: single, group, customer_group, announce\)" -- "$HERALD" --as alice conv create --kind party --members alice,bob
expect "unknown verb option: usage, the valid options listed" 2 "unknown option '--urgnet' \(valid: --cmid, --silent, --urgent\)" -- "$HERALD" --as alice send g1 hi --urgnet
expect "an option where the verb takes none" 2 "unknown option '--x' \(valid: none" -- "$HERALD" --as alice read g1 1 --x
expect "unknown conv operation" 2 "unknown conv operation 'list' \(valid: create, add, remove, info\)" -- "$HERALD" --as alice conv list
expect "unknown dnd operation" 2 "unknown dnd operation 'maybe' \(valid: on, off, status\)" -- "$HERALD" --as alice dnd maybe
expect "unknown user kind" 2 "unknown --kind 'robot' \(valid: internal, external\)" -- "$HERALD" --admin dir user add r1 --kind robot
expect "bad conversation id" 2 "invalid conversation id 'a b': an id is 1 to 128 characters from a-z A-Z 0-9 \. _ @ : -" -- "$HERALD" --as alice send "a b" hi
expect "bad id in a list" 2 "invalid id 'bo b' among the members" -- "$HERALD" --as alice conv create --kind group --members "alice,bo b"
expect "bad --id" 2 "invalid conversation id 'x/y'" -- "$HERALD" --as alice conv create --kind group --members alice,bob --id x/y
expect "bad id in history" 2 "invalid conversation id" -- "$HERALD" --as alice history 'g1;'
expect "bad transfer employee" 2 "invalid employee id 'e 1'" -- "$HERALD" --admin transfer --from "e 1" --to e2 --customers c1
expect "single needs 2" 1 'INVAL' -- "$HERALD" --as alice conv create --kind single --members alice,bob,carol
expect "generated id" 0 '"id":"[0-9a-f]+"' -- "$HERALD" --as alice conv create --kind single --members alice,bob
expect "conv info" 0 '"kind":"group".*"members":\["alice","bob","carol"\]' -- "$HERALD" --as bob conv info g1
expect "info by stranger" 1 'NOT_MEMBER' -- "$HERALD" --as mallory conv info g1
many=$(seq -f 'u%g' 1 201 | paste -sd,)
expect "group cap 200" 1 'CAP_EXCEEDED: groups hold at most 200 members' -- "$HERALD" --as u1 conv create --kind group --members "$many"
many500=$(seq -f 'c%g' 1 501 | paste -sd,)
expect "customer_group cap 500" 1 'CAP_EXCEEDED: customer groups hold at most 500 members' -- "$HERALD" --as c1 conv create --kind customer_group --members "$many500"
expect "add by non-owner" 1 'FORBIDDEN' -- "$HERALD" --as bob conv add g1 --members dave
expect "add by owner" 0 '"id":"g1"' -- "$HERALD" --as alice conv add g1 --members dave

# --- send / history / dedup ------------------------------------------------
out=$(timeout 10 "$HERALD" --as alice send g1 "hello team" --cmid m-1); rc=$?
seq1=$(field seq <<<"$out")
[ $rc = 0 ] && [ -n "$seq1" ] && grep -q '"conv":"g1"' <<<"$out" && ok "send" || bad "send: $out"
expect "duplicate cmid returns original seq" 0 "\"seq\":$seq1\\b.*\"dup\":true|\"dup\":true.*\"seq\":$seq1\\b" -- "$HERALD" --as alice send g1 "hello again" --cmid m-1
expect "stranger cannot send" 1 'NOT_MEMBER' -- "$HERALD" --as mallory send g1 "hi"
expect "unknown conv" 1 'NOT_FOUND|NOT_MEMBER' -- "$HERALD" --as alice send nope "hi"
expect "history" 0 "\"seq\":$seq1.*\"from\":\"alice\".*\"text\":\"hello team\"" -- "$HERALD" --as bob history g1 --after $((seq1 - 1))
n=$(timeout 10 "$HERALD" --as bob history g1 | grep -c '"text":"hello team"')
[ "$n" = 1 ] && ok "dedup wrote nothing" || bad "dedup: $n copies"

# --- push: sub sees a message sent after it started -------------------------
timeout 15 "$HERALD" --as bob sub --count 1 --timeout 10 >"$dir/sub.out" 2>&1 &
sp=$!
sleep 0.5
"$HERALD" --as carol send g1 "pushed" >/dev/null
wait $sp; rc=$?
[ $rc = 0 ] && grep -q '"type":"msg".*"text":"pushed"' "$dir/sub.out" && ok "sub push" || bad "sub push rc=$rc: $(cat "$dir/sub.out")"
expect "sub timeout with --count fails" 1 '' -- "$HERALD" --as bob sub --count 1 --timeout 1

# --- read receipts ---------------------------------------------------------
timeout 15 "$HERALD" --as alice sub --count 1 --timeout 10 >"$dir/rcpt.out" 2>&1 &
sp=$!
sleep 0.5
expect "read" 0 "\"seq\":$seq1" -- "$HERALD" --as bob read g1 "$seq1"
wait $sp
grep -q "\"type\":\"receipt\".*\"user\":\"bob\"" "$dir/rcpt.out" && ok "receipt event" || bad "receipt event: $(cat "$dir/rcpt.out")"
expect "receipts" 0 '"read":\[[^]]*"bob"[^]]*\].*"unread":\[[^]]*"carol"' -- "$HERALD" --as alice receipts g1 "$seq1"
expect "read beyond max" 1 'INVAL: seq 999999 is beyond the conversation \(last seq [0-9]+\)' -- "$HERALD" --as bob read g1 999999
expect "receipts beyond max: the same words" 1 'INVAL: seq 999999 is beyond the conversation \(last seq [0-9]+\)' -- "$HERALD" --as alice receipts g1 999999

# --- recall -------------------------------------------------------------------
out=$(timeout 10 "$HERALD" --as bob send g1 "oops, wrong group"); rseq=$(field seq <<<"$out")
expect "recall by another member" 1 'FORBIDDEN' -- "$HERALD" --as carol recall g1 "$rseq"
expect "recall by the sender" 0 '"conv":"g1","seq":[0-9]+' -- "$HERALD" --as bob recall g1 "$rseq"
out=$(timeout 10 "$HERALD" --as carol history g1 --after $((rseq - 1)))
grep -q "\"seq\":$rseq,.*\"recalled\":true" <<<"$out" && ! grep -q 'oops' <<<"$out" && ok "tombstone in history" || bad "tombstone: $out"
grep -q '"kind":"system"' <<<"$(tail -n 1 <<<"$out")" && grep -q 'event\\":\\"recall' <<<"$out" && ok "recall event" || bad "recall event: $out"
expect "recall twice is a no-op" 0 '"seq":0' -- "$HERALD" --as bob recall g1 "$rseq"
out=$(timeout 10 "$HERALD" --as carol send g1 "carol's"); cseq=$(field seq <<<"$out")
expect "owner recalls anyone's" 0 '"conv":"g1"' -- "$HERALD" --as alice recall g1 "$cseq"
expect "system messages stay" 1 'INVAL' -- "$HERALD" --as alice recall g1 1
expect "recall unknown seq" 1 'NOT_FOUND' -- "$HERALD" --as alice recall g1 999999

# --- do-not-disturb ------------------------------------------------------------
expect "dnd status off" 0 '^\{"dnd":false\}$' -- "$HERALD" --as carol dnd status
expect "dnd on for 1h" 0 '"dnd":true,"until":[0-9]+' -- "$HERALD" --as carol dnd on --until +1h
expect "dnd until in the past" 1 'INVAL' -- "$HERALD" --as carol dnd on --until 1000
expect "dnd bad time" 2 'not a time' -- "$HERALD" --as carol dnd on --until tomorrow
expect "dnd on until turned off" 0 '^\{"dnd":true\}$' -- "$HERALD" --as carol dnd on
timeout 15 "$HERALD" --as carol sub --count 1 --timeout 10 >"$dir/dnd.out" 2>&1 &
sp=$!
sleep 0.5
"$HERALD" --as alice send g1 "quiet please" >/dev/null
wait $sp
grep -q '"text":"quiet please".*"silent":true' "$dir/dnd.out" && ok "delivered silently under dnd" || bad "dnd delivery: $(cat "$dir/dnd.out")"
timeout 15 "$HERALD" --as bob sub --count 1 --timeout 10 >"$dir/nodnd.out" 2>&1 &
sp=$!
sleep 0.5
"$HERALD" --as alice send g1 "hello bob" >/dev/null
wait $sp
grep -q '"text":"hello bob".*"silent":false' "$dir/nodnd.out" && ok "others still alerted" || bad "non-dnd delivery: $(cat "$dir/nodnd.out")"

# --- operator status ---------------------------------------------------------
expect "admin status" 0 '^\{"mode":"dev","version":"[0-9.]+","uptime_s":[0-9]+,"connections":[0-9]+,"users_online":[0-9]+,"groups":\[\{"group":0,"applied":[1-9][0-9]*' -- "$HERALD" --admin admin status
expect "status needs admin" 1 'FORBIDDEN' -- "$HERALD" --as bob admin status

# --- usage and connection errors -------------------------------------------
expect "usage error" 2 'usage|unknown' -- "$HERALD" --as bob frobnicate
expect "bad number" 2 '' -- "$HERALD" --as bob read g1 12x
expect "connection refused" 3 '' -- env HERALD_GATEWAY=127.0.0.1:1 "$HERALD" --as bob ping
expect "no credentials" 3 'UNAUTHORIZED|token' -- env -u HERALD_SECRET -u HERALD_TOKEN "$HERALD" ping
tok=$("$HERALD" --as bob token --user bob --ttl 60)
expect "explicit token" 0 'rtt_us' -- env -u HERALD_SECRET HERALD_TOKEN="$tok" "$HERALD" ping

# --- catch-up with --state across a restart ----------------------------------
state=$dir/bob.key
timeout 10 "$HERALD" --as bob sub --timeout 1 --state "$state" >/dev/null 2>&1
[ -s "$state" ] && ok "state saved" || bad "state file not written"
for i in 1 2 3; do "$HERALD" --as alice send g1 "missed $i" >/dev/null; done
stop && ok "clean SIGTERM exit" || bad "heraldd exit status on SIGTERM"
start
expect "history survives restart" 0 '"text":"missed 3"' -- "$HERALD" --as bob history g1
expect "dnd survives restart" 0 '^\{"dnd":true\}$' -- "$HERALD" --as carol dnd status
expect "dnd off" 0 '^\{"dnd":false\}$' -- "$HERALD" --as carol dnd off
out=$(timeout 15 "$HERALD" --as bob sub --count 3 --timeout 10 --state "$state" 2>&1)
got=$(grep -o '"text":"missed [0-9]"' <<<"$out" | paste -sd' ')
[ "$got" = '"text":"missed 1" "text":"missed 2" "text":"missed 3"' ] && ok "catch-up in order, once" || bad "catch-up: $out"
out=$(timeout 10 "$HERALD" --as bob sub --timeout 1 --state "$state" 2>&1)
grep -q '"type":"msg"' <<<"$out" && bad "replayed after catch-up: $out" || ok "no duplicates on resume"

# --- descriptor exhaustion: accepts pause (no busy loop), then serve again --
d2=$(mktemp -d /tmp/herald-fd-XXXXXX)
prlimit --nofile=48:48 "$HERALDD" dev --data "$d2" --listen 127.0.0.1:0 --mqtt-listen '' --log-level error 2>"$d2/log" &
p2=$!
for _ in $(seq 150); do [ -f "$d2/dev.env" ] && break; sleep 0.1; done
port=$(sed -n 's/^HERALD_GATEWAY=.*:\([0-9]*\)$/\1/p' "$d2/dev.env")
fds=()
for _ in $(seq 80); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null && fds+=("$fd")
done
ticks() { awk '{print $14 + $15}' "/proc/$p2/stat"; }
t0=$(ticks); sleep 1; t1=$(ticks)
[ $((t1 - t0)) -lt 40 ] && ok "no busy loop at the descriptor limit ($((t1 - t0)) ticks/s)" || bad "spinning at the descriptor limit: $((t1 - t0)) ticks in 1 s"
for fd in "${fds[@]}"; do exec {fd}>&-; done
sleep 0.3
expect "serves again after descriptors free up" 0 'rtt_us' -- env HERALD_GATEWAY="127.0.0.1:$port" HERALD_SECRET="$(sed -n 's/^HERALD_SECRET=//p' "$d2/dev.env")" "$HERALD" --as fd ping
kill -TERM $p2; wait $p2 && ok "clean exit after exhaustion" || bad "exit status after exhaustion"
rm -rf "$d2"

echo "$fails failure(s)"
[ "$fails" = 0 ]
