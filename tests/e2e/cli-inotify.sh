#!/bin/bash
# End to end: `fsnotectl watch --format/--csv` against the real
# `inotifywait -m -r`, both watching the same directory (given relative,
# as scripts do) on the same private tmpfs while the same operations
# happen, with each of the daemon's backends.  Lines are compared as sets
# (both tools may merge identical consecutive events):
#   - with inotifywait's -e selection of what fsnoted reports, the sets
#     are equal, for --format with every conversion and for --csv with
#     names that need quoting;
#   - without -e, inotifywait also reports OPEN, ACCESS and CLOSE_NOWRITE,
#     which fsnoted does not report by default: every fsnotectl line is an
#     inotifywait line (but for a removed subdirectory's DELETE_SELF, which
#     inotifywait prints or not depending on the order it reads two
#     events in), and what only inotifywait printed are those three;
#   - the same as nobody;
#   - %T with --timefmt is the event's time; usage errors are one line.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
command -v inotifywait >/dev/null || { echo "SKIP: inotifywait is missing"; exit 77; }
e2e_enter_namespace "$@"

SEL=create,delete,modify,attrib,close_write,moved_from,moved_to
IW_PID=""
FS_PID=""

stop_both() {
    [ -n "$IW_PID" ] && { kill "$IW_PID" 2>/dev/null || true; wait "$IW_PID" 2>/dev/null || true; }
    [ -n "$FS_PID" ] && { kill "$FS_PID" 2>/dev/null || true; wait "$FS_PID" 2>/dev/null || true; }
    IW_PID="" FS_PID=""
}
trap 'stop_both; e2e_cleanup' EXIT

wait_line() {  # FILE FIXED-STRING
    for _ in $(seq 250); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.02
    done
    e2e_fail "no line with '$2' in $1 within 5 s: $(cat "$1")"
}

# start_both OUT-PREFIX ARGS...: inotifywait -m -r ARGS and fsnotectl
# watch ARGS on "w", each until it says its watches are established.
start_both() {
    local out=$1; shift
    inotifywait -m -r "$@" w > "$out.iw" 2> "$out.iw.err" & IW_PID=$!
    "$FSNOTECTL" watch "$@" w > "$out.fs" 2> "$out.fs.err" & FS_PID=$!
    wait_line "$out.iw.err" "Watches established."
    wait_line "$out.fs.err" "Watches established."
}

# The operations: files and directories created, written, renamed within
# and across directories, attributes changed, removed; names with a comma,
# a quote, spaces and a newline.
operate() {
    touch w/a
    echo hi > w/a
    chmod 700 w/s
    mv w/a w/s/b
    mv w/t w/u
    touch w/u/x
    printf x > 'w/u/a,b'
    touch 'w/q"x' 'w/ sp ' $'w/nl\nx'
    mv 'w/q"x' 'w/u/q"y'
    rm w/s/b
    rmdir w/s
    touch w
    mkdir w/n
    rm -r w/u
    touch w/END
}

# compare WHAT FILE-A FILE-B: the same set of lines?
same_set() {
    if ! diff <(sort -u "$2") <(sort -u "$3") > "$E2E_TMP/diff"; then
        cat "$E2E_TMP/diff" >&2
        e2e_fail "$1: the line sets differ (< inotifywait, > fsnotectl)"
    fi
}

check_format() {
    local b=$1 o=$E2E_TMP/fmt-$1
    rm -rf w; mkdir -p w/s w/t
    local fmt='%w|%f|%e|%:e|%%|%Xe'
    start_both "$o" -e "$SEL" --format "$fmt"
    operate
    wait_line "$o.iw" "w/|END|CLOSE_WRITE,CLOSE"
    wait_line "$o.fs" "w/|END|CLOSE_WRITE,CLOSE"
    stop_both
    same_set "$b: --format '$fmt' -e $SEL" "$o.iw" "$o.fs"
    # the forms that matter are there at all (a vacuous match proves nothing)
    for l in "w/|a|MOVED_FROM|" "w/s/|b|MOVED_TO|" "w/|t|MOVED_FROM,ISDIR|" "w/s/||ATTRIB,ISDIR|" \
             "w/||ATTRIB,ISDIR|" "w/|s|DELETE,ISDIR|" "w/u/|x|CLOSE_WRITE,CLOSE|CLOSE_WRITE:CLOSE|%|CLOSE_WRITEXCLOSE"; do
        grep -qF -- "$l" "$o.fs" || e2e_fail "$b: no line starting '$l': $(cat "$o.fs")"
    done
    e2e_pass "$b: --format %w %f %e %:e %% %Xe -e $SEL: the same lines as inotifywait ($(sort -u "$o.fs" | wc -l) distinct)"
}

check_csv() {
    local b=$1 o=$E2E_TMP/csv-$1
    rm -rf w; mkdir -p w/s w/t
    start_both "$o" -e "$SEL" --csv
    operate
    wait_line "$o.iw" 'w/,"CLOSE_WRITE,CLOSE",END'
    wait_line "$o.fs" 'w/,"CLOSE_WRITE,CLOSE",END'
    stop_both
    same_set "$b: --csv -e $SEL" "$o.iw" "$o.fs"
    grep -qF 'w/u/,CREATE,"a,b"' "$o.fs" && grep -qF 'w/,CREATE,"q""x"' "$o.fs" &&
        grep -qF 'w/,CREATE," sp "' "$o.fs" && grep -qF 'w/,"CREATE,ISDIR",n' "$o.fs" ||
        e2e_fail "$b: --csv quoting: $(cat "$o.fs")"
    e2e_pass "$b: --csv quotes commas, quotes, edge spaces and newlines as inotifywait does"
}

check_unselected() {
    local b=$1 o=$E2E_TMP/all-$1
    rm -rf w; mkdir -p w/s w/t
    local fmt='%w %e %f'
    start_both "$o" --format "$fmt"
    operate
    wait_line "$o.iw" "w/ CLOSE_WRITE,CLOSE END"
    wait_line "$o.fs" "w/ CLOSE_WRITE,CLOSE END"
    stop_both
    sort -u "$o.iw" > "$o.iw.u"
    sort -u "$o.fs" > "$o.fs.u"
    # inotifywait drops a subdirectory's watch when it reads the parent's
    # DELETE,ISDIR, and then prints the DELETE_SELF that follows or not
    # depending on which it read first: that line alone may be fsnotectl's
    comm -13 "$o.iw.u" "$o.fs.u" | grep -v '^w/.*/ DELETE_SELF $' > "$o.only-fs" || true
    [ ! -s "$o.only-fs" ] || { cat "$o.only-fs" >&2; e2e_fail "$b: without -e, lines inotifywait never printed"; }
    comm -23 "$o.iw.u" "$o.fs.u" > "$o.only-iw"
    ! grep -vE ' ([A-Z_]+,)*(OPEN|ACCESS|CLOSE_NOWRITE)[A-Z_,]* ' "$o.only-iw" > "$o.rest" ||
        { cat "$o.rest" >&2; e2e_fail "$b: without -e, inotifywait lines other than OPEN/ACCESS/CLOSE_NOWRITE are missing"; }
    grep -qF "w/u/ DELETE_SELF " "$o.fs" && grep -qF "w/u/ MOVE_SELF " "$o.fs" ||
        e2e_fail "$b: no DELETE_SELF/MOVE_SELF lines without -e: $(cat "$o.fs")"
    e2e_pass "$b: without -e a subset of inotifywait's lines; only OPEN/ACCESS/CLOSE_NOWRITE ($(wc -l < "$o.only-iw") lines) are its alone"
}

# As nobody (both tools), in a directory nobody may read but not write.
check_nobody() {
    local b=$1 o=$E2E_TMP/nobody-$1
    rm -rf w; mkdir -p w/s
    local fmt='%w|%f|%e'
    "${NOBODY[@]}" inotifywait -m -r -e "$SEL" --format "$fmt" w > "$o.iw" 2> "$o.iw.err" & IW_PID=$!
    "${NOBODY[@]}" "$FSNOTECTL" watch -e "$SEL" --format "$fmt" w > "$o.fs" 2> "$o.fs.err" & FS_PID=$!
    wait_line "$o.iw.err" "Watches established."
    wait_line "$o.fs.err" "Watches established."
    touch w/a w/s/b
    mv w/a w/s/c
    mkdir w/d
    mv w/d w/e
    rm w/s/b
    touch w/END
    wait_line "$o.iw" "w/|END|CLOSE_WRITE,CLOSE"
    wait_line "$o.fs" "w/|END|CLOSE_WRITE,CLOSE"
    stop_both
    same_set "$b: as nobody" "$o.iw" "$o.fs"
    e2e_pass "$b: as nobody, the same lines as inotifywait ($(sort -u "$o.fs" | wc -l) distinct)"
}

check_time_and_errors() {
    local o=$E2E_TMP/time
    rm -rf w; mkdir -p w
    "$FSNOTECTL" watch --format '%T %f' --timefmt '%s' --no-newline w > "$o.fs" 2> "$o.fs.err" & FS_PID=$!
    wait_line "$o.fs.err" "Watches established."
    local t0 t1; t0=$(date +%s); touch w/timed; t1=$(date +%s)
    wait_line "$o.fs" " timed"
    stop_both
    local t; t=$(head -c 10 "$o.fs")
    [ "$t" -ge "$t0" ] && [ "$t" -le "$t1" ] || e2e_fail "%T with --timefmt %s: $t not in [$t0, $t1]"
    [ "$(wc -l < "$o.fs")" = 0 ] || e2e_fail "--no-newline printed a newline: $(od -c "$o.fs")"
    local rc=0
    "$FSNOTECTL" watch --format '%T' w > "$o.out" 2> "$o.err" || rc=$?
    [ "$rc" = 1 ] && grep -q '^fsnotectl: --format uses %T but no --timefmt' "$o.err" || e2e_fail "%T without --timefmt: $rc $(cat "$o.err")"
    rc=0; "$FSNOTECTL" watch --csv --format '%w' w > "$o.out" 2> "$o.err" || rc=$?
    [ "$rc" = 1 ] && grep -q 'do not go together' "$o.err" || e2e_fail "--csv --format: $rc $(cat "$o.err")"
    rc=0; "$FSNOTECTL" watch -e close_nowrite --csv w > "$o.out" 2> "$o.err" || rc=$?
    [ "$rc" = 1 ] && grep -q 'does not report close_nowrite' "$o.err" || e2e_fail "-e close_nowrite: $rc $(cat "$o.err")"
    rc=0; "$FSNOTECTL" watch -e moved_to w > "$o.out" 2> "$o.err" || rc=$?
    [ "$rc" = 1 ] && grep -q "inotifywait event name" "$o.err" || e2e_fail "-e moved_to without --format: $rc $(cat "$o.err")"
    e2e_pass "%T is the event's time (--timefmt %s), --no-newline; one-line errors for %T without --timefmt, --csv with --format, close_nowrite"
}

cd "$E2E_TMP"
echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"
for backend in fanotify inotify; do
    e2e_start_daemon --backend "$backend"
    got=$("$FSNOTECTL" status --json | jq -r .backend)
    [ "$got" = "$backend" ] || { e2e_stop_daemon; echo "note: $backend not available ($got)"; continue; }
    check_format "$backend"
    check_csv "$backend"
    check_unselected "$backend"
    check_nobody "$backend"
    e2e_stop_daemon
done
e2e_start_daemon
check_time_and_errors
e2e_summary
