/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access.c - per-event permission checks, made by the kernel (see access.h).
 *
 * Invariant: outside judge() the thread always runs with the daemon's own
 * fsuid, fsgid and groups; every path out of the credential switch restores
 * them.  The daemon is single-threaded; the raw system calls
 * are used anyway because glibc's wrappers would change every thread.
 */
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsnote-protocol.h"

/* One cached verdict.  The key is (credential set, root, directory
 * identity, whether the event was about the directory itself); @key holds
 * the identity bytes (handle, else inode), owned. */
struct cache_slot {
	uint64_t hash;
	uint64_t gen;
	uint32_t cred_id, root_id;
	uint8_t verdict;
	bool self;
	int32_t htype;
	uint16_t key_len;
	unsigned char *key;
};

#define PID_SLOTS 64

struct pid_slot {
	uint32_t pid;
	uint32_t uid;
	uint64_t expires_ns;
};

struct access {
	struct cache_slot *slots;
	size_t nslots;
	uint64_t gen;
	uint32_t next_cred_id, next_root_id;
	struct access_cred *creds;
	gid_t *own_groups;
	int own_ngroups;
	uid_t own_fsuid;
	gid_t own_fsgid;
	uint64_t hits, misses, denied, unverifiable;
	struct pid_slot pids[PID_SLOTS];
};

int access_new(size_t cache_entries, struct access **ret)
{
	struct access *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (cache_entries < 16)
		cache_entries = 16;
	a->nslots = cache_entries;
	a->slots = calloc(a->nslots, sizeof(*a->slots));
	a->gen = 1;
	a->next_cred_id = 1;
	a->next_root_id = 1;
	a->own_fsuid = geteuid();
	a->own_fsgid = getegid();
	int n = getgroups(0, NULL);
	if (n > 0) {
		a->own_groups = calloc((size_t)n, sizeof(gid_t));
		if (a->own_groups)
			n = getgroups(n, a->own_groups);
	}
	if (!a->slots || (n > 0 && !a->own_groups) || n < 0) {
		access_free(a);
		return -ENOMEM;
	}
	a->own_ngroups = n;
	*ret = a;
	return 0;
}

struct access *access_free(struct access *a)
{
	if (!a)
		return NULL;
	for (size_t i = 0; i < a->nslots; i++)
		free(a->slots[i].key);
	free(a->slots);
	while (a->creds) {
		struct access_cred *c = a->creds;
		a->creds = c->next;
		free(c->groups);
		free(c);
	}
	free(a->own_groups);
	free(a);
	return NULL;
}

static int cmp_gid(const void *x, const void *y)
{
	gid_t a = *(const gid_t *)x, b = *(const gid_t *)y;
	return a < b ? -1 : a > b;
}

int access_cred_get(struct access *a, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		    struct access_cred **ret)
{
	if (ngroups > ACCESS_GROUPS_MAX)
		return -E2BIG;
	gid_t *sorted = calloc(ngroups ? ngroups : 1, sizeof(gid_t));
	if (!sorted)
		return -ENOMEM;
	if (ngroups)
		memcpy(sorted, groups, ngroups * sizeof(gid_t));
	qsort(sorted, ngroups, sizeof(gid_t), cmp_gid);

	for (struct access_cred *c = a->creds; c; c = c->next) {
		if (c->uid == uid && c->gid == gid && c->ngroups == ngroups &&
		    (ngroups == 0 || memcmp(c->groups, sorted, ngroups * sizeof(gid_t)) == 0)) {
			free(sorted);
			c->refs++;
			*ret = c;
			return 0;
		}
	}
	struct access_cred *c = calloc(1, sizeof(*c));
	if (!c) {
		free(sorted);
		return -ENOMEM;
	}
	c->refs = 1;
	c->id = a->next_cred_id++;
	c->uid = uid;
	c->gid = gid;
	c->ngroups = ngroups;
	c->groups = sorted;
	c->next = a->creds;
	a->creds = c;
	*ret = c;
	return 0;
}

void access_cred_put(struct access *a, struct access_cred *c)
{
	if (!c || --c->refs > 0)
		return;
	for (struct access_cred **pp = &a->creds; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c->groups);
	free(c);
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

int access_root_new(struct access *a, int dirfd, const char *path, access_root_opener open,
		    void *ctx, struct access_root **ret)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return -errno;
	if (!open && !path)
		return -EINVAL;
	struct access_root *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->open = open;
	r->open_ctx = ctx;
	r->path = path ? strdup(path) : NULL;
	if (path && !r->path) {
		free(r);
		return -ENOMEM;
	}
	r->id = a->next_root_id++;
	if (a->next_root_id == 0)
		a->next_root_id = 1;
	r->dev = (uint64_t)st.st_dev;
	r->ino = (uint64_t)st.st_ino;
	union {
		struct file_handle fh;
		unsigned char buf[sizeof(struct file_handle) + POOL_HANDLE_MAX];
	} u = { .fh.handle_bytes = POOL_HANDLE_MAX };
	int mnt;
	if (name_to_handle_at(dirfd, "", &u.fh, &mnt, AT_EMPTY_PATH) == 0 &&
	    u.fh.handle_bytes <= POOL_HANDLE_MAX) {
		r->htype = u.fh.handle_type;
		r->hlen = (uint8_t)u.fh.handle_bytes;
		memcpy(r->handle, u.fh.f_handle, r->hlen);
	}
	*ret = r;
	return 0;
}

struct access_root *access_root_free(struct access_root *r)
{
	if (r) {
		free(r->path);
		free(r);
	}
	return NULL;
}

/* Takes the subscriber's credentials.  Returns 0 or -errno; on error the
 * daemon's own credentials are back in place. */
static int become(struct access *a, const struct access_cred *c)
{
	if (syscall(SYS_setgroups, c->ngroups, c->groups) < 0)
		return -errno;
	syscall(SYS_setfsgid, c->gid);
	syscall(SYS_setfsuid, c->uid);
	/* setfsuid() reports the old value only; check the new one took */
	if ((uid_t)syscall(SYS_setfsuid, -1) != c->uid || (gid_t)syscall(SYS_setfsgid, -1) != c->gid) {
		syscall(SYS_setfsuid, a->own_fsuid);
		syscall(SYS_setfsgid, a->own_fsgid);
		syscall(SYS_setgroups, a->own_ngroups, a->own_groups);
		return -EPERM;
	}
	return 0;
}

static void unbecome(struct access *a)
{
	syscall(SYS_setfsuid, a->own_fsuid);
	syscall(SYS_setfsgid, a->own_fsgid);
	if (syscall(SYS_setgroups, a->own_ngroups, a->own_groups) < 0)
		abort(); /* cannot happen for a process that could drop them */
}

/* Opens @rel (no leading '/', "" for @rootfd itself is not asked for)
 * below @rootfd as a directory without following a symlink or crossing a
 * mount: openat2() where the kernel and the seccomp profile allow it, else
 * one component at a time (a container's filter may refuse openat2).
 * Lookups run with the caller's current credentials.  Returns the fd or -1. */
static int open_beneath(int rootfd, const char *rel)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
			   RESOLVE_NO_XDEV,
	};
	int fd = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;

	struct stat root_st, st;
	char comp[NAME_MAX + 1];
	if (fstat(rootfd, &root_st) < 0)
		return -1;
	int cur = rootfd;
	const char *p = rel;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		bool bad = n == 0 || n > NAME_MAX || (n == 1 && p[0] == '.') ||
			   (n == 2 && p[0] == '.' && p[1] == '.');
		int next = -1;
		if (!bad) {
			memcpy(comp, p, n);
			comp[n] = '\0';
			next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (cur != rootfd)
			close(cur);
		if (next < 0)
			return -1;
		if (fstat(next, &st) < 0 || st.st_dev != root_st.st_dev) {
			close(next);
			return -1;
		}
		cur = next;
		p += n;
		while (*p == '/')
			p++;
	}
	return cur == rootfd ? -1 : cur;
}

/* Is the object open at @fd the one the kernel named?  By handle when
 * both sides have one, else by inode (the source's watch pins it). */
static bool same_object(int fd, int32_t htype, const unsigned char *handle, size_t hlen,
			uint64_t ino)
{
	if (hlen) {
		union {
			struct file_handle fh;
			unsigned char buf[sizeof(struct file_handle) + POOL_HANDLE_MAX];
		} u = { .fh.handle_bytes = POOL_HANDLE_MAX };
		int mnt;
		if (name_to_handle_at(fd, "", &u.fh, &mnt, AT_EMPTY_PATH) < 0)
			return false;
		return u.fh.handle_type == htype && u.fh.handle_bytes == hlen &&
		       memcmp(u.fh.f_handle, handle, hlen) == 0;
	}
	struct stat st;
	return ino != 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino;
}

/* The root, opened with the daemon's credentials (by its handle through
 * the source's view of the filesystem, or by its path), if it is still the
 * object the subscriber opened; else -1. */
static int open_root(const struct access_root *root)
{
	struct stat st;
	int fd = root->open ? root->open(root->open_ctx, root) :
			      open(root->path, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -1;
	bool ok = fstat(fd, &st) == 0 && (uint64_t)st.st_dev == root->dev &&
		  (uint64_t)st.st_ino == root->ino &&
		  (!root->hlen || same_object(fd, root->htype, root->handle, root->hlen, 0));
	if (!ok) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copies @rel (no leading '/') into @buf as a C string; false if too long. */
static bool rel_copy(const char *rel, size_t len, char *buf, size_t cap)
{
	while (len > 0 && rel[0] == '/') {
		rel++;
		len--;
	}
	if (len + 1 > cap || memchr(rel, '\0', len))
		return false;
	memcpy(buf, rel, len);
	buf[len] = '\0';
	return true;
}

/* Walks to @rel below the root as the subscriber and judges what it finds.
 * @dir NULL: no identity to compare (access_judge_path). */
static int judge(struct access *a, const struct access_cred *c, const struct access_root *root,
		 const struct pool_dirid *dir, const char *rel, size_t rel_len)
{
	char buf[FSNOTE_PATH_MAX];
	bool self = dir && dir->self;

	if (!rel_copy(rel, rel_len, buf, sizeof(buf)))
		return ACCESS_DENIED;
	if (self && buf[0] == '\0')
		return ACCESS_ALLOWED; /* the root itself: the subscriber opened it */

	/* for an event about a directory itself, the name lives in its parent */
	const char *last = NULL;
	if (self) {
		char *slash = strrchr(buf, '/');
		if (slash) {
			*slash = '\0';
			last = slash + 1;
		} else {
			last = buf;
		}
		if (*last == '\0' || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
			return ACCESS_DENIED;
	}
	const char *parent = last == buf ? "" : buf;

	int rootfd = open_root(root);
	if (rootfd < 0)
		return ACCESS_UNVERIFIABLE; /* the root is gone or was replaced */
	if (become(a, c) < 0) {
		close(rootfd);
		return ACCESS_DENIED;
	}
	int verdict = ACCESS_DENIED;
	int dfd = parent[0] ? open_beneath(rootfd, parent) : rootfd;
	int err = dfd < 0 ? errno : 0;
	int ofd = -1;
	if (dfd >= 0 && last) {
		ofd = openat(dfd, last, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = ofd < 0 ? errno : 0;
	}
	if (dfd >= 0 && (!last || ofd >= 0)) {
		int obj = last ? ofd : dfd;
		bool same = !dir || same_object(obj, dir->type, dir->bytes, dir->bytes ? dir->len : 0,
						dir->ino);
		if (!same)
			verdict = ACCESS_UNVERIFIABLE;
		else if (syscall(SYS_faccessat2, dfd, "", R_OK | X_OK, AT_EACCESS | AT_EMPTY_PATH) == 0)
			verdict = ACCESS_ALLOWED;
	} else if (err != EACCES && err != EPERM) {
		/* nothing there, or something else: the path no longer leads
		 * to what the kernel named */
		verdict = dir ? ACCESS_UNVERIFIABLE : ACCESS_DENIED;
	}
	unbecome(a);
	if (ofd >= 0)
		close(ofd);
	if (dfd >= 0 && dfd != rootfd)
		close(dfd);
	close(rootfd);
	return verdict;
}

int access_judge(struct access *a, const struct access_cred *c, const struct access_root *root,
		 const struct pool_dirid *dir, const char *rel, size_t rel_len)
{
	uint8_t ino_key[sizeof(uint64_t)];
	const unsigned char *key = dir->bytes;
	size_t key_len = dir->bytes ? dir->len : 0;

	if (key_len == 0) {
		if (dir->ino == 0)
			return ACCESS_UNVERIFIABLE; /* nothing names the directory */
		memcpy(ino_key, &dir->ino, sizeof(ino_key));
		key = ino_key;
		key_len = sizeof(ino_key);
	}
	int32_t htype = dir->bytes && dir->len ? dir->type : -1;
	uint64_t h = 1469598103934665603ull;
	h = hash_bytes(h, &c->id, sizeof(c->id));
	h = hash_bytes(h, &root->id, sizeof(root->id));
	h = hash_bytes(h, &htype, sizeof(htype));
	h = hash_bytes(h, &dir->self, sizeof(dir->self));
	h = hash_bytes(h, key, key_len);
	struct cache_slot *s = &a->slots[h % a->nslots];

	if (s->key && s->gen == a->gen && s->hash == h && s->cred_id == c->id &&
	    s->root_id == root->id && s->self == dir->self && s->htype == htype &&
	    s->key_len == key_len && memcmp(s->key, key, key_len) == 0) {
		a->hits++;
		return s->verdict;
	}
	a->misses++;
	int verdict = judge(a, c, root, dir, rel, rel_len);
	if (verdict == ACCESS_DENIED)
		a->denied++;
	if (verdict == ACCESS_UNVERIFIABLE)
		a->unverifiable++;
	/* an unverifiable verdict is cached too: until a directory changes
	 * (which makes every verdict stale) the object is where the stream
	 * puts it, and the walk would fail the same way again */
	unsigned char *copy = malloc(key_len);
	if (copy) {
		memcpy(copy, key, key_len);
		free(s->key);
		*s = (struct cache_slot){ .hash = h, .gen = a->gen, .cred_id = c->id,
					  .root_id = root->id, .verdict = (uint8_t)verdict,
					  .self = dir->self, .htype = htype,
					  .key_len = (uint16_t)key_len, .key = copy };
	}
	return verdict;
}

int access_judge_path(struct access *a, const struct access_cred *c, const struct access_root *root,
		      const char *rel, size_t rel_len)
{
	a->misses++;
	return judge(a, c, root, NULL, rel, rel_len);
}

void access_invalidate(struct access *a)
{
	a->gen++;
}

/* PIDFD_GET_INFO (Linux 6.13): a process's credentials through a pidfd,
 * which works where /proc hides other users' processes (ProtectProc=
 * invisible).  The struct is the kernel's first version of it; the ioctl
 * number carries its size. */
struct pidfd_creds {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define PIDFD_GET_INFO_CREDS _IOWR(0xFF, 11, struct pidfd_creds)
#define PIDFD_INFO_CREDS_BIT (UINT64_C(1) << 1)

static uint32_t uid_by_pidfd(uint32_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0)
		return UINT32_MAX;
	struct pidfd_creds c = { .mask = PIDFD_INFO_CREDS_BIT };
	bool ok = ioctl(fd, PIDFD_GET_INFO_CREDS, &c) == 0 && (c.mask & PIDFD_INFO_CREDS_BIT);
	close(fd);
	return ok ? c.euid : UINT32_MAX;
}

static uint32_t uid_by_proc(uint32_t pid)
{
	char path[64], line[256];
	uint32_t uid = UINT32_MAX;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned r, e;
			if (sscanf(line, "Uid: %u %u", &r, &e) == 2) {
				uid = e;
				break;
			}
		}
		fclose(f);
	}
	return uid;
}

uint32_t access_pid_uid(struct access *a, uint32_t pid, uint64_t now_ns)
{
	struct pid_slot *s = &a->pids[pid % PID_SLOTS];

	if (pid == 0)
		return UINT32_MAX;
	if (s->pid == pid && s->expires_ns > now_ns)
		return s->uid;
	/* the pidfd first (it needs no /proc), /proc on older kernels */
	uint32_t uid = uid_by_pidfd(pid);
	if (uid == UINT32_MAX)
		uid = uid_by_proc(pid);
	/* a pid can be reused: keep the answer for a short time only */
	*s = (struct pid_slot){ .pid = pid, .uid = uid, .expires_ns = now_ns + 1000000000ull };
	return uid;
}

void access_status(const struct access *a, json_t *obj)
{
	uint64_t total = a->hits + a->misses;
	json_object_set_new(obj, "access_cache",
			    json_pack("{s:I,s:I,s:I,s:I,s:I,s:f}", "entries", (json_int_t)a->nslots,
				      "hits", (json_int_t)a->hits, "misses", (json_int_t)a->misses,
				      "denied", (json_int_t)a->denied, "unverifiable",
				      (json_int_t)a->unverifiable, "hit_rate",
				      total ? (double)a->hits / (double)total : 0.0));
}
