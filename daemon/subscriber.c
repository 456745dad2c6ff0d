/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * subscriber.c - subscriptions: creation, matching, fan-out and delivery.
 *
 * Every event a source reports enters the pool once and is then offered to
 * the subscriptions anchored on its filesystem (a per-dev list, so that ten
 * thousand subscriptions elsewhere cost nothing).  A subscription takes an
 * event when the type is wanted, the path lies under its root (or directly
 * in it, for children-only), no exclude pattern matches, and - for an
 * unprivileged subscriber - the kernel says the subscriber could search
 * every directory from the root down to the event's parent.  A rename is
 * judged one side at a time: a side the subscriber may not see turns the
 * record into a delete or a create flagged renamed, with the hidden name
 * absent.
 *
 * Paths travel in the source's path space and are mapped to the
 * subscriber's absolute path only when encoded, by swapping the root prefix.
 * Delivery never blocks: rings absorb what the socket cannot take yet, and
 * the pool's drop policy handles subscribers that stop reading.
 */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "codec.h"
#include "daemon.h"
#include "exclude.h"
#include "log.h"
#include "mountinfo.h"
#include "mountwatch.h"

#define EVENT_FRAME_MAX (3 * FSNOTE_PATH_MAX + 512)

/* the journal's share of this file, at its end */
static int resume_replay(struct daemon *d, struct sub *s, uint64_t since, uint64_t cur);
static int replay_bounded(struct pool_event *ev, void *userdata);
static bool journal_replay_drain(struct sub *s, size_t high);
static void history_end(struct daemon *d, struct sub *s);

/* --- the per-filesystem index ------------------------------------------ */

static struct anchor **dev_head(struct daemon *d, uint64_t dev, bool create)
{
	for (size_t i = 0; i < d->n_devs; i++)
		if (d->dev_keys[i] == dev)
			return &d->dev_heads[i];
	if (!create)
		return NULL;
	struct anchor **heads = realloc(d->dev_heads, (d->n_devs + 1) * sizeof(*heads));
	if (!heads)
		return NULL;
	d->dev_heads = heads;
	uint64_t *keys = realloc(d->dev_keys, (d->n_devs + 1) * sizeof(*keys));
	if (!keys)
		return NULL;
	d->dev_keys = keys;
	d->dev_keys[d->n_devs] = dev;
	d->dev_heads[d->n_devs] = NULL;
	return &d->dev_heads[d->n_devs++];
}

static int anchor_link(struct daemon *d, struct anchor *a)
{
	struct anchor **head = dev_head(d, a->dev, true);
	if (!head)
		return -ENOMEM;
	a->map_id = 0;
	for (const struct anchor *o = *head; o && !a->map_id; o = o->dev_next)
		if (o->root_src_len == a->root_src_len && o->root_abs_len == a->root_abs_len &&
		    memcmp(o->root_src, a->root_src, a->root_src_len) == 0 &&
		    memcmp(o->root_abs, a->root_abs, a->root_abs_len) == 0)
			a->map_id = o->map_id;
	if (!a->map_id && (a->map_id = ++d->next_map_id) == 0)
		a->map_id = ++d->next_map_id;
	a->dev_next = *head;
	*head = a;
	return 0;
}

static void anchor_unlink(struct daemon *d, struct anchor *a)
{
	struct anchor **head = dev_head(d, a->dev, false);
	if (!head)
		return;
	for (struct anchor **pp = head; *pp; pp = &(*pp)->dev_next) {
		if (*pp == a) {
			*pp = a->dev_next;
			break;
		}
	}
	a->dev_next = NULL;
}

/* Drops the source watch of @a and takes it out of the index; the anchor
 * stays in its subscription so that queued events can still be mapped. */
static void anchor_detach(struct daemon *d, struct anchor *a)
{
	if (!a->watch)
		return;
	anchor_unlink(d, a);
	a->source->ops->unwatch(a->source, a->watch);
	a->watch = NULL;
}

/* --- interest counts ---------------------------------------------------- */

/* While an unprivileged subscription exists the kernel is always asked for
 * the changes that can make a cached access verdict stale (a directory's
 * attributes, name or existence), whatever the subscribers want: records
 * nobody asked for are read, counted against the verdicts and dropped. */
#define ACCESS_GUARD_MASK                                                       \
	(FSNOTE_EV_BIT(FSNOTE_EV_ATTRIB) | FSNOTE_EV_BIT(FSNOTE_EV_RENAME) |     \
	 FSNOTE_EV_BIT(FSNOTE_EV_DELETE))

static uint64_t source_interest(const struct daemon *d)
{
	return d->interest_mask | (d->n_unprivileged ? ACCESS_GUARD_MASK : 0);
}

static void interest_change(struct daemon *d, uint64_t mask, int delta)
{
	uint64_t union_mask = 0;

	for (uint32_t t = 1; t <= FSNOTE_EV_MAX; t++) {
		if (mask & FSNOTE_EV_BIT(t))
			d->interest[t] = (uint32_t)((int)d->interest[t] + delta);
		if (d->interest[t])
			union_mask |= FSNOTE_EV_BIT(t);
	}
	d->interest_mask = union_mask;
	uint64_t want = source_interest(d);
	if (want == d->source_mask)
		return;
	d->source_mask = want;
	if (d->primary)
		d->primary->ops->set_interest(d->primary, want);
	if (d->fallback)
		d->fallback->ops->set_interest(d->fallback, want);
}

/* --- coverage and lingering watches ----------------------------------------

 * A since-ID resume is answered from the history only when some watch pooled
 * every event the new subscription would have wanted since that ID: the
 * same source on the same filesystem, a root that covers the new one (any
 * root, for a source that marks whole filesystems), every wanted type, and
 * no exclude the new subscription lacks.  Otherwise the subscriber is told
 * to rescan.  A kernel overflow or a pool failure breaks coverage for its
 * filesystem.  Lingering watches carry coverage across a reconnect. */

/* What the sources compute follows what subscriptions ask for (FIELDS). */
static void sources_want_stat(struct daemon *d)
{
	if (d->primary)
		d->primary->want_stat = d->n_want_stat > 0;
	if (d->fallback)
		d->fallback->want_stat = d->n_want_stat > 0;
}

static void fields_change(struct daemon *d, const struct sub *s, int delta)
{
	if (s->fields & FSNOTE_FIELD_STAT)
		d->n_want_stat += (size_t)(ssize_t)delta;
	if (!s->privileged && (s->fields & FSNOTE_FIELD_PID))
		d->n_want_pid += (size_t)(ssize_t)delta;
	sources_want_stat(d);
}

static bool whole_filesystem(const struct source *src)
{
	return strcmp(src->ops->name, "fanotify") == 0;
}

static bool excludes_subset(char *const *have, size_t n_have, char *const *want, size_t n_want)
{
	for (size_t i = 0; i < n_have; i++) {
		bool found = false;
		for (size_t j = 0; j < n_want && !found; j++)
			found = strcmp(have[i], want[j]) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Does a watch (@src, @dev, @root, @recursive, @mask, excludes) cover what
 * @a's subscription @s wants? */
static bool watch_covers(const struct source *src, uint64_t dev, const char *root, size_t root_len,
			 bool recursive, uint64_t mask, char *const *ex, size_t n_ex,
			 const struct anchor *a, const struct sub *s)
{
	uint64_t want = s->mask & ~(FSNOTE_EV_BIT(FSNOTE_EV_DROPPED) | FSNOTE_EV_BIT(FSNOTE_EV_UNMOUNT));

	if (src != a->source || dev != a->dev || (mask & want) != want)
		return false;
	if (!excludes_subset(ex, n_ex, s->excludes, s->n_excludes))
		return false;
	if (whole_filesystem(src))
		return true;
	if (root_len == a->root_src_len && memcmp(root, a->root_src, root_len) == 0)
		return recursive || (s->flags & FSNOTE_SUB_CHILDREN);
	if (!recursive)
		return false;
	if (root_len == 1)
		return true;
	return a->root_src_len > root_len && memcmp(a->root_src, root, root_len) == 0 &&
	       a->root_src[root_len] == '/';
}

/* The oldest point from which a live or lingering watch other than @a has
 * covered @a's scope, or UINT64_MAX. */
static uint64_t coverage_of(struct daemon *d, const struct anchor *a, const struct sub *s)
{
	uint64_t best = UINT64_MAX;
	struct anchor **head = dev_head(d, a->dev, false);

	for (const struct anchor *x = head ? *head : NULL; x; x = x->dev_next) {
		const struct sub *xs = x->sub;
		if (x == a || xs->ending || !x->watch)
			continue;
		if (x->covered_from < best &&
		    watch_covers(x->source, x->dev, x->root_src, x->root_src_len,
				 !(xs->flags & FSNOTE_SUB_CHILDREN), xs->mask, xs->excludes, xs->n_excludes, a, s))
			best = x->covered_from;
	}
	for (const struct lingering *l = d->lingers; l; l = l->next)
		if (l->covered_from < best &&
		    watch_covers(l->source, l->dev, l->root_src, l->root_src_len, l->recursive, l->mask,
				 l->excludes, l->n_excludes, a, s))
			best = l->covered_from;
	return best;
}

/* Events on @dev (0: every filesystem) may have been lost: nothing before
 * now can be vouched for. */
static void coverage_break(struct daemon *d, uint64_t dev)
{
	uint64_t now = pool_current_id(d->pool);

	for (size_t i = 0; i < d->n_devs; i++) {
		if (dev && d->dev_keys[i] != dev)
			continue;
		for (struct anchor *a = d->dev_heads[i]; a; a = a->dev_next)
			if (a->covered_from != UINT64_MAX)
				a->covered_from = now;
	}
	for (struct lingering *l = d->lingers; l; l = l->next)
		if ((!dev || l->dev == dev) && l->covered_from != UINT64_MAX)
			l->covered_from = now;
}

static void linger_free(struct lingering *l)
{
	struct daemon *d = l->d;

	for (struct lingering **pp = &d->lingers; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	d->n_lingers--;
	if (l->watch)
		l->source->ops->unwatch(l->source, l->watch);
	interest_change(d, l->mask, -1);
	if (l->timer)
		event_free(l->timer);
	for (size_t i = 0; i < l->n_excludes; i++)
		free(l->excludes[i]);
	free(l->excludes);
	free(l->root_src);
	free(l);
}

static void linger_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	linger_free(arg);
}

void sub_free_lingers(struct daemon *d)
{
	while (d->lingers)
		linger_free(d->lingers);
	free(d->withheld.dir);
	free(d->withheld.scope);
	d->withheld = (struct withheld_memo){ .dir = NULL };
}

/* Hands the watch of @s (ending for another reason than its filesystem or
 * root going away) to a linger.  Returns true if it did: the caller must
 * then neither unwatch nor drop the interest. */
static bool linger_take(struct daemon *d, struct sub *s)
{
	struct anchor *a = &s->anchors[0];
	uint32_t mine = 0;

	if (d->cfg.resume_linger_ms == 0 || d->draining || s->ending || s->n_anchors != 1 ||
	    !a->watch || (s->flags & FSNOTE_SUB_SYSTEM))
		return false;
	/* bounded per uid: the oldest of its lingers makes room */
	struct lingering *oldest = NULL;
	for (struct lingering *l = d->lingers; l; l = l->next) {
		if (l->uid == s->client->uid) {
			mine++;
			oldest = l;
		}
	}
	if (mine >= d->cfg.max_subscriptions_per_uid && oldest)
		linger_free(oldest);
	struct lingering *l = calloc(1, sizeof(*l));
	if (!l)
		return false;
	l->timer = evtimer_new(d->base, linger_timer_cb, l);
	if (!l->timer) {
		free(l);
		return false;
	}
	struct timeval tv = { d->cfg.resume_linger_ms / 1000, (d->cfg.resume_linger_ms % 1000) * 1000 };
	evtimer_add(l->timer, &tv);
	l->d = d;
	l->source = a->source;
	l->watch = a->watch;
	l->dev = a->dev;
	l->root_src = a->root_src;
	l->root_src_len = a->root_src_len;
	l->recursive = !(s->flags & FSNOTE_SUB_CHILDREN);
	l->mask = s->mask;
	l->covered_from = a->covered_from;
	l->excludes = s->excludes;
	l->n_excludes = s->n_excludes;
	l->uid = s->client->uid;
	anchor_unlink(d, a);
	a->watch = NULL;
	a->root_src = NULL;
	s->excludes = NULL;
	s->n_excludes = 0;
	l->next = d->lingers;
	d->lingers = l;
	d->n_lingers++;
	return true;
}

/* Gives up the lingering watches of @uid ((uid_t)-1: everyone's), oldest
 * first, when a subscription needs their kernel watches.  Returns true if
 * there were any. */
static bool linger_release(struct daemon *d, uid_t uid)
{
	bool any = false;

	for (struct lingering *l = d->lingers, *next; l; l = next) {
		next = l->next;
		if (uid != (uid_t)-1 && l->uid != uid)
			continue;
		linger_free(l);
		any = true;
	}
	if (any)
		log_info("gave up lingering watches%s to make room for a subscription",
			 uid == (uid_t)-1 ? "" : " of that uid");
	return any;
}

/* The per-uid watch limit in force for @c. */
static uint64_t watch_limit(const struct daemon *d, const struct client *c)
{
	if (c->privileged)
		return UINT64_MAX;
	if (d->cfg.max_watches_per_uid)
		return d->cfg.max_watches_per_uid;
	long kernel = 8192; /* the kernel's old default, when /proc cannot say */
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_watches", "re");
	if (f) {
		if (fscanf(f, "%ld", &kernel) != 1 || kernel < 4)
			kernel = 8192;
		fclose(f);
	}
	return (uint64_t)kernel / 4;
}

/* The filesystem @dev is gone: so are its lingering watches. */
static void linger_drop_dev(struct daemon *d, uint64_t dev)
{
	for (struct lingering *l = d->lingers, *next; l; l = next) {
		next = l->next;
		if (l->dev == dev)
			linger_free(l);
	}
}

/* --- matching ------------------------------------------------------------ */

enum { SCOPE_OUT = 0, SCOPE_BELOW = 1, SCOPE_ROOT = 2 };

/* Where @p lies relative to the anchor's root, and in *ret_rel the part
 * below the root (no leading '/'). */
static int scope_of(const struct anchor *a, const char *p, size_t len, const char **ret_rel)
{
	size_t rl = a->root_src_len;

	if (len == rl && memcmp(p, a->root_src, rl) == 0) {
		*ret_rel = p + len;
		return SCOPE_ROOT;
	}
	if (rl == 1) { /* root "/" */
		if (len < 2 || p[0] != '/')
			return SCOPE_OUT;
		*ret_rel = p + 1;
		return SCOPE_BELOW;
	}
	if (len <= rl + 1 || memcmp(p, a->root_src, rl) != 0 || p[rl] != '/')
		return SCOPE_OUT;
	*ret_rel = p + rl + 1;
	return SCOPE_BELOW;
}

static bool excluded(const struct sub *s, const char *rel, size_t rel_len)
{
	return exclude_match(s->excludes, s->n_excludes, rel, rel_len);
}

/* Writes the absolute path of source-space @p (in scope of @a) to @buf.
 * Returns its length, or -ENAMETOOLONG. */
static int map_path(const struct anchor *a, const char *p, size_t len, char *buf, size_t cap)
{
	const char *suffix = p + a->root_src_len;
	size_t slen = len - a->root_src_len;

	if (a->root_src_len == 1) { /* root "/": the whole path is the suffix */
		suffix = len == 1 ? p + 1 : p;
		slen = len == 1 ? 0 : len;
	}
	size_t base = a->root_abs_len;
	if (base == 1 && slen > 0)
		base = 0; /* "/" + "/x" */
	if (base + slen + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(buf, a->root_abs, base);
	memcpy(buf + base, suffix, slen);
	buf[base + slen] = '\0';
	return (int)(base + slen);
}

/* The directory an entry at @rel (below a root) lives in: its length. */
static size_t parent_len(const char *rel, size_t len)
{
	const char *slash = len ? memrchr(rel, '/', len) : NULL;
	return slash ? (size_t)(slash - rel) : 0;
}

/* May @s learn the side of @ev at source-space @p (in directory @dir)?
 * Returns an enum access_verdict (ACCESS_DENIED also for out of scope);
 * *ret_root says @p is the root itself. */
static int side_visible(struct daemon *d, const struct sub *s, const struct anchor *a,
			const struct pool_event *ev, const char *p, size_t len,
			const struct pool_dirid *dir, bool *ret_root)
{
	const char *rel;
	int scope = scope_of(a, p, len, &rel);

	*ret_root = scope == SCOPE_ROOT;
	if (scope == SCOPE_OUT)
		return ACCESS_DENIED;
	if (scope == SCOPE_ROOT)
		return ACCESS_ALLOWED; /* the subscriber opened the root itself */
	size_t rel_len = len - (size_t)(rel - p);
	if ((s->flags & FSNOTE_SUB_CHILDREN) && memchr(rel, '/', rel_len))
		return ACCESS_DENIED;
	if (excluded(s, rel, rel_len))
		return ACCESS_DENIED;
	if (s->privileged)
		return ACCESS_ALLOWED;

	int v;
	size_t dir_rel_len = dir->self ? rel_len : parent_len(rel, rel_len);
	if (dir->len || dir->ino)
		v = access_judge(d->access, s->client->cred, a->aroot, dir, rel, dir_rel_len);
	else if (ev->flags & FSNOTE_FLAG_INJECTED)
		/* synthetic: nothing named a directory, the tree as it is now is judged */
		v = access_judge_path(d->access, s->client->cred, a->aroot, rel, parent_len(rel, rel_len));
	else
		v = ACCESS_UNVERIFIABLE;
	if (v != ACCESS_ALLOWED)
		d->events_denied++;
	return v;
}

/* Where a subscriber told that a name was withheld should rescan: the
 * nearest directory above source-space @p it may see now (at worst its
 * root), in source space, malloc'ed; NULL means the root. */
static char *withheld_scope(struct daemon *d, const struct sub *s, const struct anchor *a,
			    const char *p, size_t len)
{
	const char *rel;

	if (scope_of(a, p, len, &rel) != SCOPE_BELOW)
		return NULL;
	size_t rel_len = len - (size_t)(rel - p);
	for (int up = 0; up < 8; up++) {
		rel_len = parent_len(rel, rel_len);
		if (rel_len == 0)
			return NULL;
		if (access_judge_path(d->access, s->client->cred, a->aroot, rel, rel_len) ==
		    ACCESS_ALLOWED)
			return strndup(p, (size_t)(rel - p) + rel_len);
	}
	return NULL;
}

/* The view under which @s gets @ev, or -1.  *ret_withheld: a side of @ev
 * that the subscriber might have been allowed to see could not be judged
 * (its directory is gone or was replaced): the caller must tell it to
 * rescan, from the source-space path in *ret_at. */
static int sub_match(struct daemon *d, struct sub *s, const struct anchor *a,
		     const struct pool_event *ev, bool *ret_withheld, const char **ret_at,
		     size_t *ret_at_len)
{
	bool root = false, droot = false;

	*ret_withheld = false;
	if (s->dev_filter && ev->dev != s->dev_filter)
		return -1;
	if (ev->type == FSNOTE_EV_RENAME && ev->dest) {
		const uint64_t want = FSNOTE_EV_BIT(FSNOTE_EV_RENAME) | FSNOTE_EV_BIT(FSNOTE_EV_DELETE) |
				      FSNOTE_EV_BIT(FSNOTE_EV_CREATE);
		if (!(s->mask & want))
			return -1;
		int sv = side_visible(d, s, a, ev, ev->path, ev->path_len, &ev->dir, &root);
		int dv = side_visible(d, s, a, ev, ev->dest, ev->dest_len, &ev->dest_dir, &droot);
		bool src = sv == ACCESS_ALLOWED, dst = dv == ACCESS_ALLOWED;
		if (sv == ACCESS_UNVERIFIABLE || dv == ACCESS_UNVERIFIABLE) {
			*ret_withheld = true;
			*ret_at = sv == ACCESS_UNVERIFIABLE ? ev->path : ev->dest;
			*ret_at_len = sv == ACCESS_UNVERIFIABLE ? ev->path_len : ev->dest_len;
		}
		int view = src && dst ? RING_VIEW_FULL : src ? RING_VIEW_SOURCE : dst ? RING_VIEW_DEST : -1;
		uint32_t as = view == RING_VIEW_SOURCE ? FSNOTE_EV_DELETE :
			      view == RING_VIEW_DEST ? FSNOTE_EV_CREATE : FSNOTE_EV_RENAME;
		if (view < 0 || !(s->mask & (FSNOTE_EV_BIT(as) | FSNOTE_EV_BIT(FSNOTE_EV_RENAME))))
			return -1;
		if (root && src) /* the root itself moved away: nothing more will come */
			s->ending = true;
		return view;
	}
	if (ev->type != FSNOTE_EV_UNMOUNT && !(s->mask & FSNOTE_EV_BIT(ev->type)))
		return -1;
	int v = side_visible(d, s, a, ev, ev->path, ev->path_len, &ev->dir, &root);
	if (v == ACCESS_UNVERIFIABLE) {
		*ret_withheld = true;
		*ret_at = ev->path;
		*ret_at_len = ev->path_len;
	}
	if (v != ACCESS_ALLOWED)
		return -1;
	if (root && ev->type == FSNOTE_EV_DELETE)
		s->ending = true;
	return RING_VIEW_FULL;
}

/* @s may not learn one name of event @id: it hears that something was
 * withheld and where to rescan.  Never the name, never silence. */
static void sub_withheld(struct daemon *d, struct sub *s, const struct anchor *a, uint64_t id,
			 const char *at, size_t at_len)
{
	/* a burst withheld from one directory (a tree removed before the
	 * daemon got to its events) asks for the scope once */
	struct withheld_memo *m = &d->withheld;
	const char *slash = memrchr(at, '/', at_len);
	size_t dir_len = slash ? (size_t)(slash - at) : 0;
	if (m->sub_id != s->id || m->gen != d->dir_changes || m->dir_len != dir_len ||
	    !m->dir || memcmp(m->dir, at, dir_len) != 0) {
		char *dir = strndup(at, dir_len);
		char *scope = withheld_scope(d, s, a, at, at_len);
		free(m->dir);
		free(m->scope);
		*m = (struct withheld_memo){ .sub_id = s->id, .gen = d->dir_changes, .dir = dir,
					     .dir_len = dir ? dir_len : 0, .scope = scope };
	}
	ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
			  FSNOTE_FLAG_UNVERIFIED, 1, id, id, m->scope);
}

/* --- queueing and wake-ups ---------------------------------------------- */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sub *s = arg;
	server_schedule_drain(s->client);
}

static void sub_wake(struct sub *s, int verdict)
{
	if (verdict == RING_WAKE_LATER && s->latency_us > 0) {
		if (!s->timer)
			s->timer = evtimer_new(s->client->d->base, timer_cb, s);
		if (s->timer) {
			struct timeval tv = { .tv_sec = s->latency_us / 1000000,
					      .tv_usec = s->latency_us % 1000000 };
			evtimer_add(s->timer, &tv);
			return;
		}
	}
	if (verdict != RING_QUIET)
		server_schedule_drain(s->client);
}

/* How long a client may have something pending without taking any of it
 * before it no longer holds the kernel queue back for everyone.  Misjudging
 * a slow reader costs nothing by itself: it loses events only if its ring
 * then overflows. */
#define STALL_NS (250ull * 1000000ull)
/* A client that reads, but slower than the events come, must not set the
 * pace for everyone: once the oldest event in a subscription's ring has
 * waited this long, the subscription holds nobody back until it has emptied
 * its ring (if it fills up meanwhile, it is told what it lost).  Events
 * wait in the kernel, not the ring, while reading is held, so a subscriber
 * that keeps up drains its ring long before this. */
#define LAG_NS (1000ull * 1000000ull)

bool sub_client_stalled(const struct client *c, uint64_t now_ns)
{
	return c->busy_since_ns && now_ns > c->busy_since_ns + STALL_NS;
}

static void sub_push(struct sub *s, struct pool_event *ev, uint8_t view)
{
	struct client *c = s->client;
	uint64_t now = c->d->now_ns;

	/* A stalled subscriber that has already lost events is told of these
	 * ones too, in the same dropped record, rather than have them held for
	 * it: its ring, and the pool, stay free for those that read. */
	if (ring_has_drop(s->ring) && sub_client_stalled(c, now)) {
		ring_drop_event(s->ring, ev, view);
		return;
	}
	if (!c->busy_since_ns)
		c->busy_since_ns = now ? now : now_mono_ns();
	int r = ring_push(s->ring, ev, view);
	if (r >= 0)
		ev->fanned++;
	sub_wake(s, r < 0 ? RING_WAKE_NOW : r);
}

/* The kernel queue of a source that can hold it (fanotify's is unlimited)
 * is read only as far as every subscriber that keeps up has room: a burst
 * then waits in the kernel, not in rings it would overflow.  Subscribers
 * that stopped reading do not count. */
static size_t sink_read_room(void *ctx)
{
	struct daemon *d = ctx;
	uint64_t now = now_mono_ns();
	size_t room = SIZE_MAX;
	/* and the rings of those that read, together, stay within a quarter
	 * of the memory bound, so that reclaim never has to touch them (a
	 * ring's slots double as it fills: up to twice what it holds) */
	size_t per_ring = d->cfg.pool_max_bytes / (8 * sizeof(struct ring_entry) *
						   (d->n_subs ? d->n_subs : 1));
	uint32_t cap = per_ring < 64 ? 64 : per_ring > UINT32_MAX ? UINT32_MAX : (uint32_t)per_ring;

	d->now_ns = now;
	for (struct client *c = d->clients; c && room; c = c->next) {
		if (c->closing || sub_client_stalled(c, now))
			continue;
		for (struct sub *s = c->subs; s; s = s->next) {
			uint64_t head = ring_head_mono(s->ring);
			if (head && now > head + LAG_NS)
				s->lagging = true;
			if (s->ending || s->lagging)
				continue;
			size_t h = ring_headroom(s->ring, cap);
			if (h < room)
				room = h;
		}
	}
	d->read_held = room == 0;
	return room;
}

void sub_resume_sources(struct daemon *d)
{
	if (!d->read_held)
		return;
	d->read_held = false;
	if (d->primary && d->primary->ops->resume)
		d->primary->ops->resume(d->primary);
	if (d->fallback && d->fallback->ops->resume)
		d->fallback->ops->resume(d->fallback);
}

uint64_t sub_ring_stale_since(struct ring *r, void *owner)
{
	const struct sub *s = owner;
	(void)r;
	return s->client->busy_since_ns;
}

void sub_ring_dropped(struct ring *r, void *owner)
{
	struct sub *s = owner;
	server_schedule_drain(s->client);
}

static const struct anchor *anchor_for(const struct sub *s, uint64_t dev)
{
	for (size_t i = 0; i < s->n_anchors; i++)
		if (s->anchors[i].dev == dev)
			return &s->anchors[i];
	return s->n_anchors ? &s->anchors[0] : NULL;
}

/* A directory above @a's root was renamed: the root now has another path,
 * and every later event would miss the old one.  Rather than go quiet, the
 * subscription ends with a record saying its root moved away (as when the
 * root itself is renamed); the client subscribes again at the new place. */
static void root_moved(struct daemon *d, struct anchor *a)
{
	struct sub *s = a->sub;
	struct pool_event *rec;
	struct pool_event_init init = {
		.type = FSNOTE_EV_DELETE,
		.flags = FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_RENAMED | FSNOTE_FLAG_ROOT |
			 (s->n_anchors == 1 ? FSNOTE_FLAG_SUB_ENDED : 0),
		.actor_uid = UINT32_MAX,
		.time_ns = now_real_ns(),
		.path = a->root_abs,
		.path_len = a->root_abs_len,
	};

	log_info("subscription %u: an ancestor of %s was renamed; ending it", s->id, a->root_abs);
	if (pool_add(d->pool, &init, now_mono_ns(), &rec) == POOL_ADDED) {
		sub_push(s, rec, RING_VIEW_FULL);
		pool_event_unref(d->pool, rec);
	} else {
		ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0, 0, 0, NULL);
		sub_wake(s, RING_WAKE_NOW);
	}
	if (s->n_anchors == 1)
		s->ending = true;
}

/* Is @p a strict ancestor of @a's root (in source space)? */
static bool above_root(const struct anchor *a, const char *p, size_t len)
{
	if (len == 1 && p[0] == '/')
		return a->root_src_len > 1;
	return a->root_src_len > len && memcmp(a->root_src, p, len) == 0 && a->root_src[len] == '/';
}

/* Offers @ev to every subscription on its filesystem. */
static void fan_out_event(struct daemon *d, struct pool_event *ev)
{
	struct anchor **head = dev_head(d, ev->dev, false);
	bool dir_moved = ev->type == FSNOTE_EV_RENAME && ev->dest && (ev->flags & FSNOTE_FLAG_IS_DIR);

	if (!head)
		return;
	for (struct anchor *a = *head, *next; a; a = next) {
		next = a->dev_next;
		if (a->sub->ending)
			continue;
		bool withheld;
		const char *at = NULL;
		size_t at_len = 0;
		int view = sub_match(d, a->sub, a, ev, &withheld, &at, &at_len);
		if (withheld) {
			sub_withheld(d, a->sub, a, ev->id, at, at_len);
			sub_wake(a->sub, RING_WAKE_NOW);
		}
		if (view >= 0)
			sub_push(a->sub, ev, (uint8_t)view);
		if (dir_moved && !a->sub->ending && above_root(a, ev->path, ev->path_len))
			root_moved(d, a);
	}
}

/* Pools one event and fans it out.  Returns its ID, or 0 if it was lost
 * (the affected subscriptions are then told). */
static uint64_t take_event(struct daemon *d, const struct source_event *sev)
{
	struct pool_event *ev;

	d->events_in++;
	if ((sev->flags & FSNOTE_FLAG_IS_DIR) &&
	    (sev->type == FSNOTE_EV_ATTRIB || sev->type == FSNOTE_EV_RENAME ||
	     sev->type == FSNOTE_EV_DELETE)) {
		access_invalidate(d->access);
		d->dir_changes++;
	}
	if (sev->type > FSNOTE_EV_MAX ||
	    (!(d->interest_mask & FSNOTE_EV_BIT(sev->type)) && !(sev->flags & FSNOTE_FLAG_INJECTED) &&
	     sev->type != FSNOTE_EV_UNMOUNT))
		return 0;

	if (d->journal && journal_is_own(d->journal, sev->dev, sev->path, sev->path_len))
		return 0; /* the journal writing itself */
	uint64_t now = now_mono_ns();
	d->now_ns = now;
	struct pool_event_init init = {
		.type = (uint16_t)sev->type,
		.flags = sev->flags,
		.pid = sev->pid,
		.actor_uid = UINT32_MAX,
		.time_ns = sev->time_ns ? sev->time_ns : now_real_ns(),
		.dev = sev->dev,
		.path = sev->path,
		.path_len = sev->path_len,
		.dest = sev->dest,
		.dest_len = sev->dest ? sev->dest_len : 0,
		.st = sev->st,
		.dest_st = sev->dest_st,
		.dir = sev->dir,
		.dest_dir = sev->dest_dir,
	};
	/* whose the acting process is decides whether an unprivileged
	 * subscriber sees its pid: asked only when one wants pids */
	if (d->n_want_pid && sev->pid)
		init.actor_uid = access_pid_uid(d->access, sev->pid, now);

	int r = pool_add(d->pool, &init, now, &ev);
	if (r == POOL_MERGED)
		return ev->id;
	if (r < 0) {
		/* never silent: everyone on this filesystem must rescan */
		coverage_break(d, sev->dev);
		struct anchor **head = dev_head(d, sev->dev, false);
		uint32_t why = r == -ENAMETOOLONG ? FSNOTE_FLAG_PATH_TOO_LONG : FSNOTE_FLAG_POOL_RECLAIM;
		for (struct anchor *a = head ? *head : NULL; a; a = a->dev_next) {
			ring_mark_dropped(a->sub->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | why,
					  1, 0, 0, NULL);
			sub_wake(a->sub, RING_WAKE_NOW);
		}
		log_warn("event lost for every subscriber on device %u:%u: %s",
			 major(sev->dev), minor(sev->dev), strerror(-r));
		return 0;
	}
	if (d->journal)
		(void)journal_append(d->journal, ev); /* a failure becomes a gap there */
	fan_out_event(d, ev);
	uint64_t id = ev->id;
	pool_event_unref(d->pool, ev);
	return id;
}

/* --- source callbacks ----------------------------------------------------- */

static void sink_event(void *ctx, const struct source_event *sev)
{
	(void)take_event(ctx, sev);
}

static void sink_lost(void *ctx, uint64_t dev, const char *scope, uint32_t reason)
{
	struct daemon *d = ctx;

	if (reason == FSNOTE_FLAG_KERNEL_OVERFLOW)
		log_warn("kernel event queue overflowed (device %u:%u): subscribers must rescan",
			 major(dev), minor(dev));
	else
		log_warn("events lost on device %u:%u (%s): subscribers must rescan", major(dev),
			 minor(dev), reason == FSNOTE_FLAG_PATH_TOO_LONG ? "a path too long" : "unknown");
	coverage_break(d, dev);
	if (d->journal)
		(void)journal_note_gap(d->journal, JOURNAL_GAP_OVERFLOW, pool_current_id(d->pool), dev,
				       now_real_ns());
	for (size_t i = 0; i < d->n_devs; i++) {
		if (dev && d->dev_keys[i] != dev)
			continue;
		for (struct anchor *a = d->dev_heads[i]; a; a = a->dev_next) {
			ring_mark_dropped(a->sub->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | reason,
					  0, 0, 0, a->sub->n_anchors == 1 ? scope : NULL);
			sub_wake(a->sub, RING_WAKE_NOW);
		}
	}
}

static void sink_overflow(void *ctx, uint64_t dev, const char *scope)
{
	sink_lost(ctx, dev, scope, FSNOTE_FLAG_KERNEL_OVERFLOW);
}

static void sink_unmount(void *ctx, uint64_t dev)
{
	struct daemon *d = ctx;
	struct anchor **head = dev_head(d, dev, false);

	log_info("device %u:%u unmounted: ending its subscriptions", major(dev), minor(dev));
	linger_drop_dev(d, dev);
	while (head && *head) {
		struct anchor *a = *head;
		struct sub *s = a->sub;
		struct source_event sev = {
			.type = FSNOTE_EV_UNMOUNT,
			.flags = FSNOTE_FLAG_IS_DIR | (s->n_anchors == 1 ? FSNOTE_FLAG_SUB_ENDED : 0),
			.time_ns = now_real_ns(),
			.dev = dev,
			.path = a->root_src,
			.path_len = a->root_src_len,
		};
		struct pool_event *ev;
		anchor_detach(d, a); /* takes @a off the list */
		if (pool_add(d->pool, &(struct pool_event_init){
					      .type = FSNOTE_EV_UNMOUNT, .flags = sev.flags,
					      .actor_uid = UINT32_MAX, .time_ns = sev.time_ns,
					      .dev = dev, .path = sev.path, .path_len = sev.path_len },
			     now_mono_ns(), &ev) == POOL_ADDED) {
			sub_push(s, ev, RING_VIEW_FULL);
			pool_event_unref(d->pool, ev);
		} else {
			ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0, 0, 0,
					  NULL);
		}
		if (s->n_anchors == 1)
			s->ending = true;
		sub_wake(s, RING_WAKE_NOW);
	}
}

static void sink_watch_error(void *ctx, struct source_watch *w, int error)
{
	struct daemon *d = ctx;

	for (struct lingering *l = d->lingers; l; l = l->next)
		if (l->watch == w)
			l->covered_from = UINT64_MAX; /* incomplete: covers nothing */

	for (struct client *c = d->clients; c; c = c->next) {
		for (struct sub *s = c->subs; s; s = s->next) {
			for (size_t i = 0; i < s->n_anchors; i++) {
				if (s->anchors[i].watch != w)
					continue;
				log_warn("subscription %u (uid %u) is incomplete: %s", s->id, c->uid,
					 error == -EDQUOT ? "its uid reached max_watches_per_uid" :
					 error == -ENOSPC ? "fs.inotify.max_user_watches reached" :
							    strerror(-error));
				s->anchors[i].covered_from = UINT64_MAX;
				ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN,
						  0, 0, 0, NULL);
				sub_wake(s, RING_WAKE_NOW);
			}
		}
	}
}

static void sub_discard(struct sub *s);
static int sub_finish(struct daemon *d, struct sub *s, uint64_t since, bool has_since, char *err,
		      size_t errlen);
static void watch_failed_message(const struct client *c, int r, const char *reason, char *err,
				 size_t errlen);

static bool linger_release(struct daemon *d, uid_t uid);
static void free_anchor_fields(struct anchor *a);
static int watch_dir(struct daemon *d, struct anchor *a, int dirfd, const char *abs,
		     const char *label, uint32_t wflags, uint32_t *ret_flags, const char **reason);

/* Starts the single-directory watch of pending @s again, by the path it
 * was watched at (it must still be the same directory).  Returns what
 * watch_dir() does. */
static int rewatch(struct daemon *d, struct sub *s)
{
	struct anchor *a = &s->anchors[0];
	char abs[FSNOTE_PATH_MAX], label[FSNOTE_PATH_MAX];
	const char *reason = NULL;
	struct stat st;

	/* only a directory the daemon reaches by its path can be watched
	 * again by it (the access root keeps that path and the identity) */
	if (!a->aroot || !a->aroot->path)
		return -ENOENT;
	uint64_t dev = a->aroot->dev, ino = a->aroot->ino;
	snprintf(abs, sizeof(abs), "%s", a->aroot->path);
	snprintf(label, sizeof(label), "%s", a->root_abs);
	a->source->ops->unwatch(a->source, a->watch);
	free_anchor_fields(a);
	*a = (struct anchor){ .sub = s };
	s->n_anchors = 0;
	int fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) {
		close(fd);
		return -ENOENT;
	}
	uint32_t wflags = (s->flags & FSNOTE_SUB_CHILDREN) ? 0 : SOURCE_WATCH_RECURSIVE;
	int r = watch_dir(d, a, fd, abs, label, wflags, &s->event_flags, &reason);
	close(fd);
	if (r >= 0)
		s->n_anchors = 1;
	return r;
}

/* A pending subscription's watch is complete, or failed. */
static void sink_watch_ready(void *ctx, struct source_watch *w, int error)
{
	struct daemon *d = ctx;

	for (struct client *c = d->clients; c; c = c->next) {
		struct sub *s = c->pending_sub;
		size_t k = 0;
		while (s && k < s->n_anchors && s->anchors[k].watch != w)
			k++;
		if (!s || k == s->n_anchors)
			continue;
		char err[FSNOTE_MESSAGE_MAX] = "";
		int r = error;
		if (s->flags & FSNOTE_SUB_SYSTEM) {
			/* one filesystem of many: as at once, one that cannot be
			 * watched is skipped */
			if (r < 0) {
				struct anchor *a = &s->anchors[k];
				log_debug("whole-system subscription skips %s: %s", a->root_abs,
					  strerror(-r));
				a->source->ops->unwatch(a->source, a->watch);
				free_anchor_fields(a);
				*a = s->anchors[--s->n_anchors];
			}
			if (--s->n_pending > 0)
				return;
			r = 0;
			if (!s->n_anchors) {
				r = -ENOENT;
				snprintf(err, sizeof(err), "no filesystem could be watched");
			}
		}
		c->pending_sub = NULL;
		s->pending = false;
		/* out of room: as at once, lingering watches give way first */
		if (!(s->flags & FSNOTE_SUB_SYSTEM) && (r == -EDQUOT || r == -ENOSPC) &&
		    linger_release(d, r == -EDQUOT ? c->uid : (uid_t)-1)) {
			r = rewatch(d, s);
			if (r == SOURCE_WATCH_PENDING) {
				c->pending_sub = s;
				s->pending = true;
				return;
			}
		}
		if (r < 0 && !err[0])
			watch_failed_message(c, r, NULL, err, sizeof(err));
		else if (r >= 0)
			r = sub_finish(d, s, s->since, s->has_since, err, sizeof(err));
		if (r < 0) {
			sub_discard(s);
			s = NULL;
			if (!err[0])
				snprintf(err, sizeof(err), "%s", strerror(-r));
		} else {
			log_debug("uid %u pid %d subscribed to %s (subscription %u, walked in turns)",
				  c->uid, (int)c->pid, s->anchors[0].root_abs, s->id);
		}
		server_subscribe_done(c, s, r, err);
		return;
	}
}

void sub_flush_sources(struct daemon *d)
{
	if (d->primary)
		(void)d->primary->ops->flush(d->primary);
	if (d->fallback)
		(void)d->fallback->ops->flush(d->fallback);
}

void sub_sink_init(struct daemon *d, struct source_sink *sink)
{
	*sink = (struct source_sink){
		.ctx = d,
		.event = sink_event,
		.overflow = sink_overflow,
		.lost = sink_lost,
		.unmount = sink_unmount,
		.watch_error = sink_watch_error,
		.watch_ready = sink_watch_ready,
		.read_room = sink_read_room,
	};
}

void sub_mount_event(void *ctx, bool attached, const char *point, uint64_t dev, const char *fstype)
{
	struct daemon *d = ctx;
	struct pool_event *ev = NULL;
	size_t plen = strlen(point);

	log_debug("%s %s (%s)", attached ? "mounted" : "unmounted", point, fstype);
	for (struct client *c = d->clients; c; c = c->next) {
		for (struct sub *s = c->subs; s; s = s->next) {
			/* unmounts below a root reach every subscription (they are
			 * never filtered out), mounts only those that asked */
			if (!(s->mask & FSNOTE_EV_BIT(attached ? FSNOTE_EV_MOUNT : FSNOTE_EV_UNMOUNT)) ||
			    s->ending || !s->n_anchors)
				continue;
			const struct anchor *a = &s->anchors[0];
			if (!(s->flags & FSNOTE_SUB_SYSTEM)) {
				size_t rl = a->root_abs_len;
				bool under = rl == 1 || (plen >= rl && memcmp(point, a->root_abs, rl) == 0 &&
							 (plen == rl || point[rl] == '/'));
				/* the subscription's own filesystem going away is the
				 * source's unmount record, which also ends it */
				if (!under || (!attached && a->dev == dev))
					continue;
			}
			if (!ev) {
				struct pool_event_init init = {
					.type = attached ? FSNOTE_EV_MOUNT : FSNOTE_EV_UNMOUNT,
					.flags = FSNOTE_FLAG_IS_DIR,
					.actor_uid = UINT32_MAX,
					.time_ns = now_real_ns(),
					.path = point,
					.path_len = plen,
				};
				if (pool_add(d->pool, &init, now_mono_ns(), &ev) != POOL_ADDED)
					return;
			}
			sub_push(s, ev, RING_VIEW_FULL);
		}
	}
	if (ev)
		pool_event_unref(d->pool, ev);
}

/* --- delivery --------------------------------------------------------- */

/* @st NULL: the subscriber did not ask for attributes. */
static void fill_stat(struct codec_stat *cs, uint64_t dev, const struct pool_stat *st)
{
	*cs = (struct codec_stat){ 0 };
	if (dev) {
		cs->have_dev = true;
		cs->dev = dev;
	}
	if (st && st->valid) {
		cs->have_ino = cs->have_mode = cs->have_uid = cs->have_gid = true;
		cs->ino = st->ino;
		cs->mode = st->mode;
		cs->uid = st->uid;
		cs->gid = st->gid;
	}
}

/* Appends @ce to @c's output; with @ev and a @key, the encoded record is
 * also kept on @ev for the next subscriber with the same view.  Encoding
 * goes through a scratch buffer and evbuffer_add(), which sizes its chains
 * (up to 4 KiB) to what they hold: reserving a whole maximal frame in the
 * output would cost every stalled client a large chain for one small
 * record.  Returns 0, or -errno when it could not be queued (the caller
 * must then keep the loss from being silent). */
static int emit_keep(struct client *c, const struct codec_event *ce, struct pool_event *ev,
		     uint64_t key)
{
	static uint8_t buf[EVENT_FRAME_MAX];

	int n = codec_encode_event(buf, sizeof(buf), ce);
	if (n < 0) {
		log_warn("cannot encode event %llu: %s", (unsigned long long)ce->id, strerror(-n));
		return n;
	}
	if (evbuffer_add(c->out, buf, (size_t)n) < 0)
		return -ENOMEM;
	if (ev && key)
		(void)pool_event_set_encoding(c->d->pool, ev, key, buf, (size_t)n);
	c->d->events_delivered++;
	return 0;
}

static int emit(struct client *c, const struct codec_event *ce)
{
	return emit_keep(c, ce, NULL, 0);
}

/* Queues @ev's record as encoded for another subscriber with the same view,
 * with this one's SUB_ID. */
static int emit_copy(struct sub *s, const struct pool_event *ev)
{
	static uint8_t buf[EVENT_FRAME_MAX];

	if (ev->enc_len > sizeof(buf))
		return -EINVAL;
	memcpy(buf, ev->enc, ev->enc_len);
	codec_patch_event_sub_id(buf, s->id);
	if (evbuffer_add(s->client->out, buf, ev->enc_len) < 0)
		return -ENOMEM;
	s->client->d->events_delivered++;
	return 0;
}

/* What, besides SUB_ID, makes @s's record of ring entry @e differ from
 * another subscription's: how paths map, the view, whether the pid shows,
 * the fields asked for and the subscription's own flags.  0: do not share
 * (an ending subscription marks its root's last record). */
static uint64_t view_key(const struct sub *s, const struct anchor *a, const struct ring_entry *e,
			 bool pid_shown)
{
	if (s->ending || (s->event_flags & ~0xffffu))
		return 0;
	return (uint64_t)a->map_id | (uint64_t)(e->view & 7) << 32 | (uint64_t)pid_shown << 35 |
	       (uint64_t)(s->fields & FSNOTE_FIELDS_ALL) << 36 | (uint64_t)(s->event_flags & 0xffff) << 40 |
	       UINT64_C(1) << 63;
}

/* Queues ring entry @e to @s's client.  When it cannot, the event is
 * recorded as dropped (its drop record comes next) and -errno returned. */
static int emit_event(struct sub *s, const struct ring_entry *e)
{
	const struct pool_event *ev = e->ev;
	const struct anchor *a = anchor_for(s, ev->dev);
	char path[FSNOTE_PATH_MAX], dest[FSNOTE_PATH_MAX];
	int view = e->view & 3;
	uint32_t why = 0; /* a loss's reason flag: none for no memory */
	const char *src_p = view == RING_VIEW_DEST ? ev->dest : ev->path;
	size_t src_len = view == RING_VIEW_DEST ? ev->dest_len : ev->path_len;
	struct codec_event ce = {
		.sub_id = s->id,
		.id = ev->id,
		.type = ev->type,
		.flags = ev->flags | s->event_flags,
		.time_ns = ev->time_ns,
	};

	if (!a)
		return 0;
	if (ev->dev == 0) {
		/* no filesystem: mount records and injected events outside every
		 * subscription carry absolute paths already */
		ce.path = ev->path;
		ce.path_len = ev->path_len;
		ce.dest = ev->dest;
		ce.dest_len = ev->dest ? ev->dest_len : 0;
		if (e->view & RING_VIEW_HISTORY)
			ce.flags |= FSNOTE_FLAG_HISTORY;
		if (s->privileged)
			ce.pid = ev->pid;
		if (emit(s->client, &ce) < 0)
			goto lost;
		return 0;
	}
	bool pid_shown = (s->fields & FSNOTE_FIELD_PID) &&
			 (s->privileged || (ev->actor_uid != UINT32_MAX && ev->actor_uid == s->client->uid));
	uint64_t key = view_key(s, a, e, pid_shown);
	if (key && ev->enc && ev->enc_key == key) {
		if (emit_copy(s, ev) < 0)
			goto lost;
		return 0;
	}
	if (pid_shown)
		ce.pid = ev->pid;
	if (e->view & RING_VIEW_HISTORY)
		ce.flags |= FSNOTE_FLAG_HISTORY;
	int n = map_path(a, src_p, src_len, path, sizeof(path));
	if (n < 0) {
		why = FSNOTE_FLAG_PATH_TOO_LONG;
		goto lost;
	}
	ce.path = path;
	ce.path_len = (size_t)n;
	if ((size_t)n == a->root_abs_len && memcmp(path, a->root_abs, (size_t)n) == 0)
		ce.flags |= FSNOTE_FLAG_ROOT;
	bool want_stat = s->fields & FSNOTE_FIELD_STAT;
	fill_stat(&ce.st, ev->dev, want_stat ? (view == RING_VIEW_DEST ? &ev->dest_st : &ev->st) : NULL);
	if (view == RING_VIEW_SOURCE) {
		ce.type = FSNOTE_EV_DELETE;
		ce.flags |= FSNOTE_FLAG_RENAMED;
	} else if (view == RING_VIEW_DEST) {
		ce.type = FSNOTE_EV_CREATE;
		ce.flags |= FSNOTE_FLAG_RENAMED;
	} else if (ev->type == FSNOTE_EV_RENAME && ev->dest) {
		n = map_path(a, ev->dest, ev->dest_len, dest, sizeof(dest));
		if (n < 0) {
			why = FSNOTE_FLAG_PATH_TOO_LONG;
			goto lost;
		}
		ce.dest = dest;
		ce.dest_len = (size_t)n;
		fill_stat(&ce.dest_st, ev->dev, want_stat ? &ev->dest_st : NULL);
	}
	/* the root deleted or moved away is the subscription's last record */
	if (s->ending && s->n_anchors == 1 && (ce.flags & FSNOTE_FLAG_ROOT) && ce.type == FSNOTE_EV_DELETE)
		ce.flags |= FSNOTE_FLAG_SUB_ENDED;
	/* kept only where another ring may send it too */
	if (emit_keep(s->client, &ce, (struct pool_event *)ev, ev->fanned > 1 ? key : 0) < 0)
		goto lost;
	return 0;
lost:
	/* a path longer than the protocol allows, or no memory to queue it:
	 * say so, do not drop silently */
	ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | why, 1, ev->id,
			  ev->id, NULL);
	return -ENOMEM;
}

/* Queues the drop record @drop.  When it cannot, the drop is pending again
 * (to be sent on the next round) and -errno returned. */
static int emit_drop(struct sub *s, const struct ring_drop *drop)
{
	const struct anchor *a = s->n_anchors ? &s->anchors[0] : NULL;
	char scope[FSNOTE_PATH_MAX];
	struct codec_event ce = {
		.sub_id = s->id,
		.id = drop->id_last ? drop->id_last : pool_current_id(s->client->d->pool),
		.type = FSNOTE_EV_DROPPED,
		.flags = drop->flags | FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN,
		.time_ns = now_real_ns(),
		.count = drop->count,
		.id_first = drop->id_first,
		.id_last = drop->id_last,
	};

	if (!a)
		return 0;
	ce.path = a->root_abs;
	ce.path_len = a->root_abs_len;
	ce.rescan = a->root_abs;
	ce.rescan_len = a->root_abs_len;
	/* a whole-system subscription spans path spaces: rescan from its roots */
	if (s->n_anchors == 1 && drop->scope) {
		const char *rel;
		size_t len = strlen(drop->scope);
		if (scope_of(a, drop->scope, len, &rel) != SCOPE_OUT) {
			int n = map_path(a, drop->scope, len, scope, sizeof(scope));
			if (n >= 0) {
				ce.rescan = scope;
				ce.rescan_len = (size_t)n;
			}
		}
	}
	if (emit(s->client, &ce) < 0) {
		ring_mark_dropped(s->ring, drop->flags, drop->count, drop->id_first, drop->id_last,
				  drop->scope);
		return -ENOMEM;
	}
	return 0;
}

/* Moves what @s has pending into its client's output until @high bytes are
 * there.  Returns true if @s still has more; may free @s (and then returns
 * false) when an ending subscription has said everything. */
static bool drain_sub(struct sub *s, size_t high)
{
	struct client *c = s->client;
	struct ring_drop drop;
	const struct ring_entry *e;

	/* no room (a client that stopped reading): its records wait, and its
	 * ring asks for no wake-up until it has had this one */
	if (evbuffer_get_length(c->out) >= high)
		return sub_pending(s);
	if (s->timer)
		evtimer_del(s->timer);
	ring_woken(s->ring);
	if (ring_take_drop(s->ring, &drop)) {
		int r = emit_drop(s, &drop);
		free(drop.scope);
		if (r < 0)
			return true; /* no memory: try again next round */
	}
	if (s->replay && journal_replay_drain(s, high))
		return true;
	while (evbuffer_get_length(c->out) < high && (e = ring_peek(s->ring))) {
		(void)emit_event(s, e);
		ring_pop(s->ring);
		if (ring_has_drop(s->ring))
			break; /* a loss: its drop record comes next round */
	}
	if (ring_peek(s->ring) || ring_has_drop(s->ring))
		return true;
	s->lagging = false; /* it caught up */
	if (s->ending) {
		sub_destroy(s);
		return false;
	}
	return false;
}

bool sub_drain_client(struct client *c, size_t high)
{
	bool more = false;

	if (!c->subs)
		return false;
	/* round-robin: start after the subscription served first last time */
	struct sub *start = c->drain_cursor;
	bool found = false;
	for (struct sub *s = c->subs; s; s = s->next)
		if (s == start)
			found = true;
	if (!found)
		start = c->subs;
	struct sub *s = start;
	do {
		struct sub *next = s->next ? s->next : c->subs;
		bool was_only = next == s;
		if (drain_sub(s, high))
			more = true;
		else if (!c->subs)
			break;
		if (evbuffer_get_length(c->out) >= high) {
			c->drain_cursor = next;
			return true;
		}
		if (was_only)
			break;
		s = next;
		/* the list may have changed under us (a subscription ended) */
		found = false;
		for (struct sub *t = c->subs; t; t = t->next)
			if (t == s)
				found = true;
		if (!found)
			break;
	} while (s != start);
	c->drain_cursor = c->subs;
	return more;
}

void sub_drain_all(struct sub *s)
{
	(void)drain_sub(s, SIZE_MAX);
}

/* --- creation and teardown ------------------------------------------------- */

static void free_anchor_fields(struct anchor *a)
{
	free(a->root_src);
	free(a->root_abs);
	a->aroot = access_root_free(a->aroot);
}

void sub_destroy(struct sub *s)
{
	struct client *c = s->client;
	struct daemon *d = c->d;

	for (struct sub **pp = &c->subs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	if (c->drain_cursor == s)
		c->drain_cursor = NULL;
	bool lingering = linger_take(d, s);
	for (size_t i = 0; i < s->n_anchors; i++) {
		anchor_detach(d, &s->anchors[i]);
		free_anchor_fields(&s->anchors[i]);
	}
	free(s->anchors);
	ring_free(s->ring);
	s->replay = journal_cursor_free(s->replay);
	free(s->replay_fsids);
	if (s->timer)
		event_free(s->timer);
	for (size_t i = 0; i < s->n_excludes; i++)
		free(s->excludes[i]);
	free(s->excludes);
	d->n_subs--;
	if (!s->privileged)
		d->n_unprivileged--;
	fields_change(d, s, -1);
	/* a lingering watch keeps the subscription's interest; the access
	 * guard may still go with the last unprivileged subscription */
	interest_change(d, lingering ? 0 : s->mask, -1);
	c->acct->subscriptions--;
	pool_subscriptions_changed(d->pool);
	free(s);
}

struct sub *sub_find(struct client *c, uint32_t id)
{
	for (struct sub *s = c->subs; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

/* What the subscriber's paths start with: the label it sent (the path it
 * opened, in its own namespace: never trusted for access, only put in
 * front of what the daemon finds below the directory), else the daemon's
 * own path for it where it has one, else "." (paths relative to the root).
 * Returns a malloc'ed string, or NULL without memory. */
static char *label_of(const struct codec_record *req, const char *abs)
{
	const char *l;
	size_t n;

	if (codec_get_string(req, FSNOTE_ARG_PATH, &l, &n) == 0 && n > 0 && l[0] == '/') {
		while (n > 1 && l[n - 1] == '/')
			n--;
		return strndup(l, n);
	}
	return strdup(abs ? abs : ".");
}

/* How the access checker reaches a subscription's root: through the
 * source's own view of the filesystem, by file handle, where the source
 * has one (NULL: by the daemon's path). */
static int open_root_by_handle(void *ctx, const struct access_root *r)
{
	struct source *src = ctx;
	return src->ops->open_handle(src, r->dev, r->htype, r->handle, r->hlen);
}

static access_root_opener root_opener(const struct source *src)
{
	return src->ops->open_handle ? open_root_by_handle : NULL;
}

/* Asks @src to watch @dirfd, which the daemon reaches as @abs in its own
 * mount namespace (NULL: it does not; the directory is the client's
 * descriptor), reported to the subscriber below @label; fills @a.  Returns
 * 0 or -errno with @reason. */
static int anchor_watch(struct source *src, struct anchor *a, int dirfd, const char *abs,
			const char *label, uint32_t wflags, uint32_t *ret_flags, const char **reason)
{
	struct source_watch_info info = { 0 };
	int r;

	*reason = NULL;
	src->charge_to = &a->sub->client->acct->watches;
	src->may_defer = true;
	r = src->ops->watch(src, dirfd, abs, wflags, a->sub->excludes, a->sub->n_excludes, &a->watch,
			    &info, reason);
	src->charge_to = NULL;
	src->may_defer = false;
	if (r < 0)
		return r;
	int pending = r == SOURCE_WATCH_PENDING ? SOURCE_WATCH_PENDING : 0;
	a->source = src;
	a->dev = info.dev;
	/* the journal tags this device's events with the filesystem the watch
	 * is on now: a device number is reused by the next filesystem mounted */
	if (a->sub->client->d->journal)
		journal_note_fs_fd(a->sub->client->d->journal, info.dev, dirfd,
				   pool_current_id(a->sub->client->d->pool));
	a->root_src = info.root;
	a->root_src_len = strlen(info.root);
	a->root_abs = strdup(label);
	a->root_abs_len = strlen(label);
	*ret_flags |= info.flags;
	if (!a->root_abs ||
	    access_root_new(a->sub->client->d->access, dirfd, abs, root_opener(src), src, &a->aroot) < 0) {
		src->ops->unwatch(src, a->watch);
		a->watch = NULL;
		return -ENOMEM;
	}
	return pending;
}

static bool is_refusable(int r)
{
	return r == -EXDEV || r == -EOPNOTSUPP || r == -ENODEV || r == -ENOSYS;
}

/* Watches one directory with the primary source, or the inotify fallback
 * for a filesystem the primary cannot serve. */
static int watch_dir(struct daemon *d, struct anchor *a, int dirfd, const char *abs,
		     const char *label, uint32_t wflags, uint32_t *ret_flags, const char **reason)
{
	int r = anchor_watch(d->primary, a, dirfd, abs, label, wflags, ret_flags, reason);
	/* inotify follows paths: not for a directory the daemon cannot name */
	if (r >= 0 || !is_refusable(r) || d->cfg.backend != CONFIG_BACKEND_AUTO ||
	    strcmp(d->primary->ops->name, "inotify") == 0 || !abs)
		return r;
	if (!d->fallback) {
		struct source_sink sink;
		sub_sink_init(d, &sink);
		int e = source_inotify_new(d->base, &sink, &d->fallback);
		if (e < 0)
			return r;
		d->fallback->ops->set_interest(d->fallback, source_interest(d));
		sources_want_stat(d);
		log_info("inotify fallback started");
	}
	const char *why = *reason;
	int r2 = anchor_watch(d->fallback, a, dirfd, abs, label, wflags, ret_flags, reason);
	if (r2 < 0 && !*reason)
		*reason = why;
	return r2;
}

/* Checks the client's descriptor: a directory opened O_RDONLY.  *ret_reachable
 * says whether the daemon reaches the same directory by the path in @abs
 * in its own mount namespace (a client in a container or a sandboxed
 * service sees another tree: then @abs is only its name in the client's
 * namespace, or the empty string). */
static int check_dirfd(int dirfd, char *abs, size_t cap, struct stat *st, bool *ret_reachable,
		       char *err, size_t errlen)
{
	char proc[64];
	struct stat st2;
	int fl = fcntl(dirfd, F_GETFL);

	if (fl < 0) {
		snprintf(err, errlen, "the descriptor passed is not valid");
		return -EBADF;
	}
	if (fl & O_PATH) {
		snprintf(err, errlen, "an O_PATH descriptor proves nothing: open the directory "
				      "O_RDONLY|O_DIRECTORY");
		return -EBADF;
	}
	if ((fl & O_ACCMODE) != O_RDONLY) {
		snprintf(err, errlen, "the directory must be opened O_RDONLY");
		return -EBADF;
	}
	if (fstat(dirfd, st) < 0 || !S_ISDIR(st->st_mode)) {
		snprintf(err, errlen, "not a directory");
		return -ENOTDIR;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(proc, abs, cap - 1);
	if (n <= 0 || (size_t)n >= cap - 1 || abs[0] != '/')
		n = 0;
	abs[n] = '\0';
	/* the name must lead to the same directory in the daemon's namespace */
	*ret_reachable = n > 0 && lstat(abs, &st2) == 0 && st2.st_dev == st->st_dev &&
			 st2.st_ino == st->st_ino;
	return 0;
}

static int parse_options(struct daemon *d, struct sub *s, const struct codec_record *req,
			 uint64_t *since, bool *has_since, char *err, size_t errlen)
{
	const struct config *cfg = &d->cfg;
	uint32_t v;

	(void)codec_get_u32(req, FSNOTE_ARG_SUB_FLAGS, &s->flags);
	if (s->flags & ~(uint32_t)(FSNOTE_SUB_CHILDREN | FSNOTE_SUB_SYSTEM)) {
		snprintf(err, errlen, "unknown subscription flags 0x%x", s->flags);
		return -EINVAL;
	}
	s->mask = FSNOTE_EV_DEFAULT_MASK;
	(void)codec_get_u64(req, FSNOTE_ARG_EVENT_MASK, &s->mask);
	if (s->mask == 0 || (s->mask & ~FSNOTE_EV_ALL_MASK)) {
		snprintf(err, errlen, "invalid event mask 0x%llx", (unsigned long long)s->mask);
		return -EINVAL;
	}
	const uint64_t privileged_types = FSNOTE_EV_BIT(FSNOTE_EV_MOUNT) |
					  FSNOTE_EV_BIT(FSNOTE_EV_FS_ERROR);
	if ((s->mask & privileged_types) && !s->privileged) {
		snprintf(err, errlen, "mount and fs_error records are for root%s%s only",
			 cfg->privileged_group ? " and group " : "",
			 cfg->privileged_group ? cfg->privileged_group : "");
		return -EPERM;
	}
	if ((s->mask & FSNOTE_EV_BIT(FSNOTE_EV_MOUNT)) && !d->mounts) {
		snprintf(err, errlen, "this kernel has no mount notifications (Linux 6.14 or later)");
		return -EOPNOTSUPP;
	}
	s->mask |= FSNOTE_EV_BIT(FSNOTE_EV_DROPPED) | FSNOTE_EV_BIT(FSNOTE_EV_UNMOUNT);
	(void)codec_get_u64(req, FSNOTE_ARG_DEV_FILTER, &s->dev_filter);
	s->depth = cfg->ring_default_depth;
	if (codec_get_u32(req, FSNOTE_ARG_RING_DEPTH, &v) == 0) {
		if (v > cfg->ring_max_depth) {
			snprintf(err, errlen, "ring depth %u exceeds the maximum of %u (ring_max_depth)",
				 v, cfg->ring_max_depth);
			return -EINVAL;
		}
		s->depth = v < 4 ? 4 : v;
	}
	s->latency_us = cfg->latency_ms * 1000;
	if (codec_get_u32(req, FSNOTE_ARG_LATENCY_US, &v) == 0) {
		if (v > 60000000) {
			snprintf(err, errlen, "latency %u us exceeds the maximum of 60 s", v);
			return -EINVAL;
		}
		s->latency_us = v;
	}
	s->batch = cfg->batch;
	if (codec_get_u32(req, FSNOTE_ARG_BATCH, &v) == 0)
		s->batch = v == 0 ? 1 : v > s->depth ? s->depth : v;
	s->fields = FSNOTE_FIELDS_ALL;
	if (codec_get_u32(req, FSNOTE_ARG_FIELDS, &v) == 0) {
		if (v & ~(uint32_t)FSNOTE_FIELDS_ALL) {
			snprintf(err, errlen, "unknown FIELDS bits 0x%x", v & ~(uint32_t)FSNOTE_FIELDS_ALL);
			return -EINVAL;
		}
		s->fields = v;
	}
	*has_since = codec_get_u64(req, FSNOTE_ARG_SINCE_ID, since) == 0;
	if (codec_get_u64(req, FSNOTE_ARG_UNTIL_ID, &s->until_id) == 0 && (!*has_since || !s->until_id)) {
		snprintf(err, errlen, "an until ID needs a since ID, and must not be 0");
		return -EINVAL;
	}

	for (unsigned i = 0; i < req->n_args; i++) {
		const struct codec_arg *arg = &req->args[i];
		if (arg->type != FSNOTE_ARG_EXCLUDE)
			continue;
		if (s->n_excludes >= FSNOTE_EXCLUDES_MAX) {
			snprintf(err, errlen, "more than %u exclude patterns", FSNOTE_EXCLUDES_MAX);
			return -E2BIG;
		}
		if (arg->len < 2) {
			snprintf(err, errlen, "empty exclude pattern");
			return -EINVAL;
		}
		char **ex = realloc(s->excludes, (s->n_excludes + 1) * sizeof(*ex));
		if (!ex)
			return -ENOMEM;
		s->excludes = ex;
		s->excludes[s->n_excludes] = strdup((const char *)arg->value);
		if (!s->excludes[s->n_excludes])
			return -ENOMEM;
		s->n_excludes++;
	}
	return 0;
}

struct replay_ctx {
	struct daemon *d;
	struct sub *s;
	uint64_t after;       /* replay only IDs above this */
};

/* replay_one() up to an until ID (replay_bounded, with the journal). */
struct bounded_ctx {
	struct replay_ctx rc;
	uint64_t until;
};

static int replay_one(struct pool_event *ev, void *userdata)
{
	struct replay_ctx *rc = userdata;
	const struct anchor *a = anchor_for(rc->s, ev->dev);

	if (!a || a->dev != ev->dev)
		return 0;
	if (ev->id <= rc->after)
		return 0; /* inside the range the dropped record says is lost */
	/* a replayed delete or move of the root is an earlier directory's
	 * (this one exists: the client just opened it), so it never ends the
	 * live subscription */
	bool ending = rc->s->ending, withheld;
	const char *at = NULL;
	size_t at_len = 0;
	int view = sub_match(rc->d, rc->s, a, ev, &withheld, &at, &at_len);
	rc->s->ending = ending;
	if (withheld)
		sub_withheld(rc->d, rc->s, a, ev->id, at, at_len);
	if (view >= 0)
		(void)ring_push(rc->s->ring, ev, (uint8_t)(view | RING_VIEW_HISTORY));
	return 0;
}

/* Answers a since-ID resume: the history after @since, preceded, when the
 * daemon cannot vouch for all of it, by one dropped record whose range
 * [ID_FIRST, ID_LAST] is exactly the IDs that may be lost.  Every record
 * after it has a higher ID than ID_LAST, so a client keeping the last ID it
 * saw never goes backwards.  Losses come from three places: the history no
 * longer reaches back to @since, no watch covered the directory all along,
 * or @since is not an ID this daemon handed out (ahead of @cur). */
static void resume(struct daemon *d, struct sub *s, uint64_t since, uint64_t cur)
{
	struct pool_stats ps;
	uint64_t first = since + 1, last = 0;

	pool_get_stats(d->pool, &ps);
	uint64_t mem_from = ps.history ? ps.oldest_history_id - 1 : cur;
	if (d->journal && since < mem_from && since <= cur) {
		/* older than the memory history: the journal answers, with its
		 * own gaps; what no watch covered (any resume across a restart)
		 * is a loss from SINCE_ID on, and the journaled events follow */
		bool covered = true;
		for (size_t i = 0; i < s->n_anchors; i++)
			if (since < s->anchors[i].covered_from)
				covered = false;
		int r = resume_replay(d, s, since, cur);
		if (r == POOL_HISTORY_GAP || !covered)
			ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0,
					  since + 1, cur, NULL);
		if (ring_peek(s->ring) || ring_has_drop(s->ring) || s->replay)
			server_schedule_drain(s->client);
		return;
	}
	if (since > cur) {
		first = ps.first_id + 1;
		last = cur;
	} else {
		for (size_t i = 0; i < s->n_anchors; i++)
			if (since < s->anchors[i].covered_from && s->anchors[i].covered_from > last)
				last = s->anchors[i].covered_from;
		if (since < ps.history_floor && ps.history_floor > last)
			last = ps.history_floor;
	}
	if (last && last < first)
		last = first = pool_mark(d->pool); /* an empty range is no news: make it one ID */
	if (last)
		ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0, first,
				  last, NULL);
	if (since < cur) {
		struct bounded_ctx bc = { { d, s, last > since ? last : since }, s->until_id };
		(void)pool_history_since(d->pool, bc.rc.after, replay_bounded, &bc);
	}
	if (ring_peek(s->ring) || ring_has_drop(s->ring))
		server_schedule_drain(s->client);
}

/* Every real filesystem, once each, for a whole-system subscription. */
static int watch_system(struct daemon *d, struct sub *s, char *err, size_t errlen)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	int last = -ENOENT;

	if (!f) {
		snprintf(err, errlen, "cannot read the mount table");
		return -errno;
	}
	while ((m = getmntent(f))) {
		struct stat st;
		bool seen = false;
		if (mountinfo_is_pseudo_fstype(m->mnt_type))
			continue;
		int fd = open(m->mnt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0) {
			close(fd);
			continue;
		}
		for (size_t i = 0; i < s->n_anchors; i++)
			if (s->anchors[i].dev == (uint64_t)st.st_dev)
				seen = true;
		struct anchor *an = seen ? NULL : realloc(s->anchors, (s->n_anchors + 1) * sizeof(*an));
		if (!an) {
			close(fd);
			continue;
		}
		s->anchors = an;
		struct anchor *a = &s->anchors[s->n_anchors];
		*a = (struct anchor){ .sub = s };
		const char *reason = NULL;
		int r = watch_dir(d, a, fd, m->mnt_dir, m->mnt_dir, SOURCE_WATCH_RECURSIVE,
				  &s->event_flags, &reason);
		close(fd);
		if (r < 0) {
			last = r;
			log_debug("whole-system subscription skips %s (%s): %s", m->mnt_dir, m->mnt_type,
				  reason ? reason : strerror(-r));
			continue;
		}
		if (r == SOURCE_WATCH_PENDING)
			s->n_pending++; /* walked in turns: sink_watch_ready() */
		s->n_anchors++;
	}
	endmntent(f);
	if (s->n_anchors == 0) {
		snprintf(err, errlen, "no filesystem could be watched");
		return last;
	}
	return 0;
}

/* Frees a subscription that was never linked, unwatching what it watches. */
static void sub_discard(struct sub *s)
{
	for (size_t i = 0; i < s->n_anchors; i++) {
		if (s->anchors[i].watch)
			s->anchors[i].source->ops->unwatch(s->anchors[i].source, s->anchors[i].watch);
		free_anchor_fields(&s->anchors[i]);
	}
	if (!(s->flags & FSNOTE_SUB_SYSTEM) && s->anchors && s->n_anchors == 0) {
		if (s->anchors[0].watch)
			s->anchors[0].source->ops->unwatch(s->anchors[0].source, s->anchors[0].watch);
		free_anchor_fields(&s->anchors[0]);
	}
	free(s->anchors);
	ring_free(s->ring);
	journal_cursor_free(s->replay);
	free(s->replay_fsids);
	for (size_t i = 0; i < s->n_excludes; i++)
		free(s->excludes[i]);
	free(s->excludes);
	free(s);
}

void sub_abandon(struct sub *s)
{
	sub_discard(s);
}

/* The message for a watch that could not be set up. */
static void watch_failed_message(const struct client *c, int r, const char *reason, char *err,
				 size_t errlen)
{
	if (r == -ENOSPC)
		snprintf(err, errlen, "kernel watch limit reached%s%s (fs.inotify.max_user_watches)",
			 reason ? ": " : "", reason ? reason : "");
	else if (r == -EDQUOT)
		snprintf(err, errlen, "kernel watch limit for uid %u reached: its subscriptions hold "
				      "%llu directories (max_watches_per_uid %llu)",
			 c->uid, (unsigned long long)c->acct->watches.used,
			 (unsigned long long)c->acct->watches.limit);
	else
		snprintf(err, errlen, "%s", reason ? reason : strerror(-r));
}

/* Everything after the watches: the ring, linking, the subscription's ID
 * and the resume.  Returns 0, or -errno with @s still unlinked. */
static int sub_finish(struct daemon *d, struct sub *s, uint64_t since, bool has_since, char *err,
		      size_t errlen)
{
	struct client *c = s->client;
	int r;

	struct ring_config rc = { .depth = s->depth, .batch = s->batch, .latency_us = s->latency_us };
	r = ring_new(d->pool, &rc, s->n_anchors == 1 ? s->anchors[0].root_src : "/", s, &s->ring);
	if (r < 0) {
		snprintf(err, errlen, "cannot create the subscription's ring");
		return r;
	}
	/* whatever the kernel has queued happened before this request: it
	 * belongs in the history (a resume is answered from there), not in the
	 * new subscription's live stream, so it is read before the
	 * subscription is linked */
	sub_flush_sources(d);
	for (size_t i = 0; i < s->n_anchors; i++) {
		r = anchor_link(d, &s->anchors[i]);
		if (r < 0) {
			for (size_t j = 0; j < i; j++)
				anchor_unlink(d, &s->anchors[j]);
			snprintf(err, errlen, "out of memory");
			return r;
		}
	}

	s->id = ++d->next_sub_id;
	if (s->id == 0)
		s->id = ++d->next_sub_id;
	s->next = c->subs;
	c->subs = s;
	c->acct->subscriptions++;
	d->n_subs++;
	if (!s->privileged)
		d->n_unprivileged++;
	fields_change(d, s, +1);
	interest_change(d, s->mask, +1);
	pool_subscriptions_changed(d->pool);

	/* A watch that nothing covered before sees only what happens from now
	 * on; events from before it began have no ID at all, so an ID marks the
	 * point: a resume from before it is told it lost what came between. */
	uint64_t cur = pool_current_id(d->pool);
	bool fresh = false;
	for (size_t i = 0; i < s->n_anchors; i++) {
		uint64_t from = coverage_of(d, &s->anchors[i], s);
		s->anchors[i].covered_from = from < cur ? from : cur;
		fresh |= from == UINT64_MAX;
	}
	if (fresh) {
		uint64_t mark = pool_mark(d->pool);
		for (size_t i = 0; i < s->n_anchors; i++)
			if (s->anchors[i].covered_from == cur)
				s->anchors[i].covered_from = mark;
		cur = mark;
	}
	if (has_since) {
		resume(d, s, since, cur);
		if (s->until_id)
			history_end(d, s);
		if (sub_pending(s))
			server_schedule_drain(c);
	}
	return 0;
}

int sub_create(struct daemon *d, struct client *c, const struct codec_record *req, int dirfd,
	       struct sub **ret, char *err, size_t errlen)
{
	struct sub *s;
	int own_fd = -1;
	uint64_t since = 0;
	bool has_since = false;
	char abs[FSNOTE_PATH_MAX];
	char *label = NULL;
	struct stat st;
	bool pending = false;
	int r;

	if (c->acct->subscriptions >= d->cfg.max_subscriptions_per_uid) {
		snprintf(err, errlen, "subscription limit reached: uid %u already has %u "
				      "(max_subscriptions_per_uid)", c->uid, c->acct->subscriptions);
		return -EDQUOT;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->client = c;
	s->privileged = c->privileged;
	/* judging what another user may see means taking on that user's
	 * credentials, which only a daemon running as root can do: a per-user
	 * daemon says so instead of delivering nothing */
	if (!s->privileged && geteuid() != 0) {
		snprintf(err, errlen, "this fsnoted runs as uid %u and cannot check what uid %u may "
				      "see: use the system daemon or one of your own",
			 (unsigned)geteuid(), (unsigned)c->uid);
		free(s);
		return -EPERM;
	}
	r = parse_options(d, s, req, &since, &has_since, err, errlen);
	if (r < 0)
		goto fail;
	c->acct->watches.limit = watch_limit(d, c);

	if (s->flags & FSNOTE_SUB_SYSTEM) {
		if (!c->privileged) {
			snprintf(err, errlen, "whole-system subscriptions are for root%s%s only",
				 d->cfg.privileged_group ? " and group " : "",
				 d->cfg.privileged_group ? d->cfg.privileged_group : "");
			r = -EPERM;
			goto fail;
		}
		if (dirfd >= 0) {
			snprintf(err, errlen, "a whole-system subscription takes no descriptor");
			r = -EINVAL;
			goto fail;
		}
		r = watch_system(d, s, err, errlen);
		if (r < 0)
			goto fail;
		pending = s->n_pending > 0;
	} else {
		if (dirfd < 0) {
			snprintf(err, errlen, "subscribe needs one directory descriptor (SCM_RIGHTS)");
			r = -EBADF;
			goto fail;
		}
		bool reachable;
		r = check_dirfd(dirfd, abs, sizeof(abs), &st, &reachable, err, errlen);
		if (r < 0)
			goto fail;
		/* The client's descriptor may live on a mount of another mount
		 * namespace (a container, a sandboxed service): the subscription
		 * is the directory object it refers to, whatever its path.  Where
		 * the daemon reaches the same directory by the same path, the
		 * sources get that (inotify follows paths); elsewhere fanotify
		 * finds the filesystem by its handles, and inotify cannot serve. */
		if (reachable) {
			own_fd = open(abs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			struct stat own_st;
			if (own_fd >= 0 && (fstat(own_fd, &own_st) < 0 || own_st.st_dev != st.st_dev ||
					    own_st.st_ino != st.st_ino)) {
				close(own_fd);
				own_fd = -1;
			}
			reachable = own_fd >= 0;
		}
		if (!reachable && strcmp(d->primary->ops->name, "fanotify") != 0) {
			snprintf(err, errlen, "the directory is in another mount namespace (a container "
					      "or a sandboxed service), which the %s backend cannot "
					      "watch: it needs fanotify", d->primary->ops->name);
			r = -EXDEV;
			goto fail;
		}
		label = label_of(req, reachable ? abs : NULL);
		if (!label) {
			r = -ENOMEM;
			goto fail;
		}
		s->anchors = calloc(1, sizeof(*s->anchors));
		if (!s->anchors) {
			r = -ENOMEM;
			goto fail;
		}
		s->anchors[0].sub = s;
		const char *reason = NULL;
		uint32_t wflags = (s->flags & FSNOTE_SUB_CHILDREN) ? 0 : SOURCE_WATCH_RECURSIVE;
		int wfd = own_fd >= 0 ? own_fd : dirfd;
		const char *wabs = reachable ? abs : NULL;
		r = watch_dir(d, &s->anchors[0], wfd, wabs, label, wflags, &s->event_flags, &reason);
		/* kernel watches held only for a resume make room for a live
		 * subscription: the user's own at its limit, anyone's at the
		 * kernel's */
		if ((r == -EDQUOT || r == -ENOSPC) &&
		    linger_release(d, r == -EDQUOT ? c->uid : (uid_t)-1))
			r = watch_dir(d, &s->anchors[0], wfd, wabs, label, wflags, &s->event_flags,
				      &reason);
		if (own_fd >= 0)
			close(own_fd);
		own_fd = -1;
		if (r < 0) {
			/* the client knows the path it asked for */
			watch_failed_message(c, r, reason, err, errlen);
			goto fail;
		}
		s->n_anchors = 1;
		pending = r == SOURCE_WATCH_PENDING;
		s->n_pending = pending;
		if (s->event_flags & FSNOTE_FLAG_LOCAL_ONLY)
			s->warning = reason;
		/* asked for, never to come, would be silent emptiness */
		if ((s->mask & FSNOTE_EV_BIT(FSNOTE_EV_FS_ERROR)) &&
		    !(s->anchors[0].source->ops->features(s->anchors[0].source) & FSNOTE_FEATURE_FS_ERROR)) {
			snprintf(err, errlen, "filesystem error records need fanotify with FAN_FS_ERROR "
					      "(Linux 5.16 or later); the %s backend serving %s has none",
				 s->anchors[0].source->ops->name, abs);
			r = -EOPNOTSUPP;
			goto fail;
		}
	}

	if (pending) {
		/* the source completes the watch in later turns: sub_watch_ready()
		 * finishes what follows */
		s->since = since;
		s->has_since = has_since;
		s->pending = true;
		free(label);
		*ret = s;
		return SUB_PENDING;
	}
	r = sub_finish(d, s, since, has_since, err, errlen);
	if (r < 0)
		goto fail;
	free(label);
	*ret = s;
	return 0;

fail:
	free(label);
	if (own_fd >= 0)
		close(own_fd);
	sub_discard(s);
	if (!err[0])
		snprintf(err, errlen, "%s", strerror(-r));
	return r;
}

/* --- injection -------------------------------------------------------------- */

/* Injected paths are absolute: the subscription whose root is the longest
 * prefix decides the filesystem and the source-space path. */
int sub_inject(struct daemon *d, const struct codec_record *req, uint64_t *ret_id)
{
	struct source_event sev = { .time_ns = now_real_ns() };
	const char *path, *dest = NULL;
	size_t path_len, dest_len = 0;
	uint32_t v;
	uint64_t dev = 0;
	char src[FSNOTE_PATH_MAX], dsrc[FSNOTE_PATH_MAX];

	(void)codec_get_u32(req, FSNOTE_ARG_EVENT_TYPE, &sev.type);
	if (sev.type == 0 || sev.type > FSNOTE_EV_MAX || sev.type == FSNOTE_EV_DROPPED)
		return -EINVAL;
	(void)codec_get_string(req, FSNOTE_ARG_PATH, &path, &path_len);
	if (path_len == 0 || path[0] != '/')
		return -EINVAL;
	bool has_dest = codec_get_string(req, FSNOTE_ARG_DEST_PATH, &dest, &dest_len) == 0;
	if (has_dest != (sev.type == FSNOTE_EV_RENAME) || (has_dest && (dest_len == 0 || dest[0] != '/')))
		return -EINVAL;
	if (codec_get_u32(req, FSNOTE_ARG_FLAGS, &v) == 0)
		sev.flags = v & (FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_COMBINED);
	sev.flags |= FSNOTE_FLAG_INJECTED;
	(void)codec_get_u32(req, FSNOTE_ARG_PID, &sev.pid);
	bool has_dev = codec_get_u64(req, FSNOTE_ARG_DEV, &dev) == 0;
	if (codec_get_u64(req, FSNOTE_ARG_INO, &sev.st.ino) == 0)
		sev.st.valid = true;
	(void)codec_get_u32(req, FSNOTE_ARG_MODE, &sev.st.mode);
	(void)codec_get_u32(req, FSNOTE_ARG_UID, &sev.st.uid);
	(void)codec_get_u32(req, FSNOTE_ARG_GID, &sev.st.gid);

	/* the anchor with the longest root that holds the path */
	const struct anchor *best = NULL;
	for (size_t i = 0; i < d->n_devs; i++) {
		for (const struct anchor *a = d->dev_heads[i]; a; a = a->dev_next) {
			size_t rl = a->root_abs_len;
			if (has_dev && a->dev != dev)
				continue;
			bool under = rl == 1 || (path_len >= rl && memcmp(path, a->root_abs, rl) == 0 &&
						 (path_len == rl || path[rl] == '/'));
			if (under && (!best || rl > best->root_abs_len))
				best = a;
		}
	}
	sev.path = path;
	sev.path_len = path_len;
	sev.dest = dest;
	sev.dest_len = dest_len;
	sev.dev = dev;
	if (best) {
		/* absolute -> source space: swap the prefixes back */
		size_t rl = best->root_abs_len == 1 ? 0 : best->root_abs_len;
		size_t sl = best->root_src_len == 1 ? 0 : best->root_src_len;
		if (sl + (path_len - rl) + 1 > sizeof(src))
			return -ENAMETOOLONG;
		memcpy(src, best->root_src, sl);
		memcpy(src + sl, path + rl, path_len - rl);
		sev.path_len = sl + path_len - rl;
		if (sev.path_len == 0)
			src[sev.path_len++] = '/';
		src[sev.path_len] = '\0';
		sev.path = src;
		sev.dev = best->dev;
		if (dest) {
			bool dunder = rl == 0 || (dest_len >= rl && memcmp(dest, best->root_abs, rl) == 0 &&
						  (dest_len == rl || dest[rl] == '/'));
			if (dunder && sl + dest_len - rl + 1 <= sizeof(dsrc)) {
				memcpy(dsrc, best->root_src, sl);
				memcpy(dsrc + sl, dest + rl, dest_len - rl);
				sev.dest_len = sl + dest_len - rl;
				dsrc[sev.dest_len] = '\0';
				sev.dest = dsrc;
			}
		}
	}
	uint64_t id = take_event(d, &sev);
	if (id == 0)
		return -ENOMEM; /* not pooled: the caller must not think it was */
	*ret_id = id;
	return 0;
}

/* --- status ----------------------------------------------------------------- */

#define STATUS_SUBS_MAX 2000

void sub_status(struct daemon *d, const struct client *asker, json_t *root)
{
	struct pool_stats ps;
	json_t *subs = json_array();
	size_t listed = 0;
	bool truncated = false;

	pool_get_stats(d->pool, &ps);
	if (!asker->privileged) {
		/* the global event counter is public anyway (see fsnoted(8)) */
		json_object_set_new(root, "pool", json_pack("{s:I}", "current_id",
							     (json_int_t)ps.current_id));
	} else {
		json_object_set_new(root, "pool",
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
					      "events", (json_int_t)ps.events, "max_events",
					      (json_int_t)ps.max_events, "bytes", (json_int_t)ps.bytes,
					      "max_bytes", (json_int_t)ps.max_bytes, "current_id",
					      (json_int_t)ps.current_id, "history", (json_int_t)ps.history,
					      "history_max", (json_int_t)ps.history_max, "oldest_history_id",
					      (json_int_t)ps.oldest_history_id, "added", (json_int_t)ps.added,
					      "merged", (json_int_t)ps.merged, "reclaimed_rings",
					      (json_int_t)ps.reclaimed_rings, "reclaimed_events",
					      (json_int_t)ps.reclaimed_events));
		/* the one memory bound: what max_bytes covers besides the events */
		json_t *pj = json_object_get(root, "pool");
		json_object_set_new(pj, "ring_bytes", json_integer((json_int_t)ps.ring_bytes));
		json_object_set_new(pj, "output_bytes", json_integer((json_int_t)ps.ext_bytes));
		json_object_set_new(pj, "held_bytes", json_integer((json_int_t)(ps.bytes + ps.ring_bytes +
										   ps.ext_bytes)));
		/* the heap as the allocator sees it: what the bound covers, plus
		 * per-connection state, plus what is free but not returned */
		struct mallinfo2 mi = mallinfo2();
		json_object_set_new(pj, "heap_in_use", json_integer((json_int_t)(mi.uordblks + mi.hblkhd)));
		json_object_set_new(pj, "heap_free", json_integer((json_int_t)mi.fordblks));
	}
	for (const struct client *c = d->clients; c; c = c->next) {
		/* other users' subscriptions (their paths) are theirs alone */
		if (!asker->privileged && c->uid != asker->uid)
			continue;
		for (const struct sub *s = c->subs; s; s = s->next) {
			if (listed >= STATUS_SUBS_MAX) {
				truncated = true;
				break;
			}
			struct ring_stats rs;
			ring_get_stats(s->ring, &rs);
			json_t *paths = json_array();
			for (size_t i = 0; i < s->n_anchors; i++)
				json_array_append_new(paths, json_string(s->anchors[i].root_abs));
			json_t *o = json_pack("{s:I,s:i,s:s,s:I,s:o,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}",
					      "id", (json_int_t)s->id, "pid", (int)c->pid, "comm",
					      c->comm, "uid", (json_int_t)c->uid, "paths", paths,
					      "mode", (s->flags & FSNOTE_SUB_SYSTEM) ? "system" :
						      (s->flags & FSNOTE_SUB_CHILDREN) ? "children" : "subtree",
					      "privileged", s->privileged, "ring_queued",
					      (json_int_t)rs.queued, "ring_depth", (json_int_t)rs.depth,
					      "delivered", (json_int_t)rs.delivered, "dropped",
					      (json_int_t)rs.dropped, "drops", (json_int_t)rs.drops,
					      "latency_us", (json_int_t)s->latency_us);
			if (o) {
				json_object_set_new(o, "path", json_string(s->n_anchors ?
									   s->anchors[0].root_abs : ""));
				json_object_set_new(o, "backend", json_string(s->n_anchors ?
									      s->anchors[0].source->ops->name : ""));
				json_array_append_new(subs, o);
			}
			listed++;
		}
	}
	json_object_set_new(root, "subscribers", subs);
	if (truncated)
		json_object_set_new(root, "subscribers_truncated", json_true());
	if (!asker->privileged) {
		json_object_set_new(root, "subscriptions", json_integer((json_int_t)listed));
		return;
	}
	json_object_set_new(root, "subscriptions", json_integer((json_int_t)d->n_subs));
	json_object_set_new(root, "lingering_watches", json_integer((json_int_t)d->n_lingers));
	json_t *interest = json_object();
	for (uint32_t t = 1; t <= FSNOTE_EV_MAX; t++)
		if (d->interest[t])
			json_object_set_new(interest, codec_event_type_name(t),
					    json_integer(d->interest[t]));
	json_object_set_new(root, "interest", interest);
	json_object_set_new(root, "events_in", json_integer((json_int_t)d->events_in));
	json_object_set_new(root, "events_delivered", json_integer((json_int_t)d->events_delivered));
	json_object_set_new(root, "events_denied", json_integer((json_int_t)d->events_denied));
	json_t *jo = json_object();
	if (d->journal)
		journal_status(d->journal, jo);
	else
		json_object_set_new(jo, "enabled", json_false());
	json_object_set_new(root, "journal", jo);
	access_status(d->access, root);
}

/* --- the journal ----------------------------------------------------------------
 *
 * A resume older than the memory history is answered in three parts, in ID
 * order and without overlap: the journal up to where the memory history
 * begins (read lazily by drain_sub, so that a million journaled events never
 * sit in a ring), then the memory history (pushed into the ring now), then
 * live events (pushed into the ring as they come).  Each journaled event is
 * rebuilt as a struct pool_event and judged by sub_match(), the very
 * function that judges live events, directory identities included.  Every
 * gap the resume crosses (a stop, a crash, a kernel overflow, a cut or an
 * excluded path) becomes one must-rescan drop, sent before the first
 * replayed event. */

bool sub_pending(const struct sub *s)
{
	return ring_peek(s->ring) || ring_has_drop(s->ring) || s->replay;
}

struct gap_span {
	uint64_t first, last;
	uint32_t flags;
	size_t n;
};

static void gap_span_add(const struct journal_gap *g, void *userdata)
{
	struct gap_span *sp = userdata;

	if (!sp->n || g->id_first < sp->first)
		sp->first = g->id_first;
	if (!sp->n || g->id_last > sp->last)
		sp->last = g->id_last;
	if (g->reason & JOURNAL_GAP_OVERFLOW)
		sp->flags |= FSNOTE_FLAG_KERNEL_OVERFLOW;
	sp->n++;
}


/* replay_one() up to the subscription's until ID. */
static int replay_bounded(struct pool_event *ev, void *userdata)
{
	struct bounded_ctx *bc = userdata;

	if (bc->until && ev->id > bc->until)
		return 2; /* stop: not a gap */
	/* the device number now names another filesystem than this event's */
	if (ev->id <= journal_fs_epoch(bc->rc.d->journal, ev->dev))
		return 0;
	return replay_one(ev, &bc->rc);
}

/* Replays what @s missed since @since.  Returns 0 or POOL_HISTORY_GAP, as
 * pool_history_since(). */
static int resume_replay(struct daemon *d, struct sub *s, uint64_t since, uint64_t cur)
{
	struct bounded_ctx bc = { { d, s, 0 }, s->until_id };
	struct pool_stats ps;
	int r;

	if (since > cur)
		return POOL_HISTORY_GAP;
	pool_get_stats(d->pool, &ps);
	/* the memory history holds (mem_from, cur] */
	uint64_t mem_from = ps.history ? ps.oldest_history_id - 1 : cur;
	uint64_t until = s->until_id && s->until_id < cur ? s->until_id : cur;
	if (!d->journal || since >= mem_from) {
		r = pool_history_since(d->pool, since, replay_bounded, &bc);
		return r == 2 ? 0 : r;
	}
	uint64_t jend = mem_from < until ? mem_from : until;
	struct gap_span sp = { 0 };
	(void)journal_gaps(d->journal, since, jend, 0, gap_span_add, &sp);
	for (size_t i = 0; i < s->n_anchors; i++) {
		const struct anchor *a = &s->anchors[i];
		if (a->root_abs && journal_may_exclude(d->journal, a->dev, a->root_abs))
			gap_span_add(&(struct journal_gap){ .id_first = since + 1, .id_last = jend }, &sp);
	}
	if (sp.n)
		ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | sp.flags, 0,
				  sp.first, sp.last, NULL);
	if (jend > since) {
		s->replay_fsids = calloc(s->n_anchors ? s->n_anchors : 1, sizeof(*s->replay_fsids));
		r = s->replay_fsids ? journal_cursor_new(d->journal, since, jend, &s->replay) : -ENOMEM;
		if (r < 0) {
			log_warn("subscription %u: cannot read the journal: %s", s->id, strerror(-r));
			ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0, since + 1,
					  jend, NULL);
		} else {
			for (size_t i = 0; i < s->n_anchors; i++)
				s->replay_fsids[i] = journal_fsid_of(d->journal, s->anchors[i].dev);
			s->replay_pos = since;
			s->replay_end = jend;
		}
	}
	if (until > mem_from) {
		r = pool_history_since(d->pool, mem_from, replay_bounded, &bc);
		if (r == POOL_HISTORY_GAP) /* cannot be: mem_from is the history's own floor */
			ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0,
					  mem_from + 1, until, NULL);
	}
	return 0;
}

/* The anchor of @s a journaled event belongs to: the same filesystem by
 * its identity (device numbers change across reboots and get reused), or
 * by device number where the filesystem has no identity. */
static const struct anchor *journal_anchor(const struct sub *s, uint64_t dev, uint64_t fsid)
{
	for (size_t i = 0; i < s->n_anchors; i++) {
		uint64_t afsid = s->replay_fsids ? s->replay_fsids[i] : 0;
		if (fsid && afsid ? fsid == afsid : dev == s->anchors[i].dev)
			return &s->anchors[i];
	}
	return NULL;
}

/* Sends journaled events until @high bytes are queued.  Returns true while
 * the journal still has some for @s (or a drop must go first). */
static bool journal_replay_drain(struct sub *s, size_t high)
{
	struct client *c = s->client;
	struct daemon *d = c->d;
	struct pool_event *ev;
	uint64_t fsid;

	while (evbuffer_get_length(c->out) < high) {
		int r = journal_cursor_next(s->replay, &ev, &fsid);
		if (r <= 0) {
			if (r < 0) {
				log_warn("subscription %u: journal read failed after ID %llu: %s", s->id,
					 (unsigned long long)s->replay_pos, strerror(-r));
				ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN, 0,
						  s->replay_pos + 1, s->replay_end, NULL);
			}
			s->replay = journal_cursor_free(s->replay);
			return r < 0;
		}
		s->replay_pos = ev->id;
		const struct anchor *a = journal_anchor(s, ev->dev, fsid);
		if (!a || !a->root_src)
			continue;
		ev->dev = a->dev; /* as this boot numbers the filesystem */
		/* a root deleted long ago says nothing of the root watched now */
		bool ending = s->ending, withheld;
		const char *at = NULL;
		size_t at_len = 0;
		int view = sub_match(d, s, a, ev, &withheld, &at, &at_len);
		s->ending = ending;
		if (withheld) {
			/* a name the journal holds whose directory cannot be
			 * verified any more: the subscriber hears it must rescan */
			sub_withheld(d, s, a, ev->id, at, at_len);
			server_schedule_drain(c);
		}
		if (view < 0)
			continue;
		struct ring_entry e = { ev, (uint8_t)(view | RING_VIEW_HISTORY) };
		if (emit_event(s, &e) < 0)
			return true; /* its drop record goes next */
	}
	return true;
}

/* Ends an until-bounded subscription after what was replayed: a
 * history_end record, and no live events (an ending subscription is
 * offered none). */
static void history_end(struct daemon *d, struct sub *s)
{
	const struct anchor *a = s->n_anchors ? &s->anchors[0] : NULL;
	const char *p = a && a->root_abs ? a->root_abs : "/";
	struct pool_event *ev;
	/* no filesystem: other subscriptions' replays skip it, and the path
	 * goes out as is */
	struct pool_event_init init = {
		.type = FSNOTE_EV_HISTORY_END,
		.flags = FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_ROOT | FSNOTE_FLAG_SUB_ENDED,
		.actor_uid = UINT32_MAX,
		.time_ns = now_real_ns(),
		.path = p,
		.path_len = strlen(p),
	};

	if (pool_add(d->pool, &init, now_mono_ns(), &ev) == POOL_ADDED) {
		(void)ring_push(s->ring, ev, RING_VIEW_FULL);
		pool_event_unref(d->pool, ev);
	} else {
		ring_mark_dropped(s->ring, FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN |
				  FSNOTE_FLAG_SUB_ENDED, 0, 0, 0, NULL);
	}
	s->ending = true;
}
