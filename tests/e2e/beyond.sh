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

# has FILE TYPE PATH: a record of TYPE ("-" for any) for PATH is in FILE.
# (Not `jq -e 'select(...)'`: jq 1.6 takes the exit status from the last
# input only, so a match followed by another record would read as none.)
has() {
    jq -n -e --arg t "$2" --arg p "$3" 'any(inputs; ($t == "-" or .type == $t) and .path == $p)' "$1" >/dev/null 2>&1
}

# wait_rec FILE TYPE PATH: until has FILE TYPE PATH, at most 5 s
wait_rec() {
    for _ in $(seq 250); do
        has "$@" && return 0
        sleep 0.02
    done
    e2e_fail "no $2 record for $3 within 5 s in $1"
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
    wait_rec "$E2E_OUT" create "$w/cli/g$n"
    local got max
    got=$(jq -r 'select(.type == "create") | .path' "$E2E_OUT" | grep -c '/cli/g[0-9]*$' || true)
    max=$(idq "$E2E_OUT" create "$w/cli/g" | sort -n | tail -1)
    [ "$got" = "$n" ] || e2e_fail "$backend: the watcher got $got of $n creates"
    [ "$max" -le "$fid" ] || e2e_fail "$backend: fsnotectl flush said $fid, but an earlier create has ID $max"
    # and it is a barrier, not a guess: a create after the flush is above it
    touch "$w/cli/after"
    wait_rec "$E2E_OUT" create "$w/cli/after"
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

# --- excludes ----------------------------------------------------------------

# directories the inotify source should watch: all but the excluded ones
unexcluded_dirs() {
    find "$1" \( -name node_modules -o -name .git -o -name '*.tmp' \) -prune -o -type d -print | wc -l
}

# the inotify source's watch count, as status --json says and as the
# kernel says (the "inotify wd:" lines of the daemon's descriptors)
inotify_watches() {
    local said kernel
    said=$("$FSNOTECTL" status --json | jq -r '.sources.inotify.watches')
    kernel=$(cat /proc/"$E2E_DPID"/fdinfo/* 2>/dev/null | grep -c '^inotify wd:' || true)
    [ "$said" = "$kernel" ] || e2e_fail "inotify: status --json says $said watches, the kernel has $kernel"
    echo "$kernel"
}

check_excludes() {  # BACKEND
    local backend=$1 w=$E2E_TMP/excl-$1
    mkdir -p "$w/node_modules/a/b" "$w/.git/objects/00" "$w/src/node_modules/deep" "$w/src/lib"
    e2e_start_daemon --backend "$backend"
    e2e_watch "$w" --json --exclude node_modules --exclude .git --exclude '*.tmp'
    local before want
    if [ "$backend" = inotify ]; then
        before=$(inotify_watches)
        want=$(unexcluded_dirs "$w")
        [ "$before" = "$want" ] ||
            e2e_fail "inotify: $before watches for $want directories outside the excluded ones"
    fi
    (
        cd "$w"
        echo x > node_modules/x.js
        echo x > node_modules/a/b/y.js
        echo x > .git/objects/00/obj
        echo x > .git/HEAD
        echo x > src/node_modules/deep/z.js
        echo x > a.tmp
        echo x > src/b.tmp
        mkdir c.tmp; echo x > c.tmp/inside
        echo x > src/lib/keep.c
        echo x > keep.txt
        # directories made after the subscription: excluded ones stay unwatched
        mkdir -p newdir/node_modules/q newdir/.git newdir/ok
        echo x > newdir/node_modules/q/late.js
        echo x > newdir/.git/late
        echo x > newdir/ok/late.c
        touch END
    )
    wait_rec "$E2E_OUT" create "$w/END"
    "$FSNOTECTL" flush "$w" > /dev/null
    local leaked
    leaked=$(jq -r '.path, (.dest // empty)' "$E2E_OUT" |
        grep -E '/(node_modules|\.git)(/|$)|\.tmp(/|$)' || true)
    [ -z "$leaked" ] || e2e_fail "$backend: events below excluded names reached the subscriber: $leaked"
    local p
    for p in keep.txt src/lib/keep.c newdir newdir/ok newdir/ok/late.c END; do
        has "$E2E_OUT" create "$w/$p" || e2e_fail "$backend: no create for $p (not excluded)"
    done
    local msg=""
    if [ "$backend" = inotify ]; then
        local after
        after=$(inotify_watches)
        want=$(unexcluded_dirs "$w")
        [ "$after" = "$want" ] ||
            e2e_fail "inotify: $after watches for $want directories outside the excluded ones (after mkdir)"
        # the control: a subscriber without excludes makes the shared tree
        # cover every directory, so the count above was not a fluke
        watch_bg noexcl "$w"
        local all
        all=$(inotify_watches)
        kill "$BG_PID"; wait "$BG_PID" 2>/dev/null || true
        [ "$all" = "$(find "$w" -type d | wc -l)" ] ||
            e2e_fail "inotify: $all watches with a subscriber without excludes, for $(find "$w" -type d | wc -l) directories"
        msg=", inotify watches $before then $after (= directories outside excluded ones), $all with a second subscriber without excludes"
    fi
    e2e_stop_watch
    e2e_stop_daemon
    e2e_pass "$backend: excludes node_modules, .git, *.tmp: nothing below them delivered, $(wc -l < "$E2E_OUT") other records$msg"
}

# --- narrow rescan scope -----------------------------------------------------

# waits until FILE has stopped growing for 0.3 s (at most 30 s)
wait_quiet() {
    local last=-1 now
    for _ in $(seq 100); do
        now=$(wc -l < "$1")
        [ "$now" = "$last" ] && return 0
        last=$now
        sleep 0.3
    done
}

# scope_tally OUT PREFIX N: checks that the dropped records account for
# every create below PREFIX (received + lost = N), that their ID ranges hold
# their counts and no received create; prints a summary.  In python for
# exact 64-bit IDs (jq 1.6 rounds them to doubles).
scope_tally() {
    python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
got = [e["id"] for e in recs if e["type"] == "create" and e["path"].startswith(sys.argv[2])]
drops = [e for e in recs if e["type"] == "dropped"]
lost = 0
for d in drops:
    first, last, count = d.get("id_first"), d.get("id_last"), d.get("count", 0)
    if not first or not last or first > last or count > last - first + 1:
        sys.exit("bad ID range %s..%s for count %s" % (first, last, count))
    if any(first <= i <= last for i in got):
        sys.exit("a received create lies in the dropped range %s..%s" % (first, last))
    lost += count
if len(got) + lost != int(sys.argv[3]):
    sys.exit("received %d + lost %d != %s written" % (len(got), lost, sys.argv[3]))
print("%d received + %d lost in %d dropped records" % (len(got), lost, len(drops)))' "$@"
}

check_rescan_scope() {  # BACKEND
    local backend=$1 w=$E2E_TMP/scope-$1 n=20000
    mkdir -p "$w/a/deep" "$w/b"
    # a ring of 64 (truncated past 48) behind a socket and an output buffer
    # of a few hundred KiB: a stalled reader overflows it within the burst
    echo '{ "latency_ms": 0, "ring_default_depth": 64, "coalesce_ms": 0 }' > "$E2E_TMP/scope.json"
    E2E_CONFIG=$E2E_TMP/scope.json e2e_start_daemon --backend "$backend"
    e2e_watch "$w" --json -e create
    kill -STOP "$E2E_WPID"
    # every loss is below a/deep
    ( cd "$w/a/deep" && for i in $(seq "$n"); do : > "f$i"; done )
    "$FSNOTECTL" flush "$w" > /dev/null
    kill -CONT "$E2E_WPID"
    wait_quiet "$E2E_OUT"
    touch "$w/b/END"
    wait_rec "$E2E_OUT" create "$w/b/END"
    e2e_stop_watch
    e2e_stop_daemon
    local drops wrong tally
    drops=$(jq -c 'select(.type == "dropped")' "$E2E_OUT")
    [ -n "$drops" ] || e2e_fail "$backend: a stalled subscriber with a 64-deep ring lost nothing of $n events?"
    # every dropped record names a/deep, not the subscription root
    wrong=$(jq -r --arg s "$w/a/deep" 'select(.type == "dropped" and .rescan != $s) | .rescan' "$E2E_OUT")
    [ -z "$wrong" ] || e2e_fail "$backend: rescan scope $(echo $wrong) instead of $w/a/deep (all losses were below it)"
    jq -e -n '[inputs | select(.type == "dropped")] | all((.flags | index("ring_overflow")) and
                (.flags | index("must_rescan")) and (.count > 0))' "$E2E_OUT" >/dev/null ||
        e2e_fail "$backend: a dropped record without ring_overflow, must_rescan or count: $drops"
    tally=$(scope_tally "$E2E_OUT" "$w/a/deep/f" "$n" 2>&1) ||
        e2e_fail "$backend: dropped records do not account for the losses: $tally"
    e2e_pass "$backend: stalled subscriber, 64-deep ring, $n creates below a/deep: $tally, each rescan a/deep, ring_overflow"
}

# --- mount and unmount records -------------------------------------------------

check_mounts() {  # BACKEND
    local backend=$1 w=$E2E_TMP/mnt-$1 img=$E2E_TMP/mnt-$1.img
    mkdir -p "$w/m" "$w/e"
    chmod 755 "$w"
    truncate -s 32M "$img"
    mkfs.ext4 -q -F "$img"
    e2e_start_daemon --backend "$backend"
    e2e_watch "$w" --json -e create,mount,unmount
    mount -o loop "$img" "$w/e"
    wait_rec "$E2E_OUT" mount "$w/e"
    mkdir "$w/e/sub"
    # a subscription on the loop filesystem: its unmount must end it
    watch_bg onfs "$w/e/sub"
    local onfs=$BG_PID
    touch "$w/e/sub/x"
    wait_rec "$E2E_TMP/onfs.out" create "$w/e/sub/x"
    mount -t tmpfs beyond-tmpfs "$w/m"
    wait_rec "$E2E_OUT" mount "$w/m"
    umount "$w/m"
    wait_rec "$E2E_OUT" unmount "$w/m"
    umount "$w/e" || e2e_fail "$backend: the daemon keeps a watched filesystem busy"
    wait_rec "$E2E_OUT" unmount "$w/e"
    wait_rec "$E2E_TMP/onfs.out" unmount "$w/e/sub"
    jq -e -n 'any(inputs; .type == "unmount" and (.flags | index("sub_ended")))' "$E2E_TMP/onfs.out" >/dev/null ||
        e2e_fail "$backend: the unmount record of the subscription on the unmounted filesystem is not flagged sub_ended"
    # ...and the watch on it is over: fsnotectl exits 0 by itself
    local rc=""
    for _ in $(seq 250); do
        kill -0 "$onfs" 2>/dev/null || { rc=0; wait "$onfs" || rc=$?; break; }
        sleep 0.02
    done
    [ "$rc" = 0 ] || e2e_fail "$backend: watch on the unmounted filesystem did not end with status 0 (${rc:-still running})"
    # the mount records are in order, and nothing else was invented
    local order
    order=$(jq -r --arg w "$w/" 'select(.type == "mount" or .type == "unmount") | .type + " " + (.path | ltrimstr($w))' "$E2E_OUT" | paste -sd, -)
    [ "$order" = "mount e,mount m,unmount m,unmount e" ] || e2e_fail "$backend: mount records $order"
    # mount and fs_error records are privileged: nobody gets one line, exit 1
    chmod 755 "$(dirname "$FSNOTE_SOCKET")"
    local msg
    rc=0
    msg=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$FSNOTECTL" watch -e mount,unmount --timeout 1 "$w" 2>&1) || rc=$?
    [ "$rc" = 1 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && printf '%s' "$msg" | grep -q 'root' ||
        e2e_fail "$backend: unprivileged -e mount: exit $rc, '$msg'"
    e2e_stop_watch
    e2e_stop_daemon
    e2e_pass "$backend: -e mount,unmount: $order below the tree; the subscription on the unmounted ext4 ended (sub_ended, exit 0); nobody refused: $msg"
}

for backend in $BACKENDS; do
    check_mounts "$backend"
    [ -n "${SKIPSCOPE:-}" ] || check_rescan_scope "$backend"
    [ -n "${SKIPFLUSH:-}" ] || check_flush "$backend"
    [ -n "${SKIPEXCL:-}" ] || check_excludes "$backend"
done
e2e_summary
