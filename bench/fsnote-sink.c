/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnote-sink.c - fsnoted's side of every benchmark: M subscribers, each its
 * own connection through libfsnote, all watching DIR, all served from one
 * poll() loop in this process.
 *
 *   fsnote-sink [--subs M] [--latency-us L] [--timeout SEC] [--hold] [--fields none|all] [--idle [--per-conn K]] DIR
 *
 * Prints "ready" on stderr once every subscription is confirmed, then counts
 * each subscriber's events by type until every one of them has seen DIR's
 * BENCH-END file created (or the timeout).  Files named lat-<ns> carry their
 * creation time, so the sink reports latency percentiles for them.  With
 * --idle it only subscribes (K subscriptions per connection, so that the
 * cost of a subscription can be told from that of a connection), prints
 * "ready" and waits for SIGTERM.  With --hold it reads nothing until SIGUSR1,
 * so that a backlog builds up in the daemon and "seconds" says how fast it
 * drains.  Prints one JSON object on stdout: per type, the least any
 * subscriber saw (so that a complete run says so for every one of them), and
 * the counted events (create, close_write, rename, delete: what every
 * iteration of the workload must produce) as the least, the most and the sum
 * over subscribers, for figures "each" and in aggregate.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fsnote.h"

struct sub {
	fsnote *h;
	uint32_t id;
	uint64_t by_type[FSNOTE_TYPE_MAX + 1];
	uint64_t records, dropped_lost;
	bool done;
};

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static volatile sig_atomic_t stop, go;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "subs", required_argument, NULL, 'm' },
		{ "latency-us", required_argument, NULL, 'l' },
		{ "timeout", required_argument, NULL, 't' },
		{ "idle", no_argument, NULL, 'i' },
		{ "per-conn", required_argument, NULL, 'k' },
		{ "hold", no_argument, NULL, 'H' },
		{ "fields", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	long m = 1;
	long latency_us = -1; /* -1: the library's and daemon's defaults */
	long fields = -1;     /* -1: the library's default (everything) */
	double timeout = 600;
	bool idle = false, hold = false;
	long per_conn = 1;
	int c;

	while ((c = getopt_long(argc, argv, "m:l:t:ik:Hf:", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			m = atol(optarg);
			break;
		case 'l':
			latency_us = atol(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'i':
			idle = true;
			break;
		case 'k':
			per_conn = atol(optarg);
			break;
		case 'H':
			hold = true;
			break;
		case 'f':
			/* it reads types and paths only: "none" lets the daemon
			 * skip attributes and pids */
			fields = strcmp(optarg, "none") == 0 ? 0 : strcmp(optarg, "all") == 0 ? FSNOTE_WITH_ALL : -2;
			if (fields == -2) {
				fprintf(stderr, "fsnote-sink: --fields is none or all\n");
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || m < 1 || per_conn < 1 || (per_conn > 1 && !idle)) {
		fprintf(stderr, "usage: fsnote-sink [--subs M] [--latency-us L] [--timeout S] [--idle] DIR\n");
		return 2;
	}
	const char *dir = argv[optind];
	/* each handle holds a socket, an epoll fd and an eventfd */
	struct rlimit rl = { (rlim_t)m * 4 + 64, (rlim_t)m * 4 + 64 };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && rl.rlim_cur > 1024) {
		perror("fsnote-sink: setrlimit");
		return 1;
	}
	struct sub *subs = calloc((size_t)m, sizeof(*subs));
	struct pollfd *pfd = calloc((size_t)m, sizeof(*pfd));
	size_t lat_cap = 1 << 20, n_lat = 0;
	uint64_t *lat = malloc(lat_cap * sizeof(*lat));
	fsnote_sub_opts *o = NULL;
	if (!subs || !pfd || !lat || fsnote_sub_opts_new(&o) < 0 ||
	    (latency_us >= 0 && fsnote_sub_opts_set_latency_us(o, (uint32_t)latency_us) < 0) ||
	    (fields >= 0 && fsnote_sub_opts_set_fields(o, (uint32_t)fields) < 0)) {
		fprintf(stderr, "fsnote-sink: out of memory\n");
		return 1;
	}
	for (long i = 0; i < m; i++) {
		int r = fsnote_connect(NULL, &subs[i].h);
		for (long k = 0; r == 0 && k < per_conn; k++)
			r = fsnote_subscribe(subs[i].h, dir, o, &subs[i].id);
		if (r < 0) {
			fprintf(stderr, "fsnote-sink: subscriber %ld: %s %s\n", i, strerror(-r),
				subs[i].h ? fsnote_last_error(subs[i].h) : "");
			return 1;
		}
		pfd[i].fd = fsnote_fd(subs[i].h);
		pfd[i].events = POLLIN;
	}
	/* blocked before "ready", so that a SIGUSR1 sent on seeing it is kept */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	signal(SIGUSR1, on_usr1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	fprintf(stderr, "ready\n");
	while (hold && !go)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (idle) {
		/* SIGTERM is blocked but while waiting: one that comes between
		 * the test of stop and the wait cannot be missed */
		sigset_t term, prev;
		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigprocmask(SIG_BLOCK, &term, &prev);
		signal(SIGTERM, on_term);
		sigdelset(&prev, SIGTERM);
		while (!stop)
			sigsuspend(&prev);
		return 0;
	}

	long remaining = m;
	uint64_t first = 0, last = 0;
	uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(timeout * 1e9);
	while (remaining > 0 && now_ns(CLOCK_MONOTONIC) < deadline) {
		if (poll(pfd, (nfds_t)m, 1000) < 0 && errno != EINTR) {
			perror("fsnote-sink: poll");
			return 1;
		}
		for (long i = 0; i < m; i++) {
			struct sub *s = &subs[i];
			if (s->done || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			/* batches: no allocation per event, as an application
			 * reading a busy stream would */
			const fsnote_event *batch[256];
			int r = 0;
			while (!s->done && (r = fsnote_read_batch(s->h, 0, batch, 256)) > 0) {
				for (int k = 0; k < r && !s->done; k++) {
					const fsnote_event *e = batch[k];
					uint64_t t = now_ns(CLOCK_MONOTONIC);
					if (!first)
						first = t;
					last = t;
					uint32_t type = fsnote_event_type(e);
					s->records++;
					if (type <= FSNOTE_TYPE_MAX)
						s->by_type[type]++;
					if (type == FSNOTE_DROPPED)
						s->dropped_lost += fsnote_event_count(e);
					size_t len;
					const char *p = fsnote_event_path(e, &len);
					const char *base = strrchr(p, '/');
					base = base ? base + 1 : p;
					if (type == FSNOTE_CREATE && strncmp(base, "lat-", 4) == 0 && n_lat < lat_cap) {
						uint64_t sent = strtoull(base + 4, NULL, 10);
						uint64_t now = now_ns(CLOCK_REALTIME);
						if (now > sent)
							lat[n_lat++] = now - sent;
					}
					if (type == FSNOTE_CREATE && strcmp(base, "BENCH-END") == 0) {
						s->done = true;
						remaining--;
					}
				}
			}
			if (r < 0 && r != -EAGAIN && r != -ETIMEDOUT) {
				fprintf(stderr, "fsnote-sink: subscriber %ld: %s\n", i, strerror(-r));
				return 1;
			}
		}
	}

	/* completeness: the least any subscriber saw of each type */
	uint64_t min_type[FSNOTE_TYPE_MAX + 1], records = 0, dropped_records = 0, dropped_lost = 0;
	uint64_t counted_min = UINT64_MAX, counted_max = 0, counted_sum = 0;
	for (int t = 0; t <= FSNOTE_TYPE_MAX; t++)
		min_type[t] = UINT64_MAX;
	for (long i = 0; i < m; i++) {
		const uint64_t *bt = subs[i].by_type;
		uint64_t counted = bt[FSNOTE_CREATE] + bt[FSNOTE_CLOSE_WRITE] + bt[FSNOTE_RENAME] +
				   bt[FSNOTE_DELETE];
		counted_min = counted < counted_min ? counted : counted_min;
		counted_max = counted > counted_max ? counted : counted_max;
		counted_sum += counted;
		records += subs[i].records;
		dropped_records += subs[i].by_type[FSNOTE_DROPPED];
		dropped_lost += subs[i].dropped_lost;
		for (int t = 0; t <= FSNOTE_TYPE_MAX; t++)
			if (subs[i].by_type[t] < min_type[t])
				min_type[t] = subs[i].by_type[t];
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("{\"subs\":%ld,\"records\":%llu,\"create\":%llu,\"delete\":%llu,\"modify\":%llu,"
	       "\"attrib\":%llu,\"close_write\":%llu,\"rename\":%llu,\"dropped_records\":%llu,"
	       "\"dropped_events\":%llu,\"seconds\":%.6f,\"cpu_s\":%.6f,\"max_rss_kb\":%ld,"
	       "\"counted_min\":%llu,\"counted_max\":%llu,\"counted_sum\":%llu,\"complete\":%s",
	       m, (unsigned long long)records, (unsigned long long)min_type[FSNOTE_CREATE],
	       (unsigned long long)min_type[FSNOTE_DELETE], (unsigned long long)min_type[FSNOTE_MODIFY],
	       (unsigned long long)min_type[FSNOTE_ATTRIB],
	       (unsigned long long)min_type[FSNOTE_CLOSE_WRITE],
	       (unsigned long long)min_type[FSNOTE_RENAME], (unsigned long long)dropped_records,
	       (unsigned long long)dropped_lost, (double)(last - first) / 1e9, cpu, ru.ru_maxrss,
	       (unsigned long long)counted_min, (unsigned long long)counted_max,
	       (unsigned long long)counted_sum, remaining == 0 ? "true" : "false");
	if (n_lat) {
		qsort(lat, n_lat, sizeof(*lat), cmp_u64);
		printf(",\"latency_n\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f",
		       n_lat, (double)lat[n_lat / 2] / 1e3, (double)lat[n_lat * 99 / 100] / 1e3,
		       (double)lat[n_lat * 999 / 1000] / 1e3, (double)lat[n_lat - 1] / 1e3);
	}
	printf("}\n");
	for (long i = 0; i < m; i++)
		fsnote_close(subs[i].h);
	fsnote_sub_opts_free(o);
	free(subs);
	free(pfd);
	free(lat);
	return remaining == 0 ? 0 : 3;
}
