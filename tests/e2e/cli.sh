#!/bin/bash
# End to end: fsnotectl against the real daemon and kernel.  Every verb,
# every documented error message (one line, "fsnotectl: ", exit 1), the
# JSON fields one by one against stat(1), --count, --timeout (exit 2), wait
# (0 and 2), --children, --events, --since replay, --exclude, escaping of a
# name with a newline and a byte that is not UTF-8 (human and JSON),
# current-id and --at, flush, inject (root; refused for nobody), status in
# both forms, a daemon shutdown, and a daemon that is not running.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

W=$E2E_TMP/w


# ctl ARGS...: runs fsnotectl; $RC, $E2E_TMP/out and $E2E_TMP/err.
ctl() {
    RC=0
    "$FSNOTECTL" "$@" > "$E2E_TMP/out" 2> "$E2E_TMP/err" || RC=$?
}
ctl_nobody() {
    RC=0
    "${NOBODY[@]}" "$USER_FSNOTECTL" "$@" > "$E2E_TMP/out" 2> "$E2E_TMP/err" || RC=$?
}

# expect_error WHAT PATTERN: the last ctl failed with status 1, nothing on
# stdout, one line on stderr starting "fsnotectl: " and matching PATTERN.
expect_error() {
    local what=$1 pattern=$2
    [ "$RC" -eq 1 ] || e2e_fail "$what: status $RC, expected 1 ($(cat "$E2E_TMP/err"))"
    [ ! -s "$E2E_TMP/out" ] || e2e_fail "$what: output on stdout: $(cat "$E2E_TMP/out")"
    [ "$(wc -l < "$E2E_TMP/err")" -eq 1 ] || e2e_fail "$what: not one line on stderr: $(cat "$E2E_TMP/err")"
    grep -q '^fsnotectl: ' "$E2E_TMP/err" || e2e_fail "$what: no 'fsnotectl: ' prefix: $(cat "$E2E_TMP/err")"
    grep -qE -- "$pattern" "$E2E_TMP/err" || e2e_fail "$what: message does not match /$pattern/: $(cat "$E2E_TMP/err")"
}

# jq_check FILE FILTER WHAT: FILTER holds for the first line of FILE that
# matches its leading select().
jq_check() {
    jqe "$2" "$1" > /dev/null 2>&1 || { echo "--- $1:" >&2; cat "$1" >&2; e2e_fail "$3"; }
}

# Event IDs may exceed 2^53 (the daemon seeds them from the clock), which
# jq 1.6 cannot hold exactly: IDs are read from the text, where fsnotectl
# writes "id" first, then "sub_id", "type" and "path".
# id_of FILE TYPE PATH: the ID of the first such record.
id_of() {
    grep -F "\"type\":\"$2\",\"path\":\"$3\"," "$1" | head -1 | sed -E 's/^\{"id":([0-9]+),.*/\1/'
}
all_ids() {  # FILE
    sed -E 's/^\{"id":([0-9]+),.*/\1/' "$1"
}

wait_for_json() {  # FILE [jq options] FILTER
    local f=$1; shift
    for _ in $(seq 250); do
        jqe "$@" "$f" > /dev/null 2>&1 && return 0
        sleep 0.02
    done
    e2e_fail "no record matching '${*: -1}' in $f within 5 s: $(cat "$f")"
}

wait_path() {  # FILE PATH: a record for PATH (any type) arrived
    for _ in $(seq 250); do
        jqe --arg p "$2" 'select(.path == $p)' "$1" > /dev/null 2>&1 && return 0
        sleep 0.02
    done
    e2e_fail "no event for $2 in $1 within 5 s: $(cat "$1")"
}

wait_for_line() {  # FILE PATTERN
    for _ in $(seq 250); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    e2e_fail "no line matching '$2' in $1 within 5 s: $(cat "$1")"
}

# --- without a daemon -----------------------------------------------------------

check_no_daemon() {
    ctl status
    expect_error "no daemon" "fsnoted is not running.*systemctl start fsnoted.socket.*fsnoted"
    ctl watch "$E2E_TMP"
    expect_error "no daemon (watch)" "fsnoted is not running"
    FSNOTE_SOCKET=$E2E_TMP/elsewhere.sock ctl current-id
    expect_error "FSNOTE_SOCKET" "elsewhere.sock"
    e2e_pass "daemon not running: one clear line naming the socket and how to start it"
}

check_usage() {
    ctl --version
    [ "$RC" -eq 0 ] && grep -qE '^fsnotectl [0-9]' "$E2E_TMP/out" || e2e_fail "--version"
    ctl --help
    [ "$RC" -eq 0 ] || e2e_fail "--help: status $RC"
    for verb in watch wait status current-id flush inject; do
        grep -q "  $verb" "$E2E_TMP/out" || e2e_fail "--help does not list $verb"
    done
    for verb in watch wait status current-id flush inject; do
        ctl "$verb" --help
        [ "$RC" -eq 0 ] && grep -q "^Usage: fsnotectl $verb" "$E2E_TMP/out" || e2e_fail "$verb --help"
    done
    ctl frobnicate
    expect_error "unknown verb" "unknown verb 'frobnicate'.*Try 'fsnotectl --help'"
    ctl watch --frobnicate "$E2E_TMP"
    expect_error "unknown option" "unknown option '--frobnicate'.*Try 'fsnotectl --help'"
    ctl --frobnicate status
    expect_error "unknown global option" "unknown option '--frobnicate'.*Try 'fsnotectl --help'"
    ctl
    expect_error "no verb" "Try 'fsnotectl --help'"
    ctl watch -e create,frobnicate "$E2E_TMP"
    expect_error "unknown event type" "unknown event type 'frobnicate'"
    ctl watch --count x "$E2E_TMP"
    expect_error "bad --count" "invalid --count"
    ctl watch --timeout -1 "$E2E_TMP"
    expect_error "bad --timeout" "invalid --timeout"
    ctl watch
    expect_error "watch without PATH" "needs at least one PATH"
    ctl wait "$E2E_TMP" "$E2E_TMP"
    expect_error "wait with two PATHs" "exactly one PATH"
    ctl current-id --at yesterday-ish
    expect_error "bad --at" "invalid time"
    ctl inject frobnicate /x
    expect_error "inject unknown type" "unknown event type"
    ctl inject rename /x
    expect_error "inject rename without DEST" "needs a DEST"
    e2e_pass "--help for every verb, --version, and one-line usage errors"
}

# --- with the daemon -------------------------------------------------------------

check_path_errors() {
    mkdir -p "$E2E_TMP/locked"
    chmod 0700 "$E2E_TMP/locked"
    touch "$E2E_TMP/plainfile"
    ctl watch "$E2E_TMP/does-not-exist"
    expect_error "no such path" "cannot watch .*does-not-exist: no such file or directory"
    ctl watch "$E2E_TMP/plainfile"
    expect_error "not a directory" "cannot watch .*plainfile: not a directory"
    ctl_nobody watch "$E2E_TMP/locked"
    expect_error "permission denied" "cannot watch .*locked: permission denied"
    ctl_nobody wait --timeout 1 "$E2E_TMP/locked"
    expect_error "permission denied (wait)" "permission denied"
    ctl flush "$E2E_TMP/does-not-exist"
    expect_error "flush: no such path" "no such file or directory"
    ctl_nobody watch --system
    expect_error "system as nobody" "cannot watch the whole system"
    e2e_pass "path errors: no such path, not a directory, permission denied, whole system refused"
}

check_json_fields() {
    mkdir -p "$W"
    e2e_watch "$W" --json
    local before after pid
    before=$(date +%s.%N)
    sh -c 'echo $$ > "$1"; exec touch "$2"' sh "$E2E_TMP/actor.pid" "$W/f"
    after=$(date +%s.%N)
    pid=$(cat "$E2E_TMP/actor.pid")
    mkdir "$W/d"
    chown 12:34 "$W/f"
    mv "$W/f" "$W/g"
    touch "$W/END"
    wait_path "$E2E_OUT" "$W/END"
    local f=$E2E_TMP/create.json
    jq -c --arg p "$W/f" 'select(.type == "create" and .path == $p)' "$E2E_OUT" | head -1 > "$f"
    [ -s "$f" ] || e2e_fail "no create record for $W/f: $(cat "$E2E_OUT")"
    local st_ino st_dev st_mode
    read -r st_ino st_dev st_mode < <(stat -c '%i %d %f' "$W/g")
    jq_check "$f" '.id | type == "number" and . > 0' "json: id"
    grep -qE '^\{"id":[0-9]+,' "$f" || e2e_fail "json: id is not an integer first in the line"
    jq_check "$f" '.dest == null' "json: dest of a create"
    jq_check "$f" '.is_dir == false' "json: is_dir"
    jq_check "$f" '(.flags | type == "array") and (any(.flags[]; . == "is_dir") | not)' "json: flags"
    # the attributes: exact when given; fanotify must give them all (inotify
    # reports no pid, and the others only where the daemon could stat)
    if [ "$BACKEND" = fanotify ]; then
        jqe 'has("uid") and has("gid") and has("mode") and has("ino") and has("dev")' "$f" > /dev/null ||
            e2e_fail "json: attributes missing from a fanotify create: $(cat "$f")"
        jqe --argjson pid "$pid" '.pid == $pid' "$f" > /dev/null || e2e_fail "json: pid $(jq .pid "$f"), expected $pid"
    else
        jqe --argjson pid "$pid" '.pid == $pid or .pid == 0' "$f" > /dev/null || e2e_fail "json: pid $(jq .pid "$f"), expected $pid or 0"
    fi
    jqe '(has("uid") | not) or (.uid == 0 and .gid == 0)' "$f" > /dev/null || e2e_fail "json: uid/gid: $(cat "$f")"
    jqe --argjson m "$((16#$st_mode))" '(has("mode") | not) or .mode == $m' "$f" > /dev/null ||
        e2e_fail "json: mode $(jq .mode "$f"), expected $((16#$st_mode))"
    jqe --argjson i "$st_ino" '(has("ino") | not) or .ino == $i' "$f" > /dev/null || e2e_fail "json: ino $(jq .ino "$f"), expected $st_ino"
    jqe --argjson d "$st_dev" '(has("dev") | not) or .dev == $d' "$f" > /dev/null || e2e_fail "json: dev $(jq .dev "$f"), expected $st_dev"
    jqe --argjson b "$before" --argjson a "$after" '.time >= $b - 0.01 and .time <= $a + 0.01' "$f" > /dev/null ||
        e2e_fail "json: time $(jq .time "$f") not within [$before, $after]"
    jqe '(.time_ns / 1e9 - .time) | fabs < 0.001' "$f" > /dev/null || e2e_fail "json: time and time_ns disagree"
    # exactly: time is time_ns truncated to the microsecond (jq's doubles
    # cannot hold time_ns, Python's decimals can)
    python3 -c '
import decimal, json, sys
for line in open(sys.argv[1]):
    r = json.loads(line, parse_float=decimal.Decimal)
    if r["time"] * 1000000 != r["time_ns"] // 1000:
        sys.exit("time %s is not time_ns %d truncated to the microsecond" % (r["time"], r["time_ns"]))
' "$E2E_OUT" || e2e_fail "json: time is not time_ns truncated to the microsecond"
    # a directory
    jqe --arg p "$W/d" 'select(.type == "create" and .path == $p) |
        .is_dir == true and any(.flags[]; . == "is_dir")' "$E2E_OUT" > /dev/null ||
        e2e_fail "json: mkdir is not a create with is_dir and the is_dir flag: $(cat "$E2E_OUT")"
    # attributes after chown
    jqe --arg p "$W/f" 'select(.type == "attrib" and .path == $p) | (has("uid") | not) or (.uid == 12 and .gid == 34)' "$E2E_OUT" > /dev/null ||
        e2e_fail "json: attrib after chown 12:34 does not carry uid/gid 12/34: $(grep attrib "$E2E_OUT")"
    # a rename: one record with both paths
    jqe --arg p "$W/f" --arg d "$W/g" 'select(.type == "rename") | .path == $p and .dest == $d and .is_dir == false' \
        "$E2E_OUT" > /dev/null || e2e_fail "json: rename record: $(grep rename "$E2E_OUT")"
    # every line is one object with the required keys
    jqe -s 'all(.[]; has("id") and has("type") and has("path") and has("dest") and has("is_dir") and
        has("flags") and has("pid") and has("time"))' "$E2E_OUT" > /dev/null || e2e_fail "json: a record lacks a key"
    e2e_stop_watch
    e2e_pass "json: id, type, path, dest, is_dir, flags, pid, uid, gid, mode, ino, dev, time checked against stat"
}

check_human() {
    local w=$E2E_TMP/human
    mkdir -p "$w"
    e2e_watch "$w"
    touch "$w/a"
    mv "$w/a" "$w/b"
    mkdir "$w/dir"
    touch "$w/END"
    wait_for_line "$E2E_OUT" "$w/END"
    e2e_stop_watch
    grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6} create +$w/a\$" "$E2E_OUT" ||
        e2e_fail "human: no 'TIME create PATH' line: $(cat "$E2E_OUT")"
    grep -qE " rename +$w/a -> $w/b\$" "$E2E_OUT" || e2e_fail "human: rename line: $(cat "$E2E_OUT")"
    grep -qE " create +$w/dir \[is_dir\]\$" "$E2E_OUT" || e2e_fail "human: directory line: $(cat "$E2E_OUT")"
    ! grep -q $'\033' "$E2E_OUT" || e2e_fail "human: colours in a pipe"
    e2e_pass "human output: time, type, path, -> dest, [flags], no colours in a pipe"
}

check_escaping() {
    local w=$E2E_TMP/esc
    mkdir -p "$w"
    local name=$'new\nline\xffbad\ttab'
    e2e_watch "$w"
    local human=$E2E_OUT
    mv "$human" "$E2E_TMP/esc-human.out"; human=$E2E_TMP/esc-human.out
    # the human watch keeps writing to the renamed file
    local hpid=$E2E_WPID; E2E_WPID=""
    e2e_watch "$w" --json
    touch "$w/$name"
    touch "$w/END"
    wait_path "$E2E_OUT" "$w/END"
    wait_for_line "$human" "$w/END"
    kill "$hpid"; wait "$hpid" 2>/dev/null || true
    e2e_stop_watch
    grep -F "$w/new\\nline\\xffbad\\ttab" "$human" | grep -qE '^[^ ]+ create +/' ||
        e2e_fail "human: name not escaped as new\\nline\\xffbad\\ttab: $(cat -A "$human")"
    # one event per line: the newline inside the name did not split it
    [ "$(grep -c ' create ' "$human")" -eq 2 ] || e2e_fail "human: the name broke the line: $(cat -A "$human")"
    # JSON: U+FFFD in "path", the exact bytes in "path_base64"
    local rec=$E2E_TMP/esc.json
    jq -c 'select(.type == "create" and has("path_base64"))' "$E2E_OUT" > "$rec"
    [ "$(wc -l < "$rec")" -eq 1 ] || e2e_fail "json: expected one record with path_base64: $(cat "$E2E_OUT")"
    jqe --arg p "$w/new"$'\n'"line"$'\ufffd'"bad"$'\t'"tab" '.path == $p' "$rec" > /dev/null ||
        e2e_fail "json: path is not the name with U+FFFD: $(cat "$rec")"
    jq -r .path_base64 "$rec" | base64 -d > "$E2E_TMP/esc.bytes"
    printf '%s' "$w/$name" | cmp -s - "$E2E_TMP/esc.bytes" || e2e_fail "json: path_base64 does not decode to the exact bytes"
    jqe --arg p "$w/END" 'select(.path == $p) | has("path_base64") | not' "$E2E_OUT" > /dev/null ||
        e2e_fail "json: path_base64 on a UTF-8 name"
    e2e_pass "a name with a newline, a tab and byte 0xff: escaped for humans, U+FFFD + exact base64 in JSON"
}

check_count_timeout() {
    local w=$E2E_TMP/ct
    mkdir -p "$w"
    # --count 3 exits 0 after exactly three records
    "$FSNOTECTL" watch --json --count 3 "$w" > "$E2E_TMP/count.out" 2> "$E2E_TMP/count.err" & local p=$!
    wait_for_line "$E2E_TMP/count.err" "Watches established."
    for i in 1 2 3 4 5; do touch "$w/c$i"; done
    local rc=0; wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || e2e_fail "--count 3: status $rc"
    [ "$(wc -l < "$E2E_TMP/count.out")" -eq 3 ] || e2e_fail "--count 3: $(wc -l < "$E2E_TMP/count.out") lines"
    # --timeout with nothing happening: exit 2 after about that long
    local t0 t1
    t0=$(date +%s%N); ctl watch --timeout 0.5 "$w"; t1=$(date +%s%N)
    [ "$RC" -eq 2 ] || e2e_fail "--timeout 0.5: status $RC"
    [ ! -s "$E2E_TMP/out" ] || e2e_fail "--timeout: output without events"
    local ms=$(( (t1 - t0) / 1000000 ))
    [ "$ms" -ge 500 ] && [ "$ms" -lt 3000 ] || e2e_fail "--timeout 0.5 took $ms ms"
    # --count N --timeout: fewer than N in time is status 2, with what came printed
    "$FSNOTECTL" watch --json --count 5 --timeout 1 "$w" > "$E2E_TMP/ct.out" 2> "$E2E_TMP/ct.err" & p=$!
    wait_for_line "$E2E_TMP/ct.err" "Watches established."
    touch "$w/only"
    rc=0; wait "$p" || rc=$?
    [ "$rc" -eq 2 ] || e2e_fail "--count 5 --timeout 1 with one event: status $rc"
    jqe --arg p "$w/only" 'select(.type == "create") | .path == $p' "$E2E_TMP/ct.out" > /dev/null ||
        e2e_fail "--count/--timeout: the event that came is not printed"
    e2e_pass "--count exits 0 after N records; --timeout exits 2 ($ms ms for 0.5 s), also with fewer than --count"
}

check_wait() {
    local w=$E2E_TMP/wait
    mkdir -p "$w/sub"
    "$FSNOTECTL" wait --timeout 5 --json "$w" > "$E2E_TMP/wait.out" 2> "$E2E_TMP/wait.err" & local p=$!
    wait_for_line "$E2E_TMP/wait.err" "Watches established."
    touch "$w/sub/deep"
    local rc=0; wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || e2e_fail "wait: status $rc"
    [ "$(wc -l < "$E2E_TMP/wait.out")" -eq 1 ] || e2e_fail "wait: not exactly one line"
    jq_check "$E2E_TMP/wait.out" ".path == \"$w/sub/deep\" and .type == \"create\"" "wait: wrong event"
    # -e delete: a create does not end it, the delete does
    "$FSNOTECTL" wait -e delete --timeout 5 --json "$w" > "$E2E_TMP/wait.out" 2> "$E2E_TMP/wait.err" & p=$!
    wait_for_line "$E2E_TMP/wait.err" "Watches established."
    touch "$w/x"
    sleep 0.2
    kill -0 "$p" 2>/dev/null || e2e_fail "wait -e delete ended on a create: $(cat "$E2E_TMP/wait.out")"
    rm "$w/x"
    rc=0; wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || e2e_fail "wait -e delete: status $rc"
    jq_check "$E2E_TMP/wait.out" ".type == \"delete\" and .path == \"$w/x\"" "wait -e delete: wrong event"
    # nothing happens: 2
    ctl wait --timeout 0.3 "$w"
    [ "$RC" -eq 2 ] || e2e_fail "wait --timeout: status $RC"
    e2e_pass "wait: 0 at the first matching event (printed), -e filters, 2 on timeout"
}

check_children_events_exclude() {
    local w=$E2E_TMP/cee
    mkdir -p "$w/sub" "$w/node_modules"
    e2e_watch "$w" --json --children
    touch "$w/sub/deep" "$w/top"
    touch "$w/END"
    wait_path "$E2E_OUT" "$w/END"
    e2e_stop_watch
    jqe --arg p "$w/top" 'select(.path == $p)' "$E2E_OUT" > /dev/null || e2e_fail "--children: direct child missing"
    ! jqe --arg p "$w/sub/deep" 'select(.path == $p)' "$E2E_OUT" > /dev/null || e2e_fail "--children: grandchild reported"
    # -e: only the listed types (dropped/unmount aside)
    e2e_watch "$w" --json -e delete,rename
    touch "$w/e1"
    mv "$w/e1" "$w/e2"
    rm "$w/e2"
    touch "$w/END2"
    rm "$w/END2"
    wait_path "$E2E_OUT" "$w/END2"
    e2e_stop_watch
    jqe -s 'map(.type) | unique == ["delete", "rename"]' "$E2E_OUT" > /dev/null ||
        e2e_fail "-e delete,rename: got types $(jq -r .type "$E2E_OUT" | sort -u | tr '\n' ' ')"
    # --exclude: a directory name and a glob
    e2e_watch "$w" --json --exclude node_modules --exclude '*.tmp'
    touch "$w/node_modules/x" "$w/scratch.tmp" "$w/kept"
    touch "$w/END3"
    wait_path "$E2E_OUT" "$w/END3"
    e2e_stop_watch
    ! grep -q 'node_modules\|scratch.tmp' "$E2E_OUT" || e2e_fail "--exclude: excluded names reported: $(cat "$E2E_OUT")"
    jqe --arg p "$w/kept" 'select(.path == $p)' "$E2E_OUT" > /dev/null || e2e_fail "--exclude: kept file missing"
    e2e_pass "--children, -e delete,rename and --exclude select exactly what they say"
}

check_since_ids() {
    local w=$E2E_TMP/since
    mkdir -p "$w"
    ctl current-id
    [ "$RC" -eq 0 ] && grep -qE '^[0-9]+$' "$E2E_TMP/out" || e2e_fail "current-id: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
    local id0; id0=$(cat "$E2E_TMP/out")
    # the events of interest must be in the daemon's pool: have it watch
    e2e_watch "$w" --json
    touch "$w/r1"
    sleep 0.2
    local t_mid; t_mid=$(date +%s.%N)
    sleep 0.2
    touch "$w/r2"
    rm "$w/r1"
    wait_for_json "$E2E_OUT" --arg p "$w/r1" 'select(.type == "delete" and .path == $p)'
    e2e_stop_watch
    local id_r2 id_now
    id_r2=$(id_of "$E2E_OUT" create "$w/r2")
    [ -n "$id_r2" ] || e2e_fail "no create record for r2"
    ctl current-id; id_now=$(cat "$E2E_TMP/out")
    [ "$id_now" -gt "$id0" ] || e2e_fail "current-id did not grow ($id0 -> $id_now)"
    # --at: the first ID at or after a time between the two creates
    ctl current-id --at "@$t_mid"
    [ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$id_r2" ] ||
        e2e_fail "current-id --at @$t_mid: '$(cat "$E2E_TMP/out" "$E2E_TMP/err")', expected $id_r2"
    local iso; iso=$(date -d "@$t_mid" --iso-8601=ns)
    ctl current-id --at "$iso"
    [ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$id_r2" ] || e2e_fail "current-id --at $iso: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
    local local_iso; local_iso=$(date -d "@$t_mid" '+%Y-%m-%d %H:%M:%S.%N')
    ctl current-id --at "$local_iso"
    [ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$id_r2" ] || e2e_fail "current-id --at '$local_iso': $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
    sleep 0.3
    # a time after the events above: an ID after all of them, and at most
    # one past the newest (the filesystem mark also pools this test's own
    # writes to its scratch files and the daemon's log, on the same tmpfs)
    ctl current-id --at -0.1s
    local at; at=$(cat "$E2E_TMP/out")
    local after; after=$("$FSNOTECTL" current-id)
    [ "$RC" -eq 0 ] && [ "$at" -gt "$id_now" ] && [ "$at" -le "$((after + 1))" ] ||
        e2e_fail "current-id --at -0.1s after the last event: '$at $(cat "$E2E_TMP/err")', expected in ($id_now, $((after + 1))]"
    ctl current-id --at -10min
    expect_error "current-id --at before the history" "older than the daemon's history"
    # --since replays what happened after an ID, flagged history
    ctl watch --json --since "$id0" --timeout 1 "$w"
    [ "$RC" -eq 2 ] || e2e_fail "--since with --timeout 1: status $RC"
    cp "$E2E_TMP/out" "$E2E_TMP/since.out"
    jqe -s --arg a "$w/r1" --arg b "$w/r2" 'map(select(any(.flags[]; . == "history"))) |
        any(.[]; .path == $a) and any(.[]; .path == $b)' "$E2E_TMP/since.out" > /dev/null ||
        e2e_fail "--since $id0: no replay of r1 and r2 flagged history: $(cat "$E2E_TMP/since.out" "$E2E_TMP/err")"
    local i
    for i in $(all_ids "$E2E_TMP/since.out"); do
        [ "$i" -gt "$id0" ] || e2e_fail "--since: ID $i is not after $id0"
    done
    e2e_pass "current-id, --at (@EPOCH, ISO 8601 with zone, local, relative, too old) and --since replay"
}

check_flush() {
    local w=$E2E_TMP/flush
    mkdir -p "$w"
    e2e_watch "$w" --json
    touch "$w/before-flush"
    ctl flush "$w"
    [ "$RC" -eq 0 ] && grep -qE '^[0-9]+$' "$E2E_TMP/out" || e2e_fail "flush: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
    local fid; fid=$(cat "$E2E_TMP/out")
    wait_path "$E2E_OUT" "$w/before-flush"
    e2e_stop_watch
    local cid; cid=$(id_of "$E2E_OUT" create "$w/before-flush")
    [ -n "$cid" ] && [ "$cid" -le "$fid" ] || e2e_fail "flush: ID $fid does not cover the create before it ($cid)"
    e2e_pass "flush prints an ID covering every change made before it"
}

check_inject() {
    local w=$E2E_TMP/inj
    mkdir -p "$w"
    e2e_watch "$w" --json
    ctl inject create "$w/synthetic"
    [ "$RC" -eq 0 ] && grep -qE '^[0-9]+$' "$E2E_TMP/out" || e2e_fail "inject: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
    local iid; iid=$(cat "$E2E_TMP/out")
    ctl inject --dir rename "$w/sd1" "$w/sd2"
    [ "$RC" -eq 0 ] || e2e_fail "inject rename: $(cat "$E2E_TMP/err")"
    wait_path "$E2E_OUT" "$w/sd1"
    e2e_stop_watch
    [ "$(id_of "$E2E_OUT" create "$w/synthetic")" = "$iid" ] &&
        jqe --arg p "$w/synthetic" 'select(.path == $p) | .type == "create" and any(.flags[]; . == "injected")' "$E2E_OUT" > /dev/null ||
        e2e_fail "inject: the synthetic create is not delivered with its ID and the injected flag: $(cat "$E2E_OUT")"
    jqe --arg p "$w/sd1" --arg d "$w/sd2" 'select(.path == $p) | .type == "rename" and .dest == $d and .is_dir' \
        "$E2E_OUT" > /dev/null || e2e_fail "inject: the synthetic rename: $(cat "$E2E_OUT")"
    ctl_nobody inject create "$w/nope"
    expect_error "inject as nobody" "cannot inject: .*root"
    e2e_pass "inject as root delivered (ID, injected flag, rename with --dir); refused for nobody"
}

check_status() {
    local w=$E2E_TMP/st
    mkdir -p "$w"
    e2e_watch "$w" --json
    ctl status --json
    [ "$RC" -eq 0 ] || e2e_fail "status --json: $(cat "$E2E_TMP/err")"
    [ "$(wc -l < "$E2E_TMP/out")" -eq 1 ] || e2e_fail "status --json is not one line"
    jqe --arg p "$w" '.version and .backend and (.pool.max_events > 0) and
        any(.subscribers[]; .path == $p)' "$E2E_TMP/out" > /dev/null || e2e_fail "status --json: $(cat "$E2E_TMP/out")"
    local version; version=$(jq -r .version "$E2E_TMP/out")
    ctl status
    [ "$RC" -eq 0 ] || e2e_fail "status: $(cat "$E2E_TMP/err")"
    local out=$E2E_TMP/out
    grep -q "^fsnoted $version (pid [0-9]*)" "$out" || e2e_fail "status: no version line: $(cat "$out")"
    grep -qE '^  backend +(fanotify|inotify)' "$out" || e2e_fail "status: no backend"
    grep -qE '^  pool +\[[#.]{30}\] +[0-9]+%' "$out" || e2e_fail "status: no pool bar: $(cat "$out")"
    grep -qE '^  access cache +[0-9.]+% hits' "$out" || e2e_fail "status: no access cache hit rate"
    grep -q 'QUEUED/DEPTH' "$out" || e2e_fail "status: no subscriber table"
    grep -qE "^ +[0-9]+ +[0-9]+ fsnotectl +0 subtree .* $w\$" "$out" || e2e_fail "status: our watch is not listed: $(cat "$out")"
    # nobody sees no one else's subscriptions
    ctl_nobody status --json
    [ "$RC" -eq 0 ] || e2e_fail "status as nobody: $(cat "$E2E_TMP/err")"
    jqe '.subscribers | length == 0' "$E2E_TMP/out" > /dev/null || e2e_fail "status: nobody sees root's subscriptions"
    e2e_stop_watch
    e2e_pass "status: version, backend, pool bar, cache hit rate, subscriber table; --json one line"
}

check_shutdown() {
    local w=$E2E_TMP/shut
    mkdir -p "$w"
    e2e_watch "$w" --json
    local p=$E2E_WPID
    e2e_stop_daemon
    local rc=0
    for _ in $(seq 250); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
    wait "$p" || rc=$?
    E2E_WPID=""
    [ "$rc" -eq 0 ] || e2e_fail "watch after shutdown: status $rc ($(cat "$E2E_TMP/watch.err"))"
    [ "$(grep -vc 'Watches established.' "$E2E_TMP/watch.err")" -eq 1 ] &&
        grep -q '^fsnotectl: .*shutting down' "$E2E_TMP/watch.err" || e2e_fail "watch after shutdown: note: $(cat "$E2E_TMP/watch.err")"
    ctl current-id
    expect_error "after shutdown" "fsnoted is not running"
    e2e_pass "daemon shutdown: watch prints a one-line note and exits 0"
}

check_no_daemon
check_usage
echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
e2e_start_daemon ${CLI_BACKEND:+--backend "$CLI_BACKEND"}
BACKEND=$("$FSNOTECTL" status --json | jq -r .backend)
check_path_errors
check_json_fields
check_human
check_escaping
check_count_timeout
check_wait
check_children_events_exclude
check_since_ids
check_flush
check_inject
check_status
check_shutdown
e2e_summary
