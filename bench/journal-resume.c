/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal-resume.c - how long a resume through the journal takes to reach
 * the live stream, and how long time-to-ID lookups take.
 *
 *   journal-resume --since ID DIR
 *   journal-resume --at-lookups N --from NS --to NS
 *
 * The first form subscribes to DIR with since ID, creates DIR/LIVE-<pid>
 * once the subscription is confirmed, and reads until that create arrives
 * live (not flagged history): the replay of everything journaled after ID
 * came first.  It prints the time from the subscribe request to the live
 * event, and how many replayed events and dropped records came before.
 * The second form times N fsnote_id_at_time() calls for times spread over
 * [from, to] and prints the median and the slowest.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsnote.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int lookups(fsnote *h, unsigned n, uint64_t from, uint64_t to)
{
	uint64_t *t = calloc(n, sizeof(*t));
	if (!t || n == 0 || to <= from)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t at = from + (to - from) / n * i, id;
		uint64_t t0 = now_ns();
		int r = fsnote_id_at_time(h, at, &id);
		t[i] = now_ns() - t0;
		if (r < 0) {
			fprintf(stderr, "journal-resume: id_at_time(%" PRIu64 "): %s\n", at, strerror(-r));
			return 1;
		}
	}
	qsort(t, n, sizeof(*t), cmp_u64);
	printf("{\"lookups\":%u,\"p50_ms\":%.3f,\"max_ms\":%.3f}\n", n, t[n / 2] / 1e6,
	       t[n - 1] / 1e6);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "at-lookups", required_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t since = 0, from = 0, to = 0;
	unsigned n_lookups = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			since = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			n_lookups = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			from = strtoull(optarg, NULL, 10);
			break;
		case 't':
			to = strtoull(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	fsnote *h = NULL;
	int r = fsnote_connect(NULL, &h);
	if (r < 0) {
		fprintf(stderr, "journal-resume: connect: %s\n", strerror(-r));
		return 1;
	}
	if (n_lookups)
		return lookups(h, n_lookups, from, to);
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: journal-resume --since ID DIR\n");
		return 2;
	}
	const char *dir = argv[optind];
	char live[4096];
	snprintf(live, sizeof(live), "%s/LIVE-%d", dir, (int)getpid());
	fsnote_sub_opts *o = NULL;
	uint32_t sub;
	fsnote_sub_opts_new(&o);
	fsnote_sub_opts_set_since(o, since);
	fsnote_sub_opts_set_latency_us(o, 0);
	uint64_t t0 = now_ns();
	r = fsnote_subscribe(h, dir, o, &sub);
	if (r < 0) {
		fprintf(stderr, "journal-resume: subscribe: %s\n", fsnote_last_error(h));
		return 1;
	}
	uint64_t t_sub = now_ns();
	int fd = open(live, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	uint64_t replayed = 0, drops = 0, first_replay = 0;
	for (;;) {
		fsnote_event *e = NULL;
		r = fsnote_read(h, 30000, &e);
		if (r < 0) {
			fprintf(stderr, "journal-resume: read: %s\n", strerror(-r));
			return 1;
		}
		uint32_t flags = fsnote_event_flags(e);
		if (fsnote_event_type(e) == FSNOTE_DROPPED)
			drops++;
		else if (flags & FSNOTE_F_HISTORY) {
			if (!replayed)
				first_replay = now_ns();
			replayed++;
		} else if (fsnote_event_type(e) == FSNOTE_CREATE &&
			   strcmp(fsnote_event_path(e, NULL), live) == 0) {
			uint64_t t1 = now_ns();
			printf("{\"replayed\":%" PRIu64 ",\"dropped_records\":%" PRIu64
			       ",\"subscribe_ms\":%.1f,\"first_replay_ms\":%.1f,\"to_live_ms\":%.1f}\n",
			       replayed, drops, (t_sub - t0) / 1e6,
			       first_replay ? (first_replay - t0) / 1e6 : 0.0, (t1 - t0) / 1e6);
			fsnote_event_free(e);
			break;
		}
		fsnote_event_free(e);
	}
	unlink(live);
	fsnote_sub_opts_free(o);
	fsnote_close(h);
	return 0;
}
