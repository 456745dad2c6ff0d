/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access.h - may this subscriber learn a name in that directory?
 *
 * The rule: an unprivileged subscriber learns the name (and attributes) of
 * an entry only if, for the directory object the kernel reported the event
 * in, it has read and search permission on that directory and search
 * permission on every directory from its subscription root down to it.
 *
 * The directory is the object the kernel named (struct pool_dirid: its file
 * handle, or its inode while a watch pins it), never a path string: a path
 * can be deleted and recreated by another user between the event and the
 * check.  So the checker walks from the root to where the event placed the
 * directory, with the subscriber's own fsuid, fsgid and groups (raw
 * per-thread system calls, so mode bits, ACLs and LSMs count exactly as for
 * the subscriber), and then compares what the walk reached with the
 * kernel's identity.  Only when they are the same object does it ask the
 * kernel for read and search permission on it.  When they differ, or the
 * walk finds nothing, the verdict is ACCESS_UNVERIFIABLE: the caller must
 * withhold the name and tell the subscriber to rescan.
 *
 * Verdicts are cached per (credential set, subscription root, directory
 * identity) in a bounded table; any change to a directory's attributes,
 * name or existence makes every cached verdict stale (a generation bump,
 * made in event-stream order, so a verdict reached while a directory
 * existed still answers for the events that came before its deletion).
 * Any error denies.
 */
#ifndef FSNOTED_ACCESS_H
#define FSNOTED_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "pool.h"

#define ACCESS_GROUPS_MAX 65536

/* A subscriber's credentials, taken from the socket at accept time. */
struct access_cred {
	uint32_t refs;
	uint32_t id;            /* unique among live credential sets */
	uid_t uid;
	gid_t gid;
	size_t ngroups;
	gid_t *groups;
	struct access_cred *next; /* interning list */
};

struct access;

int access_new(size_t cache_entries, struct access **ret);
struct access *access_free(struct access *a);

/* Returns a shared, refcounted credential set equal to (uid, gid, groups). */
int access_cred_get(struct access *a, uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
		    struct access_cred **ret);
void access_cred_put(struct access *a, struct access_cred *c);

struct access_root;

/* Opens a root by its identity (an O_PATH descriptor), or returns -errno:
 * how a source that knows the filesystem by its handles reaches a
 * directory the daemon has no path for (a client in another mount
 * namespace). */
typedef int (*access_root_opener)(void *ctx, const struct access_root *r);

/* A subscription root as the checker reaches it: through @open where the
 * source gave one, else by @path with the daemon's own credentials (the
 * subscriber proved it could open the root when it subscribed); what it
 * finds counts only if it is still the same object (file handle, else
 * device and inode). */
struct access_root {
	uint32_t id;            /* unique among live roots: part of the verdict key */
	uint64_t dev, ino;
	int32_t htype;
	uint8_t hlen;           /* 0: the filesystem makes no handles */
	unsigned char handle[POOL_HANDLE_MAX];
	char *path;             /* owned; NULL when the daemon has no path for it */
	access_root_opener open;
	void *open_ctx;
};

/* Takes the identity of the directory open at @dirfd, reached by the
 * daemon through @open (with @ctx) if not NULL, else as @path.  Returns 0
 * or -errno. */
int access_root_new(struct access *a, int dirfd, const char *path, access_root_opener open,
		    void *ctx, struct access_root **ret);
struct access_root *access_root_free(struct access_root *r);

enum access_verdict {
	ACCESS_DENIED = 0,
	ACCESS_ALLOWED = 1,
	ACCESS_UNVERIFIABLE = 2,  /* the directory cannot be found where the event put it */
};

/* May @c learn a name in directory @dir (the kernel's identity for it, on
 * the root's filesystem), which the event placed at @rel below @root
 * (@rel_len bytes, no leading '/', empty for the root itself)?  For an
 * event about the directory itself (@dir->self) @rel is that directory,
 * and its name lives in its parent.  Returns an enum access_verdict. */
int access_judge(struct access *a, const struct access_cred *c, const struct access_root *root,
		 const struct pool_dirid *dir, const char *rel, size_t rel_len);
/* The same without an identity to compare: the directory at @rel as it is
 * now.  Only for what has no kernel identity (synthetic events, the scope
 * of a rescan). */
int access_judge_path(struct access *a, const struct access_cred *c, const struct access_root *root,
		      const char *rel, size_t rel_len);
/* Every cached verdict is stale (a directory changed). */
void access_invalidate(struct access *a);
/* The uid a process runs as (effective), via a small short-lived cache.
 * Returns UINT32_MAX when unknown. */
uint32_t access_pid_uid(struct access *a, uint32_t pid, uint64_t now_ns);
void access_status(const struct access *a, json_t *obj);

#endif
