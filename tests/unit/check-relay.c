/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-relay.c - unit tests for fsnote-relay's pure parts: a record's
 * JSON body both ways (every field, names that are not UTF-8, renames,
 * dropped records) ends as the same event it started as; hostile bodies
 * are refused with a reason; the configuration file's values and its
 * errors with their exact FILE:LINE:COLUMN.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "fsnote.h"
#include "fsnotectl-format.h"
#include "../../relay/config.h"
#include "../../relay/record.h"

/* --- records ------------------------------------------------------------------- */

static fsnote_event *event_of(const struct codec_event *ce)
{
	uint8_t frame[RECORD_FRAME_MAX];
	fsnote_event *e = NULL;
	int n = codec_encode_event(frame, sizeof(frame), ce);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fsnote_event_decode(frame, (size_t)n, &e), 0);
	return e;
}

/* JSON and back: the event that comes out equals @ce in every field. */
static void roundtrip(const struct codec_event *ce)
{
	fsnote_event *a = event_of(ce), *b = NULL;
	uint8_t frame[RECORD_FRAME_MAX];
	size_t len;
	char *host = NULL;
	const char *why = NULL;
	char *body = record_encode(a, "hostA");

	ck_assert_ptr_nonnull(body);
	ck_assert_int_eq(record_decode(body, strlen(body), frame, &len, &host, &why), 0);
	ck_assert_str_eq(host, "hostA");
	ck_assert_int_eq(fsnote_event_decode(frame, len, &b), 0);
	ck_assert_uint_eq(fsnote_event_id(b), ce->id);
	ck_assert_uint_eq(fsnote_event_sub_id(b), ce->sub_id);
	ck_assert_uint_eq(fsnote_event_type(b), ce->type);
	ck_assert_uint_eq(fsnote_event_flags(b), ce->flags);
	ck_assert_uint_eq(fsnote_event_pid(b), ce->pid);
	ck_assert_uint_eq(fsnote_event_time_ns(b), ce->time_ns);
	size_t pl;
	const char *p = fsnote_event_path(b, &pl);
	ck_assert_uint_eq(pl, ce->path_len);
	ck_assert_mem_eq(p, ce->path, pl);
	p = fsnote_event_dest(b, &pl);
	if (ce->dest) {
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(pl, ce->dest_len);
		ck_assert_mem_eq(p, ce->dest, pl);
	} else {
		ck_assert_ptr_null(p);
	}
	for (int d = 0; d < 2; d++) {
		const struct codec_stat *st = d ? &ce->dest_st : &ce->st;
		uint64_t v64;
		uint32_t v32;
		if (d && !ce->dest)
			break;
		ck_assert_int_eq(fsnote_event_ino(b, d, &v64) == 0, st->have_ino);
		if (st->have_ino)
			ck_assert_uint_eq(v64, st->ino);
		ck_assert_int_eq(fsnote_event_dev(b, d, &v64) == 0, st->have_dev);
		if (st->have_dev)
			ck_assert_uint_eq(v64, st->dev);
		ck_assert_int_eq(fsnote_event_mode(b, d, &v32) == 0, st->have_mode);
		if (st->have_mode)
			ck_assert_uint_eq(v32, st->mode);
		ck_assert_int_eq(fsnote_event_uid(b, d, &v32) == 0, st->have_uid);
		if (st->have_uid)
			ck_assert_uint_eq(v32, st->uid);
		ck_assert_int_eq(fsnote_event_gid(b, d, &v32) == 0, st->have_gid);
		if (st->have_gid)
			ck_assert_uint_eq(v32, st->gid);
	}
	ck_assert_uint_eq(fsnote_event_count(b), ce->count);
	ck_assert_uint_eq(fsnote_event_id_first(b), ce->id_first);
	ck_assert_uint_eq(fsnote_event_id_last(b), ce->id_last);
	p = fsnote_event_rescan(b, &pl);
	if (ce->rescan) {
		ck_assert_uint_eq(pl, ce->rescan_len);
		ck_assert_mem_eq(p, ce->rescan, pl);
	}
	free(body);
	free(host);
	fsnote_event_free(a);
	fsnote_event_free(b);
}

START_TEST(test_roundtrip_create)
{
	struct codec_event ce = {
		.sub_id = 3, .id = 123456789012345, .type = FSNOTE_CREATE, .flags = FSNOTE_F_COMBINED,
		.time_ns = UINT64_C(1700000000123456789), .pid = 4242,
		.path = "/srv/src/a.c", .path_len = 12,
		.st = { .have_dev = true, .have_ino = true, .have_mode = true, .have_uid = true,
			.have_gid = true, .dev = 2049, .ino = 77, .mode = 0100644, .uid = 1000, .gid = 100 },
	};
	roundtrip(&ce);
	ce.st = (struct codec_stat){ 0 };
	ce.flags = FSNOTE_F_IS_DIR | (UINT32_C(1) << 30); /* a flag this version has no name for */
	roundtrip(&ce);
}
END_TEST

START_TEST(test_roundtrip_bytes)
{
	/* not UTF-8, a C1 control, a lone continuation byte, an overlong '/' */
	static const char path[] = "/srv/odd\xff\xc2\x85\x80name\xc0\xaf.txt";
	struct codec_event ce = {
		.id = 9, .type = FSNOTE_MODIFY, .time_ns = 1, .path = path, .path_len = sizeof(path) - 1,
	};
	roundtrip(&ce);
}
END_TEST

/* The relay's body and "fsnotectl watch --json" write a name's bytes
 * alike, both keys, byte for byte (both follow protocol/jsonname.h, but
 * escape through different writers). */
START_TEST(test_names_as_fsnotectl_writes_them)
{
	static const char *const names[] = {
		"/plain", "/caf\xc3\xa9 \"q\" \\ \t\x01\x7f", "/odd\xff\xc2\x85\x80name\xc0\xaf",
		"/\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82", "/\"\xfe\n\x1f",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *dest = names[(i + 1) % (sizeof(names) / sizeof(names[0]))];
		struct codec_event ce = {
			.id = 3, .type = FSNOTE_RENAME, .time_ns = 1, .path = names[i],
			.path_len = strlen(names[i]), .dest = dest, .dest_len = strlen(dest),
		};
		fsnote_event *e = event_of(&ce);
		char *body = record_encode(e, "h");
		struct fmt_event v;
		struct outbuf o = { .fd = -1 };
		fmt_event_from(&v, e);
		fmt_json(&o, &v);
		outbuf_add(&o, "", 1);
		ck_assert(!o.oom);
		/* from "path" to "is_dir": path, dest and their _base64 */
		char *from = strstr(o.p, ",\"path\":"), *to = strstr(o.p, ",\"is_dir\":");
		ck_assert_ptr_nonnull(body);
		ck_assert_ptr_nonnull(from);
		ck_assert_ptr_nonnull(to);
		*to = '\0';
		ck_assert_msg(strstr(body, from), "name %zu: relay %s, fsnotectl %s", i, body, from);
		free(body);
		outbuf_done(&o);
		fsnote_event_free(e);
	}
}
END_TEST

START_TEST(test_roundtrip_rename_and_dropped)
{
	struct codec_event ce = {
		.id = 10, .type = FSNOTE_RENAME, .time_ns = 5, .path = "/a/x", .path_len = 4,
		.dest = "/a/\xfe", .dest_len = 4,
		.dest_st = { .have_ino = true, .ino = 12, .have_mode = true, .mode = 040755 },
		.flags = FSNOTE_F_IS_DIR,
	};
	roundtrip(&ce);
	struct codec_event d = {
		.id = 11, .type = FSNOTE_DROPPED, .time_ns = 6, .path = "/a", .path_len = 2,
		.flags = FSNOTE_F_DROPPED | FSNOTE_F_MUST_RESCAN | FSNOTE_F_RING_OVERFLOW,
		.count = 24, .id_first = 3, .id_last = 26, .rescan = "/a/b", .rescan_len = 4,
	};
	roundtrip(&d);
}
END_TEST

START_TEST(test_event_decode_refuses)
{
	struct codec_event ce = { .id = 1, .type = FSNOTE_CREATE, .path = "/a", .path_len = 2 };
	uint8_t frame[RECORD_FRAME_MAX + 8];
	fsnote_event *e = NULL;
	int n = codec_encode_event(frame, RECORD_FRAME_MAX, &ce);

	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(fsnote_event_decode(frame, (size_t)n - 1, &e), -EBADMSG);
	ck_assert_int_eq(fsnote_event_decode(frame, (size_t)n + 4, &e), -EBADMSG);
	ck_assert_int_eq(fsnote_event_decode(frame, 3, &e), -EBADMSG);
	ck_assert_int_eq(fsnote_event_decode(NULL, 0, &e), -EINVAL);
	ck_assert_ptr_null(e);
	frame[4] ^= 0x40; /* the record type: no longer an event */
	ck_assert_int_eq(fsnote_event_decode(frame, (size_t)n, &e), -EBADMSG);
	ck_assert_ptr_null(e);
}
END_TEST

static void refused(const char *body, const char *reason)
{
	uint8_t frame[RECORD_FRAME_MAX];
	size_t len;
	const char *why = NULL;

	ck_assert_int_eq(record_decode(body, strlen(body), frame, &len, NULL, &why), -EBADMSG);
	ck_assert_ptr_nonnull(why);
	ck_assert_msg(strstr(why, reason), "for %s: '%s' does not say '%s'", body, why, reason);
}

#define OK_TAIL "\"sub_id\":1,\"flags\":[],\"pid\":0,\"time_ns\":1"

START_TEST(test_hostile_bodies)
{
	refused("", "not a JSON object");
	refused("[1]", "not a JSON object");
	refused("{\"id\":1,\"id\":2}", "not a JSON object"); /* duplicate keys */
	refused("{\"type\":\"create\",\"path\":\"/a\"," OK_TAIL "}", "\"id\"");
	refused("{\"id\":-1,\"type\":\"create\",\"path\":\"/a\"," OK_TAIL "}", "\"id\"");
	refused("{\"id\":1.5,\"type\":\"create\",\"path\":\"/a\"," OK_TAIL "}", "\"id\"");
	refused("{\"id\":1,\"type\":\"nope\",\"path\":\"/a\"," OK_TAIL "}", "type");
	refused("{\"id\":1,\"type\":\"type0\",\"path\":\"/a\"," OK_TAIL "}", "type");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"a\"," OK_TAIL "}", "inconsistent");
	refused("{\"id\":1,\"type\":\"create\",\"path\":7," OK_TAIL "}", "path");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"path_base64\":\"!!!!\"," OK_TAIL "}", "path");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"path_base64\":\"L2EAYg==\"," OK_TAIL "}", "path"); /* a NUL */
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\\u0000b\"," OK_TAIL "}", "not a JSON object");
	refused("{\"id\":1,\"type\":\"rename\",\"path\":\"/a\"," OK_TAIL "}", "inconsistent");
	refused("{\"id\":1,\"type\":\"dropped\",\"path\":\"/a\"," OK_TAIL "}", "dropped");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"uid\":4294967296," OK_TAIL "}", "attribute");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"host\":3," OK_TAIL "}", "host");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"sub_id\":1,\"flags\":[\"bit32\"],\"pid\":0,\"time_ns\":1}", "flags");
	refused("{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"sub_id\":1,\"flags\":\"x\",\"pid\":0,\"time_ns\":1}", "flags");

	/* a path over the protocol's limit */
	size_t n = 5000;
	char *big = malloc(n + 200);
	ck_assert_ptr_nonnull(big);
	int k = snprintf(big, 200, "{\"id\":1,\"type\":\"create\"," OK_TAIL ",\"path\":\"/");
	memset(big + k, 'a', n);
	strcpy(big + k + n, "\"}");
	refused(big, "path");
	/* and a body over the size bound */
	char *huge = malloc(RECORD_BODY_MAX + 10);
	ck_assert_ptr_nonnull(huge);
	memset(huge, ' ', RECORD_BODY_MAX + 9);
	huge[RECORD_BODY_MAX + 9] = '\0';
	refused(huge, "64 KiB");
	free(big);
	free(huge);

	/* and one that is fine, to show the tail above is not the problem */
	uint8_t frame[RECORD_FRAME_MAX];
	size_t len;
	const char *why;
	const char *ok = "{\"id\":1,\"type\":\"create\",\"path\":\"/a\",\"extra\":[1]," OK_TAIL "}";
	ck_assert_int_eq(record_decode(ok, strlen(ok), frame, &len, NULL, &why), 0);
}
END_TEST

/* --- configuration --------------------------------------------------------------- */

static char dir[] = "/tmp/check-relay.XXXXXX";
static char path[64];
static char err[1024];

static void write_file(const char *text)
{
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
	strcpy(dir, "/tmp/check-relay.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/relay.json", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void expect_error(const char *text, const char *where)
{
	struct relay_config c;
	char want[256];

	write_file(text);
	err[0] = '\0';
	ck_assert_int_lt(relay_config_load(path, &c, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s%s", path, where);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "for %s\n got  '%s'\n want '%s...'", text, err, want);
	ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(test_config_values)
{
	struct relay_config c;

	write_file("{ \"host\": \"src-1\", \"paths\": [\"/srv\", \"/home/x\"],\n"
		   "  \"events\": [\"create\", \"rename\"], \"window\": 32, \"ack_timeout_ms\": 900,\n"
		   "  \"nats\": { \"url\": \"nats://a:1,nats://b:2\", \"user\": \"u\", \"password\": \"p\",\n"
		   "            \"tls\": { \"ca\": \"/ca.pem\", \"required\": true } },\n"
		   "  \"stream\": { \"name\": \"FS\", \"subjects\": [\"fsnote.>\", \"x.>\"], \"replicas\": 3,\n"
		   "              \"retention\": \"interest\", \"storage\": \"memory\", \"max_age_s\": 60,\n"
		   "              \"duplicate_window_s\": 600, \"create\": false } }\n");
	ck_assert_int_eq(relay_config_load(path, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.host, "src-1");
	ck_assert_uint_eq(c.n_paths, 2);
	ck_assert_str_eq(c.paths[1], "/home/x");
	ck_assert_uint_eq(c.mask, FSNOTE_MASK(FSNOTE_CREATE) | FSNOTE_MASK(FSNOTE_RENAME));
	ck_assert_uint_eq(c.window, 32);
	ck_assert_uint_eq(c.ack_timeout_ms, 900);
	ck_assert_str_eq(c.url, "nats://a:1,nats://b:2");
	ck_assert_str_eq(c.password, "p");
	ck_assert_str_eq(c.tls_ca, "/ca.pem");
	ck_assert(c.tls);
	ck_assert_str_eq(c.stream, "FS");
	ck_assert_uint_eq(c.n_subjects, 2);
	ck_assert_uint_eq(c.replicas, 3);
	ck_assert_int_eq(c.retention, RELAY_RETAIN_INTEREST);
	ck_assert_int_eq(c.storage, RELAY_STORE_MEMORY);
	ck_assert_uint_eq(c.max_age_s, 60);
	ck_assert_uint_eq(c.duplicate_window_s, 600);
	ck_assert(!c.create_stream);
	relay_config_clear(&c);
	relay_config_clear(NULL);

	/* the defaults */
	write_file("{\"paths\": [\"/\"]}");
	ck_assert_int_eq(relay_config_load(path, &c, err, sizeof(err)), 0);
	ck_assert(relay_host_valid(c.host));
	ck_assert_str_eq(c.stream, "FSNOTE");
	ck_assert_str_eq(c.subjects[0], "fsnote.>");
	ck_assert_uint_eq(c.window, 256);
	ck_assert_uint_eq(c.replicas, 1);
	ck_assert(c.create_stream);
	relay_config_clear(&c);
}
END_TEST

START_TEST(test_config_errors)
{
	expect_error("{ \"paths\": [\"/\"],\n  \"bogus\": 1 }", ":2:3: unknown key 'bogus'");
	expect_error("{ \"paths\": [\"/\"],\n \"stream\": {\n   \"replicas\": 9 } }",
		     ":3:4: 'stream.replicas' must be an integer from 1 to 5");
	expect_error("{ \"paths\": [\"/a\", \"rel\"] }", ":1:19: 'paths[1]' must be an absolute path");
	expect_error("{ \"paths\": [\"/\"], \"nats\": { \"tls\": { \"cert\": \"/c\" } } }", ":1:29: 'nats.tls' needs both");
	expect_error("{ \"paths\": [\"/\"], \"nats\": { \"tls\": { \"kee\": \"/c\" } } }", ":1:38: unknown key 'nats.tls.kee'");
	expect_error("{ \"paths\": [\"/\"], \"host\": \"a.b\" }", ":1:19: 'host' must be");
	expect_error("{ \"paths\": [\"/\"], \"events\": [\"create\", \"nope\"] }", ":1:40: 'events[1]' is not an event type");
	expect_error("{ \"paths\": [\"/\"], \"window\": \"8\" }", ":1:19: 'window' must be an integer");
	expect_error("{ \"paths\": [\"/\"], \"stream\": { \"name\": \"a.b\" } }", ":1:31: 'stream.name' must not contain");
	expect_error("{ \"paths\": [\"/\"], \"stream\": { \"retention\": \"forever\" } }", ":1:31: 'stream.retention' must be");
	expect_error("{ \"paths\": [\"/\"], \"nats\": { \"password\": \"p\" } }", ":1:29: 'nats.password' needs 'nats.user'");
	/* columns count characters, not bytes */
	expect_error("{ \"paths\": [\"/\xc3\xa9\"], \"bogus\": 1 }", ":1:20: unknown key 'bogus'");
	expect_error("{ \"window\": 2 }", ": 'paths' is required");
	expect_error("{ \"paths\": [\"/\"], \"paths\": [\"/\"] }", ":1:");       /* duplicate: jansson's position */
	expect_error("{ \"paths\": [\"/\"]\n  \"window\": 2 }", ":2:");       /* syntax */
	expect_error("[]", ":1:1: the configuration must be a JSON object");

	struct relay_config c;
	unlink(path);
	ck_assert_int_eq(relay_config_load(path, &c, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("record");
	tcase_add_test(tc, test_roundtrip_create);
	tcase_add_test(tc, test_roundtrip_bytes);
	tcase_add_test(tc, test_names_as_fsnotectl_writes_them);
	tcase_add_test(tc, test_roundtrip_rename_and_dropped);
	tcase_add_test(tc, test_hostile_bodies);
	tcase_add_test(tc, test_event_decode_refuses);
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_config_values);
	tcase_add_test(tc, test_config_errors);
	suite_add_tcase(s, tc);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
