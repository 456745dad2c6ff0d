/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mountinfo.c - reading /proc/self/mountinfo (see mountinfo.h).
 *
 * A mountinfo line is "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] -
 * FSTYPE SOURCE SUPEROPTS", with spaces, tabs, newlines and backslashes in
 * paths written as three-digit octal escapes.  Lines are read with
 * getline() and parsed in place; a line that does not parse, or whose
 * fields do not fit the entry, is skipped.
 */
#include "mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

bool mountinfo_is_pseudo_fstype(const char *fstype)
{
	static const char *const pseudo[] = {
		"proc",     "sysfs",      "devtmpfs",   "devpts",    "cgroup",   "cgroup2",
		"securityfs", "debugfs",  "tracefs",    "pstore",    "bpf",      "configfs",
		"fusectl",  "mqueue",     "autofs",     "binfmt_misc", "efivarfs", "selinuxfs",
		"rpc_pipefs", "nsfs",     "hugetlbfs",  "nfsd",      "rootfs",   "pipefs",
		"sockfs",   "anon_inodefs", "ramfs_internal", "smackfs", "apparmorfs",
		"resctrl",  "devfs",      "usbfs",      "xenfs",     "openpromfs",
	};
	if (!fstype || !fstype[0])
		return true;
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if (strcmp(fstype, pseudo[i]) == 0)
			return true;
	return false;
}

const char *mountinfo_incomplete_reason(const char *fstype)
{
	static const struct {
		const char *prefix;
		bool exact;
		const char *reason;
	} table[] = {
		{ "nfs", true, "NFS: only changes made on this host are seen" },
		{ "nfs4", true, "NFS: only changes made on this host are seen" },
		{ "cifs", true, "CIFS/SMB: only changes made on this host are seen" },
		{ "smb3", true, "CIFS/SMB: only changes made on this host are seen" },
		{ "9p", true, "9p: only changes made on this host are seen" },
		{ "ceph", true, "CephFS: only changes made on this host are seen" },
		{ "glusterfs", true, "GlusterFS: only changes made on this host are seen" },
		{ "afs", true, "AFS: only changes made on this host are seen" },
		{ "fuse", true, "FUSE: only changes made through this host's mount are seen" },
		{ "fuseblk", true, "FUSE: only changes made through this host's mount are seen" },
		{ "fuse.", false, "FUSE: only changes made through this host's mount are seen" },
		{ "overlay", true, "overlayfs: changes made in the lower or upper layers directly are not seen" },
		{ "virtiofs", true, "virtiofs: only changes made by this guest are seen" },
	};
	if (!fstype)
		return NULL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t n = strlen(table[i].prefix);
		if (table[i].exact ? strcmp(fstype, table[i].prefix) == 0
				   : strncmp(fstype, table[i].prefix, n) == 0)
			return table[i].reason;
	}
	return NULL;
}

/* Copies the next space-separated field of *@p into @out (size @cap),
 * undoing octal escapes.  Returns 0, or -1 when there is no field or it
 * does not fit. */
static int next_field(char **p, char *out, size_t cap)
{
	char *s = *p;
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (!*s || *s == '\n')
		return -1;
	while (*s && *s != ' ' && *s != '\n') {
		char c = *s++;
		if (c == '\\' && s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' &&
		    s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') << 6 | (s[1] - '0') << 3 | (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	*p = s;
	return 0;
}

static int parse_line(char *line, struct mountinfo_entry *e)
{
	char tmp[64];
	char *p = line;
	unsigned maj, min;

	if (next_field(&p, tmp, sizeof(tmp)) < 0)
		return -1;
	e->mnt_id = strtoull(tmp, NULL, 10);
	if (next_field(&p, tmp, sizeof(tmp)) < 0)
		return -1;
	e->parent_id = strtoull(tmp, NULL, 10);
	if (next_field(&p, tmp, sizeof(tmp)) < 0 || sscanf(tmp, "%u:%u", &maj, &min) != 2)
		return -1;
	e->dev = (uint64_t)makedev(maj, min);
	if (next_field(&p, e->root, sizeof(e->root)) < 0 ||
	    next_field(&p, e->point, sizeof(e->point)) < 0)
		return -1;
	/* mount options, then optional fields up to the "-" separator */
	for (;;) {
		char opt[512];
		if (next_field(&p, opt, sizeof(opt)) < 0)
			return -1;
		if (strcmp(opt, "-") == 0)
			break;
	}
	if (next_field(&p, e->fstype, sizeof(e->fstype)) < 0 ||
	    next_field(&p, e->source, sizeof(e->source)) < 0)
		return -1;
	if (next_field(&p, e->super_opts, sizeof(e->super_opts)) < 0)
		e->super_opts[0] = '\0';
	return 0;
}

int mountinfo_foreach(int (*fn)(const struct mountinfo_entry *e, void *userdata), void *userdata)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f)
		return -errno;
	struct mountinfo_entry *e = malloc(sizeof(*e));
	if (!e) {
		fclose(f);
		return -ENOMEM;
	}
	while (getline(&line, &cap, f) > 0) {
		if (parse_line(line, e) < 0)
			continue;
		r = fn(e, userdata);
		if (r)
			break;
	}
	/* a table cut short by an error is not the whole table */
	if (r == 0 && ferror(f))
		r = errno ? -errno : -EIO;
	free(line);
	free(e);
	fclose(f);
	return r;
}

struct find_ctx {
	uint64_t mnt_id;
	struct mountinfo_entry *out;
};

static int find_one(const struct mountinfo_entry *e, void *userdata)
{
	struct find_ctx *fc = userdata;
	if (e->mnt_id != fc->mnt_id)
		return 0;
	*fc->out = *e;
	return 1;
}

int mountinfo_of_fd(int fd, struct mountinfo_entry *ret)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) < 0)
		return -errno;
	if (!(stx.stx_mask & STATX_MNT_ID))
		return -EOPNOTSUPP;
	struct mountinfo_entry *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	struct find_ctx fc = { .mnt_id = stx.stx_mnt_id, .out = e };
	int r = mountinfo_foreach(find_one, &fc);
	if (r == 1) {
		*ret = *e;
		r = 0;
	} else if (r == 0) {
		r = -ENOENT;
	}
	free(e);
	return r;
}
