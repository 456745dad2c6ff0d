/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ring.c - one subscriber's queue of references into the pool, its pending
 * dropped record, and its wake-up decisions.
 *
 * Invariants:
 * - Entries are in the order they were pushed, which is ID order (live
 *   events come in ID order, and history replay happens before any live
 *   event reaches a new ring).  The ring holds one reference per entry.
 * - count <= limit = 3/4 of depth: a push that would pass it first drops
 *   every queued entry into the pending drop.  The slot array is allocated
 *   on the first push, doubles as needed up to limit, and shrinks back to a
 *   few slots whenever the ring empties, so idle rings stay small.
 * - Any entry that leaves other than by ring_pop() is counted in the pending
 *   drop: its ID widens the drop's range, the parent directory of its
 *   path(s) narrows the rescan scope to their common ancestor, never above
 *   the ring's root.
 * - Wake-ups: RING_WAKE_NOW at most once between ring_woken() calls unless
 *   a truncation happened (the owner must then send the drop), and
 *   RING_WAKE_LATER at most once, for the first event after ring_woken().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsnote-protocol.h"
#include "pool-internal.h"

#define RING_FIRST_SLOTS 8u    /* the first allocation, on the first push */
#define RING_KEEP_SLOTS 32u    /* an empty ring keeps no more than this */

#define DROP_FLAGS (FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN)

static void apply_config(struct ring *r, const struct ring_config *cfg)
{
	r->depth = cfg->depth < 4 ? 4 : cfg->depth;
	r->limit = (uint32_t)((uint64_t)r->depth * 3 / 4);
	r->batch = cfg->batch ? cfg->batch : 1;
	r->latency_us = cfg->latency_us;
}

int ring_new(struct pool *p, const struct ring_config *cfg, const char *scope_root,
	     void *owner, struct ring **ret)
{
	const char *root = scope_root && scope_root[0] ? scope_root : "/";
	size_t len = strlen(root);

	if (len >= FSNOTE_PATH_MAX)
		return -ENAMETOOLONG;
	while (len > 1 && root[len - 1] == '/')
		len--;
	struct ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->root = strndup(root, len);
	if (!r->root) {
		free(r);
		return -ENOMEM;
	}
	r->root_len = len;
	r->pool = p;
	r->owner = owner;
	apply_config(r, cfg);
	pool_link_ring(p, r);
	*ret = r;
	return 0;
}

#define SLOT_BYTES(n) pool_chunk_size((size_t)(n) * sizeof(struct ring_entry))

/* Gives back slots above RING_KEEP_SLOTS of an empty ring. */
static void shrink_slots(struct ring *r)
{
	if (r->cap <= RING_KEEP_SLOTS)
		return;
	struct ring_entry *s = realloc(r->slots, RING_KEEP_SLOTS * sizeof(*s));
	if (!s)
		return;
	r->pool->ring_bytes -= SLOT_BYTES(r->cap) - SLOT_BYTES(RING_KEEP_SLOTS);
	r->slots = s;
	r->cap = RING_KEEP_SLOTS;
}

static void drop_scope_free(struct ring *r)
{
	free(r->drop_scope);
	r->drop_scope = NULL;
	r->drop_scope_len = 0;
}

struct ring *ring_free(struct ring *r)
{
	if (!r)
		return NULL;
	for (uint32_t i = 0, k = r->head; i < r->count; i++, k = k + 1 == r->cap ? 0 : k + 1)
		pool_event_unref(r->pool, r->slots[k].ev);
	pool_unlink_ring(r->pool, r);
	r->pool->ring_bytes -= SLOT_BYTES(r->cap);
	free(r->slots);
	drop_scope_free(r);
	free(r->root);
	free(r);
	return NULL;
}

void *ring_owner(const struct ring *r)
{
	return r->owner;
}

void ring_set_config(struct ring *r, const struct ring_config *cfg)
{
	apply_config(r, cfg);
}

/* --- the pending drop ---------------------------------------------------- */

static bool under_root(const struct ring *r, const char *s, size_t len)
{
	if (len == 0 || s[0] != '/')
		return false;
	if (r->root_len == 1)
		return true;
	return len >= r->root_len && memcmp(s, r->root, r->root_len) == 0 &&
	       (len == r->root_len || s[r->root_len] == '/');
}

/* Widens the pending scope to cover directory @dir (NULL: the root). */
static void drop_add_dir(struct ring *r, const char *dir, size_t len)
{
	if (!dir || !under_root(r, dir, len)) {
		dir = r->root;
		len = r->root_len;
	}
	if (r->drop_scope_len == 0) {
		r->drop_scope = strndup(dir, len);
		/* without memory, the root is the honest answer */
		r->drop_scope_len = r->drop_scope ? len : r->root_len;
		return;
	}
	if (!r->drop_scope || r->drop_scope_len <= r->root_len)
		return;

	/* the common ancestor is a prefix of the current scope */
	const char *s = r->drop_scope;
	size_t n = r->drop_scope_len, l = 0, max = n < len ? n : len;
	while (l < max && s[l] == dir[l])
		l++;
	if (l == n && (len == n || dir[n] == '/'))
		return;                         /* the scope covers @dir already */
	if (l == len && (len == 1 || s[len] == '/')) {
		n = len;                        /* @dir covers the scope */
	} else {
		while (l > 0 && s[l - 1] != '/')
			l--;
		/* l - 1 is now the last '/' both share */
		n = l <= 1 ? 1 : l - 1;
	}
	if (n < r->root_len)
		n = r->root_len;
	r->drop_scope_len = n;
	r->drop_scope[n] = '\0';
}

/* Widens the pending scope to the directory holding @path. */
static void drop_add_parent(struct ring *r, const char *path, size_t len)
{
	const char *slash = len ? memrchr(path, '/', len) : NULL;
	if (!slash)
		drop_add_dir(r, NULL, 0);
	else
		drop_add_dir(r, path, slash == path ? 1 : (size_t)(slash - path));
}

static void drop_add_event(struct ring *r, const struct pool_event *ev, uint8_t view)
{
	view &= RING_VIEW_SOURCE | RING_VIEW_DEST;
	if (r->drop_scope_len != 0 && r->drop_scope_len <= r->root_len)
		return;                         /* already the widest it may be */
	if (view != RING_VIEW_DEST || !ev->dest)
		drop_add_parent(r, ev->path, ev->path_len);
	if (view != RING_VIEW_SOURCE && ev->dest)
		drop_add_parent(r, ev->dest, ev->dest_len);
}

static void drop_begin(struct ring *r, uint32_t flags)
{
	if (!r->drop_pending) {
		r->drop_pending = true;
		r->drop_unknown = false;
		r->drop_flags = 0;
		r->drop_count = r->drop_first = r->drop_last = 0;
		drop_scope_free(r);
		r->drops++;
	}
	r->drop_flags |= DROP_FLAGS | flags;
}

static void drop_add_count(struct ring *r, uint64_t count)
{
	r->dropped += count;
	if (count == 0)
		r->drop_unknown = true;
	r->drop_count = r->drop_unknown ? 0 : r->drop_count + count;
}

static void drop_add_ids(struct ring *r, uint64_t first, uint64_t last)
{
	if (first && (!r->drop_first || first < r->drop_first))
		r->drop_first = first;
	if (last && last > r->drop_last)
		r->drop_last = last;
}

size_t ring_truncate(struct ring *r, uint32_t reason)
{
	size_t n = r->count;
	uint64_t lo = UINT64_MAX, hi = 0;

	if (n == 0)
		return 0;
	drop_begin(r, reason);
	for (uint32_t i = 0, k = r->head; i < n; i++, k = k + 1 == r->cap ? 0 : k + 1) {
		struct pool_event *ev = r->slots[k].ev;
		if (ev->id < lo)
			lo = ev->id;
		if (ev->id > hi)
			hi = ev->id;
		drop_add_event(r, ev, r->slots[k].view);
		r->slots[k].ev = NULL;
		pool_event_unref(r->pool, ev);
	}
	drop_add_count(r, n);
	drop_add_ids(r, lo, hi);
	r->head = r->count = 0;
	shrink_slots(r);
	/* the owner is told now (push verdict or ring_dropped callback) */
	r->now_sent = true;
	return n;
}

bool ring_take_drop(struct ring *r, struct ring_drop *ret)
{
	if (!r->drop_pending)
		return false;
	*ret = (struct ring_drop){
		.count = r->drop_unknown ? 0 : r->drop_count,
		.id_first = r->drop_first,
		.id_last = r->drop_last,
		.flags = r->drop_flags,
		.scope = r->drop_scope ? r->drop_scope : strndup(r->root, r->root_len),
	};
	r->drop_scope = NULL;
	r->drop_scope_len = 0;
	r->drop_pending = false;
	return true;
}

bool ring_has_drop(const struct ring *r)
{
	return r->drop_pending;
}

void ring_mark_dropped(struct ring *r, uint32_t reason_flags, uint64_t count,
		       uint64_t id_first, uint64_t id_last, const char *scope)
{
	drop_begin(r, reason_flags);
	drop_add_count(r, count);
	drop_add_ids(r, id_first, id_last);
	if (!scope) {
		drop_add_dir(r, NULL, 0);
	} else {
		size_t len = strnlen(scope, FSNOTE_PATH_MAX);
		while (len > 1 && scope[len - 1] == '/')
			len--;
		drop_add_dir(r, len < FSNOTE_PATH_MAX ? scope : NULL, len);
	}
}

/* --- queueing ------------------------------------------------------------ */

static int ring_grow(struct ring *r)
{
	uint32_t n = r->cap ? r->cap * 2 : RING_FIRST_SLOTS;
	if (n > r->limit || n < r->cap)
		n = r->limit;
	if (n <= r->cap)
		return -ENOMEM;
	/* the slots are charged to the pool's bound: making room may truncate
	 * the slowest rings, this one included, and then it needs no more */
	size_t more = SLOT_BYTES(n) - SLOT_BYTES(r->cap);
	if (pool_reserve(r->pool, more) < 0)
		return -ENOMEM;
	if (r->count < r->cap)
		return 0;
	/* realloc often extends in place; a ring that refills from empty
	 * starts at slot 0, so usually nothing wraps and nothing moves */
	struct ring_entry *s = realloc(r->slots, (size_t)n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	if (r->head + r->count > r->cap) {
		/* the part from head to the old end moves to the new end */
		uint32_t tail = r->cap - r->head;
		memmove(s + n - tail, s + r->head, (size_t)tail * sizeof(*s));
		r->head = n - tail;
	}
	r->slots = s;
	r->cap = n;
	r->pool->ring_bytes += more;
	return 0;
}

int ring_push(struct ring *r, struct pool_event *ev, uint8_t view)
{
	bool truncated = false;

	if (r->count >= r->limit)
		truncated = ring_truncate(r, FSNOTE_FLAG_RING_OVERFLOW) > 0;
	if (r->count == r->cap && ring_grow(r) < 0) {
		drop_begin(r, 0);
		drop_add_count(r, 1);
		drop_add_ids(r, ev->id, ev->id);
		drop_add_event(r, ev, view);
		r->now_sent = true;
		return -ENOMEM;
	}
	uint32_t k = r->head + r->count;
	if (k >= r->cap)
		k -= r->cap;
	r->slots[k] = (struct ring_entry){ .ev = pool_event_ref(ev), .view = view };
	r->count++;
	r->pushed++;

	if (truncated)
		return RING_WAKE_NOW;
	if (r->now_sent)
		return RING_QUIET;
	if (r->latency_us == 0 || r->count >= r->batch) {
		r->now_sent = true;
		return RING_WAKE_NOW;
	}
	if (!r->later_sent) {
		r->later_sent = true;
		return RING_WAKE_LATER;
	}
	return RING_QUIET;
}

const struct ring_entry *ring_peek(const struct ring *r)
{
	return r->count ? &r->slots[r->head] : NULL;
}

void ring_pop(struct ring *r)
{
	if (!r->count)
		return;
	struct pool_event *ev = r->slots[r->head].ev;
	r->slots[r->head].ev = NULL;
	r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
	r->count--;
	r->delivered++;
	ev->delivered = true;
	pool_event_unref(r->pool, ev);
	if (r->count == 0) {
		r->head = 0;
		/* give back what a burst took; a ring that stays busy never
		 * empties, so this is rare on the hot path */
		shrink_slots(r);
	}
}

void ring_drop_event(struct ring *r, const struct pool_event *ev, uint8_t view)
{
	/* what is still queued goes too: a dropped record's range must hold no
	 * event the subscriber receives, and it comes before them */
	(void)ring_truncate(r, 0);
	drop_begin(r, 0);
	drop_add_count(r, 1);
	drop_add_ids(r, ev->id, ev->id);
	drop_add_event(r, ev, view);
}

uint64_t ring_head_mono(const struct ring *r)
{
	return r->count ? r->slots[r->head].ev->mono_ns : 0;
}

uint32_t ring_headroom(const struct ring *r, uint32_t cap)
{
	uint32_t half = r->limit / 2 < cap ? r->limit / 2 : cap;
	return r->count < half ? half - r->count : 0;
}

void ring_woken(struct ring *r)
{
	r->now_sent = false;
	r->later_sent = false;
}

void ring_get_stats(const struct ring *r, struct ring_stats *ret)
{
	*ret = (struct ring_stats){
		.queued = r->count,
		.depth = r->depth,
		.capacity = r->cap,
		.pushed = r->pushed,
		.delivered = r->delivered,
		.dropped = r->dropped,
		.drops = r->drops,
	};
}
