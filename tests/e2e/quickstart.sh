#!/bin/bash
# End to end: the demo writer of tools/quickstart, watched by fsnotectl on
# a private daemon (each backend), shows a newcomer every kind of change it
# promises: create, modify, rename and delete.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
e2e_enter_namespace "$@"

QUICKSTART=$(cd "$(dirname "$0")/../.." && pwd)/tools/quickstart
[ -x "$QUICKSTART" ] || e2e_fail "$QUICKSTART is missing"

for backend in fanotify inotify; do
    demo=$E2E_TMP/demo-$backend
    mkdir -p "$demo"
    e2e_start_daemon --backend "$backend"
    e2e_watch "$demo" --json
    "$QUICKSTART" --demo-writer "$demo" &
    writer=$!
    missing="create modify rename delete"
    for _ in $(seq 150); do  # the writer works once a second: 15 s at most
        left=""
        for t in $missing; do
            e2e_jq_any "$E2E_OUT" '.type == $t' --arg t "$t" || left="$left $t"
        done
        missing=$left
        [ -z "$missing" ] && break
        sleep 0.1
    done
    kill "$writer" 2>/dev/null || true
    wait "$writer" 2>/dev/null || true
    [ -z "$missing" ] || e2e_fail "$backend: the demo writer never showed:$missing"
    # and the delete is of a file the writer renamed
    e2e_jq_any "$E2E_OUT" '.type == "delete" and (.path | test("/renamed[0-9]+$"))' ||
        e2e_fail "$backend: the delete is not of a renamed file"
    e2e_stop_watch
    e2e_stop_daemon
    rm -f "$FSNOTE_SOCKET"
    e2e_pass "$backend: the quickstart demo shows create, modify, rename and delete"
done
e2e_summary
