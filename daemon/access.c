/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access.c - per-event permission checks, made by the kernel (see access.h).
 *
 * Invariant: outside access_may_see() the thread always runs with the
 * daemon's own fsuid, fsgid and groups; every path out of the credential
 * switch restores them.  The daemon is single-threaded; the raw system calls
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
#include <sys/syscall.h>
#include <unistd.h>

#include "fsnote-protocol.h"

struct cache_slot {
	uint64_t hash;
	uint64_t gen;
	uint32_t cred_id;
	bool allowed;
	char *dir;              /* owned */
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
	uint32_t next_cred_id;
	struct access_cred *creds;
	gid_t *own_groups;
	int own_ngroups;
	uid_t own_fsuid;
	gid_t own_fsgid;
	uint64_t hits, misses, denied, errors;
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
		free(a->slots[i].dir);
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

static uint64_t hash_dir(const char *s, size_t len, uint32_t cred_id)
{
	uint64_t h = 1469598103934665603ull ^ cred_id;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h;
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

/* The kernel's verdict; false on any error. */
static bool ask_kernel(struct access *a, const struct access_cred *c, const char *root,
		       uint64_t root_dev, uint64_t root_ino, const char *dir, size_t dir_len)
{
	size_t root_len = strlen(root);
	char rel[FSNOTE_PATH_MAX];
	struct stat st;
	bool ok = false;

	/* @dir is @root or below it: the relative part is what follows */
	if (dir_len < root_len || memcmp(dir, root, root_len) != 0)
		return false;
	const char *tail = dir + root_len;
	size_t tail_len = dir_len - root_len;
	if (root_len > 1) {
		if (tail_len > 0 && tail[0] != '/')
			return false;
	}
	while (tail_len > 0 && tail[0] == '/') {
		tail++;
		tail_len--;
	}
	if (tail_len + 1 > sizeof(rel))
		return false;
	memcpy(rel, tail, tail_len);
	rel[tail_len] = '\0';

	/* The root is opened with the daemon's credentials (the subscriber
	 * proved it could open it when it subscribed) and must still be the
	 * directory it subscribed to. */
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (rootfd < 0)
		return false;
	if (fstat(rootfd, &st) < 0 || (uint64_t)st.st_dev != root_dev || (uint64_t)st.st_ino != root_ino) {
		close(rootfd);
		return false;
	}
	if (become(a, c) < 0) {
		close(rootfd);
		return false;
	}
	int dirfd = rootfd;
	if (tail_len > 0)
		dirfd = open_beneath(rootfd, rel);
	if (dirfd >= 0)
		ok = syscall(SYS_faccessat2, dirfd, "", X_OK, AT_EACCESS | AT_EMPTY_PATH) == 0;
	unbecome(a);
	if (dirfd >= 0 && dirfd != rootfd)
		close(dirfd);
	close(rootfd);
	return ok;
}

bool access_may_see(struct access *a, const struct access_cred *c, const char *root,
		    uint64_t root_dev, uint64_t root_ino, const char *dir, size_t dir_len)
{
	uint64_t h = hash_dir(dir, dir_len, c->id);
	struct cache_slot *s = &a->slots[h % a->nslots];

	if (s->dir && s->gen == a->gen && s->hash == h && s->cred_id == c->id &&
	    strlen(s->dir) == dir_len && memcmp(s->dir, dir, dir_len) == 0) {
		a->hits++;
		return s->allowed;
	}
	a->misses++;
	bool allowed = ask_kernel(a, c, root, root_dev, root_ino, dir, dir_len);
	if (!allowed)
		a->denied++;
	char *copy = strndup(dir, dir_len);
	if (copy) {
		free(s->dir);
		*s = (struct cache_slot){ .hash = h, .gen = a->gen, .cred_id = c->id,
					  .allowed = allowed, .dir = copy };
	}
	return allowed;
}

void access_invalidate(struct access *a)
{
	a->gen++;
}

uint32_t access_pid_uid(struct access *a, uint32_t pid, uint64_t now_ns)
{
	struct pid_slot *s = &a->pids[pid % PID_SLOTS];
	char path[64], line[256];
	uint32_t uid = UINT32_MAX;

	if (pid == 0)
		return UINT32_MAX;
	if (s->pid == pid && s->expires_ns > now_ns)
		return s->uid;
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
	/* a pid can be reused: keep the answer for a short time only */
	*s = (struct pid_slot){ .pid = pid, .uid = uid, .expires_ns = now_ns + 1000000000ull };
	return uid;
}

void access_status(const struct access *a, json_t *obj)
{
	uint64_t total = a->hits + a->misses;
	json_object_set_new(obj, "access_cache",
			    json_pack("{s:I,s:I,s:I,s:I,s:f}", "entries", (json_int_t)a->nslots,
				      "hits", (json_int_t)a->hits, "misses", (json_int_t)a->misses,
				      "denied", (json_int_t)a->denied, "hit_rate",
				      total ? (double)a->hits / (double)total : 0.0));
}
