# Shared helpers for the end-to-end scripts (sourced, not run).
#
# Each script runs in its own private mount namespace with a scratch
# directory on a private tmpfs, starts the real fsnoted on a private socket
# and cleans up with a trap whatever happens.  Binaries come from the build
# tree ($abs_top_builddir, set by `make check`).

E2E_TOP=${abs_top_builddir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
FSNOTED=$E2E_TOP/daemon/fsnoted
FSNOTECTL=$E2E_TOP/client/fsnotectl
E2E_PASSED=0
E2E_DPID=""
E2E_WPID=""

e2e_fail() { echo "FAIL: $*" >&2; [ -f "${E2E_TMP:-}/daemon.log" ] && tail -20 "$E2E_TMP/daemon.log" >&2; exit 1; }
e2e_pass() { echo "ok: $*"; E2E_PASSED=$((E2E_PASSED + 1)); }
e2e_summary() { echo "$E2E_PASSED passed, 0 failed"; }

# Runs a command as nobody.  Other users run the binaries as
# $USER_FSNOTECTL and $USER_FSNOTED: copies that e2e_enter_namespace makes
# on the private tmpfs, since the build tree may sit in a checkout that
# only its owner can enter (a 0700 home, mktemp -d).
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
USER_FSNOTECTL=$FSNOTECTL
USER_FSNOTED=$FSNOTED

# jq 1.6 -e judges only the last input's output, so "is there a record
# such that..." over a file of records must be asked in one expression:
# jqe [jq options] FILTER FILE...: some record makes FILTER output true.
jqe() {
    local opts=() slurp=""
    while [ $# -gt 0 ]; do
        case $1 in
        --arg | --argjson) opts+=("$1" "$2" "$3"); shift 3 ;;
        -s) slurp=1; shift ;;
        -*) opts+=("$1"); shift ;;
        *) break ;;
        esac
    done
    local filter=$1; shift
    if [ -n "$slurp" ]; then
        jq -e -s "${opts[@]}" "$filter" "$@"
    else
        jq -e -n "${opts[@]}" "[inputs | ($filter)] | any" "$@"
    fi
}

# e2e_jq_any FILE FILTER [jq options]: does any record of FILE satisfy
# FILTER?  (Not `jq -e 'select(...)' FILE`, for the reason above.)
e2e_jq_any() {
    local file=$1 filter=$2; shift 2
    jqe "$@" "$filter" "$file" >/dev/null 2>&1
}

e2e_require_root() {
    [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
    [ -x "$FSNOTED" ] || { echo "SKIP: $FSNOTED is not built"; exit 77; }
    [ -x "$FSNOTECTL" ] || { echo "SKIP: $FSNOTECTL is not built"; exit 77; }
    command -v jq >/dev/null || { echo "SKIP: jq is missing"; exit 77; }
}

# Re-runs the calling script inside a private mount namespace, once.
e2e_enter_namespace() {
    if [ -z "${E2E_IN_NS:-}" ]; then
        export E2E_IN_NS=1
        exec unshare -m --propagation private bash "$0" "$@"
    fi
    E2E_TMP=$(mktemp -d /tmp/fsnoted-e2e.XXXXXX)
    mount -t tmpfs -o mode=0755 e2e-scratch "$E2E_TMP"
    export FSNOTE_SOCKET=$E2E_TMP/run/fsnoted.sock
    # every daemon a test starts keeps its journal in the test's tmpfs
    export STATE_DIRECTORY=$E2E_TMP/state
    trap e2e_cleanup EXIT
    e2e_copy_binaries
}

# The real programs behind libtool's wrappers, with the library they load,
# copied where every user can run them.
e2e_copy_binaries() {
    local bin=$E2E_TMP/.bin f real
    mkdir -p "$bin"
    for f in "$FSNOTECTL" "$FSNOTED"; do
        real=$(dirname "$f")/.libs/$(basename "$f")
        [ -x "$real" ] || real=$f
        cp "$real" "$bin/$(basename "$f")"
    done
    cp -P "$E2E_TOP"/client/.libs/libfsnote.so* "$bin/" 2>/dev/null || true
    chmod -R a+rX "$bin"
    USER_FSNOTECTL=$bin/$(basename "$FSNOTECTL")
    USER_FSNOTED=$bin/$(basename "$FSNOTED")
    export LD_LIBRARY_PATH=$bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
}

# Processes a script starts in the background (watches as other users, a
# client in another namespace): add each pid to E2E_BG_PIDS; e2e_stop_bg
# ends them all, and so does the cleanup.
E2E_BG_PIDS=()
e2e_stop_bg() {
    local p
    for p in "${E2E_BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    E2E_BG_PIDS=()
}

e2e_cleanup() {
    e2e_stop_bg
    e2e_stop_watch
    e2e_stop_daemon
    for m in $(awk -v t="$E2E_TMP" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rmdir "$E2E_TMP" 2>/dev/null || true
}

# e2e_start_daemon [fsnoted options...]; the config comes from $E2E_CONFIG if set.
e2e_start_daemon() {
    local cfg=${E2E_CONFIG:-$E2E_TMP/fsnoted.json}
    [ -f "$cfg" ] || echo '{ "latency_ms": 0 }' > "$cfg"
    "$FSNOTED" --foreground --socket "$FSNOTE_SOCKET" --config "$cfg" --log-level info "$@" \
        2>>"$E2E_TMP/daemon.log" &
    E2E_DPID=$!
    for _ in $(seq 200); do
        [ -S "$FSNOTE_SOCKET" ] && return 0
        kill -0 "$E2E_DPID" 2>/dev/null || e2e_fail "fsnoted exited at start-up"
        sleep 0.02
    done
    e2e_fail "fsnoted did not start listening"
}

e2e_stop_daemon() {
    [ -n "$E2E_DPID" ] || return 0
    kill -TERM "$E2E_DPID" 2>/dev/null || true
    local rc=0
    wait "$E2E_DPID" 2>/dev/null || rc=$?
    E2E_DPID=""
    [ "$rc" -eq 0 ] || e2e_fail "fsnoted exited with status $rc after SIGTERM"
}

# e2e_watch DIR [fsnotectl watch options...]: output in $E2E_OUT, returns
# once "Watches established." was printed.
e2e_watch() {
    local dir=$1; shift
    E2E_OUT=$E2E_TMP/watch.out
    : > "$E2E_OUT"
    "$FSNOTECTL" watch "$@" "$dir" > "$E2E_OUT" 2> "$E2E_TMP/watch.err" &
    E2E_WPID=$!
    for _ in $(seq 250); do
        grep -q 'Watches established.' "$E2E_TMP/watch.err" && return 0
        kill -0 "$E2E_WPID" 2>/dev/null || e2e_fail "fsnotectl watch exited: $(cat "$E2E_TMP/watch.err")"
        sleep 0.02
    done
    e2e_fail "fsnotectl watch never said 'Watches established.'"
}

e2e_stop_watch() {
    [ -n "$E2E_WPID" ] || return 0
    kill "$E2E_WPID" 2>/dev/null || true
    wait "$E2E_WPID" 2>/dev/null || true
    E2E_WPID=""
}

# Waits until an event for PATH (any type) is in the watch output.
e2e_wait_for_path() {
    for _ in $(seq 250); do
        e2e_jq_any "$E2E_OUT" '.path == $p' --arg p "$1" && return 0
        sleep 0.02
    done
    e2e_fail "no event for $1 within 5 s"
}

e2e_wait_for_type() {
    for _ in $(seq 250); do
        e2e_jq_any "$E2E_OUT" '.type == $t' --arg t "$1" && return 0
        sleep 0.02
    done
    e2e_fail "no $1 event within 5 s"
}

# WANT is a subsequence of GOT (line by line, in order)?
e2e_expect_subsequence() {
    local want=$1 got=$2 what=$3
    awk 'BEGIN { n = 0; i = 0 } NR == FNR { want[n++] = $0; next } i < n && $0 == want[i] { i++ }
         END { if (i < n) { print "first missing: " want[i]; exit 1 } }' "$want" "$got" > "$E2E_TMP/why" || {
        echo "--- expected (in order):" >&2; cat "$want" >&2
        echo "--- got:" >&2; cat "$got" >&2
        e2e_fail "$what: $(cat "$E2E_TMP/why")"
    }
}
