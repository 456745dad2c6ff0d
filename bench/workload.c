/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * workload.c - the file operations every benchmark reader watches.
 *
 *   workload burst  [--iterations N] [--dirs D] [--rate OPS] DIR
 *       N iterations of create+write+close, rename and unlink, spread over D
 *       subdirectories (made first), as fast as possible or paced at OPS
 *       iterations per second; then creates DIR/BENCH-END.
 *   workload latency [--rate OPS] [--seconds S] DIR
 *       creates files named lat-<CLOCK_REALTIME ns> at OPS per second, so a
 *       reader can tell how late each event arrived; then DIR/BENCH-END.
 *   workload tree [--dirs N] DIR
 *       makes N directories below DIR, 100 per level.
 *
 * Prints one JSON object: what it did and how long it took.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleeps until @start + @i / @rate seconds (monotonic). */
static void pace(uint64_t start, uint64_t i, double rate)
{
	if (rate <= 0)
		return;
	uint64_t due = start + (uint64_t)((double)i * 1e9 / rate);
	struct timespec ts = { (time_t)(due / 1000000000ull), (long)(due % 1000000000ull) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	return close(fd);
}

static int burst(const char *dir, long iterations, long dirs, double rate)
{
	char a[4096], b[4096];

	for (long d = 0; d < dirs; d++) {
		snprintf(a, sizeof(a), "%s/d%ld", dir, d);
		if (mkdir(a, 0755) < 0 && errno != EEXIST) {
			perror(a);
			return 1;
		}
	}
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (long i = 0; i < iterations; i++) {
		pace(t0, (uint64_t)i, rate);
		snprintf(a, sizeof(a), "%s/d%ld/f%ld", dir, i % dirs, i);
		snprintf(b, sizeof(b), "%s/d%ld/r%ld", dir, i % dirs, i);
		int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "data", 4) != 4 || close(fd) < 0 || rename(a, b) < 0 ||
		    unlink(b) < 0) {
			perror(a);
			return 1;
		}
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	snprintf(a, sizeof(a), "%s/BENCH-END", dir);
	if (touch(a) < 0) {
		perror(a);
		return 1;
	}
	printf("{\"iterations\":%ld,\"dirs\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.0f}\n", iterations,
	       dirs, (double)(t1 - t0) / 1e9, (double)iterations * 4 / ((double)(t1 - t0) / 1e9));
	return 0;
}

static int latency(const char *dir, double rate, double seconds)
{
	char a[4096];
	long n = (long)(rate * seconds);
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);

	for (long i = 0; i < n; i++) {
		pace(t0, (uint64_t)i, rate);
		snprintf(a, sizeof(a), "%s/lat-%llu", dir, (unsigned long long)now_ns(CLOCK_REALTIME));
		if (touch(a) < 0) {
			perror(a);
			return 1;
		}
	}
	snprintf(a, sizeof(a), "%s/BENCH-END", dir);
	if (touch(a) < 0) {
		perror(a);
		return 1;
	}
	printf("{\"files\":%ld,\"rate\":%.0f}\n", n, rate);
	return 0;
}

static int tree(const char *dir, long dirs)
{
	char p[4096];
	long made = 0;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);

	/* breadth first, 100 children per directory: d/i/j/k ... */
	for (long i = 0; i < dirs; i++) {
		int len = snprintf(p, sizeof(p), "%s", dir);
		long rest = i, stack[16], depth = 0;
		/* the parent of node i is (i - 100) / 100 for i >= 100 */
		while (rest >= 0 && depth < 16) {
			stack[depth++] = rest % 100;
			rest = rest / 100 - 1;
		}
		while (depth > 0)
			len += snprintf(p + len, sizeof(p) - (size_t)len, "/%ld", stack[--depth]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			perror(p);
			return 1;
		}
		made++;
	}
	printf("{\"dirs\":%ld,\"seconds\":%.6f}\n", made,
	       (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iterations", required_argument, NULL, 'n' },
		{ "dirs", required_argument, NULL, 'd' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	long iterations = 100000, dirs = 16;
	double rate = 0, seconds = 10;
	int c;

	if (argc < 2) {
		fprintf(stderr, "usage: workload burst|latency|tree [options] DIR\n");
		return 2;
	}
	const char *mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "n:d:r:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			iterations = atol(optarg);
			break;
		case 'd':
			dirs = atol(optarg);
			break;
		case 'r':
			rate = atof(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc || iterations < 0 || dirs < 1) {
		fprintf(stderr, "usage: workload burst|latency|tree [options] DIR\n");
		return 2;
	}
	const char *dir = argv[optind];
	if (strcmp(mode, "burst") == 0)
		return burst(dir, iterations, dirs, rate);
	if (strcmp(mode, "latency") == 0)
		return latency(dir, rate > 0 ? rate : 1000, seconds);
	if (strcmp(mode, "tree") == 0)
		return tree(dir, dirs);
	fprintf(stderr, "workload: unknown mode '%s'\n", mode);
	return 2;
}
