/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source.h - the interface between kernel event sources and the daemon core.
 *
 * A source turns what the kernel reports into struct source_event and hands
 * each one to its sink.  Paths are in the source's "path space" for the
 * event's filesystem (identified by dev): the fanotify source reports paths
 * relative to the root of the mount it resolves handles through (a detached
 * clone, so the daemon never pins a mount and umount keeps working); the
 * inotify source reports the daemon's absolute paths.  source_ops.watch()
 * returns the subscription root in that same space, so the core maps an
 * event to the subscriber's absolute path by swapping the prefix.
 *
 * A source never keeps a descriptor the core passed to it: it may use
 * @dirfd during watch() only.  Sources never block: the kernel fd is read
 * from the libevent loop in large batches.
 */
#ifndef FSNOTED_SOURCE_H
#define FSNOTED_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "pool.h"

/* The libevent priority of the reads of a bounded kernel queue (inotify):
 * its overflow costs every subscriber, while the pool's bound costs only the
 * slow ones, so whenever such a source is readable it goes before the work
 * of serving clients.  A source whose queue is unbounded (fanotify with
 * FAN_UNLIMITED_QUEUE) keeps the default priority and takes turns with the
 * clients instead.  The daemon initialises the base with SOURCE_PRIORITY + 2
 * priorities (clients get the default, the middle one); on a base without
 * priorities the call fails harmlessly. */
#define SOURCE_PRIORITY 0

struct source_event {
	uint32_t type;          /* FSNOTE_EV_* */
	uint32_t flags;         /* FSNOTE_FLAG_IS_DIR, FSNOTE_FLAG_RENAMED ... */
	uint32_t pid;           /* 0 if unknown */
	uint64_t time_ns;       /* CLOCK_REALTIME when read */
	uint64_t dev;           /* st_dev of the filesystem */
	const char *path;       /* source space, starts with '/', no trailing '/' except "/" */
	size_t path_len;
	const char *dest;       /* rename destination, else NULL */
	size_t dest_len;
	struct pool_stat st, dest_st;
	/* the directory objects the kernel named for @path and @dest (see
	 * struct pool_dirid; bytes borrowed for the call) */
	struct pool_dirid dir, dest_dir;
};

struct source;
struct source_watch;

/* Implemented by the core; called by sources from the event loop. */
struct source_sink {
	void *ctx;
	void (*event)(void *ctx, const struct source_event *ev);
	/* The kernel queue overflowed: events on @dev (0 = every filesystem
	 * of this source) were lost.  @scope: a source-space directory that
	 * covers the loss, or NULL for the whole filesystem. */
	void (*overflow)(void *ctx, uint64_t dev, const char *scope);
	/* Events on @dev were lost for another reason than the kernel's
	 * queue: @reason is the FSNOTE_FLAG_* that says why (0: unknown).  May
	 * be NULL; sources then report an overflow. */
	void (*lost)(void *ctx, uint64_t dev, const char *scope, uint32_t reason);
	/* @dev was unmounted; every watch on it is dead (the core ends the
	 * subscriptions and calls unwatch). */
	void (*unmount)(void *ctx, uint64_t dev);
	/* A watch can no longer be kept complete (inotify: max_user_watches
	 * exhausted while following new directories).  @error is -errno. */
	void (*watch_error)(void *ctx, struct source_watch *w, int error);
	/* How many more events the core can take now without a subscriber
	 * that keeps up losing any (SIZE_MAX: no bound, 0: none).  A source
	 * whose kernel queue is unbounded reads no more than this and holds
	 * its queue at 0, until ops->resume(); one with a bounded queue
	 * (inotify) reads regardless, since its overflow costs everyone.  May
	 * be NULL. */
	size_t (*read_room)(void *ctx);
	/* A watch that ops->watch() left pending is complete (@error 0) or
	 * failed (-errno, as ops->watch() would have).  May be NULL: sources
	 * then never leave a watch pending. */
	void (*watch_ready)(void *ctx, struct source_watch *w, int error);
};

#define SOURCE_WATCH_PENDING 1

enum source_watch_flags {
	SOURCE_WATCH_RECURSIVE = 1u << 0, /* the whole subtree (else the directory and its children) */
};

struct source_watch_info {
	uint64_t dev;           /* filesystem of the root */
	char *root;             /* the root in source space (malloc, caller frees) */
	uint32_t flags;         /* FSNOTE_FLAG_LOCAL_ONLY where only local changes are seen */
};

struct source_ops {
	const char *name;       /* "fanotify", "inotify" */
	/* Starts watching the directory open at @dirfd (borrowed, not kept),
	 * whose absolute path in the daemon is @path (NULL when the daemon
	 * has none: the descriptor is on a mount of another namespace, which
	 * only a source that finds directories by handle can serve).  @excludes (see
	 * exclude.h, relative to the root; borrowed for the life of the watch)
	 * name directories the watch need not follow: a source may skip work
	 * below a directory only when every watch covering it excludes it.
	 * Returns 0 with *ret and
	 * *ret_info filled, or -errno: -EXDEV/-EOPNOTSUPP for a filesystem the
	 * source cannot watch completely (with a reason in *ret_reason, static
	 * string), -ENOSPC when kernel watch limits are exhausted.  A source
	 * that can watch only the changes made on this host returns 0 with
	 * FSNOTE_FLAG_LOCAL_ONLY in ret_info->flags and the reason in
	 * *ret_reason.  When the core allows it (source.may_defer) and the
	 * sink has watch_ready, a source may return SOURCE_WATCH_PENDING with
	 * *ret and *ret_info filled: the watch is completed in later turns of
	 * the event loop and watch_ready() says how it ended (unwatch before
	 * that cancels it). */
	int (*watch)(struct source *s, int dirfd, const char *path, uint32_t flags,
		     char *const *excludes, size_t n_excludes, struct source_watch **ret,
		     struct source_watch_info *ret_info, const char **ret_reason);
	void (*unwatch)(struct source *s, struct source_watch *w);
	/* The union of event types (FSNOTE_EV_BIT) some subscriber wants. */
	void (*set_interest)(struct source *s, uint64_t type_mask);
	/* Reads, synchronously, everything the kernel has queued so far and
	 * hands it to the sink.  Returns 0 or -errno. */
	int (*flush)(struct source *s);
	/* The core has room again after read_room() said 0: read now.  NULL
	 * for a source that never holds. */
	void (*resume)(struct source *s);
	/* Adds the source's figures to @obj (marks, cache hit rate, features). */
	void (*status)(struct source *s, json_t *obj);
	/* Opens, O_PATH, the object with the given file handle on filesystem
	 * @dev through the source's own view of it.  Returns the descriptor
	 * or -errno.  NULL for a source that has no such view (inotify). */
	int (*open_handle)(struct source *s, uint64_t dev, int32_t type, const unsigned char *handle,
			   size_t len);
	/* FSNOTE_FEATURE_* this source provides. */
	uint64_t (*features)(struct source *s);
	void (*free)(struct source *s);
};

/* Kernel watches charged to one uid (inotify: one per directory).  The
 * core owns it and keeps it alive while any watch charged to it exists. */
struct source_budget {
	uint64_t used;
	uint64_t limit;         /* UINT64_MAX: none */
};

struct source {
	const struct source_ops *ops;
	/* Set by the core around ops->watch(): the kernel watches that call
	 * adds, and those its watch later adds as the tree grows, are charged
	 * here (NULL: to nobody).  A source whose watches cost nothing per
	 * directory ignores it. */
	struct source_budget *charge_to;
	/* Set by the core around ops->watch() when the request can wait for a
	 * watch to be completed in later turns (SOURCE_WATCH_PENDING). */
	bool may_defer;
	/* Set by the core: some subscriber wants attributes (FIELDS).  When
	 * false a source leaves source_event.st and dest_st invalid instead of
	 * looking them up. */
	bool want_stat;
};

/* Each returns 0 or -errno (-EPERM without the needed capability, -ENOSYS
 * when the kernel lacks what the source needs). */
/* @path_cache_entries bounds the fanotify source's handle-to-path cache
 * (0: its default). */
int source_fanotify_new(struct event_base *base, const struct source_sink *sink,
			size_t path_cache_entries, struct source **ret);
int source_inotify_new(struct event_base *base, const struct source_sink *sink,
		       struct source **ret);

static inline struct source *source_free(struct source *s)
{
	if (s)
		s->ops->free(s);
	return NULL;
}

#endif
