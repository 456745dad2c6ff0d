#!/bin/bash
# Allocation-failure injection against the real daemon.
#
# The daemon runs with tests/faultinject/libfailmalloc.so preloaded; once it
# is listening it gets SIGUSR2, which arms the shim, and a scripted session
# follows: two subscribers (recursive and children-only) and a one-shot
# client doing status, current-id, flush and inject, around ~50 file
# operations, then everyone closes.  A dry run counts the A allocations the
# session makes; then the session is repeated with allocation N failing, for
# every N when A is small, else the first 20 and an even spread of the rest.
#
# What each run must show, and why:
#  - the daemon never dies of a signal and does not exit on its own: an
#    allocation failure while serving is a per-client (or per-event) error,
#    and a system daemon that every file watcher on the box depends on must
#    not take them all down for one failed malloc;
#  - it still serves a fresh client afterwards (subscribe, receive an event);
#  - at most one of the session's clients sees an error, and a subscriber
#    that saw no error got every event of the script or a "dropped" record
#    saying what it lost (never a silent gap);
#  - SIGTERM still drains and exits 0;
#  - for a handful of N, under valgrind, no definite leak and no memory
#    error on the error path.
# Start-up is not armed: failing there may legitimately end the daemon.
#
# Environment: FAILMALLOC_RUNS (how many N besides the first 20, default 80),
# FAILMALLOC_VALGRIND_RUNS (default 4), FAILMALLOC_ONLY="N..." (just those).
# Skips under FSNOTE_SKIP_SLOW=1 and when the daemon is built with ASan
# (which replaces malloc itself).
set -euo pipefail
. "$(dirname "$0")/../e2e/common.sh"
[ -z "${FSNOTE_SKIP_SLOW:-}" ] || { echo "SKIP: FSNOTE_SKIP_SLOW is set"; exit 77; }
e2e_require_root
SHIM=$E2E_TOP/tests/faultinject/.libs/libfailmalloc.so
[ -f "$SHIM" ] || { echo "SKIP: $SHIM is not built (make check builds it)"; exit 77; }
if ldd "$FSNOTED" 2>/dev/null | grep -q 'libasan\|libtsan\|libmsan' ||
    nm "$FSNOTED" 2>/dev/null | grep -q '__asan_init\|__msan_init\|__tsan_init'; then
    echo "SKIP: fsnoted is built with a sanitizer, which owns malloc"; exit 77
fi
# libtool may leave a wrapper script in daemon/fsnoted: preload into the real binary
[ -x "$E2E_TOP/daemon/.libs/fsnoted" ] && FSNOTED=$E2E_TOP/daemon/.libs/fsnoted
e2e_enter_namespace "$@"

RUNS=${FAILMALLOC_RUNS:-80}
VG_RUNS=${FAILMALLOC_VALGRIND_RUNS:-4}
W=$E2E_TMP/w
CFG=$E2E_TMP/fsnoted.json
echo '{ "latency_ms": 0 }' > "$CFG"
FAILURES=0
DPID=""

# Waits up to $1 tenths of a second for the command in "$@" to succeed.
poll() {
    local tenths=$1; shift
    for _ in $(seq $((tenths * 5))); do
        "$@" 2>/dev/null && return 0
        sleep 0.02
    done
    return 1
}

established() { grep -q 'Watches established.' "$1" 2>/dev/null || ! kill -0 "$2" 2>/dev/null; }
saw_or_gone() { grep -q "$1" "$2" 2>/dev/null || ! kill -0 "$3" 2>/dev/null; }

# start_daemon N [valgrind...]: the daemon under the shim, armed once listening.
start_daemon() {
    local n=$1; shift
    rm -f "$FSNOTE_SOCKET" "$E2E_TMP/report" "$E2E_TMP/daemon.log"
    mkdir -p "$(dirname "$FSNOTE_SOCKET")"
    env FAILMALLOC_NTH="$n" FAILMALLOC_REPORT="$E2E_TMP/report" LD_PRELOAD="$SHIM" \
        "$@" "$FSNOTED" --foreground --socket "$FSNOTE_SOCKET" --config "$CFG" --log-level info \
        2>>"$E2E_TMP/daemon.log" &
    DPID=$!
    poll 300 grep -q 'started (backend' "$E2E_TMP/daemon.log" || {
        kill -KILL $DPID 2>/dev/null || true
        e2e_fail "N=$n: fsnoted did not start"
    }
    kill -USR2 $DPID
}

# The scripted session; leaves per-client exit codes in $E2E_TMP/rc.*.
session() {
    rm -rf "$W"; mkdir -p "$W/sub"
    rm -f "$E2E_TMP"/rc.* "$E2E_TMP"/a.* "$E2E_TMP"/b.*
    "$FSNOTECTL" watch --json "$W" > "$E2E_TMP/a.out" 2> "$E2E_TMP/a.err" & local a=$!
    "$FSNOTECTL" watch --json --children "$W/sub" > "$E2E_TMP/b.out" 2> "$E2E_TMP/b.err" & local b=$!
    poll 50 established "$E2E_TMP/a.err" $a || true
    poll 50 established "$E2E_TMP/b.err" $b || true
    for i in $(seq 12); do
        echo "$i" > "$W/f$i"
        mv "$W/f$i" "$W/sub/g$i"
        if [ $((i % 3)) = 0 ]; then rm "$W/sub/g$i"; fi
        if [ $((i % 4)) = 0 ]; then mkdir "$W/d$i"; echo x > "$W/d$i/in"; fi
    done
    # one-shot clients, one connection each; the injected event is expected
    # only if the inject itself succeeded; a client left without any answer
    # (killed by timeout, status 124) is a hang, not an error it was told
    local c=0 r
    : > "$E2E_TMP/c.err"; : > "$E2E_TMP/c.hung"
    INJECTED=$W/injected
    for cmd in "status --json" "current-id" "flush $W" "inject create $W/injected"; do
        r=0
        # shellcheck disable=SC2086
        timeout 10 "$FSNOTECTL" $cmd > /dev/null 2>>"$E2E_TMP/c.err" || r=$?
        [ $r = 0 ] && continue
        c=$((c + 1))
        [ $r = 124 ] && echo "fsnotectl ${cmd%% *}" >> "$E2E_TMP/c.hung"
        [ "${cmd%% *}" = inject ] && INJECTED=""
    done
    echo $c > "$E2E_TMP/rc.c"
    : > "$W/sub/END"
    poll 50 saw_or_gone '/sub/END"' "$E2E_TMP/a.out" $a || true
    poll 50 saw_or_gone '/sub/END"' "$E2E_TMP/b.out" $b || true
    # a watcher that already exited reports its status; the others are closed
    local p r
    for p in a b; do
        local pid=${!p}
        r=0
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" || true
            r=-1
        else
            wait "$pid" || r=$?
        fi
        echo $r > "$E2E_TMP/rc.$p"
    done
}

# Turns the shim's "fsnoted(+0xOFF)" frames into function and file:line.
symbolize() {
    local line off
    while IFS= read -r line; do
        off=$(sed -n 's/^[^(]*fsnoted(+0x\([0-9a-f]*\)).*/\1/p' <<< "$line")
        if [ -n "$off" ] && command -v addr2line >/dev/null; then
            echo "  $(addr2line -f -i -p -e "$FSNOTED" "$(printf '%x' $((0x$off - 1)))" | tr '\n' ' ')"
        else
            echo "  $line"
        fi
    done
}

# A watcher that saw no error: every event of the script, or a dropped record.
watcher_complete() {
    local out=$1 want=$2
    # (any(inputs): jq 1.6 takes -e's status from the last line only)
    jq -n -e 'any(inputs; .type == "dropped")' "$out" >/dev/null 2>&1 && return 0
    for p in $want; do
        grep -q "\"$p\"" "$out" || { echo "missing $p"; return 1; }
    done
}

# One run with allocation N failing (0: none); "vg" as $2 runs it under valgrind.
run_one() {
    local n=$1 vg=${2:-} why=""
    FRESH_ERRS=0
    if [ -n "$vg" ]; then
        start_daemon "$n" valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite --error-exitcode=99 --log-file="$E2E_TMP/vg.%p"
    else
        start_daemon "$n"
    fi
    session
    if ! kill -0 $DPID 2>/dev/null; then
        local rc=0; wait $DPID || rc=$?; DPID=""
        why="the daemon died during the session (status $rc$([ $rc -gt 128 ] && echo ", signal $((rc - 128))"))"
    else
        # a fresh client is still served: the shim is still armed, so the
        # failing allocation may be this client's; then a second one must be
        local try rf=0
        FRESH_ERRS=0
        for try in 1 2; do
            "$FSNOTECTL" watch --json --count 1 --timeout 5 "$W" > "$E2E_TMP/f.out" 2> "$E2E_TMP/f.err" & local f=$!
            poll 50 established "$E2E_TMP/f.err" $f || true
            : > "$W/fresh$try"
            rf=0; wait $f || rf=$?
            grep -q "/fresh$try\"" "$E2E_TMP/f.out" && break
            FRESH_ERRS=1
            [ $try = 1 ] || why="a fresh client was not served (status $rf: $(head -c 200 "$E2E_TMP/f.err"))"
        done
        kill -TERM $DPID 2>/dev/null || true
        local rc=0; wait $DPID || rc=$?; DPID=""
        if [ $rc = 99 ]; then
            why="${why:+$why; }valgrind found errors: $(cat "$E2E_TMP"/vg.* | head -40)"
        elif [ $rc != 0 ]; then
            why="${why:+$why; }SIGTERM: exit status $rc"
        fi
    fi
    rm -f "$E2E_TMP"/vg.*
    # at most one client sees an error; the others are complete
    local errs=${FRESH_ERRS:-0} ra rb rc_
    ra=$(cat "$E2E_TMP/rc.a"); rb=$(cat "$E2E_TMP/rc.b"); rc_=$(cat "$E2E_TMP/rc.c")
    local want_a="$W/f1 $W/sub/g2 $W/sub/g3 $W/d4/in $INJECTED $W/sub/END"
    local want_b="$W/sub/g1 $W/sub/g3 $W/sub/g12 $W/sub/END"
    [ -s "$E2E_TMP/c.hung" ] && why="${why:+$why; }no answer within 10 s for: $(tr '\n' ' ' < "$E2E_TMP/c.hung")"
    for w in a b; do
        if [ "$(cat "$E2E_TMP/rc.$w")" = -1 ] && ! grep -q 'Watches established.' "$E2E_TMP/$w.err"; then
            why="${why:+$why; }watcher $w got no answer to its subscription"
        fi
    done
    if [ "$ra" != -1 ] || ! grep -q 'Watches established.' "$E2E_TMP/a.err"; then errs=$((errs + 1))
    else m=$(watcher_complete "$E2E_TMP/a.out" "$want_a") || why="${why:+$why; }recursive watcher: silent loss ($m)"; fi
    if [ "$rb" != -1 ] || ! grep -q 'Watches established.' "$E2E_TMP/b.err"; then errs=$((errs + 1))
    else m=$(watcher_complete "$E2E_TMP/b.out" "$want_b") || why="${why:+$why; }children watcher: silent loss ($m)"; fi
    errs=$((errs + rc_))
    [ $errs -le 1 ] || why="${why:+$why; }$errs clients saw errors (a:$ra b:$rb c:$rc_; $(cat "$E2E_TMP"/a.err "$E2E_TMP"/b.err "$E2E_TMP/c.err" | grep -v established | head -3 | tr '\n' ' '))"
    if [ -n "$why" ]; then
        FAILURES=$((FAILURES + 1))
        {
            echo "FAIL: N=$n${vg:+ (valgrind)}: $why"
            echo "--- failed allocation:"; grep -v '^armed=' "$E2E_TMP/report" 2>/dev/null | head -16 | symbolize
            echo "--- daemon log:"; tail -8 "$E2E_TMP/daemon.log"
        } >&2
        [ -z "${FAILMALLOC_KEEP:-}" ] || cp "$E2E_TMP/report" "$E2E_TMP/daemon.log" "$FAILMALLOC_KEEP/" 2>/dev/null || true
        return 1
    fi
    return 0
}

# Dry run: how many allocations does the armed session make?
run_one 0 || e2e_fail "the session fails without any injected failure"
A=$(sed -n 's/^armed=\([0-9]*\).*/\1/p' "$E2E_TMP/report")
[ -n "$A" ] && [ "$A" -gt 0 ] || e2e_fail "the shim counted no allocation (report: $(cat "$E2E_TMP/report" 2>/dev/null))"
e2e_pass "dry run: the session makes $A allocations once armed"

if [ -n "${FAILMALLOC_ONLY:-}" ]; then
    NS=$FAILMALLOC_ONLY
elif [ "$A" -le $((RUNS + 20)) ]; then
    NS=$(seq "$A")
else
    NS=$( { seq 20; seq "$RUNS" | awk -v a="$A" -v r="$RUNS" '{ print 20 + int(($0 - 0.5) * (a - 20) / r) + 1 }'; } | sort -nu)
fi
total=0 hit=0
for n in $NS; do
    total=$((total + 1))
    run_one "$n" || continue
    grep -q 'failed=1' "$E2E_TMP/report" && hit=$((hit + 1))
done
[ $FAILURES = 0 ] && e2e_pass "$total runs with one allocation failing ($hit reached it): daemon up, a fresh client served, at most one client affected, clean SIGTERM"

# A few error paths under valgrind: no definite leak, no invalid access.
if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: leak check skipped"
elif [ "$VG_RUNS" -gt 0 ]; then
    vg_failed=$FAILURES
    VNS=$(seq "$VG_RUNS" | awk -v a="$A" -v r="$VG_RUNS" '{ print int(($0 - 0.5) * a / r) + 1 }' | sort -nu)
    for n in $VNS; do run_one "$n" vg || true; done
    [ $FAILURES = "$vg_failed" ] && e2e_pass "valgrind, N in $(echo $VNS): no definite leak, no memory error"
fi

[ $FAILURES = 0 ] || { echo "$E2E_PASSED passed, $FAILURES failed"; exit 1; }
e2e_summary
