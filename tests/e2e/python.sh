#!/bin/bash
# The Python package (python/fsnote) end to end: its tests against a fake
# daemon, then python/tests/test_daemon.py against the real fsnoted on a
# private socket in a private mount namespace, with each backend, as root
# and as nobody.  Uses Debian's /usr/bin/python3, whatever else is in PATH.
set -euo pipefail
. "$(dirname "$0")/common.sh"
e2e_require_root
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "SKIP: $PY is missing"; exit 77; }
SRC=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/python
e2e_enter_namespace "$@"

# the source tree may be read-only (distcheck) and is not nobody's to write
export PYTHONPATH=$SRC PYTHONDONTWRITEBYTECODE=1

run_py() {  # WHO NAME SCRIPT
    local who=$1 name=$2 script=$3
    local log=$E2E_TMP/py-$name.log
    local cmd=("$PY" "$script" -v)
    [ "$who" = nobody ] && cmd=("${NOBODY[@]}" "${cmd[@]}")
    if ! (cd / && "${cmd[@]}") > "$log" 2>&1; then
        cat "$log" >&2
        e2e_fail "python: $name"
    fi
    local skipped; skipped=$(grep -c "\.\.\. skipped" "$log" || true)
    e2e_pass "python: $name: $(grep -E '^Ran [0-9]+ tests' "$log"), $skipped skipped"
}

run_py nobody "codec and fake daemon (nobody)" "$SRC/tests/test_wire.py"

# pip, offline, as a user would install it (from a copy: pip builds in the
# tree), then the same tests against the installed copy
if "$PY" -m pip --version > /dev/null 2>&1; then
    cp -r "$SRC" "$E2E_TMP/pysrc"
    rm -rf "$E2E_TMP/pysrc/build" "$E2E_TMP/pysrc/"*.egg-info
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --quiet --no-build-isolation --no-index \
        --no-deps --target "$E2E_TMP/pip" "$E2E_TMP/pysrc" > "$E2E_TMP/pip.log" 2>&1 ||
        { cat "$E2E_TMP/pip.log" >&2; e2e_fail "pip install --no-build-isolation ./python"; }
    got=$(cd / && PYTHONPATH=$E2E_TMP/pip "$PY" -c 'import fsnote; print(fsnote.__file__)')
    [ "$got" = "$E2E_TMP/pip/fsnote/__init__.py" ] || e2e_fail "pip: fsnote imported from $got"
    PYTHONPATH=$E2E_TMP/pip run_py root "installed by pip" "$SRC/tests/test_wire.py"
else
    echo "python3-pip is missing: pip install not tested"
fi

# a directory nobody may not read, for the error test
mkdir -m 0700 "$E2E_TMP/private"
for backend in fanotify inotify; do
    e2e_start_daemon --backend "$backend"
    for who in root nobody; do
        dir=$E2E_TMP/py-$backend-$who
        mkdir "$dir"
        [ "$who" = nobody ] && chown nobody:nogroup "$dir"
        FSNOTE_TEST_DIR=$dir FSNOTE_TEST_BACKEND=$backend FSNOTE_TEST_FSNOTED=$FSNOTED \
            FSNOTE_TEST_UNREADABLE=$([ "$who" = nobody ] && echo "$E2E_TMP/private") \
            run_py "$who" "$backend as $who" "$SRC/tests/test_daemon.py"
    done
    e2e_stop_daemon
done
e2e_summary
