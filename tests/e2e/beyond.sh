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
#  - fs_error records: an ext4 error (inode cleared with debugfs) reaches a
#    `-e fs_error` subscriber; a backend that cannot deliver them refuses;
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

# Each check runs in a subshell of its own, so that one feature that does not
# work (e2e_fail exits) does not hide the verdicts on the others; the
# subshell stops what it started, and the summary counts both.
E2E_FAILED=0
e2e_pass() { echo "ok: $*"; echo "$*" >> "$E2E_TMP/passed"; }
check_cleanup() {
    [ -z "$E2E_WPID" ] || kill "$E2E_WPID" 2>/dev/null || true
    [ -z "${BG_PID:-}" ] || kill "$BG_PID" 2>/dev/null || true
    if [ -n "$E2E_DPID" ]; then
        kill -TERM "$E2E_DPID" 2>/dev/null || true
        wait "$E2E_DPID" 2>/dev/null || true
    fi
}
# BEYOND_ONLY=check_NAME runs only that check (while working on one feature)
run_check() {
    [ -z "${BEYOND_ONLY:-}" ] || [ "$1" = "$BEYOND_ONLY" ] || return 0
    ( trap check_cleanup EXIT; "$@" ) || E2E_FAILED=$((E2E_FAILED + 1))
}
e2e_summary() {
    local passed=0
    [ ! -f "$E2E_TMP/passed" ] || passed=$(wc -l < "$E2E_TMP/passed")
    echo "$passed passed, $E2E_FAILED failed"
    [ "$E2E_FAILED" = 0 ]
}

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
    msg=$("${NOBODY[@]}" "$USER_FSNOTECTL" watch -e mount,unmount --timeout 1 "$w" 2>&1) || rc=$?
    [ "$rc" = 1 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] && printf '%s' "$msg" | grep -q 'root' ||
        e2e_fail "$backend: unprivileged -e mount: exit $rc, '$msg'"
    e2e_stop_watch
    e2e_stop_daemon
    e2e_pass "$backend: -e mount,unmount: $order below the tree; the subscription on the unmounted ext4 ended (sub_ended, exit 0); nobody refused: $msg"
}

# --- filesystems that cannot be watched completely ------------------------------

# check_incomplete BACKEND KIND MERGED BACKING HINT: KIND is overlayfs or
# FUSE mounted at MERGED, BACKING a directory whose changes bypass the mount,
# HINT a word the warning must contain to say what exactly is not seen.
check_incomplete() {
    local backend=$1 kind=$2 mnt=$3 backing=$4 hint=$5 rc=0
    local tag=$backend-$kind
    if [ "$backend" = auto ]; then e2e_start_daemon; else e2e_start_daemon --backend "$backend"; fi
    "$FSNOTECTL" watch --json --timeout 2 "$mnt" > "$E2E_TMP/inc.out" 2> "$E2E_TMP/inc.err" &
    local p=$!
    for _ in $(seq 100); do
        grep -q 'Watches established.' "$E2E_TMP/inc.err" && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.02
    done
    if grep -q 'Watches established.' "$E2E_TMP/inc.err"; then
        # success must come with the local-only warning and flag, and be honest:
        # what goes through the mount is seen, as the warning promises
        grep -q "^fsnotectl: warning: $mnt: " "$E2E_TMP/inc.err" ||
            e2e_fail "$tag: subscribed without a warning: $(cat "$E2E_TMP/inc.err")"
        touch "$mnt/through-$tag" "$backing/direct-$tag"
        wait_rec "$E2E_TMP/inc.out" create "$mnt/through-$tag"
        wait "$p" || rc=$?
        [ "$rc" = 2 ] || e2e_fail "$tag: watch --timeout exited $rc"
        jq -e -n 'all(inputs; .flags | index("local_only"))' "$E2E_TMP/inc.out" >/dev/null ||
            e2e_fail "$tag: a record without the local_only flag"
        local warning
        warning=$(grep '^fsnotectl: warning: ' "$E2E_TMP/inc.err")
        has "$E2E_TMP/inc.out" - "$mnt/direct-$tag" && e2e_fail "$tag: a change made beside the mount was seen: the warning overstates the gap"
        printf '%s' "$warning" | grep -qi -- "$hint" ||
            e2e_fail "$tag: the warning does not say what is missed on $kind (no '$hint'): $warning"
        e2e_stop_daemon
        e2e_pass "$tag: subscribed with the local-only flag; changes through the mount seen, beside it not, as the warning says: $warning"
    else
        # refusal: exit 1 with one line that names the filesystem's problem
        wait "$p" || rc=$?
        [ "$rc" = 1 ] && [ "$(wc -l < "$E2E_TMP/inc.err")" = 1 ] ||
            e2e_fail "$tag: refused with status $rc and: $(cat "$E2E_TMP/inc.err")"
        grep -qi -- "$kind" "$E2E_TMP/inc.err" || e2e_fail "$tag: the error does not name $kind: $(cat "$E2E_TMP/inc.err")"
        [ ! -s "$E2E_TMP/inc.out" ] || e2e_fail "$tag: refused, yet printed records"
        e2e_stop_daemon
        e2e_pass "$tag: refused in one line: $(cat "$E2E_TMP/inc.err")"
    fi
}

mount_incomplete_filesystems() {
    local o=$E2E_TMP/ovl
    mkdir -p "$o/lower" "$o/upper" "$o/work" "$o/merged" "$E2E_TMP/fusesrc" "$E2E_TMP/fuse"
    mount -t overlay beyond-ovl -o "lowerdir=$o/lower,upperdir=$o/upper,workdir=$o/work" "$o/merged" ||
        e2e_fail "cannot mount an overlayfs"
    HAVE_FUSE=""
    if ! command -v bindfs >/dev/null; then
        echo "note: bindfs is missing (apt-get install bindfs): FUSE not checked"
    else
        bindfs "$E2E_TMP/fusesrc" "$E2E_TMP/fuse" || e2e_fail "bindfs cannot mount a FUSE filesystem"
        HAVE_FUSE=1
    fi
}

# --- time to ID ------------------------------------------------------------------

# id_bounds OUT T: "LOW HIGH": the highest ID before T and the lowest at or
# after T (ns since the epoch) among the records in OUT, exactly
id_bounds() {
    python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
t = int(sys.argv[2])
print(max([e["id"] for e in recs if e["time_ns"] < t] or [0]),
      min([e["id"] for e in recs if e["time_ns"] >= t] or [0]))' "$@"
}

# before the daemon started, it cannot know what happened: an error, even
# while its history is still empty
check_time_before_start() {  # BACKEND
    local backend=$1 rc=0 msg t0
    t0=$(date +%s.%N)
    sleep 0.1
    # a journal of its own: one kept from an earlier run would know that time
    e2e_start_daemon --backend "$backend" --state-dir "$E2E_TMP/state-start-$backend"
    msg=$("$FSNOTECTL" current-id --at "@$t0" 2>&1) || rc=$?
    [ "$rc" = 1 ] ||
        e2e_fail "$backend: current-id --at a time before the daemon started, empty history: status $rc, '$msg' (claims to know what happened before it ran)"
    e2e_stop_daemon
    e2e_pass "$backend: current-id --at a time before the daemon started: $msg"
}

check_time_to_id() {  # BACKEND
    local backend=$1 w=$E2E_TMP/time-$1 rc=0 msg
    mkdir -p "$w"
    local t0; t0=$(date +%s.%N)
    sleep 0.1
    # a journal of its own: one kept from an earlier run would know t0
    e2e_start_daemon --backend "$backend" --state-dir "$E2E_TMP/state-time-$backend"
    e2e_watch "$w" --json
    touch "$w/a"
    wait_rec "$E2E_OUT" close_write "$w/a"
    sleep 1.5
    local t1 t1ns; t1ns=$(date +%s%N); t1=${t1ns:0:10}.${t1ns:10}
    sleep 1.5
    touch "$w/b"
    wait_rec "$E2E_OUT" close_write "$w/b"
    local at rel iso
    at=$("$FSNOTECTL" current-id --at "@$t1") || e2e_fail "$backend: current-id --at @$t1 failed"
    rel=$("$FSNOTECTL" current-id --at -1500ms) || e2e_fail "$backend: current-id --at -1500ms failed"
    iso=$("$FSNOTECTL" current-id --at "$(date -d "@$t1" +%Y-%m-%dT%H:%M:%S.%N)") ||
        e2e_fail "$backend: current-id --at ISO failed"
    e2e_stop_watch
    local low high a_last b_first
    read -r low high < <(id_bounds "$E2E_OUT" "$t1ns")
    a_last=$(idq "$E2E_OUT" - "$w/a" | sort -n | tail -1)
    b_first=$(idq "$E2E_OUT" - "$w/b" | sort -n | head -1)
    # exactly the first event at or after T1 (the watcher saw every event in
    # between, save the daemon's own hidden ones: bounds, not equality)
    [ "$at" -gt "$low" ] && [ "$at" -le "$high" ] ||
        e2e_fail "$backend: --at @T1 gave $at, not in ($low, $high]"
    [ "$iso" = "$at" ] || e2e_fail "$backend: ISO time gave $iso, @EPOCH $at"
    [ "$rel" -gt "$a_last" ] && [ "$rel" -le "$b_first" ] ||
        e2e_fail "$backend: --at -1500ms gave $rel, not in ($a_last, $b_first]"
    # older than the history, with a history: one line, exit 1
    rc=0
    msg=$("$FSNOTECTL" current-id --at "@$t0" 2>&1) || rc=$?
    [ "$rc" = 1 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] ||
        e2e_fail "$backend: --at before the history: status $rc, '$msg'"
    rc=0
    "$FSNOTECTL" current-id --at yesterday-ish > /dev/null 2>&1 || rc=$?
    [ "$rc" = 1 ] || e2e_fail "$backend: --at with an invalid time: status $rc"
    e2e_stop_daemon
    e2e_pass "$backend: current-id --at: @T1 -> $at (between $low and $high), -1500ms -> $rel, ISO -> $iso, before the history -> '$msg'"
}

# --- fs_error records ------------------------------------------------------------

# An ext4 inode cleared behind the filesystem's back (debugfs clri) makes the
# next lookup report an error: fanotify's FAN_FS_ERROR.  Where the backend
# cannot deliver fs_error records, asking for them must be refused, not
# accepted and left silent.
check_fs_error() {  # BACKEND
    local backend=$1 img=$E2E_TMP/fserr-$1.img m=$E2E_TMP/fserr-$1 rc=0 msg
    command -v debugfs >/dev/null || { echo "note: debugfs is missing: fs_error not checked"; return 0; }
    mkdir -p "$m"
    truncate -s 16M "$img"
    mkfs.ext4 -q -F "$img"
    mount -o loop "$img" "$m"
    mkdir "$m/d"
    echo x > "$m/d/victim"
    umount "$m"
    debugfs -w -R "clri d/victim" "$img" > /dev/null 2>&1 || e2e_fail "debugfs clri failed"
    mount -o loop,errors=continue "$img" "$m"
    e2e_start_daemon --backend "$backend"
    if "$FSNOTECTL" status --json | jq -e '.features | index("fs_error")' >/dev/null; then
        e2e_watch "$m" --json -e fs_error
        cat "$m/d/victim" > /dev/null 2>&1 && e2e_fail "$backend: the cleared inode could still be read"
        wait_rec "$E2E_OUT" fs_error "$m/d"
        e2e_stop_watch
        e2e_stop_daemon
        umount "$m"
        e2e_pass "$backend: fs_error record for $m/d after ext4 reported a deleted inode referenced"
    else
        msg=$("$FSNOTECTL" watch --json -e fs_error --timeout 1 "$m" 2>&1) || rc=$?
        e2e_stop_daemon
        umount "$m"
        [ "$rc" = 1 ] && [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] ||
            e2e_fail "$backend: cannot deliver fs_error records, yet -e fs_error gave status $rc: $(echo $msg)"
        e2e_pass "$backend: -e fs_error refused in one line: $msg"
    fi
}

for backend in $BACKENDS; do
    run_check check_flush "$backend"
    run_check check_excludes "$backend"
    run_check check_rescan_scope "$backend"
    run_check check_mounts "$backend"
    run_check check_fs_error "$backend"
    run_check check_time_to_id "$backend"
    run_check check_time_before_start "$backend"
done
mount_incomplete_filesystems
for backend in fanotify inotify auto; do
    run_check check_incomplete "$backend" overlayfs "$E2E_TMP/ovl/merged" "$E2E_TMP/ovl/upper" layer
    [ -z "$HAVE_FUSE" ] || run_check check_incomplete "$backend" FUSE "$E2E_TMP/fuse" "$E2E_TMP/fusesrc" through
done
[ -z "$HAVE_FUSE" ] || fusermount3 -u "$E2E_TMP/fuse" 2>/dev/null || umount "$E2E_TMP/fuse"
e2e_summary
