/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-config.c - unit tests for the configuration file: the defaults,
 * every key with a good value, every kind of error with its exact
 * FILE:LINE:COLUMN, duplicates, the top level, the size bound, a missing
 * file, and that a failed load leaves the caller's struct untouched.
 */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/* by its path: "config.h" alone would find the build's autoconf header */
#include "../../daemon/config.h"

#define DIR_TEMPLATE "/tmp/check-config.XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];
static char path[sizeof(dir) + 32];
static char err[512];

static void setup(void)
{
	memcpy(dir, DIR_TEMPLATE, sizeof(DIR_TEMPLATE));    /* CK_FORK=no runs all in one process */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fsnoted.json", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
	ck_assert_int_eq(fclose(f), 0);
}

/* Loads @text and expects -EINVAL with the message "PATH:@where". */
static void expect_error(const char *text, const char *where)
{
	struct config c;
	char want[sizeof(path) + 256];

	write_file(text);
	err[0] = '\0';
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%s", path, where);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "for %s\n got  '%s'\n want '%s...'",
		      text, err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
}

static void check_defaults(const struct config *c)
{
	ck_assert_uint_eq(c->pool_max_events, 262144);
	ck_assert_uint_eq(c->pool_max_bytes, 64u * 1024 * 1024);
	ck_assert_uint_eq(c->history_events, 65536);
	ck_assert_uint_eq(c->coalesce_ms, 1000);
	ck_assert_uint_eq(c->ring_default_depth, 65536);
	ck_assert_uint_eq(c->ring_max_depth, 131072);
	ck_assert_uint_eq(c->latency_ms, 10);
	ck_assert_uint_eq(c->batch, 16);
	ck_assert_uint_eq(c->max_connections_per_uid, 64);
	ck_assert_uint_eq(c->max_subscriptions_per_uid, 256);
	ck_assert_uint_eq(c->max_watches_per_uid, 0);
	ck_assert_uint_eq(c->max_queued_bytes_per_uid, 16u * 1024 * 1024);
	ck_assert_uint_eq(c->handshake_timeout_ms, 3000);
	ck_assert_uint_eq(c->max_connections, 16384);
	ck_assert_ptr_null(c->privileged_group);
	ck_assert_uint_eq(c->privileged_gid, (gid_t)-1);
	ck_assert_uint_eq(c->access_cache_entries, 4096);
	ck_assert_int_eq(c->backend, CONFIG_BACKEND_AUTO);
	ck_assert_uint_eq(c->path_cache_entries, 65536);
	ck_assert_int_eq(c->log_level, LOG_NOTICE);
	ck_assert_str_eq(c->socket_path, "/run/fsnoted/fsnoted.sock");
}

START_TEST(test_defaults)
{
	struct config c;
	ck_assert_int_eq(config_defaults(&c), 0);
	check_defaults(&c);
	config_clear(&c);
	ck_assert_ptr_null(c.socket_path);
	config_clear(&c);       /* twice is fine */
	config_clear(NULL);
}
END_TEST

START_TEST(test_missing_ok)
{
	struct config c;
	ck_assert_int_eq(config_load(path, true, &c, err, sizeof(err)), 0);
	check_defaults(&c);
	config_clear(&c);
}
END_TEST

START_TEST(test_missing_not_ok)
{
	struct config c;
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), -ENOENT);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, "No such file"),
		      "got '%s'", err);
}
END_TEST

START_TEST(test_empty_object)
{
	struct config c;
	write_file(" {\n}\n");
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	check_defaults(&c);
	config_clear(&c);
}
END_TEST

START_TEST(test_every_key)
{
	struct config c;
	char text[2048];
	struct group *g = getgrgid(0);

	ck_assert_ptr_nonnull(g);
	snprintf(text, sizeof(text),
		 "{\n"
		 "  \"pool_max_events\": 1024,\n"
		 "  \"pool_max_bytes\": 1048576,\n"
		 "  \"history_events\": 0,\n"
		 "  \"coalesce_ms\": 0,\n"
		 "  \"ring_default_depth\": 4,\n"
		 "  \"ring_max_depth\": 16777216,\n"
		 "  \"latency_ms\": 60000,\n"
		 "  \"batch\": 1,\n"
		 "  \"max_connections_per_uid\": 3,\n"
		 "  \"max_subscriptions_per_uid\": 5,\n"
		 "  \"max_watches_per_uid\": 16777216,\n"
		 "  \"max_queued_bytes_per_uid\": 65536,\n"
		 "  \"handshake_timeout_ms\": 100,\n"
		 "  \"max_connections\": 7,\n"
		 "  \"privileged_group\": \"%s\",\n"
		 "  \"access_cache_entries\": 16,\n"
		 "  \"backend\": \"inotify\",\n"
		 "  \"path_cache_entries\": 64,\n"
		 "  \"log_level\": \"debug\",\n"
		 "  \"socket\": \"/tmp/x/fsnoted.sock\"\n"
		 "}\n",
		 g->gr_name);
	write_file(text);
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.pool_max_events, 1024);
	ck_assert_uint_eq(c.pool_max_bytes, 1048576);
	ck_assert_uint_eq(c.history_events, 0);
	ck_assert_uint_eq(c.coalesce_ms, 0);
	ck_assert_uint_eq(c.ring_default_depth, 4);
	ck_assert_uint_eq(c.ring_max_depth, 16777216);
	ck_assert_uint_eq(c.latency_ms, 60000);
	ck_assert_uint_eq(c.batch, 1);
	ck_assert_uint_eq(c.max_connections_per_uid, 3);
	ck_assert_uint_eq(c.max_subscriptions_per_uid, 5);
	ck_assert_uint_eq(c.max_watches_per_uid, 16777216);
	ck_assert_uint_eq(c.max_queued_bytes_per_uid, 65536);
	ck_assert_uint_eq(c.handshake_timeout_ms, 100);
	ck_assert_uint_eq(c.max_connections, 7);
	ck_assert_str_eq(c.privileged_group, g->gr_name);
	ck_assert_uint_eq(c.privileged_gid, 0);
	ck_assert_uint_eq(c.access_cache_entries, 16);
	ck_assert_int_eq(c.backend, CONFIG_BACKEND_INOTIFY);
	ck_assert_uint_eq(c.path_cache_entries, 64);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	ck_assert_str_eq(c.socket_path, "/tmp/x/fsnoted.sock");
	config_clear(&c);
}
END_TEST

/* Keys not in the file keep their defaults; escapes in keys are decoded;
 * a null group means none. */
START_TEST(test_partial_and_escapes)
{
	struct config c;
	write_file("{\"b\\u0061tch\": 9, \"privileged_group\": null, \"backend\": \"fanotify\"}");
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.batch, 9);
	ck_assert_ptr_null(c.privileged_group);
	ck_assert_uint_eq(c.privileged_gid, (gid_t)-1);
	ck_assert_int_eq(c.backend, CONFIG_BACKEND_FANOTIFY);
	ck_assert_uint_eq(c.latency_ms, 10);
	ck_assert_str_eq(c.socket_path, "/run/fsnoted/fsnoted.sock");
	config_clear(&c);
}
END_TEST

START_TEST(test_log_levels_and_backends)
{
	ck_assert_int_eq(config_parse_log_level("error"), LOG_ERR);
	ck_assert_int_eq(config_parse_log_level("warning"), LOG_WARNING);
	ck_assert_int_eq(config_parse_log_level("notice"), LOG_NOTICE);
	ck_assert_int_eq(config_parse_log_level("info"), LOG_INFO);
	ck_assert_int_eq(config_parse_log_level("debug"), LOG_DEBUG);
	ck_assert_int_eq(config_parse_log_level("Debug"), -EINVAL);
	ck_assert_int_eq(config_parse_log_level(""), -EINVAL);
	ck_assert_int_eq(config_parse_log_level(NULL), -EINVAL);
	ck_assert_str_eq(config_backend_name(CONFIG_BACKEND_AUTO), "auto");
	ck_assert_str_eq(config_backend_name(CONFIG_BACKEND_FANOTIFY), "fanotify");
	ck_assert_str_eq(config_backend_name(CONFIG_BACKEND_INOTIFY), "inotify");
	ck_assert_str_eq(config_backend_name((enum config_backend)42), "unknown");
}
END_TEST

/* Syntax errors: jansson's line and column. */
START_TEST(test_syntax_errors)
{
	expect_error("{\"latency_ms\": 5,\n \"batch\": }", "2:11: ");
	expect_error("{\"a\": tru}", "1:9: invalid token");
	expect_error("{\"latency_ms\": 5,}", "1:18: ");
	expect_error("{\"latency_ms\": 5} x", "1:19: end of file expected");
	expect_error("", "1:0: ");
	expect_error("  5", "1:3: ");
	/* duplicates: the second occurrence */
	expect_error("{\"batch\": 1,\n \"batch\": 2}", "2:8: duplicate object key");
	expect_error("{\"batch\": 1, \"b\\u0061tch\": 2}", "1:25: duplicate object key");
}
END_TEST

START_TEST(test_top_level)
{
	expect_error("[1, 2]", "1:1: the top level must be an object");
	expect_error("\n\n   [ ]\n", "3:4: the top level must be an object");
	expect_error("\"str\"", "1:5: ");
}
END_TEST

/* Semantic errors point at the key (unknown key) or at the value. */
START_TEST(test_unknown_key)
{
	expect_error("{\n  \"latency_ms\": 5,\n  \"bogus\": 1\n}", "3:3: unknown key \"bogus\"");
	/* nested objects are values of unknown keys, their keys are not seen */
	expect_error("{\"x\": {\"batch\": 1}}", "1:2: unknown key \"x\"");
	/* columns count characters, not bytes */
	expect_error("{\"socket\": \"/r\xc3\xa9\xc3\xa9.sock\", \"nope\": 1}",
		     "1:25: unknown key \"nope\"");
	/* a hostile key is escaped in the message */
	expect_error("{\"a\\nb\": 1}", "1:2: unknown key \"a\\x0ab\"");
	/* keys are case-sensitive */
	expect_error("{\"Batch\": 1}", "1:2: unknown key \"Batch\"");
}
END_TEST

START_TEST(test_bad_values)
{
	expect_error("{\"batch\": \"16\"}", "1:11: \"batch\" must be an integer from 1 to");
	expect_error("{\"batch\": 1.5}", "1:11: \"batch\" must be an integer");
	expect_error("{\"batch\": true}", "1:11: \"batch\" must be an integer");
	expect_error("{\"batch\": 0}", "1:11: \"batch\" must be an integer");
	expect_error("{\"latency_ms\": -1}", "1:16: \"latency_ms\" must be an integer from 0 to 60000");
	expect_error("{\"latency_ms\": 60001}", "1:16: \"latency_ms\"");
	expect_error("{\"pool_max_events\": 1023}", "1:21: \"pool_max_events\" must be an integer from 1024");
	expect_error("{\"pool_max_bytes\": 1048575}", "1:20: \"pool_max_bytes\" must be an integer from 1048576");
	expect_error("{\"ring_max_depth\": 3}", "1:20: \"ring_max_depth\" must be an integer from 4 to 16777216");
	expect_error("{\"ring_default_depth\": 16777217}", "1:24: \"ring_default_depth\"");
	expect_error("{\"handshake_timeout_ms\": 99}",
		     "1:26: \"handshake_timeout_ms\" must be an integer from 100 to 60000");
	expect_error("{\"handshake_timeout_ms\": 60001}", "1:26: ");
	expect_error("{\"max_connections\": 0}", "1:21: \"max_connections\"");
	expect_error("{\"max_connections_per_uid\": 0}", "1:29: \"max_connections_per_uid\"");
	expect_error("{\"max_subscriptions_per_uid\": 0}", "1:31: \"max_subscriptions_per_uid\"");
	expect_error("{\"max_watches_per_uid\": 16777217}",
		     "1:25: \"max_watches_per_uid\" must be an integer from 0 to 16777216");
	expect_error("{\"max_watches_per_uid\": -1}", "1:25: \"max_watches_per_uid\"");
	expect_error("{\"max_queued_bytes_per_uid\": 1000}", "1:30: \"max_queued_bytes_per_uid\"");
	expect_error("{\"access_cache_entries\": 15}", "1:26: \"access_cache_entries\"");
	expect_error("{\"path_cache_entries\": 63}", "1:24: \"path_cache_entries\"");
	expect_error("{\"coalesce_ms\": 60001}", "1:17: \"coalesce_ms\"");
	expect_error("{\"history_events\": 99999999999}", "1:20: \"history_events\"");
	expect_error("{\"batch\": null}", "1:11: ");
	/* the first error in the file is the one reported */
	expect_error("{\n\t\"batch\": 0,\n\t\"latency_ms\": -5\n}", "2:11: \"batch\"");
}
END_TEST

START_TEST(test_journal_keys)
{
	struct config c;
	ck_assert_int_eq(config_defaults(&c), 0);
	ck_assert(c.journal);
	ck_assert_ptr_null(c.journal_dir);
	ck_assert_uint_eq(c.journal_max_bytes, 256u << 20);
	ck_assert_uint_eq(c.journal_max_age_s, 30u * 86400);
	ck_assert_uint_eq(c.n_journal_exclude, 0);
	config_clear(&c);
	write_file("{\"journal\": false, \"journal_dir\": \"/srv/j\", \"journal_max_bytes\": 1048576,\n"
		   " \"journal_max_age\": 0, \"journal_sync_ms\": 250,\n"
		   " \"journal_exclude\": [\"/home/a/.private\", \"/var/spool\"]}");
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	ck_assert(!c.journal);
	ck_assert_str_eq(c.journal_dir, "/srv/j");
	ck_assert_uint_eq(c.journal_max_bytes, 1048576);
	ck_assert_uint_eq(c.journal_max_age_s, 0);
	ck_assert_uint_eq(c.journal_sync_ms, 250);
	ck_assert_uint_eq(c.n_journal_exclude, 2);
	ck_assert_str_eq(c.journal_exclude[1], "/var/spool");
	config_clear(&c);
	config_clear(&c); /* twice: cleared means empty */
	expect_error("{\"journal\": 1}", "1:13: \"journal\" must be true or false");
	expect_error("{\"journal_dir\": \"var/lib\"}", "1:17: \"journal_dir\" must be an absolute path");
	expect_error("{\"journal_max_bytes\": 1048575}", "1:23: \"journal_max_bytes\" must be an integer");
	expect_error("{\"journal_max_age\": -1}", "1:21: \"journal_max_age\"");
	expect_error("{\"journal_sync_ms\": 9}", "1:21: \"journal_sync_ms\"");
	expect_error("{\"journal_exclude\": \"/x\"}", "1:21: \"journal_exclude\" must be an array");
	expect_error("{\"journal_exclude\": [\"/x\", \"y\"]}",
		     "1:21: \"journal_exclude\" element 1 must be an absolute path");
	expect_error("{\"journal_exclude\": [\"/x\", 3]}", "1:21: \"journal_exclude\" element 1");
}
END_TEST

START_TEST(test_bad_names)
{
	expect_error("{\"backend\": \"kqueue\"}", "1:13: \"backend\" must be \"auto\"");
	expect_error("{\"backend\": 1}", "1:13: \"backend\"");
	expect_error("{\"log_level\": \"verbose\"}", "1:15: \"log_level\" must be \"error\"");
	expect_error("{\"log_level\": \"ERROR\"}", "1:15: \"log_level\"");
	expect_error("{\n  \"privileged_group\":\n    \"no-such-group-fsnoted\"}",
		     "3:5: unknown group \"no-such-group-fsnoted\"");
	expect_error("{\"privileged_group\": \"\"}", "1:22: \"privileged_group\" must be a group name");
	expect_error("{\"privileged_group\": 0}", "1:22: \"privileged_group\"");
	expect_error("{\"socket\": \"run/fsnoted.sock\"}", "1:12: \"socket\" must be an absolute path");
	expect_error("{\"socket\": null}", "1:12: \"socket\"");

	char text[400] = "{\"socket\": \"/";
	size_t n = strlen(text);
	memset(text + n, 'a', 107);     /* 108 bytes with the slash: no room for the NUL */
	strcpy(text + n + 107, "\"}");
	expect_error(text, "1:12: \"socket\" must be an absolute path shorter than 108 bytes");
	text[n + 106] = '"';            /* 107 bytes fit */
	text[n + 107] = '}';
	text[n + 108] = '\0';
	write_file(text);
	struct config c;
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(c.socket_path), 107);
	config_clear(&c);
}
END_TEST

START_TEST(test_cross_checks)
{
	/* default above max: the later of the two in the file */
	expect_error("{\"ring_max_depth\": 100,\n \"ring_default_depth\": 200}",
		     "2:24: \"ring_default_depth\" (200) must not exceed \"ring_max_depth\" (100)");
	expect_error("{\"ring_default_depth\": 200,\n \"ring_max_depth\": 100}", "2:20: ");
	/* only one of the two set: that one */
	expect_error("{\"ring_default_depth\": 200000}", "1:24: \"ring_default_depth\" (200000)");
	expect_error("{\"pool_max_events\": 2000}", "1:21: \"history_events\" (65536) must not exceed");
}
END_TEST

/* A maximum below the default depth, with no default named, lowers the
 * default with it. */
START_TEST(test_max_depth_lowers_default)
{
	struct config c;
	write_file("{\"ring_max_depth\": 100}");
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.ring_max_depth, 100);
	ck_assert_uint_eq(c.ring_default_depth, 100);
	config_clear(&c);
}
END_TEST

START_TEST(test_oversized)
{
	struct config c;
	size_t big = 1024 * 1024 + 1;
	char *text = malloc(big + 1);
	ck_assert_ptr_nonnull(text);
	memset(text, ' ', big);
	text[0] = '{';
	text[big - 1] = '}';
	text[big] = '\0';
	write_file(text);
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), -EFBIG);
	ck_assert_msg(strncmp(err, path, strlen(path)) == 0 && strstr(err, "larger than"), "got '%s'", err);
	/* exactly at the bound is fine */
	text[big - 2] = '}';
	text[big - 1] = '\0';
	write_file(text);
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), 0);
	config_clear(&c);
	free(text);
}
END_TEST

START_TEST(test_not_a_file)
{
	struct config c;
	ck_assert_int_eq(config_load(dir, false, &c, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "not a regular file"), "got '%s'", err);
	/* a directory is not "missing" */
	ck_assert_int_eq(config_load(dir, true, &c, err, sizeof(err)), -EINVAL);
}
END_TEST

/* A failed load writes nothing to *ret, whatever the reason. */
START_TEST(test_ret_untouched)
{
	static const char *const bad[] = {
		"{\"batch\": 5, \"latency_ms\": 1, \"bogus\": 1}",
		"{\"socket\": \"/a\", \"backend\": \"x\"}",
		"{\"privileged_group\": \"root\", \"log_level\": 3}",
		"{",
		"[]",
	};
	struct config c, copy;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&c, 0xa5, sizeof(c));
		memcpy(&copy, &c, sizeof(c));
		write_file(bad[i]);
		ck_assert_int_lt(config_load(path, false, &c, err, sizeof(err)), 0);
		ck_assert_msg(memcmp(&c, &copy, sizeof(c)) == 0, "ret written for %s", bad[i]);
	}
	unlink(path);
	memset(&c, 0xa5, sizeof(c));
	ck_assert_int_eq(config_load(path, false, &c, err, sizeof(err)), -ENOENT);
	ck_assert_msg(memcmp(&c, &copy, sizeof(c)) == 0, "ret written for a missing file");
}
END_TEST

/* A small or absent error buffer is never overrun. */
START_TEST(test_small_err_buffer)
{
	struct config c;
	char small[8];
	memset(small, 'x', sizeof(small));
	write_file("{\"bogus\": 1}");
	ck_assert_int_eq(config_load(path, false, &c, small, 4), -EINVAL);
	ck_assert_uint_eq(strlen(small), 3);
	ck_assert_int_eq(small[4], 'x');
	ck_assert_int_eq(config_load(path, false, &c, NULL, 0), -EINVAL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_missing_ok);
	tcase_add_test(tc, test_missing_not_ok);
	tcase_add_test(tc, test_empty_object);
	tcase_add_test(tc, test_every_key);
	tcase_add_test(tc, test_partial_and_escapes);
	tcase_add_test(tc, test_log_levels_and_backends);
	tcase_add_test(tc, test_syntax_errors);
	tcase_add_test(tc, test_top_level);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_bad_names);
	tcase_add_test(tc, test_cross_checks);
	tcase_add_test(tc, test_max_depth_lowers_default);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_not_a_file);
	tcase_add_test(tc, test_ret_untouched);
	tcase_add_test(tc, test_small_err_buffer);
	tcase_add_test(tc, test_journal_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
