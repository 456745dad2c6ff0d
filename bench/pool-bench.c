/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pool-bench.c - how fast events go through the pool and the rings, and
 * what an idle subscriber costs.
 *
 * Each run adds events with pool_add(), pushes every one to every ring
 * (the fan-out of a subscription that matches everything), drops the
 * caller's reference, and every BATCH events drains every ring with
 * ring_peek()/ring_pop() the way a delivering subscriber does.  So each
 * event pays one allocation, N pushes, N pops and its free.  The idle cost
 * is what the allocator hands out (mallinfo2) for 10 000 fresh rings, and
 * the resident set around creating them.
 *
 * Usage: pool-bench [EVENTS]   (default 2 000 000 per run)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsnote-protocol.h"
#include "pool.h"

#define BATCH 64

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long pages = 0, resident = 0;
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * 4;
}

static struct pool *mkpool(void)
{
	/* the daemon's defaults */
	struct pool_limits lim = {
		.max_events = 262144,
		.max_bytes = 64u << 20,
		.history = 65536,
		.coalesce_ns = 1000000000u,
		.first_id = 1,
	};
	struct pool *p;
	if (pool_new(&lim, NULL, &p) < 0) {
		fprintf(stderr, "pool_new failed\n");
		exit(1);
	}
	return p;
}

/* Returns events per second through add + fan-out to @n rings + drain. */
static double run(size_t n, uint64_t events, uint64_t *ret_delivered)
{
	struct pool *p = mkpool();
	struct ring **rings = calloc(n, sizeof(*rings));
	struct ring_config cfg = { .depth = 8192, .batch = BATCH, .latency_us = 0 };
	uint64_t delivered = 0, sum = 0;
	char path[64];

	if (!rings)
		exit(1);
	for (size_t i = 0; i < n; i++)
		if (ring_new(p, &cfg, "/", NULL, &rings[i]) < 0)
			exit(1);
	/* a realistic spread of path lengths; created files, so that nothing
	 * merges and every event is fanned out */
	double t0 = now_s();
	for (uint64_t e = 0; e < events; e++) {
		struct pool_event *ev;
		int len = snprintf(path, sizeof(path), "/home/user/src/project/dir%u/file%llu.c",
				   (unsigned)(e & 15), (unsigned long long)e);
		struct pool_event_init in = {
			.type = FSNOTE_EV_CREATE,
			.pid = 1234,
			.actor_uid = 1000,
			.time_ns = e,
			.dev = 2049,
			.path = path,
			.path_len = (size_t)len,
		};
		if (pool_add(p, &in, e, &ev) != POOL_ADDED) {
			fprintf(stderr, "pool_add failed\n");
			exit(1);
		}
		for (size_t i = 0; i < n; i++)
			(void)ring_push(rings[i], ev, RING_VIEW_FULL);
		pool_event_unref(p, ev);
		if ((e + 1) % BATCH)
			continue;
		for (size_t i = 0; i < n; i++) {
			const struct ring_entry *re;
			ring_woken(rings[i]);
			while ((re = ring_peek(rings[i]))) {
				sum += re->ev->path_len; /* touch it, as the encoder would */
				ring_pop(rings[i]);
				delivered++;
			}
		}
	}
	double dt = now_s() - t0;
	for (size_t i = 0; i < n; i++) {
		struct ring_stats rs;
		ring_get_stats(rings[i], &rs);
		if (rs.dropped) {
			fprintf(stderr, "ring %zu dropped %llu events\n", i,
				(unsigned long long)rs.dropped);
			exit(1);
		}
		ring_free(rings[i]);
	}
	free(rings);
	pool_free(p);
	if (sum == 0)
		fprintf(stderr, "nothing delivered\n");
	*ret_delivered = delivered;
	return (double)events / dt;
}

static void idle_cost(void)
{
	enum { N = 10000 };
	struct pool *p = mkpool();
	struct ring **rings = calloc(N, sizeof(*rings));
	struct ring_config cfg = { .depth = 8192, .batch = 64, .latency_us = 1000 };
	char root[64];

	if (!rings)
		exit(1);
	malloc_trim(0);
	long rss0 = rss_kib();
	struct mallinfo2 m0 = mallinfo2();
	for (int i = 0; i < N; i++) {
		snprintf(root, sizeof(root), "/home/user%d/project", i);
		if (ring_new(p, &cfg, root, NULL, &rings[i]) < 0)
			exit(1);
	}
	struct mallinfo2 m1 = mallinfo2();
	long rss1 = rss_kib();
	printf("idle subscriber: %zu bytes allocated (mallinfo2), %ld bytes resident (RSS), "
	       "over %d rings\n",
	       (m1.uordblks - m0.uordblks) / N, (rss1 - rss0) * 1024 / N, N);
	for (int i = 0; i < N; i++)
		ring_free(rings[i]);
	free(rings);
	pool_free(p);
}

int main(int argc, char **argv)
{
	uint64_t events = argc > 1 ? strtoull(argv[1], NULL, 10) : 2000000;
	static const size_t subs[] = { 1, 10, 100, 1000 };

	printf("%-12s %12s %14s %16s\n", "subscribers", "events", "events/s", "deliveries/s");
	for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
		/* keep each run to a similar amount of work */
		uint64_t n = subs[k] >= 100 ? events / (subs[k] / 10) : events;
		uint64_t delivered;
		if (n < 10 * BATCH)
			n = 10 * BATCH;
		double rate = run(subs[k], n, &delivered);
		printf("%-12zu %12llu %14.0f %16.0f\n", subs[k], (unsigned long long)n, rate,
		       rate * (double)delivered / (double)n);
	}
	idle_cost();
	return 0;
}
