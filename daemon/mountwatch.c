/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mountwatch.c - mount and unmount records from the kernel (FAN_MNT_ATTACH,
 * FAN_MNT_DETACH on a mount-namespace mark, Linux 6.14 and later).
 *
 * The kernel names a mount by its unique 64-bit ID only, so we keep a table
 * from ID to mount point, built from /proc/self/mounts and statx() with
 * STATX_MNT_ID_UNIQUE.  An attach is looked up after re-reading the table;
 * a detach is looked up in the table as it was (the mount is gone by then).
 * The table is bounded by the number of mounts in the namespace.
 */
#include "mountwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef FAN_REPORT_MNT
#define FAN_REPORT_MNT 0x00004000
#endif
#ifndef FAN_MARK_MNTNS
#define FAN_MARK_MNTNS 0x00000110
#endif
#ifndef FAN_MNT_ATTACH
#define FAN_MNT_ATTACH 0x01000000
#endif
#ifndef FAN_MNT_DETACH
#define FAN_MNT_DETACH 0x02000000
#endif
#define INFO_TYPE_MNT 7
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

#define MOUNTS_MAX 65536

struct mount_entry {
	uint64_t id;
	uint64_t dev;
	char *point;
	char *fstype;
};

struct mountwatch {
	int fd;
	struct event *ev;
	mountwatch_cb cb;
	void *ctx;
	struct mount_entry *mounts;
	size_t n_mounts;
	uint64_t attached, detached;
};

static void table_clear(struct mount_entry *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].point);
		free(m[i].fstype);
	}
	free(m);
}

/* Re-reads the mount table.  Returns 0 or -errno (the old table stays). */
static int table_load(struct mountwatch *w)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mount_entry *m = NULL;
	size_t n = 0, cap = 0;
	struct mntent *e;

	if (!f)
		return -errno;
	while ((e = getmntent(f)) && n < MOUNTS_MAX) {
		struct statx sx;
		if (statx(AT_FDCWD, e->mnt_dir, AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW,
			  STATX_MNT_ID_UNIQUE, &sx) < 0 ||
		    !(sx.stx_mask & STATX_MNT_ID_UNIQUE))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct mount_entry *nm = realloc(m, ncap * sizeof(*nm));
			if (!nm)
				break;
			m = nm;
			cap = ncap;
		}
		m[n] = (struct mount_entry){
			.id = sx.stx_mnt_id,
			.dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
			.point = strdup(e->mnt_dir),
			.fstype = strdup(e->mnt_type),
		};
		if (!m[n].point || !m[n].fstype) {
			free(m[n].point);
			free(m[n].fstype);
			break;
		}
		n++;
	}
	endmntent(f);
	table_clear(w->mounts, w->n_mounts);
	w->mounts = m;
	w->n_mounts = n;
	return 0;
}

static const struct mount_entry *table_find(const struct mountwatch *w, uint64_t id)
{
	for (size_t i = 0; i < w->n_mounts; i++)
		if (w->mounts[i].id == id)
			return &w->mounts[i];
	return NULL;
}

static void handle(struct mountwatch *w, uint64_t mask, uint64_t id)
{
	if (mask & FAN_MNT_DETACH) {
		const struct mount_entry *m = table_find(w, id);
		if (m) {
			w->detached++;
			w->cb(w->ctx, false, m->point, m->dev, m->fstype);
		}
	}
	if (mask & (FAN_MNT_ATTACH | FAN_MNT_DETACH))
		(void)table_load(w);
	if (mask & FAN_MNT_ATTACH) {
		const struct mount_entry *m = table_find(w, id);
		if (m) {
			w->attached++;
			w->cb(w->ctx, true, m->point, m->dev, m->fstype);
		}
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct mountwatch *w = arg;
	_Alignas(struct fanotify_event_metadata) char buf[16384];

	for (int round = 0; round < 16; round++) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (size_t off = 0; off + sizeof(struct fanotify_event_metadata) <= (size_t)n;) {
			struct fanotify_event_metadata md;
			memcpy(&md, buf + off, sizeof(md));
			if (md.event_len < sizeof(md) || off + md.event_len > (size_t)n)
				break;
			uint64_t id = 0;
			bool have = false;
			for (size_t i = off + md.metadata_len; i + 4 <= off + md.event_len;) {
				struct fanotify_event_info_header h;
				memcpy(&h, buf + i, sizeof(h));
				if (h.len < sizeof(h) || i + h.len > off + md.event_len)
					break;
				if (h.info_type == INFO_TYPE_MNT && h.len >= 16) {
					memcpy(&id, buf + i + 8, sizeof(id));
					have = true;
				}
				i += h.len;
			}
			if (md.fd >= 0)
				close(md.fd);
			if (have)
				handle(w, md.mask, id);
			off += md.event_len;
		}
	}
}

int mountwatch_new(struct event_base *base, mountwatch_cb cb, void *ctx, struct mountwatch **ret)
{
	struct mountwatch *w;
	int r;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->ctx = ctx;
	w->fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_NONBLOCK | FAN_CLOEXEC, 0);
	if (w->fd < 0) {
		r = errno == EINVAL ? -ENOSYS : -errno;
		free(w);
		return r;
	}
	int ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || fanotify_mark(w->fd, FAN_MARK_ADD | FAN_MARK_MNTNS,
				    FAN_MNT_ATTACH | FAN_MNT_DETACH, ns, NULL) < 0) {
		r = errno == EINVAL ? -ENOSYS : -errno;
		if (ns >= 0)
			close(ns);
		close(w->fd);
		free(w);
		return r;
	}
	close(ns);
	r = table_load(w);
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, read_cb, w);
	if (r < 0 || !w->ev || event_add(w->ev, NULL) < 0) {
		mountwatch_free(w);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = w;
	return 0;
}

struct mountwatch *mountwatch_free(struct mountwatch *w)
{
	if (!w)
		return NULL;
	if (w->ev)
		event_free(w->ev);
	close(w->fd);
	table_clear(w->mounts, w->n_mounts);
	free(w);
	return NULL;
}

void mountwatch_status(const struct mountwatch *w, json_t *obj)
{
	json_object_set_new(obj, "mount_events",
			    json_pack("{s:I,s:I,s:I}", "mounts", (json_int_t)w->n_mounts, "attached",
				      (json_int_t)w->attached, "detached", (json_int_t)w->detached));
}
