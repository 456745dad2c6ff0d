/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal-formats.c - the measurement behind the journal's on-disk format
 * (HACKING.md): the same million event records appended, read back from an
 * ID, and looked up by time, once through daemon/journal.c's segment files
 * and once through SQLite (WAL, synchronous=NORMAL, one transaction per
 * 4096 rows, a prepared statement, an index on time).
 *
 * Not built by default (SQLite is no dependency of fsnoted):
 *
 *   cc -O2 -I protocol -I daemon -include build/config.h bench/journal-formats.c \
 *      build/daemon/libjournal.a build/daemon/libcore.a build/daemon/libmountinfo.a \
 *      $(pkg-config --cflags --libs libevent jansson libsystemd sqlite3) -o /tmp/jf
 *   /tmp/jf DIR      (DIR on the filesystem to measure; it is filled)
 */
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsnote-protocol.h"
#include "journal.h"

#define N 1000000u
#define T0 1700000000000000000ull

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An event of the size the workload makes: a short path, stat, no handle. */
static struct pool_event *mkev(void)
{
	struct pool_event *ev = calloc(1, sizeof(*ev) + 64);
	strcpy(ev->data, "/w/d07/file-0123456");
	ev->path = ev->data;
	ev->path_len = (uint16_t)strlen(ev->data);
	ev->type = FSNOTE_EV_CREATE;
	ev->pid = 4242;
	ev->actor_uid = 1000;
	ev->dev = 0x801;
	ev->st = (struct pool_stat){ true, 1234, 0100644, 1000, 1000 };
	return ev;
}

static uint64_t du(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "du -sb '%s'", dir);
	FILE *p = popen(cmd, "r");
	unsigned long long v = 0;
	if (p && fscanf(p, "%llu", &v) != 1)
		v = 0;
	if (p)
		pclose(p);
	return v;
}

static void segments(const char *base)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/segments", base);
	struct journal_config cfg = { .dir = dir, .max_bytes = 1ull << 30, .sync_ms = 1000 };
	struct journal *j;
	if (journal_open(&cfg, T0, &j) < 0 || journal_start(j, NULL, 0, T0) < 0) {
		fprintf(stderr, "journal_open failed\n");
		exit(1);
	}
	struct pool_event *ev = mkev();
	double t = now_s();
	for (uint64_t i = 1; i <= N; i++) {
		ev->id = i;
		ev->time_ns = T0 + i * 1000;
		journal_append(j, ev);
		if (i % 100000 == 0)
			journal_flush(j, true); /* the timer's sync, as often as it would come */
	}
	journal_flush(j, true);
	double append = now_s() - t;
	t = now_s();
	struct journal_cursor *c;
	struct pool_event *e;
	uint64_t fsid, n = 0;
	journal_cursor_new(j, N / 10, N, &c);
	while (journal_cursor_next(c, &e, &fsid) == 1)
		n++;
	journal_cursor_free(c);
	double read = now_s() - t;
	t = now_s();
	uint64_t id;
	for (unsigned k = 0; k < 1000; k++)
		journal_id_at_time(j, T0 + (uint64_t)(k * 997 % N) * 1000, &id);
	double at = (now_s() - t) / 1000;
	journal_stop(j, N, T0 + N * 1000);
	journal_free(j);
	printf("| own segments | %.0f | %.0f | %.3f | %.1f |\n", N / append, n / read, at * 1e3,
	       du(dir) / 1048576.0);
	free(ev);
}

static void sqlite(const char *base)
{
	char path[512];
	sqlite3 *db;
	sqlite3_stmt *ins;
	char *err = NULL;
	snprintf(path, sizeof(path), "%s/journal.sqlite", base);
	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		exit(1);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE ev (id INTEGER PRIMARY KEY, time INTEGER, rec BLOB);"
			 "CREATE INDEX ev_time ON ev(time);",
		     NULL, NULL, &err);
	sqlite3_prepare_v2(db, "INSERT INTO ev VALUES (?, ?, ?)", -1, &ins, NULL);
	unsigned char rec[160];
	memset(rec, 7, sizeof(rec));
	double t = now_s();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (uint64_t i = 1; i <= N; i++) {
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)i);
		sqlite3_bind_int64(ins, 2, (sqlite3_int64)(T0 + i * 1000));
		sqlite3_bind_blob(ins, 3, rec, sizeof(rec), SQLITE_STATIC);
		sqlite3_step(ins);
		sqlite3_reset(ins);
		if (i % 4096 == 0) {
			sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
			sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		}
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	double append = now_s() - t;
	sqlite3_stmt *q;
	sqlite3_prepare_v2(db, "SELECT id, time, rec FROM ev WHERE id > ? ORDER BY id", -1, &q, NULL);
	sqlite3_bind_int64(q, 1, N / 10);
	t = now_s();
	uint64_t n = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		(void)sqlite3_column_blob(q, 2);
		n++;
	}
	sqlite3_finalize(q);
	double read = now_s() - t;
	sqlite3_prepare_v2(db, "SELECT id FROM ev WHERE time >= ? ORDER BY time LIMIT 1", -1, &q, NULL);
	t = now_s();
	for (unsigned k = 0; k < 1000; k++) {
		sqlite3_bind_int64(q, 1, (sqlite3_int64)(T0 + (uint64_t)(k * 997 % N) * 1000));
		(void)sqlite3_step(q);
		sqlite3_reset(q);
	}
	double at = (now_s() - t) / 1000;
	sqlite3_finalize(q);
	sqlite3_finalize(ins);
	sqlite3_close(db);
	struct stat st;
	double mb = stat(path, &st) == 0 ? st.st_size / 1048576.0 : 0;
	printf("| SQLite (WAL, NORMAL, 4096 rows/txn) | %.0f | %.0f | %.3f | %.1f |\n", N / append,
	       n / read, at * 1e3, mb);
	sqlite3_free(err);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: journal-formats DIR\n");
		return 2;
	}
	mkdir(argv[1], 0700);
	printf("| format | appends/s | reads/s (900k from an ID) | time-to-ID ms | MiB on disk |\n");
	printf("|---|---|---|---|---|\n");
	segments(argv[1]);
	sqlite(argv[1]);
	return 0;
}
