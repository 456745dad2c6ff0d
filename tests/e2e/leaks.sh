#!/bin/bash
# End to end, real kernel, both backends: an unprivileged subscriber learns
# only what it could have learned itself, tried as a hostile local user would.
# alice (uid 61001) watches a shared 1777 directory; bob (uid 61002) works in
# his own private directories.  Every check counts the names of bob's that
# reached alice and asserts there are none, and proves that the events did
# happen (root, watching the same tree, sees them) so that it can fail.
#
#   LEAKS_ROUNDS=N    rounds of the path-reuse race (default 1000, 200 with
#                     FSNOTE_SKIP_SLOW, as in the sanitizer build)
#   LEAKS_BACKENDS    "fanotify inotify" by default
#   LEAKS_ONLY        the checks to run (function names), all by default
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

PATHRACE=$E2E_TOP/tests/e2e/leaks/pathrace
[ -x "$PATHRACE" ] || { echo "SKIP: $PATHRACE is not built"; exit 77; }
# the sanitizer build (FSNOTE_SKIP_SLOW) plays fewer rounds: the normal
# build has already played the thousand
ROUNDS=${LEAKS_ROUNDS:-$([ -n "${FSNOTE_SKIP_SLOW:-}" ] && echo 200 || echo 1000)}
ALICE=61001
BOB=61002
AS_ALICE=(setpriv --reuid=$ALICE --regid=$ALICE --clear-groups)
AS_BOB=(setpriv --reuid=$BOB --regid=$BOB --clear-groups)
trap 'kill -CONT "${E2E_DPID:-0}" 2>/dev/null || true; e2e_cleanup' EXIT

# watch_as WHO NAME DIR [options...]: `fsnotectl watch --json` as root,
# alice or bob, output in $E2E_TMP/NAME.out, returns once established.
watch_as() {
    local who=$1 name=$2 dir=$3; shift 3
    local out=$E2E_TMP/$name.out err=$E2E_TMP/$name.err
    local -a as=()
    case $who in alice) as=("${AS_ALICE[@]}") ;; bob) as=("${AS_BOB[@]}") ;; esac
    : > "$out"
    "${as[@]}" "$USER_FSNOTECTL" watch --json "$@" "$dir" > "$out" 2> "$err" &
    E2E_BG_PIDS+=("$!")
    for _ in $(seq 500); do
        grep -q 'Watches established.' "$err" 2>/dev/null && return 0
        kill -0 "$!" 2>/dev/null || e2e_fail "$who's watch of $dir exited: $(cat "$err")"
        sleep 0.02
    done
    e2e_fail "$who's watch of $dir never established"
}

# marker DIR NAME...: alice writes a file in DIR and waits until every
# named watch has its event: all that came before is delivered.
MARK=0
marker() {
    MARK=$((MARK + 1))
    local m=$1/zz-mark-$MARK n
    shift
    "${AS_ALICE[@]}" touch "$m"
    for n in "$@"; do
        for _ in $(seq 1500); do
            e2e_jq_any "$E2E_TMP/$n.out" '.path == $p' --arg p "$m" && continue 2
            sleep 0.02
        done
        e2e_fail "$n never saw $m"
    done
}

count() {  # FILE JQ-FILTER: how many records match
    jq -n "[inputs | select($2)] | length" "$1"
}

# leaked NAME PATTERN: distinct names (path or dest) in watch NAME's
# records that match
leaked() {
    jq -n --arg re "$2" '[inputs | (.path // empty), (.dest // empty) | select(test($re))] | unique | length' \
        "$E2E_TMP/$1.out"
}

rescans() {  # NAME: dropped records flagged must_rescan
    count "$E2E_TMP/$1.out" '.type == "dropped" and (.flags | index("must_rescan"))'
}

setup_tree() {
    S=$E2E_TMP/$BACKEND/shared
    mkdir -p "$S"
    chmod 0755 "$E2E_TMP/$BACKEND"
    chmod 1777 "$S"
}

# 1. path reuse, the daemon running freely: rounds in chunks of 100, so
# that no ring overflows and every name was judged (a truncated ring would
# hide a leak)
check_race() {
    local d=$S/race c
    mkdir -m 1777 "$d"
    watch_as alice a-race "$d"
    watch_as root r-race "$d"
    # every other chunk, bob's directories are made (and watched) first:
    # inotify sees nothing of a directory deleted before its watch is added
    local -a made=()
    local n_made=0
    for ((c = 0; c < ROUNDS; c += 100)); do
        mkdir -m 1777 "$d/c$c"
        made=()
        if [ $((c / 100 % 2)) -eq 1 ]; then
            n_made=$((n_made + 100))
            "${AS_BOB[@]}" sh -c "for i in \$(seq 0 99); do mkdir -m 700 \"$d/c$c/t\$i\"; done"
            marker "$d" a-race r-race
            made=(--made)
        fi
        "$PATHRACE" "$d/c$c" 100 $BOB $ALICE "${made[@]}" || e2e_fail "pathrace failed"
        marker "$d" a-race r-race
    done
    local seen leaked_n
    seen=$(leaked r-race 'secret')
    leaked_n=$(leaked a-race 'secret')
    [ "$seen" -ge "$n_made" ] || e2e_fail "root saw only $seen of $ROUNDS secret names: the race did not run ($(rescans r-race) rescan records: $(grep -m2 dropped "$E2E_TMP/r-race.out"))"
    [ "$(count "$E2E_TMP/a-race.out" '.flags | index("ring_overflow")')" -eq 0 ] ||
        e2e_fail "alice's ring overflowed: the names were not all judged"
    [ "$(leaked a-race '/t[0-9]+$')" -ge 1 ] || e2e_fail "alice saw none of her own directories"
    [ "$leaked_n" -eq 0 ] || e2e_fail "path reuse: $leaked_n of $ROUNDS secret names leaked to alice: $(grep -m3 secret "$E2E_TMP/a-race.out")"
    e2e_stop_bg
    e2e_pass "$BACKEND: path reuse, $ROUNDS rounds, daemon running: 0 of $seen names root saw leaked ($(rescans a-race) rescan records)"
}

# 1b. the same with the daemon stopped until alice has recreated everything
# (bob's directories made and watched first, so that both backends have
# his names to judge)
check_race_stopped() {
    local d=$S/race2 n=200
    mkdir -m 1777 "$d"
    watch_as alice a-race2 "$d"
    watch_as root r-race2 "$d"
    "${AS_BOB[@]}" sh -c "for i in \$(seq 0 $((n - 1))); do mkdir -m 700 \"$d/t\$i\"; done"
    marker "$d" a-race2 r-race2
    kill -STOP "$E2E_DPID"
    "$PATHRACE" "$d" $n $BOB $ALICE --made || { kill -CONT "$E2E_DPID"; e2e_fail "pathrace failed"; }
    kill -CONT "$E2E_DPID"
    marker "$d" a-race2 r-race2
    local seen l
    seen=$(leaked r-race2 'secret')
    [ "$seen" -ge $n ] || e2e_fail "root saw $seen of the $n secret names"
    l=$(leaked a-race2 'secret')
    [ "$l" -eq 0 ] || e2e_fail "path reuse with the daemon stopped: $l of $n names leaked"
    [ "$(rescans a-race2)" -ge 1 ] || e2e_fail "alice was not told to rescan what was withheld"
    e2e_stop_bg
    e2e_pass "$BACKEND: path reuse with the daemon stopped: 0 of $n names leaked, a rescan record instead"
}

# 2. history replay after delete and recreate
check_replay() {
    local d=$S/replay
    mkdir -m 1777 "$d"
    watch_as root r-replay "$d"
    local since
    since=$("$USER_FSNOTECTL" current-id)
    "${AS_BOB[@]}" sh -c "mkdir -m 700 '$d/p' && for i in 1 2 3 4 5; do echo s > \"$d/p/histsecret\$i\"; done && rm -r '$d/p'"
    "${AS_ALICE[@]}" mkdir -m 777 "$d/p"
    marker "$d" r-replay
    [ "$(leaked r-replay 'histsecret')" -ge 5 ] || e2e_fail "root did not see bob's names"
    "${AS_ALICE[@]}" "$USER_FSNOTECTL" watch --json --since "$since" --timeout 1 "$d" \
        > "$E2E_TMP/a-replay.out" 2>/dev/null || true
    local l
    l=$(leaked a-replay 'histsecret')
    [ "$l" -eq 0 ] || e2e_fail "history replay leaked $l of bob's names to alice: $(grep -m2 histsecret "$E2E_TMP/a-replay.out")"
    [ "$(rescans a-replay)" -ge 1 ] || e2e_fail "the replay gave alice neither the names nor a rescan record: $(cat "$E2E_TMP/a-replay.out")"
    [ "$(leaked a-replay '/p$')" -ge 1 ] || e2e_fail "alice's own directory is missing from the replay"
    e2e_stop_bg
    e2e_pass "$BACKEND: replay after delete and recreate: 0 names, a rescan record"
}

# 2b. the same for a directory no subscription covered: on fanotify the
# mark covers the whole filesystem, so its events are in the history too
check_replay_uncovered() {
    local d=$S/replay2
    mkdir -m 1777 "$d"
    mkdir -p "$S/elsewhere"
    watch_as root r-else "$S/elsewhere"
    local since
    since=$("$USER_FSNOTECTL" current-id)
    "${AS_BOB[@]}" sh -c "mkdir -m 700 '$d/p' && for i in 1 2 3 4 5; do echo s > \"$d/p/uncovsecret\$i\"; done && rm -r '$d/p'"
    "${AS_ALICE[@]}" mkdir -m 777 "$d/p"
    # an ID handed out after SINCE on either backend (inotify, watching only
    # elsewhere, gives bob's work none); a new subscription reads the
    # kernel's queue into the history first
    touch "$S/elsewhere/bump"
    "${AS_ALICE[@]}" "$USER_FSNOTECTL" watch --json --since "$since" --timeout 1 "$d" \
        > "$E2E_TMP/a-replay2.out" 2>/dev/null || true
    local l
    l=$(leaked a-replay2 'uncovsecret')
    [ "$l" -eq 0 ] || e2e_fail "replay of a directory no subscription covered leaked $l names"
    [ "$(rescans a-replay2)" -ge 1 ] || e2e_fail "the replay gave alice neither the names nor a rescan record"
    e2e_stop_bg
    e2e_pass "$BACKEND: replay of a directory no subscription covered: 0 names, a rescan record"
}

# 3. revocation seen with a mask that asks for no attribute records
check_revoke() {
    local d=$S/revoke
    mkdir -m 1777 "$d"
    "${AS_BOB[@]}" mkdir -m 755 "$d/r"
    watch_as alice a-revoke "$d" -e create,modify,close_write
    watch_as root r-revoke "$d" -e create
    "${AS_BOB[@]}" touch "$d/r/before"
    marker "$d" a-revoke r-revoke
    e2e_jq_any "$E2E_TMP/a-revoke.out" '.path == $p' --arg p "$d/r/before" ||
        e2e_fail "alice did not see a name in a directory open to her"
    "${AS_BOB[@]}" chmod 700 "$d/r"
    "${AS_BOB[@]}" sh -c "for i in \$(seq 50); do : > \"$d/r/after\$i\"; done"
    marker "$d" a-revoke r-revoke
    [ "$(leaked r-revoke 'after')" -ge 50 ] || e2e_fail "root did not see the names created after chmod: $(cat "$E2E_TMP/r-revoke.out")"
    local l
    l=$(leaked a-revoke 'after')
    [ "$l" -eq 0 ] || e2e_fail "after chmod 700, $l names still reached alice"
    e2e_stop_bg
    e2e_pass "$BACKEND: chmod 700 revokes at once with -e create,modify,close_write"
}

# 4. a public directory moved into a private one
check_moved() {
    local d=$S/moved
    mkdir -m 1777 "$d"
    "${AS_BOB[@]}" sh -c "mkdir -m 755 '$d/pub' && mkdir -m 700 '$d/priv'"
    watch_as alice a-moved "$d" -e modify,close_write
    watch_as root r-moved "$d" -e close_write
    "${AS_BOB[@]}" sh -c "echo 1 > '$d/pub/x'"
    marker "$d" a-moved r-moved
    [ "$(count "$E2E_TMP/a-moved.out" '.type == "close_write" and (.path | endswith("/x"))')" -eq 1 ] || e2e_fail "alice did not see the write before the move: $(cat "$E2E_TMP/a-moved.out")"
    "${AS_BOB[@]}" sh -c "mv '$d/pub' '$d/priv/pub' && for i in 1 2 3; do echo \$i >> '$d/priv/pub/x'; done"
    marker "$d" a-moved r-moved
    local l
    l=$(count "$E2E_TMP/a-moved.out" '(.type == "close_write" or .type == "modify") and (.path | endswith("/x"))')
    [ "$l" -le 2 ] || e2e_fail "alice got $l write records, writes inside the moved-away directory among them: $(cat "$E2E_TMP/a-moved.out")"
    [ "$(jq -n --arg p "$d/priv/pub/x" '[inputs | select(.path == $p)] | length' "$E2E_TMP/r-moved.out")" -ge 1 ] ||
        e2e_fail "root (-e close_write only) did not see the writes under the new path: $(cat "$E2E_TMP/r-moved.out")"
    [ "$(jq -n --arg p "$d/pub/x" '[inputs | select(.path == $p)] | length' "$E2E_TMP/r-moved.out")" -eq 1 ] ||
        e2e_fail "writes after the move were reported under the old path"
    e2e_stop_bg
    e2e_pass "$BACKEND: a directory moved into a private one: no names for alice, the new path for root"
}

# 5. a search-only (0711) directory
check_0711() {
    local d=$S/x711
    mkdir -m 1777 "$d"
    "${AS_BOB[@]}" mkdir -m 711 "$d/s"
    watch_as alice a-711 "$d"
    watch_as root r-711 "$d"
    "${AS_BOB[@]}" sh -c "for i in \$(seq 20); do echo > \"$d/s/hidden\$i\"; done"
    marker "$d" a-711 r-711
    [ "$(leaked r-711 'hidden')" -ge 20 ] || e2e_fail "root did not see the names"
    local l
    l=$(leaked a-711 'hidden')
    [ "$l" -eq 0 ] || e2e_fail "$l names from a 0711 directory reached alice"
    e2e_stop_bg
    e2e_pass "$BACKEND: 0711 directory: no names (search without read is not listing)"
}

# 6. a rename record carries its own object's attributes, never another's
check_rename_attrs() {
    local d=$S/attrs
    mkdir -m 1777 "$d"
    watch_as alice a-attrs "$d"
    "${AS_ALICE[@]}" sh -c "echo a > '$d/a'"
    marker "$d" a-attrs
    local a_ino
    a_ino=$(stat -c %i "$d/a")
    kill -STOP "$E2E_DPID"
    "${AS_ALICE[@]}" sh -c "mv '$d/a' '$d/b' && rm '$d/b'"
    "${AS_BOB[@]}" sh -c "umask 077; echo private > '$d/b'"
    local b_ino
    b_ino=$(stat -c %i "$d/b")
    kill -CONT "$E2E_DPID"
    marker "$d" a-attrs
    local bad
    bad=$(count "$E2E_TMP/a-attrs.out" \
        "(.type == \"rename\" or .type == \"create\" or .type == \"delete\") and (.path == \"$d/a\" or .dest == \"$d/b\") and (.ino == $b_ino or .uid == $BOB)")
    [ "$bad" -eq 0 ] || e2e_fail "a record of alice's rename carries bob's file's attributes: $(grep "\"$d/a\"" "$E2E_TMP/a-attrs.out")"
    e2e_jq_any "$E2E_TMP/a-attrs.out" '.type == "rename" and .dest == $b' --arg b "$d/b" ||
        e2e_fail "no rename record: $(cat "$E2E_TMP/a-attrs.out")"
    e2e_stop_bg
    e2e_pass "$BACKEND: rename attributes are the moved object's (ino $a_ino) or absent, never bob's (ino $b_ino)"
}

# 7. two roots of one user are judged apart
check_two_roots() {
    local d=$S/roots
    mkdir -m 1777 "$d"
    "${AS_BOB[@]}" sh -c "mkdir -m 711 '$d/x' && mkdir -m 777 '$d/x/y'"
    watch_as alice a-top "$d"
    watch_as alice a-low "$d/x/y"
    watch_as root r-roots "$d"
    "${AS_BOB[@]}" chmod 700 "$d/x"
    "${AS_BOB[@]}" sh -c "for i in \$(seq 10); do echo > \"$d/x/y/low\$i\"; done"
    "${AS_BOB[@]}" touch "$d/x/y/zz-mark-low"
    "${AS_ALICE[@]}" touch "$d/zz-mark-top"
    for _ in $(seq 500); do
        e2e_jq_any "$E2E_TMP/a-low.out" '.path == $p' --arg p "$d/x/y/zz-mark-low" &&
            e2e_jq_any "$E2E_TMP/a-top.out" '.path == $p' --arg p "$d/zz-mark-top" && break
        sleep 0.02
    done
    local top low
    top=$(leaked a-top 'low[0-9]')
    low=$(leaked a-low 'low[0-9]')
    [ "$low" -ge 10 ] || e2e_fail "the subscription on x/y (opened while x was 0711) saw $low of 10 names"
    [ "$top" -eq 0 ] || e2e_fail "the subscription on the top, with x now 0700, got $top names"
    e2e_stop_bg
    e2e_pass "$BACKEND: two roots of one user judged apart ($low below, 0 above)"
}

# 8. status shows an unprivileged user only its own
check_status() {
    local d=$S/st
    mkdir -m 1777 "$d"
    "${AS_BOB[@]}" mkdir -m 700 "$d/bobsecretdir"
    watch_as bob b-st "$d/bobsecretdir" -e attrib
    "${AS_ALICE[@]}" "$USER_FSNOTECTL" status --json > "$E2E_TMP/st.json"
    "${AS_ALICE[@]}" "$USER_FSNOTECTL" status > "$E2E_TMP/st.txt"
    ! grep -q bobsecretdir "$E2E_TMP/st.json" "$E2E_TMP/st.txt" || e2e_fail "alice's status names bob's watch"
    jq -e 'has("interest") or has("sources") or has("access_cache") or (.pool | has("events"))' \
        "$E2E_TMP/st.json" > /dev/null && e2e_fail "alice's status shows daemon-wide tables: $(cat "$E2E_TMP/st.json")"
    jq -e '.version and .backend and .health and .limits and .usage.uid == 61001' "$E2E_TMP/st.json" > /dev/null ||
        e2e_fail "alice's status lacks version, backend, health, limits or her usage"
    "$USER_FSNOTECTL" status --json | jq -e '.interest.attrib >= 1 and has("sources")' > /dev/null ||
        e2e_fail "root's status lost the daemon-wide tables"
    e2e_stop_bg
    e2e_pass "$BACKEND: status shows alice her own and no one else's"
}

for BACKEND in ${LEAKS_BACKENDS:-fanotify inotify}; do
    setup_tree
    e2e_start_daemon --backend "$BACKEND"
    got=$("$USER_FSNOTECTL" status --json | jq -r .backend)
    [ "$got" = "$BACKEND" ] || e2e_fail "asked for $BACKEND, got $got"
    for check in ${LEAKS_ONLY:-check_race check_race_stopped check_replay check_replay_uncovered check_revoke check_moved \
                 check_0711 check_rename_attrs check_two_roots check_status}; do
        "$check"
    done
    e2e_stop_daemon
done
e2e_summary
