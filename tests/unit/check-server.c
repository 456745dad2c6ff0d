/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-server.c - the real fsnoted, driven over its socket with hand-built
 * frames: hostile input, descriptor abuse, limits, and what an unprivileged
 * subscriber may and may not see.
 *
 * The whole test program runs in a private mount namespace on a private
 * tmpfs; one daemon serves every test, and each test checks at the end that
 * the daemon still answers a fresh client (nothing a client does may harm
 * it).  Needs root (it also acts as nobody); exits 77 otherwise.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
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

static char base_dir[] = "/tmp/fsnoted-check-server.XXXXXX";
static char sock_path[100], watch_dir[256], cfg_path[256];
static pid_t daemon_pid;
static const char *daemon_backend = BACKEND;
static uid_t nobody_uid = 65534;
static gid_t nobody_gid = 65534;

static int start_daemon(const char *backend);

/* --- a minimal raw client ------------------------------------------------ */

static int conn(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_fds(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static int read_full(int fd, uint8_t *buf, size_t len, int timeout_ms)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);
		if (r <= 0)
			return -1;
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static uint8_t rbuf[FSNOTE_FRAME_MAX];

/* Reads one frame and decodes it into @rec.  Returns 0, or -1 on EOF,
 * timeout or a frame that does not decode. */
static int recv_rec(int fd, struct codec_record *rec, int timeout_ms)
{
	uint32_t len;
	if (read_full(fd, rbuf, 8, timeout_ms) < 0)
		return -1;
	len = codec_le32(rbuf);
	if (len < 16 || len > FSNOTE_FRAME_MAX || read_full(fd, rbuf + 8, len - 8, timeout_ms) < 0)
		return -1;
	return codec_decode(rbuf, len, rec) == 0 ? 0 : -1;
}

/* True if the peer has closed (EOF within @timeout_ms, after any frames). */
static bool closed_by_peer(int fd, int timeout_ms)
{
	uint8_t b[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, timeout_ms) <= 0)
			return false;
		ssize_t n = read(fd, b, sizeof(b));
		if (n <= 0)
			return true;
	}
}

static int hello(int fd)
{
	uint8_t buf[128];
	struct codec_writer w;
	struct codec_record rec;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_HELLO);
	codec_put_u32(&w, FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION);
	codec_put_cstring(&w, FSNOTE_ARG_CLIENT_NAME, "check-server");
	int n = codec_writer_finish(&w);
	if (send_fds(fd, buf, (size_t)n, NULL, 0) < 0 || recv_rec(fd, &rec, 5000) < 0)
		return -1;
	return rec.type == FSNOTE_REP_HELLO ? 0 : -1;
}

static int connect_hello(void)
{
	int fd = conn();
	if (fd < 0 || hello(fd) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* How long a reply may take: a whole-system subscription on inotify walks
 * every directory of the machine before it is answered. */
static int reply_timeout_ms = 5000;

/* Waits for the reply to @req_id, skipping events; returns its record. */
static int wait_reply(int fd, uint32_t req_id, struct codec_record *rec)
{
	for (;;) {
		uint32_t id = 0;
		if (recv_rec(fd, rec, reply_timeout_ms) < 0)
			return -1;
		if (rec->type == FSNOTE_REC_EVENT)
			continue;
		if (codec_get_u32(rec, FSNOTE_ARG_REQ_ID, &id) == 0 && id == req_id)
			return 0;
		if (rec->type == FSNOTE_REP_ERROR)
			return 0;
	}
}

static int reply_errno(const struct codec_record *rec)
{
	uint32_t e = 0;
	if (rec->type != FSNOTE_REP_ERROR)
		return 0;
	(void)codec_get_u32(rec, FSNOTE_ARG_ERRNO, &e);
	return -(int)e;
}

struct sub_opts {
	uint32_t flags;
	uint64_t since;
	bool has_since;
	uint32_t latency_us, batch, depth;
	uint64_t mask;
	const char *exclude[4];
};

/* Subscribes with @dirfd (or none when -1).  Returns the subscription ID
 * or -errno from the daemon's error reply (-1000 on a broken connection). */
static int subscribe(int fd, int dirfd, const struct sub_opts *o)
{
	uint8_t buf[2048];
	struct codec_writer w;
	struct codec_record rec;
	static uint32_t req = 100;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, ++req);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, o ? o->flags : 0);
	codec_put_u32(&w, FSNOTE_ARG_LATENCY_US, o ? o->latency_us : 0);
	if (o && o->batch)
		codec_put_u32(&w, FSNOTE_ARG_BATCH, o->batch);
	if (o && o->mask)
		codec_put_u64(&w, FSNOTE_ARG_EVENT_MASK, o->mask);
	if (o && o->depth)
		codec_put_u32(&w, FSNOTE_ARG_RING_DEPTH, o->depth);
	if (o && o->has_since)
		codec_put_u64(&w, FSNOTE_ARG_SINCE_ID, o->since);
	for (int i = 0; o && i < 4 && o->exclude[i]; i++)
		codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, o->exclude[i]);
	int n = codec_writer_finish(&w);
	if (send_fds(fd, buf, (size_t)n, &dirfd, dirfd >= 0 ? 1 : 0) < 0)
		return -1000;
	if (wait_reply(fd, req, &rec) < 0)
		return -1000;
	if (rec.type == FSNOTE_REP_ERROR)
		return reply_errno(&rec);
	uint32_t sub = 0;
	(void)codec_get_u32(&rec, FSNOTE_ARG_SUB_ID, &sub);
	return (int)sub;
}

static int subscribe_path(int fd, const char *path, const struct sub_opts *o)
{
	int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	int r = subscribe(fd, dirfd, o);
	close(dirfd);
	return r;
}

static int simple_request(int fd, uint16_t type, uint32_t req, uint32_t sub, struct codec_record *rec)
{
	uint8_t buf[128];
	struct codec_writer w;

	codec_writer_init(&w, buf, sizeof(buf), type);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req);
	if (sub)
		codec_put_u32(&w, FSNOTE_ARG_SUB_ID, sub);
	int n = codec_writer_finish(&w);
	if (send_fds(fd, buf, (size_t)n, NULL, 0) < 0)
		return -1;
	return wait_reply(fd, req, rec);
}

/* One event as the tests look at it. */
struct seen {
	uint32_t type, flags, pid;
	uint64_t id, count, id_first, id_last;
	char path[512], dest[512], rescan[512];
};

/* Sends a flush for @sub and collects every event that arrives before its
 * reply.  Returns the number of events, or -1. */
static int flush_collect(int fd, uint32_t sub, struct seen *out, int max)
{
	uint8_t buf[128];
	struct codec_writer w;
	struct codec_record rec;
	int n = 0;
	static uint32_t req = 5000;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_FLUSH);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, ++req);
	codec_put_u32(&w, FSNOTE_ARG_SUB_ID, sub);
	int len = codec_writer_finish(&w);
	if (send_fds(fd, buf, (size_t)len, NULL, 0) < 0)
		return -1;
	for (;;) {
		if (recv_rec(fd, &rec, 5000) < 0)
			return -1;
		if (rec.type == FSNOTE_REP_FLUSHED)
			return n < max ? n : max; /* what @out holds */
		if (rec.type == FSNOTE_REP_ERROR)
			return -1;
		struct codec_event ev;
		if (rec.type != FSNOTE_REC_EVENT || codec_event_from_record(&rec, &ev) < 0)
			continue;
		if (n < max) {
			struct seen *s = &out[n];
			memset(s, 0, sizeof(*s));
			s->type = ev.type;
			s->flags = ev.flags;
			s->pid = ev.pid;
			s->id = ev.id;
			s->count = ev.count;
			s->id_first = ev.id_first;
			s->id_last = ev.id_last;
			snprintf(s->path, sizeof(s->path), "%.*s", (int)ev.path_len, ev.path);
			if (ev.dest)
				snprintf(s->dest, sizeof(s->dest), "%.*s", (int)ev.dest_len, ev.dest);
			if (ev.rescan)
				snprintf(s->rescan, sizeof(s->rescan), "%.*s", (int)ev.rescan_len, ev.rescan);
		}
		n++;
	}
}

static const struct seen *find(const struct seen *s, int n, uint32_t type, const char *path)
{
	for (int i = 0; i < n; i++)
		if (s[i].type == type && strcmp(s[i].path, path) == 0)
			return &s[i];
	return NULL;
}

static bool any_path_contains(const struct seen *s, int n, const char *needle)
{
	for (int i = 0; i < n; i++)
		if (strstr(s[i].path, needle) || strstr(s[i].dest, needle) || strstr(s[i].rescan, needle))
			return true;
	return false;
}

static void daemon_still_serves(void)
{
	struct codec_record rec;
	int fd = connect_hello();
	ck_assert_msg(fd >= 0, "the daemon no longer accepts clients");
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_STATUS, 1, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_STATUS);
	close(fd);
	ck_assert_int_eq(kill(daemon_pid, 0), 0);
}

static void mkpath(const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", watch_dir, name);
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, "x", 1), 1);
	close(fd);
}

/* Runs @fn as nobody in a child; returns its exit status. */
static int as_nobody(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(nobody_gid, nobody_gid, nobody_gid) < 0 ||
		    setresuid(nobody_uid, nobody_uid, nobody_uid) < 0)
			_exit(99);
		_exit(fn(arg));
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- hostile input ------------------------------------------------------- */

START_TEST(test_garbage_closes_only_that_connection)
{
	int good = connect_hello();
	int bad = conn();
	struct codec_record rec;
	uint8_t junk[64];

	ck_assert_int_ge(good, 0);
	ck_assert_int_ge(bad, 0);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	junk[0] = 40; /* a plausible length, then nonsense */
	junk[1] = junk[2] = junk[3] = 0;
	junk[6] = junk[7] = 0;
	ck_assert_int_eq(send_fds(bad, junk, sizeof(junk), NULL, 0), 0);
	ck_assert_int_eq(recv_rec(bad, &rec, 3000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
	ck_assert(closed_by_peer(bad, 3000));
	close(bad);
	ck_assert_int_eq(simple_request(good, FSNOTE_REQ_STATUS, 7, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_STATUS);
	close(good);
	daemon_still_serves();
}
END_TEST

START_TEST(test_oversized_frame)
{
	int fd = connect_hello();
	uint8_t hdr[8] = { 0x00, 0x00, 0xa0, 0x00, 0x05, 0x01, 0, 0 }; /* 10 MiB status */
	struct codec_record rec;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send_fds(fd, hdr, sizeof(hdr), NULL, 0), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_int_eq(reply_errno(&rec), -EMSGSIZE);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);
	daemon_still_serves();
}
END_TEST

START_TEST(test_zero_and_short_lengths)
{
	static const uint8_t frames[][8] = {
		{ 0, 0, 0, 0, 0x01, 0x01, 0, 0 },   /* zero-length frame */
		{ 15, 0, 0, 0, 0x01, 0x01, 0, 0 },  /* shorter than header + DONE */
		{ 16, 0, 0, 0, 0x01, 0x01, 1, 0 },  /* reserved field set */
	};
	for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
		struct codec_record rec;
		int fd = conn();
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(send_fds(fd, frames[i], 8, NULL, 0), 0);
		ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
		ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
		ck_assert(closed_by_peer(fd, 3000));
		close(fd);
	}
	daemon_still_serves();
}
END_TEST

START_TEST(test_truncated_then_gone)
{
	int fd = connect_hello();
	uint8_t half[12] = { 64, 0, 0, 0, 0x05, 0x01, 0, 0, 0x20, 0, 0, 0 };
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send_fds(fd, half, sizeof(half), NULL, 0), 0);
	close(fd);
	usleep(100000);
	daemon_still_serves();
}
END_TEST

START_TEST(test_unknown_record_and_reply_type)
{
	int fd = connect_hello();
	uint8_t buf[64];
	struct codec_writer w;
	struct codec_record rec;

	ck_assert_int_ge(fd, 0);
	/* a reply type sent by a client is not a request */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_CURRENT_ID);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u64(&w, FSNOTE_ARG_ID, 1);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);

	fd = connect_hello();
	ck_assert_int_ge(fd, 0);
	uint8_t unknown[16] = { 16, 0, 0, 0, 0x77, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	ck_assert_int_eq(send_fds(fd, unknown, sizeof(unknown), NULL, 0), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_int_eq(reply_errno(&rec), -EPROTONOSUPPORT);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);
	daemon_still_serves();
}
END_TEST

START_TEST(test_hello_rules)
{
	uint8_t buf[64];
	struct codec_writer w;
	struct codec_record rec;
	int fd = conn();

	/* wrong version */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_HELLO);
	codec_put_u32(&w, FSNOTE_ARG_VERSION, 99);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_int_eq(reply_errno(&rec), -EPROTONOSUPPORT);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);

	/* a request before hello */
	fd = conn();
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_STATUS, 3, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);

	/* silence: the handshake deadline (500 ms in this test's configuration) */
	fd = conn();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(recv_rec(fd, &rec, 5000), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_eq(reply_errno(&rec), -ETIMEDOUT);
	ck_assert(closed_by_peer(fd, 3000));
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(waited > 0.3 && waited < 3.0, "closed after %.2f s", waited);
	close(fd);
	daemon_still_serves();
}
END_TEST

/* --- descriptor rules ------------------------------------------------------ */

START_TEST(test_opath_and_file_refused)
{
	int fd = connect_hello();
	struct codec_record rec;
	char file[300];

	ck_assert_int_ge(fd, 0);
	int opath = open(watch_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(subscribe(fd, opath, NULL), -EBADF);
	close(opath);
	/* O_DIRECTORY is not required (fsnote-protocol(7)): a plain read-only
	 * descriptor of a directory proves the same access */
	int plain = open(watch_dir, O_RDONLY | O_CLOEXEC);
	ck_assert_int_gt(subscribe(fd, plain, NULL), 0);
	close(plain);
	int wr = open(watch_dir, O_RDWR | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_lt(wr, 0); /* a directory cannot be opened for writing at all */

	mkpath("plainfile", file, sizeof(file));
	touch(file);
	int ffd = open(file, O_RDONLY | O_CLOEXEC);
	ck_assert_int_eq(subscribe(fd, ffd, NULL), -ENOTDIR);
	close(ffd);

	/* no descriptor at all */
	ck_assert_int_eq(subscribe(fd, -1, NULL), -EBADF);
	/* the connection is still good */
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 9, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_CURRENT_ID);
	close(fd);
	unlink(file);
	daemon_still_serves();
}
END_TEST

START_TEST(test_two_descriptors_disconnect)
{
	int fd = connect_hello();
	uint8_t buf[128];
	struct codec_writer w;
	struct codec_record rec;
	int fds[2];

	fds[0] = open(watch_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fds[1] = open(watch_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, fds, 2), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);

	/* a descriptor on a request that takes none */
	fd = connect_hello();
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_STATUS);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 2);
	n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, fds, 1), 0);
	ck_assert_int_eq(recv_rec(fd, &rec, 3000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_ERROR);
	ck_assert(closed_by_peer(fd, 3000));
	close(fd);
	close(fds[0]);
	close(fds[1]);

	/* the daemon kept no descriptor: count what it has open on the tmpfs */
	char proc[64], link[512];
	snprintf(proc, sizeof(proc), "/proc/%d/fd", (int)daemon_pid);
	usleep(100000);
	int dfd = open(proc, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	close(dfd);
	for (int i = 0; i < 1024; i++) {
		char p[80];
		snprintf(p, sizeof(p), "%s/%d", proc, i);
		ssize_t l = readlink(p, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		ck_assert_msg(strncmp(link, watch_dir, strlen(watch_dir)) != 0,
			      "the daemon holds %s open", link);
	}
	daemon_still_serves();
}
END_TEST

/* --- limits ------------------------------------------------------------- */

static int connection_limit_as_nobody(void *arg)
{
	int fds[16];
	struct codec_record rec;
	for (int i = 0; i < 8; i++) {
		fds[i] = connect_hello();
		if (fds[i] < 0) {
			fprintf(stderr, "connection %d refused too early\n", i);
			return 1;
		}
	}
	int extra = conn();
	if (extra < 0 || recv_rec(extra, &rec, 3000) < 0 || reply_errno(&rec) != -EUSERS) {
		fprintf(stderr, "the 9th connection was not refused with EUSERS\n");
		return 2;
	}
	const char *msg;
	if (codec_get_string(&rec, FSNOTE_ARG_MESSAGE, &msg, NULL) < 0 ||
	    !strstr(msg, "too many connections")) {
		fprintf(stderr, "unclear message\n");
		return 3;
	}
	close(extra);
	for (int i = 0; i < 8; i++)
		close(fds[i]);
	return 0;
}

START_TEST(test_per_uid_connection_limit)
{
	/* root keeps its own count: hold a root connection through it */
	int rootfd = connect_hello();
	ck_assert_int_ge(rootfd, 0);
	ck_assert_int_eq(as_nobody(connection_limit_as_nobody, NULL), 0);
	close(rootfd);
	usleep(100000);
	daemon_still_serves();
}
END_TEST

START_TEST(test_ring_depth_limit)
{
	int fd = connect_hello();
	uint8_t buf[128];
	struct codec_writer w;
	struct codec_record rec;
	int dirfd = open(watch_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 77);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	codec_put_u32(&w, FSNOTE_ARG_RING_DEPTH, 100000000);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, &dirfd, 1), 0);
	ck_assert_int_eq(wait_reply(fd, 77, &rec), 0);
	ck_assert_int_eq(reply_errno(&rec), -EINVAL);
	const char *msg;
	ck_assert_int_eq(codec_get_string(&rec, FSNOTE_ARG_MESSAGE, &msg, NULL), 0);
	ck_assert_msg(strstr(msg, "ring_max_depth"), "message: %s", msg);
	close(dirfd);
	close(fd);
}
END_TEST

START_TEST(test_system_subscription_privileged_only)
{
	reply_timeout_ms = 120000;
	int fd = connect_hello();
	struct sub_opts o = { .flags = FSNOTE_SUB_SYSTEM };
	int r = subscribe(fd, -1, &o);
	ck_assert_int_gt(r, 0);
	close(fd);
}
END_TEST

static int system_sub_as_nobody(void *arg)
{
	int fd = connect_hello();
	struct sub_opts o = { .flags = FSNOTE_SUB_SYSTEM };
	int r = subscribe(fd, -1, &o);
	close(fd);
	return r == -EPERM ? 0 : 1;
}

START_TEST(test_system_subscription_refused_for_nobody)
{
	ck_assert_int_eq(as_nobody(system_sub_as_nobody, NULL), 0);
}
END_TEST

/* --- what an unprivileged subscriber sees ------------------------------------ */

struct privacy {
	int ready[2], go[2];
	char root[300];
};

static int privacy_subscriber(void *arg)
{
	struct privacy *p = arg;
	struct seen seen[256];
	char c = 0;
	char want[400];

	int fd = connect_hello();
	int sub = subscribe_path(fd, p->root, NULL);
	if (sub <= 0) {
		fprintf(stderr, "nobody cannot subscribe: %d\n", sub);
		return 1;
	}
	/* the daemon refuses what nobody cannot open: the kernel stops it first */
	char secret[400];
	snprintf(secret, sizeof(secret), "%s/secret", p->root);
	if (open(secret, O_RDONLY | O_DIRECTORY) >= 0) {
		fprintf(stderr, "nobody could open the 0700 directory\n");
		return 2;
	}
	if (write(p->ready[1], "r", 1) != 1 || read(p->go[0], &c, 1) != 1)
		return 3;
	int n = flush_collect(fd, (uint32_t)sub, seen, 256);
	if (n < 0)
		return 4;
	for (int i = 0; i < n && i < 256; i++)
		fprintf(stderr, "nobody saw: %s %s%s%s flags=0x%x pid=%u\n",
			codec_event_type_name(seen[i].type), seen[i].path, seen[i].dest[0] ? " -> " : "",
			seen[i].dest, seen[i].flags, seen[i].pid);
	if (any_path_contains(seen, n, "hidden")) {
		fprintf(stderr, "a name from inside the 0700 directory leaked\n");
		return 5;
	}
	snprintf(want, sizeof(want), "%s/open/visible", p->root);
	const struct seen *s = find(seen, n, FSNOTE_EV_CREATE, want);
	if (!s) {
		fprintf(stderr, "missing create %s\n", want);
		return 6;
	}
	if (s->pid != 0) {
		fprintf(stderr, "root's pid was shown to nobody\n");
		return 7;
	}
	snprintf(want, sizeof(want), "%s/open/movedout", p->root);
	s = find(seen, n, FSNOTE_EV_CREATE, want);
	if (!s || !(s->flags & FSNOTE_FLAG_RENAMED)) {
		fprintf(stderr, "a move out of the secret directory was not a create flagged renamed\n");
		return 8;
	}
	snprintf(want, sizeof(want), "%s/open/movedin", p->root);
	s = find(seen, n, FSNOTE_EV_DELETE, want);
	if (!s || !(s->flags & FSNOTE_FLAG_RENAMED)) {
		fprintf(stderr, "a move into the secret directory was not a delete flagged renamed\n");
		return 9;
	}
	/* second round: the directory is opened up */
	if (write(p->ready[1], "r", 1) != 1 || read(p->go[0], &c, 1) != 1)
		return 10;
	n = flush_collect(fd, (uint32_t)sub, seen, 256);
	snprintf(want, sizeof(want), "%s/secret/nowvisible", p->root);
	if (!find(seen, n, FSNOTE_EV_CREATE, want)) {
		fprintf(stderr, "missing create %s after chmod 0755\n", want);
		return 11;
	}
	close(fd);
	return 0;
}

START_TEST(test_nobody_never_sees_inside_0700)
{
	struct privacy p;
	char path[512], path2[512];
	char c;

	snprintf(p.root, sizeof(p.root), "%s/privacy", watch_dir);
	ck_assert_int_eq(mkdir(p.root, 0755), 0);
	snprintf(path, sizeof(path), "%s/open", p.root);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/secret", p.root);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/secret/movedout", p.root);
	touch(path);
	snprintf(path, sizeof(path), "%s/open/movedin", p.root);
	touch(path);
	ck_assert_int_eq(pipe(p.ready), 0);
	ck_assert_int_eq(pipe(p.go), 0);

	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(nobody_gid, nobody_gid, nobody_gid) < 0 ||
		    setresuid(nobody_uid, nobody_uid, nobody_uid) < 0)
			_exit(99);
		_exit(privacy_subscriber(&p));
	}
	ck_assert_int_eq(read(p.ready[0], &c, 1), 1);
	snprintf(path, sizeof(path), "%s/open/visible", p.root);
	touch(path);
	snprintf(path, sizeof(path), "%s/secret/hidden1", p.root);
	touch(path);
	snprintf(path, sizeof(path), "%s/secret/hidden2", p.root);
	touch(path);
	snprintf(path2, sizeof(path2), "%s/secret/hidden3", p.root);
	ck_assert_int_eq(rename(path, path2), 0);
	snprintf(path, sizeof(path), "%s/secret/movedout", p.root);
	snprintf(path2, sizeof(path2), "%s/open/movedout", p.root);
	ck_assert_int_eq(rename(path, path2), 0);
	snprintf(path, sizeof(path), "%s/open/movedin", p.root);
	snprintf(path2, sizeof(path2), "%s/secret/hidden-movedin", p.root);
	ck_assert_int_eq(rename(path, path2), 0);
	snprintf(path, sizeof(path), "%s/secret/hidden-dir", p.root);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(write(p.go[1], "g", 1), 1);

	ck_assert_int_eq(read(p.ready[0], &c, 1), 1);
	snprintf(path, sizeof(path), "%s/secret", p.root);
	ck_assert_int_eq(chmod(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/secret/nowvisible", p.root);
	touch(path);
	ck_assert_int_eq(write(p.go[1], "g", 1), 1);

	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the unprivileged subscriber failed (status %d)", WEXITSTATUS(status));
	daemon_still_serves();
}
END_TEST

/* --- requests -------------------------------------------------------------- */

START_TEST(test_root_sees_pid_and_flush_barrier)
{
	char dir[300], path[400];
	static struct seen seen[2048];
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/barrier", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "%s/f%03d", dir, i);
		touch(path);
	}
	int n = flush_collect(fd, (uint32_t)sub, seen, 2048);
	ck_assert_int_ge(n, 200);
	for (int i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "%s/f%03d", dir, i);
		const struct seen *s = find(seen, n, FSNOTE_EV_CREATE, path);
		ck_assert_msg(s, "create of %s not delivered before the flush reply", path);
		/* inotify does not say who acted; fanotify does, and root sees it */
		if (strcmp(daemon_backend, "fanotify") == 0)
			ck_assert_uint_eq(s->pid, (uint32_t)getpid());
		else
			ck_assert_uint_eq(s->pid, 0);
	}
	/* IDs strictly increase */
	for (int i = 1; i < n; i++)
		ck_assert_uint_gt(seen[i].id, seen[i - 1].id);
	close(fd);
}
END_TEST

START_TEST(test_rename_dir_then_new_path)
{
	char dir[300], a[400], b[400], f[500];
	struct seen seen[64];
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/dirmove", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(a, sizeof(a), "%s/before", dir);
	snprintf(b, sizeof(b), "%s/after", dir);
	ck_assert_int_eq(mkdir(a, 0755), 0);
	snprintf(f, sizeof(f), "%s/x", a);
	touch(f);
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	ck_assert_int_eq(rename(a, b), 0);
	snprintf(f, sizeof(f), "%s/y", b);
	touch(f);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	const struct seen *s = find(seen, n, FSNOTE_EV_RENAME, a);
	ck_assert_msg(s, "no rename record for %s", a);
	ck_assert_str_eq(s->dest, b);
	ck_assert(s->flags & FSNOTE_FLAG_IS_DIR);
	ck_assert_msg(find(seen, n, FSNOTE_EV_CREATE, f), "create under the renamed directory "
							    "does not carry the new path");
	ck_assert(!any_path_contains(seen, n, "before/y"));
	close(fd);
}
END_TEST

START_TEST(test_children_only_and_excludes)
{
	char dir[300], p[400];
	struct seen seen[64];
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/filters", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub", dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/.git", dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	struct sub_opts children = { .flags = FSNOTE_SUB_CHILDREN };
	struct sub_opts excl = { .exclude = { ".git", "*.tmp" } };
	int sc = subscribe_path(fd, dir, &children);
	int fd2 = connect_hello();
	int se = subscribe_path(fd2, dir, &excl);
	ck_assert_int_gt(sc, 0);
	ck_assert_int_gt(se, 0);
	snprintf(p, sizeof(p), "%s/top", dir);
	touch(p);
	snprintf(p, sizeof(p), "%s/sub/deep", dir);
	touch(p);
	snprintf(p, sizeof(p), "%s/.git/index", dir);
	touch(p);
	snprintf(p, sizeof(p), "%s/sub/x.tmp", dir);
	touch(p);

	int n = flush_collect(fd, (uint32_t)sc, seen, 64);
	snprintf(p, sizeof(p), "%s/top", dir);
	ck_assert(find(seen, n, FSNOTE_EV_CREATE, p));
	ck_assert_msg(!any_path_contains(seen, n, "deep"), "children-only saw a grandchild");

	n = flush_collect(fd2, (uint32_t)se, seen, 64);
	snprintf(p, sizeof(p), "%s/sub/deep", dir);
	ck_assert(find(seen, n, FSNOTE_EV_CREATE, p));
	ck_assert_msg(!any_path_contains(seen, n, ".git"), "an excluded directory leaked");
	ck_assert_msg(!any_path_contains(seen, n, ".tmp"), "an excluded glob leaked");
	close(fd);
	close(fd2);
}
END_TEST

START_TEST(test_since_id_replay_and_rescan)
{
	char dir[300], p[400];
	struct seen seen[64];
	struct codec_record rec;
	uint64_t before;
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/resume", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 4, 0, &rec), 0);
	ck_assert_int_eq(codec_get_u64(&rec, FSNOTE_ARG_ID, &before), 0);
	close(fd); /* the client goes away; events happen */
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/missed%d", dir, i);
		touch(p);
	}
	fd = connect_hello();
	struct sub_opts o = { .has_since = true, .since = before };
	sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	for (int i = 0; i < 5; i++) {
		snprintf(p, sizeof(p), "%s/missed%d", dir, i);
		const struct seen *s = find(seen, n, FSNOTE_EV_CREATE, p);
		ck_assert_msg(s, "missed event %s not replayed", p);
		ck_assert(s->flags & FSNOTE_FLAG_HISTORY);
		ck_assert_uint_gt(s->id, before);
	}
	ck_assert(!find(seen, n, FSNOTE_EV_DROPPED, dir));
	close(fd);

	/* an ID older than the history: a must-rescan record, never silence */
	fd = connect_hello();
	o.since = 1;
	sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_int_ge(n, 1);
	ck_assert_uint_eq(seen[0].type, FSNOTE_EV_DROPPED);
	ck_assert(seen[0].flags & FSNOTE_FLAG_MUST_RESCAN);
	ck_assert_str_eq(seen[0].rescan, dir);
	close(fd);
}
END_TEST

static int inject_as_nobody(void *arg)
{
	uint8_t buf[256];
	struct codec_writer w;
	struct codec_record rec;
	int fd = connect_hello();
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 5);
	codec_put_u32(&w, FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_CREATE);
	codec_put_cstring(&w, FSNOTE_ARG_PATH, "/tmp/x");
	int n = codec_writer_finish(&w);
	if (send_fds(fd, buf, (size_t)n, NULL, 0) < 0 || wait_reply(fd, 5, &rec) < 0)
		return 1;
	return reply_errno(&rec) == -EPERM ? 0 : 2;
}

START_TEST(test_inject)
{
	char dir[300], p[400];
	struct seen seen[16];
	uint8_t buf[512];
	struct codec_writer w;
	struct codec_record rec;
	int fd = connect_hello();

	ck_assert_int_eq(as_nobody(inject_as_nobody, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/inject", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	snprintf(p, sizeof(p), "%s/synthetic", dir);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 6);
	codec_put_u32(&w, FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_MODIFY);
	codec_put_cstring(&w, FSNOTE_ARG_PATH, p);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(wait_reply(fd, 6, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_INJECTED);
	n = flush_collect(fd, (uint32_t)sub, seen, 16);
	const struct seen *s = find(seen, n, FSNOTE_EV_MODIFY, p);
	ck_assert_msg(s, "the injected event did not arrive");
	ck_assert(s->flags & FSNOTE_FLAG_INJECTED);

	/* nobody wants it: it still takes an ID of its own (fsnote-protocol(7)) */
	uint64_t before = 0, got = 0;
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 7, 0, &rec), 0);
	ck_assert_int_eq(codec_get_u64(&rec, FSNOTE_ARG_ID, &before), 0);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 8);
	codec_put_u32(&w, FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_CREATE);
	codec_put_cstring(&w, FSNOTE_ARG_PATH, "/nowhere/watched/at-all");
	n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(fd, buf, (size_t)n, NULL, 0), 0);
	ck_assert_int_eq(wait_reply(fd, 8, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_INJECTED);
	ck_assert_int_eq(codec_get_u64(&rec, FSNOTE_ARG_ID, &got), 0);
	ck_assert_uint_gt(got, before);
	close(fd);
}
END_TEST

START_TEST(test_status_json)
{
	struct codec_record rec;
	const char *text;
	int fd = connect_hello();
	int sub = subscribe_path(fd, watch_dir, NULL);

	ck_assert_int_gt(sub, 0);
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_STATUS, 8, 0, &rec), 0);
	ck_assert_int_eq(codec_get_string(&rec, FSNOTE_ARG_JSON, &text, NULL), 0);
	json_error_t err;
	json_t *root = json_loads(text, 0, &err);
	ck_assert_msg(root, "status is not JSON: %s", err.text);
	ck_assert(json_is_object(json_object_get(root, "pool")));
	ck_assert(json_is_integer(json_object_get(json_object_get(root, "pool"), "max_events")));
	ck_assert(json_is_array(json_object_get(root, "subscribers")));
	ck_assert(json_is_string(json_object_get(root, "backend")));
	ck_assert(json_array_size(json_object_get(root, "subscribers")) >= 1);
	json_decref(root);
	close(fd);
}
END_TEST

/* --- output larger than the high-water mark -------------------------------- */

/* Sends @n STATUS requests (IDs from @first) in a single write. */
static int send_status_batch(int fd, uint32_t first, int n)
{
	uint8_t one[64];
	struct codec_writer w;
	uint8_t *buf = malloc((size_t)n * sizeof(one));
	size_t len = 0;

	if (!buf)
		return -1;
	for (int i = 0; i < n; i++) {
		codec_writer_init(&w, one, sizeof(one), FSNOTE_REQ_STATUS);
		codec_put_u32(&w, FSNOTE_ARG_REQ_ID, first + (uint32_t)i);
		int k = codec_writer_finish(&w);
		memcpy(buf + len, one, (size_t)k);
		len += (size_t)k;
	}
	int r = send_fds(fd, buf, len, NULL, 0);
	free(buf);
	return r;
}

/* A client that pipelines requests whose answers outgrow the output
 * high-water mark (256 KiB: about 177 status replies) gets every answer,
 * in order, and the connection keeps serving afterwards. */
START_TEST(test_pipelined_requests_all_answered)
{
	struct codec_record rec;
	int fd = connect_hello();
	const int n = 400;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(send_status_batch(fd, 1000, n), 0);
	for (int i = 0; i < n; i++) {
		uint32_t id = 0;
		ck_assert_msg(recv_rec(fd, &rec, 5000) == 0, "reply %d of %d never came", i + 1, n);
		ck_assert_uint_eq(rec.type, FSNOTE_REP_STATUS);
		ck_assert_int_eq(codec_get_u32(&rec, FSNOTE_ARG_REQ_ID, &id), 0);
		ck_assert_uint_eq(id, 1000 + (uint32_t)i);
	}
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 9, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_CURRENT_ID);
	close(fd);
	daemon_still_serves();
}
END_TEST

/* A flush has to put every pending event ahead of its reply, however many
 * (2500 creates make several times the high-water mark of records). */
START_TEST(test_flush_many_pending)
{
	char dir[300], p[400];
	static struct seen seen[16];
	int fd = connect_hello();

	/* a long latency window and a batch as deep as the ring keep every
	 * event pending until the flush */
	struct sub_opts o = { .latency_us = 30 * 1000000, .batch = 65536, .depth = 65536 };

	snprintf(dir, sizeof(dir), "%s/manypending", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	for (int i = 0; i < 2500; i++) {
		snprintf(p, sizeof(p), "%s/a-rather-long-file-name-to-fill-the-output-%05d", dir, i);
		touch(p);
	}
	int n = flush_collect(fd, (uint32_t)sub, seen, 16);
	ck_assert_msg(n >= 0, "the flush reply never came");
	/* the connection still serves */
	struct codec_record rec;
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 9, 0, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_CURRENT_ID);
	close(fd);
	daemon_still_serves();
}
END_TEST

/* Connections that asked for more than the high-water mark and then went
 * away without reading are noticed and release their slot: 64 of them,
 * with a limit of 8 per uid, must not lock the uid out. */
static int hung_connections_as_nobody(void *arg)
{
	(void)arg;
	for (int i = 0; i < 64; i++) {
		int fd = -1;
		/* a slot frees once the daemon notices the last close */
		for (int tries = 0; tries < 500 && fd < 0; tries++) {
			fd = connect_hello();
			if (fd < 0)
				usleep(10000);
		}
		if (fd < 0) {
			fprintf(stderr, "connection %d refused: the uid is locked out\n", i);
			return 1;
		}
		if (send_status_batch(fd, 1, 300) < 0)
			return 2;
		/* wait until the daemon has filled the socket, then go */
		struct pollfd p = { .fd = fd, .events = POLLIN };
		(void)poll(&p, 1, 1000);
		close(fd);
	}
	return 0;
}

START_TEST(test_unread_replies_do_not_lock_out)
{
	ck_assert_int_eq(as_nobody(hung_connections_as_nobody, NULL), 0);
	daemon_still_serves();
}
END_TEST

/* --- resume ----------------------------------------------------------------- */

static uint64_t current_id(int fd)
{
	struct codec_record rec;
	uint64_t id = 0;
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_CURRENT_ID, 4, 0, &rec), 0);
	ck_assert_int_eq(codec_get_u64(&rec, FSNOTE_ARG_ID, &id), 0);
	return id;
}

/* The resume's dropped record, if any, means exactly "these IDs are lost":
 * a range that is not reversed, and no record after it (history included)
 * inside it.  Returns the index of the dropped record or -1. */
static int check_resume_drop(const struct seen *seen, int n, uint64_t since)
{
	int drop = -1;
	for (int i = 0; i < n; i++) {
		if (seen[i].type != FSNOTE_EV_DROPPED)
			continue;
		ck_assert_msg(drop < 0, "two dropped records for one resume");
		drop = i;
		ck_assert_msg(seen[i].id_first <= seen[i].id_last, "reversed range %llu..%llu",
			      (unsigned long long)seen[i].id_first, (unsigned long long)seen[i].id_last);
		ck_assert_uint_eq(seen[i].id, seen[i].id_last);
		ck_assert(seen[i].flags & FSNOTE_FLAG_MUST_RESCAN);
		if (since)
			ck_assert_uint_eq(seen[i].id_first, since + 1);
	}
	if (drop >= 0)
		for (int i = drop + 1; i < n; i++)
			ck_assert_msg(seen[i].id > seen[drop].id_last,
				      "record %llu replayed inside the range claimed lost (%llu..%llu)",
				      (unsigned long long)seen[i].id,
				      (unsigned long long)seen[drop].id_first,
				      (unsigned long long)seen[drop].id_last);
	return drop;
}

/* The history holds the delete of a directory that was then made again: a
 * resume on the new directory replays that old delete, which must not end
 * the new, live subscription (and is not its last record). */
START_TEST(test_resume_past_old_root_delete)
{
	char dir[300], p[400];
	static struct seen seen[64];
	int watcher = connect_hello();

	snprintf(dir, sizeof(dir), "%s/reborn", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	/* a watch on the parent all along, so the resume is answered from the
	 * history rather than with a must-rescan */
	int parent = subscribe_path(watcher, watch_dir, NULL);
	ck_assert_int_gt(parent, 0);
	int fd = connect_hello();
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	uint64_t since = current_id(fd);
	ck_assert_int_eq(rmdir(dir), 0);
	ck_assert_int_ge(flush_collect(watcher, (uint32_t)parent, seen, 64), 1);
	close(fd);
	ck_assert_int_eq(mkdir(dir, 0755), 0);

	struct sub_opts o = { .has_since = true, .since = since };
	fd = connect_hello();
	sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_msg(n >= 0, "the resumed subscription was ended by a replayed record");
	check_resume_drop(seen, n, since);
	for (int i = 0; i < n; i++)
		ck_assert_msg(!(seen[i].flags & FSNOTE_FLAG_SUB_ENDED),
			      "a replayed record (type %u, %s) says the subscription ended",
			      seen[i].type, seen[i].path);
	const struct seen *old = find(seen, n, FSNOTE_EV_DELETE, dir);
	ck_assert_msg(old, "the old delete of the root was not replayed");
	ck_assert(old->flags & FSNOTE_FLAG_HISTORY);
	/* still live */
	snprintf(p, sizeof(p), "%s/after", dir);
	touch(p);
	n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_int_ge(n, 1);
	const struct seen *s = find(seen, n, FSNOTE_EV_CREATE, p);
	ck_assert_msg(s, "no live event after the resume");
	ck_assert(!(s->flags & FSNOTE_FLAG_HISTORY));
	struct codec_record rec;
	ck_assert_int_eq(simple_request(fd, FSNOTE_REQ_UNSUBSCRIBE, 12, (uint32_t)sub, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_UNSUBSCRIBED);
	close(fd);
	close(watcher);
}
END_TEST

/* The range of the resume's dropped record: an ID older than the history,
 * and an ID ahead of every ID handed out. */
START_TEST(test_resume_drop_range)
{
	char dir[300], p[400];
	static struct seen seen[64];
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/range", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		touch(p);
	}
	ck_assert_int_ge(flush_collect(fd, (uint32_t)sub, seen, 64), 3);
	uint64_t cur = current_id(fd);

	struct sub_opts o = { .has_since = true, .since = 1 };
	int fd2 = connect_hello();
	int s2 = subscribe_path(fd2, dir, &o);
	ck_assert_int_gt(s2, 0);
	int n = flush_collect(fd2, (uint32_t)s2, seen, 64);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(check_resume_drop(seen, n, 1), 0);
	close(fd2);

	o.since = cur + 1000000;
	fd2 = connect_hello();
	s2 = subscribe_path(fd2, dir, &o);
	ck_assert_int_gt(s2, 0);
	n = flush_collect(fd2, (uint32_t)s2, seen, 64);
	ck_assert_int_ge(n, 1);
	ck_assert_int_eq(check_resume_drop(seen, n, 0), 0);
	ck_assert_uint_ge(seen[0].id_last, cur);
	close(fd2);
	close(fd);
}
END_TEST

/* With resume_linger_ms 0 nothing watches a directory between a
 * disconnect and the resume: the resume must say so (or, on a backend that
 * still saw it, deliver the change), never stay silent. */
START_TEST(test_resume_without_linger_is_never_silent)
{
	char dir[300], p[400];
	static struct seen seen[64];

	snprintf(sock_path, sizeof(sock_path), "%s/run/nolinger.sock", base_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/nolinger.json", base_dir);
	FILE *f = fopen(cfg_path, "w");
	ck_assert(f);
	fprintf(f, "{ \"resume_linger_ms\": 0, \"latency_ms\": 0 }\n");
	fclose(f);
	ck_assert_int_eq(start_daemon(daemon_backend), 0);

	snprintf(dir, sizeof(dir), "%s/nolinger", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int fd = connect_hello();
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	uint64_t since = current_id(fd);
	close(fd);
	/* the daemon has noticed the close once a new connection is served
	 * after it: connections are taken in order */
	fd = connect_hello();
	(void)current_id(fd);
	snprintf(p, sizeof(p), "%s/changed", dir);
	touch(p);

	struct sub_opts o = { .has_since = true, .since = since };
	sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_int_ge(n, 0);
	int drop = check_resume_drop(seen, n, since);
	ck_assert_msg(drop >= 0 || find(seen, n, FSNOTE_EV_CREATE, p),
		      "the resume said nothing about a change made while nothing watched");
	close(fd);
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
}
END_TEST

/* --- reasons ------------------------------------------------------------------ */

/* An event whose path is longer than the protocol carries is dropped with a
 * reason that says so, not one blaming the pool. */
START_TEST(test_path_too_long_reason)
{
	char dir[300], name[256];
	static struct seen seen[64];
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/deep", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	memset(name, 'd', 250);
	name[250] = '\0';
	/* 18 levels of 251 bytes: deeper than FSNOTE_PATH_MAX */
	int cur = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(cur, 0);
	for (int i = 0; i < 18; i++) {
		ck_assert_int_eq(mkdirat(cur, name, 0755), 0);
		int next = openat(cur, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(next, 0);
		close(cur);
		cur = next;
	}
	int sub = subscribe_path(fd, dir, NULL);
	ck_assert_int_gt(sub, 0);
	int f = openat(cur, "file", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(f, 0);
	close(f);
	close(cur);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_int_ge(n, 0);
	const struct seen *drop = NULL;
	for (int i = 0; i < n; i++)
		if (seen[i].type == FSNOTE_EV_DROPPED)
			drop = &seen[i];
	ck_assert_msg(drop, "the event under a too long path was lost silently");
	ck_assert_msg(!(drop->flags & FSNOTE_FLAG_POOL_RECLAIM), "flags 0x%x blame the pool",
		      drop->flags);
	ck_assert_msg(drop->flags & FSNOTE_FLAG_PATH_TOO_LONG, "flags 0x%x", drop->flags);
	close(fd);
	daemon_still_serves();
}
END_TEST

/* --- the daemon's own work ------------------------------------------------- */

/* The daemon opens and reads directories to watch them (a new directory in
 * a watched tree, the root of a new subscription): that is not something
 * the subscriber's tree did, and must not be reported as open or access.
 * A real open after it still is. */
START_TEST(test_own_scans_not_reported)
{
	char dir[300], sub1[400], p[500];
	static struct seen seen[64];
	struct sub_opts o = { .mask = FSNOTE_EV_DEFAULT_MASK | FSNOTE_EV_BIT(FSNOTE_EV_OPEN) |
				      FSNOTE_EV_BIT(FSNOTE_EV_ACCESS) };
	int fd = connect_hello();

	snprintf(dir, sizeof(dir), "%s/ownscan", watch_dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	/* opened by this process before anything watches it */
	snprintf(p, sizeof(p), "%s/pre", dir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	int pre = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(pre, 0);
	int sub = subscribe_path(fd, dir, &o);
	ck_assert_int_gt(sub, 0);
	snprintf(sub1, sizeof(sub1), "%s/new", dir);
	ck_assert_int_eq(mkdir(sub1, 0755), 0);
	snprintf(p, sizeof(p), "%s/new/file", dir);
	touch(p);
	/* a subscription rooted inside: the daemon opens its root too */
	int fd2 = connect_hello();
	ck_assert_int_gt(subscribe(fd2, pre, NULL), 0);
	close(pre);
	int n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_int_ge(n, 2);
	for (int i = 0; i < n; i++)
		ck_assert_msg(!((seen[i].type == FSNOTE_EV_OPEN || seen[i].type == FSNOTE_EV_ACCESS) &&
				(seen[i].flags & FSNOTE_FLAG_IS_DIR)),
			      "the daemon's own scan was reported: %s of %s (pid %u)",
			      seen[i].type == FSNOTE_EV_OPEN ? "open" : "access", seen[i].path, seen[i].pid);
	/* someone else reading the directory is still reported */
	int d = open(sub1, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(d, 0);
	close(d);
	n = flush_collect(fd, (uint32_t)sub, seen, 64);
	ck_assert_msg(find(seen, n, FSNOTE_EV_OPEN, sub1), "a real open of a directory was not reported");
	close(fd2);
	close(fd);
}
END_TEST

/* --- kernel watches per uid ---------------------------------------------------- */

static void make_tree(const char *top, int subdirs)
{
	char p[400];
	ck_assert_int_eq(mkdir(top, 0755), 0);
	for (int i = 0; i < subdirs; i++) {
		snprintf(p, sizeof(p), "%s/d%03d", top, i);
		ck_assert_int_eq(mkdir(p, 0755), 0);
	}
}

static int sub_message_has(int fd, const char *dir, const char *needle)
{
	uint8_t buf[256];
	struct codec_writer w;
	struct codec_record rec;
	const char *msg = "";
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 3);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	int n = codec_writer_finish(&w);
	if (dirfd < 0 || send_fds(fd, buf, (size_t)n, &dirfd, 1) < 0 || wait_reply(fd, 3, &rec) < 0)
		return -1;
	close(dirfd);
	(void)codec_get_string(&rec, FSNOTE_ARG_MESSAGE, &msg, NULL);
	if (rec.type != FSNOTE_REP_ERROR || reply_errno(&rec) != -EDQUOT || !strstr(msg, needle)) {
		fprintf(stderr, "expected EDQUOT mentioning %s, got type 0x%x: %s\n", needle, rec.type, msg);
		return -1;
	}
	return 0;
}

static char quota_dir[300];

static int watch_quota_as_nobody(void *arg)
{
	char a[400], b[400], c[400], p[500];
	static struct seen seen[64];
	(void)arg;

	snprintf(a, sizeof(a), "%s/a", quota_dir);
	snprintf(b, sizeof(b), "%s/b", quota_dir);
	snprintf(c, sizeof(c), "%s/c", quota_dir);
	/* 31 directories: past the limit of 20 at once */
	int fd = connect_hello();
	if (fd < 0 || sub_message_has(fd, c, "max_watches_per_uid") < 0)
		return 1;
	/* 16, then 16 more while the first are live: refused */
	int fa = connect_hello();
	if (fa < 0 || subscribe_path(fa, a, NULL) <= 0)
		return 2;
	if (sub_message_has(fd, b, "max_watches_per_uid") < 0)
		return 3;
	/* once the first subscription only lingers, its watches make room */
	close(fa);
	int sb = -1;
	for (int i = 0; i < 200 && sb <= 0; i++) {
		sb = subscribe_path(fd, b, NULL);
		if (sb <= 0)
			usleep(10000); /* until the daemon has noticed the close */
	}
	if (sb <= 0) {
		fprintf(stderr, "lingering watches were not given up: %d\n", sb);
		return 4;
	}
	/* growing past the limit: the subscriber is told its watch is incomplete */
	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "%s/grown%d", b, i);
		if (mkdir(p, 0755) < 0)
			return 5;
	}
	int n = flush_collect(fd, (uint32_t)sb, seen, 64);
	bool told = false;
	for (int i = 0; i < n; i++)
		told |= seen[i].type == FSNOTE_EV_DROPPED && (seen[i].flags & FSNOTE_FLAG_MUST_RESCAN);
	if (!told) {
		fprintf(stderr, "growth past the limit was not reported (%d records)\n", n);
		return 6;
	}
	close(fd);
	return 0;
}

/* On inotify every directory costs a kernel watch from one limit shared by
 * all users: each uid is charged for the watches its subscriptions add, up
 * to max_watches_per_uid, and its lingering watches give way. */
START_TEST(test_watches_per_uid)
{
	char c[400];

	snprintf(sock_path, sizeof(sock_path), "%s/run/quota.sock", base_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/quota.json", base_dir);
	FILE *f = fopen(cfg_path, "w");
	ck_assert(f);
	fprintf(f, "{ \"max_watches_per_uid\": 20, \"latency_ms\": 0 }\n");
	fclose(f);
	ck_assert_int_eq(start_daemon("inotify"), 0);

	snprintf(quota_dir, sizeof(quota_dir), "%s/quota", watch_dir);
	ck_assert_int_eq(mkdir(quota_dir, 0755), 0);
	char a[400], b[400];
	snprintf(a, sizeof(a), "%s/a", quota_dir);
	snprintf(b, sizeof(b), "%s/b", quota_dir);
	snprintf(c, sizeof(c), "%s/c", quota_dir);
	make_tree(a, 15);
	make_tree(b, 15);
	make_tree(c, 30);
	ck_assert_int_eq(chmod(b, 0777), 0); /* nobody grows it */
	ck_assert_int_eq(as_nobody(watch_quota_as_nobody, NULL), 0);
	/* root is not limited */
	int fd = connect_hello();
	ck_assert_int_gt(subscribe_path(fd, c, NULL), 0);
	close(fd);
	daemon_still_serves();
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
}
END_TEST

static int big_quota_as_nobody(void *arg)
{
	char a[400], b[400];
	(void)arg;

	snprintf(a, sizeof(a), "%s/a", quota_dir);
	snprintf(b, sizeof(b), "%s/b", quota_dir);
	int fa = connect_hello();
	if (fa < 0 || subscribe_path(fa, a, NULL) <= 0)
		return 1;
	close(fa); /* 300 watches linger */
	/* the first slice of B's walk fits beside them, a later one does not:
	 * the lingering watches still give way */
	int fd = connect_hello();
	int sb = -1;
	for (int i = 0; i < 200 && sb <= 0; i++) {
		sb = subscribe_path(fd, b, NULL);
		if (sb <= 0) {
			fprintf(stderr, "subscribe: %d\n", sb);
			usleep(10000);
		}
	}
	close(fd);
	return sb > 0 ? 0 : 2;
}

/* The same when the limit is reached in a later slice of a long walk. */
START_TEST(test_watches_per_uid_during_walk)
{
	char a[400], b[400];

	snprintf(sock_path, sizeof(sock_path), "%s/run/quota2.sock", base_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/quota2.json", base_dir);
	FILE *f = fopen(cfg_path, "w");
	ck_assert(f);
	fprintf(f, "{ \"max_watches_per_uid\": 600, \"latency_ms\": 0 }\n");
	fclose(f);
	ck_assert_int_eq(start_daemon("inotify"), 0);
	snprintf(quota_dir, sizeof(quota_dir), "%s/quota2", watch_dir);
	ck_assert_int_eq(mkdir(quota_dir, 0755), 0);
	snprintf(a, sizeof(a), "%s/a", quota_dir);
	snprintf(b, sizeof(b), "%s/b", quota_dir);
	make_tree(a, 299);
	make_tree(b, 399);
	ck_assert_int_eq(as_nobody(big_quota_as_nobody, NULL), 0);
	daemon_still_serves();
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
}
END_TEST

/* --- a large tree does not stall others ---------------------------------------- */

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* inotify needs a kernel watch per directory, set up by walking the tree:
 * while one client subscribes to 20000 directories, another client's
 * requests are answered between the slices of that walk, not after it. */
START_TEST(test_large_subscribe_does_not_stall_others)
{
	char top[300], p[400];
	uint8_t buf[256];
	struct codec_writer w;
	struct codec_record rec;

	if (strcmp(daemon_backend, "inotify") != 0)
		return; /* fanotify marks whole filesystems: nothing is walked */
	snprintf(top, sizeof(top), "%s/big", watch_dir);
	ck_assert_int_eq(mkdir(top, 0755), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(p, sizeof(p), "%s/p%03d", top, i);
		ck_assert_int_eq(mkdir(p, 0755), 0);
		for (int j = 0; j < 199; j++) {
			snprintf(p, sizeof(p), "%s/p%03d/d%03d", top, i, j);
			ck_assert_int_eq(mkdir(p, 0755), 0);
		}
	}
	int a = connect_hello(), b = connect_hello();
	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	/* A subscribes (the reply is read later), then asks for the current ID:
	 * that reply must come after SUBSCRIBED, as replies keep their order */
	int dirfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 71);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	int n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(a, buf, (size_t)n, &dirfd, 1), 0);
	close(dirfd);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_CURRENT_ID);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 72);
	n = codec_writer_finish(&w);
	ck_assert_int_eq(send_fds(a, buf, (size_t)n, NULL, 0), 0);

	/* B asks again and again until A's reply is there */
	int answered = 0;
	double worst = 0;
	for (uint32_t req = 1000;; req++) {
		struct pollfd pa = { .fd = a, .events = POLLIN };
		if (poll(&pa, 1, 0) == 1)
			break;
		double t0 = now_ms();
		ck_assert_int_eq(simple_request(b, FSNOTE_REQ_CURRENT_ID, req, 0, &rec), 0);
		double dt = now_ms() - t0;
		worst = dt > worst ? dt : worst;
		answered++;
		ck_assert_msg(answered < 1000000, "A's subscription never completed");
	}
	ck_assert_int_eq(recv_rec(a, &rec, 30000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_SUBSCRIBED);
	uint32_t sub = 0;
	ck_assert_int_eq(codec_get_u32(&rec, FSNOTE_ARG_SUB_ID, &sub), 0);
	ck_assert_int_eq(recv_rec(a, &rec, 5000), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REP_CURRENT_ID);
	fprintf(stderr, "other client: %d requests answered while 20000 directories were walked, "
			"worst %.1f ms\n", answered, worst);
	/* one walk in one go answers at most two of them before it is done */
	ck_assert_msg(answered >= 10, "only %d requests answered during the walk", answered);
	/* and the walk is complete: a change in the last directory is seen */
	static struct seen seen[16];
	snprintf(p, sizeof(p), "%s/p099/d198/late", top);
	touch(p);
	n = flush_collect(a, sub, seen, 16);
	ck_assert_msg(find(seen, n, FSNOTE_EV_CREATE, p), "the last directory walked is not watched");
	close(a);
	close(b);
}
END_TEST

/* --- setup ------------------------------------------------------------------ */

static int start_daemon(const char *backend)
{
	char exe[1024];
	const char *top = getenv("abs_top_builddir");

	snprintf(exe, sizeof(exe), "%s/daemon/fsnoted", top ? top : ".");
	if (access(exe, X_OK) != 0) {
		fprintf(stderr, "SKIP: %s not built\n", exe);
		return 77;
	}
	daemon_pid = fork();
	if (daemon_pid == 0) {
		execl(exe, exe, "--foreground", "--socket", sock_path, "--config", cfg_path,
		      "--log-level", getenv("FSNOTED_LOG") ? getenv("FSNOTED_LOG") : "warning",
		      "--backend", backend, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		int fd = conn();
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
			fprintf(stderr, "fsnoted exited at start-up\n");
			return 1;
		}
		usleep(10000);
	}
	fprintf(stderr, "fsnoted did not start listening\n");
	return 1;
}

static Suite *server_suite(void)
{
	Suite *s = suite_create("server");
	TCase *tc = tcase_create("hostile");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_garbage_closes_only_that_connection);
	tcase_add_test(tc, test_oversized_frame);
	tcase_add_test(tc, test_zero_and_short_lengths);
	tcase_add_test(tc, test_truncated_then_gone);
	tcase_add_test(tc, test_unknown_record_and_reply_type);
	tcase_add_test(tc, test_hello_rules);
	tcase_add_test(tc, test_opath_and_file_refused);
	tcase_add_test(tc, test_two_descriptors_disconnect);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_per_uid_connection_limit);
	tcase_add_test(tc, test_ring_depth_limit);
	tcase_add_test(tc, test_system_subscription_privileged_only);
	tcase_add_test(tc, test_system_subscription_refused_for_nobody);
	suite_add_tcase(s, tc);

	tc = tcase_create("events");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_nobody_never_sees_inside_0700);
	tcase_add_test(tc, test_root_sees_pid_and_flush_barrier);
	tcase_add_test(tc, test_rename_dir_then_new_path);
	tcase_add_test(tc, test_children_only_and_excludes);
	tcase_add_test(tc, test_since_id_replay_and_rescan);
	tcase_add_test(tc, test_inject);
	tcase_add_test(tc, test_status_json);
	suite_add_tcase(s, tc);

	tc = tcase_create("resume");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_resume_past_old_root_delete);
	tcase_add_test(tc, test_resume_drop_range);
	tcase_add_test(tc, test_resume_without_linger_is_never_silent);
	suite_add_tcase(s, tc);

	tc = tcase_create("reasons");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_path_too_long_reason);
	tcase_add_test(tc, test_own_scans_not_reported);
	suite_add_tcase(s, tc);

	tc = tcase_create("backpressure");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pipelined_requests_all_answered);
	tcase_add_test(tc, test_flush_many_pending);
	tcase_add_test(tc, test_unread_replies_do_not_lock_out);
	tcase_add_test(tc, test_watches_per_uid);
	tcase_add_test(tc, test_watches_per_uid_during_walk);
	tcase_add_test(tc, test_large_subscribe_does_not_stall_others);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	const char *backend = argc > 1 ? argv[1] : BACKEND;
	daemon_backend = backend;
	struct passwd *pw = getpwnam("nobody");
	int failed, r;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (it also acts as nobody)\n");
		return 77;
	}
	if (pw) {
		nobody_uid = pw->pw_uid;
		nobody_gid = pw->pw_gid;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "SKIP: cannot make a private mount namespace: %s\n", strerror(errno));
		return 77;
	}
	if (!mkdtemp(base_dir) || mount("fsnoted-check", base_dir, "tmpfs", 0, "mode=0755") < 0) {
		fprintf(stderr, "cannot mount a private tmpfs: %s\n", strerror(errno));
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/run/fsnoted.sock", base_dir);
	snprintf(watch_dir, sizeof(watch_dir), "%s/tree", base_dir);
	snprintf(cfg_path, sizeof(cfg_path), "%s/fsnoted.json", base_dir);
	mkdir(watch_dir, 0755);
	/* the daemon's journal stays in the private tmpfs */
	char state[sizeof(base_dir) + 16];
	snprintf(state, sizeof(state), "%s/state", base_dir);
	setenv("STATE_DIRECTORY", state, 1);
	/* these tests hold the memory history to the resume contract of
	 * fsnote-protocol(7); the journal's, across restarts, is
	 * tests/e2e/journal.sh's */
	FILE *f = fopen(cfg_path, "w");
	fprintf(f, "{ \"handshake_timeout_ms\": 500, \"max_connections_per_uid\": 8,\n"
		   "  \"latency_ms\": 0, \"ring_max_depth\": 65536, \"journal\": false }\n");
	fclose(f);
	r = start_daemon(backend);
	if (r != 0)
		return r;

	SRunner *sr = srunner_create(server_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	/* SIGTERM drains and exits 0 */
	kill(daemon_pid, SIGTERM);
	int status = 0;
	waitpid(daemon_pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "fsnoted did not exit cleanly on SIGTERM (status 0x%x)\n", status);
		failed++;
	}
	umount2(base_dir, MNT_DETACH);
	rmdir(base_dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
