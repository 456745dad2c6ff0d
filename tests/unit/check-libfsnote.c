/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-libfsnote.c - libfsnote against the real fsnoted and the real
 * kernel.
 *
 * The program enters a private mount namespace, mounts a private tmpfs and
 * starts one fsnoted on a private socket for the tests that share it; each
 * test works in a directory of its own.  Tests that kill and restart a
 * daemon start their own on a socket of their own, so that the shared one
 * is never disturbed.  The tests of batch reads and of FIELDS (the
 * library's, and which fields fsnotectl watch asks for) talk to a stand-in
 * daemon instead, which sends exactly the records (and the broken frames)
 * they need and reports what it received.  Needs root (it also
 * acts as nobody); exits 77 otherwise.
 *
 *     check-libfsnote [fanotify|inotify]
 *
 * (check-libfsnote-inotify is the same program with inotify as its default.)
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "fsnote.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static char base_dir[] = "/tmp/fsnoted-check-libfsnote.XXXXXX";
static char sock_path[256], tree_dir[256], cfg_path[256];
static const char *backend;
static pid_t shared_daemon;

/* --- daemons ------------------------------------------------------------------ */

static void set_sun(struct sockaddr_un *sun, const char *path)
{
	size_t len = strlen(path);
	ck_assert_uint_lt(len, sizeof(sun->sun_path));
	memcpy(sun->sun_path, path, len + 1);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0)
		return -1;
	int r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	return r;
}

/* Starts fsnoted on @sock after @delay_ms; with @wait, returns once it
 * listens.  Returns its pid, or -1. */
static pid_t spawn_daemon(const char *sock, int delay_ms, bool wait)
{
	char exe[1024];
	const char *top = getenv("abs_top_builddir");

	snprintf(exe, sizeof(exe), "%s/daemon/fsnoted", top ? top : ".");
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (delay_ms)
			usleep((useconds_t)delay_ms * 1000);
		const char *level = getenv("FSNOTED_LOG") ? getenv("FSNOTED_LOG") : "warning";
		if (backend)
			execl(exe, exe, "--foreground", "--socket", sock, "--config", cfg_path,
			      "--log-level", level, "--backend", backend, (char *)NULL);
		else
			execl(exe, exe, "--foreground", "--socket", sock, "--config", cfg_path,
			      "--log-level", level, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; wait && i < 500; i++) {
		if (try_connect(sock) == 0)
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return wait ? -1 : pid;
}

static void stop_daemon(pid_t pid, int sig)
{
	kill(pid, sig);
	waitpid(pid, NULL, 0);
}

/* A fresh directory of the test's own under the watched tree. */
static void make_dir(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s.XXXXXX", tree_dir, name);
	ck_assert_ptr_nonnull(mkdtemp(buf));
	ck_assert_int_eq(chmod(buf, 0755), 0);
}

static void touch(const char *dir, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static fsnote *connect_shared(void)
{
	fsnote *h = NULL;
	int r = fsnote_connect(sock_path, &h);
	ck_assert_msg(r == 0, "connect: %s", strerror(-r));
	return h;
}

/* Everything readable right now, after a flush barrier on @sub. */
static size_t drain(fsnote *h, uint32_t sub, fsnote_event **evs, size_t max)
{
	uint64_t id;
	size_t n = 0;
	fsnote_event *e;
	int r;

	r = fsnote_flush(h, sub, &id);
	ck_assert_msg(r == 0, "flush: %s (%s)", strerror(-r), fsnote_last_error(h));
	while ((r = fsnote_read(h, 0, &e)) == 0) {
		if (n < max)
			evs[n++] = e;
		else
			fsnote_event_free(e);
	}
	ck_assert_int_eq(r, -EAGAIN);
	return n;
}

static void free_all(fsnote_event **evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fsnote_event_free(evs[i]);
}

/* The first event of @type whose path ends in /@name, or NULL. */
static fsnote_event *find(fsnote_event **evs, size_t n, uint32_t type, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *p = fsnote_event_path(evs[i], &len);
		if (fsnote_event_type(evs[i]) == type && len > nl && p[len - nl - 1] == '/' &&
		    strcmp(p + len - nl, name) == 0)
			return evs[i];
	}
	return NULL;
}

/* --- tests ----------------------------------------------------------------- */

START_TEST(test_connect)
{
	fsnote *h = NULL;
	char path[300];

	/* nobody there at all */
	snprintf(path, sizeof(path), "%s/run/none.sock", base_dir);
	ck_assert_int_eq(fsnote_connect(path, &h), -ENOENT);
	ck_assert_ptr_null(h);

	/* a socket nobody listens on */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(path, sizeof(path), "%s/run/deaf.sock", base_dir);
	set_sun(&sun, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(fsnote_connect(path, &h), -ECONNREFUSED);
	ck_assert_ptr_null(h);
	close(fd);
	unlink(path);

	/* $FSNOTE_SOCKET when no path is given */
	bool open_before[256];
	for (int i = 0; i < 256; i++)
		open_before[i] = fcntl(i, F_GETFD) >= 0;
	setenv("FSNOTE_SOCKET", sock_path, 1);
	ck_assert_int_eq(fsnote_connect(NULL, &h), 0);
	ck_assert_str_eq(fsnote_socket_path(h), sock_path);
	ck_assert_str_ne(fsnote_server_version(h), "");
	ck_assert(strcmp(fsnote_backend(h), "fanotify") == 0 || strcmp(fsnote_backend(h), "inotify") == 0);
	if (backend)
		ck_assert_str_eq(fsnote_backend(h), backend);
	ck_assert(fsnote_features(h) & FSNOTE_HAS_FLUSH);
	ck_assert_str_eq(fsnote_last_error(h), "");
	/* every descriptor the library owns is close-on-exec */
	int flags = fcntl(fsnote_fd(h), F_GETFD);
	ck_assert(flags >= 0 && (flags & FD_CLOEXEC));
	int opened = 0;
	for (int i = 0; i < 256; i++) {
		int f = fcntl(i, F_GETFD);
		if (f < 0 || open_before[i])
			continue;
		opened++;
		ck_assert_msg(f & FD_CLOEXEC, "descriptor %d would be inherited by exec", i);
	}
	ck_assert_int_ge(opened, 1);
	ck_assert_ptr_null(fsnote_close(h));
	ck_assert_ptr_null(fsnote_close(NULL));
	unsetenv("FSNOTE_SOCKET");
}
END_TEST

START_TEST(test_events)
{
	char dir[300], path[400], dest[400];
	fsnote_event *evs[256];
	uint32_t sub;
	struct stat st;
	uint64_t t0 = (uint64_t)time(NULL) * 1000000000u;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "events");
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	ck_assert_uint_ne(sub, 0);
	ck_assert_str_eq(fsnote_sub_root(h, sub), dir);
	ck_assert_ptr_nonnull(fsnote_sub_backend(h, sub));
	ck_assert_uint_ne(fsnote_sub_start_id(h, sub), 0);
	ck_assert_uint_eq(fsnote_sub_last_id(h, sub), 0);

	snprintf(path, sizeof(path), "%s/a", dir);
	snprintf(dest, sizeof(dest), "%s/b", dir);
	touch(dir, "a");
	ck_assert_int_eq(stat(path, &st), 0);
	/* the daemon learns an object's attributes when it reads the event, by
	 * name: let it read this one before the name is used again */
	size_t n = drain(h, sub, evs, 256);
	ck_assert_int_eq(rename(path, dest), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(unlink(dest), 0);
	n += drain(h, sub, evs + n, 256 - n);
	fsnote_event *c = find(evs, n, FSNOTE_CREATE, "a");
	ck_assert_msg(c, "no create event (%zu events)", n);
	size_t len;
	ck_assert_str_eq(fsnote_event_path(c, &len), path);
	ck_assert_uint_eq(len, strlen(path));
	ck_assert_uint_eq(fsnote_event_sub_id(c), sub);
	ck_assert(!fsnote_event_is_dir(c));
	ck_assert_ptr_null(fsnote_event_dest(c, NULL));
	ck_assert_uint_ge(fsnote_event_time_ns(c), t0);
	/* root sees the actor's pid where the source knows it (inotify does not) */
	if (strcmp(fsnote_sub_backend(h, sub), "fanotify") == 0)
		ck_assert_uint_eq(fsnote_event_pid(c), (uint32_t)getpid());
	else
		ck_assert(fsnote_event_pid(c) == 0 || fsnote_event_pid(c) == (uint32_t)getpid());
	uint64_t v64;
	uint32_t v32;
	if (fsnote_event_ino(c, false, &v64) == 0)
		ck_assert_uint_eq(v64, st.st_ino);
	if (fsnote_event_dev(c, false, &v64) == 0)
		ck_assert_uint_eq(v64, st.st_dev);
	if (fsnote_event_mode(c, false, &v32) == 0)
		ck_assert_uint_eq(v32 & S_IFMT, S_IFREG);

	fsnote_event *r = find(evs, n, FSNOTE_RENAME, "a");
	ck_assert_msg(r, "no rename event");
	ck_assert_str_eq(fsnote_event_dest(r, &len), dest);
	ck_assert_uint_eq(len, strlen(dest));
	ck_assert_uint_gt(fsnote_event_id(r), fsnote_event_id(c));

	fsnote_event *m = find(evs, n, FSNOTE_CREATE, "a");
	for (size_t i = 0; i < n; i++)
		if (fsnote_event_type(evs[i]) == FSNOTE_CREATE && fsnote_event_is_dir(evs[i]))
			m = evs[i];
	ck_assert_msg(m && fsnote_event_is_dir(m), "no directory create event");
	ck_assert_str_eq(fsnote_event_path(m, NULL), path);

	fsnote_event *d = find(evs, n, FSNOTE_DELETE, "b");
	ck_assert_msg(d, "no delete event");
	ck_assert_uint_gt(fsnote_event_id(d), fsnote_event_id(r));

	/* IDs only grow, and the last handed out is remembered */
	for (size_t i = 1; i < n; i++)
		ck_assert_uint_gt(fsnote_event_id(evs[i]), fsnote_event_id(evs[i - 1]));
	ck_assert_uint_eq(fsnote_sub_last_id(h, sub), fsnote_event_id(evs[n - 1]));
	free_all(evs, n);
	fsnote_close(h);
}
END_TEST

START_TEST(test_events_survive_close)
{
	char dir[300];
	fsnote_event *evs[16];
	uint32_t sub;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "survive");
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	touch(dir, "x");
	size_t n = drain(h, sub, evs, 16);
	ck_assert_uint_ge(n, 1);
	fsnote_close(h);
	/* events belong to the caller, not to the handle */
	ck_assert_ptr_nonnull(find(evs, n, FSNOTE_CREATE, "x"));
	free_all(evs, n);
}
END_TEST

START_TEST(test_children_only)
{
	char dir[300], sub_dir[400];
	fsnote_event *evs[64];
	fsnote_sub_opts *o;
	uint32_t sub;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "children");
	snprintf(sub_dir, sizeof(sub_dir), "%s/deep", dir);
	ck_assert_int_eq(mkdir(sub_dir, 0755), 0);
	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_children(o, true), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	o = fsnote_sub_opts_free(o);
	ck_assert_ptr_null(o);

	touch(sub_dir, "below");
	touch(dir, "child");
	size_t n = drain(h, sub, evs, 64);
	ck_assert_ptr_nonnull(find(evs, n, FSNOTE_CREATE, "child"));
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(!strstr(fsnote_event_path(evs[i], NULL), "below"),
			      "children-only subscription saw %s", fsnote_event_path(evs[i], NULL));
	free_all(evs, n);
	fsnote_close(h);
}
END_TEST

START_TEST(test_events_mask_and_excludes)
{
	char dir[300], nm[400];
	fsnote_event *evs[128];
	fsnote_sub_opts *o;
	uint32_t sub;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "excludes");
	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_sub_opts_add_exclude(o, "node_modules"), 0);
	ck_assert_int_eq(fsnote_sub_opts_add_exclude(o, "*.tmp"), 0);
	ck_assert_int_eq(fsnote_sub_opts_add_exclude(o, ""), -EINVAL);
	ck_assert_int_eq(fsnote_sub_opts_set_events(o, 0), -EINVAL);
	ck_assert_int_eq(fsnote_sub_opts_set_events(o, UINT64_C(1) << 40), -EINVAL);
	ck_assert_int_eq(fsnote_sub_opts_set_events(o, FSNOTE_MASK(FSNOTE_CREATE)), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_latency_us(o, 0), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_batch(o, 1), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_ring_depth(o, 1024), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	fsnote_sub_opts_free(o);

	snprintf(nm, sizeof(nm), "%s/node_modules", dir);
	ck_assert_int_eq(mkdir(nm, 0755), 0);
	touch(nm, "pkg.js");
	touch(dir, "scratch.tmp");
	touch(dir, "kept.txt");
	char kept[400];
	snprintf(kept, sizeof(kept), "%s/kept.txt", dir);
	ck_assert_int_eq(unlink(kept), 0);
	size_t n = drain(h, sub, evs, 128);
	ck_assert_ptr_nonnull(find(evs, n, FSNOTE_CREATE, "kept.txt"));
	for (size_t i = 0; i < n; i++) {
		const char *p = fsnote_event_path(evs[i], NULL);
		ck_assert_msg(!strstr(p, "node_modules") && !strstr(p, ".tmp"), "excluded %s seen", p);
		/* the mask said create only (dropped records always come) */
		ck_assert(fsnote_event_type(evs[i]) == FSNOTE_CREATE ||
			  fsnote_event_type(evs[i]) == FSNOTE_DROPPED);
	}
	free_all(evs, n);
	fsnote_close(h);
}
END_TEST

START_TEST(test_unsubscribe)
{
	char one[300], two[300];
	fsnote_event *evs[64];
	uint32_t s1, s2;
	uint64_t id;
	fsnote *h = connect_shared();

	make_dir(one, sizeof(one), "unsub1");
	make_dir(two, sizeof(two), "unsub2");
	ck_assert_int_eq(fsnote_subscribe(h, one, NULL, &s1), 0);
	ck_assert_int_eq(fsnote_subscribe(h, two, NULL, &s2), 0);
	ck_assert_uint_ne(s1, s2);
	touch(one, "before");
	ck_assert_int_eq(fsnote_unsubscribe(h, s1), 0);
	touch(one, "after");
	touch(two, "other");
	size_t n = drain(h, s2, evs, 64);
	ck_assert_ptr_nonnull(find(evs, n, FSNOTE_CREATE, "other"));
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(fsnote_event_sub_id(evs[i]), s2);
	free_all(evs, n);

	ck_assert_int_eq(fsnote_unsubscribe(h, s1), -ENOENT);
	ck_assert_int_eq(fsnote_flush(h, s1, &id), -ENOENT);
	ck_assert_ptr_null(fsnote_sub_root(h, s1));
	ck_assert_uint_eq(fsnote_sub_start_id(h, s1), 0);
	fsnote_close(h);
}
END_TEST

START_TEST(test_status_and_ids)
{
	char dir[300], *json = NULL;
	uint64_t a, b, f;
	uint32_t sub;
	fsnote *h = connect_shared();

	ck_assert_int_eq(fsnote_status(h, &json), 0);
	json_error_t err;
	json_t *root = json_loads(json, 0, &err);
	ck_assert_msg(root, "status is not JSON: %s", err.text);
	ck_assert(json_is_object(root));
	ck_assert(json_is_string(json_object_get(root, "version")));
	ck_assert_str_eq(json_string_value(json_object_get(root, "backend")), fsnote_backend(h));
	json_decref(root);
	free(json);

	make_dir(dir, sizeof(dir), "ids");
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	ck_assert_int_eq(fsnote_current_id(h, &a), 0);
	touch(dir, "one");
	ck_assert_int_eq(fsnote_flush(h, sub, &f), 0);
	ck_assert_int_eq(fsnote_current_id(h, &b), 0);
	ck_assert_uint_gt(b, a);
	ck_assert_uint_ge(b, f);

	/* the ID at a time inside the history is a real event's, or just after */
	uint64_t at;
	int r = fsnote_id_at_time(h, (uint64_t)time(NULL) * 1000000000u - 1000000000u, &at);
	ck_assert_msg(r == 0 || r == -ERANGE, "id_at_time: %s", strerror(-r));
	if (r == 0)
		ck_assert_uint_le(at, b + 1);
	fsnote_close(h);
}
END_TEST

START_TEST(test_flush_barrier)
{
	enum { N = 300 };
	char dir[300], name[32];
	fsnote_event *e;
	uint32_t sub;
	uint64_t id;
	static bool seen[N];
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "flush");
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		touch(dir, name);
	}
	ck_assert_int_eq(fsnote_flush(h, sub, &id), 0);

	/* after the barrier, the descriptor says there is work */
	struct pollfd p = { .fd = fsnote_fd(h), .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 0), 1);

	size_t got = 0;
	int r;
	while ((r = fsnote_read(h, 0, &e)) == 0) {
		size_t len;
		const char *path = fsnote_event_path(e, &len);
		const char *slash = strrchr(path, '/');
		int i;
		if (fsnote_event_type(e) == FSNOTE_CREATE && slash && sscanf(slash, "/f%d", &i) == 1 &&
		    i >= 0 && i < N && !seen[i]) {
			seen[i] = true;
			got++;
		}
		ck_assert_uint_le(fsnote_event_id(e), id);
		fsnote_event_free(e);
	}
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_uint_eq(got, N);
	/* nothing left: the descriptor is quiet again */
	ck_assert_int_eq(poll(&p, 1, 0), 0);
	ck_assert_int_eq(fsnote_read(h, 50, &e), -ETIMEDOUT);
	fsnote_close(h);
}
END_TEST

START_TEST(test_subscribe_errors)
{
	char dir[300], file[400], priv[400];
	uint32_t sub = 12345;
	fsnote_sub_opts *o;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "errors");
	touch(dir, "plain");
	snprintf(file, sizeof(file), "%s/plain", dir);
	ck_assert_int_eq(fsnote_subscribe(h, file, NULL, &sub), -ENOTDIR);
	snprintf(priv, sizeof(priv), "%s/missing", dir);
	ck_assert_int_eq(fsnote_subscribe(h, priv, NULL, &sub), -ENOENT);
	ck_assert_int_eq(fsnote_subscribe(h, NULL, NULL, &sub), -EINVAL);
	ck_assert_uint_eq(sub, 12345); /* untouched on failure */

	/* the daemon refuses what the library cannot check: an O_PATH descriptor */
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fsnote_subscribe_fd(h, fd, NULL, &sub), -EBADF);
	ck_assert_str_ne(fsnote_last_error(h), "");
	close(fd);
	ck_assert_uint_eq(sub, 12345);

	/* a refusal leaves the connection usable */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(fsnote_subscribe_fd(h, fd, NULL, &sub), 0);
	close(fd);
	ck_assert_str_eq(fsnote_sub_root(h, sub), dir);

	/* an absurd ring depth is the daemon's to refuse, with a message */
	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_ring_depth(o, UINT32_MAX), 0);
	uint32_t other = 777;
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &other), -EINVAL);
	ck_assert_uint_eq(other, 777);
	ck_assert_str_ne(fsnote_last_error(h), "");
	fsnote_sub_opts_free(o);

	/* nobody may not watch a directory it cannot open */
	snprintf(priv, sizeof(priv), "%s/private", dir);
	ck_assert_int_eq(mkdir(priv, 0700), 0);
	pid_t pid = fork();
	if (pid == 0) {
		fsnote *u = NULL;
		uint32_t s;
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		if (fsnote_connect(sock_path, &u) < 0)
			_exit(11);
		if (fsnote_subscribe(u, priv, NULL, &s) != -EACCES)
			_exit(12);
		if (fsnote_subscribe(u, dir, NULL, &s) != 0)
			_exit(13);
		/* root-only requests are refused, not fatal */
		uint64_t id;
		if (fsnote_inject(u, FSNOTE_CREATE, file, NULL, 0, &id) != -EPERM)
			_exit(14);
		if (fsnote_current_id(u, &id) != 0)
			_exit(15);
		fsnote_close(u);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nobody child failed at step %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	fsnote_close(h);
}
END_TEST

START_TEST(test_inject)
{
	char dir[300], path[400];
	fsnote_event *evs[16];
	uint32_t sub;
	uint64_t id;
	fsnote *h = connect_shared();

	make_dir(dir, sizeof(dir), "inject");
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	snprintf(path, sizeof(path), "%s/synthetic", dir);
	ck_assert_int_eq(fsnote_inject(h, FSNOTE_CREATE, path, NULL, FSNOTE_F_COMBINED, &id), -EINVAL);
	ck_assert_int_eq(fsnote_inject(h, 0, path, NULL, 0, &id), -EINVAL);
	ck_assert_int_eq(fsnote_inject(h, FSNOTE_CREATE, path, NULL, FSNOTE_F_IS_DIR, &id), 0);
	size_t n = drain(h, sub, evs, 16);
	fsnote_event *e = find(evs, n, FSNOTE_CREATE, "synthetic");
	ck_assert_msg(e, "injected event not delivered");
	ck_assert_uint_eq(fsnote_event_id(e), id);
	ck_assert(fsnote_event_flags(e) & FSNOTE_F_INJECTED);
	ck_assert(fsnote_event_is_dir(e));
	free_all(evs, n);
	fsnote_close(h);
}
END_TEST

START_TEST(test_ring_overflow_is_told)
{
	char dir[300], name[32];
	fsnote_event *e;
	fsnote_sub_opts *o;
	uint32_t sub;
	uint64_t id;
	fsnote *h = connect_shared();
	bool dropped = false;

	make_dir(dir, sizeof(dir), "overflow");
	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_ring_depth(o, 16), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	fsnote_sub_opts_free(o);
	/* far more than the ring holds while we do not read; the socket and
	 * the daemon's output buffer absorb some, the ring the rest */
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		touch(dir, name);
	}
	ck_assert_int_eq(fsnote_flush(h, sub, &id), 0);
	int r;
	size_t n = 0;
	while ((r = fsnote_read(h, 200, &e)) == 0) {
		n++;
		if (fsnote_event_type(e) == FSNOTE_DROPPED) {
			dropped = true;
			ck_assert(fsnote_event_flags(e) & FSNOTE_F_MUST_RESCAN);
			ck_assert_ptr_nonnull(fsnote_event_rescan(e, NULL));
		}
		fsnote_event_free(e);
	}
	ck_assert_int_eq(r, -ETIMEDOUT);
	/* either everything came, or we were told that some did not */
	ck_assert_msg(dropped || n >= 20000, "%zu of 20000 creates and no dropped record", n);
	fsnote_close(h);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(fsnote_type_name(FSNOTE_CREATE), "create");
	ck_assert_str_eq(fsnote_type_name(FSNOTE_RENAME), "rename");
	ck_assert_str_eq(fsnote_type_name(FSNOTE_DROPPED), "dropped");
	ck_assert_ptr_null(fsnote_type_name(0));
	ck_assert_ptr_null(fsnote_type_name(FSNOTE_TYPE_MAX + 1));
	ck_assert_uint_eq(fsnote_type_from_name("close_write"), FSNOTE_CLOSE_WRITE);
	ck_assert_uint_eq(fsnote_type_from_name("nonsense"), 0);
	ck_assert_uint_eq(fsnote_type_from_name(NULL), 0);
	ck_assert_str_eq(fsnote_flag_name(0), "combined");
	ck_assert_str_eq(fsnote_flag_name(2), "must_rescan");
	ck_assert_ptr_null(fsnote_flag_name(31));
	ck_assert_ptr_null(fsnote_flag_name(99));
}
END_TEST

/* A daemon of the test's own on a socket of its own. */
static void private_daemon(char *sock, size_t cap, pid_t *pid)
{
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/run/own.XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, cap, "%s/fsnoted.sock", dir);
	*pid = spawn_daemon(sock, 0, true);
	ck_assert_msg(*pid > 0, "cannot start a private daemon");
}

START_TEST(test_resume_after_restart)
{
	char sock[400], dir[300];
	fsnote_event *e;
	uint32_t sub;
	uint64_t id;
	pid_t pid;
	fsnote *h = NULL;
	int r;

	private_daemon(sock, sizeof(sock), &pid);
	make_dir(dir, sizeof(dir), "resume");
	ck_assert_int_eq(fsnote_connect(sock, &h), 0);
	int fd = fsnote_fd(h);
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	touch(dir, "before");
	ck_assert_int_eq(fsnote_flush(h, sub, &id), 0);
	while (fsnote_read(h, 0, &e) == 0)
		fsnote_event_free(e);
	uint64_t last = fsnote_sub_last_id(h, sub);
	ck_assert_uint_ne(last, 0);

	/* a clean stop says so */
	stop_daemon(pid, SIGTERM);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	r = fsnote_read(h, 1000, &e);
	ck_assert_msg(r == -ESHUTDOWN, "read after stop: %s", strerror(-r));
	ck_assert_str_ne(fsnote_last_error(h), "");
	ck_assert_int_eq(fsnote_read(h, 0, &e), -ESHUTDOWN);
	ck_assert_int_eq(fsnote_current_id(h, &id), -ESHUTDOWN);

	/* what happens while no daemon runs must not be lost silently */
	touch(dir, "meanwhile");
	/* the daemon comes back while we are already retrying */
	pid = spawn_daemon(sock, 300, false);
	ck_assert_int_gt(pid, 0);
	r = fsnote_reconnect(h, 10000);
	ck_assert_msg(r == 0, "reconnect: %s", strerror(-r));
	ck_assert_int_eq(fsnote_fd(h), fd);
	ck_assert_str_eq(fsnote_sub_root(h, sub), dir);
	touch(dir, "after");
	ck_assert_int_eq(fsnote_flush(h, sub, &id), 0);

	bool after = false, meanwhile = false, rescan = false;
	while ((r = fsnote_read(h, 0, &e)) == 0) {
		ck_assert_uint_eq(fsnote_event_sub_id(e), sub);
		const char *path = fsnote_event_path(e, NULL);
		if (fsnote_event_type(e) == FSNOTE_CREATE && strstr(path, "/after"))
			after = true;
		if (fsnote_event_type(e) == FSNOTE_CREATE && strstr(path, "/meanwhile"))
			meanwhile = true;
		if (fsnote_event_type(e) == FSNOTE_DROPPED &&
		    (fsnote_event_flags(e) & FSNOTE_F_MUST_RESCAN))
			rescan = true;
		fsnote_event_free(e);
	}
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_msg(after, "no event after the reconnect");
	ck_assert_msg(meanwhile || rescan, "the gap was neither replayed nor reported");
	ck_assert_uint_gt(fsnote_sub_last_id(h, sub), last);

	/* a hard kill is a lost connection */
	stop_daemon(pid, SIGKILL);
	r = fsnote_read(h, 5000, &e);
	ck_assert_msg(r == -ECONNRESET, "read after kill: %s", strerror(-r));
	/* no daemon at all: the attempt times out and may be made again */
	r = fsnote_reconnect(h, 200);
	ck_assert_msg(r == -ENOENT || r == -ECONNREFUSED, "reconnect to nothing: %s", strerror(-r));
	ck_assert_int_eq(fsnote_read(h, 0, &e), -ECONNRESET);
	pid = spawn_daemon(sock, 0, true);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(fsnote_reconnect(h, 5000), 0);
	touch(dir, "again");
	ck_assert_int_eq(fsnote_flush(h, sub, &id), 0);
	after = false;
	while (fsnote_read(h, 0, &e) == 0) {
		if (strstr(fsnote_event_path(e, NULL), "/again"))
			after = true;
		fsnote_event_free(e);
	}
	ck_assert(after);
	fsnote_close(h);
	stop_daemon(pid, SIGTERM);
}
END_TEST

START_TEST(test_no_sigpipe)
{
	char sock[400];
	pid_t pid;
	fsnote *h = NULL;
	fsnote_event *e;
	uint64_t id;

	/* the default action would kill this process */
	signal(SIGPIPE, SIG_DFL);
	private_daemon(sock, sizeof(sock), &pid);
	ck_assert_int_eq(fsnote_connect(sock, &h), 0);
	stop_daemon(pid, SIGKILL);
	/* writing to a socket whose peer is gone */
	int r = fsnote_current_id(h, &id);
	ck_assert_msg(r == -ECONNRESET, "request to a dead daemon: %s", strerror(-r));
	ck_assert_int_eq(fsnote_read(h, 0, &e), -ECONNRESET);
	ck_assert_int_eq(fsnote_current_id(h, &id), -ECONNRESET);
	fsnote_close(h);
}
END_TEST

/* --- a stand-in daemon ------------------------------------------------------------ */

/* What the stand-in daemon does: it announces @features, answers hello,
 * subscribe (SUB_ID 42, start ID 1000), current-id and unsubscribe, and
 * sends event records numbered on from 1001: @n_events after the first
 * subscribe's reply, then the bytes of @tail as they are; @n_per_request
 * ahead of each current-id reply (events that arrive while a request
 * waits) and @n_after_request after it.  For each subscribe it writes the FIELDS argument
 * it carried (-1 when absent) as an int64_t to @report_fd.  It exits when
 * the client closes. */
struct stand_in {
	uint64_t features;
	size_t n_events, n_per_request, n_after_request;
	const uint8_t *tail;
	size_t tail_len;
	int report_fd;
};

struct out_stream {
	int fd;
	size_t used;
	uint8_t buf[256 * 1024];
};

static void out_flush(struct out_stream *o)
{
	for (size_t off = 0; off < o->used;) {
		ssize_t k = send(o->fd, o->buf + off, o->used - off, MSG_NOSIGNAL);
		if (k <= 0)
			_exit(5);
		off += (size_t)k;
	}
	o->used = 0;
}

static void out_add(struct out_stream *o, const void *p, size_t len)
{
	if (len > sizeof(o->buf) - o->used)
		out_flush(o);
	if (len > sizeof(o->buf))
		_exit(6);
	memcpy(o->buf + o->used, p, len);
	o->used += len;
}

/* The path of stand-in event @id, which tests check events against. */
static void stand_in_path(char *buf, size_t cap, uint64_t id)
{
	snprintf(buf, cap, "/tmp/tree/dir%u/file%llu.txt", (unsigned)(id % 100),
		 (unsigned long long)id);
}

static void out_events(struct out_stream *o, uint64_t *next_id, size_t n)
{
	uint8_t frame[512];
	char path[96];

	for (size_t i = 0; i < n; i++) {
		uint64_t id = (*next_id)++;
		stand_in_path(path, sizeof(path), id);
		struct codec_event ev = {
			.sub_id = 42, .id = id, .type = FSNOTE_EV_CREATE, .time_ns = id * 1000,
			.pid = (uint32_t)id, .path = path, .path_len = strlen(path),
			.st = { .have_dev = true, .have_ino = true, .have_mode = true, .have_uid = true,
				.have_gid = true, .dev = 1, .ino = id, .mode = 0100644 },
		};
		int m = codec_encode_event(frame, sizeof(frame), &ev);
		if (m < 0)
			_exit(1);
		out_add(o, frame, (size_t)m);
	}
}

static void stand_in_serve(int lfd, const struct stand_in *cfg)
{
	static struct out_stream o;
	uint8_t in[8192], frame[512];
	struct codec_record rec;
	struct codec_writer w;
	size_t have = 0;
	uint64_t next_id = 1001;
	bool subscribed = false;
	uint32_t len;

	o.fd = accept(lfd, NULL, NULL);
	if (o.fd < 0)
		_exit(1);
	for (;;) {
		ssize_t k = read(o.fd, in + have, sizeof(in) - have);
		if (k <= 0)
			_exit(k == 0 ? 0 : 2);
		have += (size_t)k;
		while (codec_frame_peek(in, have, sizeof(in), &len) == 1) {
			if (codec_decode(in, len, &rec) < 0)
				_exit(3);
			uint32_t req = 0, fields;
			(void)codec_get_u32(&rec, FSNOTE_ARG_REQ_ID, &req);
			switch (rec.type) {
			case FSNOTE_REQ_HELLO:
				codec_writer_init(&w, frame, sizeof(frame), FSNOTE_REP_HELLO);
				codec_put_u32(&w, FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION);
				codec_put_cstring(&w, FSNOTE_ARG_SERVER_VERSION, "stand-in");
				codec_put_u64(&w, FSNOTE_ARG_FEATURES, cfg->features);
				codec_put_cstring(&w, FSNOTE_ARG_BACKEND, "fanotify");
				break;
			case FSNOTE_REQ_SUBSCRIBE: {
				int64_t got = codec_get_u32(&rec, FSNOTE_ARG_FIELDS, &fields) == 0 ? (int64_t)fields : -1;
				if (cfg->report_fd >= 0 &&
				    write(cfg->report_fd, &got, sizeof(got)) != sizeof(got))
					_exit(7);
				codec_writer_init(&w, frame, sizeof(frame), FSNOTE_REP_SUBSCRIBED);
				codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req);
				codec_put_u32(&w, FSNOTE_ARG_SUB_ID, 42);
				codec_put_u64(&w, FSNOTE_ARG_ID, 1000);
				break;
			}
			case FSNOTE_REQ_CURRENT_ID:
				out_events(&o, &next_id, cfg->n_per_request);
				codec_writer_init(&w, frame, sizeof(frame), FSNOTE_REP_CURRENT_ID);
				codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req);
				codec_put_u64(&w, FSNOTE_ARG_ID, next_id - 1);
				break;
			case FSNOTE_REQ_UNSUBSCRIBE:
				codec_writer_init(&w, frame, sizeof(frame), FSNOTE_REP_UNSUBSCRIBED);
				codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req);
				break;
			default:
				_exit(4);
			}
			int m = codec_writer_finish(&w);
			if (m < 0)
				_exit(4);
			out_add(&o, frame, (size_t)m);
			if (rec.type == FSNOTE_REQ_SUBSCRIBE && !subscribed) {
				subscribed = true;
				out_events(&o, &next_id, cfg->n_events);
				if (cfg->tail_len)
					out_add(&o, cfg->tail, cfg->tail_len);
			}
			if (rec.type == FSNOTE_REQ_CURRENT_ID)
				out_events(&o, &next_id, cfg->n_after_request);
			out_flush(&o);
			memmove(in, in + len, have - len);
			have -= len;
		}
	}
}

/* Starts the stand-in on a socket of its own; *@sock is where it listens
 * and *@dir a directory to subscribe.  Returns its pid. */
static pid_t stand_in_start(const struct stand_in *cfg, char *dir, size_t dir_cap, char *sock,
			    size_t sock_cap)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(dir, dir_cap, "%s/run/stand-in.XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sock, sock_cap, "%s/s", dir);
	set_sun(&sun, sock);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		stand_in_serve(lfd, cfg);
	close(lfd);
	return pid;
}

/* Connects to a stand-in started with @cfg and subscribes with @o. */
static fsnote *stand_in_session(const struct stand_in *cfg, const fsnote_sub_opts *o,
				uint32_t *ret_sub, pid_t *ret_pid)
{
	char dir[300], sock[400];
	fsnote *h = NULL;

	*ret_pid = stand_in_start(cfg, dir, sizeof(dir), sock, sizeof(sock));
	ck_assert_int_eq(fsnote_connect(sock, &h), 0);
	ck_assert_str_eq(fsnote_server_version(h), "stand-in");
	int r = fsnote_subscribe(h, dir, o, ret_sub);
	ck_assert_msg(r == 0, "subscribe: %s (%s)", strerror(-r), fsnote_last_error(h));
	ck_assert_uint_eq(fsnote_sub_start_id(h, *ret_sub), 1000);
	return h;
}

static void stand_in_end(fsnote *h, pid_t pid)
{
	int status;

	fsnote_close(h);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stand-in status %#x", status);
}

/* Checks that @e is stand-in event @id of @sub, whole. */
static void check_stand_in_event(const fsnote_event *e, uint32_t sub, uint64_t id)
{
	char want[96];
	size_t len;
	uint64_t ino;

	stand_in_path(want, sizeof(want), id);
	ck_assert_uint_eq(fsnote_event_id(e), id);
	ck_assert_uint_eq(fsnote_event_sub_id(e), sub);
	ck_assert_uint_eq(fsnote_event_type(e), FSNOTE_CREATE);
	ck_assert_uint_eq(fsnote_event_time_ns(e), id * 1000);
	ck_assert_uint_eq(fsnote_event_pid(e), (uint32_t)id);
	ck_assert_str_eq(fsnote_event_path(e, &len), want);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_ptr_null(fsnote_event_dest(e, NULL));
	ck_assert_int_eq(fsnote_event_ino(e, false, &ino), 0);
	ck_assert_uint_eq(ino, id);
}

/* --- batch reads ------------------------------------------------------------------ */

START_TEST(test_batch_order)
{
	const size_t n = 3000 + 5 + 7;
	struct stand_in cfg = { .n_events = 3000, .n_per_request = 5, .n_after_request = 7,
				.report_fd = -1 };
	const fsnote_event *evs[7];
	uint32_t sub;
	pid_t pid;
	uint64_t id;
	fsnote *h = stand_in_session(&cfg, NULL, &sub, &pid);

	/* what arrives while a request waits is queued; then come the seven
	 * after its reply, from the input buffer */
	ck_assert_int_eq(fsnote_current_id(h, &id), 0);
	ck_assert_uint_eq(id, 1000 + 3000 + 5);
	uint64_t next = 1001;
	size_t batches = 0;
	while (next < 1001 + n) {
		int r = fsnote_read_batch(h, 5000, evs, 7);
		ck_assert_msg(r > 0, "read_batch: %s", strerror(-r));
		ck_assert_int_le(r, 7);
		for (int i = 0; i < r; i++)
			check_stand_in_event(evs[i], sub, next++);
		batches++;
	}
	ck_assert_uint_eq(next, 1001 + n);
	ck_assert_uint_lt(batches, n); /* some batch held more than one */
	ck_assert_uint_eq(fsnote_sub_last_id(h, sub), 1000 + n);
	ck_assert_int_eq(fsnote_read_batch(h, 0, evs, 7), -EAGAIN);
	ck_assert_int_eq(fsnote_read_batch(h, 0, evs, 0), -EINVAL);
	ck_assert_int_eq(fsnote_read_batch(h, 0, NULL, 7), -EINVAL);
	ck_assert_int_eq(fsnote_read_batch(NULL, 0, evs, 7), -EINVAL);

	/* max 1 works too */
	cfg.n_per_request = cfg.n_after_request = 0;
	cfg.n_events = 10;
	stand_in_end(h, pid);
	h = stand_in_session(&cfg, NULL, &sub, &pid);
	for (id = 1001; id <= 1010; id++) {
		ck_assert_int_eq(fsnote_read_batch(h, 5000, evs, 1), 1);
		check_stand_in_event(evs[0], sub, id);
	}
	stand_in_end(h, pid);
}
END_TEST

START_TEST(test_batch_validity)
{
	struct stand_in cfg = { .n_events = 100, .n_per_request = 10, .report_fd = -1 };
	const fsnote_event *evs[50], *evs2[200];
	uint32_t sub;
	pid_t pid;
	uint64_t id;
	fsnote *h = stand_in_session(&cfg, NULL, &sub, &pid);

	int n = fsnote_read_batch(h, 5000, evs, 50);
	ck_assert_int_gt(n, 0);
	/* a request in between queues what arrives meanwhile (the rest of the
	 * hundred and ten more) and leaves the batch alone */
	ck_assert_int_eq(fsnote_current_id(h, &id), 0);
	ck_assert_uint_eq(id, 1110);
	for (int i = 0; i < n; i++)
		check_stand_in_event(evs[i], sub, 1001 + (uint64_t)i);

	/* the next batch goes on in order, from the queue */
	uint64_t next = 1001 + (uint64_t)n;
	while (next <= 1110) {
		int r = fsnote_read_batch(h, 5000, evs2, 200);
		ck_assert_msg(r > 0, "read_batch: %s", strerror(-r));
		for (int i = 0; i < r; i++)
			check_stand_in_event(evs2[i], sub, next++);
	}
	ck_assert_int_eq(fsnote_read_batch(h, 0, evs2, 200), -EAGAIN);
	stand_in_end(h, pid);
}
END_TEST

START_TEST(test_batch_mixed_with_read)
{
	struct stand_in cfg = { .n_events = 400, .n_per_request = 4, .n_after_request = 2,
				.report_fd = -1 };
	const fsnote_event *evs[16];
	fsnote_event *e;
	uint32_t sub;
	pid_t pid;
	uint64_t id, next = 1001;
	fsnote *h = stand_in_session(&cfg, NULL, &sub, &pid);

	for (int round = 0; next < 1001 + 400 + 6 * 5; round++) {
		switch (round % 3) {
		case 0: {
			ck_assert_int_eq(fsnote_read(h, 5000, &e), 0);
			check_stand_in_event(e, sub, next++);
			/* the caller's own event outlives the batch that follows */
			int r = fsnote_read_batch(h, 5000, evs, 16);
			ck_assert_int_gt(r, 0);
			check_stand_in_event(e, sub, next - 1);
			fsnote_event_free(e);
			for (int i = 0; i < r; i++)
				check_stand_in_event(evs[i], sub, next++);
			break;
		}
		case 1: {
			int r = fsnote_read_batch(h, 5000, evs, 16);
			ck_assert_int_gt(r, 0);
			/* harmless: a batch's events are the handle's */
			ck_assert_ptr_null(fsnote_event_free((fsnote_event *)evs[0]));
			for (int i = 0; i < r; i++)
				check_stand_in_event(evs[i], sub, next++);
			break;
		}
		default:
			if (round < 15)
				ck_assert_int_eq(fsnote_current_id(h, &id), 0);
			ck_assert_int_eq(fsnote_read(h, 5000, &e), 0);
			check_stand_in_event(e, sub, next++);
			fsnote_event_free(e);
			break;
		}
	}
	ck_assert_uint_eq(next, 1001 + 400 + 6 * 5);
	ck_assert_int_eq(fsnote_read_batch(h, 0, evs, 16), -EAGAIN);
	ck_assert_int_eq(fsnote_read(h, 0, &e), -EAGAIN);
	stand_in_end(h, pid);
}
END_TEST

START_TEST(test_batch_malformed)
{
	uint8_t bad[3][512];
	size_t bad_len[3];
	const char *what[3] = { "relative path", "oversized frame", "reserved bits" };
	struct codec_event rel = { .sub_id = 42, .id = 1011, .type = FSNOTE_EV_CREATE,
				   .path = "tree/file", .path_len = 9 };
	struct codec_event ok = { .sub_id = 42, .id = 1011, .type = FSNOTE_EV_CREATE,
				  .path = "/tree/file", .path_len = 10 };

	int m = codec_encode_event(bad[0], sizeof(bad[0]), &rel);
	ck_assert_int_gt(m, 0);
	bad_len[0] = (size_t)m;
	/* a header that announces more than any frame may hold */
	uint32_t huge = FSNOTE_FRAME_MAX + 1;
	m = codec_encode_event(bad[1], sizeof(bad[1]), &ok);
	ck_assert_int_gt(m, 0);
	for (int i = 0; i < 4; i++)
		bad[1][i] = (uint8_t)(huge >> (8 * i));
	bad_len[1] = (size_t)m;
	m = codec_encode_event(bad[2], sizeof(bad[2]), &ok);
	ck_assert_int_gt(m, 0);
	bad[2][6] = 1;
	bad_len[2] = (size_t)m;

	for (int k = 0; k < 3; k++) {
		struct stand_in cfg = { .n_events = 10, .tail = bad[k], .tail_len = bad_len[k],
					.report_fd = -1 };
		const fsnote_event *evs[64];
		fsnote_event *e;
		uint32_t sub;
		pid_t pid;
		uint64_t next = 1001;
		int r;
		fsnote *h = stand_in_session(&cfg, NULL, &sub, &pid);

		/* what came before the bad frame is delivered, then the error */
		while ((r = fsnote_read_batch(h, 5000, evs, 64)) > 0)
			for (int i = 0; i < r; i++)
				check_stand_in_event(evs[i], sub, next++);
		ck_assert_msg(r == -EBADMSG, "%s: %s", what[k], strerror(-r));
		ck_assert_uint_eq(next, 1011);
		/* and it sticks, for either kind of read */
		ck_assert_int_eq(fsnote_read_batch(h, 0, evs, 64), -EBADMSG);
		ck_assert_int_eq(fsnote_read(h, 0, &e), -EBADMSG);
		stand_in_end(h, pid);
	}
}
END_TEST

/* Allocations counted while @counting, to show that batches in a steady
 * stream allocate nothing.  The sanitizers own malloc, so a sanitized
 * build counts through their hooks instead of replacing it. */
static volatile bool counting;
static volatile size_t allocations;

#if SANITIZED
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
					      void (*free_hook)(const volatile void *));

static void count_hook(const volatile void *p, size_t size)
{
	(void)p;
	(void)size;
	if (counting)
		allocations++;
}

static void ignore_free(const volatile void *p)
{
	(void)p;
}

static void count_setup(void)
{
	/* both hooks are required, or neither is installed */
	ck_assert_int_ne(__sanitizer_install_malloc_and_free_hooks(count_hook, ignore_free), 0);
}
#else
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);

void *malloc(size_t size)
{
	if (counting)
		allocations++;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (counting)
		allocations++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	if (counting)
		allocations++;
	return __libc_realloc(p, size);
}

static void count_setup(void)
{
}
#endif

START_TEST(test_batch_allocates_nothing)
{
	const size_t n = 20000, max = 256;
	struct stand_in cfg = { .n_events = n, .report_fd = -1 };
	const fsnote_event *evs[256];
	const fsnote_event *first = NULL;
	fsnote_event *e;
	uint32_t sub;
	pid_t pid;
	uint64_t next = 1001;
	size_t batches = 0, same_start = 0, wrong = 0;
	int r;

	count_setup();
	fsnote *h = stand_in_session(&cfg, NULL, &sub, &pid);

	/* the counter sees the library: fsnote_read() allocates each event */
	counting = true;
	allocations = 0;
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(fsnote_read(h, 5000, &e), 0);
		if (fsnote_event_id(e) != next++)
			wrong++;
		fsnote_event_free(e);
	}
	counting = false;
	ck_assert_uint_ge(allocations, 10);

	/* warm up: the slab and the input buffer reach their size */
	for (int i = 0; i < 16; i++) {
		r = fsnote_read_batch(h, 5000, evs, max);
		ck_assert_int_gt(r, 0);
		for (int k = 0; k < r; k++)
			if (fsnote_event_id(evs[k]) != next++)
				wrong++;
	}
	/* plain comparisons in the counted stretch: a Check assertion is a
	 * write to a pipe, which may allocate */
	counting = true;
	allocations = 0;
	while (next < 1001 + n) {
		r = fsnote_read_batch(h, 5000, evs, max);
		if (r <= 0)
			break;
		if (!first)
			first = evs[0];
		else if (evs[0] == first)
			same_start++;
		for (int k = 0; k < r; k++)
			if (fsnote_event_id(evs[k]) != next++)
				wrong++;
		batches++;
	}
	counting = false;
	ck_assert_msg(r > 0, "read_batch: %s", strerror(-r));
	ck_assert_uint_eq(next, 1001 + n);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_gt(batches, 10);
	ck_assert_msg(allocations == 0, "%zu allocations in %zu batches", allocations, batches);
	/* each batch starts where the last one did: one slab, reused */
	ck_assert_uint_eq(same_start, batches - 1);
	stand_in_end(h, pid);
}
END_TEST

/* --- FIELDS ------------------------------------------------------------------------ */

static int64_t reported_fields(int fd)
{
	int64_t v;
	ck_assert_int_eq(read(fd, &v, sizeof(v)), sizeof(v));
	return v;
}

START_TEST(test_fields)
{
	int report[2];
	char dir[300], sock[400];
	fsnote_sub_opts *o = NULL;
	fsnote *h = NULL;
	uint32_t sub;

	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(o, 4), -EINVAL);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(NULL, FSNOTE_WITH_PID), -EINVAL);
	ck_assert_int_eq(pipe2(report, O_CLOEXEC | O_NONBLOCK), 0);

	/* a daemon with the feature gets FIELDS only when it was set */
	struct stand_in cfg = { .features = FSNOTE_HAS_FIELDS, .report_fd = report[1] };
	pid_t pid = stand_in_start(&cfg, dir, sizeof(dir), sock, sizeof(sock));
	ck_assert_int_eq(fsnote_connect(sock, &h), 0);
	ck_assert_uint_eq(fsnote_features(h) & FSNOTE_HAS_FIELDS, FSNOTE_HAS_FIELDS);
	ck_assert_int_eq(fsnote_subscribe(h, dir, NULL, &sub), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(o, FSNOTE_WITH_PID), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(o, 0), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(o, FSNOTE_WITH_ALL), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	stand_in_end(h, pid);
	ck_assert_int_eq(reported_fields(report[0]), -1);
	ck_assert_int_eq(reported_fields(report[0]), -1);
	ck_assert_int_eq(reported_fields(report[0]), FSNOTE_WITH_PID);
	ck_assert_int_eq(reported_fields(report[0]), 0);
	ck_assert_int_eq(reported_fields(report[0]), FSNOTE_WITH_STAT | FSNOTE_WITH_PID);

	/* a daemon without it is never sent what it would refuse as malformed */
	int64_t v;
	ck_assert_int_eq(read(report[0], &v, sizeof(v)), -1);
	cfg.features = FSNOTE_HAS_FLUSH | FSNOTE_HAS_JOURNAL;
	pid = stand_in_start(&cfg, dir, sizeof(dir), sock, sizeof(sock));
	ck_assert_int_eq(fsnote_connect(sock, &h), 0);
	ck_assert_int_eq(fsnote_sub_opts_set_fields(o, FSNOTE_WITH_STAT), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(strstr(fsnote_last_error(h), "does not support"));
	/* the handle is still good */
	fsnote_sub_opts_free(o);
	ck_assert_int_eq(fsnote_sub_opts_new(&o), 0);
	ck_assert_int_eq(fsnote_subscribe(h, dir, o, &sub), 0);
	ck_assert_str_eq(fsnote_last_error(h), "");
	stand_in_end(h, pid);
	ck_assert_int_eq(reported_fields(report[0]), -1);
	ck_assert_int_eq(read(report[0], &v, sizeof(v)), -1);
	fsnote_sub_opts_free(o);
	close(report[0]);
	close(report[1]);
}
END_TEST

/* Runs "fsnotectl --socket ... watch -q --count 3 @form... DIR" against a
 * stand-in that sends three events and announces @features.  Returns the
 * FIELDS the subscription carried (-1: none) with the output in @out. */
static int64_t fsnotectl_fields(uint64_t features, const char *form, const char *form_arg,
				char *out, size_t cap)
{
	char exe[1024], dir[300], sock[400], out_path[400];
	const char *top = getenv("abs_top_builddir");
	int report[2], status;

	snprintf(exe, sizeof(exe), "%s/client/fsnotectl", top ? top : ".");
	ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
	struct stand_in cfg = { .features = features, .n_events = 3, .report_fd = report[1] };
	pid_t server = stand_in_start(&cfg, dir, sizeof(dir), sock, sizeof(sock));
	close(report[1]);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(126);
		if (form && form_arg)
			execl(exe, exe, "--socket", sock, "watch", "-q", "--count", "3", form, form_arg,
			      dir, (char *)NULL);
		else if (form)
			execl(exe, exe, "--socket", sock, "watch", "-q", "--count", "3", form, dir,
			      (char *)NULL);
		else
			execl(exe, exe, "--socket", sock, "watch", "-q", "--count", "3", dir, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fsnotectl status %#x", status);
	ck_assert_int_eq(waitpid(server, &status, 0), server);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stand-in status %#x", status);
	int64_t fields = reported_fields(report[0]);
	close(report[0]);

	int fd = open(out_path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ssize_t n = read(fd, out, cap - 1);
	ck_assert_int_ge(n, 0);
	out[n] = '\0';
	close(fd);
	return fields;
}

START_TEST(test_fsnotectl_asks_for_what_it_prints)
{
	char out[4096];
	const char *form_arg = NULL;

	/* text prints neither attributes nor pids */
	ck_assert_int_eq(fsnotectl_fields(FSNOTE_HAS_FIELDS, NULL, NULL, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "create"));
	ck_assert_ptr_nonnull(strstr(out, "/tmp/tree/dir3/file1003.txt\n"));
	/* nor do inotifywait's forms */
	form_arg = "%w%f %e";
	ck_assert_int_eq(fsnotectl_fields(FSNOTE_HAS_FIELDS, "--format", form_arg, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "CREATE"));
	/* JSON prints both: the default, which is all */
	ck_assert_int_eq(fsnotectl_fields(FSNOTE_HAS_FIELDS, "--json", NULL, out, sizeof(out)), -1);
	ck_assert_ptr_nonnull(strstr(out, "\"pid\":1003"));
	ck_assert_ptr_nonnull(strstr(out, "\"ino\":1003"));
	/* a daemon without the feature is asked exactly as before */
	ck_assert_int_eq(fsnotectl_fields(FSNOTE_HAS_FLUSH, NULL, NULL, out, sizeof(out)), -1);
	ck_assert_ptr_nonnull(strstr(out, "/tmp/tree/dir3/file1003.txt\n"));
}
END_TEST

/* --- setup ----------------------------------------------------------------------- */

static Suite *libfsnote_suite(bool with_daemon)
{
	Suite *s = suite_create("libfsnote");
	TCase *lib = tcase_create("library");
	tcase_set_timeout(lib, 60);
	tcase_add_test(lib, test_names);
	tcase_add_test(lib, test_batch_order);
	tcase_add_test(lib, test_batch_validity);
	tcase_add_test(lib, test_batch_mixed_with_read);
	tcase_add_test(lib, test_batch_malformed);
	tcase_add_test(lib, test_batch_allocates_nothing);
	tcase_add_test(lib, test_fields);
	tcase_add_test(lib, test_fsnotectl_asks_for_what_it_prints);
	suite_add_tcase(s, lib);
	if (!with_daemon)
		return s;

	TCase *tc = tcase_create("daemon");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_events_survive_close);
	tcase_add_test(tc, test_children_only);
	tcase_add_test(tc, test_events_mask_and_excludes);
	tcase_add_test(tc, test_unsubscribe);
	tcase_add_test(tc, test_status_and_ids);
	tcase_add_test(tc, test_flush_barrier);
	tcase_add_test(tc, test_subscribe_errors);
	tcase_add_test(tc, test_inject);
	tcase_add_test(tc, test_ring_overflow_is_told);
	tcase_add_test(tc, test_resume_after_restart);
	tcase_add_test(tc, test_no_sigpipe);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	char exe[1024], run[200];
	const char *top = getenv("abs_top_builddir");
	int failed;

	backend = argc > 1 ? argv[1] : getenv("FSNOTE_TEST_BACKEND");
#ifdef BACKEND
	if (!backend)
		backend = BACKEND;
#endif
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (it also acts as nobody)\n");
		return 77;
	}
	snprintf(exe, sizeof(exe), "%s/daemon/fsnoted", top ? top : ".");
	bool with_daemon = access(exe, X_OK) == 0;
	if (!with_daemon)
		fprintf(stderr, "%s is not built: only the tests that need no daemon run\n", exe);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "SKIP: cannot make a private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	if (!mkdtemp(base_dir) || mount("fsnoted-check", base_dir, "tmpfs", 0, "mode=0755") < 0) {
		fprintf(stderr, "cannot mount a private tmpfs: %s\n", strerror(errno));
		return 1;
	}
	snprintf(run, sizeof(run), "%s/run", base_dir);
	snprintf(sock_path, sizeof(sock_path), "%s/fsnoted.sock", run);
	snprintf(tree_dir, sizeof(tree_dir), "%s/tree", base_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/fsnoted.json", base_dir);
	if (mkdir(run, 0755) < 0 || mkdir(tree_dir, 0755) < 0) {
		perror("mkdir");
		return 1;
	}
	FILE *f = fopen(cfg_path, "we");
	if (!f) {
		perror(cfg_path);
		return 1;
	}
	fprintf(f, "{\"latency_ms\": 0}\n");
	fclose(f);
	shared_daemon = with_daemon ? spawn_daemon(sock_path, 0, true) : 0;
	if (shared_daemon < 0) {
		fprintf(stderr, "fsnoted did not start\n");
		umount2(base_dir, MNT_DETACH);
		return 1;
	}

	SRunner *sr = srunner_create(libfsnote_suite(with_daemon));
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	if (shared_daemon > 0)
		stop_daemon(shared_daemon, SIGTERM);
	umount2(base_dir, MNT_DETACH);
	rmdir(base_dir);
	/* a run without the daemon tests is a skip, unless something failed */
	return failed ? 1 : with_daemon ? 0 : 77;
}
