/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-journal.c - unit tests for the persistent journal: the checksum,
 * every field surviving a round trip, clean stops and crashes as gaps, torn
 * and corrupt segments cut and reported, retention by size and age (oldest
 * first), seeks by ID and by time across index strides, exclusions, the
 * lock, and hostile files in the directory.
 *
 * Each test works in a directory of its own under $TMPDIR; nothing here
 * needs privileges or the kernel's notification interfaces.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "fsnote-protocol.h"
#include "journal.h"

#define T0 1700000000000000000ull      /* a CLOCK_REALTIME to start from */

static char dir[256];

static void mkdir_tmp(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/check-journal.XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	strcat(dir, "/j"); /* the journal creates its own directory */
}

/* Every test's directory goes with it. */
static void cleanup(void)
{
	char cmd[400];
	char *slash = strrchr(dir, '/');
	if (!dir[0] || !slash)
		return;
	*slash = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static struct journal_config cfg_of(uint64_t max_bytes)
{
	return (struct journal_config){ .dir = dir, .max_bytes = max_bytes, .sync_ms = 1000 };
}

static struct journal *jopen(const struct journal_config *c)
{
	struct journal *j = NULL;
	ck_assert_int_eq(journal_open(c, T0, &j), 0);
	return j;
}

/* An event as the pool would hold it, every field set from @id. */
static struct pool_event *mkev(uint64_t id, uint64_t time_ns, const char *path, const char *dest)
{
	static const unsigned char handle[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	size_t pl = strlen(path), dl = dest ? strlen(dest) : 0;
	struct pool_event *ev = calloc(1, sizeof(*ev) + pl + dl + 2 + 2 * sizeof(handle));
	ck_assert_ptr_nonnull(ev);
	char *d = ev->data;
	memcpy(d, path, pl + 1);
	ev->path = d;
	ev->path_len = (uint16_t)pl;
	if (dest) {
		memcpy(d + pl + 1, dest, dl + 1);
		ev->dest = d + pl + 1;
		ev->dest_len = (uint16_t)dl;
	}
	unsigned char *h = (unsigned char *)d + pl + dl + 2;
	memcpy(h, handle, sizeof(handle));
	memcpy(h + sizeof(handle), handle, sizeof(handle));
	h[sizeof(handle)] = (unsigned char)id;
	ev->id = id;
	ev->type = dest ? FSNOTE_EV_RENAME : FSNOTE_EV_CREATE;
	ev->flags = FSNOTE_FLAG_IS_DIR;
	ev->pid = (uint32_t)id + 7;
	ev->actor_uid = 1000;
	ev->time_ns = time_ns;
	ev->dev = 0x801;
	ev->st = (struct pool_stat){ true, id * 3, 040755, 1000, 100 };
	ev->dest_st = (struct pool_stat){ dest != NULL, id * 5, 0100644, 1001, 101 };
	ev->dir = (struct pool_dirid){ .ino = id + 1, .type = 0x81, .len = sizeof(handle), .bytes = h };
	if (dest)
		ev->dest_dir = (struct pool_dirid){ .ino = id + 2, .type = 0x82, .len = sizeof(handle),
						    .self = true, .bytes = h + sizeof(handle) };
	return ev;
}

static void append(struct journal *j, uint64_t id, uint64_t time_ns, const char *path)
{
	struct pool_event *ev = mkev(id, time_ns, path, NULL);
	ck_assert_int_eq(journal_append(j, ev), 0);
	free(ev);
}

/* Reads (since, until] and returns how many events; their IDs in @ids. */
static size_t read_ids(struct journal *j, uint64_t since, uint64_t until, uint64_t *ids, size_t cap)
{
	struct journal_cursor *c = NULL;
	struct pool_event *ev;
	uint64_t fsid;
	size_t n = 0;
	int r;

	ck_assert_int_eq(journal_cursor_new(j, since, until, &c), 0);
	while ((r = journal_cursor_next(c, &ev, &fsid)) == 1) {
		if (n < cap)
			ids[n] = ev->id;
		n++;
	}
	ck_assert_int_eq(r, 0);
	journal_cursor_free(c);
	return n;
}

struct gaps {
	struct journal_gap g[16];
	size_t n;
};

static void gap_cb(const struct journal_gap *g, void *userdata)
{
	struct gaps *gs = userdata;
	if (gs->n < 16)
		gs->g[gs->n] = *g;
	gs->n++;
}

static const char *seg_path(uint64_t seq)
{
	static char p[400];
	snprintf(p, sizeof(p), "%s/%016llx.fsj", dir, (unsigned long long)seq);
	return p;
}

static size_t count_segments(uint64_t *ret_first)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	uint64_t first = UINT64_MAX;
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d))) {
		if (strlen(de->d_name) == 20 && strstr(de->d_name, ".fsj")) {
			uint64_t s = strtoull(de->d_name, NULL, 16);
			if (s < first)
				first = s;
			n++;
		}
	}
	closedir(d);
	if (ret_first)
		*ret_first = first;
	return n;
}

START_TEST(test_crc32c)
{
	/* the standard check value, and the same answer in pieces */
	ck_assert_uint_eq(journal_crc32c(0, "123456789", 9), 0xe3069283u);
	ck_assert_uint_eq(journal_crc32c(journal_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
	ck_assert_uint_eq(journal_crc32c(0, "", 0), 0);
	unsigned char big[1000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 31);
	uint32_t whole = journal_crc32c(0, big, sizeof(big));
	uint32_t parts = journal_crc32c(journal_crc32c(0, big, 333), big + 333, sizeof(big) - 333);
	ck_assert_uint_eq(whole, parts);
	big[500] ^= 1;
	ck_assert_uint_ne(journal_crc32c(0, big, sizeof(big)), whole);
}
END_TEST

START_TEST(test_round_trip_and_clean_stop)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), 0);
	ck_assert_int_eq(journal_start(j, NULL, 100, T0), 0);
	struct pool_event *a = mkev(101, T0 + 1, "/dir/a", NULL);
	struct pool_event *b = mkev(102, T0 + 2, "/dir/b", "/other/c");
	ck_assert_int_eq(journal_append(j, a), 0);
	ck_assert_int_eq(journal_append(j, b), 0);
	ck_assert_int_eq(journal_stop(j, 102, T0 + 3), 0);
	j = journal_free(j);

	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), 102);
	ck_assert_int_eq(journal_start(j, NULL, 500, T0 + 100), 0);
	/* the downtime is a gap, and a clean one */
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, 102, 500, 0, gap_cb, &gs), 1);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_STOPPED);
	ck_assert_uint_eq(gs.g[0].id_first, 103);
	ck_assert_uint_eq(gs.g[0].id_last, 500);
	ck_assert_uint_eq(gs.g[0].time_last, T0 + 100);
	/* a resume from after the gap crosses nothing */
	gs.n = 0;
	ck_assert_uint_eq(journal_gaps(j, 500, 600, 0, gap_cb, &gs), 0);
	/* before the journal began: a cut */
	gs.n = 0;
	ck_assert_uint_eq(journal_gaps(j, 50, 600, 0, gap_cb, &gs), 2);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_CUT);

	/* every field as it went in */
	struct journal_cursor *cur = NULL;
	struct pool_event *ev;
	uint64_t fsid;
	ck_assert_int_eq(journal_cursor_new(j, 100, 1000, &cur), 0);
	const struct pool_event *want[] = { a, b };
	for (int i = 0; i < 2; i++) {
		const struct pool_event *w = want[i];
		ck_assert_int_eq(journal_cursor_next(cur, &ev, &fsid), 1);
		ck_assert_uint_eq(ev->id, w->id);
		ck_assert_uint_eq(ev->type, w->type);
		ck_assert_uint_eq(ev->flags, w->flags);
		ck_assert_uint_eq(ev->pid, w->pid);
		ck_assert_uint_eq(ev->actor_uid, w->actor_uid);
		ck_assert_uint_eq(ev->time_ns, w->time_ns);
		ck_assert_uint_eq(ev->dev, w->dev);
		ck_assert_str_eq(ev->path, w->path);
		ck_assert_uint_eq(ev->path_len, w->path_len);
		if (w->dest) {
			ck_assert_str_eq(ev->dest, w->dest);
			ck_assert_uint_eq(ev->dest_len, w->dest_len);
		} else {
			ck_assert_ptr_null(ev->dest);
		}
		ck_assert(ev->st.valid == w->st.valid && ev->st.ino == w->st.ino &&
			  ev->st.mode == w->st.mode && ev->st.uid == w->st.uid && ev->st.gid == w->st.gid);
		ck_assert(ev->dest_st.valid == w->dest_st.valid && ev->dest_st.ino == w->dest_st.ino);
		ck_assert(ev->dir.ino == w->dir.ino && ev->dir.type == w->dir.type &&
			  ev->dir.len == w->dir.len && ev->dir.self == w->dir.self);
		ck_assert_mem_eq(ev->dir.bytes, w->dir.bytes, w->dir.len);
		ck_assert(ev->dest_dir.ino == w->dest_dir.ino && ev->dest_dir.len == w->dest_dir.len &&
			  ev->dest_dir.self == w->dest_dir.self);
		if (w->dest_dir.len)
			ck_assert_mem_eq(ev->dest_dir.bytes, w->dest_dir.bytes, w->dest_dir.len);
	}
	ck_assert_int_eq(journal_cursor_next(cur, &ev, &fsid), 0);
	journal_cursor_free(cur);
	free(a);
	free(b);

	/* the directory is the daemon's alone */
	struct stat st;
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(seg_path(1), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	journal_free(j);
}
END_TEST

START_TEST(test_crash_is_a_gap)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 100, T0), 0);
	for (uint64_t id = 101; id <= 110; id++)
		append(j, id, T0 + id, "/x");
	ck_assert_int_eq(journal_flush(j, true), 0);
	j = journal_free(j); /* no clean-stop marker */

	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), 110);
	ck_assert_int_eq(journal_start(j, NULL, 200, T0 + 1000), 0);
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, 105, 300, 0, gap_cb, &gs), 1);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_CRASHED);
	ck_assert_uint_eq(gs.g[0].id_first, 111);
	ck_assert_uint_eq(gs.g[0].id_last, 200);
	uint64_t ids[16];
	ck_assert_uint_eq(read_ids(j, 105, 300, ids, 16), 5);
	ck_assert_uint_eq(ids[0], 106);
	ck_assert_uint_eq(ids[4], 110);
	journal_free(j);
}
END_TEST

START_TEST(test_torn_tail_cut)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 100, T0), 0);
	for (uint64_t id = 101; id <= 120; id++)
		append(j, id, T0 + id, "/torn");
	ck_assert_int_eq(journal_flush(j, true), 0);
	j = journal_free(j);

	/* the last record loses its end, as a write cut by a power loss */
	struct stat st;
	ck_assert_int_eq(stat(seg_path(1), &st), 0);
	ck_assert_int_eq(truncate(seg_path(1), st.st_size - 5), 0);
	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), 119);
	ck_assert_int_eq(stat(seg_path(1), &st), 0);
	off_t cut = st.st_size;
	ck_assert_int_eq(journal_start(j, NULL, 300, T0 + 1000), 0);
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, 110, 400, 0, gap_cb, &gs), 1);
	ck_assert(gs.g[0].reason & JOURNAL_GAP_CORRUPT);
	ck_assert(gs.g[0].reason & JOURNAL_GAP_CRASHED);
	ck_assert_uint_eq(gs.g[0].id_first, 120);
	ck_assert_uint_eq(gs.g[0].id_last, 300);
	uint64_t ids[32];
	ck_assert_uint_eq(read_ids(j, 100, 400, ids, 32), 19);
	journal_free(j);
	/* the cut is for good: the next start does not see it again */
	j = jopen(&c);
	ck_assert_int_eq(stat(seg_path(1), &st), 0);
	ck_assert_int_eq(st.st_size, cut);
	journal_free(j);
}
END_TEST

START_TEST(test_flipped_byte_in_older_segment)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20); /* 128 KiB segments */
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 1000, T0), 0);
	char path[300];
	memset(path, 'p', 250);
	path[0] = '/';
	path[250] = '\0';
	uint64_t id = 1000;
	/* about three segments */
	while (count_segments(NULL) < 3)
		{ id++; append(j, id, T0 + id, path); }
	uint64_t last = id;
	ck_assert_int_eq(journal_stop(j, last, T0 + last + 1), 0);
	j = journal_free(j);

	/* a byte in the middle of the first segment goes bad */
	int fd = open(seg_path(1), O_RDWR);
	ck_assert_int_ge(fd, 0);
	unsigned char b;
	ck_assert_int_eq(pread(fd, &b, 1, 60000), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, 60000), 1);
	close(fd);

	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), last);
	ck_assert_int_eq(journal_start(j, NULL, last + 10, T0 + 999999), 0);
	struct gaps gs = { .n = 0 };
	journal_gaps(j, 1000, last + 100, 0, gap_cb, &gs);
	ck_assert_uint_eq(gs.n, 2); /* the corruption, then the stop */
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_CORRUPT);
	ck_assert_uint_eq(gs.g[1].reason, JOURNAL_GAP_STOPPED);
	uint64_t lost_from = gs.g[0].id_first, lost_to = gs.g[0].id_last;
	ck_assert_uint_gt(lost_from, 1001);
	ck_assert_uint_gt(lost_to, lost_from);
	/* everything outside the reported gap is still there, in order */
	static uint64_t ids[4096];
	size_t n = read_ids(j, 1000, last + 100, ids, 4096);
	ck_assert_uint_le(n, 4096);
	uint64_t expect = 1001;
	for (size_t i = 0; i < n; i++) {
		if (expect == lost_from)
			expect = lost_to; /* the next segment's first ID */
		ck_assert_uint_eq(ids[i], expect);
		expect++;
	}
	ck_assert_uint_eq(expect - 1, last);
	journal_free(j);
}
END_TEST

START_TEST(test_retention_by_size_oldest_first)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	char path[600];
	memset(path, 'q', 500);
	path[0] = '/';
	path[500] = '\0';
	uint64_t id = 0;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 1000; i++)
			{ id++; append(j, id, T0 + id, path); }
		ck_assert_int_eq(journal_flush(j, false), 0);
		/* on disk, every segment counted, within the bound plus what
		 * one segment and the buffer hold */
		uint64_t total = 0, first = 0;
		size_t n = count_segments(&first);
		for (uint64_t s = first; s < first + n; s++) {
			struct stat st;
			ck_assert_int_eq(stat(seg_path(s), &st), 0); /* contiguous: oldest went first */
			total += (uint64_t)st.st_size;
		}
		ck_assert_uint_le(total, (1u << 20) + (128u << 10) + (256u << 10));
	}
	/* the floor moved up; what is left reads back complete from it */
	uint64_t floor = journal_floor(j);
	ck_assert_uint_gt(floor, 0);
	static uint64_t ids[20000];
	size_t n = read_ids(j, floor, id, ids, 20000);
	ck_assert_uint_eq(n, id - floor);
	ck_assert_uint_eq(ids[0], floor + 1);
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, 5, id, 0, gap_cb, &gs), 1);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_CUT);
	ck_assert_uint_eq(gs.g[0].id_last, floor);
	journal_free(j);
}
END_TEST

START_TEST(test_cursor_outlived_by_retention)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	char path[600];
	memset(path, 's', 500);
	path[0] = '/';
	path[500] = '\0';
	uint64_t id = 0;
	while (count_segments(NULL) < 4) {
		id++;
		append(j, id, T0 + id, path);
	}
	struct journal_cursor *cur = NULL;
	struct pool_event *ev;
	uint64_t fsid, floor = journal_floor(j);
	ck_assert_int_eq(journal_cursor_new(j, floor, id, &cur), 0);
	/* the reader is slow: everything it has not reached yet goes */
	for (uint64_t k = 0; k < 4000; k++) {
		id++;
		append(j, id, T0 + id, path);
	}
	ck_assert_int_eq(journal_flush(j, false), 0);
	ck_assert_uint_gt(journal_floor(j), floor);
	int r;
	uint64_t n = 0, last = floor;
	while ((r = journal_cursor_next(cur, &ev, &fsid)) == 1) {
		ck_assert_uint_eq(ev->id, last + 1); /* in order, none skipped */
		last = ev->id;
		n++;
	}
	/* what it had open it read; then it says the rest is gone */
	ck_assert_int_eq(r, -ESTALE);
	ck_assert_uint_gt(n, 0);
	journal_cursor_free(cur);
	journal_free(j);
}
END_TEST

START_TEST(test_retention_by_age)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20);
	c.max_age_ns = 3600ull * 1000000000ull;
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	char path[64];
	memset(path, 'r', 50);
	path[0] = '/';
	path[50] = '\0';
	uint64_t id = 0;
	/* two hours of events, a record every two seconds of event time */
	while (id < 3600)
		{ id++; append(j, id, T0 + id * 2000000000ull, path); }
	ck_assert_int_eq(journal_flush(j, false), 0);
	/* retention runs when segments turn over: force one more */
	ck_assert_int_eq(journal_stop(j, id, T0 + id * 2000000000ull), 0);
	journal_free(j);
	j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, id + 1, T0 + id * 2000000000ull), 0);
	/* nothing older than an hour before the last event is left, but
	 * the last hour is */
	uint64_t floor = journal_floor(j);
	ck_assert_uint_gt(floor, 900);
	ck_assert_uint_lt(floor, 1800);
	journal_free(j);
}
END_TEST

START_TEST(test_seek_by_id_and_time)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	for (uint64_t id = 1; id <= 50000; id++)
		append(j, id, T0 + id * 1000, "/seek/some/longer/path/name");
	uint64_t ids[8];
	ck_assert_uint_eq(read_ids(j, 31337, 31340, ids, 8), 3);
	ck_assert_uint_eq(ids[0], 31338);
	ck_assert_uint_eq(read_ids(j, 49999, 100000, ids, 8), 1);
	ck_assert_uint_eq(read_ids(j, 50000, 100000, ids, 8), 0);
	uint64_t got = 0;
	ck_assert_int_eq(journal_id_at_time(j, T0 + 12345 * 1000, &got), 0);
	ck_assert_uint_eq(got, 12345);
	ck_assert_int_eq(journal_id_at_time(j, T0 + 12345 * 1000 - 1, &got), 0);
	ck_assert_uint_eq(got, 12345);
	ck_assert_int_eq(journal_id_at_time(j, T0 + 1000, &got), 0);
	ck_assert_uint_eq(got, 1);
	ck_assert_int_eq(journal_id_at_time(j, T0 - 1, &got), -ERANGE);
	ck_assert_int_eq(journal_id_at_time(j, T0 + 60000 * 1000, &got), -ENOENT);
	/* a time inside a gap answers the gap's first ID: a resume from
	 * there crosses it */
	ck_assert_int_eq(journal_stop(j, 50000, T0 + 50001 * 1000), 0);
	journal_free(j);
	j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 90000, T0 + 80000 * 1000), 0);
	append(j, 90001, T0 + 80001 * 1000, "/after");
	ck_assert_int_eq(journal_id_at_time(j, T0 + 70000 * 1000, &got), 0);
	ck_assert_uint_eq(got, 50001);
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, got - 1, 90001, 0, gap_cb, &gs), 1);
	journal_free(j);
}
END_TEST

START_TEST(test_exclusions)
{
	mkdir_tmp();
	char secret[300];
	snprintf(secret, sizeof(secret), "%s", dir);
	strcpy(strrchr(secret, '/'), "/private"); /* beside the journal */
	char *ex[] = { secret };
	struct journal_config c = cfg_of(64 << 20);
	c.exclude = ex;
	c.n_exclude = 1;
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	char in[400], below[400], beside[400];
	snprintf(in, sizeof(in), "%s", secret);
	snprintf(below, sizeof(below), "%s/a/b", secret);
	snprintf(beside, sizeof(beside), "%s-not", secret);
	struct pool_event *e1 = mkev(1, T0 + 1, in, NULL);
	struct pool_event *e2 = mkev(2, T0 + 2, below, NULL);
	struct pool_event *e3 = mkev(3, T0 + 3, beside, NULL);
	struct pool_event *e4 = mkev(4, T0 + 4, beside, below); /* a move out of it */
	e1->dev = e2->dev = e3->dev = e4->dev = 0;
	ck_assert_int_eq(journal_append(j, e1), 1);
	ck_assert_int_eq(journal_append(j, e2), 1);
	ck_assert_int_eq(journal_append(j, e3), 0);
	ck_assert_int_eq(journal_append(j, e4), 1);
	uint64_t ids[8];
	ck_assert_uint_eq(read_ids(j, 0, 10, ids, 8), 1);
	ck_assert_uint_eq(ids[0], 3);
	ck_assert(journal_may_exclude(j, 0, secret));
	char parent[300];
	snprintf(parent, sizeof(parent), "%s", dir);
	*strrchr(parent, '/') = '\0';
	ck_assert(journal_may_exclude(j, 0, parent));
	/* the journal's own directory is never journaled, nor pooled */
	char own[400];
	snprintf(own, sizeof(own), "%s/0000000000000001.fsj", dir);
	ck_assert(journal_is_own(j, 0, own, strlen(own)));
	ck_assert(!journal_is_own(j, 0, beside, strlen(beside)));
	ck_assert(!journal_may_exclude(j, 0, beside));
	free(e1);
	free(e2);
	free(e3);
	free(e4);
	journal_free(j);
}
END_TEST

START_TEST(test_lock_and_hostile_files)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	struct journal *k = NULL;
	ck_assert_int_eq(journal_open(&c, T0, &k), -EBUSY);
	ck_assert_int_eq(journal_start(j, NULL, 10, T0), 0);
	append(j, 11, T0 + 1, "/ok");
	ck_assert_int_eq(journal_stop(j, 11, T0 + 2), 0);
	journal_free(j);
	/* garbage under a segment's name, an empty one, and a stranger */
	int fd = open(seg_path(7), O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "not a journal at all, just words", 32), 32);
	close(fd);
	fd = open(seg_path(8), O_WRONLY | O_CREAT, 0600);
	close(fd);
	char other[400];
	snprintf(other, sizeof(other), "%s/README", dir);
	fd = open(other, O_WRONLY | O_CREAT, 0600);
	close(fd);
	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), 11);
	ck_assert_int_eq(journal_start(j, NULL, 20, T0 + 10), 0);
	uint64_t ids[4];
	ck_assert_uint_eq(read_ids(j, 10, 30, ids, 4), 1);
	ck_assert_uint_eq(ids[0], 11);
	struct gaps gs = { .n = 0 };
	journal_gaps(j, 11, 30, 0, gap_cb, &gs);
	ck_assert_uint_eq(gs.n, 1);
	ck_assert(gs.g[0].reason & JOURNAL_GAP_CORRUPT);
	journal_free(j);
	/* a directory someone else could read is taken back */
	ck_assert_int_eq(chmod(dir, 0755), 0);
	j = jopen(&c);
	struct stat st;
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	journal_free(j);
}
END_TEST

/* With an event loop: the timer writes and syncs on its own (the sync on
 * a thread), segments turn over while it does, and all of it is there
 * after a clean stop. */
START_TEST(test_timer_and_sync_thread)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20);
	c.sync_ms = 10;
	struct event_base *base = event_base_new();
	ck_assert_ptr_nonnull(base);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, base, 0, T0), 0);
	char path[300];
	memset(path, 't', 200);
	path[0] = '/';
	path[200] = '\0';
	uint64_t id = 0;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 100; i++) {
			id++;
			append(j, id, T0 + id, path);
		}
		struct timeval tv = { 0, 15000 };
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	ck_assert_uint_gt(count_segments(NULL), 2);
	ck_assert_int_eq(journal_stop(j, id, T0 + id + 1), 0);
	journal_free(j);
	event_base_free(base);
	j = jopen(&c);
	ck_assert_uint_eq(journal_last_id(j), id);
	ck_assert_int_eq(journal_start(j, NULL, id + 1, T0 + id + 2), 0);
	static uint64_t ids[4000];
	ck_assert_uint_eq(read_ids(j, 0, id, ids, 4000), id);
	journal_free(j);
}
END_TEST

/* A disk that refuses writes (a file size limit stands in for a full
 * disk): the records that could not be written are a gap, reported once
 * writing works again, and everything else reads back. */
START_TEST(test_write_error_is_a_gap)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, small;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	small = old;
	small.rlim_cur = 600 * 1024;
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
	char path[300];
	memset(path, 'w', 200);
	path[0] = '/';
	path[200] = '\0';
	uint64_t id = 0;
	int failures = 0;
	/* past the limit: appends start failing */
	while (id < 20000 && failures == 0) {
		id++;
		struct pool_event *ev = mkev(id, T0 + id, path, NULL);
		if (journal_append(j, ev) < 0)
			failures++;
		free(ev);
	}
	ck_assert_int_gt(failures, 0);
	uint64_t failed_at = id;
	for (int i = 0; i < 10; i++) {
		id++;
		struct pool_event *ev = mkev(id, T0 + id, path, NULL);
		(void)journal_append(j, ev);
		free(ev);
	}
	/* the disk has room again */
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	uint64_t resumed = id + 1;
	for (int i = 0; i < 100; i++) {
		id++;
		append(j, id, T0 + id, path);
	}
	struct gaps gs = { .n = 0 };
	journal_gaps(j, 0, id, 0, gap_cb, &gs);
	ck_assert_uint_eq(gs.n, 1);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_WRITE_ERROR);
	ck_assert_uint_le(gs.g[0].id_first, failed_at);
	/* the gap ends where records were taken again (they were buffered,
	 * and written once the disk had room) */
	ck_assert_uint_le(gs.g[0].id_last, resumed);
	ck_assert_uint_gt(gs.g[0].id_last, gs.g[0].id_first);
	/* everything outside the gap is there, in order */
	static uint64_t ids[25000];
	size_t n = read_ids(j, 0, id, ids, 25000);
	uint64_t expect = 1;
	for (size_t i = 0; i < n; i++) {
		if (expect == gs.g[0].id_first)
			expect = gs.g[0].id_last;
		ck_assert_uint_eq(ids[i], expect);
		expect++;
	}
	ck_assert_uint_eq(expect - 1, id);
	journal_free(j);
}
END_TEST

/* Random damage, many times over: opening never fails or crashes, and
 * what reads back is in order and was written. */
START_TEST(test_random_damage)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(1 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	char path[200];
	uint64_t id = 0;
	while (count_segments(NULL) < 3) {
		id++;
		snprintf(path, sizeof(path), "/damage/%llu/%0*d", (unsigned long long)id, (int)(id % 90), 0);
		append(j, id, T0 + id, path);
	}
	uint64_t written = id;
	ck_assert_int_eq(journal_stop(j, id, T0 + id + 1), 0);
	journal_free(j);
	srand(12345);
	static uint64_t ids[20000];
	for (int round = 0; round < 60; round++) {
		uint64_t first = 0;
		size_t nseg = count_segments(&first);
		if (nseg == 0)
			break;
		const char *victim = seg_path(first + (uint64_t)rand() % nseg);
		int fd = open(victim, O_RDWR);
		if (fd < 0)
			continue;
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		if (st.st_size > 0) {
			if (rand() % 4 == 0) {
				ck_assert_int_eq(ftruncate(fd, rand() % st.st_size), 0);
			} else {
				for (int k = 0; k < 1 + rand() % 8; k++) {
					unsigned char b = (unsigned char)rand();
					ck_assert_int_eq(pwrite(fd, &b, 1, rand() % st.st_size), 1);
				}
			}
		}
		close(fd);
		j = jopen(&c);
		ck_assert_uint_le(journal_last_id(j), written + (uint64_t)round * 10 + 10);
		uint64_t next = journal_last_id(j) + 10;
		ck_assert_int_eq(journal_start(j, NULL, next, T0 + written + (uint64_t)round * 10 + 5), 0);
		size_t n = read_ids(j, 0, next, ids, 20000);
		for (size_t i = 1; i < n && i < 20000; i++)
			ck_assert_uint_gt(ids[i], ids[i - 1]);
		for (size_t i = 0; i < n && i < 20000; i++)
			ck_assert_uint_le(ids[i], written);
		ck_assert_int_eq(journal_stop(j, next, T0 + written + (uint64_t)round * 10 + 6), 0);
		journal_free(j);
	}
}
END_TEST

START_TEST(test_overflow_gap)
{
	mkdir_tmp();
	struct journal_config c = cfg_of(64 << 20);
	struct journal *j = jopen(&c);
	ck_assert_int_eq(journal_start(j, NULL, 0, T0), 0);
	append(j, 1, T0 + 1, "/o");
	ck_assert_int_eq(journal_note_gap(j, JOURNAL_GAP_OVERFLOW, 1, 0x801, T0 + 2), 0);
	append(j, 2, T0 + 3, "/o");
	struct gaps gs = { .n = 0 };
	ck_assert_uint_eq(journal_gaps(j, 1, 2, 0, gap_cb, &gs), 1);
	ck_assert_uint_eq(gs.g[0].reason, JOURNAL_GAP_OVERFLOW);
	ck_assert_uint_eq(gs.g[0].dev, 0x801);
	gs.n = 0;
	ck_assert_uint_eq(journal_gaps(j, 1, 2, 0x802, gap_cb, &gs), 0); /* another filesystem */
	gs.n = 0;
	ck_assert_uint_eq(journal_gaps(j, 2, 5, 0, gap_cb, &gs), 0);      /* after it */
	uint64_t ids[4];
	ck_assert_uint_eq(read_ids(j, 0, 5, ids, 4), 2);
	journal_free(j);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, NULL, cleanup);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_round_trip_and_clean_stop);
	tcase_add_test(tc, test_crash_is_a_gap);
	tcase_add_test(tc, test_torn_tail_cut);
	tcase_add_test(tc, test_flipped_byte_in_older_segment);
	tcase_add_test(tc, test_retention_by_size_oldest_first);
	tcase_add_test(tc, test_retention_by_age);
	tcase_add_test(tc, test_cursor_outlived_by_retention);
	tcase_add_test(tc, test_seek_by_id_and_time);
	tcase_add_test(tc, test_exclusions);
	tcase_add_test(tc, test_lock_and_hostile_files);
	tcase_add_test(tc, test_overflow_gap);
	tcase_add_test(tc, test_timer_and_sync_thread);
	tcase_add_test(tc, test_write_error_is_a_gap);
	tcase_add_test(tc, test_random_damage);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(journal_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
