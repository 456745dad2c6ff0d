#!/bin/bash
# End to end under real systemd: boots a Debian container (systemd-nspawn,
# systemd as PID 1), installs the built project into it with `make install
# DESTDIR=...`, and lets tests/e2e/nspawn/check.sh do at boot what an
# administrator and a user would do: daemon-reload, `systemctl enable --now
# fsnoted.socket`, `fsnotectl watch` as an ordinary user (which must start the
# service through the socket), then readiness, watchdog, reload, journal,
# stop, and events from the paths the unit's hardening touches; then the
# journal across `systemctl restart fsnoted` and across a reboot (the
# container powers off and this script boots it again on the same root).
# Then the other way round: a daemon on the host and a client in a second
# container, with the socket and a directory bound in.
#
# The container root is debootstrapped once into $abs_top_builddir/nspawn-root
# (built aside and renamed into place only when complete, so an interrupted
# run never leaves a half root behind); each run works on a fresh copy of it
# that is removed on exit, so runs never see each other's state.  The checks
# write their verdicts into the copy; this script prints them and fails if
# any failed or if the checks did not run to the end.
#
# Skips (77) only when a container cannot run here at all -- not root, no
# systemd-nspawn or debootstrap, no root and no way to fetch one, a container
# that never boots -- and when FSNOTE_SKIP_SLOW=1 (the sanitizer build and
# distcheck set it).  FSNOTE_NSPAWN_INSTALL names the install target(s),
# "install" unless set; FSNOTE_NSPAWN_MIRROR overrides the Debian mirror;
# FSNOTE_NSPAWN_DROPIN=FILE adds FILE as a drop-in for fsnoted.service (to
# find which hardening setting breaks what); FSNOTE_NSPAWN_KEEP=1 keeps the
# run's copy of the root for a look afterwards.
set -euo pipefail
. "$(dirname "$0")/common.sh"

SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
TOP=${abs_top_builddir:-$E2E_TOP}
HELPERS=$SRC/tests/e2e/nspawn
SUITE=bookworm
# What the checks need beyond systemd: the daemon's and the library's runtime
# libraries (libsystemd0 comes with systemd) and the tools check.sh uses.
PACKAGES=systemd,systemd-sysv,dbus,libevent-2.1-7,libjansson4,jq,procps,util-linux,passwd,libnats3.4
CACHE=$TOP/nspawn-root
STAMP=.fsnote-nspawn-root
BOOT_TIMEOUT=200

skip() { echo "SKIP: $*"; exit 77; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "${FSNOTE_SKIP_SLOW:-0}" = 1 ] && skip "FSNOTE_SKIP_SLOW=1 (this test boots a container)"
[ "$(id -u)" -eq 0 ] || skip "needs root to run systemd-nspawn"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (package systemd-container)"
[ -x "$FSNOTED" ] || e2e_fail "$FSNOTED is not built"
[ -x "$FSNOTECTL" ] || e2e_fail "$FSNOTECTL is not built"

T0=${NSPAWN_T0:-$(now)}
export NSPAWN_T0=$T0

# The mirror this machine's apt uses, so that the root comes from the same
# place as the host's packages.
mirror() {
    if [ -n "${FSNOTE_NSPAWN_MIRROR:-}" ]; then
        echo "$FSNOTE_NSPAWN_MIRROR"
        return
    fi
    local m
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE '(https?|file)://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ')
    echo "${m:-http://deb.debian.org/debian}"
}

# Makes sure $CACHE holds a complete root for $SUITE with $PACKAGES.
ensure_root() {
    exec 9> "$TOP/nspawn-root.lock"
    flock 9
    if [ "$(cat "$CACHE/$STAMP" 2>/dev/null)" = "$SUITE $PACKAGES" ]; then
        exec 9>&-
        return 0
    fi
    command -v debootstrap >/dev/null || skip "no cached root in $CACHE and debootstrap is missing"
    local tmp t m
    m=$(mirror)
    tmp=$(mktemp -d "$TOP/nspawn-root.tmp.XXXXXX")
    t=$(now)
    echo "# debootstrap $SUITE from $m into $CACHE (once; later runs reuse it)"
    if ! timeout 900 debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp/root" "$m" \
            > "$tmp/debootstrap.log" 2>&1; then
        tail -5 "$tmp/debootstrap.log"
        rm -rf --one-file-system "$tmp"
        skip "debootstrap $SUITE from $m failed (no network or no Debian keyring?)"
    fi
    # a clean apt cache keeps every per-run copy small
    rm -rf "$tmp/root/var/cache/apt/archives/"*.deb
    echo "$SUITE $PACKAGES" > "$tmp/root/$STAMP"
    rm -rf --one-file-system "$CACHE"
    mv -T "$tmp/root" "$CACHE"
    rm -rf --one-file-system "$tmp"
    echo "# debootstrap took $(elapsed "$t" "$(now)") s"
    exec 9>&-
}

RUN=""
NSPAWN_PID=""
cleanup() {
    if [ -n "$NSPAWN_PID" ]; then
        kill "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    if [ -n "$RUN" ] && [ "${FSNOTE_NSPAWN_KEEP:-0}" = 1 ]; then
        echo "# kept $RUN"
    elif [ -n "$RUN" ]; then
        # nspawn mounts in its own namespace; nothing should be left, but a
        # leftover mount must never let rm reach outside the copy
        awk -v r="$RUN/" 'index($5, r) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
        rm -rf --one-file-system "$RUN"
    fi
}
trap cleanup EXIT

ensure_root

# The copy lives on a loop-mounted ext4 of its own, as a machine's root
# would: a directory on the build tree's disk would share that filesystem
# with the host, and the daemon's filesystem mark would then see (and its
# queue overflow with) everything the host writes there.  The mount lives in
# a private mount namespace, so it goes away with this script.
if [ -z "${NSPAWN_IN_NS:-}" ]; then
    export NSPAWN_IN_NS=1
    exec unshare -m --propagation private bash "$0" "$@"
fi
RUN=$(mktemp -d "$TOP/nspawn-run.XXXXXX")
ROOT=$RUN/root
truncate -s 2G "$RUN/root.img"
mkfs.ext4 -q -F -L fsnote-e2e "$RUN/root.img"
mkdir "$ROOT"
mount -o loop "$RUN/root.img" "$ROOT"
cp -a "$CACHE/." "$ROOT/"

# --- install, as the administrator would -----------------------------------

# the parent make's flags (jobserver, -n, -k) are not ours to inherit
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        make -C "$TOP" ${FSNOTE_NSPAWN_INSTALL:-install} DESTDIR="$ROOT" > "$RUN/install.log" 2>&1; then
    tail -20 "$RUN/install.log" >&2
    e2e_fail "make install DESTDIR=$ROOT failed"
fi
for f in fsnoted.socket fsnoted.service; do
    unit=$(find "$ROOT" -xdev -path '*/systemd/system/*' -name "$f" -not -path "$ROOT/etc/*" | head -1)
    [ -n "$unit" ] || e2e_fail "make install put no $f under a systemd/system directory"
    case ${unit#"$ROOT"} in
    /usr/local/lib/systemd/system/* | /usr/lib/systemd/system/* | /lib/systemd/system/*)
        ;;
    *)  # an install directory systemd does not search: where an
        # administrator would put it
        cp "$unit" "$ROOT/etc/systemd/system/$f"
        echo "# $f installed to ${unit#"$ROOT"}, which systemd does not search: copied to /etc/systemd/system"
        ;;
    esac
done
e2e_pass "make install DESTDIR=<container root>: fsnoted, fsnotectl, libfsnote and the units installed"

mkdir -p "$ROOT/fsnote-e2e/out"
install -m 0755 "$HELPERS/check.sh" "$ROOT/fsnote-e2e/check.sh"
install -m 0644 "$HELPERS/fsnote-e2e.service" "$ROOT/etc/systemd/system/fsnote-e2e.service"
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf ../fsnote-e2e.service "$ROOT/etc/systemd/system/multi-user.target.wants/fsnote-e2e.service"
RES=$ROOT/fsnote-e2e/out/results
# a drop-in for fsnoted.service, to find which setting breaks what
if [ -n "${FSNOTE_NSPAWN_DROPIN:-}" ]; then
    mkdir -p "$ROOT/etc/systemd/system/fsnoted.service.d"
    cp "$FSNOTE_NSPAWN_DROPIN" "$ROOT/etc/systemd/system/fsnoted.service.d/zz-e2e-extra.conf"
    echo "# with the drop-in $FSNOTE_NSPAWN_DROPIN"
fi

# --- boot ------------------------------------------------------------------

# nspawn's own seccomp filter answers EPERM to fanotify_init, fanotify_mark
# and open_by_handle_at even with CAP_SYS_ADMIN kept; on a real machine only
# the unit's SystemCallFilter= stands between the daemon and these calls, so
# let them through the container's and leave the unit's to judge.
T1=$(now)
TB=""
boot() {
    timeout -k 10 "$BOOT_TIMEOUT" systemd-nspawn -q -D "$ROOT" -b --register=no --keep-unit \
        --private-network --machine=fsnote-e2e \
        --system-call-filter='fanotify_init fanotify_mark open_by_handle_at name_to_handle_at' \
        < /dev/null >> "$RUN/console.log" 2>&1 &
    NSPAWN_PID=$!
    while kill -0 "$NSPAWN_PID" 2>/dev/null; do
        if [ -z "$TB" ] && grep -q '^booted' "$RES" 2>/dev/null; then
            TB=$(now)
        fi
        sleep 0.1
    done
    rc=0
    wait "$NSPAWN_PID" || rc=$?
    NSPAWN_PID=""
}
boot
# the checks asked for a reboot (to see the journal across it): the
# container powered off, and boots again on the same root
if [ "$rc" -eq 0 ] && grep -q '^reboot$' "$RES" 2>/dev/null; then
    TR=$(now)
    boot
    echo "# rebooted: the second boot ran $(elapsed "$TR" "$(now)") s"
fi
T2=$(now)

if ! grep -q '^booted' "$RES" 2>/dev/null; then
    tail -30 "$RUN/console.log"
    skip "the container never ran its checks (systemd-nspawn exit $rc): containers cannot boot here"
fi
[ -n "$TB" ] || TB=$T2
e2e_pass "container booted systemd $(chroot "$ROOT" dpkg-query -W -f '${Version}' systemd) and started the checks in $(elapsed "$T1" "$TB") s"

# --- a client in a container, the daemon outside ----------------------------

# The other way round: the daemon on the host, and a client in a container
# (this root, booted no more) with the daemon's socket and one directory
# bound in, as an ordinary user of the container.  Its descriptor is on the
# container's mount; it must get events under the container's path.
second_container() {
    local share=$RUN/share sock=$RUN/sock hostd
    mkdir -p "$share" "$sock"
    # a filesystem of its own, so that nothing else written on the build
    # tree's disk reaches the mark
    mount -t tmpfs -o mode=0755 e2e-share "$share"
    chmod 0755 "$RUN" "$sock"
    echo '{ "latency_ms": 0 }' > "$RUN/host.json"
    "$FSNOTED" --foreground --socket "$sock/fsnoted.sock" --config "$RUN/host.json" \
        2> "$RUN/host-daemon.log" &
    hostd=$!
    for _ in $(seq 250); do [ -S "$sock/fsnoted.sock" ] && break; sleep 0.02; done
    chmod 0666 "$sock/fsnoted.sock"
    timeout -k 5 60 systemd-nspawn -q --pipe -D "$ROOT" --register=no --keep-unit --private-network \
        --machine=fsnote-e2e-client --bind="$sock:/run/fsnoted" --bind="$share:/data" \
        --user=fsnote-user --setenv=LD_LIBRARY_PATH=/usr/local/lib \
        /usr/local/bin/fsnotectl watch --json --timeout 40 /data \
        < /dev/null > "$RUN/client.out" 2> "$RUN/client.err" &
    local client=$! got=0
    for _ in $(seq 1500); do
        grep -q 'Watches established.' "$RUN/client.err" 2>/dev/null && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.02
    done
    echo hello > "$share/from-the-host"
    for _ in $(seq 1000); do
        e2e_jq_any "$RUN/client.out" '.path == "/data/from-the-host" and .type == "create"' &&
            { got=1; break; }
        kill -0 "$client" 2>/dev/null || break
        sleep 0.02
    done
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    kill "$hostd" 2>/dev/null || true
    wait "$hostd" 2>/dev/null || true
    if [ "$got" = 1 ]; then
        e2e_pass "a client in a second container (socket and a directory bound in, as fsnote-user) got /data/from-the-host, its own path"
    else
        echo "FAIL: the client in a container: $(head -c 400 "$RUN/client.err") $(head -c 400 "$RUN/client.out")"
        tail -5 "$RUN/host-daemon.log"
        failed=$((failed + 1))
    fi
}

# --- verdicts --------------------------------------------------------------

failed=0
while IFS= read -r line; do
    case $line in
    "ok: "*)   e2e_pass "${line#ok: }" ;;
    "FAIL: "*) echo "$line"; failed=$((failed + 1)) ;;
    "note: "*) echo "# ${line#note: }" ;;
    esac
done < "$RES"
if ! grep -q '^END$' "$RES"; then
    echo "FAIL: the checks did not finish (timeout after $BOOT_TIMEOUT s or a crash); console:"
    tail -40 "$RUN/console.log"
    failed=$((failed + 1))
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the container did not power off by itself (systemd-nspawn exit $rc); console:"
    tail -40 "$RUN/console.log"
    failed=$((failed + 1))
fi
echo "# container ran $(elapsed "$T1" "$T2") s; whole test $(elapsed "$T0" "$T2") s"
[ "$rc" -eq 0 ] && second_container
if [ "$failed" -gt 0 ]; then
    echo "--- the container's journal for fsnoted:"
    if [ -d "$ROOT/var/log/journal" ]; then
        journalctl --no-pager -D "$ROOT/var/log/journal" -u fsnoted.socket -u fsnoted.service 2>&1 || true
    fi
    cat "$ROOT/fsnote-e2e/out/journal.txt" 2>/dev/null || echo "(none written)"
    echo "$E2E_PASSED passed, $failed failed"
    exit 1
fi
e2e_summary
