/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool-internal.h - what pool.c and ring.c share and nobody else sees.
 *
 * The pool keeps a list of its rings so that reclaim can find the ones
 * holding the oldest live event; that list is walked only when reclaiming,
 * never per event.  A ring's entries are a circular array that is allocated
 * on the first push and grows by doubling up to what the ring may hold
 * (3/4 of its depth), so that an idle ring costs its struct and its root.
 */
#ifndef FSNOTED_POOL_INTERNAL_H
#define FSNOTED_POOL_INTERNAL_H

#include "pool.h"

struct pool {
	struct pool_limits lim;
	struct pool_callbacks cb;

	/* every live event, oldest first (IDs increase along the list) */
	struct pool_event *oldest, *newest;
	size_t events, bytes;
	uint64_t current_id;
	uint64_t sub_gen;

	/* History: a circular array of references, oldest at hist_head.
	 * It holds exactly the events with IDs in (hist_floor, current_id]:
	 * IDs at or below the floor left the window or were never kept.
	 * floor_time is the latest time among those, valid if floor_set. */
	struct pool_event **hist;
	size_t hist_cap, hist_max, hist_head, hist_count;
	uint64_t hist_floor, floor_time;
	bool floor_set;
	uint64_t last_time;             /* time of the newest event added */

	struct ring *rings;             /* every ring, in creation order reversed */
	size_t n_rings;
	size_t ring_bytes;              /* the rings' slot arrays, as heap chunks */
	size_t ext_bytes;               /* held for subscribers outside the pool
	                                 * (output buffers), pool_set_external() */

	uint64_t added, merged, reclaimed_rings, reclaimed_events;
};

struct ring {
	struct pool *pool;
	struct ring *prev, *next;       /* pool->rings */
	void *owner;

	/* queued entries: slots[head], ..., count of them, wrapping at cap */
	struct ring_entry *slots;
	uint32_t cap, head, count;
	uint32_t depth, limit;          /* limit: the most it may hold, 3/4 of depth */
	uint32_t batch, latency_us;
	bool now_sent;                  /* RING_WAKE_NOW given since ring_woken() */
	bool later_sent;                /* RING_WAKE_LATER given since ring_woken() */

	/* the pending drop; drop_scope NULL while pending means the root */
	bool drop_pending;
	bool drop_unknown;              /* some loss of unknown size: count stays 0 */
	uint32_t drop_flags;
	uint64_t drop_count, drop_first, drop_last;
	char *drop_scope;
	size_t drop_scope_len;

	char *root;                     /* scope root, no trailing '/' unless "/" */
	size_t root_len;

	uint64_t pushed, delivered, dropped, drops;
};

/* The ID of the oldest queued entry, 0 if the ring is empty. */
static inline uint64_t ring_head_id(const struct ring *r)
{
	return r->count ? r->slots[r->head].ev->id : 0;
}

/* What the heap really spends on an allocation of @size: glibc rounds the
 * request plus its size word up to two words, with a four-word minimum. */
static inline size_t pool_chunk_size(size_t size)
{
	const size_t w = sizeof(size_t);
	size_t c = (size + w + 2 * w - 1) & ~(2 * w - 1);
	return size == 0 ? 0 : c < 4 * w ? 4 * w : c;
}

/* Makes room for @bytes more charged to the bound (ring slots), reclaiming
 * as pool_add() does; the ring asking may itself be truncated.  Returns 0
 * or -ENOMEM. */
int pool_reserve(struct pool *p, size_t bytes);

/* Drops every queued entry into the pending drop with @reason.  Returns how
 * many entries went. */
size_t ring_truncate(struct ring *r, uint32_t reason);

void pool_link_ring(struct pool *p, struct ring *r);
void pool_unlink_ring(struct pool *p, struct ring *r);

#endif
