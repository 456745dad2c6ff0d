#!/bin/bash
# The inside half of tests/e2e/nspawn.sh: runs at boot as fsnote-e2e.service
# in a container whose PID 1 is systemd, with the project installed under
# /usr/local by `make install DESTDIR=...`.  It does what an administrator
# and a user would do -- daemon-reload, enable the socket, watch a directory
# as an ordinary user -- and checks what systemd says about the service.
#
# Results go to /fsnote-e2e/out/results, one line each: "ok: ...",
# "FAIL: ..." or "note: ...", then "END" once everything ran; the outer
# script prints them and decides.  Checks carry on after a failure where the
# next one still means something, so that one run shows every problem.  Every
# wait is bounded; the unit that runs this powers the container off after.
set -u

OUT=/fsnote-e2e/out
RES=$OUT/results
SCRATCH=/fsnote-e2e/scratch     # watch output; never under a watched path
U=fsnote-user
FAILED=0
WATCH_PIDS=()

mkdir -p "$OUT" "$SCRATCH"
# the second boot (the container was powered off after the first, and
# booted again by tests/e2e/nspawn.sh) only checks the journal across it
if [ -s "$OUT/journal-since" ] && grep -q '^reboot$' "$RES" 2>/dev/null; then
    PHASE=2
    echo "booted again" >> "$RES"
else
    PHASE=1
    echo "booted" >> "$RES"
fi

ok() { echo "ok: $*" >> "$RES"; }
bad() { echo "FAIL: $*" >> "$RES"; FAILED=1; }
note() { echo "note: $*" >> "$RES"; }

# wait_until SECONDS COMMAND...: polls every 0.1 s; COMMAND exits 3 to say
# that waiting longer is pointless.
wait_until() {
    local tenths=$(($1 * 10)) i
    shift
    for ((i = 0; i < tenths; i++)); do
        ( "$@" ) >/dev/null 2>&1
        case $? in
        0) return 0 ;;
        3) return 1 ;;  # the command says it will never succeed
        esac
        sleep 0.1
    done
    return 1
}

finish() {
    local p
    for p in "${WATCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    {
        echo "--- systemctl status fsnoted.socket fsnoted.service"
        systemctl --no-pager status fsnoted.socket fsnoted.service
        echo "--- journalctl -u fsnoted.socket -u fsnoted.service"
        journalctl --no-pager -u fsnoted.socket -u fsnoted.service
    } > "$OUT/journal.txt" 2>&1
    echo "END" >> "$RES"
    exit 0
}

# unit_prop UNIT PROPERTY: the value systemd has for it.
unit_prop() { systemctl show -p "$2" --value "$1"; }

# usec TIMESPAN: systemd's formatted time span ("30s", "1min 30s") in µs.
usec() {
    [ "$1" = infinity ] && { echo 0; return; }
    systemd-analyze timespan "$1" | awk '$1 == "μs:" { print $2 }'
}

# watch_as USER NAME PATH...: `fsnotectl watch --json` in the background,
# output in $SCRATCH/NAME.{out,err}; returns once the daemon confirmed.
# The watch is bounded to 120 s whatever happens.
watch_as() {
    local user=$1 name=$2
    shift 2
    : > "$SCRATCH/$name.out"
    : > "$SCRATCH/$name.err"
    chmod 666 "$SCRATCH/$name.out" "$SCRATCH/$name.err"
    runuser -u "$user" -- timeout 120 fsnotectl watch --json "$@" \
        > "$SCRATCH/$name.out" 2> "$SCRATCH/$name.err" &
    WATCH_PID=$!
    WATCH_PIDS+=("$WATCH_PID")
    wait_until 15 established "$name" "$WATCH_PID"
}

# established NAME PID: the watch said so; gives up at once if it exited.
established() {
    grep -q 'Watches established.' "$SCRATCH/$1.err" && return 0
    kill -0 "$2" 2>/dev/null || exit 3
    return 1
}

# jq_any FILE JQ-ARGS...: some line of FILE matches (jq -e alone says yes
# to an empty file).
jq_any() {
    local f=$1
    shift
    jq -c "$@" "$f" 2>/dev/null | grep -q .
}

# has_event NAME TYPE PATH: the watch NAME printed an event TYPE for PATH.
has_event() {
    jq_any "$SCRATCH/$1.out" --arg t "$2" --arg p "$3" 'select(.type == $t and .path == $p)'
}

has_rename() {
    jq_any "$SCRATCH/$1.out" --arg p "$2" --arg d "$3" 'select(.type == "rename" and .path == $p and .dest == $d)'
}

journal_has() {
    journalctl --no-pager -o cat -u fsnoted.service | grep -Eq "$1"
}

# --- the journal: across systemctl restart, then across a reboot -----------

# replayed NAME PATH...: the watch NAME's output replays every PATH's
# create, flagged history.
replayed() {
    local name=$1 p
    shift
    for p in "$@"; do
        jq_any "$SCRATCH/$name.out" --arg p "$p" \
            'select(.type == "create" and .path == $p and (.flags | index("history")) != null)' || return 1
    done
}

# since_as NAME ID PATH: `fsnotectl watch --json --since ID` as the user
# for a few seconds, output in $SCRATCH/NAME.out.
since_as() {
    runuser -u "$U" -- timeout 20 fsnotectl watch --json --since "$2" --timeout 4 "$3" \
        > "$SCRATCH/$1.out" 2> "$SCRATCH/$1.err"
    local rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 2 ]
}

# the drop first, its range over the newest "stopped" gap in the status
gap_first() {
    local gap gf gl
    gap=$(fsnotectl status --json | jq -c '[.journal.gaps[] | select(.reason == "stopped")] | last')
    gf=$(jq -r .id_first <<< "$gap")
    gl=$(jq -r .id_last <<< "$gap")
    [ -n "$gf" ] && [ "$gf" != null ] || return 1
    jq -e -s --argjson gf "$gf" --argjson gl "$gl" \
        '.[0].type == "dropped" and (.[0].flags | index("must_rescan")) != null and
         .[0].id_first <= $gf and .[0].id_last >= $gl' "$SCRATCH/$1.out" > /dev/null
}

journal_phase1() {
    local d=/home/$U/jw
    runuser -u "$U" -- mkdir -p "$d"
    if ! watch_as "$U" j1 "$d"; then
        bad "journal: watch never established: $(head -c 300 "$SCRATCH/j1.err")"
        finish
    fi
    local id0
    id0=$(runuser -u "$U" -- fsnotectl current-id)
    runuser -u "$U" -- touch "$d/before-restart"
    wait_until 10 has_event j1 create "$d/before-restart" || bad "journal: no event before the restart"
    kill "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID" 2>/dev/null
    local pid1
    pid1=$(unit_prop fsnoted.service MainPID)
    if timeout 30 systemctl restart fsnoted.service > "$SCRATCH/restart.log" 2>&1; then
        ok "systemctl restart fsnoted (MainPID $pid1 -> $(unit_prop fsnoted.service MainPID))"
    else
        bad "systemctl restart fsnoted failed: $(tail -3 "$SCRATCH/restart.log")"
    fi
    if [ "$(stat -c %a /var/lib/fsnoted 2>/dev/null)" = 700 ] && ls /var/lib/fsnoted/*.fsj > /dev/null 2>&1; then
        ok "the journal is in /var/lib/fsnoted (StateDirectory=, mode 0700)"
    else
        bad "no journal in /var/lib/fsnoted: $(ls -la /var/lib/fsnoted 2>&1 | head -5)"
    fi
    runuser -u "$U" -- test -r /var/lib/fsnoted && bad "the user can read /var/lib/fsnoted"
    if watch_as "$U" j2 "$d"; then
        runuser -u "$U" -- touch "$d/after-restart"
        wait_until 10 has_event j2 create "$d/after-restart" || bad "journal: no event after the restart"
        kill "$WATCH_PID" 2>/dev/null
        wait "$WATCH_PID" 2>/dev/null
    fi
    if since_as j3 "$id0" "$d" && replayed j3 "$d/before-restart" && gap_first j3; then
        ok "after systemctl restart, watch --since replays what came before it, after a drop covering the gap"
    else
        bad "watch --since across the restart: $(head -c 800 "$SCRATCH/j3.out") $(head -c 200 "$SCRATCH/j3.err")"
    fi
    echo "$id0" > "$OUT/journal-since"
    echo "reboot" >> "$RES"
    note "powering off for the reboot; the second boot checks the journal across it"
    for p in "${WATCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    exit 0
}

journal_phase2() {
    local d=/home/$U/jw id0
    id0=$(cat "$OUT/journal-since")
    if timeout 30 systemctl start fsnoted.socket > /dev/null 2>&1 && watch_as "$U" k1 "$d"; then
        runuser -u "$U" -- touch "$d/after-reboot"
        wait_until 10 has_event k1 create "$d/after-reboot" || bad "journal: no event after the reboot"
        kill "$WATCH_PID" 2>/dev/null
        wait "$WATCH_PID" 2>/dev/null
    else
        bad "after the reboot, no watch: $(head -c 300 "$SCRATCH/k1.err")"
    fi
    if since_as k2 "$id0" "$d" && replayed k2 "$d/before-restart" "$d/after-restart" && gap_first k2 &&
        has_event k2 create "$d/after-reboot"; then
        ok "after the reboot, watch --since $id0 replays across both the restart and the reboot, gap first"
    else
        bad "watch --since across the reboot: $(head -c 1000 "$SCRATCH/k2.out") $(head -c 200 "$SCRATCH/k2.err")"
    fi
    local n
    n=$(fsnotectl status --json | jq '[.journal.gaps[] | select(.reason == "stopped")] | length')
    [ "${n:-0}" -ge 2 ] && ok "fsnotectl status lists the restart and the reboot as gaps ($n stopped)" ||
        bad "status lists $n stopped gaps: $(fsnotectl status --json | jq -c .journal)"
    if runuser -u "$U" -- timeout 20 fsnotectl history --json --since "$id0" "$d" > "$SCRATCH/k3.out" 2> "$SCRATCH/k3.err" &&
        jq_any "$SCRATCH/k3.out" --arg p "$d/before-restart" 'select(.path == $p)'; then
        ok "fsnotectl history --since $id0 prints the journal across the reboot and exits"
    else
        bad "fsnotectl history: $(head -c 500 "$SCRATCH/k3.out") $(head -c 200 "$SCRATCH/k3.err")"
    fi
    finish
}

if [ "$PHASE" = 2 ]; then
    U=fsnote-user
    journal_phase2
fi

# --- install: what the administrator does after `make install` ------------

ldconfig
useradd -m -s /bin/bash "$U" || { bad "cannot create the user $U"; finish; }
UID_U=$(id -u "$U")

systemctl daemon-reload
for unit in fsnoted.socket fsnoted.service; do
    if [ "$(unit_prop "$unit" LoadState)" = loaded ]; then
        ok "$unit is found by systemd at $(unit_prop "$unit" FragmentPath)"
    else
        bad "$unit is not found by systemd ($(unit_prop "$unit" LoadState))"
        finish
    fi
done

[ "$(unit_prop fsnoted.service Type)" = notify ] &&
    ok "fsnoted.service is Type=notify" ||
    bad "fsnoted.service is Type=$(unit_prop fsnoted.service Type), not notify"

# The watchdog period the unit ships with.  Waiting three of them must fit
# in the test's time budget, so a long one is shortened by a drop-in (as an
# administrator would) and the check runs against that; the daemon takes the
# period from WATCHDOG_USEC either way.
# The watchdog period the unit ships with (systemd reports WatchdogUSec only
# once the service runs, so it is read from the unit text here).  Waiting
# three periods must fit in the test's time budget, so a long one is
# shortened by a drop-in, as an administrator would, before the service
# first starts; the daemon takes the period from WATCHDOG_USEC either way.
WD_UNIT=$(systemctl cat fsnoted.service | sed -n 's/^WatchdogSec=//p' | tail -1)
WD=$(usec "${WD_UNIT:-0}" 2>/dev/null)
if [ -z "$WD" ] || [ "$WD" -eq 0 ]; then
    bad "fsnoted.service has no WatchdogSec= ('$WD_UNIT')"
    WD=0
else
    ok "fsnoted.service has WatchdogSec=$WD_UNIT"
    if [ "$WD" -gt 10000000 ]; then
        mkdir -p /etc/systemd/system/fsnoted.service.d
        printf '[Service]\nWatchdogSec=3s\n' > /etc/systemd/system/fsnoted.service.d/e2e-watchdog.conf
        systemctl daemon-reload
        note "WatchdogSec= shortened to 3s by a drop-in so that 3 periods fit the test"
        WD=3000000
    fi
fi

[ "$(systemctl is-active fsnoted.service)" = inactive ] ||
    bad "fsnoted.service is $(systemctl is-active fsnoted.service) before anything asked for it"

if timeout 30 systemctl enable --now fsnoted.socket > "$SCRATCH/enable.log" 2>&1; then
    ok "systemctl enable --now fsnoted.socket"
else
    bad "systemctl enable --now fsnoted.socket failed: $(tail -3 "$SCRATCH/enable.log")"
    finish
fi
SOCK=/run/fsnoted/fsnoted.sock
[ -S "$SOCK" ] && [ "$(systemctl is-active fsnoted.socket)" = active ] &&
    ok "fsnoted.socket is listening on $SOCK" ||
    bad "fsnoted.socket: $(systemctl is-active fsnoted.socket), listens on '$(unit_prop fsnoted.socket Listen)'"
st=$(systemctl is-active fsnoted.service)
[ "$st" = inactive ] &&
    ok "fsnoted.service is still inactive after enabling the socket" ||
    bad "fsnoted.service is $st before the first client (expected inactive)"

# --- socket activation by an ordinary user --------------------------------

HOMEW=/home/$U/w
runuser -u "$U" -- mkdir -p "$HOMEW"
if watch_as "$U" user "$HOMEW"; then
    ok "$U ran fsnotectl watch --json $HOMEW: Watches established."
else
    bad "fsnotectl watch as $U never established: $(head -c 300 "$SCRATCH/user.err")"
fi
USER_WATCH=$WATCH_PID
st=$(systemctl is-active fsnoted.service)
[ "$st" = active ] &&
    ok "the first connection started fsnoted.service through socket activation" ||
    bad "fsnoted.service is $st after the first client"
MAINPID=$(unit_prop fsnoted.service MainPID)
NRESTARTS=$(unit_prop fsnoted.service NRestarts)
[ "$(readlink "/proc/$MAINPID/ns/mnt")" = "$(readlink /proc/1/ns/mnt)" ] ||
    note "fsnoted runs in a mount namespace of its own (the unit's sandboxing)"

runuser -u "$U" -- sh -c "cd $HOMEW && echo hello > f1 && mv f1 f2 && chmod 600 f2 && rm f2 && touch END"
if wait_until 10 has_event user create "$HOMEW/END"; then
    miss=""
    has_event user create "$HOMEW/f1" || miss="$miss create"
    has_rename user "$HOMEW/f1" "$HOMEW/f2" || miss="$miss rename"
    has_event user delete "$HOMEW/f2" || miss="$miss delete"
    jq_any "$SCRATCH/user.out" --argjson u "$UID_U" --arg p "$HOMEW/END" 'select(.path == $p and .uid == $u)' ||
        miss="$miss uid"
    [ -z "$miss" ] &&
        ok "$U received create, rename, delete of files in $HOMEW, with her uid" ||
        bad "$U's events lack:$miss; got: $(tr '\n' ' ' < "$SCRATCH/user.out" | head -c 600)"
else
    bad "$U received no event for $HOMEW/END: $(tr '\n' ' ' < "$SCRATCH/user.out" | head -c 600)"
fi
kill "$USER_WATCH" 2>/dev/null
wait "$USER_WATCH" 2>/dev/null

# --- Type=notify, journal --------------------------------------------------

# STATUS= is sent right after READY=1; the unit being active means READY=1
# arrived, StatusText shows the daemon's own line.
if wait_until 10 sh -c '[ -n "$(systemctl show -p StatusText --value fsnoted.service)" ]'; then
    ok "StatusText: $(unit_prop fsnoted.service StatusText)"
else
    bad "fsnoted.service has no StatusText (no STATUS= from the daemon)"
fi
if wait_until 10 journal_has '^fsnoted .* started'; then
    line=$(journalctl --no-pager -o cat -u fsnoted.service | grep -E '^fsnoted .* started' | head -1)
    ok "journalctl -u fsnoted: $line"
    # with CAP_SYS_ADMIN in the container, only the unit's capability set
    # or system call filter could push the daemon down to inotify
    case $line in
    *"backend fanotify"*) ok "under the unit's hardening the daemon runs the fanotify backend" ;;
    *) bad "the daemon did not get fanotify under the unit's hardening: $line" ;;
    esac
else
    bad "no 'fsnoted ... started' line in journalctl -u fsnoted"
fi

# --- hardening: real paths from /home, /tmp, /var and /srv ----------------

# ProtectHome=, PrivateTmp=, ProtectSystem= and friends change the daemon's
# view of the file system; events must still carry the paths the user sees.
mkdir -p /srv/e2e /var/lib/fsnote-e2e
chmod 755 /srv/e2e /var/lib/fsnote-e2e
if watch_as "$U" hard "/home/$U" /tmp /var /srv; then
    runuser -u "$U" -- touch "/home/$U/h-home" /tmp/h-tmp /var/tmp/h-vartmp
    touch /srv/e2e/h-srv /var/lib/fsnote-e2e/h-varlib
    want=("/home/$U/h-home" /tmp/h-tmp /var/tmp/h-vartmp /srv/e2e/h-srv /var/lib/fsnote-e2e/h-varlib)
    all_created() {
        local p
        for p in "$@"; do
            has_event hard create "$p" || return 1
        done
    }
    wait_until 10 all_created "${want[@]}"
    miss=""
    for p in "${want[@]}"; do
        has_event hard create "$p" || miss="$miss $p"
    done
    [ -z "$miss" ] &&
        ok "under the unit's hardening, $U got events with real paths: ${want[*]}" ||
        bad "no create event for:$miss; got: $(jq -c '[.type, .path]' "$SCRATCH/hard.out" 2>/dev/null | tr '\n' ' ' | head -c 800)"
else
    bad "watch on /home/$U /tmp /var /srv never established: $(head -c 300 "$SCRATCH/hard.err")"
fi
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null

# --- a sandboxed client: PrivateTmp=, ProtectHome=tmpfs, BindPaths= --------

# A service using libfsnote (fsnotectl) in a mount namespace of its own: a
# private /tmp, an empty /home with one directory bound in.  The daemon
# finds those directories by their descriptors, and the service must get
# events under its own paths.
mkdir -p /srv/e2e-share /run/systemd/system
chmod 777 /srv/e2e-share
cat > /run/systemd/system/fsnote-sandboxed.service <<EOF
[Service]
User=$U
PrivateTmp=yes
ProtectHome=tmpfs
BindPaths=/srv/e2e-share:/home/shared
ExecStart=/usr/bin/timeout 120 /usr/local/bin/fsnotectl watch --json /tmp /home/shared
StandardOutput=truncate:$SCRATCH/sandboxed.out
StandardError=truncate:$SCRATCH/sandboxed.err
EOF
systemctl daemon-reload
systemctl start fsnote-sandboxed.service
sandboxed_up() { grep -q 'Watches established.' "$SCRATCH/sandboxed.err"; }
if wait_until 15 sandboxed_up; then
    spid=$(unit_prop fsnote-sandboxed.service MainPID)
    # its private /tmp exists only in its own mount namespace
    nsenter -t "$spid" -m runuser -u "$U" -- touch /tmp/sandboxed-tmp
    touch /srv/e2e-share/sandboxed-share
    both() { has_event sandboxed create /tmp/sandboxed-tmp && has_event sandboxed create /home/shared/sandboxed-share; }
    if wait_until 10 both; then
        ok "a service with PrivateTmp=yes, ProtectHome=tmpfs, BindPaths= got events under its own paths: /tmp/sandboxed-tmp, /home/shared/sandboxed-share"
    else
        bad "the sandboxed service's events: $(jq -c '[.type, .path]' "$SCRATCH/sandboxed.out" 2>/dev/null | tr '\n' ' ' | head -c 600) $(head -c 300 "$SCRATCH/sandboxed.err")"
    fi
    ! grep -q 'systemd-private' "$SCRATCH/sandboxed.out" ||
        bad "the sandboxed service got the daemon's view of its /tmp, not its own"
else
    bad "the sandboxed service's watch never established: $(head -c 300 "$SCRATCH/sandboxed.err")"
fi
systemctl stop fsnote-sandboxed.service

# the pid rule under the unit, which hides other users' processes from the
# daemon (ProtectProc=invisible): the acting pid still reaches the actor's
# own uid, through a pidfd
if watch_as "$U" pids "/home/$U"; then
    # the shell makes the file itself and lives on while the daemon looks
    # its uid up (a process gone by then is nobody's: its pid is hidden)
    runuser -u "$U" -- sh -c "echo \$\$ > /home/$U/pid-own.pid; : > /home/$U/pid-own; sleep 3" &
    wait_until 5 test -s "/home/$U/pid-own.pid"
    own=$(cat "/home/$U/pid-own.pid")
    if wait_until 10 has_event pids create "/home/$U/pid-own"; then
        jq_any "$SCRATCH/pids.out" --arg p "/home/$U/pid-own" --argjson pid "$own" 'select(.path == $p and .pid == $pid)' &&
            ok "with ProtectProc=invisible, $U still sees the pid ($own) of her own process" ||
            bad "$U's own pid $own is missing: $(grep pid-own "$SCRATCH/pids.out" | head -c 300)"
    else
        bad "no event for /home/$U/pid-own"
    fi
else
    bad "watch of /home/$U for pids never established"
fi
kill "$WATCH_PID" 2>/dev/null
wait "$WATCH_PID" 2>/dev/null

# --- watchdog --------------------------------------------------------------

# Three periods without a restart, and systemd saw pings: its watchdog
# timestamp moves only when WATCHDOG=1 arrives.
WD_RUN=$(usec "$(unit_prop fsnoted.service WatchdogUSec)")
if [ "${WD_RUN:-0}" -gt 0 ]; then
    ts1=$(unit_prop fsnoted.service WatchdogTimestampMonotonic)
    secs=$(((3 * WD_RUN + 999999) / 1000000 + 1))
    sleep "$secs"
    ts2=$(unit_prop fsnoted.service WatchdogTimestampMonotonic)
    pid2=$(unit_prop fsnoted.service MainPID)
    nr2=$(unit_prop fsnoted.service NRestarts)
    st=$(systemctl is-active fsnoted.service)
    if [ "$st" = active ] && [ "$pid2" = "$MAINPID" ] && [ "$nr2" = "$NRESTARTS" ] &&
        [ "$ts2" -gt "$ts1" ] && ! journal_has 'Watchdog timeout'; then
        ok "watchdog: ${secs}s (> 3 x WatchdogUSec=$(unit_prop fsnoted.service WatchdogUSec)) later still active, MainPID $pid2, NRestarts $nr2, pings seen"
    else
        bad "watchdog: after ${secs}s $st, MainPID $MAINPID -> $pid2, NRestarts $NRESTARTS -> $nr2, last ping $ts1 -> $ts2"
    fi
else
    bad "watchdog: the running service has WatchdogUSec=$(unit_prop fsnoted.service WatchdogUSec)"
fi

# --- reload ----------------------------------------------------------------

CONFIG=$(unit_prop fsnoted.service ExecStart | grep -oE -- '(--config|-c)[= ][^ ;]+' | head -1 | sed -E 's/^(--config|-c)[= ]//')
CONFIG=${CONFIG:-/etc/fsnoted/fsnoted.json}
limit() { fsnotectl status --json | jq -r '.limits.max_connections_per_uid'; }
before=$(limit 2>"$SCRATCH/status.err")
if [ -z "$before" ] || [ "$before" = null ]; then
    bad "fsnotectl status --json has no .limits.max_connections_per_uid: $(fsnotectl status --json 2>&1 | head -c 400)"
else
    want=$((before == 7 ? 9 : 7))
    mkdir -p "$(dirname "$CONFIG")"
    if [ -s "$CONFIG" ]; then
        jq --argjson n "$want" '.max_connections_per_uid = $n' "$CONFIG" > "$CONFIG.new" && mv "$CONFIG.new" "$CONFIG"
    else
        echo "{ \"max_connections_per_uid\": $want }" > "$CONFIG"
    fi
    if timeout 30 systemctl reload fsnoted.service > "$SCRATCH/reload.log" 2>&1; then
        if wait_until 10 sh -c "[ \"\$(fsnotectl status --json | jq -r .limits.max_connections_per_uid)\" = $want ]"; then
            pid2=$(unit_prop fsnoted.service MainPID)
            [ "$pid2" = "$MAINPID" ] &&
                ok "systemctl reload fsnoted: max_connections_per_uid $before -> $want from $CONFIG, same MainPID" ||
                bad "reload restarted the daemon (MainPID $MAINPID -> $pid2)"
        else
            bad "after systemctl reload, status still says max_connections_per_uid $(limit 2>&1)"
        fi
        wait_until 5 journal_has 'configuration reloaded' ||
            bad "no 'configuration reloaded' line in the journal"
    else
        bad "systemctl reload fsnoted failed: $(tail -3 "$SCRATCH/reload.log")"
    fi
fi

# --- stop drains clients ---------------------------------------------------

if watch_as "$U" drain "$HOMEW"; then
    DRAIN=$WATCH_PID
    runuser -u "$U" -- touch "$HOMEW/before-stop"
    wait_until 10 has_event drain create "$HOMEW/before-stop" ||
        bad "no event before the stop"
    if timeout 30 systemctl stop fsnoted.service > "$SCRATCH/stop.log" 2>&1; then
        rc=0
        timeout 15 tail --pid="$DRAIN" -f /dev/null || rc=124
        [ "$rc" -eq 0 ] && { wait "$DRAIN"; rc=$?; }
        st=$(systemctl is-active fsnoted.service)
        res=$(unit_prop fsnoted.service Result)
        if [ "$rc" -eq 0 ] && [ "$st" = inactive ] && [ "$res" = success ]; then
            ok "systemctl stop fsnoted: the running watch exited 0, the service is $st ($res)"
        else
            bad "systemctl stop fsnoted: watch exit $rc, service $st ($res); watch said: $(tail -c 300 "$SCRATCH/drain.err")"
        fi
        if grep -qi 'shut' "$SCRATCH/drain.out" "$SCRATCH/drain.err"; then
            ok "the watch saw the shutdown record: $(grep -hi 'shut' "$SCRATCH/drain.out" "$SCRATCH/drain.err" | head -1 | head -c 200)"
        else
            bad "the watch printed no shutdown record: $(tail -c 300 "$SCRATCH/drain.out") / $(tail -c 300 "$SCRATCH/drain.err")"
        fi
        wait_until 5 journal_has '^fsnoted stopped' ||
            bad "no 'fsnoted stopped' line in the journal"
    else
        bad "systemctl stop fsnoted failed: $(tail -3 "$SCRATCH/stop.log")"
    fi
else
    bad "watch before the stop never established: $(head -c 300 "$SCRATCH/drain.err")"
fi

# the socket stays, and the next client starts the daemon again
if runuser -u "$U" -- timeout 15 fsnotectl status --json > "$SCRATCH/again.out" 2>&1 &&
    [ "$(systemctl is-active fsnoted.service)" = active ]; then
    ok "after the stop, the next client started fsnoted.service again through the socket"
else
    bad "after the stop, fsnotectl status: $(head -c 300 "$SCRATCH/again.out"), service $(systemctl is-active fsnoted.service)"
fi

journal_phase1
