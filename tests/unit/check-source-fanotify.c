/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-source-fanotify.c - the fanotify source against the real kernel, in
 * a private mount namespace on a private tmpfs and a loop-mounted ext4:
 * exact records for a sequence of file and directory operations, paths
 * under a renamed directory right after the rename, interest narrowing,
 * the watched root's deletion, bind mounts of subdirectories, pairing of
 * moves on the path kernels without FAN_RENAME take, unmount (which must
 * succeed, and be reported), refusal of /proc, and the resolver's speed.
 * Needs root; exits 77 otherwise.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "fsnote-protocol.h"
#include "source.h"

#define MAX_RECS 4096

struct rec {
	uint32_t type, flags;
	uint64_t dev;
	char path[512], dest[512];
	struct pool_stat st, dest_st;
};

static char top[64];
static struct rec recs[MAX_RECS];
static size_t n_recs, n_total, n_overflow, n_unmount;
static uint64_t unmount_dev;

static struct event_base *base;
static struct source *src;

static void on_event(void *ctx, const struct source_event *ev)
{
	n_total++;
	if (n_recs >= MAX_RECS)
		return;
	struct rec *r = &recs[n_recs++];
	*r = (struct rec){ .type = ev->type, .flags = ev->flags, .dev = ev->dev, .st = ev->st,
			   .dest_st = ev->dest_st };
	ck_assert_uint_eq(strlen(ev->path), ev->path_len);
	ck_assert(ev->path[0] == '/');
	snprintf(r->path, sizeof(r->path), "%s", ev->path);
	if (ev->dest) {
		ck_assert_uint_eq(strlen(ev->dest), ev->dest_len);
		snprintf(r->dest, sizeof(r->dest), "%s", ev->dest);
	}
	ck_assert_uint_ne(ev->time_ns, 0);
}

static void on_overflow(void *ctx, uint64_t dev, const char *scope)
{
	n_overflow++;
}

static void on_unmount(void *ctx, uint64_t dev)
{
	n_unmount++;
	unmount_dev = dev;
}

static void on_watch_error(void *ctx, struct source_watch *w, int error)
{
}

static const struct source_sink sink = {
	.event = on_event,
	.overflow = on_overflow,
	.unmount = on_unmount,
	.watch_error = on_watch_error,
};

static void start(void)
{
	n_recs = n_total = n_overflow = n_unmount = 0;
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(source_fanotify_new(base, &sink, 0, &src), 0);
	src->ops->set_interest(src, FSNOTE_EV_DEFAULT_MASK);
}

static void stop(void)
{
	src = source_free(src);
	event_base_free(base);
	base = NULL;
}

struct watched {
	struct source_watch *w;
	struct source_watch_info info;
};

static int watch(const char *dir, struct watched *out, const char **reason)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	*reason = NULL;
	int r = src->ops->watch(src, fd, dir, SOURCE_WATCH_RECURSIVE, NULL, 0, &out->w, &out->info,
				reason);
	close(fd);
	return r;
}

static void unwatch(struct watched *w)
{
	src->ops->unwatch(src, w->w);
	free(w->info.root);
}

static void flush(void)
{
	ck_assert_int_eq(src->ops->flush(src), 0);
}

/* "type rel dest d" for record @i, paths relative to @root. */
static const char *fmt(size_t i, const char *root)
{
	static char line[1200];
	static const char *const names[] = { "?", "create", "delete", "modify", "attrib",
					     "close_write", "rename", "unmount", "dropped", "open",
					     "access", "mount", "fs_error" };
	const struct rec *r = &recs[i];
	size_t rl = strlen(root);
	const char *p = strncmp(r->path, root, rl) == 0 ? r->path + rl : r->path;
	const char *d = r->dest[0] ? (strncmp(r->dest, root, rl) == 0 ? r->dest + rl : r->dest) : "-";
	snprintf(line, sizeof(line), "%s %s %s %s", r->type <= 12 ? names[r->type] : "?",
		 *p == '/' ? p + 1 : p, *d == '/' ? d + 1 : d,
		 (r->flags & FSNOTE_FLAG_IS_DIR) ? "dir" : "file");
	return line;
}

static void expect(const char *root, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n_recs && i < n; i++)
		ck_assert_msg(strcmp(fmt(i, root), want[i]) == 0, "record %zu: got '%s', want '%s'", i,
			      fmt(i, root), want[i]);
	if (n_recs != n) {
		for (size_t i = 0; i < n_recs; i++)
			fprintf(stderr, "  got: %s\n", fmt(i, root));
	}
	ck_assert_uint_eq(n_recs, n);
	ck_assert_uint_eq(n_overflow, 0);
}

static void at(const char *dir, const char *rel, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", dir, rel);
}

#define STEP(call) do { ck_assert_int_eq((call), 0); flush(); } while (0)

static int create_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (data && write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		return -1;
	return close(fd);
}

/* The operations of the end-to-end test, flushed one by one so that the
 * kernel has no chance to merge any two: exact records, in order. */
static void run_tree(const char *fsdir)
{
	char w[512], a[600], b[600];
	struct watched wd;
	const char *reason;

	snprintf(w, sizeof(w), "%s/w", fsdir);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	start();
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	ck_assert_str_eq(wd.info.root, "/w");
	struct stat wst;
	ck_assert_int_eq(stat(w, &wst), 0);
	ck_assert_uint_eq(wd.info.dev, wst.st_dev);

	at(w, "d", a, sizeof(a));
	STEP(mkdir(a, 0755));
	at(w, "d/f", a, sizeof(a));
	STEP(create_file(a, "hello\n"));
	STEP(chmod(a, 0600));
	at(w, "d/g", b, sizeof(b));
	STEP(rename(a, b));
	at(w, "e", a, sizeof(a));
	STEP(mkdir(a, 0755));
	STEP(chmod(a, 0700));
	at(w, "e/g", a, sizeof(a));
	STEP(rename(b, a));
	STEP(unlink(a));
	at(w, "e", a, sizeof(a));
	STEP(rmdir(a));
	at(w, "m", a, sizeof(a));
	STEP(mkdir(a, 0755));
	at(w, "m/n", a, sizeof(a));
	STEP(mkdir(a, 0755));
	at(w, "m/n/x", a, sizeof(a));
	STEP(create_file(a, NULL));
	at(w, "m", a, sizeof(a));
	at(w, "m2", b, sizeof(b));
	/* no flush between the rename and the next create: the new name
	 * must be right at once, and nothing may come under the old one */
	ck_assert_int_eq(rename(a, b), 0);
	at(w, "m2/n/y", a, sizeof(a));
	STEP(create_file(a, "y"));
	at(w, "m2/n/x", a, sizeof(a));
	STEP(unlink(a));

	static const char *const want[] = {
		"create d - dir",
		"create d/f - file",
		"modify d/f - file",
		"close_write d/f - file",
		"attrib d/f - file",
		"rename d/f d/g file",
		"create e - dir",
		"attrib e - dir",
		"rename d/g e/g file",
		"delete e/g - file",
		"delete e - dir",
		"create m - dir",
		"create m/n - dir",
		"create m/n/x - file",
		"close_write m/n/x - file",
		"rename m m2 dir",
		"create m2/n/y - file",
		"modify m2/n/y - file",
		"close_write m2/n/y - file",
		"delete m2/n/x - file",
	};
	expect(wd.info.root, want, sizeof(want) / sizeof(want[0]));

	/* what is known of each object */
	at(w, "d/f", a, sizeof(a));
	ck_assert(recs[1].st.valid && S_ISREG(recs[1].st.mode));
	ck_assert(recs[0].st.valid && S_ISDIR(recs[0].st.mode));
	ck_assert(recs[4].st.valid && (recs[4].st.mode & 07777) == 0600);
	ck_assert(recs[5].dest_st.valid && S_ISREG(recs[5].dest_st.mode));
	ck_assert(!recs[9].st.valid); /* deleted */
	ck_assert_uint_eq(recs[0].dev, wst.st_dev);
	at(w, "m2/n/y", a, sizeof(a));
	struct stat yst;
	ck_assert_int_eq(stat(a, &yst), 0);
	ck_assert_uint_eq(recs[16].st.ino, yst.st_ino);
	ck_assert_uint_eq(recs[16].st.uid, yst.st_uid);
	unwatch(&wd);
	stop();
}

START_TEST(test_tree_tmpfs)
{
	char d[300];
	snprintf(d, sizeof(d), "%s/tmpfs", top);
	run_tree(d);
}
END_TEST

START_TEST(test_tree_ext4)
{
	char d[300];
	snprintf(d, sizeof(d), "%s/ext4", top);
	run_tree(d);
}
END_TEST

START_TEST(test_interest_narrowing)
{
	char w[512], a[600];
	struct watched wd;
	const char *reason;

	snprintf(w, sizeof(w), "%s/tmpfs/narrow", top);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	start();
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	src->ops->set_interest(src, FSNOTE_EV_BIT(FSNOTE_EV_CREATE));
	at(w, "f", a, sizeof(a));
	STEP(create_file(a, "data"));
	STEP(chmod(a, 0600));
	static const char *const want1[] = { "create f - file" };
	expect(wd.info.root, want1, 1);

	/* widening reaches the live mark */
	n_recs = 0;
	src->ops->set_interest(src, FSNOTE_EV_BIT(FSNOTE_EV_ATTRIB) | FSNOTE_EV_BIT(FSNOTE_EV_MODIFY));
	STEP(chmod(a, 0644));
	int fd = open(a, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
	flush();
	at(w, "g", a, sizeof(a));
	STEP(create_file(a, NULL)); /* no longer wanted */
	static const char *const want2[] = { "attrib f - file", "modify f - file" };
	expect(wd.info.root, want2, 2);
	unwatch(&wd);
	stop();
}
END_TEST

START_TEST(test_root_deleted)
{
	char w[512];
	struct watched wd;
	const char *reason;

	snprintf(w, sizeof(w), "%s/ext4/doomed", top);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	start();
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	STEP(rmdir(w));
	ck_assert_uint_ge(n_recs, 1);
	ck_assert_uint_eq(recs[0].type, FSNOTE_EV_DELETE);
	ck_assert_str_eq(recs[0].path, wd.info.root);
	ck_assert(recs[0].flags & FSNOTE_FLAG_IS_DIR);
	unwatch(&wd);
	stop();
}
END_TEST

START_TEST(test_bind_subdir)
{
	char sub[512], bind[512], a[600], other[512];
	struct watched w1, w2;
	const char *reason;

	snprintf(sub, sizeof(sub), "%s/tmpfs/sub", top);
	snprintf(bind, sizeof(bind), "%s/bind", top);
	snprintf(other, sizeof(other), "%s/tmpfs/other", top);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	at(sub, "inner", a, sizeof(a));
	ck_assert_int_eq(mkdir(a, 0755), 0);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	ck_assert_int_eq(mkdir(bind, 0755), 0);
	ck_assert_int_eq(mount(sub, bind, NULL, MS_BIND, NULL), 0);

	start();
	/* first watch through the bind mount: the space is still the
	 * filesystem's own, from its root */
	at(bind, "inner", a, sizeof(a));
	ck_assert_int_eq(watch(a, &w1, &reason), 0);
	ck_assert_str_eq(w1.info.root, "/sub/inner");
	/* a directory the bind mount does not show, through a mount that
	 * shows the whole filesystem: the source switches to that one */
	ck_assert_int_eq(watch(other, &w2, &reason), 0);
	ck_assert_str_eq(w2.info.root, "/other");
	at(bind, "inner/x", a, sizeof(a));
	STEP(create_file(a, NULL));
	at(other, "y", a, sizeof(a));
	STEP(create_file(a, NULL));
	static const char *const want[] = {
		"create sub/inner/x - file", "close_write sub/inner/x - file",
		"create other/y - file", "close_write other/y - file",
	};
	expect("/", want, 4);
	ck_assert(recs[0].st.valid);
	unwatch(&w1);
	unwatch(&w2);
	stop();

	/* two bind mounts showing disjoint parts: the second cannot be named
	 * through the first one's clone, and is refused so that the core can
	 * use inotify for it */
	char bind2[512];
	snprintf(bind2, sizeof(bind2), "%s/bind2", top);
	ck_assert_int_eq(mkdir(bind2, 0755), 0);
	ck_assert_int_eq(mount(other, bind2, NULL, MS_BIND, NULL), 0);
	start();
	at(bind, "inner", a, sizeof(a));
	ck_assert_int_eq(watch(a, &w1, &reason), 0);
	ck_assert_int_eq(watch(bind2, &w2, &reason), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(reason);
	unwatch(&w1);
	stop();
	ck_assert_int_eq(umount2(bind2, 0), 0);
	/* the daemon pins nothing: the bind mount goes away cleanly */
	ck_assert_int_eq(umount2(bind, 0), 0);
}
END_TEST

START_TEST(test_moves_without_fan_rename)
{
	char w[512], a[600], b[600];
	struct watched wd;
	const char *reason;

	snprintf(w, sizeof(w), "%s/tmpfs/old", top);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	setenv("FSNOTED_FANOTIFY_NO_RENAME", "1", 1);
	start();
	unsetenv("FSNOTED_FANOTIFY_NO_RENAME");
	ck_assert_uint_eq(src->ops->features(src) & FSNOTE_FEATURE_RENAME, 0);
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	at(w, "d", a, sizeof(a));
	STEP(mkdir(a, 0755));
	at(w, "d/s", a, sizeof(a));
	STEP(mkdir(a, 0755));
	at(w, "f", a, sizeof(a));
	STEP(mknod(a, S_IFREG | 0644, 0));
	at(w, "d/f2", b, sizeof(b));
	STEP(rename(a, b));
	at(w, "d", a, sizeof(a));
	at(w, "d2", b, sizeof(b));
	ck_assert_int_eq(rename(a, b), 0);
	at(w, "d2/s/z", a, sizeof(a));
	STEP(mknod(a, S_IFREG | 0644, 0));
	static const char *const want[] = {
		"create d - dir", "create d/s - dir", "create f - file",
		"rename f d/f2 file", "rename d d2 dir", "create d2/s/z - file",
	};
	expect(wd.info.root, want, sizeof(want) / sizeof(want[0]));
	unwatch(&wd);
	stop();
}
END_TEST

static bool unmounted(void)
{
	return n_unmount > 0;
}

START_TEST(test_unmount)
{
	char img[300], mnt[300], w[400], a[500], cmd[2048];
	struct watched wd;
	const char *reason;

	snprintf(img, sizeof(img), "%s/u.img", top);
	snprintf(mnt, sizeof(mnt), "%s/u", top);
	ck_assert_int_eq(mkdir(mnt, 0755), 0);
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 16M %s && mkfs.ext4 -q -F %s && mount -o loop %s %s", img, img, img,
		 mnt);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(w, sizeof(w), "%s/w", mnt);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	struct stat st;
	ck_assert_int_eq(stat(w, &st), 0);

	start();
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	at(w, "before", a, sizeof(a));
	STEP(create_file(a, NULL));
	ck_assert_uint_eq(n_recs, 2);
	/* a plain umount must succeed: the daemon holds no reference to the mount */
	ck_assert_msg(umount2(mnt, 0) == 0, "umount: %s", strerror(errno));
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (!unmounted())
			usleep(2000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (!unmounted() && t.tv_sec - t0.tv_sec < 5);
	ck_assert_uint_eq(n_unmount, 1);
	ck_assert_uint_eq(unmount_dev, st.st_dev);
	json_t *obj = json_object();
	src->ops->status(src, obj);
	ck_assert_int_eq(json_integer_value(json_object_get(obj, "unmounts")), 1);
	json_decref(obj);
	unwatch(&wd); /* as the core does after the callback */
	obj = json_object();
	src->ops->status(src, obj);
	ck_assert_uint_eq(json_array_size(json_object_get(obj, "marks")), 0);
	json_decref(obj);
	stop();
}
END_TEST

START_TEST(test_pseudo_refused)
{
	struct watched wd;
	const char *reason;

	start();
	ck_assert_int_eq(watch("/proc", &wd, &reason), -EXDEV);
	ck_assert_ptr_nonnull(reason);
	if (access("/sys/kernel", F_OK) == 0) {
		ck_assert_int_eq(watch("/sys/kernel", &wd, &reason), -EXDEV);
		ck_assert_ptr_nonnull(reason);
	}
	json_t *obj = json_object();
	src->ops->status(src, obj);
	ck_assert_uint_eq(json_array_size(json_object_get(obj, "marks")), 0);
	json_decref(obj);
	stop();
}
END_TEST

START_TEST(test_status_and_refcount)
{
	char w1[400], w2[400];
	struct watched a, b;
	const char *reason;

	snprintf(w1, sizeof(w1), "%s/tmpfs/s1", top);
	snprintf(w2, sizeof(w2), "%s/tmpfs/s2", top);
	ck_assert_int_eq(mkdir(w1, 0755), 0);
	ck_assert_int_eq(mkdir(w2, 0755), 0);
	start();
	uint64_t feat = src->ops->features(src);
	ck_assert(feat & FSNOTE_FEATURE_FANOTIFY);
	ck_assert(feat & FSNOTE_FEATURE_RENAME); /* the test kernel is new enough */
	ck_assert_int_eq(watch(w1, &a, &reason), 0);
	ck_assert_int_eq(watch(w2, &b, &reason), 0);
	json_t *obj = json_object();
	src->ops->status(src, obj);
	json_t *marks = json_object_get(obj, "marks");
	ck_assert_uint_eq(json_array_size(marks), 1); /* one mark per filesystem */
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(marks, 0), "watches")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(marks, 0), "fstype")), "tmpfs");
	ck_assert_ptr_nonnull(json_object_get(json_object_get(obj, "path_cache"), "hit_rate"));
	ck_assert(json_is_true(json_object_get(json_object_get(obj, "kernel_features"), "rename")));
	json_decref(obj);
	/* every type at once reaches the live mark (fs_error, open, access too) */
	src->ops->set_interest(src, FSNOTE_EV_ALL_MASK);
	obj = json_object();
	src->ops->status(src, obj);
	json_int_t mask = json_integer_value(json_object_get(
		json_array_get(json_object_get(obj, "marks"), 0), "mask"));
	ck_assert(mask & 0x00008000);   /* FAN_FS_ERROR */
	ck_assert(mask & 0x00000020);   /* FAN_OPEN */
	ck_assert(mask & 0x00000001);   /* FAN_ACCESS */
	ck_assert(mask & 0x10000000);   /* FAN_RENAME */
	json_decref(obj);
	src->ops->set_interest(src, FSNOTE_EV_BIT(FSNOTE_EV_MODIFY));
	obj = json_object();
	src->ops->status(src, obj);
	mask = json_integer_value(json_object_get(
		json_array_get(json_object_get(obj, "marks"), 0), "mask"));
	/* FAN_MODIFY, and renames always: the path cache follows them */
	ck_assert_int_eq(mask, 0x00000002 | 0x10000000);
	json_decref(obj);
	unwatch(&a);
	obj = json_object();
	src->ops->status(src, obj);
	ck_assert_uint_eq(json_array_size(json_object_get(obj, "marks")), 1);
	json_decref(obj);
	unwatch(&b);
	obj = json_object();
	src->ops->status(src, obj);
	ck_assert_uint_eq(json_array_size(json_object_get(obj, "marks")), 0);
	json_decref(obj);
	stop();
}
END_TEST

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 100 000 creates in 100 directories, read in chunks of 5000: how fast
 * does the source turn kernel events into records? */
START_TEST(test_throughput)
{
	char w[400], a[600];
	struct watched wd;
	const char *reason;
	const unsigned dirs = 100, files = 1000, chunk = 5000;
	double spent = 0;

	snprintf(w, sizeof(w), "%s/tmpfs/bench", top);
	ck_assert_int_eq(mkdir(w, 0755), 0);
	start();
	src->ops->set_interest(src, FSNOTE_EV_BIT(FSNOTE_EV_CREATE));
	ck_assert_int_eq(watch(w, &wd, &reason), 0);
	for (unsigned d = 0; d < dirs; d++) {
		snprintf(a, sizeof(a), "%s/d%u", w, d);
		ck_assert_int_eq(mkdir(a, 0755), 0);
	}
	flush();
	size_t base_total = n_total;
	int dfd[100];
	for (unsigned d = 0; d < dirs; d++) {
		snprintf(a, sizeof(a), "%s/d%u", w, d);
		dfd[d] = open(a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(dfd[d], 0);
	}
	unsigned made = 0;
	for (unsigned i = 0; i < files; i++) {
		for (unsigned d = 0; d < dirs; d++) {
			snprintf(a, sizeof(a), "f%u", i);
			ck_assert_int_eq(mknodat(dfd[d], a, S_IFREG | 0644, 0), 0);
			if (++made % chunk == 0) {
				double t0 = now_s();
				flush();
				spent += now_s() - t0;
			}
		}
	}
	for (unsigned d = 0; d < dirs; d++)
		close(dfd[d]);
	ck_assert_uint_eq(n_overflow, 0);
	ck_assert_uint_eq(n_total - base_total, (size_t)dirs * files);
	json_t *obj = json_object();
	src->ops->status(src, obj);
	json_t *pc = json_object_get(obj, "path_cache");
	double rate = json_real_value(json_object_get(pc, "hit_rate"));
	fprintf(stderr, "throughput: %u creates resolved in %.3f s = %.0f records/s, "
			"path cache hit rate %.4f (%lld hits, %lld misses)\n",
		dirs * files, spent, (double)(dirs * files) / spent, rate,
		(long long)json_integer_value(json_object_get(pc, "hits")),
		(long long)json_integer_value(json_object_get(pc, "misses")));
	ck_assert(rate > 0.99);
	json_decref(obj);
	unwatch(&wd);
	stop();
}
END_TEST

static void cleanup(void)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "umount -l %s/bind2 %s/bind %s/u %s/ext4 %s/tmpfs 2>/dev/null; rm -rf %s",
		 top, top, top, top, top, top);
	if (system(cmd) != 0) {
		/* best effort: the namespace dies with us anyway */
	}
}

int main(void)
{
	char cmd[2048];

	if (geteuid() != 0) {
		fprintf(stderr, "skip: needs root\n");
		return 77;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "skip: cannot make a private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	{
		struct event_base *b = event_base_new();
		struct source *s = NULL;
		int r = source_fanotify_new(b, &sink, 0, &s);
		source_free(s);
		event_base_free(b);
		if (r == -ENOSYS || r == -EPERM) {
			fprintf(stderr, "skip: no fanotify with file handles: %s\n", strerror(-r));
			return 77;
		}
	}
	snprintf(top, sizeof(top), "/tmp/check-fanotify-XXXXXX");
	if (!mkdtemp(top))
		return EXIT_FAILURE;
	snprintf(cmd, sizeof(cmd),
		 "mkdir %s/tmpfs %s/ext4 && mount -t tmpfs check %s/tmpfs && "
		 "truncate -s 64M %s/ext4.img && mkfs.ext4 -q -F %s/ext4.img && "
		 "mount -o loop %s/ext4.img %s/ext4",
		 top, top, top, top, top, top, top);
	if (system(cmd) != 0) {
		fprintf(stderr, "skip: cannot set up tmpfs and loop ext4\n");
		cleanup();
		return 77;
	}

	Suite *s = suite_create("source-fanotify");
	TCase *tc = tcase_create("kernel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tree_tmpfs);
	tcase_add_test(tc, test_tree_ext4);
	tcase_add_test(tc, test_interest_narrowing);
	tcase_add_test(tc, test_root_deleted);
	tcase_add_test(tc, test_bind_subdir);
	tcase_add_test(tc, test_moves_without_fan_rename);
	tcase_add_test(tc, test_unmount);
	tcase_add_test(tc, test_pseudo_refused);
	tcase_add_test(tc, test_status_and_refcount);
	tcase_add_test(tc, test_throughput);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
