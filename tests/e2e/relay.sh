#!/bin/bash
# fsnote-relay end to end, on one JetStream server on loopback: records
# reach a remote "fsnotectl watch --nats" exactly as a local watch prints
# them; a broker outage and a SIGKILLed relay during a burst leave every
# record in the stream exactly once; a record the daemon dropped reaches
# remote consumers.  Needs root (the daemon), nats-server and a relay
# built with libnats; skips (77) otherwise.
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/nats.sh"
nats_require
e2e_enter_namespace "$@"
trap nats_cleanup EXIT

# the unit as installed, with this build's binary
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$E2E_TMP/unit"
    sed "s|^\(ExecStart[A-Za-z]*=\)[^ ]*fsnote-relay|\1$RELAY|" "$E2E_TOP/systemd/fsnote-relay.service" > "$E2E_TMP/unit/fsnote-relay.service"
    out=$(cd "$E2E_TMP/unit" && systemd-analyze verify --man=no ./fsnote-relay.service 2>&1) ||
        e2e_fail "systemd-analyze verify: $out"
    [ -z "$out" ] || e2e_fail "systemd-analyze verify: $out"
    grep -q '^DynamicUser=yes' "$E2E_TMP/unit/fsnote-relay.service" || e2e_fail "the unit runs without a user of its own"
    e2e_pass "systemd-analyze verify: fsnote-relay.service is clean, DynamicUser=yes"
fi

e2e_start_daemon
read -r PORT < <(free_ports 1)
URL=nats://127.0.0.1:$PORT
nats_start 1 "$PORT"
SRC=$E2E_TMP/src
mkdir -p "$SRC"
cat > "$E2E_TMP/relay.json" <<JSON
{ "host": "hostA", "paths": ["$SRC"], "window": 64, "ack_timeout_ms": 1000,
  "nats": { "url": "$URL" }, "stream": { "name": "FSNOTE", "duplicate_window_s": 300 } }
JSON
"$RELAY" --config "$E2E_TMP/relay.json" --check-config || e2e_fail "the configuration does not check"
printf '{ "paths": ["%s"],\n  "stream": { "replicas": 7 } }\n' "$SRC" > "$E2E_TMP/bad.json"
rc=0; "$RELAY" --config "$E2E_TMP/bad.json" --check-config 2> "$E2E_TMP/bad.err" || rc=$?
[ "$rc" -eq 1 ] && grep -qx "fsnote-relay: $E2E_TMP/bad.json:2:15: 'stream.replicas' must be an integer from 1 to 5" "$E2E_TMP/bad.err" ||
    e2e_fail "a bad configuration: status $rc, $(cat "$E2E_TMP/bad.err")"
relay_start "$E2E_TMP/relay.json"

# --- a remote watch prints what a local one prints --------------------------------
"$FSNOTECTL" watch --nats "$URL" --host hostA --json > "$E2E_TMP/remote.json" 2> "$E2E_TMP/remote.err" &
RJ=$!
"$FSNOTECTL" watch --nats "$URL" --host hostA > "$E2E_TMP/remote.txt" 2> "$E2E_TMP/remote-txt.err" &
RT=$!
"$FSNOTECTL" watch "$SRC" > "$E2E_TMP/local.txt" 2> "$E2E_TMP/local-txt.err" &
LT=$!
e2e_watch "$SRC" --json
for f in remote.err remote-txt.err local-txt.err; do
    for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/$f" && break; sleep 0.02; done
    grep -q 'Watches established.' "$E2E_TMP/$f" || e2e_fail "$f: $(cat "$E2E_TMP/$f")"
done
echo one > "$SRC/a"
mv "$SRC/a" "$SRC/b"
mkdir "$SRC/d"
printf 'x' > "$SRC/d/$(printf 'odd\377name')"
chmod 600 "$SRC/b"
rm "$SRC/b"
: > "$SRC/END"
for f in "$E2E_OUT" "$E2E_TMP/remote.json"; do
    for _ in $(seq 250); do e2e_jq_any "$f" '.path == $p' --arg p "$SRC/END" && break; sleep 0.02; done
    e2e_jq_any "$f" '.path == $p' --arg p "$SRC/END" || e2e_fail "no event for END in $f"
done
for _ in $(seq 250); do grep -q "$SRC/END" "$E2E_TMP/remote.txt" && grep -q "$SRC/END" "$E2E_TMP/local.txt" && break; sleep 0.02; done
sleep 0.2 # the close_write after END's create
kill "$RJ" "$RT" "$LT" 2>/dev/null; wait "$RJ" "$RT" "$LT" 2>/dev/null
e2e_stop_watch
diff "$E2E_OUT" "$E2E_TMP/remote.json" >&2 || e2e_fail "the remote JSON lines differ from the local ones"
diff "$E2E_TMP/local.txt" "$E2E_TMP/remote.txt" >&2 || e2e_fail "the remote text lines differ from the local ones"
n=$(wc -l < "$E2E_OUT")
[ "$n" -ge 8 ] || e2e_fail "only $n events"
e2e_jq_any "$E2E_OUT" '.type == "rename" and .path == $a and .dest == $b' --arg a "$SRC/a" --arg b "$SRC/b" ||
    e2e_fail "no rename a -> b"
e2e_jq_any "$E2E_OUT" '.path_base64 != null' || e2e_fail "the non-UTF-8 name lost its bytes"
e2e_pass "a remote watch prints the same $n lines, text and JSON, as a local one"

# subjects, message IDs and bodies name the host; the stream is in event order
"$JSDUMP" "$URL" FSNOTE > "$E2E_TMP/dump" || e2e_fail "js-dump"
stream_records "$URL" "$E2E_TMP/all.json"
awk '$2 !~ /^fsnote\.hostA\.[a-z_]+$/ || $3 !~ /^hostA:[0-9]+$/ { bad = 1 } END { exit bad }' "$E2E_TMP/dump" ||
    e2e_fail "subjects or message IDs: $(head -3 "$E2E_TMP/dump")"
paste -d' ' <(awk '{ print $2, $3 }' "$E2E_TMP/dump") <(jq -r '"fsnote.hostA.\(.type) hostA:\(.id)"' "$E2E_TMP/all.json") |
    awk '$1 != $3 || $2 != $4 { bad = 1 } END { exit bad }' || e2e_fail "bodies and subjects disagree"
jq -s -e 'map(.id) as $i | $i == ($i | sort)' "$E2E_TMP/all.json" >/dev/null || e2e_fail "records out of order"
e2e_pass "subject fsnote.hostA.<type>, message ID hostA:<id>, in event order"

# --since SEQ, --at TIME and -e filter the stream the way the options say
total=$(wc -l < "$E2E_TMP/dump")
"$FSNOTECTL" watch --nats "$URL" --since 2 --json --quiet --count $((total - 2)) --timeout 10 > "$E2E_TMP/since.json" ||
    e2e_fail "--since 2"
diff <(tail -n +3 "$E2E_TMP/all.json") "$E2E_TMP/since.json" >&2 || e2e_fail "--since 2 is not the stream after 2"
"$FSNOTECTL" watch --nats "$URL" --at -1h --json --quiet --count "$total" --timeout 10 > "$E2E_TMP/at.json" ||
    e2e_fail "--at -1h"
diff "$E2E_TMP/all.json" "$E2E_TMP/at.json" >&2 || e2e_fail "--at -1h is not the whole stream"
renames=$(jq -c 'select(.type == "rename")' "$E2E_TMP/all.json" | wc -l)
"$FSNOTECTL" watch --nats "$URL" --since 0 -e rename,dropped --json --quiet --count "$renames" --timeout 10 > "$E2E_TMP/e.json" ||
    e2e_fail "-e rename,dropped"
jq -e -s 'all(.type == "rename")' "$E2E_TMP/e.json" >/dev/null || e2e_fail "-e let other types through"
rc=0; "$FSNOTECTL" watch --nats "$URL" --host nosuchhost --quiet --since 0 --timeout 0.5 > "$E2E_TMP/none" || rc=$?
[ "$rc" -eq 2 ] && [ ! -s "$E2E_TMP/none" ] || e2e_fail "another host's watch: status $rc, $(cat "$E2E_TMP/none")"
e2e_pass "--since, --at, -e and --host select what they say"

# --- broker down during a burst, then back --------------------------------------------
burst() { for i in $(seq "$2" "$3"); do : > "$SRC/$1$i"; done; }
burst b 1 400
for _ in $(seq 250); do [ "$(stream_count "$URL")" -gt "$total" ] && break; sleep 0.02; done
nats_kill 1
burst b 401 800
# back only once the relay has found that its window goes unanswered
for _ in $(seq 500); do grep -q "did not acknowledge" "$E2E_TMP/relay.log" && break; sleep 0.02; done
grep -q "did not acknowledge" "$E2E_TMP/relay.log" || e2e_fail "the relay never noticed the outage"
nats_start 1 "$PORT"
burst b 801 1200
wait_creates "$URL" "$SRC" b 1200
exactly_once "$E2E_TMP/stream.json" "$SRC" b 1200
e2e_pass "broker down during a burst: 1200 creates, each exactly once"

# --- the relay SIGKILLed during a burst, then restarted -------------------------------------
base=$(stream_count "$URL")
( burst k 1 1500 ) &
BP=$!
for _ in $(seq 500); do [ "$(stream_count "$URL")" -gt $((base + 200)) ] && break; sleep 0.01; done
relay_stop KILL
wait "$BP"
relay_start "$E2E_TMP/relay.json"
wait_creates "$URL" "$SRC" k 1500
exactly_once "$E2E_TMP/stream.json" "$SRC" k 1500
e2e_pass "relay SIGKILLed during a burst: 1500 creates, each exactly once"

# --- a record the daemon dropped reaches remote consumers ----------------------------------
relay_stop TERM
sed -i 's/"window": 64,/"window": 64, "ring_depth": 16,/' "$E2E_TMP/relay.json"
relay_start "$E2E_TMP/relay.json"
timeout 30 "$FSNOTECTL" watch --nats "$URL" --host hostA -e dropped --json --count 1 --timeout 20 > "$E2E_TMP/drop.json" 2> "$E2E_TMP/drop.err" &
DW=$!
for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/drop.err" && break; sleep 0.02; done
kill -STOP "$RELAY_PID"
burst s 1 300
kill -CONT "$RELAY_PID"
wait "$DW" || e2e_fail "no dropped record reached the remote watch: $(cat "$E2E_TMP/drop.err")"
jq -e --arg r "$SRC" '.type == "dropped" and (.flags | index("must_rescan")) and .rescan == $r' "$E2E_TMP/drop.json" >/dev/null ||
    e2e_fail "the dropped record: $(cat "$E2E_TMP/drop.json")"
e2e_pass "a ring overflow's dropped record reaches a remote consumer"

# --- a resume the daemon cannot answer is published too -----------------------------------
# a restarted fsnoted has no history of the IDs the stream ends with
relay_stop TERM
e2e_stop_daemon
e2e_start_daemon
burst u 1 5
timeout 30 "$FSNOTECTL" watch --nats "$URL" --host hostA -e dropped --json --count 1 --timeout 20 > "$E2E_TMP/resume.json" 2> "$E2E_TMP/resume.err" &
DW=$!
for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/resume.err" && break; sleep 0.02; done
relay_start "$E2E_TMP/relay.json"
wait "$DW" || e2e_fail "no dropped record for the unanswerable resume: $(cat "$E2E_TMP/resume.err")"
jq -e --arg r "$SRC" '.type == "dropped" and (.flags | index("must_rescan")) and .rescan == $r' "$E2E_TMP/resume.json" >/dev/null ||
    e2e_fail "the resume's dropped record: $(cat "$E2E_TMP/resume.json")"
e2e_pass "a resume fsnoted cannot answer reaches remote consumers as a dropped record"

relay_stop TERM
sed "s/^/relay log: /" "$E2E_TMP/relay.log"
no_sanitizer_reports
e2e_summary
