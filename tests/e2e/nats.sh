# Helpers for the relay's end-to-end scripts (sourced after common.sh):
# real nats-server processes with JetStream on loopback ports, each with a
# private store under the test's tmpfs, and fsnote-relay runs, all killed
# by the cleanup trap whatever happens.

RELAY=$E2E_TOP/relay/fsnote-relay
JSDUMP=$E2E_TOP/tests/relay/js-dump
NATS_PIDS=()
RELAY_PID=""

nats_require() {
    e2e_require_root
    command -v nats-server >/dev/null || { echo "SKIP: nats-server is missing (Debian: nats-server; tools/deps --test installs it)"; exit 77; }
    [ -x "$RELAY" ] || { echo "SKIP: fsnote-relay is not built (configure found no libnats; Debian: libnats-dev)"; exit 77; }
    [ -x "$JSDUMP" ] || { echo "SKIP: $JSDUMP is not built"; exit 77; }
}

nats_cleanup() {
    relay_stop KILL
    for p in "${NATS_PIDS[@]}"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
        [ -n "$p" ] && wait "$p" 2>/dev/null
    done
    NATS_PIDS=()
    e2e_cleanup
}

# N distinct TCP ports on 127.0.0.1 that nothing listens on or uses now
# (from /proc/net/tcp*), picked at random in 20000-59999.  Another process
# could take one before nats-server binds it; nats_start then fails loudly.
free_ports() {
    local used ports=() p
    used=" "
    for p in $(awk 'FNR > 1 { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
        used="$used$((16#$p)) "
    done
    while [ ${#ports[@]} -lt "$1" ]; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        case "$used ${ports[*]} " in *" $p "*) continue ;; esac
        ports+=("$p")
    done
    echo "${ports[*]}"
}

# nats_start INDEX PORT [nats-server options...]: a JetStream server named
# nINDEX storing under $E2E_TMP/nats-INDEX; waits until it serves clients.
nats_start() {
    local i=$1 port=$2; shift 2
    local dir=$E2E_TMP/nats-$i
    mkdir -p "$dir"
    : > "$dir/log"
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/store" -n "n$i" -l "$dir/log" "$@" &
    NATS_PIDS[i]=$!
    for _ in $(seq 250); do
        grep -q "Server is ready" "$dir/log" && return 0
        kill -0 "${NATS_PIDS[i]}" 2>/dev/null || e2e_fail "nats-server n$i exited: $(tail -5 "$dir/log")"
        sleep 0.02
    done
    e2e_fail "nats-server n$i is not ready after 5 s"
}

nats_kill() {
    local i=$1
    kill -KILL "${NATS_PIDS[i]}" 2>/dev/null
    wait "${NATS_PIDS[i]}" 2>/dev/null
    NATS_PIDS[i]=""
}

# relay_start CONFIG: runs fsnote-relay, waits until it relays.
relay_start() {
    local log=$E2E_TMP/relay.log n
    n=$(grep -c "relaying" "$log" 2>/dev/null) || n=0
    "$RELAY" --config "$1" 2>>"$log" &
    RELAY_PID=$!
    for _ in $(seq 500); do
        [ "$(grep -c "relaying" "$log")" -gt "$n" ] && return 0
        kill -0 "$RELAY_PID" 2>/dev/null || e2e_fail "fsnote-relay exited: $(tail -5 "$log")"
        sleep 0.02
    done
    e2e_fail "fsnote-relay did not start relaying within 10 s: $(tail -5 "$log")"
}

relay_stop() {
    [ -n "$RELAY_PID" ] || return 0
    kill -"${1:-TERM}" "$RELAY_PID" 2>/dev/null
    wait "$RELAY_PID" 2>/dev/null
    RELAY_PID=""
}

# stream_count URL [STREAM]: messages the stream holds.
stream_count() { "$JSDUMP" "$1" "${2:-FSNOTE}" --count; }

# stream_records URL OUT [STREAM]: every record of the stream, as JSON
# lines in stream order (through fsnotectl watch --nats, the consumer under
# test), into OUT.
stream_records() {
    local url=$1 out=$2 n
    n=$(stream_count "$url" "${3:-FSNOTE}") || e2e_fail "cannot count the stream"
    : > "$out"
    [ "$n" -gt 0 ] || return 0
    timeout 30 "$FSNOTECTL" watch --nats "$url" --since 0 --json --quiet --count "$n" --timeout 20 > "$out" 2> "$E2E_TMP/records.err" ||
        { for l in "$E2E_TMP"/nats-*/log; do echo "--- $l"; tail -8 "$l"; done >&2
          e2e_fail "fsnotectl watch --nats read back $(wc -l < "$out") of $n records: $(tail -3 "$E2E_TMP/records.err")"; }
}

# wait_creates URL DIR PREFIX N: until the stream holds a create record for
# each of DIR/PREFIX1..N (20 s), leaving every record in $E2E_TMP/stream.json.
wait_creates() {
    local url=$1 dir=$2 prefix=$3 n=$4 got
    for _ in $(seq 100); do
        stream_records "$url" "$E2E_TMP/stream.json"
        got=$(jq -r --arg d "$dir/$prefix" 'select(.type == "create" and (.path | startswith($d))) | .path' \
            "$E2E_TMP/stream.json" | sort -u | wc -l)
        [ "$got" -ge "$n" ] && return 0
        sleep 0.2
    done
    e2e_fail "the stream holds creates for $got of $n files $dir/$prefix*: $(tail -5 "$E2E_TMP/relay.log")"
}

# exactly_once FILE DIR PREFIX N: FILE (records as JSON lines) holds one
# create for each of DIR/PREFIX1..N, no dropped record, and no event ID twice.
exactly_once() {
    local f=$1 dir=$2 prefix=$3 n=$4 creates dups drops
    creates=$(jq -r --arg d "$dir/$prefix" 'select(.type == "create" and (.path | startswith($d))) | .path' "$f" | wc -l)
    dups=$(jq -r 'select(.type != "dropped") | .id' "$f" | sort | uniq -d | wc -l)
    drops=$(jq -r 'select(.type == "dropped") | .id' "$f" | wc -l)
    [ "$creates" -eq "$n" ] || e2e_fail "$creates create records for $n files"
    [ "$dups" -eq 0 ] || e2e_fail "$dups event IDs stored more than once"
    [ "$drops" -eq 0 ] || e2e_fail "$drops dropped records: the daemon's history should have covered it"
}

# A sanitizer build's reports (leaks at exit, for instance) land on the
# standard error of processes whose status nobody checks: fail on any.
no_sanitizer_reports() {
    if grep -l -E 'Sanitizer|runtime error' "$E2E_TMP"/*.err "$E2E_TMP"/*.log 2>/dev/null; then
        grep -h -A8 -E 'Sanitizer|runtime error' "$E2E_TMP"/*.err "$E2E_TMP"/*.log >&2
        e2e_fail "sanitizer reports (above)"
    fi
}
