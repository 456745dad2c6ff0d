#!/bin/bash
# End to end, real kernel: clients in other mount namespaces, in a chroot
# and in an unprivileged user namespace, as nobody.  The subscription is the
# directory object of the client's descriptor, reached through the
# filesystem's handles (fanotify), and paths come back in the client's own
# view: the path it opened, sent as a label and never trusted for access.
# No name outside what the descriptor reaches is ever delivered, and the
# access rule still holds.  inotify follows paths, so it serves a chroot
# (same namespace) and refuses another mount namespace with a clear error.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

CHROOT_WATCH=$E2E_TOP/tests/e2e/ns/chroot-watch
[ -x "$CHROOT_WATCH" ] || { echo "SKIP: $CHROOT_WATCH is not built"; exit 77; }
chmod 0755 "$E2E_TMP"

# bg_watch NAME COMMAND...: runs a watching command in the background,
# output in $E2E_TMP/NAME.out, and waits until it is established ("Watches
# established." or chroot-watch's "ready"); returns 1 if it exited first.
bg_watch() {
    local name=$1; shift
    : > "$E2E_TMP/$name.out"
    "$@" > "$E2E_TMP/$name.out" 2> "$E2E_TMP/$name.err" &
    E2E_BG_PIDS+=("$!")
    local p=$!
    for _ in $(seq 500); do
        grep -q 'Watches established.\|^ready' "$E2E_TMP/$name.err" 2>/dev/null && return 0
        kill -0 "$p" 2>/dev/null || return 1
        sleep 0.02
    done
    e2e_fail "$name never established: $(cat "$E2E_TMP/$name.err")"
}

wait_json() {  # NAME PATH: an event for PATH (client's view) in NAME's output
    for _ in $(seq 500); do
        e2e_jq_any "$E2E_TMP/$1.out" '.path == $p or .dest == $p' --arg p "$2" && return 0
        sleep 0.02
    done
    e2e_fail "$1: no event for $2 within 10 s: $(cat "$E2E_TMP/$1.out")"
}

has_json() {  # NAME FILTER
    e2e_jq_any "$E2E_TMP/$1.out" "$2"
}

# writes create, modify, rename and delete in SRV/sub; expects them in
# NAME's JSON output under VIEW (the client's path for SRV)
ops_seen() {  # NAME SRV VIEW
    local n=$1 srv=$2 view=$3
    echo hi > "$srv/sub/f"
    mv "$srv/sub/f" "$srv/sub/g"
    rm "$srv/sub/g"
    touch "$srv/sub/end"
    wait_json "$n" "$view/sub/end"
    has_json "$n" ".type == \"create\" and .path == \"$view/sub/f\"" || e2e_fail "$n: no create: $(cat "$E2E_TMP/$n.out")"
    has_json "$n" ".type == \"modify\" and .path == \"$view/sub/f\"" || e2e_fail "$n: no modify"
    has_json "$n" ".type == \"rename\" and .path == \"$view/sub/f\" and .dest == \"$view/sub/g\"" ||
        e2e_fail "$n: no rename: $(cat "$E2E_TMP/$n.out")"
    has_json "$n" ".type == \"delete\" and .path == \"$view/sub/g\"" || e2e_fail "$n: no delete"
    ! has_json "$n" "(.path // \"\" | startswith(\"$view\") | not) and .type != \"dropped\"" ||
        e2e_fail "$n: a path outside the client's view: $(cat "$E2E_TMP/$n.out")"
}

for BACKEND in fanotify inotify; do
    B=$E2E_TMP/$BACKEND
    SRV=$B/srv/data
    mkdir -p "$SRV/sub" "$SRV/other" "$SRV/priv" "$B/view/ctr" "$B/view/sub"
    chmod -R 0777 "$B/srv"
    chmod 0700 "$SRV/priv"
    chmod 0755 "$B" "$B/view"
    e2e_start_daemon --backend "$BACKEND"

    # 1. another mount namespace, the directory at another path
    if bg_watch ctr-$BACKEND unshare -m --propagation private sh -c \
        "mount --bind '$SRV' '$B/view/ctr' && exec ${NOBODY[*]} '$USER_FSNOTECTL' watch --json '$B/view/ctr'"; then
        [ "$BACKEND" = fanotify ] || e2e_fail "inotify accepted a directory of another mount namespace"
        ops_seen ctr-$BACKEND "$SRV" "$B/view/ctr"
        echo secret > "$SRV/priv/hidden"
        touch "$SRV/sub/end2"
        wait_json ctr-$BACKEND "$B/view/ctr/sub/end2"
        ! grep -q hidden "$E2E_TMP/ctr-$BACKEND.out" || e2e_fail "a name from a 0700 directory reached nobody"
        e2e_pass "$BACKEND: nobody in another mount namespace, bind mount at another path: create, modify, rename, delete under its own paths; nothing from a private directory"
    else
        [ "$BACKEND" = inotify ] || e2e_fail "another mount namespace refused: $(cat "$E2E_TMP/ctr-$BACKEND.err")"
        msg=$(cat "$E2E_TMP/ctr-$BACKEND.err")
        [ "$(echo "$msg" | wc -l)" -eq 1 ] && echo "$msg" | grep -q 'another mount namespace' ||
            e2e_fail "inotify's refusal is not one clear line: $msg"
        e2e_pass "inotify: another mount namespace refused in one line: $msg"
    fi
    e2e_stop_bg

    # 2. a bind mount of a subdirectory exposes that subdirectory only
    if [ "$BACKEND" = fanotify ]; then
        bg_watch sub unshare -m --propagation private sh -c \
            "mount --bind '$SRV/sub' '$B/view/sub' && exec ${NOBODY[*]} '$USER_FSNOTECTL' watch --json '$B/view/sub'" ||
            e2e_fail "subdirectory bind refused: $(cat "$E2E_TMP/sub.err")"
        echo x > "$SRV/other/outside"
        echo y > "$SRV/sub/inside"
        mv "$SRV/sub/inside" "$SRV/other/moved-out"
        touch "$SRV/sub/end3"
        wait_json sub "$B/view/sub/end3"
        ! grep -q 'outside\|moved-out\|/other' "$E2E_TMP/sub.out" || e2e_fail "a name from outside the bind mount: $(cat "$E2E_TMP/sub.out")"
        has_json sub ".type == \"delete\" and .path == \"$B/view/sub/inside\" and (.flags | index(\"renamed\"))" ||
            e2e_fail "the move out is not a delete flagged renamed: $(cat "$E2E_TMP/sub.out")"
        e2e_stop_bg
        e2e_pass "fanotify: a bind mount of a subdirectory yields nothing from outside it (a move out is a delete, renamed)"
    fi

    # 3. a chroot: paths as the client sees them, both backends
    CH=$B/chroot
    mkdir -p "$CH/data/sub"
    chmod -R 0777 "$CH"
    bg_watch chroot "$CHROOT_WATCH" "$FSNOTE_SOCKET" "$CH" 65534 /data ||
        e2e_fail "chroot client: $(cat "$E2E_TMP/chroot.err")"
    echo z > "$CH/data/sub/in-chroot"
    for _ in $(seq 500); do grep -q 'in-chroot' "$E2E_TMP/chroot.out" && break; sleep 0.02; done
    grep -q '^create /data/sub/in-chroot$' "$E2E_TMP/chroot.out" ||
        e2e_fail "chroot client got: $(cat "$E2E_TMP/chroot.out")"
    e2e_stop_bg
    e2e_pass "$BACKEND: a client in a chroot gets paths in its own view (/data/sub/in-chroot)"

    # 4. an unprivileged user namespace (unshare -Urm) as nobody
    if [ "$BACKEND" = fanotify ]; then
        NB=$B/nb
        mkdir -p "$NB/mnt"
        chown -R nobody "$NB"
        if "${NOBODY[@]}" unshare -Urm true 2>/dev/null; then
            bg_watch userns "${NOBODY[@]}" unshare -Urm sh -c \
                "mount --bind '$SRV' '$NB/mnt' && exec '$USER_FSNOTECTL' watch --json '$NB/mnt'" ||
                e2e_fail "user namespace client: $(cat "$E2E_TMP/userns.err")"
            ops_seen userns "$SRV" "$NB/mnt"
            e2e_stop_bg
            e2e_pass "fanotify: nobody in its own user and mount namespace (unshare -Urm) gets its own paths"
        else
            echo "note: unprivileged user namespaces are disabled here; the unshare -Urm case is not run"
        fi
    fi

    # 5. the label: a directory opened through a symbolic link keeps that name
    ln -sfn "$SRV" "$B/link"
    bg_watch link "${NOBODY[@]}" "$USER_FSNOTECTL" watch --json "$B/link" || e2e_fail "link: $(cat "$E2E_TMP/link.err")"
    touch "$SRV/sub/via-link"
    wait_json link "$B/link/sub/via-link"
    e2e_stop_bg
    e2e_pass "$BACKEND: paths start with the path the client opened ($B/link)"

    e2e_stop_daemon
done
e2e_summary
