/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pathcache.c - the handle -> path cache (see pathcache.h).
 *
 * Entries live in one malloc each (handle bytes, then the path and its NUL),
 * chained in a power-of-two bucket array at least as large as the bound, and
 * on one LRU list, most recent first.  Each entry remembers the generation
 * up to which it has been checked against the invalidation log; the log is a
 * ring of the last PATHCACHE_LOG_MAX invalidated prefixes, record g (counting
 * from 1) at slot (g - 1) % PATHCACHE_LOG_MAX.
 */
#include "pathcache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *hnext;            /* bucket chain */
	struct entry *prev, *next;      /* LRU list, c->head is the most recent */
	uint64_t fs;
	uint64_t hash;
	uint64_t gen;                   /* checked against log records up to this one */
	uint16_t handle_len;
	uint32_t path_len;
	unsigned char data[];           /* handle, then path + NUL */
};

struct logrec {
	uint64_t fs;
	char *prefix;                   /* malloc, owned */
	size_t len;
};

struct pathcache {
	struct entry **buckets;
	size_t n_buckets;               /* power of two */
	size_t n, max;
	size_t bytes;
	struct entry *head, *tail;
	uint64_t gen;                   /* records ever logged */
	struct logrec log[PATHCACHE_LOG_MAX];
	uint64_t hits, misses, evictions, invalidations, stale_drops;
};

uint64_t pathcache_hash(uint64_t fs, const void *handle, size_t len)
{
	const unsigned char *p = handle;
	uint64_t h = 0xcbf29ce484222325ull;

	for (int i = 0; i < 8; i++) {
		h ^= (fs >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

int pathcache_new(size_t max_entries, struct pathcache **ret)
{
	struct pathcache *c = calloc(1, sizeof(*c));
	size_t nb = 64;

	if (!c)
		return -ENOMEM;
	c->max = max_entries ? max_entries : PATHCACHE_DEFAULT_ENTRIES;
	while (nb < c->max && nb < ((size_t)1 << 30))
		nb <<= 1;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return -ENOMEM;
	}
	c->n_buckets = nb;
	*ret = c;
	return 0;
}

static void lru_unlink(struct pathcache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct pathcache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

static void entry_remove(struct pathcache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	lru_unlink(c, e);
	c->n--;
	c->bytes -= sizeof(*e) + e->handle_len + e->path_len + 1;
	free(e);
}

struct pathcache *pathcache_free(struct pathcache *c)
{
	if (!c)
		return NULL;
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	for (size_t i = 0; i < PATHCACHE_LOG_MAX; i++)
		free(c->log[i].prefix);
	free(c->buckets);
	free(c);
	return NULL;
}

static struct entry *find(struct pathcache *c, uint64_t fs, const void *handle, size_t len,
			  uint64_t hash)
{
	for (struct entry *e = c->buckets[hash & (c->n_buckets - 1)]; e; e = e->hnext)
		if (e->hash == hash && e->fs == fs && e->handle_len == len &&
		    memcmp(e->data, handle, len) == 0)
			return e;
	return NULL;
}

static bool under(const char *path, size_t len, const char *prefix, size_t plen)
{
	if (plen == 1 && prefix[0] == '/')
		return true;
	return len >= plen && memcmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/');
}

/* Whether @e survived every invalidation logged since it was last checked. */
static bool still_valid(struct pathcache *c, struct entry *e)
{
	uint64_t oldest = c->gen > PATHCACHE_LOG_MAX ? c->gen - PATHCACHE_LOG_MAX + 1 : 1;
	const char *path = (const char *)e->data + e->handle_len;

	if (e->gen == c->gen)
		return true;
	if (e->gen + 1 < oldest)
		return false; /* records it has not seen are gone: cannot tell */
	for (uint64_t g = e->gen + 1; g <= c->gen; g++) {
		const struct logrec *r = &c->log[(g - 1) % PATHCACHE_LOG_MAX];
		if (r->fs == e->fs && under(path, e->path_len, r->prefix, r->len))
			return false;
	}
	e->gen = c->gen;
	return true;
}

const char *pathcache_lookup(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len,
			     size_t *ret_len)
{
	uint64_t h = pathcache_hash(fs, handle, handle_len);
	struct entry *e = find(c, fs, handle, handle_len, h);

	if (e && !still_valid(c, e)) {
		entry_remove(c, e);
		c->stale_drops++;
		e = NULL;
	}
	if (!e) {
		c->misses++;
		return NULL;
	}
	c->hits++;
	if (c->head != e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	if (ret_len)
		*ret_len = e->path_len;
	return (const char *)e->data + e->handle_len;
}

int pathcache_insert(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len,
		     const char *path, size_t path_len)
{
	if (handle_len == 0 || handle_len > PATHCACHE_HANDLE_MAX || path_len > UINT32_MAX - 1)
		return -EINVAL;
	uint64_t h = pathcache_hash(fs, handle, handle_len);
	struct entry *old = find(c, fs, handle, handle_len, h);
	if (old)
		entry_remove(c, old);
	size_t sz = sizeof(struct entry) + handle_len + path_len + 1;
	struct entry *e = malloc(sz);
	if (!e)
		return -ENOMEM;
	*e = (struct entry){ .fs = fs, .hash = h, .gen = c->gen, .handle_len = (uint16_t)handle_len,
			     .path_len = (uint32_t)path_len };
	memcpy(e->data, handle, handle_len);
	memcpy(e->data + handle_len, path, path_len);
	e->data[handle_len + path_len] = '\0';
	while (c->n >= c->max && c->tail) {
		entry_remove(c, c->tail);
		c->evictions++;
	}
	struct entry **b = &c->buckets[h & (c->n_buckets - 1)];
	e->hnext = *b;
	*b = e;
	lru_push_front(c, e);
	c->n++;
	c->bytes += sz;
	return 0;
}

void pathcache_forget(struct pathcache *c, uint64_t fs, const void *handle, size_t handle_len)
{
	struct entry *e = find(c, fs, handle, handle_len, pathcache_hash(fs, handle, handle_len));
	if (e)
		entry_remove(c, e);
}

void pathcache_drop_fs(struct pathcache *c, uint64_t fs)
{
	for (struct entry *e = c->head, *next; e; e = next) {
		next = e->next;
		if (e->fs == fs)
			entry_remove(c, e);
	}
}

void pathcache_invalidate_tree(struct pathcache *c, uint64_t fs, const char *path, size_t path_len)
{
	char *copy = malloc(path_len + 1);

	c->invalidations++;
	if (c->n == 0) {
		free(copy);
		return;
	}
	if (!copy) {
		/* cannot remember the prefix: forget the whole filesystem instead */
		pathcache_drop_fs(c, fs);
		return;
	}
	memcpy(copy, path, path_len);
	copy[path_len] = '\0';
	c->gen++;
	struct logrec *r = &c->log[(c->gen - 1) % PATHCACHE_LOG_MAX];
	free(r->prefix);
	*r = (struct logrec){ .fs = fs, .prefix = copy, .len = path_len };
}

void pathcache_get_stats(const struct pathcache *c, struct pathcache_stats *ret)
{
	*ret = (struct pathcache_stats){
		.entries = c->n,
		.max_entries = c->max,
		.bytes = c->bytes,
		.hits = c->hits,
		.misses = c->misses,
		.evictions = c->evictions,
		.invalidations = c->invalidations,
		.stale_drops = c->stale_drops,
	};
}
