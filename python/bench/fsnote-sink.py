#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""fsnote-sink.py - the Python package's side of bench/run, the counterpart
of bench/fsnote-sink.c: one subscriber through the fsnote package.

    fsnote-sink.py [--latency-us L] [--timeout SEC] [--hold] DIR

Prints "ready" on stderr once the subscription is confirmed, then counts
events by type until DIR's BENCH-END file was created (or the timeout), and
prints one JSON object on stdout with the same keys as fsnote-sink.c
("seconds" is from the first event read to the last).  With --hold it
reads nothing until SIGUSR1, so that a backlog builds up in the daemon and
the figure is how fast Python drains it.
"""

import argparse
import json
import os
import resource
import signal
import sys
import time

import fsnote


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency-us", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--hold", action="store_true")
    ap.add_argument("dir")
    a = ap.parse_args()

    # blocked before "ready", so that a SIGUSR1 sent on seeing it is kept
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    c = fsnote.connect(client_name="fsnote-sink.py")
    sub = c.subscribe(a.dir, latency=a.latency_us / 1e6)
    print("ready", file=sys.stderr, flush=True)
    if a.hold:
        signal.sigwait({signal.SIGUSR1})

    end = os.path.join(os.fsencode(a.dir), b"BENCH-END")
    by_type = {}
    records = lost = 0
    first = last = 0.0
    complete = False
    deadline = time.monotonic() + a.timeout
    DROPPED = fsnote.EventType.DROPPED
    CREATE = fsnote.EventType.CREATE
    while time.monotonic() < deadline:
        ev = sub.read(1.0)
        if ev is None:
            continue
        t = time.monotonic()
        if not first:
            first = t
        last = t
        records += 1
        by_type[ev.type] = by_type.get(ev.type, 0) + 1
        if ev.type is DROPPED:
            lost += ev.count
        elif ev.type is CREATE and ev.path_bytes == end:
            complete = True
            break
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {"subs": 1, "records": records}
    for t in ("create", "delete", "modify", "attrib", "close_write", "rename"):
        out[t] = by_type.get(fsnote.EventType(t), 0)
    out.update({"dropped_records": by_type.get(DROPPED, 0), "dropped_events": lost,
                "seconds": last - first, "cpu_s": ru.ru_utime + ru.ru_stime,
                "max_rss_kb": ru.ru_maxrss, "complete": complete})
    print(json.dumps(out))
    c.close()
    return 0 if complete else 3


if __name__ == "__main__":
    sys.exit(main())
