/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * source-fanotify.c - the fanotify kernel source (see source.h).
 *
 * One fanotify group reports, for every marked filesystem, (directory
 * handle, name) pairs.  Each filesystem gets one FAN_MARK_FILESYSTEM mark,
 * refcounted by the watches on it, whose mask is the union of what
 * subscribers want.  Handles are resolved against a detached clone of the
 * mount the first watch came through (open_tree(OPEN_TREE_CLONE) of that
 * mount's root, reached from the borrowed descriptor by ".." alone): the
 * clone is in no namespace, so it never keeps a plain umount from
 * succeeding.  readlink() of a descriptor opened through the clone gives a
 * path relative to the clone's root; with the mount's root within the
 * filesystem ("/sub" for a bind mount of a subdirectory) put in front, that
 * is the source path space for the filesystem: paths from its superblock's
 * root.
 *
 * Because the clone keeps the superblock alive, unmount is learnt from the
 * mount table: /proc/self/mountinfo signals POLLPRI on every change, which
 * a private epoll descriptor turns into readability for libevent.  When no
 * mount of a marked st_dev remains, the source drains the queue, drops the
 * mark, the clone and the cache entries, and tells the sink.
 *
 * Invariants: a path is delivered only if it was true when the event was
 * read, or if it is the path the kernel's own rename/create records implied
 * at that point of the stream (the cache is primed from them and invalidated
 * by them, in stream order); an event whose directory cannot be named is
 * never reported under a guess: the sink is told of the loss instead.  The
 * kernel queue is FAN_UNLIMITED_QUEUE: its default bound of 16384 events
 * overflowed whenever fanning a read out to many subscribers took longer
 * than the writers needed to queue that many, and an overflow costs every
 * subscriber, where the pool's own bound costs only the slow ones.  What the
 * kernel holds for us is charged to the daemon's memory cgroup (MemoryMax=
 * in the unit), and an overflow, should one still come, is reported.
 * Because that queue cannot overflow, the source takes turns with the
 * clients (one read, then every client's writes) instead of going first:
 * what it read ahead of them would only wait in the pool.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "clock.h"
#include "fsnote-protocol.h"
#include "mountinfo.h"
#include "pathcache.h"
#include "source.h"

#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000
#endif
#ifndef FAN_RENAME
#define FAN_RENAME 0x10000000
#endif
#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif
#ifndef FAN_EVENT_INFO_TYPE_OLD_DFID_NAME
#define FAN_EVENT_INFO_TYPE_OLD_DFID_NAME 10
#define FAN_EVENT_INFO_TYPE_NEW_DFID_NAME 12
#endif
#ifndef FAN_EVENT_INFO_TYPE_ERROR
#define FAN_EVENT_INFO_TYPE_ERROR 5
#endif

#define READ_BUF_SIZE (256u * 1024u)
/* One read (some thousands of records) per turn, then every client has
 * its turn: reading a whole burst ahead of them only moved it into the
 * pool, where it crowded out subscribers that were keeping up. */
#define READS_PER_CALLBACK 1
/* Reading as soon as the group is readable wakes the daemon for nearly
 * every event under load, and both the writer and the daemon pay for the
 * switches (the writer ~1.9x slower against ~1.3x for a reader that naps).
 * So when wake-ups come closer than BUSY_GAP_NS, the source drains the
 * queue and then naps NAP_US before reading again, until a nap finds the
 * queue empty.  At a thousand operations a second wake-ups are about a
 * millisecond apart (the two or three events of one operation come in one
 * read, or a few microseconds apart, after which the nap finds nothing), so
 * such a rate is still read at once. */
#define BUSY_GAP_NS 100000ull
#define NAP_US 200
/* The queue is unlimited, so the kernel can hold a burst while subscribers
 * that keep up catch up: the core says how many events it can take now
 * (sink.read_room), a read asks for no more bytes than that many of the
 * smallest records could fill, and at 0 the source holds.  The core resumes
 * it as soon as room comes back; HOLD_POLL_US re-asks meanwhile, because a
 * subscriber that stops reading stops counting only after a while. */
#define MIN_RECORD_BYTES 48u         /* metadata, DFID_NAME header, handle, name */
#define MIN_READ_BYTES 4096u
#define HOLD_POLL_US 20000
/* O_PATH descriptors of recently seen directories on the clone, so that an
 * event's object is looked up by one name, not a walk of its whole path */
#define DIRFD_SLOTS 64
#define READS_PER_FLUSH 4096         /* a bound even if writers never pause */
#define HANDLE_MAX 128               /* MAX_HANDLE_SZ */
#define SPATH_MAX (2 * FSNOTE_PATH_MAX)
#define DELETED_SUFFIX " (deleted)"

struct fid_info {
	bool present;
	int fsid[2];
	unsigned char handle[sizeof(unsigned int) + sizeof(int) + HANDLE_MAX]; /* struct file_handle */
	size_t key_len;         /* handle_type + f_handle bytes */
	const char *name;       /* NULL when the record has none */
	size_t name_len;
};

struct fan_fs {
	struct fan_fs *next;
	uint64_t dev;
	int fsid[2];            /* statfs f_fsid, as events carry it */
	int mntfd;              /* detached clone (owned), -1 once unmounted */
	char *prefix;           /* the clone's root in the filesystem, "" for "/" (owned) */
	size_t prefix_len;
	char *point;            /* mount point the first watch came through (owned) */
	char fstype[64];
	uint64_t mask;          /* what the mark holds now */
	unsigned watches;
	bool dead;
};

struct source_watch {
	struct fan_fs *fs;
};

struct fan {
	struct source base;
	struct event_base *evb;
	struct source_sink sink;
	int fd;                 /* the fanotify group (owned) */
	struct event *ev;
	int epfd, mifd;         /* mountinfo change detection (owned) */
	struct event *mev;
	struct pathcache *cache;
	unsigned char *buf;     /* READ_BUF_SIZE */
	struct fan_fs *fss;
	uint64_t interest;
	pid_t self_pid;         /* the daemon: its own opens are not reported */
	unsigned init_flags;
	bool has_rename, has_target_fid, has_fs_error;
	bool reading;           /* re-entrancy guard: a sink callback may call flush() */
	long queue_limit;
	/* a FAN_MOVED_FROM waiting for its FAN_MOVED_TO (kernels without FAN_RENAME) */
	bool moved_pending;
	struct source_event moved_ev;
	char moved_path[SPATH_MAX];
	struct fid_info moved_dir;      /* owns the bytes moved_ev.dir points to */
	/* adaptive reading: see BUSY_GAP_NS */
	struct event *nap;
	bool napping;
	bool held;              /* the core has no room: reading waits (see HOLD_POLL_US) */
	uint64_t last_wake_ns;
	uint64_t holds;
	/* see DIRFD_SLOTS; a slot holds a descriptor when fd >= 0 */
	struct dirfd_slot {
		int fd;
		uint64_t dev;
		size_t key_len;
		unsigned char key[sizeof(int) + HANDLE_MAX];
	} dirfds[DIRFD_SLOTS];
	/* figures for status() */
	uint64_t events_read, records, overflows, unmounts, unresolved, skipped, reads, naps;
	uint64_t renames_paired, renames_unpaired;
};


static const struct source_ops fan_ops;

/* --- masks --------------------------------------------------------------- */

static uint64_t fan_mask(const struct fan *f)
{
	uint64_t i = f->interest, m = 0;

	if (i & FSNOTE_EV_BIT(FSNOTE_EV_CREATE))
		m |= FAN_CREATE;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_DELETE))
		m |= FAN_DELETE;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_MODIFY))
		m |= FAN_MODIFY;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_ATTRIB))
		m |= FAN_ATTRIB;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_CLOSE_WRITE))
		m |= FAN_CLOSE_WRITE;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_OPEN))
		m |= FAN_OPEN;
	if (i & FSNOTE_EV_BIT(FSNOTE_EV_ACCESS))
		m |= FAN_ACCESS;
	/* renames are always marked, whatever the interest: the path cache
	 * must follow every directory rename, or a directory moved elsewhere
	 * would keep reporting under its old path (and be judged there);
	 * records nobody asked for are dropped by the core */
	m |= f->has_rename ? FAN_RENAME : (FAN_MOVED_FROM | FAN_MOVED_TO);
	if ((i & FSNOTE_EV_BIT(FSNOTE_EV_FS_ERROR)) && f->has_fs_error)
		m |= FAN_FS_ERROR;
	if (!m)
		m = FAN_DELETE; /* a mark needs some event; the core filters */
	return m;
}

static int mark_fs(struct fan *f, unsigned op, uint64_t events, int dfd)
{
	uint64_t flags = op == FAN_MARK_ADD ? (FAN_ONDIR | FAN_EVENT_ON_CHILD) : 0;

	if (fanotify_mark(f->fd, op | FAN_MARK_FILESYSTEM, events | flags, dfd, NULL) < 0)
		return -errno;
	return 0;
}

/* Brings every live mark to the mask the current interest asks for. */
static void update_marks(struct fan *f)
{
	uint64_t want = fan_mask(f);

	for (struct fan_fs *fs = f->fss; fs; fs = fs->next) {
		if (fs->dead || fs->mask == want)
			continue;
		uint64_t add = want & ~fs->mask, del = fs->mask & ~want;
		if (add && mark_fs(f, FAN_MARK_ADD, add, fs->mntfd) == 0)
			fs->mask |= add;
		if (del && mark_fs(f, FAN_MARK_REMOVE, del, fs->mntfd) == 0)
			fs->mask &= ~del;
	}
}

/* --- filesystems ----------------------------------------------------------- */

static struct fan_fs *fs_by_dev(struct fan *f, uint64_t dev)
{
	for (struct fan_fs *fs = f->fss; fs; fs = fs->next)
		if (fs->dev == dev && !fs->dead)
			return fs;
	return NULL;
}

static struct fan_fs *fs_by_fsid(struct fan *f, const int fsid[2])
{
	for (struct fan_fs *fs = f->fss; fs; fs = fs->next)
		if (fs->fsid[0] == fsid[0] && fs->fsid[1] == fsid[1] && !fs->dead)
			return fs;
	return NULL;
}

/* Closes the cached directory descriptors of filesystem @dev (0: all), so
 * that nothing of ours keeps a clone, and its superblock, alive. */
static void dirfds_drop(struct fan *f, uint64_t dev)
{
	for (size_t i = 0; i < DIRFD_SLOTS; i++) {
		struct dirfd_slot *sl = &f->dirfds[i];
		if (sl->fd >= 0 && (!dev || sl->dev == dev)) {
			close(sl->fd);
			sl->fd = -1;
		}
	}
}

/* Stops watching @fs in the kernel and forgets what we know of it; the
 * struct stays until its last watch goes. */
static void fs_kill(struct fan *f, struct fan_fs *fs)
{
	if (fs->dead)
		return;
	if (fs->mntfd >= 0) {
		/* the flags too, or the mark would outlive its events */
		(void)mark_fs(f, FAN_MARK_REMOVE, fs->mask | FAN_ONDIR | FAN_EVENT_ON_CHILD, fs->mntfd);
		close(fs->mntfd);
	}
	fs->mntfd = -1;
	fs->dead = true;
	pathcache_drop_fs(f->cache, fs->dev);
	dirfds_drop(f, fs->dev);
}

static void fs_free(struct fan *f, struct fan_fs *fs)
{
	for (struct fan_fs **pp = &f->fss; *pp; pp = &(*pp)->next) {
		if (*pp == fs) {
			*pp = fs->next;
			break;
		}
	}
	fs_kill(f, fs);
	free(fs->prefix);
	free(fs->point);
	free(fs);
}

static int statx_mnt_id(int fd, struct statx *stx)
{
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_INO, stx) < 0)
		return -errno;
	if (!(stx->stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	return 0;
}

/* A detached clone of the root of the mount @dirfd lives on, reached by
 * ".." alone (no name of ours is looked up, so nothing can be swapped in
 * underneath).  Returns the clone's descriptor or -errno. */
static int clone_mount_root(int dirfd)
{
	struct statx cur, up;
	int fd = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = statx_mnt_id(fd, &cur);
	for (int depth = 0; r == 0 && depth < PATH_MAX / 2; depth++) {
		int p = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (p < 0) {
			r = -errno;
			break;
		}
		r = statx_mnt_id(p, &up);
		if (r < 0 || up.stx_mnt_id != cur.stx_mnt_id ||
		    (up.stx_ino == cur.stx_ino && up.stx_dev_major == cur.stx_dev_major &&
		     up.stx_dev_minor == cur.stx_dev_minor)) {
			close(p);
			break; /* fd is the mount's root */
		}
		close(fd);
		fd = p;
		cur = up;
	}
	if (r < 0) {
		close(fd);
		return r;
	}
	int clone = open_tree(fd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	r = clone < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	/* open_tree() gives an O_PATH descriptor, which open_by_handle_at()
	 * and fanotify_mark() refuse (EBADF): open the clone's root for real;
	 * that file keeps the detached mount alive on its own */
	fd = openat(clone, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = fd < 0 ? -errno : fd;
	close(clone);
	return r;
}

/* --- resolving handles ----------------------------------------------------- */

/* Writes the source-space path of the directory open at @dfd (opened
 * through @fs's clone) to @out.  Returns its length, or -ENOENT when the
 * directory is deleted (then *ret_deleted and the last path are given, for
 * events that happened before the deletion), or -errno. */
static int path_of_fd(struct fan_fs *fs, int dfd, char *out, size_t cap, bool *ret_deleted)
{
	char proc[64], link[SPATH_MAX];
	struct stat st;

	*ret_deleted = false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
	ssize_t n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	if (n == 0 || (size_t)n >= sizeof(link) - 1 || link[0] != '/')
		return -ENAMETOOLONG;
	link[n] = '\0';
	size_t sl = strlen(DELETED_SUFFIX);
	if ((size_t)n > sl && memcmp(link + n - sl, DELETED_SUFFIX, sl) == 0 && fstat(dfd, &st) == 0 &&
	    st.st_nlink == 0) {
		n -= (ssize_t)sl;
		link[n] = '\0';
		*ret_deleted = true;
	}
	bool in_view = true;
	if (fs->prefix_len) {
		/* readlink is relative to the clone's root for what lies inside
		 * it, and says "/" for what escapes it: ask the clone */
		struct stat a, b;
		in_view = fstat(dfd, &a) == 0 &&
			  fstatat(fs->mntfd, n == 1 ? "." : link + 1, &b,
				  AT_SYMLINK_NOFOLLOW) == 0 &&
			  a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	}
	if (!in_view)
		return -EXDEV; /* outside the clone: readlink cannot name it */
	size_t len = 0;
	if (fs->prefix_len) {
		if (fs->prefix_len + (size_t)n + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, fs->prefix, fs->prefix_len);
		len = fs->prefix_len;
		if (n > 1) {
			memcpy(out + len, link, (size_t)n);
			len += (size_t)n;
		}
	} else {
		if ((size_t)n + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, link, (size_t)n);
		len = (size_t)n;
	}
	out[len] = '\0';
	return *ret_deleted ? -ENOENT : (int)len;
}

/* The source-space path of the directory @fid names, in @out.  Returns its
 * length or -errno; -ENOENT with *ret_deleted for a deleted directory whose
 * last path is in @out (not cached). */
static int resolve_dir(struct fan *f, struct fan_fs *fs, const struct fid_info *fid, char *out,
		       size_t cap, bool *ret_deleted)
{
	const unsigned char *key = fid->handle + sizeof(unsigned int);
	size_t len;
	const char *p = pathcache_lookup(f->cache, fs->dev, key, fid->key_len, &len);

	*ret_deleted = false;
	if (p) {
		if (len + 1 > cap)
			return -ENAMETOOLONG;
		memcpy(out, p, len + 1);
		return (int)len;
	}
	int dfd = open_by_handle_at(fs->mntfd, (struct file_handle *)(void *)fid->handle,
				    O_PATH | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int r = path_of_fd(fs, dfd, out, cap, ret_deleted);
	close(dfd);
	if (r >= 0)
		(void)pathcache_insert(f->cache, fs->dev, key, fid->key_len, out, (size_t)r);
	return r;
}

/* What is there now at @rel below @dirfd ("" for @dirfd itself), not
 * following a last symlink; ret->valid false when nothing is. */
static void stat_at(int dirfd, const char *rel, struct pool_stat *ret)
{
	struct statx stx;

	*ret = (struct pool_stat){ .valid = false };
	if (statx(dirfd, rel, AT_SYMLINK_NOFOLLOW | (rel[0] ? 0 : AT_EMPTY_PATH),
		  STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_INO, &stx) < 0)
		return;
	*ret = (struct pool_stat){ .valid = true, .ino = stx.stx_ino, .mode = stx.stx_mode,
				   .uid = stx.stx_uid, .gid = stx.stx_gid };
}

/* An O_PATH descriptor of the directory @fid names, from the slot cache
 * (owned by the cache), or -1.  The descriptor follows the directory
 * itself, so renames never make it stale; a deleted one just finds
 * nothing. */
static int dir_fd(struct fan *f, struct fan_fs *fs, const struct fid_info *fid)
{
	const unsigned char *key = fid->handle + sizeof(unsigned int);

	if (fid->key_len > sizeof(f->dirfds[0].key) || fs->mntfd < 0)
		return -1;
	struct dirfd_slot *sl = &f->dirfds[pathcache_hash(fs->dev, key, fid->key_len) % DIRFD_SLOTS];
	if (sl->fd >= 0 && sl->dev == fs->dev && sl->key_len == fid->key_len &&
	    memcmp(sl->key, key, fid->key_len) == 0)
		return sl->fd;
	int fd = open_by_handle_at(fs->mntfd, (struct file_handle *)(void *)fid->handle,
				   O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (sl->fd >= 0)
		close(sl->fd);
	sl->fd = fd;
	sl->dev = fs->dev;
	sl->key_len = fid->key_len;
	memcpy(sl->key, key, fid->key_len);
	return fd;
}

/* The directory @fid names, by its own handle (not by a path, which can
 * lead to another object by now); nothing when it is gone. */
static void stat_dir(struct fan *f, struct fan_fs *fs, const struct fid_info *fid, struct pool_stat *ret)
{
	int dfd = f->base.want_stat ? dir_fd(f, fs, fid) : -1;

	if (dfd < 0)
		*ret = (struct pool_stat){ .valid = false };
	else
		stat_at(dfd, "", ret);
}

/* The object @fid names, as the kernel named it: its attributes now, or
 * none when it is gone.  Never what a name leads to now, which can be
 * another object. */
static void stat_object(const struct fan *f, struct fan_fs *fs, const struct fid_info *fid,
			struct pool_stat *ret)
{
	*ret = (struct pool_stat){ .valid = false };
	/* three system calls an event: only when a subscriber asked */
	if (!f->base.want_stat || !fid->present || fs->mntfd < 0)
		return;
	int fd = open_by_handle_at(fs->mntfd, (struct file_handle *)(void *)fid->handle,
				   O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;
	stat_at(fd, "", ret);
	close(fd);
}

/* The directory identity of @fid for the core's access checks. */
static struct pool_dirid dirid_of(const struct fid_info *fid, bool self)
{
	int htype;

	memcpy(&htype, fid->handle + sizeof(unsigned int), sizeof(htype));
	return (struct pool_dirid){
		.type = htype,
		.len = (uint8_t)(fid->key_len - sizeof(int)),
		.self = self,
		.bytes = fid->handle + sizeof(unsigned int) + sizeof(int),
	};
}

/* @dir + "/" + @name into @out; returns the length or -ENAMETOOLONG. */
static int join(const char *dir, size_t dlen, const char *name, size_t nlen, char *out, size_t cap)
{
	size_t base = dlen == 1 ? 0 : dlen;
	if (base + 1 + nlen + 1 > cap)
		return -ENAMETOOLONG;
	memmove(out, dir, base);
	out[base] = '/';
	memcpy(out + base + 1, name, nlen);
	out[base + 1 + nlen] = '\0';
	return (int)(base + 1 + nlen);
}

/* --- parsing --------------------------------------------------------------- */

/* Fills @out from one fid-carrying info record.  Returns 0 or -EBADMSG. */
static int parse_fid(const unsigned char *rec, size_t len, bool with_name, struct fid_info *out)
{
	struct fanotify_event_info_header hdr;
	unsigned int hbytes;
	int htype;
	size_t off = sizeof(hdr) + sizeof(int) * 2; /* header, fsid */

	if (len < off + sizeof(hbytes) + sizeof(htype))
		return -EBADMSG;
	memcpy(out->fsid, rec + sizeof(hdr), sizeof(out->fsid));
	memcpy(&hbytes, rec + off, sizeof(hbytes));
	memcpy(&htype, rec + off + sizeof(hbytes), sizeof(htype));
	off += sizeof(hbytes) + sizeof(htype);
	if (hbytes == 0 || hbytes > HANDLE_MAX || hbytes > len - off)
		return -EBADMSG;
	memcpy(out->handle, rec + off - sizeof(hbytes) - sizeof(htype),
	       sizeof(hbytes) + sizeof(htype) + hbytes);
	out->key_len = sizeof(htype) + hbytes;
	off += hbytes;
	out->name = NULL;
	out->name_len = 0;
	if (with_name) {
		const char *name = (const char *)rec + off;
		const char *nul = off < len ? memchr(name, '\0', len - off) : NULL;
		if (!nul || nul == name)
			return -EBADMSG;
		out->name = name;
		out->name_len = (size_t)(nul - name);
	}
	out->present = true;
	return 0;
}

struct parsed {
	struct fid_info fid, dfid, dfid_name, old, new_;
	bool has_error;
	int error;
};

static int parse_infos(const unsigned char *p, size_t len, struct parsed *out)
{
	memset(out, 0, sizeof(*out));
	while (len > 0) {
		struct fanotify_event_info_header hdr;
		if (len < sizeof(hdr))
			return -EBADMSG;
		memcpy(&hdr, p, sizeof(hdr));
		if (hdr.len < sizeof(hdr) || hdr.len > len)
			return -EBADMSG;
		int r = 0;
		switch (hdr.info_type) {
		case FAN_EVENT_INFO_TYPE_FID:
			r = parse_fid(p, hdr.len, false, &out->fid);
			break;
		case FAN_EVENT_INFO_TYPE_DFID:
			r = parse_fid(p, hdr.len, false, &out->dfid);
			break;
		case FAN_EVENT_INFO_TYPE_DFID_NAME:
			r = parse_fid(p, hdr.len, true, &out->dfid_name);
			break;
		case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
			r = parse_fid(p, hdr.len, true, &out->old);
			break;
		case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
			r = parse_fid(p, hdr.len, true, &out->new_);
			break;
		case FAN_EVENT_INFO_TYPE_ERROR:
			if (hdr.len >= sizeof(hdr) + sizeof(int)) {
				memcpy(&out->error, p + sizeof(hdr), sizeof(int));
				out->has_error = true;
			}
			break;
		default:
			break; /* pidfd and anything newer: not ours */
		}
		if (r < 0)
			return r;
		p += hdr.len;
		len -= hdr.len;
	}
	return 0;
}

/* --- delivery -------------------------------------------------------------- */

static void emit(struct fan *f, struct source_event *ev)
{
	ev->path_len = strlen(ev->path);
	ev->dest_len = ev->dest ? strlen(ev->dest) : 0;
	f->records++;
	f->sink.event(f->sink.ctx, ev);
}

/* A directory we cannot name any more, or a path longer than the protocol
 * carries (@error -ENAMETOOLONG): the events in it are lost, and the
 * subscribers on the filesystem must hear it, and why. */
static void lost(struct fan *f, struct fan_fs *fs, int error)
{
	f->unresolved++;
	if (error == -ENAMETOOLONG && f->sink.lost)
		f->sink.lost(f->sink.ctx, fs->dev, NULL, FSNOTE_FLAG_PATH_TOO_LONG);
	else
		f->sink.overflow(f->sink.ctx, fs->dev, NULL);
}

static void flush_moved(struct fan *f)
{
	if (!f->moved_pending)
		return;
	f->moved_pending = false;
	f->renames_unpaired++;
	emit(f, &f->moved_ev);
}

static void handle_rename(struct fan *f, struct fan_fs *fs, const struct parsed *pi, uint32_t base_flags,
			  struct source_event *ev)
{
	char odir[SPATH_MAX], ndir[SPATH_MAX], from[SPATH_MAX], to[SPATH_MAX];
	bool del;
	int ol = resolve_dir(f, fs, &pi->old, odir, sizeof(odir), &del);
	if (ol == -ENOENT && del)
		ol = (int)strlen(odir);
	int nl = resolve_dir(f, fs, &pi->new_, ndir, sizeof(ndir), &del);
	if (nl == -ENOENT && del)
		nl = (int)strlen(ndir);
	if (ol < 0 || nl < 0) {
		lost(f, fs, ol < 0 ? ol : nl);
		return;
	}
	int fl = join(odir, (size_t)ol, pi->old.name, pi->old.name_len, from, sizeof(from));
	int tl = join(ndir, (size_t)nl, pi->new_.name, pi->new_.name_len, to, sizeof(to));
	if (fl < 0 || tl < 0) {
		lost(f, fs, fl < 0 ? fl : tl);
		return;
	}
	ev->type = FSNOTE_EV_RENAME;
	ev->flags = base_flags;
	ev->path = from;
	ev->dest = to;
	ev->dir = dirid_of(&pi->old, false);
	ev->dest_dir = dirid_of(&pi->new_, false);
	stat_object(f, fs, &pi->fid, &ev->dest_st);
	ev->st = ev->dest_st; /* the same object, now at @to */
	if (base_flags & FSNOTE_FLAG_IS_DIR) {
		/* everything cached under the old name is stale from here on */
		pathcache_invalidate_tree(f->cache, fs->dev, from, (size_t)fl);
		if (pi->fid.present)
			(void)pathcache_insert(f->cache, fs->dev, pi->fid.handle + sizeof(unsigned int),
					       pi->fid.key_len, to, (size_t)tl);
	}
	emit(f, ev);
}

static void process_event(struct fan *f, const struct fanotify_event_metadata *md,
			  const unsigned char *infos, size_t infos_len, uint64_t now)
{
	struct parsed pi;
	uint64_t mask = md->mask;
	char dir[SPATH_MAX], path[SPATH_MAX];
	bool deleted = false;

	f->events_read++;
	if (mask & FAN_Q_OVERFLOW) {
		flush_moved(f);
		f->overflows++;
		f->sink.overflow(f->sink.ctx, 0, NULL);
		return;
	}
	if (md->fd >= 0)
		close(md->fd); /* never asked for, but never leak one */
	/* the daemon's own opens and reads (a subscription's root, a handle
	 * resolved) are its work, not the tree's */
	if (md->pid == f->self_pid) {
		mask &= ~(uint64_t)(FAN_OPEN | FAN_ACCESS | FAN_CLOSE_NOWRITE);
		if (!(mask & ~(uint64_t)FAN_ONDIR))
			return;
	}
	if (parse_infos(infos, infos_len, &pi) < 0) {
		f->skipped++;
		return;
	}
	const struct fid_info *any = pi.dfid_name.present ? &pi.dfid_name :
				     pi.old.present       ? &pi.old :
				     pi.dfid.present      ? &pi.dfid :
							    &pi.fid;
	struct fan_fs *fs = any->present ? fs_by_fsid(f, any->fsid) : NULL;
	if (!fs) {
		f->skipped++; /* a mark already gone, or a filesystem we never marked */
		return;
	}
	uint32_t flags = (mask & FAN_ONDIR) ? FSNOTE_FLAG_IS_DIR : 0;
	struct source_event ev = { .pid = md->pid > 0 ? (uint32_t)md->pid : 0, .time_ns = now,
				   .dev = fs->dev };

	if (mask & FAN_RENAME) {
		flush_moved(f);
		if (pi.old.present && pi.new_.present)
			handle_rename(f, fs, &pi, flags, &ev);
		else
			f->skipped++;
		return;
	}

	if ((mask & FAN_FS_ERROR) && pi.has_error) {
		flush_moved(f);
		/* name the object when its handle still resolves, else the root */
		int r = -ENOENT;
		if (pi.fid.present) {
			int ofd = open_by_handle_at(fs->mntfd, (struct file_handle *)(void *)pi.fid.handle,
						    O_PATH | O_CLOEXEC);
			if (ofd >= 0) {
				r = path_of_fd(fs, ofd, path, sizeof(path), &deleted);
				close(ofd);
			}
		}
		if (r < 0)
			snprintf(path, sizeof(path), "%s", fs->prefix_len ? fs->prefix : "/");
		ev.type = FSNOTE_EV_FS_ERROR;
		ev.path = path;
		emit(f, &ev);
		mask &= ~(uint64_t)FAN_FS_ERROR;
		if (!(mask & ~(uint64_t)FAN_ONDIR))
			return;
	}

	/* the directory and the name the event is about */
	const struct fid_info *d = pi.dfid_name.present ? &pi.dfid_name : pi.dfid.present ? &pi.dfid : NULL;
	if (!d) {
		f->skipped++; /* an object with no parent to name it by (unlinked) */
		return;
	}
	bool self = !d->name || (d->name_len == 1 && d->name[0] == '.');
	if (self && !(mask & FAN_ONDIR)) {
		f->skipped++; /* not about the directory: its name is unknown */
		return;
	}
	int dl = resolve_dir(f, fs, d, dir, sizeof(dir), &deleted);
	if (dl == -ENOENT && deleted) {
		if (self) {
			f->skipped++; /* the directory itself is gone: its delete says so */
			return;
		}
		dl = (int)strlen(dir); /* events from before the deletion: its last path */
	}
	if (dl < 0) {
		if (dl == -ESTALE)
			pathcache_forget(f->cache, fs->dev, d->handle + sizeof(unsigned int), d->key_len);
		flush_moved(f);
		lost(f, fs, dl);
		return;
	}
	int pl = self ? dl : join(dir, (size_t)dl, d->name, d->name_len, path, sizeof(path));
	if (pl < 0) {
		flush_moved(f);
		lost(f, fs, pl);
		return;
	}
	if (self)
		memcpy(path, dir, (size_t)dl + 1);

	/* kernels without FAN_RENAME: a move is a moved_from, then (normally at
	 * once) a moved_to; anything in between breaks the pair */
	if (mask & FAN_MOVED_TO) {
		if (f->moved_pending && (f->moved_ev.flags & FSNOTE_FLAG_IS_DIR) == flags) {
			f->moved_pending = false;
			f->moved_ev.type = FSNOTE_EV_RENAME;
			f->moved_ev.flags &= ~(uint32_t)FSNOTE_FLAG_RENAMED;
			f->moved_ev.dest = path;
			f->moved_ev.dest_dir = dirid_of(d, false);
			stat_object(f, fs, &pi.fid, &f->moved_ev.dest_st);
			f->moved_ev.st = f->moved_ev.dest_st;
			f->renames_paired++;
			emit(f, &f->moved_ev);
		} else {
			flush_moved(f);
			f->renames_unpaired++;
			ev.type = FSNOTE_EV_CREATE;
			ev.flags = flags | FSNOTE_FLAG_RENAMED;
			ev.path = path;
			ev.dir = dirid_of(d, false);
			stat_object(f, fs, &pi.fid, &ev.st);
			emit(f, &ev);
		}
		if (flags & FSNOTE_FLAG_IS_DIR && pi.fid.present)
			(void)pathcache_insert(f->cache, fs->dev, pi.fid.handle + sizeof(unsigned int),
					       pi.fid.key_len, path, (size_t)pl);
	} else {
		flush_moved(f);
	}

	struct pool_stat st;
	if (self)
		stat_dir(f, fs, d, &st);
	else
		stat_object(f, fs, &pi.fid, &st);
	ev.path = path;
	ev.dest = NULL;
	ev.st = st;
	ev.dir = dirid_of(d, self);
	/* one kernel event may hold several merged ones: emit them in the
	 * order they must have happened (a name that exists now was deleted
	 * before it was created, else created before it was deleted) */
	bool del_first = (mask & FAN_DELETE) && (mask & FAN_CREATE) && st.valid;
	static const struct {
		uint64_t fan;
		uint32_t type;
	} order[] = {
		{ FAN_CREATE, FSNOTE_EV_CREATE }, { FAN_OPEN, FSNOTE_EV_OPEN },
		{ FAN_ACCESS, FSNOTE_EV_ACCESS }, { FAN_MODIFY, FSNOTE_EV_MODIFY },
		{ FAN_ATTRIB, FSNOTE_EV_ATTRIB }, { FAN_CLOSE_WRITE, FSNOTE_EV_CLOSE_WRITE },
		{ FAN_DELETE, FSNOTE_EV_DELETE },
	};
	if (del_first) {
		ev.type = FSNOTE_EV_DELETE;
		ev.flags = flags;
		ev.st = (struct pool_stat){ .valid = false };
		emit(f, &ev);
		ev.st = st;
	}
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(mask & order[i].fan) || (del_first && order[i].fan == FAN_DELETE))
			continue;
		ev.type = order[i].type;
		ev.flags = flags;
		if (order[i].fan == FAN_CREATE && (flags & FSNOTE_FLAG_IS_DIR) && pi.fid.present)
			(void)pathcache_insert(f->cache, fs->dev, pi.fid.handle + sizeof(unsigned int),
					       pi.fid.key_len, path, (size_t)pl);
		/* a deleted directory keeps its cache entry: the kernel merges
		 * a create and a delete of one name into one record queued
		 * where the create was, so events inside the directory can
		 * still follow, and its handle (generation included) will never
		 * name another directory; the bounded cache ages it out */
		if (order[i].fan == FAN_DELETE)
			ev.st = (struct pool_stat){ .valid = false };
		emit(f, &ev);
	}

	if ((mask & FAN_MOVED_FROM) && !self) {
		/* wait for the moved_to that normally follows at once */
		f->moved_pending = true;
		memcpy(f->moved_path, path, (size_t)pl + 1);
		f->moved_ev = (struct source_event){ .type = FSNOTE_EV_DELETE,
						     .flags = flags | FSNOTE_FLAG_RENAMED, .pid = ev.pid,
						     .time_ns = now, .dev = fs->dev,
						     .path = f->moved_path };
		f->moved_dir = *d;
		f->moved_ev.dir = dirid_of(&f->moved_dir, false);
		if (flags & FSNOTE_FLAG_IS_DIR)
			pathcache_invalidate_tree(f->cache, fs->dev, path, (size_t)pl);
	}
}

/* One read() of at most @size bytes.  Returns the bytes read, 0 at EAGAIN,
 * or -errno. */
static ssize_t read_batch(struct fan *f, size_t size)
{
	ssize_t n = read(f->fd, f->buf, size);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	f->reads++;
	uint64_t now = now_real_ns();
	const unsigned char *p = f->buf;
	size_t left = (size_t)n;
	while (left >= sizeof(struct fanotify_event_metadata)) {
		struct fanotify_event_metadata md;
		memcpy(&md, p, sizeof(md));
		if (md.vers != FANOTIFY_METADATA_VERSION || md.event_len < md.metadata_len ||
		    md.metadata_len < sizeof(md) || md.event_len > left)
			break;
		process_event(f, &md, p + md.metadata_len, md.event_len - md.metadata_len, now);
		p += md.event_len;
		left -= md.event_len;
	}
	/* a move cut in two by the end of a read keeps its pair: the kernel
	 * queues both halves together, so the other half leads the next read */
	return n;
}

/* How much one read may take now: 0 when the core has no room. */
static size_t read_size(struct fan *f, bool bounded)
{
	if (!bounded || !f->sink.read_room)
		return READ_BUF_SIZE;
	size_t room = f->sink.read_room(f->sink.ctx);
	if (room == 0)
		return 0;
	if (room >= READ_BUF_SIZE / MIN_RECORD_BYTES)
		return READ_BUF_SIZE;
	return room * MIN_RECORD_BYTES < MIN_READ_BYTES ? MIN_READ_BYTES : room * MIN_RECORD_BYTES;
}

/* Reads up to @max_reads times; @bounded: only as much as the core has room
 * for (a flush reads everything).  Returns 0, -errno, or 1 when it stopped
 * for want of room. */
static int drain(struct fan *f, unsigned max_reads, bool bounded)
{
	int r = 0;

	if (f->reading)
		return 0;
	f->reading = true;
	for (unsigned i = 0; i < max_reads; i++) {
		size_t size = read_size(f, bounded);
		if (size == 0) {
			r = 1;
			break;
		}
		ssize_t n = read_batch(f, size);
		if (n <= 0) {
			r = (int)n;
			break;
		}
	}
	flush_moved(f);
	f->reading = false;
	return r;
}

static void nap(struct fan *f)
{
	struct timeval tv = { 0, NAP_US };
	if (!f->napping) {
		event_del(f->ev);
		f->napping = true;
	}
	f->naps++;
	evtimer_add(f->nap, &tv);
}

/* No room: stop reading, and ask again in HOLD_POLL_US (or when the core
 * resumes us). */
static void hold(struct fan *f)
{
	struct timeval tv = { 0, HOLD_POLL_US };
	if (!f->napping) {
		event_del(f->ev);
		f->napping = true;
	}
	if (!f->held)
		f->holds++;
	f->held = true;
	evtimer_add(f->nap, &tv);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct fan *f = arg;
	uint64_t now = now_mono_ns();
	bool busy = now - f->last_wake_ns < BUSY_GAP_NS;

	f->last_wake_ns = now;
	if (drain(f, READS_PER_CALLBACK, true) == 1)
		hold(f);
	else if (busy && f->nap)
		nap(f);
}

static void on_nap_end(evutil_socket_t fd, short what, void *arg)
{
	struct fan *f = arg;
	uint64_t before = f->records;

	if (drain(f, READS_PER_CALLBACK, true) == 1) {
		hold(f);
		return;
	}
	f->held = false;
	if (f->records != before) {
		nap(f); /* still busy */
		return;
	}
	f->napping = false;
	f->last_wake_ns = now_mono_ns();
	event_add(f->ev, NULL);
}

/* --- unmount detection ----------------------------------------------------- */

struct devset {
	uint64_t *devs;
	size_t n, cap;
};

static int collect_dev(const struct mountinfo_entry *e, void *userdata)
{
	struct devset *s = userdata;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		uint64_t *d = realloc(s->devs, nc * sizeof(*d));
		if (!d)
			return -ENOMEM;
		s->devs = d;
		s->cap = nc;
	}
	s->devs[s->n++] = e->dev;
	return 0;
}

static void check_unmounts(struct fan *f)
{
	struct devset set = { 0 };
	uint64_t gone[64];
	size_t n_gone = 0;

	if (mountinfo_foreach(collect_dev, &set) != 0) {
		free(set.devs);
		return; /* cannot tell: keep everything, try at the next change */
	}
	for (struct fan_fs *fs = f->fss; fs && n_gone < 64; fs = fs->next) {
		bool found = false;
		if (fs->dead)
			continue;
		for (size_t i = 0; i < set.n && !found; i++)
			found = set.devs[i] == fs->dev;
		if (!found)
			gone[n_gone++] = fs->dev;
	}
	free(set.devs);
	if (!n_gone)
		return;
	/* what was queued before the unmount still belongs to the subscribers */
	(void)drain(f, READS_PER_FLUSH, false);
	for (size_t i = 0; i < n_gone; i++) {
		struct fan_fs *fs = fs_by_dev(f, gone[i]);
		if (!fs)
			continue;
		fs_kill(f, fs);
		f->unmounts++;
		/* the core calls unwatch() for each watch from here */
		f->sink.unmount(f->sink.ctx, gone[i]);
	}
}

static void on_mountinfo(evutil_socket_t fd, short what, void *arg)
{
	struct fan *f = arg;
	struct epoll_event evs[4];

	(void)epoll_wait(f->epfd, evs, 4, 0); /* consume the readiness */
	check_unmounts(f);
}

/* --- source_ops ------------------------------------------------------------ */

/* Whether a mount showing @root of the filesystem sees more than @fs's
 * clone (its root is an ancestor of the clone's). */
static bool widens(const struct fan_fs *fs, const char *root)
{
	size_t n = strlen(root);

	if (!fs->prefix_len || strcmp(root, "/") == 0)
		return fs->prefix_len > 0;
	return n < fs->prefix_len && memcmp(fs->prefix, root, n) == 0 && fs->prefix[n] == '/';
}

static int reclone(struct fan_fs *fs, int dirfd, const char *root)
{
	char *prefix = strdup(strcmp(root, "/") == 0 ? "" : root);
	if (!prefix)
		return -ENOMEM;
	int fd = clone_mount_root(dirfd);
	if (fd < 0) {
		free(prefix);
		return fd;
	}
	close(fs->mntfd);
	fs->mntfd = fd;
	free(fs->prefix);
	fs->prefix = prefix;
	fs->prefix_len = strlen(prefix);
	return 0;
}

struct widest {
	uint64_t dev;
	struct mountinfo_entry *best;
	int fd;                 /* the best one's mount point, O_PATH (owned) */
};

static int widest_cb(const struct mountinfo_entry *e, void *userdata)
{
	struct widest *w = userdata;
	struct statx stx;

	if (e->dev != w->dev || (w->fd >= 0 && strlen(e->root) >= strlen(w->best->root)))
		return 0;
	int fd = open(e->point, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* the point must show this very mount, not one mounted over it */
	if (statx_mnt_id(fd, &stx) < 0 || stx.stx_mnt_id != e->mnt_id) {
		close(fd);
		return 0;
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = fd;
	*w->best = *e;
	return strcmp(e->root, "/") == 0; /* none wider */
}

/* The widest mount of filesystem @dev in the daemon's own namespace: its
 * entry in @ret and its mount point open O_PATH, or -errno (-ENOENT: the
 * filesystem is not mounted here, or only under other mounts). */
static int own_mount_of(uint64_t dev, struct mountinfo_entry *ret)
{
	struct widest w = { .dev = dev, .best = ret, .fd = -1 };
	int r = mountinfo_foreach(widest_cb, &w);

	if (r < 0) {
		if (w.fd >= 0)
			close(w.fd);
		return r;
	}
	return w.fd >= 0 ? w.fd : -ENOENT;
}

static int fan_watch(struct source *s, int dirfd, const char *path, uint32_t flags, char *const *excludes,
		     size_t n_excludes, struct source_watch **ret, struct source_watch_info *ret_info,
		     const char **ret_reason)
{
	struct fan *f = (struct fan *)s;
	struct stat st;
	struct statfs sfs;
	struct fan_fs *fs;
	bool created = false;
	int own_view = -1;
	int r;

	*ret_reason = NULL;
	(void)path;
	(void)flags;
	(void)excludes; /* a filesystem mark sees everything; the core filters */
	(void)n_excludes;
	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;

	struct mountinfo_entry *mi = malloc(sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	/* the mount the daemon resolves handles through: the descriptor's own
	 * where it is in the daemon's namespace, else (a container's or a
	 * sandboxed service's mount) the widest mount of the same filesystem
	 * that the daemon has */
	int viewfd = dirfd;
	r = mountinfo_of_fd(dirfd, mi);
	if (r == -ENOENT) {
		r = own_mount_of((uint64_t)st.st_dev, mi);
		if (r < 0) {
			if (r == -ENOENT)
				*ret_reason = "the directory's filesystem is not mounted in the daemon's "
					      "mount namespace";
			goto out;
		}
		own_view = r;
		viewfd = own_view;
	}
	if (r < 0)
		goto out;
	if (mountinfo_is_pseudo_fstype(mi->fstype)) {
		*ret_reason = "pseudo filesystems (proc, sysfs, devtmpfs, devpts ...) are never marked";
		r = -EXDEV;
		goto out;
	}
	const char *why = mountinfo_incomplete_reason(mi->fstype);
	if (why) {
		*ret_reason = why;
		r = -EOPNOTSUPP;
		goto out;
	}

	/* the root's own handle: proves the filesystem can report handles */
	struct fid_info root = { .present = true };
	struct file_handle *fh = (struct file_handle *)(void *)root.handle;
	int mnt_id;
	fh->handle_bytes = HANDLE_MAX;
	if (name_to_handle_at(dirfd, "", fh, &mnt_id, AT_EMPTY_PATH) < 0) {
		r = errno == EOVERFLOW ? -EOPNOTSUPP : -errno;
		if (r == -EOPNOTSUPP || r == -ENOTSUP)
			*ret_reason = "the filesystem cannot report file handles";
		else
			*ret_reason = "cannot get the directory's file handle";
		goto out;
	}
	root.key_len = sizeof(int) + fh->handle_bytes;

	fs = fs_by_dev(f, (uint64_t)st.st_dev);
	if (!fs) {
		if (fstatfs(dirfd, &sfs) < 0) {
			r = -errno;
			goto out;
		}
		fs = calloc(1, sizeof(*fs));
		if (!fs) {
			r = -ENOMEM;
			goto out;
		}
		created = true;
		fs->mntfd = -1;
		fs->dev = (uint64_t)st.st_dev;
		memcpy(fs->fsid, &sfs.f_fsid, sizeof(fs->fsid));
		snprintf(fs->fstype, sizeof(fs->fstype), "%s", mi->fstype);
		fs->point = strdup(mi->point);
		fs->prefix = strdup(strcmp(mi->root, "/") == 0 ? "" : mi->root);
		if (!fs->point || !fs->prefix) {
			r = -ENOMEM;
			goto fail;
		}
		fs->prefix_len = strlen(fs->prefix);
		if ((fs->fsid[0] == 0 && fs->fsid[1] == 0) || fs_by_fsid(f, fs->fsid)) {
			*ret_reason = "the filesystem has no unique fsid for fanotify to report";
			r = -EOPNOTSUPP;
			goto fail;
		}
		r = clone_mount_root(viewfd);
		if (r < 0) {
			*ret_reason = "cannot make a detached clone of the mount";
			goto fail;
		}
		fs->mntfd = r;
		uint64_t want = fan_mask(f);
		r = mark_fs(f, FAN_MARK_ADD, want, fs->mntfd);
		if (r < 0) {
			*ret_reason = r == -EXDEV ? "fanotify cannot mark this filesystem (EXDEV)" :
				      r == -ENODEV ? "fanotify cannot mark this filesystem (no fsid)" :
				      r == -EOPNOTSUPP ? "fanotify cannot mark this filesystem" :
							"fanotify_mark failed";
			goto fail;
		}
		fs->mask = want;
		fs->next = f->fss;
		f->fss = fs;
	}

	char rp[SPATH_MAX];
	bool deleted;
	r = resolve_dir(f, fs, &root, rp, sizeof(rp), &deleted);
	if (r == -EXDEV && !created && widens(fs, mi->root)) {
		/* this mount shows more of the filesystem than the clone we
		 * have: resolve through it from now on.  Paths are from the
		 * superblock's root either way, so nothing cached changes. */
		r = reclone(fs, viewfd, mi->root);
		if (r == 0)
			r = resolve_dir(f, fs, &root, rp, sizeof(rp), &deleted);
	}
	if (r == -EXDEV)
		*ret_reason = own_view >= 0 ? "the directory is outside the part of its filesystem "
					      "that the daemon's mount namespace shows" :
					      "the directory is outside the part of its filesystem that the "
					      "mount it is watched through shows";
	if (r < 0) {
		if (!*ret_reason)
			*ret_reason = "the directory cannot be named through its filesystem's handles";
		if (r == -EXDEV)
			r = -EOPNOTSUPP; /* the core may still serve it with inotify */
		if (created)
			fs_free(f, fs);
		goto out;
	}
	struct source_watch *w = calloc(1, sizeof(*w));
	char *rootcopy = strdup(rp);
	if (!w || !rootcopy) {
		free(w);
		free(rootcopy);
		if (created)
			fs_free(f, fs);
		r = -ENOMEM;
		goto out;
	}
	w->fs = fs;
	fs->watches++;
	*ret_info = (struct source_watch_info){ .dev = fs->dev, .root = rootcopy, .flags = 0 };
	*ret = w;
	r = 0;
	goto out;
fail:
	if (fs->mntfd >= 0)
		close(fs->mntfd);
	free(fs->point);
	free(fs->prefix);
	free(fs);
out:
	if (own_view >= 0)
		close(own_view);
	free(mi);
	return r;
}

static void fan_unwatch(struct source *s, struct source_watch *w)
{
	struct fan *f = (struct fan *)s;

	if (!w)
		return;
	struct fan_fs *fs = w->fs;
	free(w);
	if (--fs->watches == 0)
		fs_free(f, fs);
}

static void fan_set_interest(struct source *s, uint64_t type_mask)
{
	struct fan *f = (struct fan *)s;

	f->interest = type_mask;
	update_marks(f);
}

static int fan_flush(struct source *s)
{
	int r = drain((struct fan *)s, READS_PER_FLUSH, false);
	return r > 0 ? 0 : r;
}

static void fan_resume(struct source *s)
{
	struct fan *f = (struct fan *)s;
	struct timeval now = { 0, 0 };

	if (f->held)
		evtimer_add(f->nap, &now);
}

static void fan_status(struct source *s, json_t *obj)
{
	struct fan *f = (struct fan *)s;
	struct pathcache_stats cs;
	json_t *marks = json_array();
	char dev[32];

	for (struct fan_fs *fs = f->fss; fs; fs = fs->next) {
		snprintf(dev, sizeof(dev), "%u:%u", major(fs->dev), minor(fs->dev));
		json_array_append_new(marks, json_pack("{s:s,s:s,s:s,s:I,s:I,s:b}", "dev", dev,
						       "mount_point", fs->point, "fstype", fs->fstype,
						       "mask", (json_int_t)fs->mask, "watches",
						       (json_int_t)fs->watches, "unmounted", fs->dead));
	}
	json_object_set_new(obj, "marks", marks);
	pathcache_get_stats(f->cache, &cs);
	uint64_t looked = cs.hits + cs.misses;
	json_object_set_new(obj, "path_cache",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I}", "size",
				      (json_int_t)cs.max_entries, "entries", (json_int_t)cs.entries,
				      "hits", (json_int_t)cs.hits, "misses", (json_int_t)cs.misses,
				      "bytes", (json_int_t)cs.bytes, "hit_rate",
				      looked ? (double)cs.hits / (double)looked : 0.0, "evictions",
				      (json_int_t)cs.evictions, "invalidations",
				      (json_int_t)cs.invalidations));
	json_object_set_new(obj, "kernel_features",
			    json_pack("{s:b,s:b,s:b,s:b,s:I}", "rename", f->has_rename, "target_fid",
				      f->has_target_fid, "fs_error", f->has_fs_error,
				      "unlimited_queue", (f->init_flags & FAN_UNLIMITED_QUEUE) != 0,
				      "queue_limit", (json_int_t)f->queue_limit));
	json_object_set_new(obj, "events_read", json_integer((json_int_t)f->events_read));
	json_object_set_new(obj, "reads", json_integer((json_int_t)f->reads));
	json_object_set_new(obj, "naps", json_integer((json_int_t)f->naps));
	json_object_set_new(obj, "holds", json_integer((json_int_t)f->holds));
	json_object_set_new(obj, "records", json_integer((json_int_t)f->records));
	json_object_set_new(obj, "overflows", json_integer((json_int_t)f->overflows));
	json_object_set_new(obj, "unmounts", json_integer((json_int_t)f->unmounts));
	json_object_set_new(obj, "unresolved", json_integer((json_int_t)f->unresolved));
	json_object_set_new(obj, "skipped", json_integer((json_int_t)f->skipped));
	if (!f->has_rename)
		json_object_set_new(obj, "renames",
				    json_pack("{s:I,s:I}", "paired", (json_int_t)f->renames_paired,
					      "unpaired", (json_int_t)f->renames_unpaired));
}

static int fan_open_handle(struct source *s, uint64_t dev, int32_t type, const unsigned char *handle,
			   size_t len)
{
	struct fan *f = (struct fan *)s;
	struct fan_fs *fs = fs_by_dev(f, dev);
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + HANDLE_MAX];
	} u;

	if (!fs || fs->mntfd < 0)
		return -ENOENT;
	if (len == 0 || len > HANDLE_MAX)
		return -EINVAL;
	u.fh.handle_bytes = (unsigned int)len;
	u.fh.handle_type = type;
	memcpy(u.fh.f_handle, handle, len);
	int fd = open_by_handle_at(fs->mntfd, &u.fh, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static uint64_t fan_features(struct source *s)
{
	struct fan *f = (struct fan *)s;

	return FSNOTE_FEATURE_FANOTIFY | FSNOTE_FEATURE_FLUSH |
	       (f->has_rename ? FSNOTE_FEATURE_RENAME : 0) |
	       (f->has_fs_error ? FSNOTE_FEATURE_FS_ERROR : 0);
}

static void fan_free(struct source *s)
{
	struct fan *f = (struct fan *)s;

	while (f->fss)
		fs_free(f, f->fss);
	dirfds_drop(f, 0);
	if (f->nap)
		event_free(f->nap);
	if (f->ev)
		event_free(f->ev);
	if (f->mev)
		event_free(f->mev);
	if (f->fd >= 0)
		close(f->fd);
	if (f->epfd >= 0)
		close(f->epfd);
	if (f->mifd >= 0)
		close(f->mifd);
	pathcache_free(f->cache);
	free(f->buf);
	free(f);
}

static const struct source_ops fan_ops = {
	.name = "fanotify",
	.watch = fan_watch,
	.unwatch = fan_unwatch,
	.set_interest = fan_set_interest,
	.flush = fan_flush,
	.resume = fan_resume,
	.status = fan_status,
	.features = fan_features,
	.open_handle = fan_open_handle,
	.free = fan_free,
};

/* Whether the kernel knows @mask bits for @flags marks: it checks the mask
 * before it looks at the (here invalid) descriptor. */
static bool probe_mark(int fd, unsigned flags, uint64_t mask)
{
	return fanotify_mark(fd, FAN_MARK_ADD | flags, mask, -1, NULL) < 0 && errno == EBADF;
}

int source_fanotify_new(struct event_base *base, const struct source_sink *sink,
			size_t path_cache_entries, struct source **ret)
{
	static const unsigned tries[] = {
		FAN_REPORT_DFID_NAME | FAN_REPORT_FID | FAN_REPORT_TARGET_FID,
		FAN_REPORT_DFID_NAME,
	};
	struct fan *f = calloc(1, sizeof(*f));
	int r = -ENOSYS;

	if (!f)
		return -ENOMEM;
	f->base.ops = &fan_ops;
	f->base.want_stat = true;
	f->evb = base;
	for (size_t i = 0; i < DIRFD_SLOTS; i++)
		f->dirfds[i].fd = -1;
	f->sink = *sink;
	f->self_pid = getpid();
	f->fd = f->epfd = f->mifd = -1;
	f->interest = FSNOTE_EV_DEFAULT_MASK;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		unsigned fl = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE | tries[i];
		f->fd = fanotify_init(fl, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
		if (f->fd >= 0) {
			f->init_flags = fl;
			break;
		}
		r = -errno;
		if (r == -EPERM || r == -ENOSYS)
			break;
		r = -ENOSYS; /* EINVAL: no FIDs with names in this kernel */
	}
	if (f->fd < 0)
		goto fail;
	f->has_target_fid = (f->init_flags & FAN_REPORT_TARGET_FID) != 0;
	f->has_rename = getenv("FSNOTED_FANOTIFY_NO_RENAME") == NULL && /* test knob */
			probe_mark(f->fd, 0, FAN_RENAME);
	f->has_fs_error = probe_mark(f->fd, FAN_MARK_FILESYSTEM, FAN_FS_ERROR);
	f->queue_limit = -1;
	FILE *q = fopen("/proc/sys/fs/fanotify/max_queued_events", "re");
	if (q) {
		if (fscanf(q, "%ld", &f->queue_limit) != 1)
			f->queue_limit = -1;
		fclose(q);
	}

	r = pathcache_new(path_cache_entries ? path_cache_entries : PATHCACHE_DEFAULT_ENTRIES, &f->cache);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	f->buf = malloc(READ_BUF_SIZE);
	if (!f->buf)
		goto fail;
	/* resident from the start: the daemon's fixed memory shows before any
	 * burst (see pool.c's touch_pages()) */
	memset(f->buf, 0xff, READ_BUF_SIZE);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, on_readable, f);
	if (!f->ev || event_add(f->ev, NULL) < 0)
		goto fail;
	f->nap = evtimer_new(base, on_nap_end, f);
	if (!f->nap)
		goto fail;
	/* the queue is unlimited, so nothing is lost by letting clients have
	 * their turn between reads: the events (the default priority) */

	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	f->mifd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (f->epfd < 0 || f->mifd < 0) {
		r = -errno;
		goto fail;
	}
	struct epoll_event ee = { .events = EPOLLPRI | EPOLLERR, .data.fd = f->mifd };
	if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->mifd, &ee) < 0) {
		r = -errno;
		goto fail;
	}
	r = -ENOMEM;
	f->mev = event_new(base, f->epfd, EV_READ | EV_PERSIST, on_mountinfo, f);
	if (!f->mev || event_add(f->mev, NULL) < 0)
		goto fail;
	*ret = &f->base;
	return 0;
fail:
	fan_free(&f->base);
	return r;
}
