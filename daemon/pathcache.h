/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pathcache.h - a bounded cache from directory file handles to paths.
 *
 * The fanotify source learns of every event as (directory handle, name);
 * turning a handle into a path costs open_by_handle_at() and readlink(),
 * which is an order of magnitude slower than everything else it does.  The
 * cache keeps the answer per (filesystem key, handle bytes), bounded by a
 * number of entries and evicting the least recently used.
 *
 * Invariant: a lookup never returns a path that a rename or delete already
 * reported to the cache has made stale.  pathcache_invalidate_tree() is O(1):
 * it appends the old prefix to a bounded log and bumps a generation; an
 * entry older than the current generation is checked against the log records
 * it has not seen yet when it is next looked up (and dropped if it lies under
 * one), and an entry older than the oldest record still in the log is simply
 * dropped.  So correctness never depends on the log's size, only the hit rate
 * does.
 *
 * Pure logic: no system calls, no logging.
 */
#ifndef FSNOTED_PATHCACHE_H
#define FSNOTED_PATHCACHE_H

#include <stddef.h>
#include <stdint.h>

#define PATHCACHE_DEFAULT_ENTRIES 65536
#define PATHCACHE_HANDLE_MAX 128  /* MAX_HANDLE_SZ, type included by the caller */
#define PATHCACHE_LOG_MAX 1024    /* invalidation records kept */

struct pathcache;

struct pathcache_stats {
	size_t entries, max_entries, bytes;
	uint64_t hits, misses, evictions, invalidations, stale_drops;
};

/* @max_entries of 0 takes PATHCACHE_DEFAULT_ENTRIES.  Returns 0 or -ENOMEM. */
int pathcache_new(size_t max_entries, struct pathcache **ret);
/* NULL-safe; returns NULL. */
struct pathcache *pathcache_free(struct pathcache *c);

/* The path cached for (@fs, @handle), or NULL (counted as a miss).  The
 * pointer stays valid until the next call that changes the cache.  A hit
 * makes the entry the most recently used. */
const char *pathcache_lookup(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len,
			     size_t *ret_len);
/* Caches (@fs, @handle) -> @path, replacing an older entry for the same key
 * and evicting the least recently used one when full.  Returns 0, -EINVAL
 * for an empty or oversized handle, or -ENOMEM. */
int pathcache_insert(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len,
		     const char *path, size_t path_len);
/* Drops the entry for (@fs, @handle) if there is one (ESTALE, a deleted
 * directory). */
void pathcache_forget(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len);
/* Makes every entry of @fs whose path is @path or lies below it stale (a
 * directory renamed away from, or deleted at, @path). */
void pathcache_invalidate_tree(struct pathcache *c, uint64_t fs, const char *path, size_t path_len);
/* Drops every entry of @fs (unmount, last watch gone). */
void pathcache_drop_fs(struct pathcache *c, uint64_t fs);
void pathcache_get_stats(const struct pathcache *c, struct pathcache_stats *ret);
/* The hash the cache keys (filesystem, handle) with; for other tables
 * keyed the same way. */
uint64_t pathcache_hash(uint64_t fs, const void *handle, size_t len);

#endif
