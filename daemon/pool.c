/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool.c - the global event pool: refcounted events, their IDs, the history
 * window, coalescing, and reclaim.
 *
 * Invariants:
 * - events <= max_events, and bytes + ring_bytes + ext_bytes <= max_bytes,
 *   at every return.  This is the one memory bound of everything held for
 *   subscribers: an event is charged the size of the heap chunk that holds
 *   it (struct, path and destination are one allocation), a ring its slot
 *   array's chunk, and the daemon's output buffers what they hold (told by
 *   pool_set_external(), reclaimed for at the next pool_add()), so the
 *   bound is real memory.
 * - IDs are handed out at insertion, strictly increasing from first_id + 1,
 *   and never twice: a merged event keeps its ID and takes none.  An ID
 *   handed out by pool_mark() belongs to no event: it only marks a point.
 * - Every live event is on the live list, oldest first; it leaves the list
 *   and is freed with its last reference.
 * - The history holds exactly the events with IDs in (hist_floor,
 *   current_id], oldest first.
 *
 * Making room walks a fixed order: first the history gives up references
 * that only it holds (that frees memory at once and costs nobody an event),
 * then the rings whose head is the oldest queued event are truncated, each
 * with a pending drop; a ring holds its events in ID order, so a ring
 * holding the oldest live event has it at its head.  Only then does the
 * history give up references that callers still hold.  Before the oldest
 * event, though, come the rings of subscribers that have taken nothing for
 * longest (the owner says since when): inside one read of a burst every
 * ring holds the same oldest event, and the one that keeps up must not pay
 * for those that stopped.  The ring list is walked only here, never per
 * event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsnote-protocol.h"
#include "pool-internal.h"

/* Makes the pages of a fresh zeroed array resident.  The history's slots
 * are fixed overhead, outside the byte bound: they should show in the
 * daemon's memory from the start, not grow into it during the first burst
 * (calloc's large blocks are untouched zero pages until written). */
static void touch_pages(void *mem, size_t size)
{
	volatile unsigned char *b = mem;
	for (size_t i = 0; i < size; i += 4096)
		b[i] = 0;
}

int pool_new(const struct pool_limits *limits, const struct pool_callbacks *cb,
	     struct pool **ret)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->lim = *limits;
	if (cb)
		p->cb = *cb;
	p->current_id = limits->first_id;
	p->hist_floor = limits->first_id;
	/* what happened before the pool existed was never seen */
	if (limits->start_time_ns) {
		p->floor_time = limits->start_time_ns;
		p->floor_set = true;
	}
	p->lim.history = 0;
	if (limits->history > 0) {
		p->hist = calloc(limits->history, sizeof(*p->hist));
		if (!p->hist) {
			free(p);
			return -ENOMEM;
		}
		touch_pages(p->hist, limits->history * sizeof(*p->hist));
		p->hist_cap = p->hist_max = p->lim.history = limits->history;
	}
	*ret = p;
	return 0;
}

static void drop_encoding(struct pool *p, struct pool_event *ev)
{
	p->bytes -= pool_chunk_size(ev->enc_len);
	free(ev->enc);
	ev->enc = NULL;
}

static void event_free(struct pool *p, struct pool_event *ev)
{
	if (ev->prev)
		ev->prev->next = ev->next;
	else
		p->oldest = ev->next;
	if (ev->next)
		ev->next->prev = ev->prev;
	else
		p->newest = ev->prev;
	p->events--;
	p->bytes -= ev->bytes;
	if (ev->enc)
		drop_encoding(p, ev);
	free(ev);
}

int pool_event_set_encoding(struct pool *p, struct pool_event *ev, uint64_t key, const void *bytes,
			    size_t len)
{
	if (len == 0 || len > UINT32_MAX)
		return -EINVAL;
	uint8_t *enc = malloc(len);
	if (!enc)
		return -ENOMEM;
	if (ev->enc)
		drop_encoding(p, ev);
	memcpy(enc, bytes, len);
	ev->enc = enc;
	ev->enc_len = (uint32_t)len;
	ev->enc_key = key;
	p->bytes += pool_chunk_size(len);
	return 0;
}

struct pool_event *pool_event_ref(struct pool_event *ev)
{
	ev->refs++;
	return ev;
}

void pool_event_unref(struct pool *p, struct pool_event *ev)
{
	if (!ev)
		return;
	if (--ev->refs == 0)
		event_free(p, ev);
	else if (ev->enc && ev->refs == 1 && ev->id > p->hist_floor)
		drop_encoding(p, ev); /* only the history holds it: nobody will send it again */
}

/* Gives up the oldest history reference. */
static void history_drop_oldest(struct pool *p)
{
	struct pool_event *ev = p->hist[p->hist_head];

	p->hist[p->hist_head] = NULL;
	p->hist_head = p->hist_head + 1 == p->hist_cap ? 0 : p->hist_head + 1;
	p->hist_count--;
	if (ev->id > p->hist_floor)
		p->hist_floor = ev->id;
	if (!p->floor_set || ev->time_ns > p->floor_time)
		p->floor_time = ev->time_ns;
	p->floor_set = true;
	pool_event_unref(p, ev);
}

static struct pool_event *history_at(const struct pool *p, size_t i)
{
	size_t k = p->hist_head + i;
	return p->hist[k >= p->hist_cap ? k - p->hist_cap : k];
}

static void reclaim_one(struct pool *p, struct ring *r)
{
	p->reclaimed_events += ring_truncate(r, FSNOTE_FLAG_POOL_RECLAIM);
	p->reclaimed_rings++;
	if (p->cb.ring_dropped)
		p->cb.ring_dropped(r, r->owner);
}

/* Truncates the stalest rings (see ring_stale_since).  Returns false if no
 * ring holding events is stale. */
static bool reclaim_stale(struct pool *p)
{
	uint64_t oldest = 0;

	if (!p->cb.ring_stale_since)
		return false;
	for (struct ring *r = p->rings; r; r = r->next) {
		uint64_t t = r->count ? p->cb.ring_stale_since(r, r->owner) : 0;
		if (t && (!oldest || t < oldest))
			oldest = t;
	}
	if (!oldest)
		return false;
	for (struct ring *r = p->rings, *next; r; r = next) {
		next = r->next;
		if (!r->count)
			continue;
		uint64_t t = p->cb.ring_stale_since(r, r->owner);
		if (t && t <= oldest + RECLAIM_SLACK_NS)
			reclaim_one(p, r);
	}
	return true;
}

/* Truncates the rings whose head is the oldest queued event, the stalest
 * first.  Returns false if every ring is empty. */
static bool reclaim_rings(struct pool *p)
{
	uint64_t min = 0;

	if (reclaim_stale(p))
		return true;

	for (struct ring *r = p->rings; r; r = r->next) {
		uint64_t id = ring_head_id(r);
		if (id && (!min || id < min))
			min = id;
	}
	if (!min)
		return false;
	for (struct ring *r = p->rings, *next; r; r = next) {
		next = r->next;
		if (ring_head_id(r) == min)
			reclaim_one(p, r);
	}
	return true;
}

/* Frees until @events more events of @bytes more bytes fit.  Returns 0 or
 * -ENOMEM when nothing more can be given up (callers hold the rest). */
static int make_room(struct pool *p, size_t events, size_t bytes)
{
	size_t max = p->lim.max_bytes - (p->lim.unchargeable < p->lim.max_bytes ? p->lim.unchargeable : 0);

	while (p->events + events > p->lim.max_events ||
	       p->bytes + p->ring_bytes + p->ext_bytes + bytes > max) {
		if (p->hist_count && p->hist[p->hist_head]->refs == 1)
			history_drop_oldest(p);
		else if (reclaim_rings(p))
			continue;
		else if (p->hist_count)
			history_drop_oldest(p);
		else if (p->events + events <= p->lim.max_events &&
			 p->bytes + p->ring_bytes + bytes <= max)
			return 0; /* output the owner holds makes reclaim come early,
				   * never an event fail */
		else
			return -ENOMEM;
	}
	return 0;
}

int pool_reserve(struct pool *p, size_t bytes)
{
	return make_room(p, 0, bytes);
}

void pool_set_external(struct pool *p, size_t bytes)
{
	p->ext_bytes = bytes;
}

/* Moves the history into an array of @n slots, dropping the oldest
 * references that do not fit.  On allocation failure the old array stays:
 * when shrinking only its limit changes, when growing nothing does. */
static void history_resize(struct pool *p, size_t n)
{
	while (p->hist_count > n)
		history_drop_oldest(p);
	if (n == p->hist_cap)
		goto done;
	struct pool_event **h = NULL;
	if (n > 0) {
		h = calloc(n, sizeof(*h));
		if (!h) {
			if (n < p->hist_cap)
				p->hist_max = n;
			return;
		}
		touch_pages(h, n * sizeof(*h));
		for (size_t i = 0; i < p->hist_count; i++)
			h[i] = history_at(p, i);
	}
	free(p->hist);
	p->hist = h;
	p->hist_cap = n;
	p->hist_head = 0;
done:
	p->hist_max = n;
}

void pool_set_limits(struct pool *p, const struct pool_limits *limits)
{
	uint64_t first_id = p->lim.first_id;

	p->lim = *limits;
	p->lim.first_id = first_id;
	history_resize(p, limits->history);
	p->lim.history = p->hist_max;
	/* callers may hold references, so this may stay above the bound until
	 * they let go; the next pool_add() makes room again */
	(void)make_room(p, 0, 0);
}

struct pool *pool_free(struct pool *p)
{
	if (!p)
		return NULL;
	while (p->hist_count)
		history_drop_oldest(p);
	free(p->hist);
	free(p);
	return NULL;
}

/* Two names of one directory object: never merge events of a directory
 * that was replaced by another at the same path. */
static bool dirid_equal(const struct pool_dirid *a, const struct pool_dirid *b)
{
	size_t alen = a->bytes ? a->len : 0, blen = b->bytes ? b->len : 0;

	return a->ino == b->ino && a->self == b->self && alen == blen &&
	       (alen == 0 || (a->type == b->type && memcmp(a->bytes, b->bytes, alen) == 0));
}

static bool mergeable(const struct pool *p, const struct pool_event *ev,
		      const struct pool_event_init *in, uint64_t now_ns)
{
	return ev && ev->id == p->current_id && !ev->delivered && ev->sub_gen == p->sub_gen &&
	       ev->type == in->type && (ev->flags & ~(uint32_t)FSNOTE_FLAG_COMBINED) == in->flags &&
	       ev->pid == in->pid && ev->actor_uid == in->actor_uid && ev->dev == in->dev &&
	       !in->dest && !ev->dest && now_ns >= ev->mono_ns &&
	       now_ns - ev->mono_ns <= p->lim.coalesce_ns && ev->path_len == in->path_len &&
	       memcmp(ev->path, in->path, in->path_len) == 0 && dirid_equal(&ev->dir, &in->dir);
}

int pool_add(struct pool *p, const struct pool_event_init *init, uint64_t now_ns,
	     struct pool_event **ret)
{
	const char *path = init->path ? init->path : "";
	size_t path_len = init->path ? init->path_len : 0;
	int r;

	if (path_len >= FSNOTE_PATH_MAX || (init->dest && init->dest_len >= FSNOTE_PATH_MAX))
		return -ENAMETOOLONG;
	if ((init->type == FSNOTE_EV_MODIFY || init->type == FSNOTE_EV_ATTRIB) &&
	    p->lim.coalesce_ns && mergeable(p, p->newest, init, now_ns)) {
		p->newest->flags |= FSNOTE_FLAG_COMBINED;
		if (p->newest->enc) /* its record changed */
			drop_encoding(p, p->newest);
		p->merged++;
		*ret = p->newest;
		return POOL_MERGED;
	}
	if (p->current_id == UINT64_MAX)
		return -EOVERFLOW;

	size_t dir_len = init->dir.bytes ? init->dir.len : 0;
	size_t ddir_len = init->dest && init->dest_dir.bytes ? init->dest_dir.len : 0;
	size_t size = offsetof(struct pool_event, data) + path_len + 1 +
		      (init->dest ? init->dest_len + 1 : 0) + dir_len + ddir_len;
	size_t charge = pool_chunk_size(size);
	if (charge > p->lim.max_bytes || p->lim.max_events == 0)
		return -ENOMEM;
	r = make_room(p, 1, charge);
	if (r < 0)
		return r;
	struct pool_event *ev = malloc(size);
	if (!ev)
		return -ENOMEM;
	*ev = (struct pool_event){
		.id = ++p->current_id,
		.prev = p->newest,
		.refs = 1,
		.type = init->type,
		.path_len = (uint16_t)path_len,
		.flags = init->flags,
		.pid = init->pid,
		.actor_uid = init->actor_uid,
		.time_ns = init->time_ns,
		.mono_ns = now_ns,
		.dev = init->dev,
		.st = init->st,
		.dest_st = init->dest_st,
		.sub_gen = p->sub_gen,
		.bytes = (uint32_t)charge,
	};
	memcpy(ev->data, path, path_len);
	ev->data[path_len] = '\0';
	ev->path = ev->data;
	if (init->dest) {
		char *d = ev->data + path_len + 1;
		memcpy(d, init->dest, init->dest_len);
		d[init->dest_len] = '\0';
		ev->dest = d;
		ev->dest_len = (uint16_t)init->dest_len;
	}
	/* the handles follow the strings, unaligned bytes */
	unsigned char *hp = (unsigned char *)ev->data + path_len + 1 +
			    (init->dest ? init->dest_len + 1 : 0);
	ev->dir = init->dir;
	ev->dir.len = (uint8_t)dir_len;
	ev->dir.bytes = dir_len ? hp : NULL;
	if (dir_len)
		memcpy(hp, init->dir.bytes, dir_len);
	if (init->dest) {
		ev->dest_dir = init->dest_dir;
		ev->dest_dir.len = (uint8_t)ddir_len;
		ev->dest_dir.bytes = ddir_len ? hp + dir_len : NULL;
		if (ddir_len)
			memcpy(hp + dir_len, init->dest_dir.bytes, ddir_len);
	}
	if (p->newest)
		p->newest->next = ev;
	else
		p->oldest = ev;
	p->newest = ev;
	p->events++;
	p->bytes += charge;
	p->added++;
	p->last_time = init->time_ns;

	if (p->hist_max) {
		/* a full window gives up its oldest reference for this one */
		if (p->hist_count == p->hist_max)
			history_drop_oldest(p);
		size_t k = p->hist_head + p->hist_count;
		p->hist[k >= p->hist_cap ? k - p->hist_cap : k] = pool_event_ref(ev);
		p->hist_count++;
	} else {
		p->hist_floor = ev->id;
		p->floor_time = ev->time_ns;
		p->floor_set = true;
	}
	*ret = ev;
	return POOL_ADDED;
}

uint64_t pool_current_id(const struct pool *p)
{
	return p->current_id;
}

uint64_t pool_mark(struct pool *p)
{
	if (p->current_id < UINT64_MAX)
		p->current_id++;
	return p->current_id;
}

void pool_subscriptions_changed(struct pool *p)
{
	p->sub_gen++;
}

void pool_get_stats(const struct pool *p, struct pool_stats *ret)
{
	*ret = (struct pool_stats){
		.events = p->events,
		.bytes = p->bytes,
		.ring_bytes = p->ring_bytes,
		.ext_bytes = p->ext_bytes,
		.max_events = p->lim.max_events,
		.max_bytes = p->lim.max_bytes,
		.history = p->hist_count,
		.history_max = p->hist_max,
		.rings = p->n_rings,
		.current_id = p->current_id,
		.added = p->added,
		.merged = p->merged,
		.reclaimed_rings = p->reclaimed_rings,
		.reclaimed_events = p->reclaimed_events,
		.oldest_history_id = p->hist_count ? history_at(p, 0)->id : 0,
		.history_floor = p->hist_floor,
		.first_id = p->lim.first_id,
	};
}

int pool_history_since(struct pool *p, uint64_t since_id,
		       int (*fn)(struct pool_event *ev, void *userdata), void *userdata)
{
	int gap = since_id < p->hist_floor ? POOL_HISTORY_GAP : 0;
	size_t lo = 0, hi = p->hist_count;

	/* the first entry with an ID above since_id */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (history_at(p, mid)->id <= since_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* @fn may queue into rings, which never touches the history */
	for (size_t i = lo; i < p->hist_count; i++) {
		int r = fn(history_at(p, i), userdata);
		if (r)
			return r;
	}
	return gap;
}

int pool_id_at_time(const struct pool *p, uint64_t time_ns, uint64_t *ret_id)
{
	size_t lo = 0, hi = p->hist_count;

	/* an event that left the window at or after @time_ns would be the
	 * answer, and it is gone; so would one from before the oldest kept */
	if (p->floor_set && time_ns <= p->floor_time)
		return -ERANGE;
	if (p->hist_count && time_ns < history_at(p, 0)->time_ns)
		return -ERANGE;
	/* times increase along the history (CLOCK_REALTIME, save for steps) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (history_at(p, mid)->time_ns < time_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	*ret_id = lo < p->hist_count ? history_at(p, lo)->id : p->current_id + 1;
	return 0;
}

void pool_link_ring(struct pool *p, struct ring *r)
{
	r->prev = NULL;
	r->next = p->rings;
	if (p->rings)
		p->rings->prev = r;
	p->rings = r;
	p->n_rings++;
}

void pool_unlink_ring(struct pool *p, struct ring *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		p->rings = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	p->n_rings--;
}
