/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-pool.c - unit tests for the event pool and the subscriber rings:
 * references, bounds under load with stalled subscribers, reclaim and its
 * dropped records, ring overflow, coalescing (and every case where it must
 * not happen), history replay, IDs, rescan scopes and wake-up verdicts.
 *
 * Everything here is pure logic: no kernel, no sockets.  The tests look at
 * the ring's internals only to measure what an idle ring costs.
 */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsnote-protocol.h"
#include "pool-internal.h"
#include "pool.h"

#define FIRST_ID 1000u

/* Check records every passing ck_assert (a write per call), which would
 * dominate the million-event loops: there, only a failure reaches Check. */
#define require(c)                                                      \
	do {                                                            \
		if (!(c))                                               \
			ck_abort_msg("line %d: %s", __LINE__, #c);      \
	} while (0)

static uint64_t t_now = 1000000000u;    /* monotonic clock the tests drive */

/* The ring_dropped callback's log. */
static unsigned n_dropped_cb;
static struct ring *last_dropped;

static void on_dropped(struct ring *r, void *owner)
{
	ck_assert_ptr_eq(owner, &n_dropped_cb);
	ck_assert_ptr_eq(ring_owner(r), owner);
	n_dropped_cb++;
	last_dropped = r;
}

static const struct pool_callbacks callbacks = { .ring_dropped = on_dropped };

static struct pool *mkpool(size_t max_events, size_t max_bytes, size_t history, uint64_t coalesce_ns)
{
	struct pool_limits lim = {
		.max_events = max_events,
		.max_bytes = max_bytes,
		.history = history,
		.coalesce_ns = coalesce_ns,
		.first_id = FIRST_ID,
	};
	struct pool *p = NULL;
	n_dropped_cb = 0;
	last_dropped = NULL;
	ck_assert_int_eq(pool_new(&lim, &callbacks, &p), 0);
	ck_assert_ptr_nonnull(p);
	return p;
}

static struct ring *mkring(struct pool *p, uint32_t depth, uint32_t batch, uint32_t latency_us,
			   const char *root)
{
	struct ring_config cfg = { .depth = depth, .batch = batch, .latency_us = latency_us };
	struct ring *r = NULL;
	ck_assert_int_eq(ring_new(p, &cfg, root, &n_dropped_cb, &r), 0);
	return r;
}

/* Adds an event; returns pool_add()'s result and the event in *ret. */
static int add_full(struct pool *p, uint16_t type, const char *path, const char *dest,
		    uint32_t pid, uint32_t flags, uint64_t time_ns, uint64_t now,
		    struct pool_event **ret)
{
	struct pool_event_init in = {
		.type = type,
		.flags = flags,
		.pid = pid,
		.actor_uid = 0,
		.time_ns = time_ns,
		.dev = 42,
		.path = path,
		.path_len = strlen(path),
		.dest = dest,
		.dest_len = dest ? strlen(dest) : 0,
	};
	return pool_add(p, &in, now, ret);
}

/* Adds an event that must be new, pushes it to @n rings, drops the
 * caller's reference.  Returns its ID. */
static uint64_t fan(struct pool *p, uint16_t type, const char *path, const char *dest,
		    struct ring **rings, size_t n, uint8_t view)
{
	struct pool_event *ev = NULL;
	ck_assert_int_eq(add_full(p, type, path, dest, 1, 0, t_now, t_now, &ev), POOL_ADDED);
	t_now += 10;
	for (size_t i = 0; i < n; i++)
		ck_assert_int_ge(ring_push(rings[i], ev, view), 0);
	uint64_t id = ev->id;
	pool_event_unref(p, ev);
	return id;
}

static struct pool_stats stats(const struct pool *p)
{
	struct pool_stats s;
	pool_get_stats(p, &s);
	return s;
}

static struct ring_stats rstats(const struct ring *r)
{
	struct ring_stats s;
	ring_get_stats(r, &s);
	return s;
}

static size_t drain(struct ring *r)
{
	size_t n = 0;
	while (ring_peek(r)) {
		ring_pop(r);
		n++;
	}
	ring_woken(r);
	return n;
}

/* --- references ---------------------------------------------------------- */

START_TEST(test_refcounts_reach_zero)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r[3] = { mkring(p, 1024, 1, 0, "/"), mkring(p, 1024, 1, 0, "/"),
			      mkring(p, 1024, 1, 0, "/") };
	size_t charged = 0;

	for (int i = 0; i < 100; i++) {
		struct pool_event *ev;
		char path[64];
		snprintf(path, sizeof(path), "/dir/file-%d", i);
		ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, path, i % 2 ? "/dir/x" : NULL, 1, 0,
					  1, t_now++, &ev), POOL_ADDED);
		/* charged at least what the heap really gave */
		ck_assert_uint_ge(ev->bytes, malloc_usable_size(ev));
		ck_assert_str_eq(ev->path, path);
		if (i % 2)
			ck_assert_str_eq(ev->dest, "/dir/x");
		else
			ck_assert_ptr_null(ev->dest);
		ck_assert_uint_eq(ev->refs, 1);
		charged += ev->bytes;
		for (int k = 0; k < 3; k++)
			ring_push(r[k], ev, RING_VIEW_FULL);
		ck_assert_uint_eq(ev->refs, 4);
		pool_event_unref(p, ev);
	}
	ck_assert_uint_eq(stats(p).events, 100);
	ck_assert_uint_eq(stats(p).bytes, charged);
	ck_assert_uint_eq(drain(r[0]), 100);
	ck_assert_uint_eq(stats(p).events, 100);
	ck_assert_uint_eq(drain(r[1]), 100);
	ck_assert_uint_eq(stats(p).events, 100);
	/* the last ring to let go frees: half by popping, half by ring_free */
	for (int i = 0; i < 50; i++)
		ring_pop(r[2]);
	ck_assert_uint_eq(stats(p).events, 50);
	r[2] = ring_free(r[2]);
	ck_assert_ptr_null(r[2]);
	ck_assert_uint_eq(stats(p).events, 0);
	ck_assert_uint_eq(stats(p).bytes, 0);
	ck_assert_uint_eq(stats(p).rings, 2);
	ring_free(r[0]);
	ring_free(r[1]);
	ck_assert_uint_eq(stats(p).rings, 0);
	ck_assert_ptr_null(pool_free(p));
	ck_assert_ptr_null(pool_free(NULL));
	ck_assert_ptr_null(ring_free(NULL));
}
END_TEST

START_TEST(test_history_holds_references)
{
	struct pool *p = mkpool(100000, 64u << 20, 10, 0);

	for (int i = 0; i < 25; i++)
		fan(p, FSNOTE_EV_CREATE, "/a", NULL, NULL, 0, 0);
	struct pool_stats s = stats(p);
	ck_assert_uint_eq(s.events, 10);
	ck_assert_uint_eq(s.history, 10);
	ck_assert_uint_eq(s.history_max, 10);
	ck_assert_uint_eq(s.oldest_history_id, FIRST_ID + 16);
	pool_free(p);
}
END_TEST

START_TEST(test_add_errors)
{
	struct pool *p = mkpool(100, 4096, 0, 0);
	static char longpath[FSNOTE_PATH_MAX + 1];
	struct pool_event *ev = NULL;

	memset(longpath, 'a', FSNOTE_PATH_MAX);
	longpath[0] = '/';
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, longpath, NULL, 1, 0, 1, 1, &ev),
			 -ENAMETOOLONG);
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/a", longpath, 1, 0, 1, 1, &ev),
			 -ENAMETOOLONG);
	ck_assert_ptr_null(ev);
	/* one less is a path like any other */
	longpath[FSNOTE_PATH_MAX - 1] = '\0';
	p->lim.max_bytes = 1u << 20;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, longpath, NULL, 1, 0, 1, 1, &ev), POOL_ADDED);
	ck_assert_uint_eq(ev->path_len, FSNOTE_PATH_MAX - 1);
	pool_event_unref(p, ev);
	p->lim.max_bytes = 4096;
	/* one event larger than the whole byte bound can never fit */
	longpath[4000] = '\0';
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, longpath, NULL, 1, 0, 1, 1, &ev), -ENOMEM);
	ck_assert_uint_eq(stats(p).current_id, FIRST_ID + 1);
	/* nothing held anywhere but by the caller: the bound refuses */
	struct pool_event *held[100];
	int n = 0, res;
	while ((res = add_full(p, FSNOTE_EV_CREATE, "/a", NULL, 1, 0, 1, 1, &held[n])) ==
	       POOL_ADDED) {
		ck_assert_uint_le(stats(p).bytes, 4096);
		ck_assert_int_lt(++n, 100);
	}
	ck_assert_int_eq(res, -ENOMEM);
	ck_assert_int_gt(n, 4);
	ck_assert_uint_eq(stats(p).current_id, FIRST_ID + 1 + (uint64_t)n);
	while (n > 0)
		pool_event_unref(p, held[--n]);
	ck_assert_uint_eq(stats(p).events, 0);
	pool_free(p);
}
END_TEST

/* --- bounds under load ---------------------------------------------------- */

/* 1M insertions; every tenth subscriber (and the only one when alone) never
 * reads, with alternately a huge depth (pool reclaim) and a small one (ring
 * overflow).  Readers drain every 64 events and must get everything. */
static void run_bounds(size_t n_subs)
{
	const size_t max_events = 5000, max_bytes = 600000;
	struct pool *p = mkpool(max_events, max_bytes, 1000, 0);
	struct ring **rings = calloc(n_subs, sizeof(*rings));
	uint64_t *last = calloc(n_subs, sizeof(*last));
	uint64_t *got = calloc(n_subs, sizeof(*got));
	uint64_t *sent = calloc(n_subs, sizeof(*sent));
	const size_t stall_every = n_subs >= 1000 ? 50 : 10;
	char path[128];

	ck_assert_ptr_nonnull(rings);
	for (size_t i = 0; i < n_subs; i++) {
		bool stalled = i % stall_every == 0;
		rings[i] = mkring(p, stalled && (i / stall_every) % 2 ? 1000 : 1u << 20, 64, 1000, "/");
	}
	for (uint64_t n = 0; n < 1000000; n++) {
		struct pool_event *ev;
		/* paths of varying length so that the byte bound matters too */
		snprintf(path, sizeof(path), "/data/dir%u/%.*s%llu", (unsigned)(n % 7),
			 (int)(n % 90), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			 (unsigned long long)n);
		require(add_full(p, FSNOTE_EV_CREATE, path, NULL, 1, 0, n, t_now++, &ev) ==
			POOL_ADDED);
		for (size_t i = 0; i < n_subs; i++) {
			bool stalled = i % stall_every == 0;
			if (!stalled && n_subs > 100 && i % 100 != n % 100)
				continue;
			require(ring_push(rings[i], ev, RING_VIEW_FULL) >= 0);
			sent[i]++;
		}
		pool_event_unref(p, ev);
		struct pool_stats s = stats(p);
		require(s.events <= max_events);
		require(s.bytes + s.ring_bytes + s.ext_bytes <= max_bytes);
		if (n % 64 != 63)
			continue;
		for (size_t i = 0; i < n_subs; i++) {
			const struct ring_entry *e;
			if (i % stall_every == 0)
				continue;
			while ((e = ring_peek(rings[i]))) {
				require(e->ev->id > last[i]);
				last[i] = e->ev->id;
				got[i]++;
				ring_pop(rings[i]);
			}
			ring_woken(rings[i]);
		}
	}
	for (size_t i = 0; i < n_subs; i++) {
		struct ring_stats rs = rstats(rings[i]);
		if (i % stall_every == 0) {
			/* a stalled one lost most, and knows exactly how much */
			struct ring_drop d;
			ck_assert(ring_take_drop(rings[i], &d));
			ck_assert_uint_eq(d.count + rs.queued, sent[i]);
			ck_assert_uint_eq(d.id_first, FIRST_ID + 1);
			ck_assert_uint_eq(d.id_last + 1, ring_peek(rings[i])->ev->id);
			ck_assert_str_eq(d.scope, "/data");
			free(d.scope);
		} else {
			while (ring_peek(rings[i])) {
				got[i]++;
				ring_pop(rings[i]);
			}
			ck_assert(!ring_has_drop(rings[i]));
			ck_assert_uint_eq(got[i], sent[i]);
			ck_assert_uint_eq(rs.dropped, 0);
		}
	}
	struct pool_stats s = stats(p);
	ck_assert_uint_gt(s.reclaimed_rings, 0);
	ck_assert_uint_eq(s.added, 1000000);
	for (size_t i = 0; i < n_subs; i++)
		ring_free(rings[i]);
	ck_assert_uint_le(stats(p).events, 1000);
	pool_free(p);
	free(rings);
	free(last);
	free(got);
	free(sent);
}

START_TEST(test_bounds_1)
{
	run_bounds(1);
}
END_TEST

START_TEST(test_bounds_10)
{
	run_bounds(10);
}
END_TEST

START_TEST(test_bounds_1000)
{
	run_bounds(1000);
}
END_TEST

/* --- reclaim and isolation ----------------------------------------------- */

START_TEST(test_stalled_isolation)
{
	struct pool *p = mkpool(1000, 64u << 20, 0, 0);
	struct ring *stalled = mkring(p, 1u << 20, 1, 0, "/");
	struct ring *readers[2] = { mkring(p, 64, 1, 0, "/"), mkring(p, 64, 1, 0, "/") };
	struct ring *all[3] = { stalled, readers[0], readers[1] };
	uint64_t last[2] = { 0, 0 };

	for (int n = 0; n < 5000; n++) {
		char path[64];
		snprintf(path, sizeof(path), "/w/d/f%d", n % 100);
		uint64_t id = fan(p, FSNOTE_EV_MODIFY, path, NULL, all, 3, RING_VIEW_FULL);
		ck_assert_uint_eq(id, FIRST_ID + 1 + (uint64_t)n);
		for (int k = 0; k < 2; k++) {
			const struct ring_entry *e = ring_peek(readers[k]);
			ck_assert_ptr_nonnull(e);
			ck_assert_uint_eq(e->ev->id, last[k] ? last[k] + 1 : FIRST_ID + 1);
			last[k] = e->ev->id;
			ring_pop(readers[k]);
			ck_assert_ptr_null(ring_peek(readers[k]));
		}
	}
	/* the pool filled at 1001, 2001, 3001 and 4001: four reclaims, only
	 * of the stalled ring, merged into one pending record */
	ck_assert_uint_eq(n_dropped_cb, 4);
	ck_assert_ptr_eq(last_dropped, stalled);
	ck_assert(!ring_has_drop(readers[0]));
	ck_assert(!ring_has_drop(readers[1]));
	struct pool_stats s = stats(p);
	ck_assert_uint_eq(s.reclaimed_rings, 4);
	ck_assert_uint_eq(s.reclaimed_events, 4000);
	ck_assert_uint_eq(s.events, 1000);

	struct ring_drop d;
	ck_assert(ring_take_drop(stalled, &d));
	ck_assert_uint_eq(d.count, 4000);
	ck_assert_uint_eq(d.id_first, FIRST_ID + 1);
	ck_assert_uint_eq(d.id_last, FIRST_ID + 4000);
	ck_assert_uint_eq(d.flags, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
				   FSNOTE_FLAG_POOL_RECLAIM);
	ck_assert_str_eq(d.scope, "/w/d");
	free(d.scope);
	ck_assert(!ring_take_drop(stalled, &d));
	struct ring_stats rs = rstats(stalled);
	ck_assert_uint_eq(rs.queued, 1000);
	ck_assert_uint_eq(rs.dropped, 4000);
	ck_assert_uint_eq(rs.drops, 1);
	ck_assert_uint_eq(rs.pushed, 5000);
	ck_assert_uint_eq(ring_peek(stalled)->ev->id, FIRST_ID + 4001);
	ck_assert_uint_eq(rstats(readers[0]).delivered, 5000);

	ring_free(stalled);
	ring_free(readers[0]);
	ring_free(readers[1]);
	ck_assert_uint_eq(stats(p).events, 0);
	pool_free(p);
}
END_TEST

/* Only the ring(s) holding the oldest event pay, not a ring that is merely
 * behind by a little. */
START_TEST(test_reclaim_takes_only_oldest)
{
	struct pool *p = mkpool(100, 64u << 20, 0, 0);
	struct ring *a = mkring(p, 1u << 20, 1, 0, "/");
	struct ring *b = mkring(p, 1u << 20, 1, 0, "/");
	struct ring *c = mkring(p, 1u << 20, 1, 0, "/");

	for (int i = 0; i < 60; i++)
		fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, &a, 1, 0);
	for (int i = 0; i < 40; i++) {
		struct ring *bc[2] = { b, c };
		fan(p, FSNOTE_EV_CREATE, "/x/z", NULL, bc, 2, 0);
	}
	ck_assert_uint_eq(stats(p).events, 100);
	fan(p, FSNOTE_EV_CREATE, "/x/z", NULL, &b, 1, 0);
	ck_assert_uint_eq(n_dropped_cb, 1);
	ck_assert(ring_has_drop(a));
	ck_assert(!ring_has_drop(b));
	ck_assert(!ring_has_drop(c));
	ck_assert_uint_eq(rstats(b).queued, 41);
	ck_assert_uint_eq(stats(p).events, 41);
	/* now b and c share the oldest: both go, together */
	for (int i = 0; i < 59; i++)
		fan(p, FSNOTE_EV_CREATE, "/x/q", NULL, &a, 1, 0);
	fan(p, FSNOTE_EV_CREATE, "/x/q", NULL, &a, 1, 0);
	ck_assert_uint_eq(n_dropped_cb, 3);
	ck_assert(ring_has_drop(b));
	ck_assert(ring_has_drop(c));
	struct ring_drop d;
	ck_assert(ring_take_drop(b, &d));
	ck_assert_uint_eq(d.count, 41);
	ck_assert_uint_eq(d.id_first, FIRST_ID + 61);
	ck_assert_uint_eq(d.id_last, FIRST_ID + 101);
	ck_assert_str_eq(d.scope, "/x");
	free(d.scope);
	ring_free(a);
	ring_free(b);
	ring_free(c);
	pool_free(p);
}
END_TEST

/* The one memory bound: a ring's slots are charged with the events, and
 * given back when it empties. */
START_TEST(test_ring_slots_charged)
{
	struct pool *p = mkpool(1u << 20, 64u << 20, 0, 0);
	struct ring *a = mkring(p, 1u << 20, 1, 0, "/");

	ck_assert_uint_eq(stats(p).ring_bytes, 0);
	for (int i = 0; i < 5000; i++)
		fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, &a, 1, 0);
	struct pool_stats s = stats(p);
	ck_assert_uint_ge(s.ring_bytes, 5000 * sizeof(struct ring_entry));
	ck_assert_uint_le(s.ring_bytes, 2 * 5000 * sizeof(struct ring_entry) + 64);
	while (ring_peek(a))
		ring_pop(a);
	ck_assert_uint_le(stats(p).ring_bytes, 64 * sizeof(struct ring_entry));
	ck_assert_uint_eq(stats(p).events, 0);
	ring_free(a);
	ck_assert_uint_eq(stats(p).ring_bytes, 0);
	pool_free(p);
}
END_TEST

/* Under a bound that the slots alone would pass, the ring that reads keeps
 * everything and the one that does not is truncated: slots count. */
START_TEST(test_ring_slots_reclaimed)
{
	const size_t max_bytes = 256u * 1024u;
	struct pool *p = mkpool(1u << 20, max_bytes, 0, 0);
	struct ring *rings[8];
	uint64_t last = 0;

	for (int i = 0; i < 8; i++)
		rings[i] = mkring(p, 1u << 20, 1, 0, "/");
	for (int n = 0; n < 20000; n++) {
		fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, rings, 8, 0);
		struct pool_stats s = stats(p);
		require(s.bytes + s.ring_bytes <= max_bytes);
		const struct ring_entry *e;
		while ((e = ring_peek(rings[0]))) {
			require(e->ev->id == last + 1 || last == 0);
			last = e->ev->id;
			ring_pop(rings[0]);
		}
		ring_woken(rings[0]);
	}
	ck_assert(!ring_has_drop(rings[0]));
	ck_assert(ring_has_drop(rings[1]));
	ck_assert_uint_gt(stats(p).reclaimed_rings, 0);
	for (int i = 0; i < 8; i++)
		ring_free(rings[i]);
	pool_free(p);
}
END_TEST

/* Bytes the owner holds outside the pool (output buffers) count against the
 * bound: the next add reclaims rings for them, and still succeeds when only
 * they are over it. */
START_TEST(test_external_bytes)
{
	const size_t max_bytes = 1u << 20;
	struct pool *p = mkpool(1u << 20, max_bytes, 0, 0);
	struct ring *a = mkring(p, 1u << 20, 1, 0, "/");

	for (int i = 0; i < 100; i++)
		fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, &a, 1, 0);
	ck_assert(!ring_has_drop(a));
	pool_set_external(p, max_bytes - 1024);
	ck_assert_uint_eq(stats(p).ext_bytes, max_bytes - 1024);
	fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, &a, 1, 0);
	ck_assert(ring_has_drop(a));
	ck_assert_uint_eq(n_dropped_cb, 1);
	/* output alone over the bound: events are still taken */
	pool_set_external(p, 2 * max_bytes);
	struct pool_event *ev = NULL;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/x/z", NULL, 1, 0, t_now, t_now, &ev),
			 POOL_ADDED);
	pool_event_unref(p, ev);
	ring_free(a);
	pool_free(p);
}
END_TEST

/* Reclaim takes the rings whose owners have taken nothing for longest
 * before the ring holding the oldest event: inside one read of a burst
 * every ring holds that event. */
static uint64_t stale_of[3];
static struct ring *stale_rings[3];

static uint64_t on_stale(struct ring *r, void *owner)
{
	(void)owner;
	for (int i = 0; i < 3; i++)
		if (stale_rings[i] == r)
			return stale_of[i];
	return 0;
}

/* A stalled subscriber's later events go into its pending drop with what
 * its ring still holds: one contiguous range, no received event inside. */
START_TEST(test_drop_event_takes_queue)
{
	struct pool *p = mkpool(1000, 64u << 20, 0, 0);
	struct ring *a = mkring(p, 8, 1, 0, "/");
	uint64_t first = 0, last = 0;

	/* 6 fit (3/4 of 8); the 7th truncates them into a drop */
	for (int i = 0; i < 7; i++) {
		uint64_t id = fan(p, FSNOTE_EV_CREATE, "/x/deep/f", NULL, &a, 1, 0);
		if (!first)
			first = id;
	}
	ck_assert(ring_has_drop(a));
	ck_assert_uint_eq(rstats(a).queued, 1);
	struct pool_event *ev = NULL;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/x/deep/g", NULL, 1, 0, t_now, t_now, &ev),
			 POOL_ADDED);
	last = ev->id;
	ring_drop_event(a, ev, 0);
	pool_event_unref(p, ev);
	ck_assert_uint_eq(rstats(a).queued, 0);
	ck_assert_uint_eq(stats(p).events, 0);
	struct ring_drop d;
	ck_assert(ring_take_drop(a, &d));
	ck_assert_uint_eq(d.count, 8);
	ck_assert_uint_eq(d.id_first, first);
	ck_assert_uint_eq(d.id_last, last);
	ck_assert_str_eq(d.scope, "/x/deep");
	free(d.scope);
	ring_free(a);
	pool_free(p);
}
END_TEST

/* One event to the three rings; ring 0 then reads all but its last three. */
static void fan_keep3(struct pool *p)
{
	fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, stale_rings, 3, 0);
	while (rstats(stale_rings[0]).queued > 3)
		ring_pop(stale_rings[0]);
}

START_TEST(test_reclaim_stalest_first)
{
	struct pool_limits lim = { .max_events = 100, .max_bytes = 64u << 20, .first_id = FIRST_ID };
	struct pool_callbacks cb = { .ring_dropped = on_dropped, .ring_stale_since = on_stale };
	struct pool *p = NULL;

	n_dropped_cb = 0;
	ck_assert_int_eq(pool_new(&lim, &cb, &p), 0);
	for (int i = 0; i < 3; i++)
		stale_rings[i] = mkring(p, 1u << 20, 1, 0, "/");
	/* ring 0 reads (takes as it comes: 0), ring 1 stopped long ago, ring 2
	 * within the slack of ring 1 */
	stale_of[0] = 0;
	stale_of[1] = 5ull * 1000000000ull;
	stale_of[2] = stale_of[1] + RECLAIM_SLACK_NS / 2;
	/* ring 0 keeps the last few (a read in progress) */
	for (int i = 0; i < 100; i++)
		fan_keep3(p);
	fan_keep3(p);
	ck_assert(!ring_has_drop(stale_rings[0]));
	ck_assert(ring_has_drop(stale_rings[1]));
	ck_assert(ring_has_drop(stale_rings[2]));
	ck_assert_uint_eq(n_dropped_cb, 2);
	/* beyond the slack: the stalest alone goes first, and the next one
	 * only if that was not enough (here it is not: it holds the same) */
	stale_of[2] = stale_of[1] + 3 * RECLAIM_SLACK_NS;
	struct ring_drop d;
	ck_assert(ring_take_drop(stale_rings[1], &d));
	free(d.scope);
	ck_assert(ring_take_drop(stale_rings[2], &d));
	free(d.scope);
	uint64_t before = stats(p).reclaimed_rings;
	for (int i = 0; i < 100; i++)
		fan_keep3(p);
	ck_assert(ring_has_drop(stale_rings[1]));
	ck_assert(ring_has_drop(stale_rings[2]));
	ck_assert(!ring_has_drop(stale_rings[0]));
	ck_assert_uint_eq(stats(p).reclaimed_rings, before + 2);
	ck_assert(ring_take_drop(stale_rings[2], &d));
	free(d.scope);
	/* none stale: the oldest event's holders go, as before */
	stale_of[1] = stale_of[2] = 0;
	ck_assert(ring_take_drop(stale_rings[1], &d));
	free(d.scope);
	for (int i = 0; i < 100; i++)
		fan(p, FSNOTE_EV_CREATE, "/x/y", NULL, stale_rings, 3, 0);
	ck_assert(ring_has_drop(stale_rings[0]));
	for (int i = 0; i < 3; i++)
		ring_free(stale_rings[i]);
	pool_free(p);
}
END_TEST

/* The history gives up what only it holds before any ring pays; a ring that
 * does pay does not empty the history. */
START_TEST(test_history_shortened_first)
{
	struct pool *p = mkpool(100, 64u << 20, 1000, 0);
	struct ring *r = mkring(p, 1u << 20, 1, 0, "/");

	for (int i = 0; i < 1000; i++) {
		fan(p, FSNOTE_EV_CREATE, "/a/b", NULL, &r, 1, 0);
		drain(r);
	}
	ck_assert_uint_eq(stats(p).reclaimed_rings, 0);
	ck_assert_uint_eq(stats(p).history, 100);
	ck_assert_uint_eq(stats(p).events, 100);

	/* now the ring stalls: the first 100 only replace history that was
	 * alone, then the ring holds everything the history holds */
	for (int i = 0; i < 100; i++)
		fan(p, FSNOTE_EV_CREATE, "/a/b", NULL, &r, 1, 0);
	ck_assert_uint_eq(stats(p).reclaimed_rings, 0);
	ck_assert_uint_eq(rstats(r).queued, 100);
	/* the next one costs the ring, and the history only its oldest */
	fan(p, FSNOTE_EV_CREATE, "/a/b", NULL, &r, 1, 0);
	ck_assert_uint_eq(stats(p).reclaimed_rings, 1);
	ck_assert_uint_eq(stats(p).reclaimed_events, 100);
	ck_assert_uint_eq(stats(p).history, 100);
	ck_assert_uint_eq(stats(p).events, 100);
	ck_assert_uint_eq(rstats(r).queued, 1);
	ring_free(r);
	pool_free(p);
}
END_TEST

START_TEST(test_set_limits_shrinks_now)
{
	struct pool *p = mkpool(10000, 64u << 20, 500, 0);
	struct ring *r = mkring(p, 1u << 20, 1, 0, "/top");

	for (int i = 0; i < 1000; i++)
		fan(p, FSNOTE_EV_CREATE, "/top/a/b", NULL, &r, 1, 0);
	ck_assert_uint_eq(stats(p).events, 1000);
	struct pool_limits lim = { .max_events = 100, .max_bytes = 64u << 20, .history = 50,
				   .first_id = 5 };
	pool_set_limits(p, &lim);
	struct pool_stats s = stats(p);
	ck_assert_uint_le(s.events, 100);
	ck_assert_uint_eq(s.max_events, 100);
	ck_assert_uint_eq(s.history_max, 50);
	ck_assert_uint_le(s.history, 50);
	ck_assert_uint_eq(n_dropped_cb, 1);
	ck_assert(ring_has_drop(r));
	/* first_id is only read at creation */
	ck_assert_uint_eq(fan(p, FSNOTE_EV_CREATE, "/top/a", NULL, NULL, 0, 0), FIRST_ID + 1001);

	/* the byte bound shrinks too */
	for (int i = 0; i < 100; i++)
		fan(p, FSNOTE_EV_CREATE, "/top/a/b", NULL, &r, 1, 0);
	lim.max_events = 1000;
	lim.max_bytes = 4096;
	pool_set_limits(p, &lim);
	ck_assert_uint_le(stats(p).bytes, 4096);
	/* and grows back; the history keeps what it had */
	lim.history = 2000;
	lim.max_bytes = 64u << 20;
	pool_set_limits(p, &lim);
	ck_assert_uint_eq(stats(p).history_max, 2000);
	for (int i = 0; i < 3000; i++)
		fan(p, FSNOTE_EV_CREATE, "/top/a/b", NULL, NULL, 0, 0);
	ck_assert_uint_eq(stats(p).history, 1000);
	ring_free(r);
	pool_free(p);
}
END_TEST

/* --- ring overflow ---------------------------------------------------------- */

START_TEST(test_ring_three_quarters)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r = mkring(p, 8, 100, 1000000, "/m");
	struct pool_event *ev;
	char path[32];

	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/m/d%d/f", i);
		fan(p, FSNOTE_EV_CREATE, path, NULL, &r, 1, 0);
	}
	ck_assert_uint_eq(rstats(r).queued, 6);
	ck_assert(!ring_has_drop(r));
	/* the seventh would pass 3/4 of 8 */
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/m/d9/g", NULL, 1, 0, 1, t_now++, &ev),
			 POOL_ADDED);
	ck_assert_int_eq(ring_push(r, ev, RING_VIEW_FULL), RING_WAKE_NOW);
	pool_event_unref(p, ev);
	struct ring_stats rs = rstats(r);
	ck_assert_uint_eq(rs.queued, 1);
	ck_assert_uint_eq(rs.dropped, 6);
	ck_assert_uint_eq(rs.drops, 1);
	ck_assert_uint_eq(ring_peek(r)->ev->id, FIRST_ID + 7);
	struct ring_drop d;
	ck_assert(ring_take_drop(r, &d));
	ck_assert_uint_eq(d.count, 6);
	ck_assert_uint_eq(d.id_first, FIRST_ID + 1);
	ck_assert_uint_eq(d.id_last, FIRST_ID + 6);
	ck_assert_uint_eq(d.flags, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
				   FSNOTE_FLAG_RING_OVERFLOW);
	ck_assert_str_eq(d.scope, "/m");
	free(d.scope);
	ck_assert_uint_eq(stats(p).reclaimed_rings, 0);
	ck_assert_uint_eq(n_dropped_cb, 0);
	ck_assert_uint_eq(stats(p).events, 1);
	ring_free(r);

	/* a deeper ring never holds more than 3/4, and its memory follows */
	r = mkring(p, 100, 1, 0, "/");
	for (int i = 0; i < 1000; i++) {
		fan(p, FSNOTE_EV_CREATE, "/a", NULL, &r, 1, 0);
		ck_assert_uint_le(rstats(r).queued, 75);
		ck_assert_uint_le(rstats(r).capacity, 75);
	}
	ck_assert_uint_eq(rstats(r).dropped + rstats(r).queued, 1000);
	/* the smallest depth still works: 4 holds 3 */
	struct ring *small = mkring(p, 1, 1, 0, "/");
	ck_assert_uint_eq(rstats(small).depth, 4);
	for (int i = 0; i < 4; i++)
		fan(p, FSNOTE_EV_CREATE, "/a", NULL, &small, 1, 0);
	ck_assert_uint_eq(rstats(small).queued, 1);
	ck_assert_uint_eq(rstats(small).dropped, 3);
	ring_free(small);
	ring_free(r);
	pool_free(p);
}
END_TEST

/* Growing while the entries wrap around the end keeps them in order. */
START_TEST(test_ring_grows_in_order)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r = mkring(p, 1u << 16, 1, 0, "/");
	uint64_t next = FIRST_ID + 1;

	for (int round = 0; round < 200; round++) {
		/* push more than is popped, with the head wandering */
		for (int i = 0; i < 7 + round % 5; i++)
			fan(p, FSNOTE_EV_CREATE, "/o", NULL, &r, 1, 0);
		for (int i = 0; i < 3 + round % 4; i++) {
			const struct ring_entry *e = ring_peek(r);
			ck_assert_ptr_nonnull(e);
			ck_assert_uint_eq(e->ev->id, next);
			next++;
			ring_pop(r);
		}
	}
	while (ring_peek(r)) {
		ck_assert_uint_eq(ring_peek(r)->ev->id, next);
		next++;
		ring_pop(r);
	}
	ck_assert_uint_eq(next, pool_current_id(p) + 1);
	ck_assert_uint_eq(rstats(r).dropped, 0);
	ck_assert(!ring_has_drop(r));
	ring_free(r);
	pool_free(p);
}
END_TEST

/* --- coalescing ---------------------------------------------------------------- */

#define WINDOW 1000000u

static int try_merge(struct pool *p, uint16_t t1, const char *p1, uint32_t pid1, uint32_t f1,
		     uint16_t t2, const char *p2, uint32_t pid2, uint32_t f2, uint64_t dt)
{
	struct pool_event *a, *b;
	ck_assert_int_eq(add_full(p, t1, p1, NULL, pid1, f1, 1, t_now, &a), POOL_ADDED);
	pool_event_unref(p, a); /* the history keeps it */
	uint64_t id = pool_current_id(p);
	int r = add_full(p, t2, p2, NULL, pid2, f2, 1, t_now + dt, &b);
	t_now += 10 * WINDOW;
	if (r == POOL_MERGED) {
		ck_assert_ptr_eq(a, b);
		ck_assert_uint_eq(pool_current_id(p), id);
		ck_assert(a->flags & FSNOTE_FLAG_COMBINED);
	} else {
		ck_assert_int_eq(r, POOL_ADDED);
		ck_assert_uint_eq(b->id, id + 1);
		ck_assert(!(b->flags & FSNOTE_FLAG_COMBINED));
		pool_event_unref(p, b);
	}
	return r;
}

START_TEST(test_coalesce_merges)
{
	struct pool *p = mkpool(1000, 1u << 20, 100, WINDOW);

	ck_assert_int_eq(try_merge(p, FSNOTE_EV_MODIFY, "/f", 7, 0, FSNOTE_EV_MODIFY, "/f", 7, 0, 5),
			 POOL_MERGED);
	ck_assert_int_eq(try_merge(p, FSNOTE_EV_ATTRIB, "/f", 7, FSNOTE_FLAG_IS_DIR,
				   FSNOTE_EV_ATTRIB, "/f", 7, FSNOTE_FLAG_IS_DIR, WINDOW),
			 POOL_MERGED);
	ck_assert_uint_eq(stats(p).merged, 2);
	ck_assert_uint_eq(stats(p).added, 2);

	/* many into one: the flag stays and the event is still the newest */
	struct pool_event *a, *b;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_MODIFY, "/g", NULL, 1, 0, 1, t_now, &a), POOL_ADDED);
	for (int i = 1; i <= 5; i++)
		ck_assert_int_eq(add_full(p, FSNOTE_EV_MODIFY, "/g", NULL, 1, 0, 1, t_now + i, &b),
				 POOL_MERGED);
	ck_assert_uint_eq(a->flags, FSNOTE_FLAG_COMBINED);
	pool_event_unref(p, a);
	t_now += 10 * WINDOW;
	pool_free(p);
}
END_TEST

START_TEST(test_coalesce_refuses)
{
	struct pool *p = mkpool(1000, 1u << 20, 100, WINDOW);
	const uint16_t M = FSNOTE_EV_MODIFY, A = FSNOTE_EV_ATTRIB;

	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/f", 8, 0, 5), POOL_ADDED);  /* pid */
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/g", 7, 0, 5), POOL_ADDED);  /* path */
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/ff", 7, 0, 5), POOL_ADDED); /* prefix */
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, A, "/f", 7, 0, 5), POOL_ADDED);  /* type */
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/f", 7, FSNOTE_FLAG_IS_DIR, 5),
			 POOL_ADDED);                                                   /* flags */
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/f", 7, 0, WINDOW + 1),
			 POOL_ADDED);                                                   /* window */
	static const uint16_t never[] = { FSNOTE_EV_CREATE, FSNOTE_EV_DELETE,
					  FSNOTE_EV_CLOSE_WRITE, FSNOTE_EV_OPEN,
					  FSNOTE_EV_ACCESS, FSNOTE_EV_UNMOUNT };
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		ck_assert_int_eq(try_merge(p, never[i], "/f", 7, 0, never[i], "/f", 7, 0, 5),
				 POOL_ADDED);
	ck_assert_uint_eq(stats(p).merged, 0);

	/* rename, even with the same paths */
	struct pool_event *a, *b;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_RENAME, "/f", "/g", 7, 0, 1, t_now, &a), POOL_ADDED);
	ck_assert_int_eq(add_full(p, FSNOTE_EV_RENAME, "/f", "/g", 7, 0, 1, t_now + 1, &b),
			 POOL_ADDED);
	pool_event_unref(p, a);
	pool_event_unref(p, b);
	t_now += 10 * WINDOW;

	/* not into an event that is no longer the newest */
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now, &a), POOL_ADDED);
	ck_assert_int_eq(add_full(p, M, "/g", NULL, 7, 0, 1, t_now + 1, &b), POOL_ADDED);
	pool_event_unref(p, a);
	pool_event_unref(p, b);
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now + 2, &a), POOL_ADDED);
	pool_event_unref(p, a);
	t_now += 10 * WINDOW;

	/* not once a ring has handed it out */
	struct ring *r1 = mkring(p, 64, 1, 0, "/"), *r2 = mkring(p, 64, 1, 0, "/");
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now, &a), POOL_ADDED);
	ring_push(r1, a, 0);
	ring_push(r2, a, 0);
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now + 1, &b), POOL_MERGED);
	ring_pop(r1);
	ck_assert(a->delivered);
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now + 2, &b), POOL_ADDED);
	ck_assert_ptr_ne(a, b);
	pool_event_unref(p, a);
	pool_event_unref(p, b);
	t_now += 10 * WINDOW;

	/* not across a subscription change */
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now, &a), POOL_ADDED);
	pool_subscriptions_changed(p);
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now + 1, &b), POOL_ADDED);
	pool_event_unref(p, a);
	ck_assert_int_eq(add_full(p, M, "/f", NULL, 7, 0, 1, t_now + 2, &a), POOL_MERGED);
	ck_assert_ptr_eq(a, b);
	pool_event_unref(p, b);
	t_now += 10 * WINDOW;
	ring_free(r1);
	ring_free(r2);
	pool_free(p);

	/* a zero window never merges */
	p = mkpool(1000, 1u << 20, 100, 0);
	ck_assert_int_eq(try_merge(p, M, "/f", 7, 0, M, "/f", 7, 0, 0), POOL_ADDED);
	pool_free(p);
}
END_TEST

/* --- history and IDs -------------------------------------------------------- */

struct collect {
	uint64_t ids[1000];
	size_t n;
	size_t stop_after;
};

static int collect_fn(struct pool_event *ev, void *userdata)
{
	struct collect *c = userdata;
	c->ids[c->n++] = ev->id;
	return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

static void check_since(struct pool *p, uint64_t since, int want, uint64_t first, size_t n)
{
	struct collect c = { .n = 0 };
	ck_assert_int_eq(pool_history_since(p, since, collect_fn, &c), want);
	ck_assert_uint_eq(c.n, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(c.ids[i], first + i);
}

START_TEST(test_history_replay)
{
	struct pool *p = mkpool(100000, 64u << 20, 100, 0);
	uint64_t cur;

	/* nothing happened yet: since the first ID is complete, before is not */
	check_since(p, FIRST_ID, 0, 0, 0);
	check_since(p, FIRST_ID - 1, POOL_HISTORY_GAP, 0, 0);
	for (int i = 0; i < 250; i++)
		fan(p, FSNOTE_EV_CREATE, "/h", NULL, NULL, 0, 0);
	cur = pool_current_id(p);
	ck_assert_uint_eq(cur, FIRST_ID + 250);
	check_since(p, cur, 0, 0, 0);
	check_since(p, cur + 5, 0, 0, 0);
	check_since(p, cur - 50, 0, cur - 49, 50);
	check_since(p, cur - 100, 0, cur - 99, 100);
	check_since(p, cur - 101, POOL_HISTORY_GAP, cur - 99, 100);
	check_since(p, 0, POOL_HISTORY_GAP, cur - 99, 100);

	struct collect c = { .stop_after = 3 };
	ck_assert_int_eq(pool_history_since(p, cur - 10, collect_fn, &c), 7);
	ck_assert_uint_eq(c.n, 3);
	pool_free(p);

	/* a pool smaller than the history bounds it */
	p = mkpool(50, 64u << 20, 100, 0);
	for (int i = 0; i < 200; i++)
		fan(p, FSNOTE_EV_CREATE, "/h", NULL, NULL, 0, 0);
	cur = pool_current_id(p);
	check_since(p, cur - 50, 0, cur - 49, 50);
	check_since(p, cur - 51, POOL_HISTORY_GAP, cur - 49, 50);
	pool_free(p);

	/* no history at all: only "nothing since now" is complete */
	p = mkpool(50, 64u << 20, 0, 0);
	for (int i = 0; i < 20; i++)
		fan(p, FSNOTE_EV_CREATE, "/h", NULL, NULL, 0, 0);
	cur = pool_current_id(p);
	check_since(p, cur, 0, 0, 0);
	check_since(p, cur - 1, POOL_HISTORY_GAP, 0, 0);
	pool_free(p);
}
END_TEST

/* Replay the way the core does: push with the history view. */
static int push_fn(struct pool_event *ev, void *userdata)
{
	return ring_push(userdata, ev, RING_VIEW_FULL | RING_VIEW_HISTORY) < 0;
}

START_TEST(test_history_replay_into_ring)
{
	struct pool *p = mkpool(100000, 64u << 20, 100, 0);
	for (int i = 0; i < 30; i++)
		fan(p, FSNOTE_EV_CREATE, "/h", NULL, NULL, 0, 0);
	struct ring *r = mkring(p, 1024, 1, 0, "/");
	uint64_t since = pool_current_id(p) - 10;
	ck_assert_int_eq(pool_history_since(p, since, push_fn, r), 0);
	ck_assert_uint_eq(rstats(r).queued, 10);
	const struct ring_entry *e = ring_peek(r);
	ck_assert_uint_eq(e->ev->id, since + 1);
	ck_assert_uint_eq(e->view, RING_VIEW_FULL | RING_VIEW_HISTORY);
	ring_free(r);
	pool_free(p);
}
END_TEST

static void add_at(struct pool *p, uint64_t time_ns)
{
	struct pool_event *ev;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/t", NULL, 1, 0, time_ns, t_now++, &ev),
			 POOL_ADDED);
	pool_event_unref(p, ev);
}

START_TEST(test_id_at_time)
{
	struct pool *p = mkpool(100000, 64u << 20, 10, 0);
	uint64_t id = 0;

	/* nothing yet: whatever comes next */
	ck_assert_int_eq(pool_id_at_time(p, 5, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 1);
	for (int i = 1; i <= 10; i++)
		add_at(p, 1000u * (uint64_t)i);
	ck_assert_int_eq(pool_id_at_time(p, 1000, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 1);
	ck_assert_int_eq(pool_id_at_time(p, 1500, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 2);
	ck_assert_int_eq(pool_id_at_time(p, 10000, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 10);
	ck_assert_int_eq(pool_id_at_time(p, 10001, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 11);
	id = 99;
	ck_assert_int_eq(pool_id_at_time(p, 999, &id), -ERANGE);
	ck_assert_uint_eq(id, 99);
	/* five more push the first five out of the window */
	for (int i = 11; i <= 15; i++)
		add_at(p, 1000u * (uint64_t)i);
	ck_assert_int_eq(pool_id_at_time(p, 3000, &id), -ERANGE);
	ck_assert_int_eq(pool_id_at_time(p, 5000, &id), -ERANGE);
	ck_assert_int_eq(pool_id_at_time(p, 5001, &id), -ERANGE);
	ck_assert_int_eq(pool_id_at_time(p, 6000, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 6);
	ck_assert_int_eq(pool_id_at_time(p, 14500, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 15);
	ck_assert_int_eq(pool_id_at_time(p, 1u << 30, &id), 0);
	ck_assert_uint_eq(id, pool_current_id(p) + 1);
	pool_free(p);

	/* the oldest kept shares its time with events that left: the answer
	 * would be one of those, so it is out of range too */
	p = mkpool(100000, 64u << 20, 10, 0);
	for (int i = 0; i < 15; i++)
		add_at(p, 7000);
	add_at(p, 8000);
	ck_assert_int_eq(pool_id_at_time(p, 7000, &id), -ERANGE);
	ck_assert_int_eq(pool_id_at_time(p, 7001, &id), 0);
	ck_assert_uint_eq(id, FIRST_ID + 16);
	pool_free(p);
}
END_TEST

START_TEST(test_ids_strictly_increase)
{
	struct pool *p = mkpool(64, 1u << 20, 16, WINDOW);
	struct ring *r = mkring(p, 32, 1, 0, "/");
	uint64_t prev = FIRST_ID;

	ck_assert_uint_eq(pool_current_id(p), FIRST_ID);
	for (int i = 0; i < 100000; i++) {
		struct pool_event *ev;
		/* a mix of mergeable and not, with reclaim and overflow going on */
		uint16_t t = i % 3 ? FSNOTE_EV_MODIFY : FSNOTE_EV_CREATE;
		int res = add_full(p, t, i % 5 ? "/a" : "/b", NULL, 1, 0, 1, t_now++, &ev);
		require(res >= 0);
		if (res == POOL_MERGED) {
			require(ev->id == prev);
			continue;
		}
		require(ev->id == prev + 1);
		prev = ev->id;
		require(pool_current_id(p) == prev);
		ring_push(r, ev, 0);
		pool_event_unref(p, ev);
		if (i % 7 == 0)
			ring_pop(r);
	}
	ck_assert_uint_gt(stats(p).merged, 0);
	ring_free(r);
	pool_free(p);
}
END_TEST

/* --- rescan scope --------------------------------------------------------------- */

static struct ring_drop lose(struct ring *r, struct pool *p, const char *const *paths,
			     const char *const *dests, size_t n, uint8_t view)
{
	struct ring_drop d;
	for (size_t i = 0; i < n; i++)
		fan(p, dests && dests[i] ? FSNOTE_EV_RENAME : FSNOTE_EV_CREATE, paths[i],
		    dests ? dests[i] : NULL, &r, 1, view);
	ck_assert_uint_eq(ring_truncate(r, FSNOTE_FLAG_POOL_RECLAIM), n);
	ck_assert(ring_take_drop(r, &d));
	ck_assert_uint_eq(d.count, n);
	return d;
}

#define LOSE(r, p, view, dests, ...)                                                     \
	lose(r, p, (const char *const[]){ __VA_ARGS__ }, dests,                            \
	     sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *), view)

static void expect_scope(struct ring_drop d, const char *want)
{
	ck_assert_str_eq(d.scope, want);
	free(d.scope);
}

START_TEST(test_rescan_scope)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *top = mkring(p, 1024, 1, 0, "/");
	struct ring *sub = mkring(p, 1024, 1, 0, "/a/b/");

	expect_scope(LOSE(top, p, 0, NULL, "/a/b/x", "/a/b/y", "/a/b/z/w"), "/a/b");
	expect_scope(LOSE(top, p, 0, NULL, "/a/b/x", "/a/c/y"), "/a");
	expect_scope(LOSE(top, p, 0, NULL, "/a/b/x"), "/a/b");
	expect_scope(LOSE(top, p, 0, NULL, "/a/bc/x", "/a/bd/y"), "/a");
	expect_scope(LOSE(top, p, 0, NULL, "/a/b/c/x", "/a/b/y"), "/a/b");
	expect_scope(LOSE(top, p, 0, NULL, "/a/b/x", "/a/b/c/y"), "/a/b");
	expect_scope(LOSE(top, p, 0, NULL, "/a/bc/x", "/a/b/y"), "/a");
	expect_scope(LOSE(top, p, 0, NULL, "/ab/x", "/ac/y"), "/");
	expect_scope(LOSE(top, p, 0, NULL, "/x"), "/");
	/* a rename's destination counts too, unless the ring only sees its source */
	expect_scope(LOSE(top, p, RING_VIEW_FULL, ((const char *const[]){ "/a/c/y" }), "/a/b/x"),
		     "/a");
	expect_scope(LOSE(top, p, RING_VIEW_SOURCE, ((const char *const[]){ "/a/c/y" }),
			  "/a/b/x"),
		     "/a/b");
	expect_scope(LOSE(top, p, RING_VIEW_DEST | RING_VIEW_HISTORY,
			  ((const char *const[]){ "/a/c/y" }), "/a/b/x"),
		     "/a/c");

	/* never above the root */
	expect_scope(LOSE(sub, p, 0, NULL, "/a/b/c/x", "/a/b/c/y"), "/a/b/c");
	expect_scope(LOSE(sub, p, 0, NULL, "/a/b/x"), "/a/b");
	expect_scope(LOSE(sub, p, 0, NULL, "/a/b"), "/a/b");
	expect_scope(LOSE(sub, p, 0, NULL, "/a/b/c/x", "/a/b/d/y"), "/a/b");
	expect_scope(LOSE(sub, p, 0, NULL, "/a/bc/x"), "/a/b");
	expect_scope(LOSE(sub, p, RING_VIEW_FULL, ((const char *const[]){ "/z/q" }), "/a/b/c/x"),
		     "/a/b");
	ring_free(top);
	ring_free(sub);
	pool_free(p);
}
END_TEST

START_TEST(test_mark_dropped_merges)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r = mkring(p, 1024, 1, 0, "/a");
	struct ring_drop d;

	/* scope NULL is the root */
	ring_mark_dropped(r, FSNOTE_FLAG_KERNEL_OVERFLOW, 0, 0, 0, NULL);
	ck_assert(ring_take_drop(r, &d));
	ck_assert_uint_eq(d.count, 0);
	ck_assert_uint_eq(d.flags, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
				   FSNOTE_FLAG_KERNEL_OVERFLOW);
	expect_scope(d, "/a");

	/* known counts add, the range widens, the scope widens to the common
	 * ancestor, the reasons add up */
	ring_mark_dropped(r, 0, 3, 50, 52, "/a/x/y");
	ring_mark_dropped(r, FSNOTE_FLAG_POOL_RECLAIM, 2, 40, 41, "/a/x/z/");
	fan(p, FSNOTE_EV_CREATE, "/a/x/y/f", NULL, &r, 1, 0);
	ring_truncate(r, FSNOTE_FLAG_RING_OVERFLOW);
	ck_assert(ring_take_drop(r, &d));
	ck_assert_uint_eq(d.count, 6);
	ck_assert_uint_eq(d.id_first, 40);
	ck_assert_uint_eq(d.id_last, FIRST_ID + 1);
	ck_assert_uint_eq(d.flags, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
				   FSNOTE_FLAG_POOL_RECLAIM | FSNOTE_FLAG_RING_OVERFLOW);
	expect_scope(d, "/a/x");
	ck_assert_uint_eq(rstats(r).drops, 2);

	/* unknown is sticky: a known count merged in keeps it unknown */
	ring_mark_dropped(r, 0, 5, 60, 64, "/a/x");
	ring_mark_dropped(r, FSNOTE_FLAG_KERNEL_OVERFLOW, 0, 0, 0, "/a/x/y");
	fan(p, FSNOTE_EV_CREATE, "/a/x/f", NULL, &r, 1, 0);
	ring_truncate(r, FSNOTE_FLAG_RING_OVERFLOW);
	ring_mark_dropped(r, 0, 7, 0, 0, NULL);
	ck_assert(ring_take_drop(r, &d));
	ck_assert_uint_eq(d.count, 0);
	ck_assert_uint_eq(d.id_first, 60);
	ck_assert_uint_eq(d.id_last, FIRST_ID + 2);
	expect_scope(d, "/a");

	/* a scope outside the root is the root */
	ring_mark_dropped(r, 0, 1, 0, 0, "/b/c");
	ck_assert(ring_take_drop(r, &d));
	expect_scope(d, "/a");
	ck_assert(!ring_has_drop(r));
	ring_free(r);
	pool_free(p);
}
END_TEST

/* A pending drop's scope is freed with the ring. */
START_TEST(test_free_with_pending_drop)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r = mkring(p, 1024, 1, 0, "/");
	fan(p, FSNOTE_EV_CREATE, "/a/x/y/f", NULL, &r, 1, 0);
	ring_truncate(r, FSNOTE_FLAG_RING_OVERFLOW);
	fan(p, FSNOTE_EV_CREATE, "/a/x/y/g", NULL, &r, 1, 0);
	ck_assert(ring_has_drop(r));
	ring_free(r);
	ck_assert_uint_eq(stats(p).events, 0);
	pool_free(p);
}
END_TEST

/* --- wake-ups --------------------------------------------------------------- */

static int push1(struct pool *p, struct ring *r)
{
	struct pool_event *ev;
	ck_assert_int_eq(add_full(p, FSNOTE_EV_CREATE, "/w", NULL, 1, 0, 1, t_now++, &ev),
			 POOL_ADDED);
	int v = ring_push(r, ev, 0);
	pool_event_unref(p, ev);
	return v;
}

START_TEST(test_wake_verdicts)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);

	/* zero latency: now, once until woken */
	struct ring *r = mkring(p, 1024, 16, 0, "/");
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ring_woken(r);
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ring_free(r);

	/* a latency window: one timer, then now at the batch */
	r = mkring(p, 1024, 4, 5000, "/");
	ck_assert_int_eq(push1(p, r), RING_WAKE_LATER);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(push1(p, r), RING_QUIET);
	/* woken with a backlog still queued: the batch is already there */
	ring_woken(r);
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	/* drained: the window starts again */
	drain(r);
	ck_assert_int_eq(push1(p, r), RING_WAKE_LATER);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ring_woken(r);
	ck_assert_int_eq(push1(p, r), RING_WAKE_LATER);
	ring_free(r);

	/* a batch of one is always now */
	r = mkring(p, 1024, 1, 5000, "/");
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ck_assert_int_eq(push1(p, r), RING_QUIET);
	ring_free(r);

	/* a truncation always wakes, even when a wake-up is already due */
	r = mkring(p, 8, 100, 5000, "/");
	ck_assert_int_eq(push1(p, r), RING_WAKE_LATER);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(push1(p, r), RING_QUIET);
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ck_assert(ring_has_drop(r));
	ring_free(r);

	/* config changes take effect for the next wake-up */
	r = mkring(p, 1024, 100, 5000, "/");
	ck_assert_int_eq(push1(p, r), RING_WAKE_LATER);
	ring_set_config(r, &(struct ring_config){ .depth = 1024, .batch = 2, .latency_us = 5000 });
	ck_assert_int_eq(push1(p, r), RING_WAKE_NOW);
	ring_free(r);
	pool_free(p);
}
END_TEST

/* --- memory --------------------------------------------------------------- */

START_TEST(test_idle_ring_small)
{
	struct pool *p = mkpool(100000, 64u << 20, 0, 0);
	struct ring *r = mkring(p, 131072, 64, 1000, "/home/user/project");

	/* nothing allocated for entries until the first push */
	ck_assert_uint_eq(rstats(r).capacity, 0);
	size_t idle = sizeof(struct ring) + strlen("/home/user/project") + 1;
	ck_assert_uint_lt(idle, 512);

	/* a burst grows it by doubling; draining gives the memory back */
	for (int i = 0; i < 5000; i++)
		fan(p, FSNOTE_EV_CREATE, "/home/user/project/f", NULL, &r, 1, 0);
	ck_assert_uint_eq(rstats(r).capacity, 8192);
	drain(r);
	ck_assert_uint_le(rstats(r).capacity, 32);
	ck_assert_uint_lt(idle + rstats(r).capacity * sizeof(struct ring_entry), 1024);
	ring_free(r);

#if !defined(__SANITIZE_ADDRESS__)
	/* the allocator agrees: 10 000 idle rings */
	struct ring **rings = calloc(10000, sizeof(*rings));
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < 10000; i++)
		rings[i] = mkring(p, 8192, 64, 1000, "/home/user/project");
	struct mallinfo2 after = mallinfo2();
	size_t per = (after.uordblks - before.uordblks) / 10000;
	ck_assert_uint_lt(per, 512);
	for (int i = 0; i < 10000; i++)
		ring_free(rings[i]);
	free(rings);
#endif
	pool_free(p);
}
END_TEST

static Suite *pool_suite(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("logic");
	tcase_add_test(tc, test_refcounts_reach_zero);
	tcase_add_test(tc, test_history_holds_references);
	tcase_add_test(tc, test_add_errors);
	tcase_add_test(tc, test_stalled_isolation);
	tcase_add_test(tc, test_reclaim_takes_only_oldest);
	tcase_add_test(tc, test_ring_slots_charged);
	tcase_add_test(tc, test_ring_slots_reclaimed);
	tcase_add_test(tc, test_external_bytes);
	tcase_add_test(tc, test_reclaim_stalest_first);
	tcase_add_test(tc, test_drop_event_takes_queue);
	tcase_add_test(tc, test_history_shortened_first);
	tcase_add_test(tc, test_set_limits_shrinks_now);
	tcase_add_test(tc, test_ring_three_quarters);
	tcase_add_test(tc, test_ring_grows_in_order);
	tcase_add_test(tc, test_coalesce_merges);
	tcase_add_test(tc, test_coalesce_refuses);
	tcase_add_test(tc, test_history_replay);
	tcase_add_test(tc, test_history_replay_into_ring);
	tcase_add_test(tc, test_id_at_time);
	tcase_add_test(tc, test_ids_strictly_increase);
	tcase_add_test(tc, test_rescan_scope);
	tcase_add_test(tc, test_mark_dropped_merges);
	tcase_add_test(tc, test_free_with_pending_drop);
	tcase_add_test(tc, test_wake_verdicts);
	tcase_add_test(tc, test_idle_ring_small);
	suite_add_tcase(s, tc);

	/* a million insertions each, slower under the sanitizers */
	TCase *load = tcase_create("load");
	tcase_set_timeout(load, 600);
	tcase_add_test(load, test_bounds_1);
	tcase_add_test(load, test_bounds_10);
	tcase_add_test(load, test_bounds_1000);
	suite_add_tcase(s, load);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pool_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
