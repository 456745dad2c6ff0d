#!/bin/bash
# End to end, the service side: the systemd units (verify, the exposure
# score and exactly which items score), socket activation through
# systemd-socket-activate (the daemon must serve on the socket it is handed
# and bind none of its own), SIGHUP reload
# (a valid file applies, a broken one is refused and the old one stays),
# SIGTERM drain (a running watch is told and exits 0, the daemon exits 0),
# a bad configuration at start, --socket, and the stale socket rules of
# server_listen(): a leftover socket nobody answers on is replaced, a live
# daemon's socket is not taken, and a file that is not a socket is left alone.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
E2E_SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
for tool in systemd-analyze systemd-socket-activate; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is missing"; exit 77; }
done
e2e_enter_namespace "$@"

LOG=$E2E_TMP/daemon.log
EXPOSURE_MAX=2.0
# what systemd-analyze may hold against fsnoted.service, and why (see the
# comment at the top of systemd/fsnoted.service.in)
EXPOSED_OK=(
    'User=/DynamicUser='                                    # root: the fsuid switch drops caps only from 0
    'CapabilityBoundingSet=~CAP_SYS_ADMIN'                  # fanotify_init, FAN_MARK_FILESYSTEM, open_tree
    'CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)'   # CAP_DAC_READ_SEARCH: open_by_handle_at
    'CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)'          # setfsuid/setfsgid/setgroups in access.c
    'SystemCallFilter=~@privileged'                         # the same calls
    'SystemCallFilter=~@mount'                              # open_tree
    'RestrictAddressFamilies=~AF_UNIX'                      # the socket, sd_notify, the journal
    'PrivateTmp='                                           # would cover a /tmp filesystem others' directories live on
    'ProtectHome='                                          # read-only; hiding it would hide paths
    'PrivateUsers='                                         # capabilities in the initial namespace
    'RootDirectory=/RootImage='                             # paths must be the host's
    'DeviceAllow='                                          # char-rtc:r, added by ProtectClock=yes
)
echo '{ "latency_ms": 0 }' > "$E2E_TMP/fsnoted.json"

# status_json [socket]: the daemon's status, or fail
status_json() {
    FSNOTE_SOCKET=${1:-$FSNOTE_SOCKET} "$FSNOTECTL" status --json 2> "$E2E_TMP/status.err" ||
        e2e_fail "fsnotectl status failed: $(cat "$E2E_TMP/status.err")"
}

# wait_log PATTERN: until the daemon log has a line matching PATTERN (ERE)
wait_log() {
    for _ in $(seq 250); do
        grep -Eq -- "$1" "$LOG" && return 0
        sleep 0.02
    done
    e2e_fail "no log line matching '$1' within 5 s"
}

# wait_limit KEY VALUE: until status .limits.KEY is VALUE
wait_limit() {
    local got=
    for _ in $(seq 250); do
        got=$(status_json | jq -r --arg k "$1" '.limits[$k]')
        [ "$got" = "$2" ] && return 0
        sleep 0.02
    done
    e2e_fail "limits.$1 is $got, expected $2"
}

# --- the units -----------------------------------------------------------
check_units() {
    local dir=$E2E_TMP/units
    mkdir -p "$dir"
    # generated as systemd/systemd.mk does, naming the binary that exists
    sed -e "s|[@]sbindir[@]|$E2E_TOP/daemon|g" "$E2E_SRC/systemd/fsnoted.service.in" > "$dir/fsnoted.service"
    cp "$E2E_SRC/systemd/fsnoted.socket" "$dir/"
    grep -q "^ExecStart=$E2E_TOP/daemon/fsnoted\$" "$dir/fsnoted.service" ||
        e2e_fail "ExecStart was not generated from the sbindir placeholder"
    local out rc=0
    out=$(cd "$dir" && systemd-analyze verify --man=no ./fsnoted.socket ./fsnoted.service 2>&1) || rc=$?
    [ "$rc" -eq 0 ] && [ -z "$out" ] || e2e_fail "systemd-analyze verify (rc $rc): $out"
    e2e_pass "systemd-analyze verify: both units clean"

    out=$(cd "$dir" && systemd-analyze security --offline=true ./fsnoted.service 2>&1) ||
        e2e_fail "systemd-analyze security failed: $out"
    local score
    score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for fsnoted.service: \([0-9.]*\).*/\1/p')
    [ -n "$score" ] || e2e_fail "no overall exposure level in: $out"
    # The aim was 2.0; open_tree() for the fanotify source's detached mount
    # clones costs the @mount item and makes it 2.1.  What may score is
    # exactly what the service's comment justifies, nothing more.
    awk -v s="$score" -v max="$EXPOSURE_MAX" 'BEGIN { exit !(s <= max) }' ||
        e2e_fail "exposure $score > $EXPOSURE_MAX: $(printf '%s\n' "$out" | grep '✗')"
    local extra
    extra=$(cd "$dir" && systemd-analyze security --offline=true --json=short ./fsnoted.service |
        jq -r '.[] | select(.exposure != null and .exposure > 0) | .name' | grep -Fxv -f <(printf '%s\n' "${EXPOSED_OK[@]}")) || true
    [ -z "$extra" ] || e2e_fail "exposed beyond what fanotify and the access checks need: $extra"
    # the settings the daemon cannot live without are still there
    for want in '^Type=notify$' '^CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH CAP_SETUID CAP_SETGID$' \
                '^NoNewPrivileges=yes$' '^RestrictAddressFamilies=AF_UNIX$' '^ExecReload=/bin/kill -HUP \$MAINPID$'; do
        grep -Eq "$want" "$dir/fsnoted.service" || e2e_fail "fsnoted.service lacks $want"
    done
    ! grep -Eq '^(PrivateTmp=yes|ProtectHome=(yes|tmpfs))' "$dir/fsnoted.service" ||
        e2e_fail "fsnoted.service hides /tmp or /home from the daemon"
    grep -q '^ListenStream=/run/fsnoted/fsnoted.sock$' "$dir/fsnoted.socket" || e2e_fail "socket path"
    grep -q '^SocketMode=0666$' "$dir/fsnoted.socket" || e2e_fail "socket mode"
    e2e_pass "systemd-analyze security: exposure $score (<= $EXPOSURE_MAX), only the justified items"
}

# --- socket activation ---------------------------------------------------
check_socket_activation() {
    local sock=$E2E_TMP/act/fsnoted.sock own=$E2E_TMP/own/fsnoted.sock
    mkdir -p "$E2E_TMP/act" "$E2E_TMP/w-act"
    echo '{ "latency_ms": 0 }' > "$E2E_TMP/act.json"
    : > "$LOG"
    # systemd-socket-activate binds, waits for the first connection, then
    # execs the daemon in its own place (same pid) with LISTEN_FDS=1
    systemd-socket-activate -l "$sock" "$FSNOTED" --foreground --log-level info \
        --config "$E2E_TMP/act.json" --socket "$own" 2>> "$LOG" &
    E2E_DPID=$!
    for _ in $(seq 250); do
        [ -S "$sock" ] && break
        sleep 0.02
    done
    [ -S "$sock" ] || e2e_fail "systemd-socket-activate did not listen"
    local pid
    pid=$(status_json "$sock" | jq -r .pid)
    [ "$pid" = "$E2E_DPID" ] || e2e_fail "status came from pid $pid, not the activated daemon $E2E_DPID"
    [ ! -e "$own" ] || e2e_fail "the activated daemon bound its own socket $own"
    grep -q 'using the socket passed by the service manager' "$LOG" ||
        e2e_fail "the daemon did not say it took the passed socket"
    # and it serves events through it
    FSNOTE_SOCKET=$sock e2e_watch "$E2E_TMP/w-act" --json
    touch "$E2E_TMP/w-act/hello"
    e2e_wait_for_path "$E2E_TMP/w-act/hello"
    e2e_stop_watch
    e2e_stop_daemon
    # the socket belongs to whoever passed it: the daemon leaves it in place
    [ -S "$sock" ] || e2e_fail "the daemon removed a socket it did not create"
    e2e_pass "socket activation: served on the passed socket, bound none, left it in place"
}

# --- reload --------------------------------------------------------------
check_reload() {
    local cfg=$E2E_TMP/reload.json
    mkdir -p "$E2E_TMP/w-reload"
    printf '{\n  "latency_ms": 0,\n  "max_connections_per_uid": 64\n}\n' > "$cfg"
    : > "$LOG"
    E2E_CONFIG=$cfg e2e_start_daemon
    wait_limit max_connections_per_uid 64
    wait_limit ring_max_depth 131072

    printf '{\n  "latency_ms": 0,\n  "max_connections_per_uid": 1,\n  "ring_max_depth": 9000\n}\n' > "$cfg"
    kill -HUP "$E2E_DPID"
    wait_limit max_connections_per_uid 1
    wait_limit ring_max_depth 9000
    wait_log 'configuration reloaded'
    # the new limit governs new connections: with a watch open, root's
    # second connection is refused with a clear error
    e2e_watch "$E2E_TMP/w-reload" --json
    local rc=0
    "$FSNOTECTL" status --json > /dev/null 2> "$E2E_TMP/status.err" || rc=$?
    [ "$rc" -eq 1 ] || e2e_fail "a second connection over max_connections_per_uid=1 got exit $rc"
    grep -q 'max_connections_per_uid' "$E2E_TMP/status.err" ||
        e2e_fail "the refusal does not name the limit: $(cat "$E2E_TMP/status.err")"
    e2e_pass "SIGHUP: new limits in status and applied to new connections"

    # a broken file: refused with its position, the old configuration stays
    printf '{\n  "max_connections_per_uid": 50,\n  "ring_max_depth": 2000,\n  "bogus": 1\n}\n' > "$cfg"
    kill -HUP "$E2E_DPID"
    wait_log "reload failed.*$cfg:4:3: unknown key \"bogus\""
    printf '{ "max_connections_per_uid": 50, \n' > "$cfg"
    kill -HUP "$E2E_DPID"
    wait_log "reload failed.*$cfg:2:0: "
    # the watch opened under the old configuration is still served
    touch "$E2E_TMP/w-reload/after"
    e2e_wait_for_path "$E2E_TMP/w-reload/after"
    e2e_stop_watch
    kill -0 "$E2E_DPID" || e2e_fail "the daemon died on a broken reload"
    wait_limit max_connections_per_uid 1
    wait_limit ring_max_depth 9000
    e2e_stop_daemon
    e2e_pass "SIGHUP with a broken file: FILE:LINE:COLUMN logged, old configuration kept, still serving"
}

# --- SIGTERM drain -------------------------------------------------------
check_drain() {
    mkdir -p "$E2E_TMP/w-drain"
    : > "$LOG"
    e2e_start_daemon
    e2e_watch "$E2E_TMP/w-drain" --json
    touch "$E2E_TMP/w-drain/x"
    e2e_wait_for_path "$E2E_TMP/w-drain/x"
    local start=$SECONDS
    kill -TERM "$E2E_DPID"
    local rc=0
    wait "$E2E_WPID" || rc=$?
    E2E_WPID=""
    [ "$rc" -eq 0 ] || e2e_fail "fsnotectl watch exited $rc when the daemon shut down: $(cat "$E2E_TMP/watch.err")"
    rc=0
    wait "$E2E_DPID" || rc=$?
    E2E_DPID=""
    [ "$rc" -eq 0 ] || e2e_fail "fsnoted exited $rc after SIGTERM"
    # the daemon gives unresponsive clients 3 s; a responsive one is faster
    [ $((SECONDS - start)) -le 4 ] || e2e_fail "the drain took $((SECONDS - start)) s"
    [ ! -e "$FSNOTE_SOCKET" ] || e2e_fail "the daemon left its own socket behind"
    e2e_pass "SIGTERM: the watch got the shutdown and exited 0, the daemon exited 0 and removed its socket"
}

# --- bad configuration at start ------------------------------------------
check_bad_start() {
    local bad=$E2E_TMP/bad.json sock=$E2E_TMP/bad/fsnoted.sock rc=0
    printf '{\n  "latency_ms": 0,\n  "ring_max_depth": 3\n}\n' > "$bad"
    "$FSNOTED" --foreground --config "$bad" --socket "$sock" 2> "$E2E_TMP/bad.err" || rc=$?
    [ "$rc" -eq 1 ] || e2e_fail "fsnoted with a bad configuration exited $rc"
    [ "$(wc -l < "$E2E_TMP/bad.err")" -eq 1 ] || e2e_fail "more than one line: $(cat "$E2E_TMP/bad.err")"
    grep -q "$bad:3:21: \"ring_max_depth\" must be an integer from 4 to" "$E2E_TMP/bad.err" ||
        e2e_fail "no FILE:LINE:COLUMN message: $(cat "$E2E_TMP/bad.err")"
    [ ! -e "$sock" ] || e2e_fail "a daemon that refused its configuration created its socket"

    printf '{ "batch": 1,\n  "batch": 2 }' > "$bad"
    rc=0
    "$FSNOTED" --foreground --config "$bad" --socket "$sock" 2> "$E2E_TMP/bad.err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q "$bad:2:9: duplicate object key" "$E2E_TMP/bad.err" ||
        e2e_fail "duplicate key: exit $rc, $(cat "$E2E_TMP/bad.err")"

    rc=0
    "$FSNOTED" --foreground --config "$E2E_TMP/none.json" --socket "$sock" 2> "$E2E_TMP/bad.err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q "$E2E_TMP/none.json: cannot open" "$E2E_TMP/bad.err" ||
        e2e_fail "missing --config file: exit $rc, $(cat "$E2E_TMP/bad.err")"
    e2e_pass "bad configuration at start: exit 1 with FILE:LINE:COLUMN, no socket"
}

# --- --socket, the configured socket, stale and live sockets --------------
check_sockets() {
    # --socket wins over the "socket" key; without it the key is used
    local keyed=$E2E_TMP/keyed/k.sock
    printf '{ "latency_ms": 0, "socket": "%s" }\n' "$keyed" > "$E2E_TMP/keyed.json"
    : > "$LOG"
    E2E_CONFIG=$E2E_TMP/keyed.json e2e_start_daemon
    [ ! -e "$keyed" ] || e2e_fail "--socket did not override the socket key"
    e2e_stop_daemon
    "$FSNOTED" --foreground --config "$E2E_TMP/keyed.json" 2>> "$LOG" &
    E2E_DPID=$!
    for _ in $(seq 250); do
        [ -S "$keyed" ] && break
        sleep 0.02
    done
    [ "$(status_json "$keyed" | jq -r .pid)" = "$E2E_DPID" ] || e2e_fail "not listening on the socket key's path"
    e2e_stop_daemon
    e2e_pass "--socket overrides the socket key, which is used without it"

    # a daemon killed with SIGKILL leaves its socket behind
    : > "$LOG"
    e2e_start_daemon
    kill -KILL "$E2E_DPID"
    wait "$E2E_DPID" 2>/dev/null || true
    E2E_DPID=""
    [ -S "$FSNOTE_SOCKET" ] || e2e_fail "no leftover socket after SIGKILL"
    local ino_before
    ino_before=$(stat -c %i "$FSNOTE_SOCKET")
    "$FSNOTED" --foreground --socket "$FSNOTE_SOCKET" --config "$E2E_TMP/fsnoted.json" --log-level info \
        2>> "$LOG" &
    E2E_DPID=$!
    local pid=
    for _ in $(seq 250); do
        pid=$(FSNOTE_SOCKET=$FSNOTE_SOCKET "$FSNOTECTL" status --json 2>/dev/null | jq -r .pid) || true
        [ "$pid" = "$E2E_DPID" ] && break
        kill -0 "$E2E_DPID" 2>/dev/null || e2e_fail "fsnoted refused a stale socket: $(tail -3 "$LOG")"
        sleep 0.02
    done
    [ "$pid" = "$E2E_DPID" ] || e2e_fail "the new daemon does not serve on the stale socket's path"
    [ "$(stat -c %i "$FSNOTE_SOCKET")" != "$ino_before" ] || e2e_fail "the stale socket was not replaced"
    e2e_pass "a stale socket from a killed daemon is replaced"

    # a live daemon's socket is not taken
    local live=$E2E_DPID rc=0
    "$FSNOTED" --foreground --socket "$FSNOTE_SOCKET" --config "$E2E_TMP/fsnoted.json" 2> "$E2E_TMP/second.err" || rc=$?
    [ "$rc" -eq 1 ] || e2e_fail "a second daemon on a live socket exited $rc"
    grep -q 'another daemon is listening' "$E2E_TMP/second.err" ||
        e2e_fail "the second daemon did not say why: $(cat "$E2E_TMP/second.err")"
    [ -S "$FSNOTE_SOCKET" ] || e2e_fail "the second daemon removed the live daemon's socket"
    [ "$(status_json | jq -r .pid)" = "$live" ] || e2e_fail "the live daemon no longer answers"
    e2e_stop_daemon
    e2e_pass "a live daemon's socket is not stolen; the live daemon keeps serving"

    # something that is not a socket is never removed
    local file=$E2E_TMP/plain/fsnoted.sock
    mkdir -p "$E2E_TMP/plain"
    echo precious > "$file"
    rc=0
    "$FSNOTED" --foreground --socket "$file" --config "$E2E_TMP/fsnoted.json" 2> "$E2E_TMP/plain.err" || rc=$?
    [ "$rc" -eq 1 ] && grep -q 'not a socket' "$E2E_TMP/plain.err" ||
        e2e_fail "a file in the socket's place: exit $rc, $(cat "$E2E_TMP/plain.err")"
    [ "$(cat "$file")" = precious ] || e2e_fail "the file in the socket's place was changed"
    e2e_pass "a file that is not a socket is left alone (exit 1)"
}

check_units
check_socket_activation
check_reload
check_drain
check_bad_start
check_sockets
e2e_summary
