/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source-inotify.c - the inotify kernel source (see source.h).
 *
 * inotify serves where fanotify with file handles cannot: filesystems
 * without handle support, and a daemon without CAP_SYS_ADMIN.  It reports
 * per directory, so this file owns a table of watched directories ("nodes")
 * shared by every source_watch: ten subscriptions on one tree cost one set of
 * kernel watches.  Nodes form a tree mirroring the directories: a child keeps
 * only its name and a pointer to its parent, so renaming a directory changes
 * the path of its whole watched subtree at once; a node whose parent is not
 * watched (a "root") keeps its absolute path.  Nodes are found by wd (for
 * events) and by (parent, name) (for names in events).
 *
 * Invariants:
 *  - a node exists exactly while some source_watch covers it (n_ws > 0) and
 *    holds one kernel watch (wd) on the directory it was opened as; the wd
 *    is added through /proc/self/fd/N of the descriptor we opened, so the
 *    watched inode is the one we walked, never one swapped in by a rename;
 *  - a watch W in a node's set is also in its parent's set, unless the node
 *    is W's root: W's nodes are a connected subtree, so unwatching is a walk
 *    of the table, not of the filesystem;
 *  - a directory appears in the table before its contents are read, so
 *    nothing created in it between mkdir and the watch is missed;
 *  - every table, queue and buffer is bounded: nodes by the kernel's
 *    max_user_watches, pending renames by PENDING_MAX (the oldest is then
 *    resolved early), walk stacks by the directory depth with at most
 *    KEEP_FDS descriptors open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "exclude.h"
#include "fsnote-protocol.h"
#include "mountinfo.h"
#include "source.h"

#define READ_BUF (256 * 1024)           /* one read() of the inotify fd */
#define READS_PER_CALLBACK 16           /* then let the loop serve others */
#define PENDING_MAX 64                  /* unpaired IN_MOVED_FROM held */
#define PENDING_USEC 5000               /* how long one is held at most */
#define KEEP_FDS 64                     /* walk levels that keep their fd */
#define PATH_BUF (2 * FSNOTE_PATH_MAX)  /* longer paths cannot be reported */
#define DENTS_BUF (64 * 1024)
/* A new subscription's tree is walked WALK_SLICE directories per turn of
 * the event loop, so that other clients are served meanwhile; at most
 * WALKS_MAX walks (each holding up to KEEP_FDS descriptors) go on at once,
 * later ones are walked in one go. */
#define WALK_SLICE 256
#define WALKS_MAX 16

/* Always watched: what keeps the table in step with the tree. */
#define MASK_TREE (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
		   IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct isrc;

struct node {
	int wd;
	bool ignored;                   /* the kernel already dropped the watch */
	uint64_t dev, ino;
	int32_t htype;                  /* the directory's file handle, taken when */
	uint8_t hlen;                   /* it was first watched; hlen 0: none */
	unsigned char *handle;
	struct node *parent;            /* NULL: a root; @name is its absolute path */
	struct node *child;             /* first child */
	struct node *prev, *next;       /* siblings, or the roots list */
	struct node *wd_next, *name_next; /* hash chains */
	struct source_watch *rooted;    /* watches whose root this is */
	struct source_watch **ws;       /* watches covering this directory */
	uint32_t n_ws, cap_ws;
	uint32_t hash;
	uint64_t own_drain;             /* opened by the daemon before drain own_drain - 1 ended */
	struct source_budget *charged;  /* whose kernel watch this is, or NULL */
	size_t name_len;
	char *name;
};

struct source_watch {
	struct isrc *src;
	struct node *root;              /* NULL once the root is gone */
	struct source_watch *rooted_next;
	struct source_watch *prev, *next; /* every watch of the source */
	uint64_t dev;
	uint32_t flags;                 /* SOURCE_WATCH_* */
	char *const *excludes;          /* borrowed for the life of the watch */
	size_t n_excludes;
	struct source_budget *budget;   /* charged for the kernel watches it adds */
	struct walk *walk;              /* still being set up, a slice per turn */
	bool rewalk_due;                /* to walk again after an overflow, when a
	                                 * walk slot is free */
	bool errored;                   /* watch_error already sent */
};

struct pending {
	uint32_t cookie, mask;
	int wd;
	uint64_t seq;                   /* the read that brought it */
	uint64_t time_ns;
	char name[NAME_MAX + 1];
};

struct fsdev {
	uint64_t dev;
	size_t nodes;
	bool unmounted;                 /* unmount already reported */
};

struct isrc {
	struct source pub;
	struct source_sink sink;
	struct event_base *base;
	int fd;                         /* the inotify instance, owned */
	struct event *ev, *timer;
	uint8_t *buf;                   /* READ_BUF bytes */
	uint32_t mask;                  /* what every watch is added with */
	bool no_proc;                   /* /proc/self/fd unusable: add by path */
	struct node **wd_tab, **name_tab;
	size_t tab_cap;                 /* both tables, a power of two */
	size_t n_nodes;
	struct node *roots;
	struct source_watch *watches;
	size_t n_watches;
	struct fsdev *devs;
	size_t n_devs;
	struct pending pend[PENDING_MAX];
	size_t n_pend;
	uint64_t read_seq;
	uint64_t drains;                /* reads that found the queue empty */
	struct event *ev_walk;          /* the next slice of the pending walks */
	size_t n_walks;                 /* watches with a walk pending */
	uint64_t events_read, overflows, watch_errors, skipped, unmounts;
	char path[PATH_BUF], path2[PATH_BUF];
};

/* --- node tables ---------------------------------------------------------- */

static uint32_t name_hash(const struct node *parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ ((uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull);
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return (uint32_t)(h ^ (h >> 32));
}

static size_t wd_slot(const struct isrc *s, int wd)
{
	return ((uint32_t)wd * 2654435761u) & (s->tab_cap - 1);
}

static int tables_grow(struct isrc *s)
{
	size_t cap = s->tab_cap ? s->tab_cap * 2 : 1024;
	struct node **wt = calloc(cap, sizeof(*wt)), **nt = calloc(cap, sizeof(*nt));
	if (!wt || !nt) {
		free(wt);
		free(nt);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->tab_cap; i++) {
		for (struct node *n = s->wd_tab[i], *next; n; n = next) {
			next = n->wd_next;
			size_t k = ((uint32_t)n->wd * 2654435761u) & (cap - 1);
			n->wd_next = wt[k];
			wt[k] = n;
		}
		for (struct node *n = s->name_tab[i], *next; n; n = next) {
			next = n->name_next;
			n->name_next = nt[n->hash & (cap - 1)];
			nt[n->hash & (cap - 1)] = n;
		}
	}
	free(s->wd_tab);
	free(s->name_tab);
	s->wd_tab = wt;
	s->name_tab = nt;
	s->tab_cap = cap;
	return 0;
}

static struct node *wd_find(const struct isrc *s, int wd)
{
	if (!s->tab_cap)
		return NULL;
	for (struct node *n = s->wd_tab[wd_slot(s, wd)]; n; n = n->wd_next)
		if (n->wd == wd)
			return n;
	return NULL;
}

static struct node *name_find(const struct isrc *s, const struct node *parent, const char *name,
			      size_t len)
{
	if (!s->tab_cap)
		return NULL;
	uint32_t h = name_hash(parent, name, len);
	for (struct node *n = s->name_tab[h & (s->tab_cap - 1)]; n; n = n->name_next)
		if (n->hash == h && n->parent == parent && n->name_len == len &&
		    memcmp(n->name, name, len) == 0)
			return n;
	return NULL;
}

static void unchain(struct node **head, struct node *n, bool by_wd)
{
	for (struct node **pp = head; *pp; pp = by_wd ? &(*pp)->wd_next : &(*pp)->name_next) {
		if (*pp == n) {
			*pp = by_wd ? n->wd_next : n->name_next;
			return;
		}
	}
}

/* Takes @n out of its parent's children (or the roots) and the name table. */
static void node_unplace(struct isrc *s, struct node *n)
{
	struct node **head = n->parent ? &n->parent->child : &s->roots;
	if (n->prev)
		n->prev->next = n->next;
	else
		*head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
	if (n->parent)
		unchain(&s->name_tab[n->hash & (s->tab_cap - 1)], n, false);
}

/* Puts @n under @parent as @name (or, @parent NULL, as a root whose
 * absolute path is @name).  Takes @name (malloc). */
static void node_place(struct isrc *s, struct node *n, struct node *parent, char *name, size_t len)
{
	free(n->name);
	n->name = name;
	n->name_len = len;
	n->parent = parent;
	struct node **head = parent ? &parent->child : &s->roots;
	n->prev = NULL;
	n->next = *head;
	if (*head)
		(*head)->prev = n;
	*head = n;
	if (parent) {
		n->hash = name_hash(parent, name, len);
		size_t k = n->hash & (s->tab_cap - 1);
		n->name_next = s->name_tab[k];
		s->name_tab[k] = n;
	}
}

static size_t node_path_len(const struct node *n)
{
	size_t len = 0;
	const struct node *p;
	for (p = n; p->parent; p = p->parent)
		len += 1 + p->name_len;
	return (p->name_len == 1 && p != n) ? len : len + p->name_len;
}

/* Writes the absolute path of @n to @buf.  Returns its length, or
 * -ENAMETOOLONG. */
static int node_path(const struct node *n, char *buf, size_t cap)
{
	size_t total = node_path_len(n);
	if (total + 1 > cap)
		return -ENAMETOOLONG;
	size_t at = total;
	const struct node *p;
	buf[at] = '\0';
	for (p = n; p->parent; p = p->parent) {
		at -= p->name_len;
		memcpy(buf + at, p->name, p->name_len);
		buf[--at] = '/';
	}
	if (at > 0 || p == n)
		memcpy(buf, p->name, p->name_len);
	return (int)total;
}

/* Appends "/name" to the path of length @len in @buf (a root "/" gets no
 * second slash).  Returns the new length or -ENAMETOOLONG. */
static int path_append(char *buf, size_t len, size_t cap, const char *name, size_t nl)
{
	size_t at = len == 1 ? 1 : len + 1;
	if (at + nl + 1 > cap)
		return -ENAMETOOLONG;
	buf[at - 1] = '/';
	memcpy(buf + at, name, nl);
	buf[at + nl] = '\0';
	return (int)(at + nl);
}

static struct fsdev *fsdev_find(struct isrc *s, uint64_t dev)
{
	for (size_t i = 0; i < s->n_devs; i++)
		if (s->devs[i].dev == dev)
			return &s->devs[i];
	return NULL;
}

static bool ws_has(const struct node *n, const struct source_watch *w)
{
	for (uint32_t i = 0; i < n->n_ws; i++)
		if (n->ws[i] == w)
			return true;
	return false;
}

static int ws_add(struct node *n, struct source_watch *w)
{
	if (ws_has(n, w))
		return 0;
	if (n->n_ws == n->cap_ws) {
		uint32_t cap = n->cap_ws ? n->cap_ws * 2 : 2;
		struct source_watch **v = realloc(n->ws, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		n->ws = v;
		n->cap_ws = cap;
	}
	n->ws[n->n_ws++] = w;
	return 0;
}

static void ws_del(struct node *n, const struct source_watch *w)
{
	for (uint32_t i = 0; i < n->n_ws; i++) {
		if (n->ws[i] == w) {
			n->ws[i] = n->ws[--n->n_ws];
			break;
		}
	}
	/* the kernel watch stays while others cover the directory: it is then
	 * theirs to pay for */
	if (!n->charged || n->charged != w->budget)
		return;
	for (uint32_t i = 0; i < n->n_ws; i++)
		if (n->ws[i]->budget == n->charged)
			return;
	n->charged->used--;
	n->charged = n->n_ws ? n->ws[0]->budget : NULL;
	if (n->charged)
		n->charged->used++;
}

/* Who pays for a new kernel watch on a directory covered by the candidates
 * marked in @in: the first whose budget has room, or nobody when one has
 * no budget.  Returns false when every budget is spent. */
static bool budget_for(struct source_watch **ws, const uint8_t *in, size_t n,
		       struct source_budget **ret)
{
	for (size_t i = 0; i < n; i++) {
		if (!in[i])
			continue;
		struct source_budget *b = ws[i]->budget;
		if (!b || b->used < b->limit) {
			*ret = b;
			return true;
		}
	}
	return false;
}

static struct node *node_new(struct isrc *s, int wd, const struct stat *st, struct node *parent,
			     const char *name, size_t len)
{
	if (s->n_nodes + 1 > s->tab_cap && tables_grow(s) < 0)
		return NULL;
	struct fsdev *d = fsdev_find(s, (uint64_t)st->st_dev);
	if (!d) {
		struct fsdev *v = realloc(s->devs, (s->n_devs + 1) * sizeof(*v));
		if (!v)
			return NULL;
		s->devs = v;
		d = &s->devs[s->n_devs++];
		*d = (struct fsdev){ .dev = (uint64_t)st->st_dev };
	}
	struct node *n = calloc(1, sizeof(*n));
	char *nm = strndup(name, len);
	if (!n || !nm) {
		free(n);
		free(nm);
		return NULL;
	}
	n->wd = wd;
	n->dev = (uint64_t)st->st_dev;
	n->ino = (uint64_t)st->st_ino;
	size_t k = wd_slot(s, wd);
	n->wd_next = s->wd_tab[k];
	s->wd_tab[k] = n;
	node_place(s, n, parent, nm, len);
	d->nodes++;
	s->n_nodes++;
	return n;
}

static void walks_forget(struct isrc *s, const struct node *n);

/* Frees @n; children still covered by other watches become roots.  Watches
 * rooted here die (their root becomes NULL). */
static void node_free(struct isrc *s, struct node *n)
{
	while (n->child) {
		struct node *c = n->child;
		char *p = malloc(PATH_BUF);
		int len = p ? node_path(c, p, PATH_BUF) : -ENOMEM;
		node_unplace(s, c);
		if (len < 0) {
			/* cannot name it any more: its events could not be reported */
			free(p);
			c->parent = NULL;
			node_place(s, c, NULL, strdup("/"), 1);
			continue;
		}
		c->parent = NULL;
		node_place(s, c, NULL, p, (size_t)len);
	}
	for (struct source_watch *w = n->rooted; w; w = w->rooted_next)
		w->root = NULL;
	n->rooted = NULL;
	if (s->n_walks)
		walks_forget(s, n);
	node_unplace(s, n);
	unchain(&s->wd_tab[wd_slot(s, n->wd)], n, true);
	if (!n->ignored)
		(void)inotify_rm_watch(s->fd, n->wd);
	struct fsdev *d = fsdev_find(s, n->dev);
	if (d && --d->nodes == 0)
		*d = s->devs[--s->n_devs];
	s->n_nodes--;
	if (n->charged)
		n->charged->used--;
	free(n->ws);
	free(n->name);
	free(n->handle);
	free(n);
}

/* A growable vector of nodes for the table walks. */
struct nvec {
	struct node **v;
	size_t n, cap;
};

static int nvec_push(struct nvec *v, struct node *n)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		struct node **nv = realloc(v->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = n;
	return 0;
}

/* Collects, parents first, @start and its descendants (only through nodes
 * covered by @w, when @w is set). */
static int collect(struct node *start, const struct source_watch *w, struct nvec *out)
{
	int r = nvec_push(out, start);
	for (size_t i = out->n - 1; r == 0 && i < out->n; i++)
		for (struct node *c = out->v[i]->child; c && r == 0; c = c->next)
			if (!w || ws_has(c, w))
				r = nvec_push(out, c);
	return r;
}

/* Takes @w off @start and every node below it that @w covers; nodes no
 * watch covers any more go. */
static void strip(struct isrc *s, struct source_watch *w, struct node *start)
{
	struct nvec v = { 0 };

	if (collect(start, w, &v) < 0) {
		/* cannot list them: keep watching rather than lose track */
		free(v.v);
		return;
	}
	for (size_t i = v.n; i-- > 0;) {
		ws_del(v.v[i], w);
		if (v.v[i]->n_ws == 0)
			node_free(s, v.v[i]);
	}
	free(v.v);
}

static void emit(struct isrc *s, uint32_t type, uint32_t flags, const struct node *dir, bool self,
		 const char *path, size_t plen, const struct node *ddir, const char *dest, size_t dlen,
		 uint64_t now, bool do_stat);

/* Drops @top and everything below it (deleted, moved out, unmounted).  With
 * @announce, every watch rooted strictly below @top (or at @top too, when
 * @announce > 1) learns that its root left, as a delete of the root. */
static void remove_subtree(struct isrc *s, struct node *top, int announce, uint64_t now)
{
	struct nvec v = { 0 };

	if (collect(top, NULL, &v) < 0) {
		free(v.v);
		node_free(s, top); /* its children become roots: still tracked */
		return;
	}
	for (size_t i = v.n; i-- > 0;) {
		struct node *n = v.v[i];
		if (announce && n->rooted && (n != top || announce > 1)) {
			int len = node_path(n, s->path2, sizeof(s->path2));
			if (len > 0)
				emit(s, FSNOTE_EV_DELETE, FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_RENAMED, n, true,
				     s->path2, (size_t)len, NULL, NULL, 0, now, false);
		}
		node_free(s, n);
	}
	free(v.v);
}

/* The node at absolute @path, or NULL. */
static struct node *node_by_path(const struct isrc *s, const char *path, size_t len)
{
	for (struct node *r = s->roots; r; r = r->next) {
		const char *rest;
		if (r->name_len == 1)
			rest = path + 1;
		else if (len >= r->name_len && memcmp(path, r->name, r->name_len) == 0 &&
			 (len == r->name_len || path[r->name_len] == '/'))
			rest = path + r->name_len + (len > r->name_len);
		else
			continue;
		struct node *n = r;
		const char *end = path + len;
		while (n && rest < end) {
			const char *slash = memchr(rest, '/', (size_t)(end - rest));
			size_t cl = slash ? (size_t)(slash - rest) : (size_t)(end - rest);
			n = name_find(s, n, rest, cl);
			rest += cl + (slash != NULL);
		}
		if (n)
			return n;
	}
	return NULL;
}

/* --- events --------------------------------------------------------------- */

static void fill_stat(struct pool_stat *ps, const struct stat *st)
{
	*ps = (struct pool_stat){
		.valid = true,
		.ino = (uint64_t)st->st_ino,
		.mode = (uint32_t)st->st_mode,
		.uid = (uint32_t)st->st_uid,
		.gid = (uint32_t)st->st_gid,
	};
}

/* The identity the core's access checks judge: the watched directory. */
static struct pool_dirid node_dirid(const struct node *n, bool self)
{
	if (!n)
		return (struct pool_dirid){ .ino = 0 };
	return (struct pool_dirid){ .ino = n->ino, .type = n->htype, .len = n->hlen, .self = self,
				    .bytes = n->handle };
}

/* Takes the file handle of the directory open at @fd for @n, once.  A
 * filesystem that makes none leaves the inode, which the watch pins. */
static void node_take_handle(struct node *n, int fd)
{
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + POOL_HANDLE_MAX];
	} u = { .fh.handle_bytes = POOL_HANDLE_MAX };
	int mnt;

	if (n->handle || name_to_handle_at(fd, "", &u.fh, &mnt, AT_EMPTY_PATH) < 0 ||
	    u.fh.handle_bytes == 0 || u.fh.handle_bytes > POOL_HANDLE_MAX)
		return;
	n->handle = malloc(u.fh.handle_bytes);
	if (!n->handle)
		return;
	memcpy(n->handle, u.fh.f_handle, u.fh.handle_bytes);
	n->htype = u.fh.handle_type;
	n->hlen = (uint8_t)u.fh.handle_bytes;
}

static void emit_st(struct isrc *s, uint32_t type, uint32_t flags, const struct node *dir, bool self,
		    const char *path, size_t plen, const struct node *ddir, const char *dest,
		    size_t dlen, uint64_t now, const struct stat *st)
{
	struct source_event ev = {
		.type = type,
		.flags = flags,
		.time_ns = now,
		.dev = dir->dev,
		.path = path,
		.path_len = plen,
		.dest = dest,
		.dest_len = dest ? dlen : 0,
		.dir = node_dirid(dir, self),
		.dest_dir = node_dirid(dest ? ddir : NULL, false),
	};
	if (st) {
		fill_stat(&ev.st, st);
		if (dest)
			ev.dest_st = ev.st;
	}
	s->sink.event(s->sink.ctx, &ev);
}

/* The watched directory @dir itself, as it is now at absolute @path
 * (length @plen): nothing when the path leads to another directory by now
 * (the watch pins the inode, so its number names it). */
static bool stat_dir_at(const struct node *dir, const char *path, size_t plen, struct stat *ret)
{
	char dpath[PATH_BUF];
	struct stat st;

	if (plen == 0 || plen >= sizeof(dpath))
		return false;
	memcpy(dpath, path, plen);
	dpath[plen] = '\0';
	if (lstat(dpath, &st) < 0 || !S_ISDIR(st.st_mode) || (uint64_t)st.st_dev != dir->dev ||
	    (uint64_t)st.st_ino != dir->ino)
		return false;
	*ret = st;
	return true;
}

static void emit(struct isrc *s, uint32_t type, uint32_t flags, const struct node *dir, bool self,
		 const char *path, size_t plen, const struct node *ddir, const char *dest, size_t dlen,
		 uint64_t now, bool do_stat)
{
	/* inotify names no object, only a directory and a name, and the name
	 * may lead to another object by the time the event is read (a rename
	 * target replaced, a file deleted and made again by someone else):
	 * attributes are given only for a watched directory itself, which
	 * its watch identifies; entries get none rather than another's */
	struct stat st;
	bool have = do_stat && s->pub.want_stat && self && !dest && stat_dir_at(dir, path, plen, &st);
	emit_st(s, type, flags, dir, self, path, plen, ddir, dest, dlen, now, have ? &st : NULL);
}

/* --- walking directories ---------------------------------------------------- */

static int open_dir_at(int dirfd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   (dirfd == AT_FDCWD ? 0 : RESOLVE_BENEATH),
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	if (fd < 0 && errno == ENOSYS)
		fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Adds the kernel watch for the directory open at @fd, which is @path. */
static int add_watch_fd(struct isrc *s, int fd, const char *path, const struct stat *st)
{
	if (!s->no_proc) {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		int wd = inotify_add_watch(s->fd, proc, s->mask);
		return wd < 0 ? -errno : wd;
	}
	int wd = inotify_add_watch(s->fd, path, s->mask | IN_DONT_FOLLOW);
	if (wd < 0)
		return -errno;
	struct stat now;
	if (fstatat(AT_FDCWD, path, &now, AT_SYMLINK_NOFOLLOW) < 0 || now.st_dev != st->st_dev ||
	    now.st_ino != st->st_ino) {
		/* the path moved to another directory since we opened it */
		if (!wd_find(s, wd))
			(void)inotify_rm_watch(s->fd, wd);
		return -ENOENT;
	}
	return wd;
}

struct frame {
	struct node *node;
	int fd;                 /* -1 past KEEP_FDS levels */
	char *names;            /* subdirectories, NUL-separated */
	size_t names_len, pos;
	size_t path_len;
};

struct walk {
	struct isrc *s;
	struct source_watch **ws;       /* the candidate watches */
	size_t n_ws;
	size_t *rel_off;                /* where each one's relative path starts */
	bool emit;                      /* synthesize creates for what is found */
	bool follow;                    /* later growth: errors go to watch_error */
	uint64_t now;
	struct node *top;               /* the node of the start directory */
	struct frame *fr;
	size_t depth, cap;
	uint8_t *in;                    /* cap * n_ws: which candidates cover each frame */
	char *path;
	char *dents;
	int error;                      /* a pending walk that could not go on: -errno */
};

static int walk_init(struct walk *w, struct isrc *s, struct source_watch **ws, size_t n,
		     size_t start_len, bool emit, bool follow, uint64_t now)
{
	*w = (struct walk){ .s = s, .n_ws = n, .emit = emit, .follow = follow, .now = now };
	w->ws = malloc(n * sizeof(*w->ws));
	w->rel_off = malloc(n * sizeof(*w->rel_off));
	w->path = malloc(PATH_BUF);
	w->dents = malloc(DENTS_BUF);
	if (!w->ws || !w->rel_off || !w->path || !w->dents)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		w->ws[i] = ws[i];
		size_t rl = ws[i]->root ? node_path_len(ws[i]->root) : start_len;
		w->rel_off[i] = rl == 1 ? 1 : rl + 1;
	}
	return 0;
}

static void walk_done(struct walk *w)
{
	for (size_t i = 0; i < w->depth; i++) {
		if (w->fr[i].fd >= 0)
			close(w->fr[i].fd);
		free(w->fr[i].names);
	}
	free(w->fr);
	free(w->in);
	free(w->ws);
	free(w->rel_off);
	free(w->path);
	free(w->dents);
}

static bool is_skippable(int r)
{
	return r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -EACCES || r == -EPERM ||
	       r == -ESTALE || r == -EXDEV || r == -ENAMETOOLONG || r == -EAGAIN;
}

/* A directory could not be watched.  At setup that fails the watch (except
 * for what vanished or is unreadable); later, the covering watches learn
 * they are incomplete, once each. */
static int walk_fail(struct walk *w, int r, const uint8_t *in)
{
	struct isrc *s = w->s;

	if (is_skippable(r)) {
		s->skipped++;
		return 0;
	}
	if (!w->follow)
		return r;
	s->watch_errors++;
	for (size_t i = 0; i < w->n_ws; i++) {
		if (in[i] && !w->ws[i]->errored) {
			w->ws[i]->errored = true;
			s->sink.watch_error(s->sink.ctx, w->ws[i], r);
		}
	}
	return 0;
}

static uint8_t *walk_in(struct walk *w, size_t depth)
{
	return w->in + depth * w->n_ws;
}

static int walk_reserve(struct walk *w, size_t depth)
{
	if (depth < w->cap)
		return 0;
	size_t cap = w->cap ? w->cap * 2 : 16;
	struct frame *f = realloc(w->fr, cap * sizeof(*f));
	if (!f)
		return -ENOMEM;
	w->fr = f;
	uint8_t *in = realloc(w->in, cap * (w->n_ws ? w->n_ws : 1));
	if (!in)
		return -ENOMEM;
	w->in = in;
	w->cap = cap;
	return 0;
}

/* The node for the directory we hold open as @wd: found again, moved to
 * where we found it, or new. */
static struct node *node_get(struct isrc *s, int wd, const struct stat *st, struct node *parent,
			     const char *name, size_t nl)
{
	struct node *n = wd_find(s, wd);
	if (n && (n->dev != (uint64_t)st->st_dev || n->ino != (uint64_t)st->st_ino)) {
		remove_subtree(s, n, 0, 0); /* a recycled wd: the old entry is stale */
		n = NULL;
	}
	struct node *old = parent ? name_find(s, parent, name, nl) : NULL;
	if (old && old != n) {
		/* the name now holds another directory: the old one is gone */
		remove_subtree(s, old, 1, now_real_ns());
	}
	if (!n)
		return node_new(s, wd, st, parent, name, nl);
	if (!parent)
		return n; /* a watch's root that the table knows already */
	if (n->parent != parent) {
		for (struct node *a = parent; a; a = a->parent)
			if (a == n)
				return n; /* would make a loop: the events will sort it out */
	}
	if (n->parent != parent || n->name_len != nl || memcmp(n->name, name, nl) != 0) {
		char *nm = strndup(name, nl);
		if (!nm)
			return NULL;
		node_unplace(s, n);
		node_place(s, n, parent, nm, nl);
	}
	return n;
}

/* Takes @fd, the directory at w->path (length @plen) found as @name in
 * @parent, covered by the candidates marked in walk_in(w, w->depth): watches
 * it, reads it and pushes a frame for its subdirectories. */
static int walk_push(struct walk *w, int fd, struct node *parent, const char *name, size_t nl,
		     size_t plen)
{
	struct isrc *s = w->s;
	uint8_t *in = walk_in(w, w->depth);
	struct stat st;
	bool any = false;
	int r;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return walk_fail(w, r, in);
	}
	for (size_t i = 0; i < w->n_ws; i++) {
		if (in[i] && st.st_dev != (dev_t)w->ws[i]->dev)
			in[i] = 0; /* another filesystem: never crossed */
		any |= in[i];
	}
	if (!any || !S_ISDIR(st.st_mode)) {
		close(fd);
		return 0;
	}
	int wd = add_watch_fd(s, fd, w->path, &st);
	if (wd < 0) {
		close(fd);
		return walk_fail(w, wd, in);
	}
	/* a new kernel watch is charged to a uid (max_watches_per_uid) */
	struct node *known = wd_find(s, wd);
	bool fresh = !known || known->dev != (uint64_t)st.st_dev || known->ino != (uint64_t)st.st_ino;
	struct source_budget *pay = NULL;
	if (fresh && !budget_for(w->ws, in, w->n_ws, &pay)) {
		if (!known)
			(void)inotify_rm_watch(s->fd, wd);
		close(fd);
		return walk_fail(w, -EDQUOT, in);
	}
	struct node *n = node_get(s, wd, &st, parent, parent ? name : w->path, parent ? nl : plen);
	if (n)
		node_take_handle(n, fd);
	if (!n) {
		if (!wd_find(s, wd))
			(void)inotify_rm_watch(s->fd, wd);
		close(fd);
		return walk_fail(w, -ENOMEM, in);
	}
	if (fresh && !n->charged && pay) {
		n->charged = pay;
		pay->used++;
	}
	for (size_t i = 0; i < w->n_ws; i++) {
		if (in[i] && ws_add(n, w->ws[i]) < 0) {
			close(fd);
			return walk_fail(w, -ENOMEM, in);
		}
	}
	if (!w->top)
		w->top = n;
	/* our open and reads of it are queued now, before the next time the
	 * queue is found empty: until then its open and access are ours */
	n->own_drain = s->drains + 1;

	struct frame f = { .node = n, .fd = fd, .path_len = plen };
	size_t cap = 0;
	for (;;) {
		long got = syscall(SYS_getdents64, fd, w->dents, DENTS_BUF);
		if (got < 0) {
			r = -errno;
			free(f.names);
			close(fd);
			return walk_fail(w, r, in);
		}
		if (got == 0)
			break;
		for (long off = 0; off < got;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(w->dents + off);
			if (d->reclen == 0 || off + d->reclen > got)
				break;
			off += d->reclen;
			const char *dn = d->name;
			if (dn[0] == '.' && (dn[1] == '\0' || (dn[1] == '.' && dn[2] == '\0')))
				continue;
			size_t dl = strnlen(dn, NAME_MAX + 1);
			if (dl > NAME_MAX)
				continue;
			bool dir = d->type == DT_DIR;
			struct stat est;
			bool have = false;
			if (d->type == DT_UNKNOWN || w->emit) {
				have = fstatat(fd, dn, &est, AT_SYMLINK_NOFOLLOW) == 0;
				if (d->type == DT_UNKNOWN)
					dir = have && S_ISDIR(est.st_mode);
			}
			if (w->emit) {
				int len = path_append(w->path, plen, PATH_BUF, dn, dl);
				if (len > 0)
					emit_st(s, FSNOTE_EV_CREATE, dir ? FSNOTE_FLAG_IS_DIR : 0, n, false,
						w->path, (size_t)len, NULL, NULL, 0, w->now,
						have ? &est : NULL);
				w->path[plen] = '\0';
			}
			if (!dir)
				continue;
			if (f.names_len + dl + 1 > cap) {
				size_t nc = cap ? cap * 2 : 4096;
				while (nc < f.names_len + dl + 1)
					nc *= 2;
				char *nn = realloc(f.names, nc);
				if (!nn) {
					free(f.names);
					close(fd);
					return walk_fail(w, -ENOMEM, in);
				}
				f.names = nn;
				cap = nc;
			}
			memcpy(f.names + f.names_len, dn, dl + 1);
			f.names_len += dl + 1;
		}
	}
	if (w->depth >= KEEP_FDS || !f.names_len) {
		close(fd);
		f.fd = -1;
	}
	if (!f.names_len) {
		free(f.names);
		return 0;
	}
	w->fr[w->depth++] = f;
	return walk_reserve(w, w->depth);
}

static bool watch_excludes(const struct source_watch *sw, const char *rel, size_t len)
{
	return sw->n_excludes && exclude_match(sw->excludes, sw->n_excludes, rel, len);
}

/* Walks depth first from what walk_push() stacked, at most @slice
 * directories (0: all).  Returns 0 when done, 1 when there is more, or
 * -errno. */
static int walk_run(struct walk *w, size_t slice)
{
	size_t pushed = 0;

	while (w->depth > 0) {
		size_t d = w->depth - 1;
		struct frame *f = &w->fr[d];
		if (slice && pushed >= slice)
			return 1;
		/* a directory removed while its frame waited: nothing below it */
		if (f->pos >= f->names_len || !f->node) {
			if (f->fd >= 0)
				close(f->fd);
			free(f->names);
			w->depth--;
			continue;
		}
		const char *name = f->names + f->pos;
		size_t nl = strlen(name);
		f->pos += nl + 1;
		int len = path_append(w->path, f->path_len, PATH_BUF, name, nl);
		if (len < 0) {
			w->s->skipped++;
			continue;
		}
		const uint8_t *pin = walk_in(w, d);
		uint8_t *cin = walk_in(w, d + 1);
		bool any = false;
		for (size_t i = 0; i < w->n_ws; i++) {
			const struct source_watch *sw = w->ws[i];
			size_t ro = w->rel_off[i];
			cin[i] = pin[i] && (sw->flags & SOURCE_WATCH_RECURSIVE) && (size_t)len > ro &&
				 !watch_excludes(sw, w->path + ro, (size_t)len - ro);
			any |= cin[i];
		}
		if (!any)
			continue;
		int fd;
		if (f->fd >= 0) {
			fd = openat(f->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			fd = fd < 0 ? -errno : fd;
		} else {
			size_t j = d;
			while (j > 0 && w->fr[j].fd < 0)
				j--;
			size_t base = w->fr[j].path_len;
			fd = open_dir_at(w->fr[j].fd, w->path + (base == 1 ? 1 : base + 1));
		}
		int r = fd < 0 ? walk_fail(w, fd, cin) :
				 walk_push(w, fd, f->node, name, nl, (size_t)len);
		if (r < 0)
			return r;
		pushed++;
	}
	return 0;
}

/* @n is going: the frames of pending walks that would place directories
 * under it are dropped. */
static void walks_forget(struct isrc *s, const struct node *n)
{
	for (struct source_watch *sw = s->watches; sw; sw = sw->next) {
		if (!sw->walk)
			continue;
		for (size_t i = 0; i < sw->walk->depth; i++)
			if (sw->walk->fr[i].node == n)
				sw->walk->fr[i].node = NULL;
		if (sw->walk->top == n)
			sw->walk->top = NULL;
	}
}

/* Watches (and with @emit reports the contents of) the directory @fd at
 * @path, for the candidates @ws marked in @in0, and everything they cover
 * below it.  @parent/@name place it in the table (NULL: a root).  Returns 0
 * or, at setup (!@follow), -errno; *ret_top is its node (or NULL). */
static int walk_tree(struct isrc *s, int fd, struct node *parent, const char *name,
		     const char *path, size_t plen, struct source_watch **ws, const uint8_t *in0,
		     size_t n, bool emit, bool follow, uint64_t now, struct node **ret_top)
{
	struct walk w;
	int r = walk_init(&w, s, ws, n, plen, emit, follow, now);
	if (r >= 0)
		r = walk_reserve(&w, 1);
	if (r < 0) {
		close(fd);
		walk_done(&w);
		return follow ? 0 : r;
	}
	memcpy(w.path, path, plen + 1);
	memcpy(walk_in(&w, 0), in0, n);
	r = walk_push(&w, fd, parent, name, name ? strlen(name) : 0, plen);
	if (r >= 0)
		r = walk_run(&w, 0);
	if (ret_top)
		*ret_top = w.top;
	walk_done(&w);
	return r;
}

/* The watches of @p that cover its child at @path (length @plen). */
static size_t covering(const struct node *p, const char *path, size_t plen, struct source_watch **out)
{
	size_t k = 0;
	for (uint32_t i = 0; i < p->n_ws; i++) {
		struct source_watch *sw = p->ws[i];
		if (!(sw->flags & SOURCE_WATCH_RECURSIVE) || !sw->root)
			continue;
		size_t rl = node_path_len(sw->root);
		size_t ro = rl == 1 ? 1 : rl + 1;
		if (plen <= ro || watch_excludes(sw, path + ro, plen - ro))
			continue;
		out[k++] = sw;
	}
	return k;
}

/* A directory appeared as @name in @p (its path in @path): watch what
 * covers it, then (with @emit) report what it already holds. */
static void follow_dir(struct isrc *s, struct node *p, const char *name, const char *path,
		       size_t plen, bool emit, uint64_t now)
{
	struct source_watch **ws = malloc((p->n_ws + 1) * sizeof(*ws));
	uint8_t *in = malloc(p->n_ws + 1);
	if (!ws || !in) {
		free(ws);
		free(in);
		s->watch_errors++;
		return;
	}
	size_t n = covering(p, path, plen, ws);
	if (n > 0) {
		memset(in, 1, n);
		int fd = open_dir_at(AT_FDCWD, path);
		if (fd < 0)
			s->skipped++;
		else
			(void)walk_tree(s, fd, p, name, path, plen, ws, in, n, emit, true, now, NULL);
	}
	free(ws);
	free(in);
}

/* Root nodes under @old (a directory that moved to @new, or away when @new
 * is NULL) keep absolute paths: rewrite them, or drop them with a delete of
 * their roots. */
static void roots_moved(struct isrc *s, const char *old, size_t olen, const char *new, size_t nlen,
			uint64_t now)
{
	for (struct node *r = s->roots, *next; r; r = next) {
		next = r->next;
		if (r->name_len < olen || memcmp(r->name, old, olen) != 0 ||
		    (r->name_len > olen && r->name[olen] != '/'))
			continue;
		if (!new) {
			remove_subtree(s, r, 2, now);
			next = s->roots; /* the list changed under us */
			continue;
		}
		size_t len = nlen + r->name_len - olen;
		char *p = malloc(len + 1);
		if (!p)
			continue;
		memcpy(p, new, nlen);
		memcpy(p + nlen, r->name + olen, r->name_len - olen + 1);
		free(r->name);
		r->name = p;
		r->name_len = len;
	}
}

/* --- renames ---------------------------------------------------------------- */

/* An IN_MOVED_FROM whose IN_MOVED_TO never came: it left the tree. */
static void resolve_unpaired(struct isrc *s, const struct pending *p)
{
	struct node *from = wd_find(s, p->wd);
	if (!from)
		return;
	int len = node_path(from, s->path, sizeof(s->path));
	if (len > 0)
		len = path_append(s->path, (size_t)len, sizeof(s->path), p->name, strlen(p->name));
	if (len < 0) {
		s->sink.overflow(s->sink.ctx, from->dev, NULL);
		return;
	}
	bool dir = p->mask & IN_ISDIR;
	emit(s, FSNOTE_EV_DELETE, FSNOTE_FLAG_RENAMED | (dir ? FSNOTE_FLAG_IS_DIR : 0), from, false,
	     s->path, (size_t)len, NULL, NULL, 0, p->time_ns, false);
	if (!dir)
		return;
	struct node *m = name_find(s, from, p->name, strlen(p->name));
	if (m)
		remove_subtree(s, m, 1, p->time_ns);
	roots_moved(s, s->path, (size_t)len, NULL, 0, p->time_ns);
}

static void resolve_pending(struct isrc *s, uint64_t max_seq)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_pend; i++) {
		if (s->pend[i].seq <= max_seq) {
			struct pending p = s->pend[i];
			resolve_unpaired(s, &p);
		} else {
			s->pend[k++] = s->pend[i];
		}
	}
	s->n_pend = k;
}

/* Something arrived as @name in @to without a known source. */
static void moved_in(struct isrc *s, struct node *to, const char *name, bool dir, uint64_t now)
{
	int len = node_path(to, s->path, sizeof(s->path));
	if (len > 0)
		len = path_append(s->path, (size_t)len, sizeof(s->path), name, strlen(name));
	if (len < 0) {
		s->sink.overflow(s->sink.ctx, to->dev, NULL);
		return;
	}
	emit(s, FSNOTE_EV_CREATE, FSNOTE_FLAG_RENAMED | (dir ? FSNOTE_FLAG_IS_DIR : 0), to, false,
	     s->path, (size_t)len, NULL, NULL, 0, now, true);
	if (dir)
		follow_dir(s, to, name, s->path, (size_t)len, true, now);
}

static void renamed(struct isrc *s, const struct pending *p, struct node *to, const char *name,
		    bool dir, uint64_t now)
{
	struct node *from = wd_find(s, p->wd);
	if (!from) {
		moved_in(s, to, name, dir, now);
		return;
	}
	int slen = node_path(from, s->path2, sizeof(s->path2));
	if (slen > 0)
		slen = path_append(s->path2, (size_t)slen, sizeof(s->path2), p->name, strlen(p->name));
	int dlen = node_path(to, s->path, sizeof(s->path));
	if (dlen > 0)
		dlen = path_append(s->path, (size_t)dlen, sizeof(s->path), name, strlen(name));
	if (slen < 0 || dlen < 0) {
		s->sink.overflow(s->sink.ctx, to->dev, NULL);
		return;
	}
	emit(s, FSNOTE_EV_RENAME, dir ? FSNOTE_FLAG_IS_DIR : 0, from, false, s->path2, (size_t)slen,
	     to, s->path, (size_t)dlen, now, true);
	if (!dir)
		return;
	roots_moved(s, s->path2, (size_t)slen, s->path, (size_t)dlen, now);

	size_t nl = strlen(name);
	struct node *m = name_find(s, from, p->name, strlen(p->name));
	if (!m) {
		/* nobody watched it where it was: it is new to the tree */
		follow_dir(s, to, name, s->path, (size_t)dlen, true, now);
		return;
	}
	struct node *victim = name_find(s, to, name, nl);
	if (victim && victim != m)
		remove_subtree(s, victim, 1, now); /* a directory replaced by the rename */
	char *nm = strndup(name, nl);
	if (!nm) {
		remove_subtree(s, m, 1, now);
		s->sink.overflow(s->sink.ctx, to->dev, NULL);
		return;
	}
	node_unplace(s, m);
	node_place(s, m, to, nm, nl);

	/* which watches cover it now: add the new ones by walking it, then
	 * take away those that no longer do */
	struct source_watch **now_ws = malloc((to->n_ws + 1) * sizeof(*now_ws));
	struct source_watch **old_ws = malloc((m->n_ws + 1) * sizeof(*old_ws));
	if (!now_ws || !old_ws) {
		free(now_ws);
		free(old_ws);
		return;
	}
	size_t n_now = covering(to, s->path, (size_t)dlen, now_ws), n_old = 0;
	bool need = false;
	for (size_t i = 0; i < n_now; i++)
		need |= !ws_has(m, now_ws[i]);
	for (uint32_t i = 0; i < m->n_ws; i++)
		if (m->ws[i]->root != m)
			old_ws[n_old++] = m->ws[i];
	int wd = m->wd;
	if (need)
		follow_dir(s, to, name, s->path, (size_t)dlen, false, now);
	for (size_t i = 0; i < n_old; i++) {
		bool kept = false;
		for (size_t j = 0; j < n_now; j++)
			kept |= now_ws[j] == old_ws[i];
		m = wd_find(s, wd);
		if (!m)
			break;
		if (!kept && ws_has(m, old_ws[i]))
			strip(s, old_ws[i], m);
	}
	free(now_ws);
	free(old_ws);
}

/* --- reading ----------------------------------------------------------------- */

static uint32_t type_of(uint32_t mask)
{
	if (mask & IN_MODIFY)
		return FSNOTE_EV_MODIFY;
	if (mask & IN_ATTRIB)
		return FSNOTE_EV_ATTRIB;
	if (mask & IN_CLOSE_WRITE)
		return FSNOTE_EV_CLOSE_WRITE;
	if (mask & IN_OPEN)
		return FSNOTE_EV_OPEN;
	if (mask & IN_ACCESS)
		return FSNOTE_EV_ACCESS;
	return 0;
}

static void rewalk_all(struct isrc *s, uint64_t now);

/* Is @e an open or a read of the directory @n that the daemon itself made
 * (walking it to watch it)?  inotify does not say who acted, but the
 * daemon's own opens were queued before the queue was next found empty;
 * another process's open of the same directory in that window is not
 * reported either. */
static bool own_access(const struct isrc *s, const struct inotify_event *e, const struct node *n)
{
	return n && (e->mask & IN_ISDIR || e->len == 0) && (e->mask & (IN_OPEN | IN_ACCESS)) &&
	       n->own_drain == s->drains + 1;
}

static void handle(struct isrc *s, const struct inotify_event *e, uint64_t now)
{
	s->events_read++;
	if (e->mask & IN_Q_OVERFLOW) {
		s->overflows++;
		s->sink.overflow(s->sink.ctx, 0, NULL);
		rewalk_all(s, now); /* directories made meanwhile are not watched yet */
		return;
	}
	struct node *n = wd_find(s, e->wd);
	if (!n)
		return; /* a watch already dropped */
	if (e->mask & IN_IGNORED) {
		n->ignored = true;
		remove_subtree(s, n, 0, now);
		return;
	}
	if (e->mask & IN_UNMOUNT) {
		struct fsdev *d = fsdev_find(s, n->dev);
		if (d && !d->unmounted) {
			d->unmounted = true;
			s->unmounts++;
			s->sink.unmount(s->sink.ctx, d->dev);
		}
		return;
	}
	bool dir = e->mask & IN_ISDIR;
	size_t nl = e->len ? strnlen(e->name, e->len) : 0;
	if (nl == 0) {
		/* about the directory itself: its parent's watch reports it
		 * too, unless nothing watches the parent */
		if (n->parent)
			return;
		int len = node_path(n, s->path, sizeof(s->path));
		if (len < 0)
			return;
		if (e->mask & IN_DELETE_SELF)
			emit(s, FSNOTE_EV_DELETE, FSNOTE_FLAG_IS_DIR, n, true, s->path, (size_t)len, NULL,
			     NULL, 0, now, false);
		else if (e->mask & IN_MOVE_SELF)
			emit(s, FSNOTE_EV_DELETE, FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_RENAMED, n, true,
			     s->path, (size_t)len, NULL, NULL, 0, now, false);
		else if (type_of(e->mask) && !own_access(s, e, n))
			emit(s, type_of(e->mask), FSNOTE_FLAG_IS_DIR, n, true, s->path, (size_t)len,
			     NULL, NULL, 0, now, true);
		return;
	}
	if (nl > NAME_MAX)
		return;
	char name[NAME_MAX + 1];
	memcpy(name, e->name, nl);
	name[nl] = '\0';

	if (e->mask & IN_MOVED_FROM) {
		if (s->n_pend == PENDING_MAX) {
			struct pending oldest = s->pend[0];
			memmove(s->pend, s->pend + 1, (PENDING_MAX - 1) * sizeof(s->pend[0]));
			s->n_pend--;
			resolve_unpaired(s, &oldest);
		}
		struct pending *p = &s->pend[s->n_pend++];
		*p = (struct pending){ .cookie = e->cookie, .mask = e->mask, .wd = e->wd,
				       .seq = s->read_seq, .time_ns = now };
		memcpy(p->name, name, nl + 1);
		return;
	}
	if (e->mask & IN_MOVED_TO) {
		for (size_t i = 0; i < s->n_pend; i++) {
			if (s->pend[i].cookie != e->cookie)
				continue;
			struct pending p = s->pend[i];
			memmove(s->pend + i, s->pend + i + 1, (s->n_pend - i - 1) * sizeof(s->pend[0]));
			s->n_pend--;
			renamed(s, &p, n, name, dir, now);
			return;
		}
		moved_in(s, n, name, dir, now);
		return;
	}

	int len = node_path(n, s->path, sizeof(s->path));
	if (len > 0)
		len = path_append(s->path, (size_t)len, sizeof(s->path), name, nl);
	if (len < 0) {
		s->sink.overflow(s->sink.ctx, n->dev, NULL);
		return;
	}
	if (e->mask & IN_CREATE) {
		/* a directory already in the table was reported by the scan
		 * that found it; its contents too */
		if (dir && name_find(s, n, name, nl))
			return;
		emit(s, FSNOTE_EV_CREATE, dir ? FSNOTE_FLAG_IS_DIR : 0, n, false, s->path, (size_t)len,
		     NULL, NULL, 0, now, true);
		if (dir)
			follow_dir(s, n, name, s->path, (size_t)len, true, now);
		return;
	}
	if (e->mask & IN_DELETE) {
		emit(s, FSNOTE_EV_DELETE, dir ? FSNOTE_FLAG_IS_DIR : 0, n, false, s->path, (size_t)len,
		     NULL, NULL, 0, now, false);
		struct node *c = dir ? name_find(s, n, name, nl) : NULL;
		if (c)
			remove_subtree(s, c, 1, now);
		return;
	}
	uint32_t t = type_of(e->mask);
	if (dir && own_access(s, e, name_find(s, n, name, nl)))
		return;
	if (t)
		emit(s, t, dir ? FSNOTE_FLAG_IS_DIR : 0, n, false, s->path, (size_t)len, NULL, NULL, 0,
		     now, true);
}

static void arm_timer(struct isrc *s)
{
	if (s->n_pend && !evtimer_pending(s->timer, NULL)) {
		struct timeval tv = { 0, PENDING_USEC };
		evtimer_add(s->timer, &tv);
	}
}

/* Reads up to @max_reads batches (0: until the queue is empty).  Returns 0,
 * 1 when it stopped at the cap, or -errno. */
static int read_some(struct isrc *s, unsigned max_reads)
{
	for (unsigned i = 0; max_reads == 0 || i < max_reads; i++) {
		ssize_t n = read(s->fd, s->buf, READ_BUF);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			s->drains++;
			return 0;
		}
		if (n == 0)
			return 0;
		s->read_seq++;
		uint64_t now = now_real_ns();
		for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
			const struct inotify_event *e = (const void *)(s->buf + off);
			size_t sz = sizeof(*e) + e->len;
			if (sz > (size_t)n - off)
				break;
			handle(s, e, now);
			off += sz;
		}
	}
	return 1;
}

/* Reads, then decides the IN_MOVED_FROMs that a later read did not pair. */
static int pump(struct isrc *s, unsigned max_reads)
{
	uint64_t seq0 = s->read_seq;
	int r = read_some(s, max_reads);
	resolve_pending(s, seq0);
	arm_timer(s);
	return r;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)pump(arg, READS_PER_CALLBACK);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct isrc *s = arg;
	/* whatever was pending when the timer fired has had its chance */
	uint64_t seq0 = s->read_seq;
	(void)read_some(s, READS_PER_CALLBACK);
	resolve_pending(s, seq0);
	arm_timer(s);
}

/* Starts walking @w's tree from the directory @fd (taken) in slices, one
 * per turn (walk_cb()).  A walk with @follow false is a watch's setup, whose
 * end the sink hears of.  Returns 0 or -errno. */
static int walk_begin(struct isrc *s, struct source_watch *w, int fd, struct node *parent,
		      const char *name, const char *path, size_t plen, bool follow, uint64_t now)
{
	struct walk *wk = malloc(sizeof(*wk));
	int r = wk ? walk_init(wk, s, &w, 1, plen, false, follow, now) : -ENOMEM;
	if (r >= 0)
		r = walk_reserve(wk, 1);
	if (r < 0) {
		close(fd);
	} else {
		memcpy(wk->path, path, plen + 1);
		*walk_in(wk, 0) = 1;
		r = walk_push(wk, fd, parent, name, name ? strlen(name) : 0, plen);
	}
	if (r < 0) {
		if (wk)
			walk_done(wk);
		free(wk);
		return r;
	}
	w->walk = wk;
	s->n_walks++;
	event_active(s->ev_walk, EV_TIMEOUT, 0);
	return 0;
}

/* Starts the walks after an overflow that wait for a slot. */
static void rewalk_next(struct isrc *s, uint64_t now)
{
	for (struct source_watch *w = s->watches; w && s->n_walks < WALKS_MAX; w = w->next) {
		if (!w->rewalk_due)
			continue;
		w->rewalk_due = false;
		if (!w->root || w->walk)
			continue;
		int len = node_path(w->root, s->path2, sizeof(s->path2));
		int fd = len < 0 ? -1 : open_dir_at(AT_FDCWD, s->path2);
		if (fd < 0)
			continue;
		struct node *r = w->root;
		if (walk_begin(s, w, fd, r->parent, r->parent ? r->name : NULL, s->path2, (size_t)len,
			       true, now) < 0) {
			s->watch_errors++;
			if (!w->errored) {
				w->errored = true;
				s->sink.watch_error(s->sink.ctx, w, -ENOMEM);
			}
		}
	}
}

/* After an overflow every recursive watch is walked again for directories
 * made meanwhile, in slices and at most WALKS_MAX at once (the others wait
 * their turn): walking everything at once queued the daemon's own opens of
 * every directory, which overflowed the queue again, and again.  A watch
 * still being set up starts its walk over. */
static void rewalk_all(struct isrc *s, uint64_t now)
{
	for (struct source_watch *w = s->watches; w; w = w->next) {
		if (!w->root || !(w->flags & SOURCE_WATCH_RECURSIVE))
			continue;
		bool setup = w->walk && !w->walk->follow;
		if (w->walk) {
			walk_done(w->walk);
			free(w->walk);
			w->walk = NULL;
			s->n_walks--;
		}
		if (!setup) {
			w->rewalk_due = true;
			continue;
		}
		int len = node_path(w->root, s->path2, sizeof(s->path2));
		int fd = len < 0 ? -ENOENT : open_dir_at(AT_FDCWD, s->path2);
		struct node *r = w->root;
		int e = fd < 0 ? fd :
			walk_begin(s, w, fd, r->parent, r->parent ? r->name : NULL, s->path2,
				   (size_t)len, false, now);
		if (e < 0) {
			/* its subscription still waits: it fails next turn */
			struct walk *wk = calloc(1, sizeof(*wk));
			if (wk) {
				wk->error = e;
				w->walk = wk;
				s->n_walks++;
				event_active(s->ev_walk, EV_TIMEOUT, 0);
			}
		}
	}
	rewalk_next(s, now);
}

/* --- source_ops --------------------------------------------------------------- */

static struct isrc *isrc_of(struct source *src)
{
	return (struct isrc *)src;
}

static uint32_t inotify_mask_of(uint64_t types)
{
	uint32_t m = MASK_TREE;
	if (types & FSNOTE_EV_BIT(FSNOTE_EV_MODIFY))
		m |= IN_MODIFY;
	if (types & FSNOTE_EV_BIT(FSNOTE_EV_ATTRIB))
		m |= IN_ATTRIB;
	if (types & FSNOTE_EV_BIT(FSNOTE_EV_CLOSE_WRITE))
		m |= IN_CLOSE_WRITE;
	if (types & FSNOTE_EV_BIT(FSNOTE_EV_OPEN))
		m |= IN_OPEN;
	if (types & FSNOTE_EV_BIT(FSNOTE_EV_ACCESS))
		m |= IN_ACCESS;
	return m;
}

/* A new root: hang it under its parent if that is watched, and take in
 * roots that are its children, so that no directory is reported both by
 * itself and by its parent. */
static void root_settle(struct isrc *s, struct node *top)
{
	const char *slash = memrchr(top->name, '/', top->name_len);
	if (slash && top->name_len > 1) {
		size_t pl = slash == top->name ? 1 : (size_t)(slash - top->name);
		struct node *p = node_by_path(s, top->name, pl);
		char *nm = p && p != top ? strdup(slash + 1) : NULL;
		if (nm) {
			node_unplace(s, top);
			node_place(s, top, p, nm, strlen(nm));
		}
	}
	int tl = node_path(top, s->path, sizeof(s->path));
	if (tl < 0)
		return;
	size_t at = tl == 1 ? 1 : (size_t)tl + 1;
	for (struct node *c = s->roots, *next; c; c = next) {
		next = c->next;
		if (c == top || c->name_len <= at || memcmp(c->name, s->path, at - 1) != 0 ||
		    c->name[at - 1] != '/' || memchr(c->name + at, '/', c->name_len - at))
			continue;
		char *nm = strdup(c->name + at);
		if (!nm)
			continue;
		node_unplace(s, c);
		node_place(s, c, top, nm, strlen(nm));
		next = s->roots;
	}
}

static int isrc_watch(struct source *src, int dirfd, const char *path, uint32_t flags,
		      char *const *excludes, size_t n_excludes, struct source_watch **ret,
		      struct source_watch_info *ret_info, const char **ret_reason)
{
	struct isrc *s = isrc_of(src);
	struct stat st;
	uint32_t info_flags = 0;
	const char *reason = NULL;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	size_t plen = path ? strlen(path) : 0;
	if (plen == 0 || path[0] != '/')
		return -EINVAL;
	while (plen > 1 && path[plen - 1] == '/')
		plen--;
	if (plen >= FSNOTE_PATH_MAX)
		return -ENAMETOOLONG;

	struct mountinfo_entry *mi = malloc(sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	if (mountinfo_of_fd(dirfd, mi) == 0) {
		if (mountinfo_is_pseudo_fstype(mi->fstype)) {
			free(mi);
			*ret_reason = "a pseudo filesystem (proc, sysfs, devpts ...) is the kernel's "
				      "own view, not files: it is never watched";
			return -EXDEV;
		}
		reason = mountinfo_incomplete_reason(mi->fstype);
		if (reason)
			info_flags |= FSNOTE_FLAG_LOCAL_ONLY;
	}
	free(mi);

	struct source_watch *w = calloc(1, sizeof(*w));
	char *root_path = malloc(plen + 1);
	if (!w || !root_path) {
		free(w);
		free(root_path);
		return -ENOMEM;
	}
	memcpy(root_path, path, plen);
	root_path[plen] = '\0';
	*w = (struct source_watch){ .src = s, .dev = (uint64_t)st.st_dev, .flags = flags,
				    .excludes = excludes, .n_excludes = n_excludes,
				    .budget = src->charge_to };
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		free(w);
		free(root_path);
		return r;
	}
	size_t before = s->n_nodes;
	uint8_t one = 1;
	struct node *top = NULL;
	struct walk *wk = NULL;
	int r;
	if (src->may_defer && s->sink.watch_ready && s->n_walks < WALKS_MAX &&
	    (flags & SOURCE_WATCH_RECURSIVE)) {
		/* the first slice now, the rest in later turns */
		wk = malloc(sizeof(*wk));
		r = wk ? walk_init(wk, s, &w, 1, plen, false, false, now_real_ns()) : -ENOMEM;
		if (r >= 0)
			r = walk_reserve(wk, 1);
		if (r < 0) {
			close(fd);
		} else {
			memcpy(wk->path, root_path, plen + 1);
			*walk_in(wk, 0) = 1;
			r = walk_push(wk, fd, NULL, NULL, 0, plen);
			if (r >= 0)
				r = walk_run(wk, WALK_SLICE);
			top = wk->top;
		}
		if (r != 1 && wk) {
			walk_done(wk);
			free(wk);
			wk = NULL;
		}
	} else {
		r = walk_tree(s, fd, NULL, NULL, root_path, plen, &w, &one, 1, false, false,
			      now_real_ns(), &top);
	}
	if (r >= 0 && !top)
		r = -ENOENT; /* the root itself vanished under us */
	if (r < 0) {
		if (wk) {
			walk_done(wk);
			free(wk);
		}
		if (top)
			strip(s, w, top);
		free(w);
		free(root_path);
		return r;
	}
	free(root_path);
	if (wk) {
		w->walk = wk;
		s->n_walks++;
		event_active(s->ev_walk, EV_TIMEOUT, 0);
	}

	w->root = top;
	w->rooted_next = top->rooted;
	top->rooted = w;
	w->next = s->watches;
	if (s->watches)
		s->watches->prev = w;
	s->watches = w;
	s->n_watches++;

	if (!top->parent && s->n_nodes > before)
		root_settle(s, top);

	int rl = node_path(top, s->path, sizeof(s->path));
	char *root = rl >= 0 ? strdup(s->path) : NULL;
	if (!root) {
		s->pub.ops->unwatch(&s->pub, w);
		return rl < 0 ? rl : -ENOMEM;
	}
	*ret_info = (struct source_watch_info){ .dev = w->dev, .root = root, .flags = info_flags };
	if (reason)
		*ret_reason = reason;
	*ret = w;
	return w->walk ? SOURCE_WATCH_PENDING : 0;
}

/* One slice of the first pending walk per turn; the sink hears of each
 * walk's end, which may unwatch any watch. */
static void walk_cb(evutil_socket_t fd, short what, void *arg)
{
	struct isrc *s = arg;
	struct source_watch *w = s->watches;

	while (w && !w->walk)
		w = w->next;
	if (!w)
		return;
	int r = w->walk->error ? w->walk->error : walk_run(w->walk, WALK_SLICE);
	if (r == 1) {
		event_active(s->ev_walk, EV_TIMEOUT, 0);
		return;
	}
	bool setup = !w->walk->follow;
	walk_done(w->walk);
	free(w->walk);
	w->walk = NULL;
	s->n_walks--;
	rewalk_next(s, now_real_ns());
	if (r == 0 && !w->root)
		r = -ENOENT; /* the root went while it was walked */
	if (s->n_walks)
		event_active(s->ev_walk, EV_TIMEOUT, 0);
	if (setup)
		s->sink.watch_ready(s->sink.ctx, w, r);
}

static void isrc_unwatch(struct source *src, struct source_watch *w)
{
	struct isrc *s = isrc_of(src);

	if (!w)
		return;
	if (w->walk) {
		walk_done(w->walk);
		free(w->walk);
		w->walk = NULL;
		s->n_walks--;
	}
	if (w->root) {
		for (struct source_watch **pp = &w->root->rooted; *pp; pp = &(*pp)->rooted_next) {
			if (*pp == w) {
				*pp = w->rooted_next;
				break;
			}
		}
		strip(s, w, w->root);
	}
	if (w->prev)
		w->prev->next = w->next;
	else
		s->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	s->n_watches--;
	free(w);
}

static void isrc_set_interest(struct source *src, uint64_t type_mask)
{
	struct isrc *s = isrc_of(src);
	uint32_t mask = inotify_mask_of(type_mask);

	if (mask == s->mask)
		return;
	s->mask = mask;
	/* inotify changes a watch's mask only by adding it again, by path */
	for (size_t i = 0; i < s->tab_cap; i++) {
		for (struct node *n = s->wd_tab[i]; n; n = n->wd_next) {
			if (node_path(n, s->path, sizeof(s->path)) < 0)
				continue;
			int wd = inotify_add_watch(s->fd, s->path, mask | IN_DONT_FOLLOW);
			if (wd >= 0 && wd != n->wd && !wd_find(s, wd))
				(void)inotify_rm_watch(s->fd, wd); /* the path is another directory now */
		}
	}
}

static int isrc_flush(struct source *src)
{
	struct isrc *s = isrc_of(src);
	int r = read_some(s, 0);
	resolve_pending(s, UINT64_MAX);
	return r < 0 ? r : 0;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void isrc_status(struct source *src, json_t *obj)
{
	struct isrc *s = isrc_of(src);
	/* the effective limit is the lower of the global one and the user
	 * namespace's */
	long max = read_long("/proc/sys/fs/inotify/max_user_watches");
	long ns = read_long("/proc/sys/user/max_inotify_watches");
	if (ns >= 0 && (max < 0 || ns < max))
		max = ns;

	json_object_set_new(obj, "watches", json_integer((json_int_t)s->n_nodes));
	json_object_set_new(obj, "source_watches", json_integer((json_int_t)s->n_watches));
	json_object_set_new(obj, "max_user_watches", json_integer(max));
	json_object_set_new(obj, "watch_errors", json_integer((json_int_t)s->watch_errors));
	json_object_set_new(obj, "skipped_directories", json_integer((json_int_t)s->skipped));
	json_object_set_new(obj, "overflows", json_integer((json_int_t)s->overflows));
	json_object_set_new(obj, "events_read", json_integer((json_int_t)s->events_read));
	json_object_set_new(obj, "unmounts", json_integer((json_int_t)s->unmounts));
	json_object_set_new(obj, "pending_renames", json_integer((json_int_t)s->n_pend));
}

static uint64_t isrc_features(struct source *src)
{
	return FSNOTE_FEATURE_INOTIFY;
}

static void isrc_free(struct source *src)
{
	struct isrc *s = isrc_of(src);

	if (!s)
		return;
	for (size_t i = 0; i < s->tab_cap; i++) {
		for (struct node *n = s->wd_tab[i], *next; n; n = next) {
			next = n->wd_next;
			free(n->ws);
			free(n->name);
			free(n->handle);
			free(n);
		}
	}
	while (s->watches) {
		struct source_watch *w = s->watches;
		s->watches = w->next;
		if (w->walk) {
			walk_done(w->walk);
			free(w->walk);
		}
		free(w);
	}
	if (s->ev_walk)
		event_free(s->ev_walk);
	if (s->ev)
		event_free(s->ev);
	if (s->timer)
		event_free(s->timer);
	if (s->fd >= 0)
		close(s->fd); /* drops every kernel watch at once */
	free(s->wd_tab);
	free(s->name_tab);
	free(s->devs);
	free(s->buf);
	free(s);
}

static const struct source_ops isrc_ops = {
	.name = "inotify",
	.watch = isrc_watch,
	.unwatch = isrc_unwatch,
	.set_interest = isrc_set_interest,
	.flush = isrc_flush,
	.status = isrc_status,
	.features = isrc_features,
	.free = isrc_free,
};

int source_inotify_new(struct event_base *base, const struct source_sink *sink, struct source **ret)
{
	struct isrc *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pub.ops = &isrc_ops;
	s->pub.want_stat = true;
	s->sink = *sink;
	s->base = base;
	s->mask = inotify_mask_of(FSNOTE_EV_DEFAULT_MASK);
	s->no_proc = access("/proc/self/fd", X_OK) < 0;
	s->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->fd < 0) {
		int r = errno == ENOSYS ? -ENOSYS : -errno;
		free(s);
		return r;
	}
	s->buf = malloc(READ_BUF);
	s->ev = event_new(base, s->fd, EV_READ | EV_PERSIST, read_cb, s);
	s->timer = evtimer_new(base, timer_cb, s);
	s->ev_walk = event_new(base, -1, 0, walk_cb, s);
	/* the kernel's queue first: see source.h */
	if (s->ev)
		(void)event_priority_set(s->ev, SOURCE_PRIORITY);
	if (s->timer)
		(void)event_priority_set(s->timer, SOURCE_PRIORITY);
	if (!s->buf || !s->ev || !s->timer || !s->ev_walk || event_add(s->ev, NULL) < 0 ||
	    tables_grow(s) < 0) {
		isrc_free(&s->pub);
		return -ENOMEM;
	}
	*ret = &s->pub;
	return 0;
}
