/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * flush-barrier.c - proves fsnote_flush() is a sync barrier, for
 * tests/e2e/beyond.sh.
 *
 *     flush-barrier DIR N
 *
 * Subscribes to DIR through libfsnote (socket from $FSNOTE_SOCKET) with a
 * wake-up latency of 5 s and a batch as large as the ring, so that the
 * daemon on its own would hold every event back for seconds.  Creates N/2
 * files, waits 200 ms and counts what is already in hand (the control: it
 * must be fewer than N/2, or the test below would prove nothing); creates
 * the other N/2, calls fsnote_flush() once, and then counts, without
 * waiting at all (fsnote_read() with a zero timeout), the create records
 * for the N files.  "In the subscriber's hands" is exactly that: read by
 * the library before the flush reply, available with no further I/O.
 *
 * Prints one line with the figures; exits 0 when all N creates were in
 * hand and none of their IDs is above the flush's, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsnote.h"

#define RING_DEPTH 65536

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* "f<i>" for a create below @dir: its index, or -1. */
static long file_index(const char *dir, size_t dir_len, const char *path)
{
	char *end;

	if (strncmp(path, dir, dir_len) != 0 || path[dir_len] != '/' || path[dir_len + 1] != 'f')
		return -1;
	long i = strtol(path + dir_len + 2, &end, 10);
	return *end == '\0' && end != path + dir_len + 2 ? i : -1;
}

struct tally {
	const char *dir;
	size_t dir_len;
	unsigned char *seen;    /* one byte per file: its create is in hand */
	long n;
	long in_hand;           /* distinct files whose create was read */
	uint64_t max_id;        /* the highest ID of those creates */
	long others;            /* any other record (dropped would be one) */
	long dropped;
};

/* Takes every record available right now, without waiting. */
static int take_available(fsnote *h, struct tally *t)
{
	for (;;) {
		fsnote_event *e = NULL;
		int r = fsnote_read(h, 0, &e);
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return 0;
		if (r < 0)
			return r;
		const char *p = fsnote_event_path(e, NULL);
		long i = fsnote_event_type(e) == FSNOTE_CREATE && p ? file_index(t->dir, t->dir_len, p) : -1;
		if (i >= 0 && i < t->n) {
			if (!t->seen[i]) {
				t->seen[i] = 1;
				t->in_hand++;
			}
			if (fsnote_event_id(e) > t->max_id)
				t->max_id = fsnote_event_id(e);
		} else {
			t->others++;
			if (fsnote_event_type(e) == FSNOTE_DROPPED)
				t->dropped++;
		}
		fsnote_event_free(e);
	}
}

static int create_files(const char *dir, long from, long to)
{
	char p[4096];

	for (long i = from; i < to; i++) {
		snprintf(p, sizeof(p), "%s/f%ld", dir, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	fsnote *h = NULL;
	fsnote_sub_opts *o = NULL;
	uint32_t sub;
	uint64_t flush_id = 0;
	int r;

	if (argc != 3 || atol(argv[2]) < 2) {
		fprintf(stderr, "usage: flush-barrier DIR N (N >= 2)\n");
		return 2;
	}
	struct tally t = { .dir = argv[1], .dir_len = strlen(argv[1]), .n = atol(argv[2]) };
	t.seen = calloc((size_t)t.n, 1);
	if (!t.seen)
		return 2;

	r = fsnote_connect(NULL, &h);
	if (r < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-r));
		return 1;
	}
	if ((r = fsnote_sub_opts_new(&o)) < 0 || (r = fsnote_sub_opts_set_ring_depth(o, RING_DEPTH)) < 0 ||
	    (r = fsnote_sub_opts_set_latency_us(o, 5000000)) < 0 ||
	    (r = fsnote_sub_opts_set_batch(o, RING_DEPTH)) < 0 ||
	    (r = fsnote_sub_opts_set_events(o, FSNOTE_MASK(FSNOTE_CREATE))) < 0) {
		fprintf(stderr, "options: %s\n", strerror(-r));
		return 1;
	}
	r = fsnote_subscribe(h, t.dir, o, &sub);
	if (r < 0) {
		fprintf(stderr, "subscribe %s: %s: %s\n", t.dir, strerror(-r), fsnote_last_error(h));
		return 1;
	}

	/* control: the daemon holds these back for its 5 s latency */
	long half = t.n / 2;
	if ((r = create_files(t.dir, 0, half)) < 0) {
		fprintf(stderr, "create: %s\n", strerror(-r));
		return 1;
	}
	usleep(200000);
	if ((r = take_available(h, &t)) < 0) {
		fprintf(stderr, "read: %s\n", strerror(-r));
		return 1;
	}
	long control = t.in_hand;

	if ((r = create_files(t.dir, half, t.n)) < 0) {
		fprintf(stderr, "create: %s\n", strerror(-r));
		return 1;
	}
	uint64_t t0 = mono_us();
	r = fsnote_flush(h, sub, &flush_id);
	uint64_t t1 = mono_us();
	if (r < 0) {
		fprintf(stderr, "flush: %s: %s\n", strerror(-r), fsnote_last_error(h));
		return 1;
	}
	if ((r = take_available(h, &t)) < 0) {
		fprintf(stderr, "read: %s\n", strerror(-r));
		return 1;
	}
	printf("control %ld of %ld after 200 ms; after flush %ld of %ld in hand, max id %llu, "
	       "flush id %llu, flush took %llu us, other records %ld (dropped %ld)\n",
	       control, half, t.in_hand, t.n, (unsigned long long)t.max_id,
	       (unsigned long long)flush_id, (unsigned long long)(t1 - t0), t.others, t.dropped);
	bool ok = control < half && t.in_hand == t.n && t.max_id <= flush_id && t.dropped == 0;
	fsnote_sub_opts_free(o);
	fsnote_close(h);
	free(t.seen);
	return ok ? 0 : 1;
}
