/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * access.h - may this subscriber see a name in that directory?
 *
 * The kernel decides, not us: the daemon's thread briefly takes the
 * subscriber's fsuid, fsgid and supplementary groups (raw per-thread system
 * calls), walks from the subscription root to the directory without
 * following symlinks and asks for search permission on the directory itself,
 * then takes its own credentials back.  Mode bits, ACLs and LSMs all count
 * exactly as they would for the subscriber.  Verdicts are cached per
 * (directory, credential set) in a bounded table; a change to any
 * directory's attributes, name or existence makes every cached verdict stale
 * (a generation bump), which is coarse but never wrong.  Any error denies.
 */
#ifndef FSNOTED_ACCESS_H
#define FSNOTED_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

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

/* May @c search every directory from @root (absolute, whose (dev, ino) must
 * still be @root_dev/@root_ino) down to and including @dir (absolute, equal
 * to @root or below it)?  Returns true only on a positive answer. */
bool access_may_see(struct access *a, const struct access_cred *c, const char *root,
		    uint64_t root_dev, uint64_t root_ino, const char *dir, size_t dir_len);
/* Every cached verdict is stale (a directory changed). */
void access_invalidate(struct access *a);
/* The uid a process runs as (effective), via a small short-lived cache.
 * Returns UINT32_MAX when unknown. */
uint32_t access_pid_uid(struct access *a, uint32_t pid, uint64_t now_ns);
void access_status(const struct access *a, json_t *obj);

#endif
