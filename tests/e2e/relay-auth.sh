#!/bin/bash
# The NATS connection options of fsnote-relay and fsnotectl watch --nats
# against a real nats-server that demands TLS with client certificates
# and a user and password: the right options connect and records flow,
# a wrong password or an unknown CA is refused with one clear line.
# Needs root, nats-server, openssl and a build with libnats; skips (77)
# otherwise.
set -u
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/nats.sh"
nats_require
command -v openssl >/dev/null || { echo "SKIP: openssl is missing"; exit 77; }
e2e_enter_namespace "$@"
trap nats_cleanup EXIT

# a CA, a server certificate for 127.0.0.1 and a client certificate
P=$E2E_TMP/pki
mkdir -p "$P"
(
    cd "$P" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem &&
    openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
    printf 'subjectAltName=IP:127.0.0.1\n' > san.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.pem &&
    openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key -out client.csr &&
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -out client.pem &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout other.key -out other.pem
) > "$P/log" 2>&1 || e2e_fail "openssl: $(tail -3 "$P/log")"

e2e_start_daemon
read -r PORT < <(free_ports 1)
URL=nats://127.0.0.1:$PORT
nats_start 1 "$PORT" --tlsverify --tlscert "$P/server.pem" --tlskey "$P/server.key" --tlscacert "$P/ca.pem" \
    --user relay --pass s3cret
SRC=$E2E_TMP/src
mkdir -p "$SRC"
cat > "$E2E_TMP/relay.json" <<JSON
{ "host": "hostT", "paths": ["$SRC"],
  "nats": { "url": "$URL", "user": "relay", "password": "s3cret",
            "tls": { "ca": "$P/ca.pem", "cert": "$P/client.pem", "key": "$P/client.key" } } }
JSON
relay_start "$E2E_TMP/relay.json"
TLS=(--tls-ca "$P/ca.pem" --tls-cert "$P/client.pem" --tls-key "$P/client.key")

timeout 30 "$FSNOTECTL" watch --nats "$URL" --user relay --password s3cret "${TLS[@]}" --host hostT --json --count 1 --timeout 20 \
    > "$E2E_TMP/w.json" 2> "$E2E_TMP/w.err" &
W=$!
for _ in $(seq 250); do grep -q 'Watches established.' "$E2E_TMP/w.err" && break; sleep 0.02; done
grep -q 'Watches established.' "$E2E_TMP/w.err" || e2e_fail "the remote watch: $(cat "$E2E_TMP/w.err")"
: > "$SRC/over-tls"
wait "$W" || e2e_fail "no record over TLS: $(cat "$E2E_TMP/w.err")"
jq -e --arg p "$SRC/over-tls" '.type == "create" and .path == $p' "$E2E_TMP/w.json" >/dev/null ||
    e2e_fail "the record: $(cat "$E2E_TMP/w.json")"
e2e_pass "relay and remote watch over TLS with client certificates, user and password"

refused() {  # WHAT EXPECTED-TEXT fsnotectl options...
    local what=$1 text=$2 rc=0; shift 2
    timeout 30 "$FSNOTECTL" watch --nats "$URL" --quiet --timeout 2 "$@" > "$E2E_TMP/r.out" 2> "$E2E_TMP/r.err" || rc=$?
    [ "$rc" -eq 1 ] && [ "$(wc -l < "$E2E_TMP/r.err")" -eq 1 ] && grep -q "^fsnotectl: .*$text" "$E2E_TMP/r.err" ||
        e2e_fail "$what: status $rc, $(cat "$E2E_TMP/r.err")"
}
refused "a wrong password" "cannot connect to NATS" --user relay --password wrong "${TLS[@]}"
refused "no client certificate" "cannot connect to NATS" --user relay --password s3cret --tls-ca "$P/ca.pem"
refused "another CA" "cannot connect to NATS" --user relay --password s3cret --tls-ca "$P/other.pem" \
    --tls-cert "$P/client.pem" --tls-key "$P/client.key"
refused "a certificate without its key" "needs its key" --tls-cert "$P/client.pem"
refused "a missing CA file" "CA file" --tls-ca "$E2E_TMP/nonexistent.pem"
e2e_pass "wrong credentials, an unknown CA and incomplete options are refused in one line"

relay_stop TERM
no_sanitizer_reports
e2e_summary
