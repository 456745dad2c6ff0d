/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-jsonpos.c - unit tests for the cursor that finds lines and columns
 * in a configuration file and for the error line it goes into.  The two
 * readers' own messages are tested in check-config and check-relay.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jsonpos.h"

static struct jsonpos_cursor at_text(const char *text)
{
	struct jsonpos_cursor c;
	jsonpos_init(&c, text, strlen(text));
	return c;
}

START_TEST(columns_count_characters)
{
	/* "é" is two bytes, "😀" four: one column each */
	struct jsonpos_cursor c = at_text("\"\xc3\xa9\xf0\x9f\x98\x80\"  x");

	jsonpos_skip_string(&c);
	ck_assert_uint_eq(c.at.line, 1);
	ck_assert_uint_eq(c.at.col, 5);
	jsonpos_skip_space(&c);
	ck_assert_int_eq(jsonpos_peek(&c), 'x');
	ck_assert_uint_eq(c.at.col, 7);
	jsonpos_next(&c);
	ck_assert_int_eq(jsonpos_peek(&c), '\0');
	/* at the end the cursor stays put */
	jsonpos_next(&c);
	ck_assert_uint_eq(c.at.col, 8);
}
END_TEST

START_TEST(lines_and_values)
{
	struct jsonpos_cursor c = at_text("{\"a\": {\"b\": [1, \"]\\\"\", {}]},\n\t \"c\"\r\n:\n  true }");

	jsonpos_next(&c); /* '{' */
	jsonpos_skip_space(&c);
	jsonpos_skip_string(&c);
	jsonpos_next(&c); /* ':' */
	/* a nested value with a bracket and an escaped quote inside a string */
	jsonpos_skip_value(&c);
	ck_assert_int_eq(jsonpos_peek(&c), ',');
	jsonpos_next(&c);
	jsonpos_skip_space(&c);
	ck_assert_int_eq(jsonpos_peek(&c), '"');
	ck_assert_uint_eq(c.at.line, 2);
	ck_assert_uint_eq(c.at.col, 3);
	jsonpos_skip_string(&c);
	jsonpos_skip_space(&c);
	jsonpos_next(&c); /* ':' */
	jsonpos_skip_space(&c);
	ck_assert_uint_eq(c.at.line, 4);
	ck_assert_uint_eq(c.at.col, 3);
	jsonpos_skip_value(&c); /* a scalar ends at the space */
	ck_assert_int_eq(jsonpos_peek(&c), ' ');
	ck_assert_uint_eq(c.at.col, 7);
}
END_TEST

START_TEST(error_lines)
{
	char err[64];

	jsonpos_error(err, sizeof(err), "/etc/x.json", (struct jsonpos){ 3, 14 }, "bad \"%s\"", "k");
	ck_assert_str_eq(err, "/etc/x.json:3:14: bad \"k\"");
	jsonpos_error(err, sizeof(err), "/etc/x.json", (struct jsonpos){ 0, 0 }, "too large");
	ck_assert_str_eq(err, "/etc/x.json: too large");
	/* cut, and still a string */
	jsonpos_error(err, 12, "/etc/x.json", (struct jsonpos){ 1, 1 }, "message");
	ck_assert_str_eq(err, "/etc/x.json");
	jsonpos_error(err, 20, "/etc/x.json", (struct jsonpos){ 1, 1 }, "message");
	ck_assert_str_eq(err, "/etc/x.json:1:1: me");
	/* no buffer: nothing written, nothing to crash on */
	jsonpos_error(NULL, 0, "/etc/x.json", (struct jsonpos){ 1, 1 }, "message");
	memcpy(err, "keep", 5);
	jsonpos_error(err, 0, "/etc/x.json", (struct jsonpos){ 1, 1 }, "message");
	ck_assert_str_eq(err, "keep");
}
END_TEST

START_TEST(jansson_positions)
{
	struct jsonpos p = jsonpos_from_jansson(2, 11);
	ck_assert_uint_eq(p.line, 2);
	ck_assert_uint_eq(p.col, 11);
	/* an empty file is line 1, column 0; unknown is shown as that too */
	p = jsonpos_from_jansson(1, 0);
	ck_assert_uint_eq(p.line, 1);
	ck_assert_uint_eq(p.col, 0);
	p = jsonpos_from_jansson(-1, -1);
	ck_assert_uint_eq(p.line, 1);
	ck_assert_uint_eq(p.col, 0);
}
END_TEST

static Suite *jsonpos_suite(void)
{
	Suite *s = suite_create("jsonpos");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, columns_count_characters);
	tcase_add_test(tc, lines_and_values);
	tcase_add_test(tc, error_lines);
	tcase_add_test(tc, jansson_positions);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jsonpos_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
