/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool.h - the global event pool and the per-subscriber rings.
 *
 * The pool owns every event the daemon holds.  Events are refcounted: each
 * ring that queues an event holds one reference, the history window holds
 * one, and the caller of pool_add() holds one until it has fanned the event
 * out.  An event is freed when its last reference goes.
 *
 * The pool never holds more than its limits (events and bytes, paths
 * included; the byte bound also covers the rings' slots and what the owner
 * says it holds besides, see pool_set_external()).  To make room it first
 * shortens the history, then truncates the rings of the subscribers that
 * have gone longest without taking anything (or, when none is stale, the
 * ring(s) holding the oldest live event): those rings, and only those, get
 * a pending dropped record.  A ring that passes 3/4 of its depth is
 * truncated the same way.  No loss is ever silent: a truncated ring always
 * carries a pending drop (count, ID range, narrowest rescan directory and
 * reason) that its owner must send before any later event.
 *
 * Nothing here knows about the kernel, sockets or timers: the owner of a
 * ring learns from ring_push()'s result when to wake its client, and from
 * the pool's ring_dropped callback when reclaim truncated its ring.
 */
#ifndef FSNOTED_POOL_H
#define FSNOTED_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is known of one side (source or destination) of an event. */
struct pool_stat {
	bool valid;
	uint64_t ino;
	uint32_t mode, uid, gid;
};

/* The directory object an event happened in, as the kernel named it: the
 * fanotify record's directory file handle, or the inotify watch's own
 * directory (its handle taken when the watch was added).  Permission checks
 * judge this object and never a path walked again later, because a path
 * can be deleted and recreated between the event and the check.  @self
 * says the event is about the directory itself (its attributes, its own
 * deletion), not about an entry in it.  @len 0: no handle is known (the
 * filesystem cannot make one); @ino still names the object while the
 * source holds a watch on it.  In a pool event @bytes points into the
 * event's own data. */
#define POOL_HANDLE_MAX 128             /* MAX_HANDLE_SZ */
struct pool_dirid {
	uint64_t ino;                   /* 0 if unknown */
	int32_t type;                   /* struct file_handle's handle_type */
	uint8_t len;                    /* bytes of handle, 0 if none */
	bool self;
	const unsigned char *bytes;
};

/* One event.  Fields are read-only after pool_add() except where noted. */
struct pool_event {
	uint64_t id;
	struct pool_event *prev, *next; /* live list, oldest first; pool-owned */
	uint32_t refs;
	uint16_t type;                  /* FSNOTE_EV_* */
	uint16_t path_len;              /* without NUL */
	uint16_t dest_len;              /* without NUL; 0 unless rename */
	uint32_t flags;                 /* FSNOTE_FLAG_*; COMBINED may be added by merging */
	uint32_t pid;                   /* acting pid, 0 if unknown */
	uint32_t actor_uid;             /* uid of the actor, UINT32_MAX if unknown */
	uint64_t time_ns;               /* CLOCK_REALTIME */
	uint64_t mono_ns;               /* CLOCK_MONOTONIC at insertion (coalescing) */
	uint64_t dev;                   /* filesystem (st_dev), 0 for none */
	struct pool_stat st, dest_st;
	struct pool_dirid dir;          /* where @path's entry lives (or the directory itself) */
	struct pool_dirid dest_dir;     /* where @dest's entry lives; len 0 and ino 0 unless rename */
	uint64_t sub_gen;               /* pool subscription generation at insertion */
	bool delivered;                 /* some ring has handed it out */
	uint32_t bytes;                 /* what it is charged against the byte bound */
	/* The event's record as last encoded for one view of it (the owner's
	 * key says which), so that every subscriber with that view copies it
	 * instead of encoding it again; charged to the bound, freed with the
	 * event, or as soon as only the history holds it.  NULL until
	 * pool_event_set_encoding(). */
	uint8_t *enc;
	uint32_t enc_len;
	uint64_t enc_key;
	uint32_t fanned;                /* rings it was queued to (owner-kept: worth
	                                 * keeping an encoding only above 1) */
	const char *path;               /* source-space path, NUL-terminated, in data */
	const char *dest;               /* NULL unless rename */
	char data[];
};

struct pool_event_init {
	uint16_t type;
	uint32_t flags;
	uint32_t pid;
	uint32_t actor_uid;
	uint64_t time_ns;
	uint64_t dev;
	const char *path;
	size_t path_len;
	const char *dest;               /* NULL unless rename */
	size_t dest_len;
	struct pool_stat st, dest_st;
	struct pool_dirid dir, dest_dir; /* bytes borrowed, copied by pool_add() */
};

struct pool_limits {
	size_t max_events;              /* hard bound on live events */
	size_t max_bytes;               /* hard bound on bytes charged */
	size_t unchargeable;            /* part of max_bytes kept free of charges (the
	                                 * allocator's own slack); less than max_bytes */
	size_t history;                 /* events kept for since-ID replay */
	uint64_t coalesce_ns;           /* modify/attrib merge window, 0 = never */
	uint64_t first_id;              /* the first ID handed out is first_id + 1 */
	uint64_t start_time_ns;         /* CLOCK_REALTIME at start: no earlier time is in
	                                 * the history (0: no such floor); both only at
	                                 * pool_new() */
};

struct pool_stats {
	size_t events, bytes, max_events, max_bytes;
	size_t ring_bytes, ext_bytes;   /* charged to max_bytes besides the events */
	size_t history, history_max, rings;
	uint64_t current_id;
	uint64_t added, merged, reclaimed_rings, reclaimed_events;
	uint64_t oldest_history_id;     /* 0 if history is empty */
	uint64_t history_floor;         /* every event with a higher ID is in the history */
	uint64_t first_id;              /* IDs handed out start above this */
};

struct pool;
struct ring;

struct pool_callbacks {
	/* Reclaim truncated @ring to make room; it now has a pending drop and
	 * its owner must wake its client. */
	void (*ring_dropped)(struct ring *ring, void *owner);
	/* Since when (CLOCK_MONOTONIC ns) @ring's owner has had events pending
	 * without taking any, 0 if it takes them as they come.  Reclaim
	 * truncates the most stale rings first (those within RECLAIM_SLACK_NS
	 * of the stalest), and only when none is stale the rings holding the
	 * oldest event.  May be NULL (oldest event first). */
	uint64_t (*ring_stale_since)(struct ring *ring, void *owner);
};
#define RECLAIM_SLACK_NS (10ull * 1000000ull)

int pool_new(const struct pool_limits *limits, const struct pool_callbacks *cb,
	     struct pool **ret);
/* Frees the pool; every ring must have been freed first.  NULL-safe. */
struct pool *pool_free(struct pool *p);
/* New limits apply at once; shrinking bounds reclaim as needed. */
void pool_set_limits(struct pool *p, const struct pool_limits *limits);

enum {
	POOL_ADDED = 0,   /* *ret is a new event with one reference for the caller */
	POOL_MERGED = 1,  /* merged into *ret (no new reference); nothing to fan out */
};
/* Adds an event at monotonic time @now_ns.  Returns POOL_ADDED, POOL_MERGED,
 * -ENAMETOOLONG (a path of FSNOTE_PATH_MAX or more) or -ENOMEM (allocation
 * failed, or one event larger than the byte bound).  Only modify and attrib
 * events are merged, and only into the newest event when it has the same
 * type, path, pid and flags, is within the window, has not been delivered by
 * any ring, and no subscription came or went since. */
int pool_add(struct pool *p, const struct pool_event_init *init, uint64_t now_ns,
	     struct pool_event **ret);
struct pool_event *pool_event_ref(struct pool_event *ev);
/* Keeps a copy of @len bytes as @ev's encoding for @key (replacing any).
 * Returns 0 or -ENOMEM (the event is unchanged).  Charged at once; room is
 * made for it at the next pool_add(). */
int pool_event_set_encoding(struct pool *p, struct pool_event *ev, uint64_t key, const void *bytes,
			    size_t len);
void pool_event_unref(struct pool *p, struct pool_event *ev);
/* Charges @bytes held for subscribers outside the pool (the daemon's output
 * buffers) against the byte bound, replacing what was charged before.  Room
 * is made for it at the next pool_add(), never here (callers may be in the
 * middle of reading a ring). */
void pool_set_external(struct pool *p, size_t bytes);
/* The last ID handed out. */
uint64_t pool_current_id(const struct pool *p);
/* Hands out an ID that no event carries, marking a point in the sequence
 * (a watch began: nothing before it was seen by it).  Returns that ID. */
uint64_t pool_mark(struct pool *p);
/* Say that subscriptions changed, so that merging does not hide an event
 * from a subscriber that was not there for the first one. */
void pool_subscriptions_changed(struct pool *p);
void pool_get_stats(const struct pool *p, struct pool_stats *ret);

/* Calls @fn for every history event with ID > @since_id, oldest first,
 * stopping early if @fn returns non-zero.  Returns 0 when the history
 * covers everything after @since_id (it may be that nothing happened),
 * POOL_HISTORY_GAP when events after @since_id have already left the
 * history (the caller must send must-rescan; @fn is still called for what
 * remains), or the non-zero value @fn returned. */
#define POOL_HISTORY_GAP 1
int pool_history_since(struct pool *p, uint64_t since_id,
		       int (*fn)(struct pool_event *ev, void *userdata), void *userdata);
/* The first event ID whose time is at or after @time_ns (CLOCK_REALTIME),
 * within the history.  Returns 0, or -ERANGE when @time_ns is before the
 * oldest event still in the history (the answer would be a guess).  A time
 * after every event gives current ID + 1. */
int pool_id_at_time(const struct pool *p, uint64_t time_ns, uint64_t *ret_id);

/* How a ring presents a shared event to its subscriber. */
enum ring_view {
	RING_VIEW_FULL = 0,
	RING_VIEW_SOURCE = 1,   /* a rename seen as delete of the source, flagged renamed */
	RING_VIEW_DEST = 2,     /* a rename seen as create of the destination, flagged renamed */
	RING_VIEW_HISTORY = 4,  /* or-ed in: replayed from history */
};

struct ring_entry {
	struct pool_event *ev;
	uint8_t view;
};

struct ring_config {
	uint32_t depth;         /* events; at least 4 */
	uint32_t batch;         /* wake when this many are pending; at least 1 */
	uint32_t latency_us;    /* otherwise wake this long after the first; 0 = at once */
};

/* A pending dropped record. */
struct ring_drop {
	uint64_t count;         /* events lost, 0 if unknown (kernel overflow) */
	uint64_t id_first, id_last; /* 0 if unknown */
	uint32_t flags;         /* FSNOTE_FLAG_DROPPED | MUST_RESCAN | reason flags */
	char *scope;            /* narrowest directory covering the losses (malloc) */
};

/* @scope_root is the subscription's root in source space: the rescan scope
 * never widens past it.  @owner is passed back in callbacks. */
int ring_new(struct pool *p, const struct ring_config *cfg, const char *scope_root,
	     void *owner, struct ring **ret);
/* Releases every reference and the pending drop.  NULL-safe, returns NULL. */
struct ring *ring_free(struct ring *r);
void *ring_owner(const struct ring *r);

enum ring_wake {
	RING_QUIET = 0,       /* nothing to do yet */
	RING_WAKE_NOW = 1,    /* deliver now */
	RING_WAKE_LATER = 2,  /* arm a timer for the latency window (once per batch) */
};
/* Queues a reference to @ev.  When the ring would pass 3/4 of its depth it
 * is first truncated (all queued events dropped, a drop recorded with
 * FSNOTE_FLAG_RING_OVERFLOW).  Returns the wake verdict, or -ENOMEM when
 * the ring could not grow (the event is then recorded as dropped: the
 * subscriber still learns of the loss). */
int ring_push(struct ring *r, struct pool_event *ev, uint8_t view);
/* The oldest queued entry, or NULL. */
const struct ring_entry *ring_peek(const struct ring *r);
/* Drops the oldest entry (marking its event delivered).  */
void ring_pop(struct ring *r);
/* Takes the pending drop, if any, into @ret (the caller frees ret->scope).
 * Returns true if there was one.  It must be sent before ring_peek()'s. */
bool ring_take_drop(struct ring *r, struct ring_drop *ret);
bool ring_has_drop(const struct ring *r);
/* Records losses the ring did not see itself (kernel overflow: @count 0).
 * Merges with a drop already pending.  @scope NULL means the ring's root. */
void ring_mark_dropped(struct ring *r, uint32_t reason_flags, uint64_t count,
		       uint64_t id_first, uint64_t id_last, const char *scope);
/* CLOCK_MONOTONIC at which the oldest queued entry's event was pooled, 0 if
 * the ring is empty (how long its owner has kept it waiting). */
uint64_t ring_head_mono(const struct ring *r);
/* Counts @ev, in the view @view, in the pending drop instead of queueing it,
 * with every entry still queued (the owner's subscriber already lost events
 * and is not reading: it will rescan anyway). */
void ring_drop_event(struct ring *r, const struct pool_event *ev, uint8_t view);
/* How many more entries the ring can take before it holds half its limit or
 * @cap entries, whichever is less (the point past which its owner should
 * stop taking events in for it). */
uint32_t ring_headroom(const struct ring *r, uint32_t cap);
/* The owner calls this when it starts delivering (timer fired or woken),
 * so that the next push can ask for a new wake-up. */
void ring_woken(struct ring *r);
/* Changes batching for the next wake-ups. */
void ring_set_config(struct ring *r, const struct ring_config *cfg);

struct ring_stats {
	size_t queued, depth, capacity;  /* capacity: slots allocated now */
	uint64_t pushed, delivered, dropped, drops;  /* drops: dropped records made */
};
void ring_get_stats(const struct ring *r, struct ring_stats *ret);

#endif
