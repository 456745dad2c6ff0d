#!/bin/bash
# End to end, real kernel: what an unprivileged subscriber may learn.
# FAM's CVE-2002-0875 was a root daemon telling users the names of files
# they could not see; here `nobody` watches a tree holding a 0700 directory
# and must never see one name from inside it - not as an event, not as
# either side of a move - while root, watching the same tree, sees all; once
# the directory is made 0755, nobody sees inside it.  Also: nobody cannot
# subscribe to a directory it cannot open; the acting pid is shown to root
# and to the actor's own uid only; nobody cannot watch the whole system;
# the per-uid connection limit gives a clear error.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"


T=$E2E_TMP/tree

# watch_as WHO NAME DIR [options...]: starts `fsnotectl watch --json` as
# root or nobody, output in $E2E_TMP/NAME.out, waits for the confirmation.
watch_as() {
    local who=$1 name=$2 dir=$3; shift 3
    local out=$E2E_TMP/$name.out err=$E2E_TMP/$name.err
    : > "$out"
    if [ "$who" = nobody ]; then
        "${NOBODY[@]}" "$USER_FSNOTECTL" watch --json "$@" "$dir" > "$out" 2> "$err" &
    else
        "$FSNOTECTL" watch --json "$@" "$dir" > "$out" 2> "$err" &
    fi
    local p=$!
    E2E_BG_PIDS+=("$p")
    for _ in $(seq 250); do
        grep -q 'Watches established.' "$err" 2>/dev/null && return 0
        kill -0 "$p" 2>/dev/null || e2e_fail "$who's watch of $dir exited: $(cat "$err")"
        sleep 0.02
    done
    e2e_fail "$who's watch of $dir never established"
}

wait_path() {  # FILE PATH
    for _ in $(seq 250); do
        jqe --arg p "$2" 'select(.path == $p)' "$1" > /dev/null 2>&1 && return 0
        sleep 0.02
    done
    e2e_fail "no event for $2 in $1 within 5 s: $(cat "$1")"
}

has() {  # FILE JQ-ARGS... FILTER: some record matches
    local f=$1; shift
    jqe "$@" "$f" > /dev/null 2>&1
}

mkdir -p "$T/hidden" "$T/pub" "$E2E_TMP/nb"
chmod 0700 "$T/hidden"
chown nobody:nogroup "$E2E_TMP/nb"
echo '{"latency_ms":0,"max_connections_per_uid":4}' > "$E2E_TMP/fsnoted.json"
e2e_start_daemon ${CLI_BACKEND:+--backend "$CLI_BACKEND"}
BACKEND=$("$FSNOTECTL" status --json | jq -r .backend)

check_hidden_names() {
    touch "$T/hidden/src-secret" "$T/pub/in-visible"
    watch_as nobody nb "$T"
    watch_as root root "$T"
    touch "$T/hidden/secret-file"
    mkdir "$T/hidden/secret-dir"
    touch "$T/hidden/secret-dir/deeper-secret"
    echo data > "$T/hidden/secret-file"
    chmod 600 "$T/hidden/secret-file"
    mv "$T/hidden/secret-file" "$T/hidden/renamed-secret"
    mv "$T/hidden/src-secret" "$T/pub/out-visible"
    mv "$T/pub/in-visible" "$T/hidden/in-secret"
    rm "$T/hidden/renamed-secret"
    touch "$T/pub/END"
    wait_path "$E2E_TMP/nb.out" "$T/pub/END"
    wait_path "$E2E_TMP/root.out" "$T/pub/END"
    local nb=$E2E_TMP/nb.out root=$E2E_TMP/root.out
    # not one name from inside, in any field, in any encoding
    if grep -E 'secret|hidden/' "$nb" ||
        jq -r '[.path, .dest, .rescan, .path_base64, .dest_base64] | map(select(. != null)) | .[]' "$nb" |
            grep -E "^$T/hidden/"; then
        e2e_fail "nobody saw a name inside the 0700 directory"
    fi
    # the visible halves of the moves, flagged renamed
    has "$nb" --arg p "$T/pub/out-visible" 'select(.path == $p) | .type == "create" and any(.flags[]; . == "renamed") and .dest == null' ||
        e2e_fail "nobody: a move out of the hidden directory is not a create flagged renamed: $(cat "$nb")"
    has "$nb" --arg p "$T/pub/in-visible" 'select(.path == $p) | .type == "delete" and any(.flags[]; . == "renamed") and .dest == null' ||
        e2e_fail "nobody: a move into the hidden directory is not a delete flagged renamed: $(cat "$nb")"
    # root saw everything, moves as single rename records
    has "$root" --arg p "$T/hidden/secret-dir/deeper-secret" 'select(.path == $p and .type == "create")' ||
        e2e_fail "root did not see inside the hidden directory"
    has "$root" --arg p "$T/hidden/src-secret" --arg d "$T/pub/out-visible" 'select(.type == "rename") | .path == $p and .dest == $d' ||
        e2e_fail "root: the move out is not one rename: $(cat "$root")"
    has "$root" --arg p "$T/pub/in-visible" --arg d "$T/hidden/in-secret" 'select(.type == "rename") | .path == $p and .dest == $d' ||
        e2e_fail "root: the move in is not one rename"
    e2e_pass "nobody sees no name inside a 0700 directory ($(wc -l < "$nb") records vs root's $(wc -l < "$root")); moves show as create/delete flagged renamed"

    # opened up: now nobody sees inside
    chmod 0755 "$T/hidden"
    touch "$T/hidden/now-visible"
    mv "$T/pub/out-visible" "$T/hidden/moved-back"
    touch "$T/pub/END2"
    wait_path "$E2E_TMP/nb.out" "$T/pub/END2"
    has "$nb" --arg p "$T/hidden/now-visible" 'select(.path == $p and .type == "create")' ||
        e2e_fail "nobody does not see inside the directory once it is 0755: $(cat "$nb")"
    has "$nb" --arg p "$T/pub/out-visible" --arg d "$T/hidden/moved-back" 'select(.type == "rename") | .path == $p and .dest == $d' ||
        e2e_fail "nobody: a move within what it now sees is not one rename"
    # and closed again: hidden again
    chmod 0700 "$T/hidden"
    touch "$T/hidden/secret-again"
    touch "$T/pub/END3"
    wait_path "$E2E_TMP/nb.out" "$T/pub/END3"
    ! grep -q 'secret-again' "$nb" || e2e_fail "nobody saw a name after the directory went back to 0700"
    e2e_stop_bg
    e2e_pass "after chmod 0755 nobody sees inside (creates and renames); after chmod 0700 no longer"
}

check_cannot_open() {
    local out err rc=0
    out=$("${NOBODY[@]}" "$USER_FSNOTECTL" watch "$T/hidden" 2> "$E2E_TMP/err") || rc=$?
    [ "$rc" -eq 1 ] || e2e_fail "nobody watching a 0700 directory: status $rc"
    [ -z "$out" ] || e2e_fail "nobody watching a 0700 directory: output $out"
    err=$(cat "$E2E_TMP/err")
    [ "$(wc -l <<< "$err")" -eq 1 ] && [[ $err == "fsnotectl: cannot watch $T/hidden: permission denied" ]] ||
        e2e_fail "unclear error: $err"
    rc=0
    "${NOBODY[@]}" "$USER_FSNOTECTL" watch "$T/hidden/inner" 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q "permission denied" "$E2E_TMP/err" || e2e_fail "below a 0700 directory: $(cat "$E2E_TMP/err")"
    e2e_pass "nobody cannot subscribe to a directory it cannot open: '$err'"
}

check_pids() {
    mkdir -p "$T/pub/nb"
    chown nobody:nogroup "$T/pub/nb"
    watch_as nobody nbp "$T/pub"
    watch_as root rootp "$T/pub"
    # the actor creates the file itself and outlives the daemon's read of
    # the event: the daemon learns its uid from /proc, and hides the pid of
    # a process that is already gone
    sh -c 'echo $$ > "$1"; : > "$2"; sleep 1' sh "$E2E_TMP/root.pid" "$T/pub/by-root" &
    local actor1=$!
    "${NOBODY[@]}" sh -c 'echo $$ > "$1"; : > "$2"; sleep 1' sh "$E2E_TMP/nb/nb.pid" "$T/pub/nb/by-nobody" &
    local actor2=$!
    wait $actor1 $actor2
    touch "$T/pub/END4"
    wait_path "$E2E_TMP/nbp.out" "$T/pub/END4"
    wait_path "$E2E_TMP/rootp.out" "$T/pub/END4"
    local rpid npid
    rpid=$(cat "$E2E_TMP/root.pid"); npid=$(cat "$E2E_TMP/nb/nb.pid")
    has "$E2E_TMP/nbp.out" --arg p "$T/pub/by-root" 'select(.path == $p and .type == "create") | .pid == 0' ||
        e2e_fail "nobody was shown root's pid: $(grep by-root "$E2E_TMP/nbp.out")"
    if [ "$BACKEND" != fanotify ]; then
        # inotify does not know who acted: every pid is 0, which hides it from all
        has "$E2E_TMP/rootp.out" 'select(.pid != 0)' && e2e_fail "$BACKEND reported a pid it cannot know"
        e2e_stop_bg
        e2e_pass "the acting pid: $BACKEND knows none, 0 for everyone (the fanotify run checks the rule)"
        return 0
    fi
    has "$E2E_TMP/nbp.out" --arg p "$T/pub/nb/by-nobody" --argjson pid "$npid" 'select(.path == $p and .type == "create") | .pid == $pid' ||
        e2e_fail "nobody was not shown its own pid $npid: $(grep by-nobody "$E2E_TMP/nbp.out")"
    has "$E2E_TMP/rootp.out" --arg p "$T/pub/by-root" --argjson pid "$rpid" 'select(.path == $p and .type == "create") | .pid == $pid' ||
        e2e_fail "root was not shown its own pid"
    has "$E2E_TMP/rootp.out" --arg p "$T/pub/nb/by-nobody" --argjson pid "$npid" 'select(.path == $p and .type == "create") | .pid == $pid' ||
        e2e_fail "root was not shown nobody's pid"
    e2e_stop_bg
    e2e_pass "the acting pid: shown to root and to the actor's own uid, 0 to others"
}

check_system() {
    local rc=0
    "${NOBODY[@]}" "$USER_FSNOTECTL" watch --system > /dev/null 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && [ "$(wc -l < "$E2E_TMP/err")" -eq 1 ] &&
        grep -q '^fsnotectl: cannot watch the whole system: ' "$E2E_TMP/err" ||
        e2e_fail "whole system as nobody: status $rc, $(cat "$E2E_TMP/err")"
    local msg; msg=$(cat "$E2E_TMP/err")
    if [ "$BACKEND" != fanotify ]; then
        # with inotify a whole-system watch walks every directory of every
        # filesystem: not something for a test
        e2e_pass "whole-system subscription refused for nobody ('$msg')"
        return 0
    fi
    # root may
    "$FSNOTECTL" watch --system --json --count 1 --timeout 5 -e create > "$E2E_TMP/sys.out" 2> "$E2E_TMP/sys.err" & local p=$!
    E2E_BG_PIDS+=("$p")
    for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/sys.err" && break; sleep 0.02; done
    grep -q 'Watches established.' "$E2E_TMP/sys.err" || e2e_fail "root --system: $(cat "$E2E_TMP/sys.err")"
    touch "$T/pub/system-wide"
    rc=0; wait "$p" || rc=$?
    E2E_BG_PIDS=()
    [ "$rc" -eq 0 ] || e2e_fail "root --system saw nothing: status $rc, $(cat "$E2E_TMP/sys.err")"
    e2e_pass "whole-system subscription refused for nobody ('$msg'), allowed for root"
}

check_connection_limit() {
    local i
    for i in 1 2 3 4; do
        watch_as nobody "lim$i" "$T/pub"
    done
    local rc=0
    "${NOBODY[@]}" "$USER_FSNOTECTL" current-id > "$E2E_TMP/out" 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && [ ! -s "$E2E_TMP/out" ] && [ "$(wc -l < "$E2E_TMP/err")" -eq 1 ] &&
        grep -q '^fsnotectl: .*too many connections.*max_connections_per_uid' "$E2E_TMP/err" ||
        e2e_fail "fifth connection of nobody: status $rc, $(cat "$E2E_TMP/err")"
    local msg; msg=$(cat "$E2E_TMP/err")
    # other uids are not affected
    "$FSNOTECTL" current-id > /dev/null || e2e_fail "root refused while nobody is at its limit"
    e2e_stop_bg
    # and the slots come back
    sleep 0.2
    "${NOBODY[@]}" "$USER_FSNOTECTL" current-id > /dev/null || e2e_fail "nobody still refused after closing its connections"
    e2e_pass "per-uid connection limit: '$msg'"
}

# A per-user daemon (no CAP_SYS_ADMIN: inotify): its owner gets events;
# another user gets a clear refusal, since such a daemon cannot take on
# another user's credentials to judge what that user may see.
check_per_user_daemon() {
    local u=$E2E_TMP/peruser
    mkdir -p "$u/w" "$u/run"
    chmod 755 "$E2E_TMP"
    chown -R nobody:nogroup "$u"
    local sock=$u/run/s
    echo '{ "latency_ms": 0 }' > "$u/fsnoted.json"
    "${NOBODY[@]}" "$USER_FSNOTED" --foreground --socket "$sock" --config "$u/fsnoted.json" \
        --log-level info 2> "$u/daemon.log" &
    local dp=$!
    for _ in $(seq 250); do [ -S "$sock" ] && break; sleep 0.02; done
    [ -S "$sock" ] || e2e_fail "per-user daemon did not start: $(cat "$u/daemon.log")"
    grep -q "backend inotify" "$u/daemon.log" || e2e_fail "per-user daemon is not on inotify: $(cat "$u/daemon.log")"
    FSNOTE_SOCKET=$sock "${NOBODY[@]}" "$USER_FSNOTECTL" watch --json --count 2 --timeout 5 "$u/w" \
        > "$u/out" 2> "$u/err" &
    local wp=$!
    for _ in $(seq 250); do grep -q 'Watches established.' "$u/err" && break; sleep 0.02; done
    "${NOBODY[@]}" mkdir "$u/w/d"
    "${NOBODY[@]}" touch "$u/w/d/f"
    wait $wp || e2e_fail "per-user daemon: its owner's watch failed: $(cat "$u/err")"
    jqe --arg p "$u/w/d/f" '.type == "create" and .path == $p' "$u/out" > /dev/null ||
        e2e_fail "per-user daemon: no event below a subdirectory for its owner: $(cat "$u/out")"
    local msg rc=0
    msg=$(FSNOTE_SOCKET=$sock setpriv --reuid=daemon --regid=daemon --clear-groups \
        "$USER_FSNOTECTL" watch --timeout 1 "$u/w" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] && echo "$msg" | grep -q 'cannot check what uid' ||
        e2e_fail "per-user daemon: another user was not refused clearly (status $rc): $msg"
    kill $dp; wait $dp || e2e_fail "per-user daemon did not exit cleanly"
    e2e_pass "per-user daemon on inotify: events for its owner; another user refused: '$msg'"
}

check_hidden_names
check_cannot_open
check_pids
check_system
check_connection_limit
check_per_user_daemon
e2e_summary
