#!/bin/bash
# fsnote-relay against a three-node JetStream cluster on loopback, stream
# with three replicas: the node leading the stream is SIGKILLed during a
# burst; the stream still holds every record exactly once.  Needs root,
# nats-server and a relay built with libnats; skips (77) otherwise.
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/nats.sh"
nats_require
# three brokers and an election take ~20 s: once per CI run, in the plain build
[ -z "${FSNOTE_SKIP_SLOW:-}" ] || { echo "SKIP: FSNOTE_SKIP_SLOW is set"; exit 77; }
e2e_enter_namespace "$@"
trap nats_cleanup EXIT

e2e_start_daemon
read -r P1 P2 P3 C1 C2 C3 < <(free_ports 6)
P=("" "$P1" "$P2" "$P3")
C=("" "$C1" "$C2" "$C3")
for i in 1 2 3; do
    routes=""
    for j in 1 2 3; do [ "$j" = "$i" ] || routes="$routes${routes:+,}nats://127.0.0.1:${C[j]}"; done
    nats_start "$i" "${P[i]}" --cluster_name fsnote-test --cluster "nats://127.0.0.1:${C[i]}" --routes "$routes"
done
URLS="nats://127.0.0.1:$P1,nats://127.0.0.1:$P2,nats://127.0.0.1:$P3"
SRC=$E2E_TMP/src
mkdir -p "$SRC"
cat > "$E2E_TMP/relay.json" <<JSON
{ "host": "hostC", "paths": ["$SRC"], "window": 64, "ack_timeout_ms": 1000,
  "nats": { "url": "$URLS" },
  "stream": { "name": "FSNOTE", "replicas": 3, "duplicate_window_s": 300 } }
JSON
relay_start "$E2E_TMP/relay.json"

# who leads the stream, asked of any node that answers
leader=""
for _ in $(seq 100); do
    leader=$("$JSDUMP" "$URLS" FSNOTE --leader 2>/dev/null) && [ -n "$leader" ] && break
    sleep 0.1
done
[ -n "$leader" ] || e2e_fail "the stream has no leader"
li=${leader#n}
alive=""
for j in 1 2 3; do [ "$j" = "$li" ] || alive="$alive${alive:+,}nats://127.0.0.1:${P[j]}"; done

burst() { for i in $(seq "$2" "$3"); do : > "$SRC/$1$i"; done; }
( burst c 1 1500 ) &
BP=$!
for _ in $(seq 500); do [ "$(stream_count "$URLS")" -gt 200 ] && break; sleep 0.01; done
nats_kill "$li"
wait "$BP"
wait_creates "$alive" "$SRC" c 1500
exactly_once "$E2E_TMP/stream.json" "$SRC" c 1500
new=$("$JSDUMP" "$alive" FSNOTE --leader)
[ -n "$new" ] && [ "$new" != "$leader" ] || e2e_fail "no new leader (was $leader, now '$new')"
e2e_pass "three-node cluster, leader $leader killed during a burst: 1500 creates, each exactly once (leader now $new)"

relay_stop TERM
sed "s/^/relay log: /" "$E2E_TMP/relay.log"
no_sanitizer_reports
e2e_summary
