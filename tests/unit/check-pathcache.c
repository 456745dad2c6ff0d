/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-pathcache.c - unit tests for the handle -> path cache: hits and
 * misses, the LRU bound, invalidation of a renamed or deleted subtree (and
 * nothing else), and that correctness survives the invalidation log
 * wrapping around.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathcache.h"

static struct pathcache *c;

static void setup(void)
{
	ck_assert_int_eq(pathcache_new(8, &c), 0);
}

static void teardown(void)
{
	c = pathcache_free(c);
}

/* A distinct handle per number. */
static const void *H(unsigned n)
{
	static unsigned char h[4][12];
	static unsigned slot;
	unsigned char *p = h[slot++ % 4];
	memset(p, 0xa5, sizeof(h[0]));
	memcpy(p, &n, sizeof(n));
	return p;
}

static void put(uint64_t fs, unsigned n, const char *path)
{
	ck_assert_int_eq(pathcache_insert(c, fs, H(n), 12, path, strlen(path)), 0);
}

static const char *get(uint64_t fs, unsigned n)
{
	size_t len = 0;
	const char *p = pathcache_lookup(c, fs, H(n), 12, &len);
	if (p)
		ck_assert_uint_eq(len, strlen(p));
	return p;
}

START_TEST(test_hit_miss)
{
	struct pathcache_stats st;

	ck_assert_ptr_null(get(1, 1));
	put(1, 1, "/a");
	ck_assert_str_eq(get(1, 1), "/a");
	ck_assert_ptr_null(get(2, 1)); /* same handle, other filesystem */
	ck_assert_ptr_null(pathcache_lookup(c, 1, H(1), 11, NULL)); /* prefix of the handle */
	put(1, 1, "/b"); /* replaces */
	ck_assert_str_eq(get(1, 1), "/b");
	pathcache_get_stats(c, &st);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.misses, 3);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_int_eq(pathcache_insert(c, 1, H(1), 0, "/x", 2), -EINVAL);
	static unsigned char big[PATHCACHE_HANDLE_MAX + 1];
	ck_assert_int_eq(pathcache_insert(c, 1, big, sizeof(big), "/x", 2), -EINVAL);
	pathcache_forget(c, 1, H(1), 12);
	ck_assert_ptr_null(get(1, 1));
}
END_TEST

START_TEST(test_lru_bound)
{
	char p[32];
	struct pathcache_stats st;

	for (unsigned i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "/d%u", i);
		put(1, i, p);
	}
	ck_assert_str_eq(get(1, 0), "/d0"); /* 0 is now the most recent; 1 the least */
	put(1, 100, "/new");
	pathcache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 8);
	ck_assert_uint_eq(st.evictions, 1);
	ck_assert_ptr_null(get(1, 1));
	ck_assert_str_eq(get(1, 0), "/d0");
	ck_assert_str_eq(get(1, 2), "/d2");
	ck_assert_str_eq(get(1, 100), "/new");
	for (unsigned i = 200; i < 300; i++)
		put(1, i, "/many");
	pathcache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 8);
}
END_TEST

START_TEST(test_rename_invalidates_subtree)
{
	put(1, 1, "/m");
	put(1, 2, "/m/n");
	put(1, 3, "/m/n/o");
	put(1, 4, "/mm");      /* shares the prefix but is not below */
	put(1, 5, "/x/m");
	put(2, 6, "/m/n");     /* other filesystem */
	pathcache_invalidate_tree(c, 1, "/m", 2);
	ck_assert_ptr_null(get(1, 1));
	ck_assert_ptr_null(get(1, 2));
	ck_assert_ptr_null(get(1, 3));
	ck_assert_str_eq(get(1, 4), "/mm");
	ck_assert_str_eq(get(1, 5), "/x/m");
	ck_assert_str_eq(get(2, 6), "/m/n");
	/* entries made after the rename are not touched by it */
	put(1, 2, "/m2/n");
	put(1, 7, "/m/again");
	ck_assert_str_eq(get(1, 2), "/m2/n");
	ck_assert_str_eq(get(1, 7), "/m/again");
	/* a later rename is checked against entries validated earlier */
	pathcache_invalidate_tree(c, 1, "/m2", 3);
	ck_assert_ptr_null(get(1, 2));
	ck_assert_str_eq(get(1, 7), "/m/again");
}
END_TEST

START_TEST(test_delete_and_root)
{
	put(1, 1, "/a/b");
	put(1, 2, "/a");
	pathcache_invalidate_tree(c, 1, "/a/b", 4);
	ck_assert_ptr_null(get(1, 1));
	ck_assert_str_eq(get(1, 2), "/a");
	pathcache_invalidate_tree(c, 1, "/", 1);
	ck_assert_ptr_null(get(1, 2));
}
END_TEST

START_TEST(test_log_wraps)
{
	struct pathcache_stats st;

	put(1, 1, "/keep");
	put(1, 2, "/gone/x");
	pathcache_invalidate_tree(c, 1, "/gone", 5);
	/* push the record for /gone out of the log before anyone looks */
	for (unsigned i = 0; i < PATHCACHE_LOG_MAX + 10; i++)
		pathcache_invalidate_tree(c, 1, "/other", 6);
	/* cannot tell any more: both are dropped, never /gone/x returned */
	ck_assert_ptr_null(get(1, 2));
	ck_assert_ptr_null(get(1, 1));
	pathcache_get_stats(c, &st);
	ck_assert_uint_eq(st.stale_drops, 2);
	/* an entry that kept up with the log survives it */
	put(1, 3, "/live");
	for (unsigned i = 0; i < PATHCACHE_LOG_MAX * 3; i++) {
		pathcache_invalidate_tree(c, 1, "/other", 6);
		ck_assert_str_eq(get(1, 3), "/live");
	}
}
END_TEST

START_TEST(test_drop_fs)
{
	put(1, 1, "/a");
	put(2, 1, "/a");
	pathcache_drop_fs(c, 1);
	ck_assert_ptr_null(get(1, 1));
	ck_assert_str_eq(get(2, 1), "/a");
}
END_TEST

START_TEST(test_many_entries_default_bound)
{
	struct pathcache *big;
	char p[32];
	unsigned char h[16] = { 0 };

	ck_assert_int_eq(pathcache_new(0, &big), 0);
	for (unsigned i = 0; i < 70000; i++) {
		memcpy(h, &i, sizeof(i));
		snprintf(p, sizeof(p), "/dir%u", i);
		ck_assert_int_eq(pathcache_insert(big, 7, h, sizeof(h), p, strlen(p)), 0);
	}
	struct pathcache_stats st;
	pathcache_get_stats(big, &st);
	ck_assert_uint_eq(st.entries, PATHCACHE_DEFAULT_ENTRIES);
	unsigned last = 69999;
	memcpy(h, &last, sizeof(last));
	ck_assert_str_eq(pathcache_lookup(big, 7, h, sizeof(h), NULL), "/dir69999");
	pathcache_free(big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pathcache");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hit_miss);
	tcase_add_test(tc, test_lru_bound);
	tcase_add_test(tc, test_rename_invalidates_subtree);
	tcase_add_test(tc, test_delete_and_root);
	tcase_add_test(tc, test_log_wraps);
	tcase_add_test(tc, test_drop_fs);
	tcase_add_test(tc, test_many_entries_default_bound);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
