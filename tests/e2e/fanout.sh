#!/bin/bash
# Fan-out at scale with what an application gets without tuning: the
# daemon's default configuration (only the per-uid connection limits raised
# where one uid opens many connections) and libfsnote's default options.
#  - 100 subscriptions, one connection each, on an unpaced burst: every one
#    receives every event and none is told it lost something (the burst
#    waits in fanotify's unlimited kernel queue, not in rings);
#  - 1000 stopped subscriptions of one user beside one reading subscriber
#    of another, pool_max_bytes 16 MiB: the reader receives everything, and
#    the daemon's peak memory stays within the bound plus the fixed cost of
#    its 1001 connections (measured before the burst);
#  - `fsnotectl watch --json` into a pipe on an unpaced burst: no dropped
#    record, every event, as `inotifywait -m -r` manages on the same burst;
#  - a hostile user's subscriber that reads, but slower than the burst (its
#    socket 32 KiB every 20 ms), does not set the pace for everyone: a
#    reader beside it finishes the burst within the lag window (1 s) plus
#    slack of its time alone.
# fanotify only: inotify's kernel queue is bounded (max_queued_events), so
# an unpaced burst can overflow it whatever the daemon does, and then every
# subscriber is told to rescan.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
WORKLOAD=$E2E_TOP/bench/workload
SINK=$E2E_TOP/bench/fsnote-sink
[ -x "$WORKLOAD" ] && [ -x "$SINK" ] || { echo "SKIP: bench programs are not built"; exit 77; }
e2e_enter_namespace "$@"

# the sink as any user runs it (libtool's wrapper lives in the build tree)
real=$(dirname "$SINK")/.libs/$(basename "$SINK")
[ -x "$real" ] || real=$SINK
cp "$real" "$E2E_TMP/.bin/fsnote-sink"
chmod a+rx "$E2E_TMP/.bin/fsnote-sink"
USER_SINK=$E2E_TMP/.bin/fsnote-sink
PYTHON_SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/python

# sanitized builds are several times slower: smaller bursts, same checks
N100=50000; NSTALL=16000; NCLI=50000
[ -n "${FSNOTE_SKIP_SLOW:-}" ] && { N100=10000; NSTALL=8000; NCLI=10000; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
wait_ready() {  # FILE SECONDS
    for _ in $(seq $(( $2 * 50 ))); do grep -q ready "$1" && return 0; sleep 0.02; done
    e2e_fail "$1: the sink never said ready: $(cat "$1")"
}
counted() { jq '(.create + .close_write + .rename + .delete)' "$1"; }

check_hundred() {
    local w=$E2E_TMP/h
    mkdir -p "$w"
    echo '{ "max_connections_per_uid": 256 }' > "$E2E_TMP/h.json"
    E2E_CONFIG=$E2E_TMP/h.json e2e_start_daemon --backend fanotify
    "$USER_SINK" --subs 100 --timeout 600 "$w" > "$E2E_TMP/h.json.out" 2> "$E2E_TMP/h.err" &
    local s=$!
    wait_ready "$E2E_TMP/h.err" 60
    "$WORKLOAD" burst --iterations "$N100" --rate 0 "$w" > /dev/null
    wait $s || e2e_fail "the sink failed: $(cat "$E2E_TMP/h.err")"
    local out=$E2E_TMP/h.json.out
    jq -e '.complete' "$out" > /dev/null || e2e_fail "not every subscriber saw the end: $(cat "$out")"
    # the per-type figures are the least any one subscriber received
    [ "$(counted "$out")" -ge $(( 4 * N100 )) ] ||
        e2e_fail "a subscriber missed events: $(cat "$out")"
    [ "$(jq '.dropped_records' "$out")" = 0 ] ||
        e2e_fail "subscribers that kept reading were told they lost events: $(cat "$out")"
    e2e_stop_daemon
    e2e_pass "100 subscriptions with library defaults on an unpaced burst of $N100: each got all $((4 * N100)), none told of a loss"
}

check_stalled_thousand() {
    local w=$E2E_TMP/s bound=16777216
    mkdir -p "$w"
    chmod 0777 "$w"
    echo "{ \"max_connections_per_uid\": 2048, \"max_subscriptions_per_uid\": 2048, \"pool_max_bytes\": $bound }" \
        > "$E2E_TMP/s.json"
    E2E_CONFIG=$E2E_TMP/s.json e2e_start_daemon --backend fanotify
    chmod 0666 "$FSNOTE_SOCKET"
    (ulimit -n 8192; exec "$USER_SINK" --idle --subs 1000 "$w") > /dev/null 2> "$E2E_TMP/idle.err" &
    local idle=$!
    E2E_BG_PIDS+=("$idle")
    wait_ready "$E2E_TMP/idle.err" 120
    kill -STOP "$idle"
    "${NOBODY[@]}" "$USER_SINK" --subs 1 --timeout 600 "$w" > "$E2E_TMP/s.out" 2> "$E2E_TMP/s.err" &
    local s=$!
    wait_ready "$E2E_TMP/s.err" 60
    # what the 1001 connections and subscriptions cost with nothing queued
    local fixed; fixed=$(rss_kb "$E2E_DPID")
    "$WORKLOAD" burst --iterations "$NSTALL" --rate 0 "$w" > /dev/null
    wait $s || e2e_fail "the reader failed: $(cat "$E2E_TMP/s.err")"
    local hwm; hwm=$(hwm_kb "$E2E_DPID")
    kill -KILL "$idle"
    e2e_stop_bg
    local out=$E2E_TMP/s.out
    jq -e '.complete' "$out" > /dev/null || e2e_fail "the reader never saw the end: $(cat "$out")"
    [ "$(counted "$out")" -ge $(( 4 * NSTALL )) ] && [ "$(jq '.dropped_records' "$out")" = 0 ] ||
        e2e_fail "the reader beside 1000 stopped subscriptions lost events: $(cat "$out")"
    local limit=$(( fixed + bound / 1024 ))
    # under the sanitizers the peak measures ASan's shadow and quarantine
    [ -n "${ASAN_OPTIONS:-}" ] || [ "$hwm" -le "$limit" ] ||
        e2e_fail "daemon peak RSS $hwm KiB > bound $((bound / 1024)) KiB + fixed $fixed KiB"
    e2e_stop_daemon
    e2e_pass "1 reader beside 1000 stopped subscriptions, pool_max_bytes 16 MiB: all $((4 * NSTALL)) received; peak RSS $hwm KiB <= $limit KiB (fixed $fixed KiB + bound)"
}

check_cli_pipe() {
    local w=$E2E_TMP/c
    mkdir -p "$w"
    rm -f "$E2E_TMP/fsnoted.json"
    e2e_start_daemon --backend fanotify
    "$FSNOTECTL" watch --json "$w" 2> "$E2E_TMP/c.err" | cat > "$E2E_TMP/c.out" &
    local p=$!
    for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/c.err" && break; sleep 0.02; done
    "$WORKLOAD" burst --iterations "$NCLI" --rate 0 "$w" > /dev/null
    for _ in $(seq 3000); do grep -q '/BENCH-END"' "$E2E_TMP/c.out" && break; sleep 0.02; done
    grep -q '/BENCH-END"' "$E2E_TMP/c.out" || e2e_fail "fsnotectl never printed the end"
    kill %1 2>/dev/null || true
    wait $p 2>/dev/null || true
    local dropped got
    dropped=$(jq -r 'select(.type == "dropped") | .id' "$E2E_TMP/c.out" | wc -l)
    got=$(jq -r 'select(.type == "create" or .type == "close_write" or .type == "rename" or .type == "delete") | .id' \
        "$E2E_TMP/c.out" | wc -l)
    [ "$dropped" = 0 ] || e2e_fail "fsnotectl watch --json into a pipe got $dropped dropped records"
    [ "$got" -ge $(( 4 * NCLI )) ] || e2e_fail "fsnotectl watch --json got $got of $((4 * NCLI)) events"
    e2e_stop_daemon
    e2e_pass "fsnotectl watch --json | cat on an unpaced burst of $NCLI: all $got events, no dropped record"
}

# a subscriber through the Python package that then reads its socket
# steadily and slowly itself: the pace a hostile client can hold
TRICKLE='
import sys, time, fsnote
c = fsnote.connect(client_name="trickle")
c.subscribe(sys.argv[1])
s = c._sock
s.setblocking(True)
print("ready", flush=True)
while s.recv(32768):
    time.sleep(0.02)
'

burst_ms() {  # DIR ITER: one reader, the burst, until it holds the end
    rm -rf "${1:?}"/*  # the end is a file the burst creates
    "$USER_SINK" --subs 1 --timeout 600 "$1" > "$E2E_TMP/b.out" 2> "$E2E_TMP/b.err" &
    local s=$!
    wait_ready "$E2E_TMP/b.err" 60
    local t0; t0=$(date +%s%N)
    "$WORKLOAD" burst --iterations "$2" --rate 0 "$1" > /dev/null
    wait $s || e2e_fail "the reader failed: $(cat "$E2E_TMP/b.err")"
    jq -e '.complete and .dropped_records == 0' "$E2E_TMP/b.out" > /dev/null ||
        e2e_fail "the reader lost events: $(cat "$E2E_TMP/b.out")"
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}

check_slow_reader() {
    if [ -n "${ASAN_OPTIONS:-}" ]; then
        echo "skipped under the sanitizers: a comparison of times"
        return 0
    fi
    [ -x /usr/bin/python3 ] || { echo "skipped: no /usr/bin/python3"; return 0; }
    local w=$E2E_TMP/t py=$E2E_TMP/.py n=20000
    mkdir -p "$w" "$py"
    chmod 0777 "$w"
    cp -r "$PYTHON_SRC/fsnote" "$py/"
    chmod -R a+rX "$py"
    rm -f "$E2E_TMP/fsnoted.json"
    e2e_start_daemon --backend fanotify
    chmod 0666 "$FSNOTE_SOCKET"
    local alone beside
    alone=$(burst_ms "$w" "$n")
    "${NOBODY[@]}" env PYTHONPATH="$py" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c "$TRICKLE" "$w" \
        > "$E2E_TMP/trickle.out" 2>&1 &
    E2E_BG_PIDS+=("$!")
    for _ in $(seq 250); do grep -q ready "$E2E_TMP/trickle.out" && break; sleep 0.02; done
    grep -q ready "$E2E_TMP/trickle.out" || e2e_fail "the slow reader did not start: $(cat "$E2E_TMP/trickle.out")"
    beside=$(burst_ms "$w" "$n")
    e2e_stop_bg
    e2e_stop_daemon
    [ "$beside" -le $(( alone + 3000 )) ] ||
        e2e_fail "a slow reader set the pace: the burst took $beside ms beside it, $alone ms alone"
    e2e_pass "a hostile slow reader does not set the pace: $beside ms beside it, $alone ms alone"
}

check_hundred
check_stalled_thousand
check_cli_pipe
check_slow_reader
e2e_summary
