/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mountinfo.h - what the daemon needs to know about mounts: which
 * filesystem types are pseudo filesystems that must never be marked, and
 * which mount a directory lives on (its type, mount point, the part of the
 * filesystem it shows, and its superblock options).
 *
 * Everything is read from /proc/self/mountinfo on demand; nothing is
 * cached, so the answers are as fresh as the kernel's table.  Every field is
 * bounded: an entry whose strings do not fit is skipped, never truncated.
 */
#ifndef FSNOTED_MOUNTINFO_H
#define FSNOTED_MOUNTINFO_H

#include <stdbool.h>
#include <stdint.h>

#define MOUNTINFO_STR_MAX 4096

struct mountinfo_entry {
	uint64_t mnt_id;                 /* the mount's ID (mountinfo field 1) */
	uint64_t parent_id;
	uint64_t dev;                    /* st_dev of the filesystem */
	char root[MOUNTINFO_STR_MAX];    /* the directory of the filesystem the mount shows */
	char point[MOUNTINFO_STR_MAX];   /* where it is mounted, absolute */
	char fstype[64];                 /* "ext4", "tmpfs", "fuse.sshfs" ... */
	char source[256];
	char super_opts[512];
};

/* proc, sysfs, devtmpfs, devpts, cgroup, debugfs and the like: the kernel's
 * own views, never real files (and, for devpts, a timing side channel). */
bool mountinfo_is_pseudo_fstype(const char *fstype);

/* Network, FUSE and stacking filesystems: fanotify filesystem marks and
 * inotify see only the changes made through this host's VFS, if any.
 * Returns a static reason, or NULL for an ordinary local filesystem. */
const char *mountinfo_incomplete_reason(const char *fstype);

/* Finds the mount that @fd (any descriptor on it) lives on, by the mount
 * ID statx() reports.  Returns 0 and fills @ret, -ENOENT when no entry
 * matches, or -errno.  @ret is written only on success. */
int mountinfo_of_fd(int fd, struct mountinfo_entry *ret);

/* Calls @fn for every mount in the namespace, stopping when it returns
 * non-zero (which is then returned).  Returns 0 or -errno. */
int mountinfo_foreach(int (*fn)(const struct mountinfo_entry *e, void *userdata), void *userdata);

#endif
