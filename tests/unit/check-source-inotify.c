/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-source-inotify.c - the inotify source against the real kernel.
 *
 * Each test (fork mode) enters a private mount namespace, mounts a tmpfs
 * (or a loop ext4) on a scratch directory, creates the source with a sink
 * that records every callback, and acts on the tree.  Records are compared
 * exactly after each flush(), rendered one per line as "type path [dest]
 * [dir] [renamed]" with paths relative to the watched directory.  Needs
 * root; exits 77 otherwise.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsnote-protocol.h"
#include "source.h"

/* The scratch paths are short and fixed; every buffer has room to spare, but
 * gcc cannot prove it through the chains of snprintf. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

static char scratch[] = "/tmp/fsnoted-check-inotify.XXXXXX";
static char top[512];   /* the mounted filesystem */
static char wdir[1024];  /* the watched directory, top/w */

/* --- a recording sink ---------------------------------------------------- */

static char *got;       /* rendered records since the last take() */
static size_t got_len;
static int n_unmount, n_overflow, n_watch_error;
static uint64_t unmount_dev;
static int watch_error_code;
static bool all_stat_ok;
static struct source *src;
static struct source_watch *watches[8];
static size_t n_watches;

static const char *type_name(uint32_t t)
{
	static const char *const names[] = { "?", "create", "delete", "modify", "attrib",
					     "close_write", "rename", "unmount", "dropped", "open",
					     "access", "mount", "fs_error" };
	return t <= FSNOTE_EV_MAX ? names[t] : "?";
}

static const char *rel(const char *p, size_t len, char *buf, size_t cap)
{
	size_t wl = strlen(wdir);
	if (len == wl && memcmp(p, wdir, wl) == 0)
		snprintf(buf, cap, ".");
	else if (len > wl && memcmp(p, wdir, wl) == 0 && p[wl] == '/')
		snprintf(buf, cap, "%.*s", (int)(len - wl - 1), p + wl + 1);
	else
		snprintf(buf, cap, "%.*s", (int)len, p);
	return buf;
}

static void rec_event(void *ctx, const struct source_event *ev)
{
	char a[4200], b[4200], line[9000];
	struct stat st;

	ck_assert_uint_eq(strlen(ev->path), ev->path_len);
	ck_assert(ev->path[0] == '/');
	ck_assert(ev->time_ns > 0);
	ck_assert_uint_eq(ev->pid, 0);
	/* attributes, where given, describe the object; inotify gives them
	 * only for a watched directory itself and for what a scan found (a
	 * name may lead to another object by the time an event is read), and
	 * never for the entry of a live create, rename or write */
	if (ev->st.valid && ev->type != FSNOTE_EV_DELETE &&
	    lstat(ev->dest ? ev->dest : ev->path, &st) == 0) {
		if (ev->st.ino != (uint64_t)st.st_ino || (ev->st.mode & S_IFMT) != (st.st_mode & S_IFMT) ||
		    ev->dev != (uint64_t)st.st_dev)
			all_stat_ok = false;
	}
	if (ev->st.valid && ev->dest)
		all_stat_ok = false;
	if (ev->type == FSNOTE_EV_DELETE && ev->st.valid)
		all_stat_ok = false;
	int n = snprintf(line, sizeof(line), "%s %s%s%s%s%s\n", type_name(ev->type),
			 rel(ev->path, ev->path_len, a, sizeof(a)), ev->dest ? " " : "",
			 ev->dest ? rel(ev->dest, ev->dest_len, b, sizeof(b)) : "",
			 (ev->flags & FSNOTE_FLAG_IS_DIR) ? " dir" : "",
			 (ev->flags & FSNOTE_FLAG_RENAMED) ? " renamed" : "");
	got = realloc(got, got_len + (size_t)n + 1);
	memcpy(got + got_len, line, (size_t)n + 1);
	got_len += (size_t)n;
}

static void rec_overflow(void *ctx, uint64_t dev, const char *scope)
{
	n_overflow++;
}

static void rec_unmount(void *ctx, uint64_t dev)
{
	n_unmount++;
	unmount_dev = dev;
	/* as the core does: every watch on it ends */
	for (size_t i = 0; i < n_watches; i++)
		src->ops->unwatch(src, watches[i]);
	n_watches = 0;
}

static void rec_watch_error(void *ctx, struct source_watch *w, int error)
{
	n_watch_error++;
	watch_error_code = error;
}

static const struct source_sink sink = {
	.event = rec_event,
	.overflow = rec_overflow,
	.unmount = rec_unmount,
	.watch_error = rec_watch_error,
};

/* Flushes and returns what was recorded since the last call (static). */
static const char *take(void)
{
	static char buf[1 << 16];
	ck_assert_int_eq(src->ops->flush(src), 0);
	snprintf(buf, sizeof(buf), "%s", got ? got : "");
	free(got);
	got = NULL;
	got_len = 0;
	return buf;
}

static long status_int(const char *key)
{
	json_t *o = json_object();
	src->ops->status(src, o);
	json_t *v = json_object_get(o, key);
	ck_assert_msg(v != NULL, "status has no %s", key);
	long r = (long)json_integer_value(v);
	json_decref(o);
	return r;
}

/* --- fixtures -------------------------------------------------------------- */

static struct event_base *base;

static void enter_namespace(void)
{
	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	snprintf(top, sizeof(top), "%s/fs", scratch);
	mkdir(top, 0755);
}

static void start(void)
{
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(source_inotify_new(base, &sink, &src), 0);
	all_stat_ok = true;
	snprintf(wdir, sizeof(wdir), "%s/w", top);
	mkdir(wdir, 0755);
}

static void setup_tmpfs(void)
{
	enter_namespace();
	ck_assert_int_eq(mount("tmpfs", top, "tmpfs", 0, "size=64m"), 0);
	start();
}

static void setup_ext4(void)
{
	char cmd[4096];
	enter_namespace();
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 32M %s/img && mkfs.ext4 -q -F %s/img && mount -o loop %s/img %s",
		 scratch, scratch, scratch, top);
	ck_assert_int_eq(system(cmd), 0);
	start();
}

static struct source_watch *watch_path(const char *path, uint32_t flags, char *const *ex, size_t n_ex,
				       int *ret_err, struct source_watch_info *ret_info)
{
	struct source_watch *w = NULL;
	struct source_watch_info info = { 0 };
	const char *reason = NULL;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	int r = src->ops->watch(src, fd, path, flags, ex, n_ex, &w, &info, &reason);
	close(fd); /* borrowed only */
	if (ret_err)
		*ret_err = r;
	else
		ck_assert_int_eq(r, 0);
	if (r == 0) {
		ck_assert_ptr_nonnull(info.root);
		watches[n_watches++] = w;
	}
	if (ret_info)
		*ret_info = info;
	else
		free(info.root);
	return w;
}

__attribute__((format(printf, 1, 2))) static void sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_int_eq(system(cmd), 0);
}

static void at(char *buf, size_t cap, const char *relpath)
{
	snprintf(buf, cap, "%s/%s", wdir, relpath);
}

static void mkd(const char *r)
{
	char p[1024];
	at(p, sizeof(p), r);
	ck_assert_int_eq(mkdir(p, 0755), 0);
}

static void write_file(const char *r, const char *text)
{
	char p[1024];
	at(p, sizeof(p), r);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void mv(const char *a, const char *b)
{
	char p[1024], q[1024];
	if (a[0] == '/')
		snprintf(p, sizeof(p), "%s", a);
	else
		at(p, sizeof(p), a);
	if (b[0] == '/')
		snprintf(q, sizeof(q), "%s", b);
	else
		at(q, sizeof(q), b);
	ck_assert_int_eq(rename(p, q), 0);
}

/* --- the tree operations, on one filesystem ---------------------------------- */

static void tree_ops(void)
{
	char p[1024], out[1024];

	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	/* setting up reports nothing */
	ck_assert_str_eq(take(), "");

	mkd("d");
	ck_assert_str_eq(take(), "create d dir\n");
	write_file("d/f", "hello");
	ck_assert_str_eq(take(), "create d/f\nmodify d/f\nclose_write d/f\n");
	at(p, sizeof(p), "d/f");
	ck_assert_int_eq(chmod(p, 0600), 0);
	ck_assert_str_eq(take(), "attrib d/f\n");
	mv("d/f", "d/g");
	ck_assert_str_eq(take(), "rename d/f d/g\n");
	mkd("e");
	/* (a rename into e before its watch is added is seen as the delete
	 * and create it then amounts to: e's scan finds g) */
	ck_assert_str_eq(take(), "create e dir\n");
	mv("d/g", "e/g");
	ck_assert_str_eq(take(), "rename d/g e/g\n");
	at(p, sizeof(p), "e/g");
	ck_assert_int_eq(unlink(p), 0);
	at(p, sizeof(p), "e");
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_str_eq(take(), "delete e/g\ndelete e dir\n");

	/* a directory with contents renamed: what happens under it right
	 * after carries the new name */
	mkd("m");
	ck_assert_str_eq(take(), "create m dir\n");
	mkd("m/n");
	ck_assert_str_eq(take(), "create m/n dir\n");
	write_file("m/n/x", "");
	ck_assert_str_eq(take(), "create m/n/x\nclose_write m/n/x\n");
	mv("m", "m2");
	write_file("m2/n/y", "");
	ck_assert_str_eq(take(), "rename m m2 dir\ncreate m2/n/y\nclose_write m2/n/y\n");
	/* and a rename from deep inside it */
	mv("m2/n/y", "m2/z");
	ck_assert_str_eq(take(), "rename m2/n/y m2/z\n");

	/* out of the tree: a delete flagged renamed, and its watches go */
	long before = status_int("watches");
	snprintf(out, sizeof(out), "%s/outside", top);
	ck_assert_int_eq(mkdir(out, 0755), 0);
	snprintf(p, sizeof(p), "%s/outside/m2", top);
	mv("m2", p);
	ck_assert_str_eq(take(), "delete m2 dir renamed\n");
	ck_assert_int_eq(status_int("watches"), before - 2);
	snprintf(p, sizeof(p), "%s/outside/m2/n/late", top);
	ck_assert_int_eq(mknod(p, S_IFREG | 0644, 0), 0);
	ck_assert_str_eq(take(), "");

	/* into the tree: watched and scanned like a new directory */
	sh("mkdir -p %s/outside/in/sub && touch %s/outside/in/sub/deep", top, top);
	snprintf(p, sizeof(p), "%s/outside/in", top);
	mv(p, "in");
	ck_assert_str_eq(take(), "create in dir renamed\ncreate in/sub dir\ncreate in/sub/deep\n");
	write_file("in/sub/new", "");
	ck_assert_str_eq(take(), "create in/sub/new\nclose_write in/sub/new\n");
	ck_assert_int_eq(status_int("watches"), before - 2 + 2);

	/* a file moved in and out */
	snprintf(p, sizeof(p), "%s/outside/file", top);
	ck_assert_int_eq(mknod(p, S_IFREG | 0644, 0), 0);
	mv(p, "file");
	mv("file", p);
	ck_assert_str_eq(take(), "create file renamed\ndelete file renamed\n");
	ck_assert(all_stat_ok);
}

START_TEST(test_tree_tmpfs)
{
	setup_tmpfs();
	tree_ops();
}
END_TEST

START_TEST(test_tree_ext4)
{
	setup_ext4();
	tree_ops();
}
END_TEST

/* An unpaired IN_MOVED_FROM is decided by the loop's timer, not only by
 * flush(). */
START_TEST(test_loop_and_timer)
{
	char p[1024];
	setup_tmpfs();
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	write_file("f", "");
	snprintf(p, sizeof(p), "%s/gone", top);
	mv("f", p);
	struct timeval tv = { 0, 100000 };
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	ck_assert_str_eq(got ? got : "", "create f\nclose_write f\ndelete f renamed\n");
	free(got);
	got = NULL;
	got_len = 0;
}
END_TEST

/* Directories made while the source follows them, each filled at once:
 * every file must be reported, whether the scan or the kernel saw it. */
START_TEST(test_mkdir_race)
{
	setup_tmpfs();
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char p[1024];
		for (int i = 0; i < 200; i++) {
			const char *levels[] = { "a", "b", "c", "d" };
			snprintf(p, sizeof(p), "%s/r%d", wdir, i);
			size_t len = strlen(p);
			if (mkdir(p, 0755) < 0)
				_exit(1);
			for (int l = 0; l < 4; l++) {
				len += (size_t)snprintf(p + len, sizeof(p) - len, "/%s", levels[l]);
				if (mkdir(p, 0755) < 0)
					_exit(1);
			}
			/* r<i>/a/b/c/d exists: a file in every level */
			for (int l = 4; l >= 0; l--) {
				char f[1100];
				snprintf(f, sizeof(f), "%s/f%d", p, l);
				int fd = open(f, O_CREAT | O_WRONLY, 0644);
				if (fd < 0)
					_exit(1);
				close(fd);
				char *slash = strrchr(p, '/');
				*slash = '\0';
			}
		}
		_exit(0);
	}
	int status = 0;
	while (waitpid(pid, &status, WNOHANG) == 0)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	const char *t = take();
	char *all = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&all, &len);
	fputs(t, m);
	fclose(m);
	int missing = 0;
	for (int i = 0; i < 200; i++) {
		const char *levels[] = { "a", "b", "c", "d" };
		char path[200] = "";
		size_t pl = (size_t)snprintf(path, sizeof(path), "r%d", i);
		for (int l = 0; l <= 4; l++) {
			char want[300];
			snprintf(want, sizeof(want), "create %s/f%d\n", path, l);
			if (!strstr(all, want))
				missing++;
			if (l < 4)
				pl += (size_t)snprintf(path + pl, sizeof(path) - pl, "/%s", levels[l]);
		}
	}
	free(all);
	ck_assert_int_eq(missing, 0);
	/* every directory is watched: 1 + 200 * 5 */
	ck_assert_int_eq(status_int("watches"), 1 + 200 * 5);
}
END_TEST

/* Ten tools on one tree cost one set of watches. */
START_TEST(test_shared)
{
	setup_tmpfs();
	sh("mkdir -p %s/w/a/b %s/w/c", top, top);
	struct source_watch *w1 = watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 4);
	char sub[700];
	snprintf(sub, sizeof(sub), "%s/a", wdir);
	struct source_watch_info info;
	struct source_watch *w2 = watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	struct source_watch *w3 = watch_path(sub, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, &info);
	ck_assert_str_eq(info.root, sub);
	ck_assert_uint_eq(info.flags & FSNOTE_FLAG_LOCAL_ONLY, 0);
	free(info.root);
	ck_assert_int_eq(status_int("watches"), 4);
	ck_assert_int_eq(status_int("source_watches"), 3);
	/* one event each, whatever the number of watches */
	write_file("a/b/x", "");
	ck_assert_str_eq(take(), "create a/b/x\nclose_write a/b/x\n");
	src->ops->unwatch(src, w1);
	ck_assert_int_eq(status_int("watches"), 4);
	src->ops->unwatch(src, w2);
	ck_assert_int_eq(status_int("watches"), 2); /* a and a/b, for w3 */
	write_file("c/y", "");
	write_file("a/z", "");
	ck_assert_str_eq(take(), "create a/z\nclose_write a/z\n");
	src->ops->unwatch(src, w3);
	ck_assert_int_eq(status_int("watches"), 0);
	ck_assert_int_eq(status_int("source_watches"), 0);
	n_watches = 0;
}
END_TEST

/* A watch inside a watched tree, and the outer one going first: the inner
 * directory keeps its watch and its path. */
START_TEST(test_nested_children_only)
{
	setup_tmpfs();
	sh("mkdir -p %s/w/a/b", top);
	char sub[700];
	snprintf(sub, sizeof(sub), "%s/a", wdir);
	struct source_watch *inner = watch_path(sub, 0, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 1);
	struct source_watch *outer = watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 3);
	src->ops->unwatch(src, outer);
	ck_assert_int_eq(status_int("watches"), 1);
	write_file("a/new", "");
	write_file("a/b/deeper", "");
	write_file("top", "");
	ck_assert_str_eq(take(), "create a/new\nclose_write a/new\n");
	src->ops->unwatch(src, inner);
	n_watches = 0;
}
END_TEST

START_TEST(test_children_only)
{
	setup_tmpfs();
	sh("mkdir -p %s/w/d/e", top);
	watch_path(wdir, 0, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 1);
	write_file("d/x", "");
	write_file("y", "");
	mkd("z");
	write_file("z/inside", "");
	ck_assert_str_eq(take(), "create y\nclose_write y\ncreate z dir\n");
	ck_assert_int_eq(status_int("watches"), 1);
}
END_TEST

START_TEST(test_excludes)
{
	setup_tmpfs();
	sh("mkdir -p %s/w/node_modules/a %s/w/src/node_modules %s/w/src/lib", top, top, top);
	char *ex[] = { "node_modules" };
	struct source_watch *w1 = watch_path(wdir, SOURCE_WATCH_RECURSIVE, ex, 1, NULL, NULL);
	/* w, src, src/lib */
	ck_assert_int_eq(status_int("watches"), 3);
	write_file("node_modules/a/f", "");
	write_file("src/lib/g", "");
	ck_assert_str_eq(take(), "create src/lib/g\nclose_write src/lib/g\n");
	/* a new excluded directory is not followed either */
	mkd("src/lib/node_modules");
	ck_assert_str_eq(take(), "create src/lib/node_modules dir\n");
	ck_assert_int_eq(status_int("watches"), 3);
	/* another watch without excludes needs them all */
	struct source_watch *w2 = watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 7);
	src->ops->unwatch(src, w2);
	ck_assert_int_eq(status_int("watches"), 3);
	/* a directory renamed into an excluded name leaves w1's coverage */
	mkd("src/tmp");
	ck_assert_int_eq(status_int("watches"), 3);
	take();
	ck_assert_int_eq(status_int("watches"), 4);
	mv("src/tmp", "src/node_modules2");
	mv("src/node_modules2", "node_modules/b");
	take();
	ck_assert_int_eq(status_int("watches"), 3);
	src->ops->unwatch(src, w1);
	ck_assert_int_eq(status_int("watches"), 0);
	n_watches = 0;
}
END_TEST

/* The watch limit, lowered in a user namespace of our own so that nothing
 * else on the host is affected. */
static void limit_watches(int max)
{
	char buf[64];
	int fd;

	ck_assert_int_eq(unshare(CLONE_NEWUSER), 0);
	fd = open("/proc/self/uid_map", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(write(fd, "0 0 1", 5) > 0, "uid_map: %s", strerror(errno));
	close(fd);
	fd = open("/proc/self/setgroups", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(write(fd, "deny", 4), 0);
	close(fd);
	fd = open("/proc/self/gid_map", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(write(fd, "0 0 1", 5) > 0, "gid_map: %s", strerror(errno));
	close(fd);
	fd = open("/proc/sys/user/max_inotify_watches", O_WRONLY);
	ck_assert_int_ge(fd, 0);
	int n = snprintf(buf, sizeof(buf), "%d", max);
	ck_assert_int_eq(write(fd, buf, (size_t)n), n);
	close(fd);
}

START_TEST(test_enospc)
{
	enter_namespace();
	ck_assert_int_eq(mount("tmpfs", top, "tmpfs", 0, "size=16m"), 0);
	limit_watches(10);
	start();
	sh("mkdir -p %s/w/1/2/3/4/5/6/7/8/9/10/11/12", top);
	int r = 0;
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, &r, NULL);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_int_eq(status_int("watches"), 0); /* undone */
	ck_assert_int_eq(status_int("max_user_watches"), 10);

	char small[700];
	snprintf(small, sizeof(small), "%s/small", top);
	sh("mkdir -p %s/small/a/b", top);
	snprintf(wdir, sizeof(wdir), "%s", small);
	watch_path(small, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 3);
	sh("mkdir -p %s/small/c/d/e/f/g/h/i/j/k/l/m/n", top);
	take();
	ck_assert_int_eq(n_watch_error, 1); /* once per watch */
	ck_assert_int_eq(watch_error_code, -ENOSPC);
	ck_assert_int_ge(status_int("watch_errors"), 1);
	ck_assert_int_eq(status_int("watches"), 10);
}
END_TEST

START_TEST(test_unmount)
{
	char cmd[4096], mnt[700];
	struct stat st;
	setup_tmpfs();
	snprintf(mnt, sizeof(mnt), "%s/w/ext", top);
	mkdir(mnt, 0755);
	snprintf(cmd, sizeof(cmd),
		 "truncate -s 32M %s/img && mkfs.ext4 -q -F %s/img && mount -o loop %s/img %s",
		 top, top, top, mnt);
	ck_assert_int_eq(system(cmd), 0);
	sh("mkdir -p %s/w/ext/a/b", top);
	ck_assert_int_eq(stat(mnt, &st), 0);
	/* the outer watch does not cross into the ext4 */
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 1);
	watch_path(mnt, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(status_int("watches"), 1 + 4); /* ext, lost+found, a, a/b */
	take();
	ck_assert_int_eq(umount2(mnt, 0), 0);
	take();
	ck_assert_int_eq(n_unmount, 1);
	ck_assert_uint_eq(unmount_dev, (uint64_t)st.st_dev);
	ck_assert_int_eq(status_int("watches"), 0);
	ck_assert_int_eq(status_int("source_watches"), 0);
}
END_TEST

START_TEST(test_root_gone)
{
	char p[1024];
	setup_tmpfs();
	sh("mkdir -p %s/w/r", top);
	at(p, sizeof(p), "r");
	watch_path(p, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	ck_assert_int_eq(rmdir(p), 0);
	ck_assert_str_eq(take(), "delete r dir\n");
	ck_assert_int_eq(status_int("watches"), 0);
	/* a root renamed where nothing watches its parent: it is gone too */
	sh("mkdir -p %s/w/r2/in", top);
	at(p, sizeof(p), "r2");
	watch_path(p, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	mv("r2", "r3");
	ck_assert_str_eq(take(), "delete r2 dir renamed\n");
}
END_TEST

START_TEST(test_pseudo_and_local_only)
{
	setup_tmpfs();
	int fd = open("/proc", O_RDONLY | O_DIRECTORY);
	struct source_watch *w = NULL;
	struct source_watch_info info = { 0 };
	const char *reason = NULL;
	ck_assert_int_eq(src->ops->watch(src, fd, "/proc", 0, NULL, 0, &w, &info, &reason), -EXDEV);
	ck_assert_ptr_nonnull(reason);
	close(fd);

	sh("mkdir -p %s/lower %s/upper %s/work %s/ov", top, top, top, top);
	char opts[2000], ov[700];
	snprintf(opts, sizeof(opts), "lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", top, top,
		 top);
	snprintf(ov, sizeof(ov), "%s/ov", top);
	ck_assert_int_eq(mount("overlay", ov, "overlay", 0, opts), 0);
	fd = open(ov, O_RDONLY | O_DIRECTORY);
	reason = NULL;
	ck_assert_int_eq(src->ops->watch(src, fd, ov, 0, NULL, 0, &w, &info, &reason), 0);
	ck_assert(info.flags & FSNOTE_FLAG_LOCAL_ONLY);
	ck_assert_ptr_nonnull(reason);
	free(info.root);
	close(fd);
	src->ops->unwatch(src, w);
}
END_TEST

START_TEST(test_interest)
{
	char p[1024];
	setup_tmpfs();
	write_file("f", "x");
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	src->ops->set_interest(src, FSNOTE_EV_ALL_MASK);
	at(p, sizeof(p), "f");
	int fd = open(p, O_RDONLY);
	char c;
	ck_assert_int_eq(read(fd, &c, 1), 1);
	close(fd);
	ck_assert_str_eq(take(), "open f\naccess f\n");
	/* and back: open and access are no longer asked of the kernel */
	src->ops->set_interest(src, FSNOTE_EV_DEFAULT_MASK);
	fd = open(p, O_RDONLY);
	ck_assert_int_eq(read(fd, &c, 1), 1);
	close(fd);
	ck_assert_str_eq(take(), "");
	ck_assert_uint_eq(src->ops->features(src), FSNOTE_FEATURE_INOTIFY);
}
END_TEST

static double setup_time(int n_dirs)
{
	char cmd[4096];
	struct timespec a, b;
	/* n_dirs below w: 100 per level-1 directory */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && for i in $(seq 1 %d); do echo d$i; for j in $(seq 1 99); do echo d$i/e$j; done; done | xargs mkdir",
		 wdir, n_dirs / 100);
	ck_assert_int_eq(system(cmd), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	watch_path(wdir, SOURCE_WATCH_RECURSIVE, NULL, 0, NULL, NULL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ck_assert_int_eq(status_int("watches"), n_dirs + 1);
	double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	fprintf(stderr, "check-source-inotify: %d directories watched in %.3f s\n", n_dirs, t);
	return t;
}

/* The time is printed, and measured for real by bench/run (setup); the
 * bounds here only catch a walk gone quadratic, not a slow or busy machine
 * (a timed unit test would fail by load, not by a defect). */
START_TEST(test_setup_10k)
{
	setup_tmpfs();
	ck_assert(setup_time(10000) < 10.0);
}
END_TEST

START_TEST(test_setup_100k)
{
	enter_namespace();
	ck_assert_int_eq(mount("tmpfs", top, "tmpfs", 0, "size=512m,nr_inodes=400k"), 0);
	start();
	ck_assert(setup_time(100000) < 60.0);
	/* and the whole table goes with one unwatch */
	src->ops->unwatch(src, watches[0]);
	n_watches = 0;
	ck_assert_int_eq(status_int("watches"), 0);
}
END_TEST

/* Frees what a test left, so that the sanitizer build checks the
 * destructor and finds any leak. */
static void teardown(void)
{
	src = source_free(src);
	if (base)
		event_base_free(base);
	base = NULL;
	free(got);
	got = NULL;
}

static Suite *inotify_suite(void)
{
	Suite *s = suite_create("source-inotify");
	TCase *tc = tcase_create("kernel");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_tree_tmpfs);
	tcase_add_test(tc, test_tree_ext4);
	tcase_add_test(tc, test_loop_and_timer);
	tcase_add_test(tc, test_mkdir_race);
	tcase_add_test(tc, test_shared);
	tcase_add_test(tc, test_nested_children_only);
	tcase_add_test(tc, test_children_only);
	tcase_add_test(tc, test_excludes);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_unmount);
	tcase_add_test(tc, test_root_gone);
	tcase_add_test(tc, test_pseudo_and_local_only);
	tcase_add_test(tc, test_interest);
	tcase_add_test(tc, test_setup_10k);
	tcase_add_test(tc, test_setup_100k);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "check-source-inotify: needs root\n");
		return 77;
	}
	if (!mkdtemp(scratch))
		return 99;
	SRunner *sr = srunner_create(inotify_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", scratch);
	if (system(cmd) != 0)
		failed++;
	return failed ? 1 : 0;
}
