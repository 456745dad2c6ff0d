#!/bin/bash
# End to end: `fsnotectl run` against the real daemon and kernel.
#   - debounce: a burst of writes gives exactly one more run, whose
#     FSNOTE_CHANGED names every written file once;
#   - no overlap: changes during a slow run give exactly one more run after
#     it, never two at once (a lock directory the command takes);
#   - --restart: a change ends the running command's whole process group
#     and starts it again; a command that ignores SIGTERM is killed after
#     the grace, not before;
#   - SIGINT: the exit status is the last run's, or 128+15 for a run it
#     had to end; a command that cannot be run is 127;
#   - what is ignored: .git by default, --exclude, the rules of .gitignore
#     and .fsnoteignore (globs, directories only, negation), and nothing of
#     that with --no-ignore;
#   - the same loop as nobody.
# Every wait has a deadline; "exactly one more run" is proven by a later
# marker change whose run names only the marker.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

RUN_PID=""
stop_run() {
    [ -n "$RUN_PID" ] || return 0
    kill -TERM "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
    RUN_PID=""
}
trap 'stop_run; e2e_cleanup' EXIT

# A command that records each run: R/n (the count), R/changed.N (its
# FSNOTE_CHANGED), R/log (start N / end N), and fails loudly (R/overlap)
# if another run holds the lock.
RECORDER=$E2E_TMP/recorder.sh
cat > "$RECORDER" <<'EOF'
#!/bin/sh
R=$1; shift
mkdir "$R/lock" 2>/dev/null || echo overlap >> "$R/overlap"
n=$(( $(cat "$R/n" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$R/n"
printf '%s' "$FSNOTE_CHANGED" > "$R/changed.$n"
echo "start $n" >> "$R/log"
[ -z "${1:-}" ] || sleep "$1"
echo "end $n" >> "$R/log"
rmdir "$R/lock"
EOF
chmod 755 "$RECORDER"

runs() { cat "$1/n" 2>/dev/null || echo 0; }

wait_runs() {  # R N: at least N runs have ended
    for _ in $(seq 500); do
        [ "$(runs "$1")" -ge "$2" ] && grep -qx "end $2" "$1/log" 2>/dev/null && return 0
        sleep 0.02
    done
    e2e_fail "run $2 did not end within 10 s ($(runs "$1") runs): $(cat "$1/log" 2>/dev/null) $(cat "$E2E_TMP/run.err")"
}

# wait_idle: the running command has ended and been reaped (fsnotectl
# has no child left), so that its status is the last one
wait_idle() {
    for _ in $(seq 250); do
        [ -n "$(cat /proc/"$RUN_PID"/task/*/children 2>/dev/null)" ] || return 0
        sleep 0.02
    done
    e2e_fail "the command did not end within 5 s"
}

wait_file() {  # FILE
    for _ in $(seq 500); do [ -s "$1" ] && return 0; sleep 0.02; done
    e2e_fail "$1 did not appear within 10 s"
}

# start_run [runner...] -- fsnotectl run arguments
start_run() {
    local pre=()
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    : > "$E2E_TMP/run.err"
    "${pre[@]}" "$FSNOTECTL" run "$@" 2> "$E2E_TMP/run.err" & RUN_PID=$!
    for _ in $(seq 250); do
        grep -q 'Watches established.' "$E2E_TMP/run.err" && return 0
        kill -0 "$RUN_PID" 2>/dev/null || e2e_fail "fsnotectl run exited: $(cat "$E2E_TMP/run.err")"
        sleep 0.02
    done
    e2e_fail "fsnotectl run never said 'Watches established.'"
}

fresh() {  # DIR: an empty watched directory and its record directory DIR.r
    rm -rf "$1" "$1.r"
    mkdir -p "$1" "$1.r"
}

# marker_run W R N: touch a marker; run N names exactly it
marker_run() {
    touch "$1/marker-$3"
    wait_runs "$2" "$3"
    [ "$(cat "$2/changed.$3")" = "$1/marker-$3" ] ||
        e2e_fail "run $3 should name only the marker: '$(cat "$2/changed.$3")' ($(cat "$2/log"))"
}

check_debounce() {
    local w=$E2E_TMP/deb r=$E2E_TMP/deb.r
    fresh "$w"
    start_run -- --debounce 800 "$w" -- "$RECORDER" "$r"
    wait_runs "$r" 1
    [ -z "$(cat "$r/changed.1")" ] || e2e_fail "the first run has changes: $(cat "$r/changed.1")"
    local i
    for i in $(seq 50); do echo "$i" > "$w/f$i"; done
    wait_runs "$r" 2
    marker_run "$w" "$r" 3
    stop_run
    [ "$(sort -u "$r/changed.2" | wc -l)" -eq 50 ] && [ "$(wc -l < "$r/changed.2")" -eq 49 ] ||
        e2e_fail "run 2 should name the 50 files once each: $(cat "$r/changed.2")"
    for i in 1 25 50; do grep -qx "$w/f$i" "$r/changed.2" || e2e_fail "run 2 does not name f$i"; done
    [ ! -e "$r/overlap" ] || e2e_fail "two runs at once"
    e2e_pass "debounce: 50 writes gave exactly one more run, FSNOTE_CHANGED names each file once"
}

check_no_overlap() {
    local w=$E2E_TMP/ovl r=$E2E_TMP/ovl.r
    fresh "$w"
    start_run -- --debounce 100 "$w" -- "$RECORDER" "$r" 2
    for _ in $(seq 250); do grep -qx "start 1" "$r/log" 2>/dev/null && break; sleep 0.02; done
    local i
    for i in 1 2 3 4 5; do touch "$w/during$i"; sleep 0.15; done
    grep -qx "end 1" "$r/log" && e2e_fail "the changes were meant to come during run 1, which already ended (a slow machine?)"
    wait_runs "$r" 2
    marker_run "$w" "$r" 3
    stop_run
    [ ! -e "$r/overlap" ] || e2e_fail "two runs at once: $(cat "$r/log")"
    [ "$(cat "$r/log" | tr '\n' ' ')" = "start 1 end 1 start 2 end 2 start 3 end 3 " ] ||
        e2e_fail "runs interleave or repeat: $(cat "$r/log")"
    [ "$(wc -w < "$r/changed.2")" -eq 5 ] || e2e_fail "run 2 should name the five changes: $(cat "$r/changed.2")"
    e2e_pass "no overlap: five changes during a 2 s run gave exactly one more run after it, never two at once"
}

check_restart() {
    local w=$E2E_TMP/rst r=$E2E_TMP/rst.r
    fresh "$w"
    # each run leaves a grandchild in its process group and records both pids
    start_run -- --restart --debounce 50 "$w" -- sh -c \
        'sleep 60 & echo "$$ $!" > "$0/pids.$(ls "$0" | grep -c pids)"; echo x >> "$0/runs"; wait' "$r"
    wait_file "$r/pids.0"
    local pids; pids=$(cat "$r/pids.0")
    touch "$w/change"
    wait_file "$r/pids.1"
    local p
    for p in $pids; do
        for _ in $(seq 250); do kill -0 "$p" 2>/dev/null || break; sleep 0.02; done
        ! kill -0 "$p" 2>/dev/null || e2e_fail "--restart: pid $p of the first run's process group lives on"
    done
    [ "$(wc -l < "$r/runs")" -eq 2 ] || e2e_fail "--restart: $(wc -l < "$r/runs") runs, expected 2"
    stop_run
    # a command that ignores SIGTERM is killed, after the grace
    fresh "$w"
    start_run -- --restart --debounce 50 --grace 600 "$w" -- sh -c \
        'trap "" TERM; echo x >> "$0/runs"; while :; do sleep 0.05; done' "$r"
    wait_file "$r/runs"
    local t0 t1; t0=$(date +%s%N)
    touch "$w/change"
    for _ in $(seq 500); do [ "$(wc -l < "$r/runs")" -ge 2 ] && break; sleep 0.01; done
    t1=$(date +%s%N)
    [ "$(wc -l < "$r/runs")" -eq 2 ] || e2e_fail "--restart --grace: no second run within 5 s"
    local ms=$(( (t1 - t0) / 1000000 ))
    [ "$ms" -ge 600 ] || e2e_fail "--restart --grace 600: restarted after $ms ms, before the grace"
    stop_run
    e2e_pass "--restart: a change kills the running command's process group and starts it again; SIGKILL after the grace ($ms ms for 600)"
}

check_exit_status() {
    local w=$E2E_TMP/st r=$E2E_TMP/st.r rc
    fresh "$w"
    start_run -- "$w" -- sh -c 'echo x >> "$0/runs"; exit 3' "$r"
    wait_file "$r/runs"
    wait_idle
    kill -INT "$RUN_PID"
    rc=0; wait "$RUN_PID" || rc=$?; RUN_PID=""
    [ "$rc" -eq 3 ] || e2e_fail "SIGINT after a run that exited 3: status $rc"
    # a run going on is ended, and its status is the one
    fresh "$w"
    start_run -- "$w" -- sh -c 'echo x >> "$0/runs"; exec sleep 60' "$r"
    wait_file "$r/runs"
    kill -INT "$RUN_PID"
    rc=0; wait "$RUN_PID" || rc=$?; RUN_PID=""
    [ "$rc" -eq 143 ] || e2e_fail "SIGINT during a run: status $rc, expected 143 (SIGTERM)"
    # SIGTERM after a successful run
    fresh "$w"
    start_run -- "$w" -- sh -c 'echo x >> "$0/runs"' "$r"
    wait_file "$r/runs"
    wait_idle
    kill -TERM "$RUN_PID"
    rc=0; wait "$RUN_PID" || rc=$?; RUN_PID=""
    [ "$rc" -eq 0 ] || e2e_fail "SIGTERM after a run that exited 0: status $rc"
    # a command that does not exist
    fresh "$w"
    start_run -- "$w" -- "$E2E_TMP/no-such-command"
    for _ in $(seq 250); do grep -q 'cannot run' "$E2E_TMP/run.err" && break; sleep 0.02; done
    kill -INT "$RUN_PID"
    rc=0; wait "$RUN_PID" || rc=$?; RUN_PID=""
    [ "$rc" -eq 127 ] && grep -q '^fsnotectl: cannot run .*no-such-command: No such file' "$E2E_TMP/run.err" ||
        e2e_fail "a missing command: status $rc, $(cat "$E2E_TMP/run.err")"
    e2e_pass "exit status on SIGINT/SIGTERM: the last run's (3, 0), 143 for a run it ended, 127 for a missing command"
}

check_ignores() {
    local w=$E2E_TMP/ign r=$E2E_TMP/ign.r
    fresh "$w"
    mkdir -p "$w/.git" "$w/build" "$w/src" "$w/node_modules" "$w/logs"
    printf '# comment\n*.o\nbuild/\n/top-only\n!keep.o\nlogs/**\n' > "$w/.gitignore"
    printf 'node_modules\n' > "$w/.fsnoteignore"
    start_run -- --debounce 300 --exclude '*.swp' "$w" -- "$RECORDER" "$r"
    wait_runs "$r" 1
    touch "$w/.git/index" "$w/x.o" "$w/src/y.o" "$w/build/out" "$w/top-only" "$w/node_modules/m" \
          "$w/logs/l" "$w/a.swp" "$w/keep.o" "$w/src/top-only" "$w/marker"
    wait_runs "$r" 2
    marker_run "$w" "$r" 3
    stop_run
    sort "$r/changed.2" > "$r/got"
    printf '%s\n' "$w/keep.o" "$w/marker" "$w/src/top-only" | sort > "$r/want"
    diff "$r/want" "$r/got" >&2 || e2e_fail "ignores: run 2 should name exactly keep.o, marker, src/top-only"
    # --no-ignore: .git and the ignore files' rules count again
    fresh "$w"
    mkdir -p "$w/.git"
    printf '*.o\n' > "$w/.gitignore"
    start_run -- --debounce 300 --no-ignore "$w" -- "$RECORDER" "$r"
    wait_runs "$r" 1
    touch "$w/.git/index" "$w/x.o"
    wait_runs "$r" 2
    stop_run
    grep -qx "$w/.git/index" "$r/changed.2" && grep -qx "$w/x.o" "$r/changed.2" ||
        e2e_fail "--no-ignore: run 2 should name .git/index and x.o: $(cat "$r/changed.2")"
    e2e_pass "ignored: .git, --exclude, .gitignore (glob, dir/, /anchored, !negation, dir/**) and .fsnoteignore; --no-ignore"
}

check_nobody() {
    local w=$E2E_TMP/nob r=$E2E_TMP/nob.r
    fresh "$w"
    chown nobody "$w" "$r"
    start_run "${NOBODY[@]}" -- --debounce 100 "$w" -- "$RECORDER" "$r"
    wait_runs "$r" 1
    "${NOBODY[@]}" touch "$w/by-nobody"
    wait_runs "$r" 2
    marker_run "$w" "$r" 3
    stop_run
    [ "$(cat "$r/changed.2")" = "$w/by-nobody" ] || e2e_fail "nobody: run 2 names '$(cat "$r/changed.2")'"
    [ "$(stat -c %U "$r/n")" = nobody ] || e2e_fail "nobody: the command did not run as nobody"
    e2e_pass "as nobody: run once, then once per settled change"
}

check_usage() {
    local rc
    rc=0; "$FSNOTECTL" run "$E2E_TMP" > /dev/null 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q '^fsnotectl: run needs PATH... -- COMMAND' "$E2E_TMP/err" || e2e_fail "run without --: $rc $(cat "$E2E_TMP/err")"
    rc=0; "$FSNOTECTL" run -- true > /dev/null 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q 'at least one PATH' "$E2E_TMP/err" || e2e_fail "run without PATH: $rc $(cat "$E2E_TMP/err")"
    rc=0; "$FSNOTECTL" run --debounce x "$E2E_TMP" -- true > /dev/null 2> "$E2E_TMP/err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q "invalid --debounce 'x'" "$E2E_TMP/err" || e2e_fail "--debounce x: $rc $(cat "$E2E_TMP/err")"
    "$FSNOTECTL" run --help | grep -q '^Usage: fsnotectl run' || e2e_fail "run --help"
    e2e_pass "run: usage errors are one line, --help"
}

echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
e2e_start_daemon
check_usage
check_debounce
check_no_overlap
check_restart
check_exit_status
check_ignores
check_nobody
e2e_summary
