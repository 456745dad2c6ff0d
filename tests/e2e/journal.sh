#!/bin/bash
# End to end, real kernel: the persistent journal.
#  - restart: events before a clean stop are replayed after the restart
#    (watch --since and history), the resume gets a must-rescan drop that
#    covers the downtime gap, and IDs keep growing;
#  - kill -9 during a burst: every event a subscriber got before the kill
#    is in the journal or inside the reported gap, and nothing after the
#    restart is missing;
#  - a segment with flipped bytes and one cut short: the daemon starts,
#    reports the gap and keeps everything else;
#  - retention: under a long burst the journal stays within its bound and
#    the oldest segments go first;
#  - replay is judged like live delivery: nobody does not get, from the
#    journal, a name inside a directory it cannot read;
#  - a filesystem replaced by another at the same path: nothing of the old
#    one is replayed on the new one, and the resume is told to rescan;
#  - journal_exclude keeps a path out of the journal, and a resume over it
#    is told to rescan; "journal": false turns it off.
# The state directory is a private tmpfs per run.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

STATE=$E2E_TMP/state
mkdir -p "$E2E_TMP/run"

start() { e2e_start_daemon --state-dir "$STATE"; }
ctl() { "$FSNOTECTL" "$@"; }
status_json() { ctl status --json; }
cur_id() { ctl current-id; }

# A watcher keeps the filesystem marked, so that events are pooled (and
# journaled); W_OUT holds what it saw.
watch_bg() {
    W_OUT=$E2E_TMP/$1.out
    : > "$W_OUT"
    "$FSNOTECTL" watch --json "$2" > "$W_OUT" 2> "$E2E_TMP/$1.err" &
    W_PID=$!
    for _ in $(seq 250); do
        grep -q 'Watches established.' "$E2E_TMP/$1.err" && return 0
        kill -0 "$W_PID" 2>/dev/null || e2e_fail "watch $2 exited: $(cat "$E2E_TMP/$1.err")"
        sleep 0.02
    done
    e2e_fail "watch $2 never established"
}
unwatch() { kill "$W_PID" 2>/dev/null || true; wait "$W_PID" 2>/dev/null || true; }

# Waits until FILE has a create for PATH.
wait_create() {
    # grep, not jq: the file may hold tens of thousands of records
    for _ in $(seq 500); do
        grep -qF "\"type\":\"create\",\"path\":\"$2\"" "$1" && return 0
        sleep 0.02
    done
    e2e_fail "no create of $2 in $1"
}

check_restart() {
    local w=$E2E_TMP/restart
    mkdir -p "$w"
    echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
    start
    watch_bg r1 "$w"
    local id0; id0=$(cur_id)
    local t0; t0=$(date +%s.%N)
    for i in 1 2 3; do : > "$w/before$i"; done
    wait_create "$W_OUT" "$w/before3"
    unwatch
    local last; last=$(cur_id)
    e2e_stop_daemon
    start
    local id1; id1=$(cur_id)
    [ "$id1" -gt "$last" ] || e2e_fail "restart: IDs went back ($last before, $id1 after)"
    local gap; gap=$(status_json | jq -c '.journal.gaps | map(select(.reason == "stopped")) | last')
    [ "$gap" != null ] || e2e_fail "restart: no stopped gap in status: $(status_json | jq -c .journal)"
    local gf gl; gf=$(jq -r .id_first <<< "$gap"); gl=$(jq -r .id_last <<< "$gap")
    [ "$gf" -le $((last + 1)) ] && [ "$gl" -ge "$id1" ] || e2e_fail "restart: gap $gap does not span $last..$id1"

    # watch --since: the drop covering the gap first, then what was journaled
    local rc=0
    "$FSNOTECTL" watch --json --since "$id0" --timeout 1 "$w" > "$E2E_TMP/r2.out" 2> "$E2E_TMP/r2.err" || rc=$?
    [ "$rc" = 2 ] || e2e_fail "restart: watch --since failed ($rc): $(cat "$E2E_TMP/r2.err")"
    jq -e -s --argjson gf "$gf" --argjson gl "$gl" \
        '.[0].type == "dropped" and (.[0].flags | index("must_rescan")) != null and
         .[0].id_first <= $gf and .[0].id_last >= $gl' "$E2E_TMP/r2.out" > /dev/null ||
        e2e_fail "restart: the resume did not start with a drop covering the gap: $(head -1 "$E2E_TMP/r2.out")"
    for i in 1 2 3; do
        e2e_jq_any "$E2E_TMP/r2.out" '.type == "create" and .path == $p and (.flags | index("history")) != null' \
            --arg p "$w/before$i" || e2e_fail "restart: before$i not replayed by watch --since: $(cat "$E2E_TMP/r2.out")"
    done
    # history prints the same and exits by itself
    ctl history --json --since "$id0" "$w" > "$E2E_TMP/r3.out" 2> "$E2E_TMP/r3.err" ||
        e2e_fail "restart: history failed: $(cat "$E2E_TMP/r3.err")"
    for i in 1 2 3; do
        e2e_jq_any "$E2E_TMP/r3.out" '.type == "create" and .path == $p' --arg p "$w/before$i" ||
            e2e_fail "restart: history lacks before$i"
    done
    e2e_jq_any "$E2E_TMP/r3.out" '.type == "dropped"' || e2e_fail "restart: history shows no gap"
    # --until ends earlier: only what came before it
    local id2; id2=$(jq -s '[.[] | select(.type == "create" and (.path | endswith("/before2")))][0].id' "$E2E_TMP/r3.out")
    ctl history --json --since "$id0" --until "$id2" "$w" > "$E2E_TMP/r4.out" || e2e_fail "restart: history --until failed"
    e2e_jq_any "$E2E_TMP/r4.out" '.path == $p' --arg p "$w/before2" || e2e_fail "restart: --until lost its own ID"
    ! e2e_jq_any "$E2E_TMP/r4.out" '.path == $p' --arg p "$w/before3" || e2e_fail "restart: --until went past $id2"
    # --at a time of the earlier run: answered from the journal
    rc=0
    "$FSNOTECTL" watch --json --at "@$t0" --timeout 1 "$w" > "$E2E_TMP/r6.out" 2>/dev/null || rc=$?
    [ "$rc" = 2 ] && e2e_jq_any "$E2E_TMP/r6.out" '.type == "create" and .path == $p' --arg p "$w/before1" ||
        e2e_fail "restart: watch --at @$t0 did not replay before1: $(cat "$E2E_TMP/r6.out")"
    ctl history --json --at "@$t0" "$w" > "$E2E_TMP/r7.out" || e2e_fail "restart: history --at failed"
    e2e_jq_any "$E2E_TMP/r7.out" '.type == "create" and .path == $p' --arg p "$w/before1" ||
        e2e_fail "restart: history --at @$t0 did not replay before1"
    # a resume from after the restart crosses nothing
    watch_bg r5 "$w"
    local id3; id3=$(cur_id)
    : > "$w/after"
    wait_create "$W_OUT" "$w/after"
    unwatch
    "$FSNOTECTL" watch --json --since "$id3" --count 1 --timeout 5 "$w" > "$E2E_TMP/r5.out" 2>/dev/null ||
        e2e_fail "restart: resume after the restart failed"
    jq -e -s '.[0].type == "create"' "$E2E_TMP/r5.out" > /dev/null ||
        e2e_fail "restart: a resume within the run got $(head -1 "$E2E_TMP/r5.out")"
    # status in words
    ctl status | grep -q 'gap stopped' || e2e_fail "restart: fsnotectl status shows no gap: $(ctl status)"
    e2e_stop_daemon
    e2e_pass "clean restart: replayed after it, the gap ($gf..$gl) reported first, IDs grow"
}

check_kill9() {
    local w=$E2E_TMP/kill9
    mkdir -p "$w"
    start
    watch_bg k1 "$w"
    local id0; id0=$(cur_id)
    ( for i in $(seq 3000); do : > "$w/burst$i"; done ) & local writer=$!
    for _ in $(seq 500); do
        [ "$(grep -c '"create"' "$W_OUT" || true)" -ge 300 ] && break
        sleep 0.01
    done
    kill -9 "$E2E_DPID"
    wait "$E2E_DPID" 2>/dev/null || true
    E2E_DPID=""
    wait "$writer"
    unwatch
    start
    watch_bg k2 "$w"
    for i in 1 2 3 4 5; do : > "$w/post$i"; done
    wait_create "$W_OUT" "$w/post5"
    unwatch
    ctl history --json --since "$id0" "$w" > "$E2E_TMP/k.hist" 2> "$E2E_TMP/k.err" ||
        e2e_fail "kill -9: history failed: $(cat "$E2E_TMP/k.err")"
    local gap; gap=$(status_json | jq -c '.journal.gaps | map(select(.reason == "crashed" or .reason == "corrupt")) | last')
    [ "$gap" != null ] || e2e_fail "kill -9: no crash gap: $(status_json | jq -c .journal)"
    # every create the first watcher got is in the journal or in a gap the
    # history reported
    local missing
    missing=$(jq -n --slurpfile seen "$E2E_TMP/k1.out" --slurpfile hist "$E2E_TMP/k.hist" '
        ($hist | map(select(.type == "dropped")) | map([.id_first, .id_last])) as $gaps |
        ($hist | map(select(.type != "dropped") | {key: (.id | tostring), value: 1}) | from_entries) as $ids |
        [$seen[] | select(.type == "create") | .id |
         select(. as $i | $ids[$i | tostring] == null and
                ([$gaps[] | select(.[0] <= $i and $i <= .[1])] | length) == 0)] | length')
    [ "$missing" = 0 ] || e2e_fail "kill -9: $missing events seen before the kill are neither journaled nor in a gap"
    for i in 1 2 3 4 5; do
        e2e_jq_any "$E2E_TMP/k.hist" '.type == "create" and .path == $p' --arg p "$w/post$i" ||
            e2e_fail "kill -9: post$i (after the restart) missing from the journal"
    done
    local seen; seen=$(grep -c '"create"' "$E2E_TMP/k1.out" || true)
    e2e_stop_daemon
    e2e_pass "kill -9 in a burst: all $seen creates seen before it are journaled or in the crash gap; nothing after it missing"
}

# corrupt CUT|FLIP: damages the journal between two runs.
check_corrupt() {
    local w=$E2E_TMP/corrupt
    mkdir -p "$w"
    echo '{ "latency_ms": 0, "journal_max_bytes": 2097152 }' > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    start
    watch_bg c1 "$w"
    local id0; id0=$(cur_id)
    for i in $(seq 3000); do : > "$w/f$i"; done
    wait_create "$W_OUT" "$w/f3000"
    unwatch
    e2e_stop_daemon
    local segs; segs=$(ls "$STATE"/*.fsj | wc -l)
    [ "$segs" -ge 3 ] || e2e_fail "corrupt: expected several segments, got $segs"
    local first; first=$(ls "$STATE"/*.fsj | head -1)
    local last; last=$(ls "$STATE"/*.fsj | tail -1)
    # flip bytes in the middle of the oldest segment, cut the newest short
    printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$first" bs=1 seek=200000 conv=notrunc status=none
    truncate -s -7 "$last"
    start
    local gaps; gaps=$(status_json | jq -c '[.journal.gaps[] | select(.reason == "corrupt")]')
    [ "$(jq length <<< "$gaps")" -ge 2 ] || e2e_fail "corrupt: expected two corrupt gaps: $(status_json | jq -c .journal)"
    ctl history --json --since "$id0" "$w" > "$E2E_TMP/c.hist" || e2e_fail "corrupt: history failed"
    e2e_jq_any "$E2E_TMP/c.hist" '.type == "dropped" and (.flags | index("must_rescan")) != null' ||
        e2e_fail "corrupt: the resume was not told of the gap"
    local kept; kept=$(jq -s '[.[] | select(.type == "create")] | length' "$E2E_TMP/c.hist")
    e2e_jq_any "$E2E_TMP/c.hist" '.type == "create" and .path == $p' --arg p "$w/f1" || e2e_fail "corrupt: f1 (before the flip) lost"
    # the middle segments are untouched: their events are all there
    [ "$kept" -gt 1000 ] || e2e_fail "corrupt: only $kept creates kept"
    e2e_stop_daemon
    e2e_pass "corrupt journal: flipped bytes and a cut tail reported as gaps, $kept of 3000 creates kept"
}

check_retention() {
    local w=$E2E_TMP/retention
    mkdir -p "$w"
    echo '{ "latency_ms": 0, "journal_max_bytes": 1048576 }' > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    start
    watch_bg t1 "$w"
    local max=0
    for round in $(seq 5); do
        for i in $(seq 2000); do : > "$w/r$round-$i"; done
        ctl current-id > /dev/null
        local sz; sz=$(du -sb "$STATE" | cut -f1)
        [ "$sz" -gt "$max" ] && max=$sz
    done
    wait_create "$W_OUT" "$w/r5-2000"
    unwatch
    # the bound, plus at most one segment (1/8) and the write buffer
    [ "$max" -le $((1048576 + 131072 + 262144 + 8192)) ] || e2e_fail "retention: the journal grew to $max bytes"
    # oldest first: what is left is a run of consecutive segments ending
    # with the newest, and the journal starts later than the burst did
    local seqs; seqs=$(ls "$STATE" | grep '\.fsj$' | sed 's/\.fsj$//')
    local n=0 prev=""
    for s in $seqs; do
        local v=$((16#$s))
        [ -z "$prev" ] || [ "$v" -eq $((prev + 1)) ] || e2e_fail "retention: segments not consecutive: $seqs"
        prev=$v; n=$((n + 1))
    done
    [ "$n" -ge 2 ] && [ "$((16#$(ls "$STATE" | grep '\.fsj$' | head -1 | sed 's/\.fsj$//')))" -gt 1 ] ||
        e2e_fail "retention: the oldest segment was not removed: $seqs"
    ctl history --json "$w" > "$E2E_TMP/t.hist" || e2e_fail "retention: history failed"
    e2e_jq_any "$E2E_TMP/t.hist" '.path == $p' --arg p "$w/r5-2000" || e2e_fail "retention: the newest event is gone"
    ! e2e_jq_any "$E2E_TMP/t.hist" '.path == $p' --arg p "$w/r1-1" || e2e_fail "retention: the oldest event is still there"
    e2e_stop_daemon
    e2e_pass "retention: 10000 files journaled within 1 MiB (peak $max bytes), oldest segments removed first"
}

check_permissions() {
    local w=$E2E_TMP/perm
    mkdir -p "$w/secret" "$w/open"
    chmod 0755 "$w" "$w/open"
    chmod 0700 "$w/secret"
    echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    start
    watch_bg p1 "$w"
    local id0; id0=$(cur_id)
    : > "$w/secret/hidden-name"
    : > "$w/open/visible-name"
    wait_create "$W_OUT" "$w/open/visible-name"
    wait_create "$W_OUT" "$w/secret/hidden-name"
    unwatch
    e2e_stop_daemon
    start   # the memory history is empty: only the journal can answer
    "${NOBODY[@]}" "$FSNOTECTL" history --json --since "$id0" "$w" > "$E2E_TMP/p.hist" 2> "$E2E_TMP/p.err" ||
        e2e_fail "permissions: history as nobody failed: $(cat "$E2E_TMP/p.err")"
    e2e_jq_any "$E2E_TMP/p.hist" '.path == $p' --arg p "$w/open/visible-name" ||
        e2e_fail "permissions: nobody did not get the visible name: $(cat "$E2E_TMP/p.hist")"
    ! grep -q 'hidden-name' "$E2E_TMP/p.hist" || e2e_fail "permissions: nobody was replayed a name it cannot see"
    ctl history --json --since "$id0" "$w" > "$E2E_TMP/p.root" || e2e_fail "permissions: history as root failed"
    grep -q 'hidden-name' "$E2E_TMP/p.root" || e2e_fail "permissions: root was not replayed the hidden name"
    # the journal itself is the daemon's alone
    [ "$(stat -c %a "$STATE")" = 700 ] || e2e_fail "permissions: the state directory is $(stat -c %a "$STATE")"
    ! "${NOBODY[@]}" ls "$STATE" > /dev/null 2>&1 || e2e_fail "permissions: nobody can list the journal"
    e2e_stop_daemon
    e2e_pass "replay is permission-checked: nobody got the visible name, not the one in a 0700 directory; the journal is 0700"
}

check_exclude_and_off() {
    local w=$E2E_TMP/excl
    mkdir -p "$w/private" "$w/public"
    printf '{ "latency_ms": 0, "history_events": 0, "journal_exclude": ["%s/private"] }\n' "$w" > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    start
    watch_bg x1 "$w"
    local id0; id0=$(cur_id)
    : > "$w/private/diary"
    : > "$w/public/notes"
    wait_create "$W_OUT" "$w/public/notes"
    wait_create "$W_OUT" "$w/private/diary"
    unwatch
    e2e_stop_daemon
    ! grep -rqa 'diary' "$STATE" || e2e_fail "exclude: an excluded name reached the journal"
    grep -rqa 'notes' "$STATE" || e2e_fail "exclude: the other name is not in the journal"
    start
    ctl history --json --since "$id0" "$w/public" > "$E2E_TMP/x.pub" || e2e_fail "exclude: history failed"
    e2e_jq_any "$E2E_TMP/x.pub" '.path == $p' --arg p "$w/public/notes" || e2e_fail "exclude: public/notes not replayed"
    ctl history --json --since "$id0" "$w/private" > "$E2E_TMP/x.priv" || e2e_fail "exclude: history failed"
    e2e_jq_any "$E2E_TMP/x.priv" '.type == "dropped" and (.flags | index("must_rescan")) != null' ||
        e2e_fail "exclude: a resume over an excluded path was not told to rescan"
    e2e_stop_daemon

    echo '{ "latency_ms": 0, "journal": false }' > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    start
    status_json | jq -e '.journal.enabled == false' > /dev/null || e2e_fail "journal: false did not turn it off"
    [ ! -e "$STATE" ] || e2e_fail "journal: false still created $STATE"
    e2e_stop_daemon
    e2e_pass "journal_exclude keeps a path out (its resume must rescan); journal: false turns the journal off"
}

# A filesystem replaced by another at the same path: its old events are
# not replayed on the new one (told apart by identity, not by path or by a
# device number the kernel may hand out again), and the resume must rescan.
check_replaced_fs() {
    local m=$E2E_TMP/mnt
    mkdir -p "$m"
    echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
    rm -rf "$STATE"
    mount -t tmpfs first-fs "$m"
    start
    watch_bg f1 "$m"
    local id0; id0=$(cur_id)
    : > "$m/on-the-old-fs"
    wait_create "$W_OUT" "$m/on-the-old-fs"
    unwatch
    e2e_stop_daemon
    umount "$m"
    mount -t tmpfs second-fs "$m"
    start
    watch_bg f2 "$m"
    : > "$m/on-the-new-fs"
    wait_create "$W_OUT" "$m/on-the-new-fs"
    unwatch
    ctl history --json --since "$id0" "$m" > "$E2E_TMP/f.hist" || e2e_fail "replaced fs: history failed"
    ! grep -q 'on-the-old-fs' "$E2E_TMP/f.hist" || e2e_fail "replaced fs: the old filesystem's event was replayed on the new one"
    e2e_jq_any "$E2E_TMP/f.hist" '.path == $p' --arg p "$m/on-the-new-fs" || e2e_fail "replaced fs: the new filesystem's event is missing"
    jq -e -s '.[0].type == "dropped" and (.[0].flags | index("must_rescan")) != null' "$E2E_TMP/f.hist" > /dev/null ||
        e2e_fail "replaced fs: the resume was not told to rescan first"
    # the same within one run: the device number comes back, the
    # filesystem does not
    watch_bg f3 "$m"
    local id1; id1=$(cur_id)
    : > "$m/on-the-second-fs"
    wait_create "$W_OUT" "$m/on-the-second-fs"
    unwatch
    umount "$m"
    for _ in $(seq 250); do grep -q 'unmounted' "$E2E_TMP/daemon.log" && break; sleep 0.02; done
    mount -t tmpfs third-fs "$m"
    watch_bg f4 "$m"
    : > "$m/on-the-third-fs"
    wait_create "$W_OUT" "$m/on-the-third-fs"
    unwatch
    ctl history --json --since "$id1" "$m" > "$E2E_TMP/f2.hist" || e2e_fail "replaced fs: history in one run failed"
    ! grep -q 'on-the-second-fs' "$E2E_TMP/f2.hist" ||
        e2e_fail "replaced fs, one run: the unmounted filesystem's event was replayed on its successor"
    e2e_jq_any "$E2E_TMP/f2.hist" '.path == $p' --arg p "$m/on-the-third-fs" ||
        e2e_fail "replaced fs, one run: the new filesystem's event is missing"
    e2e_jq_any "$E2E_TMP/f2.hist" '.type == "dropped" and (.flags | index("must_rescan")) != null' ||
        e2e_fail "replaced fs, one run: the resume was not told to rescan"
    e2e_stop_daemon
    umount "$m"
    e2e_pass "a filesystem replaced at the same path (across a restart and within a run): its old events are not replayed there, and the resume must rescan"
}

check_restart
check_replaced_fs
check_kill9
check_corrupt
check_retention
check_permissions
check_exclude_and_off
e2e_summary
