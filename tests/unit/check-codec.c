/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-codec.c - unit tests for the frame encoder and decoder: a round
 * trip of every record type, and every malformed frame we can think of.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static uint8_t buf[FSNOTE_FRAME_MAX + 64];
static struct codec_record rec;

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid hello frame, hand-assembled: header, VERSION, DONE. */
static size_t raw_hello(uint8_t *p)
{
	put32(p, 8 + 12 + 8);
	put16(p + 4, FSNOTE_REQ_HELLO);
	put16(p + 6, 0);
	put16(p + 8, FSNOTE_ARG_VERSION);
	put16(p + 10, 0);
	put32(p + 12, 4);
	put32(p + 16, FSNOTE_PROTOCOL_VERSION);
	memset(p + 20, 0, 8);
	return 28;
}

START_TEST(test_raw_hello_decodes)
{
	size_t n = raw_hello(buf);
	uint32_t v;
	ck_assert_int_eq(codec_decode(buf, n, &rec), 0);
	ck_assert_uint_eq(rec.type, FSNOTE_REQ_HELLO);
	ck_assert_uint_eq(rec.n_args, 1);
	ck_assert_int_eq(codec_get_u32(&rec, FSNOTE_ARG_VERSION, &v), 0);
	ck_assert_uint_eq(v, FSNOTE_PROTOCOL_VERSION);
	ck_assert_int_eq(codec_get_u32(&rec, FSNOTE_ARG_REQ_ID, &v), -ENOENT);
}
END_TEST

/* Every record type, encoded with its required and optional arguments,
 * decodes back to the same values. */
struct arg_spec {
	uint16_t type;
	uint64_t num;
	const char *str;
};

static int encode(uint16_t type, const struct arg_spec *args, size_t n)
{
	struct codec_writer w;
	codec_writer_init(&w, buf, sizeof(buf), type);
	for (size_t i = 0; i < n; i++) {
		switch (codec_arg_kind(args[i].type)) {
		case FSNOTE_KIND_U32:
			codec_put_u32(&w, args[i].type, (uint32_t)args[i].num);
			break;
		case FSNOTE_KIND_U64:
			codec_put_u64(&w, args[i].type, args[i].num);
			break;
		case FSNOTE_KIND_STRING:
			codec_put_cstring(&w, args[i].type, args[i].str);
			break;
		default:
			ck_abort_msg("bad test argument");
		}
	}
	return codec_writer_finish(&w);
}

static void check_args(const struct arg_spec *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t v32;
		uint64_t v64;
		const char *s;
		size_t len;
		switch (codec_arg_kind(args[i].type)) {
		case FSNOTE_KIND_U32:
			ck_assert_int_eq(codec_get_u32(&rec, args[i].type, &v32), 0);
			ck_assert_uint_eq(v32, (uint32_t)args[i].num);
			break;
		case FSNOTE_KIND_U64:
			ck_assert_int_eq(codec_get_u64(&rec, args[i].type, &v64), 0);
			ck_assert_uint_eq(v64, args[i].num);
			break;
		default:
			ck_assert_int_eq(codec_get_string(&rec, args[i].type, &s, &len), 0);
			/* repeatable arguments: compare the i-th, in order */
			ck_assert_uint_eq(rec.args[i].type, args[i].type);
			ck_assert_str_eq((const char *)rec.args[i].value, args[i].str);
			ck_assert_uint_eq(rec.args[i].len, strlen(args[i].str) + 1);
			break;
		}
	}
}

#define ROUND_TRIP(rtype, ...)                                                  \
	do {                                                                    \
		const struct arg_spec a[] = { __VA_ARGS__ };                    \
		int n = encode(rtype, a, sizeof(a) / sizeof(a[0]));             \
		ck_assert_int_gt(n, 0);                                         \
		ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);        \
		ck_assert_uint_eq(rec.type, rtype);                             \
		ck_assert_uint_eq(rec.n_args, sizeof(a) / sizeof(a[0]));        \
		check_args(a, sizeof(a) / sizeof(a[0]));                        \
	} while (0)

START_TEST(test_round_trip_every_record)
{
	ROUND_TRIP(FSNOTE_REQ_HELLO, { FSNOTE_ARG_VERSION, 1, NULL },
		   { FSNOTE_ARG_CLIENT_NAME, 0, "fsnotectl" });
	ROUND_TRIP(FSNOTE_REQ_SUBSCRIBE, { FSNOTE_ARG_REQ_ID, 7, NULL },
		   { FSNOTE_ARG_SUB_FLAGS, FSNOTE_SUB_CHILDREN, NULL },
		   { FSNOTE_ARG_EVENT_MASK, FSNOTE_EV_DEFAULT_MASK, NULL },
		   { FSNOTE_ARG_DEV_FILTER, 0x803, NULL }, { FSNOTE_ARG_RING_DEPTH, 1024, NULL },
		   { FSNOTE_ARG_LATENCY_US, 0, NULL }, { FSNOTE_ARG_BATCH, 16, NULL },
		   { FSNOTE_ARG_SINCE_ID, UINT64_C(0xfedcba9876543210), NULL },
		   { FSNOTE_ARG_EXCLUDE, 0, ".git" }, { FSNOTE_ARG_EXCLUDE, 0, "*.tmp" });
	ROUND_TRIP(FSNOTE_REQ_UNSUBSCRIBE, { FSNOTE_ARG_REQ_ID, 8, NULL }, { FSNOTE_ARG_SUB_ID, 3, NULL });
	ROUND_TRIP(FSNOTE_REQ_CURRENT_ID, { FSNOTE_ARG_REQ_ID, 9, NULL }, { FSNOTE_ARG_TIME, 12345, NULL });
	ROUND_TRIP(FSNOTE_REQ_STATUS, { FSNOTE_ARG_REQ_ID, 10, NULL });
	ROUND_TRIP(FSNOTE_REQ_INJECT, { FSNOTE_ARG_REQ_ID, 11, NULL },
		   { FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_RENAME, NULL }, { FSNOTE_ARG_PATH, 0, "/a/b" },
		   { FSNOTE_ARG_DEST_PATH, 0, "/a/c" }, { FSNOTE_ARG_FLAGS, FSNOTE_FLAG_IS_DIR, NULL },
		   { FSNOTE_ARG_PID, 42, NULL }, { FSNOTE_ARG_DEV, 2049, NULL },
		   { FSNOTE_ARG_INO, 99, NULL }, { FSNOTE_ARG_MODE, 040755, NULL },
		   { FSNOTE_ARG_UID, 1000, NULL }, { FSNOTE_ARG_GID, 100, NULL });
	ROUND_TRIP(FSNOTE_REQ_FLUSH, { FSNOTE_ARG_REQ_ID, 12, NULL }, { FSNOTE_ARG_SUB_ID, 3, NULL });
	ROUND_TRIP(FSNOTE_REP_HELLO, { FSNOTE_ARG_VERSION, 1, NULL },
		   { FSNOTE_ARG_SERVER_VERSION, 0, "0.1.0" }, { FSNOTE_ARG_FEATURES, 3, NULL },
		   { FSNOTE_ARG_BACKEND, 0, "fanotify" });
	ROUND_TRIP(FSNOTE_REP_SUBSCRIBED, { FSNOTE_ARG_REQ_ID, 7, NULL }, { FSNOTE_ARG_SUB_ID, 3, NULL },
		   { FSNOTE_ARG_ID, 100, NULL }, { FSNOTE_ARG_PATH, 0, "/srv" }, { FSNOTE_ARG_DEV, 5, NULL });
	ROUND_TRIP(FSNOTE_REP_UNSUBSCRIBED, { FSNOTE_ARG_REQ_ID, 8, NULL }, { FSNOTE_ARG_SUB_ID, 3, NULL });
	ROUND_TRIP(FSNOTE_REP_CURRENT_ID, { FSNOTE_ARG_REQ_ID, 9, NULL }, { FSNOTE_ARG_ID, 101, NULL });
	ROUND_TRIP(FSNOTE_REP_STATUS, { FSNOTE_ARG_REQ_ID, 10, NULL }, { FSNOTE_ARG_JSON, 0, "{\"a\":1}" });
	ROUND_TRIP(FSNOTE_REP_INJECTED, { FSNOTE_ARG_REQ_ID, 11, NULL }, { FSNOTE_ARG_ID, 102, NULL });
	ROUND_TRIP(FSNOTE_REP_FLUSHED, { FSNOTE_ARG_REQ_ID, 12, NULL }, { FSNOTE_ARG_SUB_ID, 3, NULL },
		   { FSNOTE_ARG_ID, 103, NULL });
	ROUND_TRIP(FSNOTE_REP_ERROR, { FSNOTE_ARG_REQ_ID, 13, NULL }, { FSNOTE_ARG_ERRNO, EACCES, NULL },
		   { FSNOTE_ARG_MESSAGE, 0, "permission denied" });
	ROUND_TRIP(FSNOTE_REC_SHUTDOWN, { FSNOTE_ARG_MESSAGE, 0, "daemon stopping" });
}
END_TEST

START_TEST(test_event_round_trip)
{
	struct codec_event in = {
		.sub_id = 4, .id = UINT64_C(1) << 60, .type = FSNOTE_EV_RENAME,
		.flags = FSNOTE_FLAG_IS_DIR | FSNOTE_FLAG_COMBINED, .time_ns = 1700000000123456789ull,
		.pid = 4242, .path = "/srv/old\x01name", .path_len = 13,
		.st = { .have_dev = true, .dev = 2049, .have_ino = true, .ino = 77, .have_mode = true,
			.mode = 040700, .have_uid = true, .uid = 65534, .have_gid = true, .gid = 65534 },
		.dest = "/srv/new", .dest_len = 8,
		.dest_st = { .have_ino = true, .ino = 77 },
	};
	struct codec_event out;
	int n = codec_encode_event(buf, sizeof(buf), &in);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), 0);
	ck_assert_uint_eq(out.sub_id, 4);
	ck_assert_uint_eq(out.id, in.id);
	ck_assert_uint_eq(out.type, FSNOTE_EV_RENAME);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_uint_eq(out.time_ns, in.time_ns);
	ck_assert_uint_eq(out.pid, 4242);
	ck_assert_uint_eq(out.path_len, 13);
	ck_assert_mem_eq(out.path, in.path, 13);
	ck_assert(out.st.have_dev && out.st.dev == 2049 && out.st.ino == 77 && out.st.mode == 040700);
	ck_assert(out.st.uid == 65534 && out.st.gid == 65534);
	ck_assert_str_eq(out.dest, "/srv/new");
	ck_assert(out.dest_st.have_ino && !out.dest_st.have_dev);
	ck_assert_ptr_null(out.rescan);

	struct codec_event drop = {
		.sub_id = 1, .id = 10, .type = FSNOTE_EV_DROPPED,
		.flags = FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | FSNOTE_FLAG_RING_OVERFLOW,
		.path = "/srv", .path_len = 4, .count = 500, .id_first = 3, .id_last = 502,
		.rescan = "/srv/sub", .rescan_len = 8,
	};
	n = codec_encode_event(buf, sizeof(buf), &drop);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), 0);
	ck_assert_uint_eq(out.count, 500);
	ck_assert_uint_eq(out.id_first, 3);
	ck_assert_uint_eq(out.id_last, 502);
	ck_assert_str_eq(out.rescan, "/srv/sub");
}
END_TEST

START_TEST(test_event_inconsistent)
{
	struct codec_event ev = { .id = 1, .type = FSNOTE_EV_RENAME, .path = "/a", .path_len = 2 };
	struct codec_event out;
	int n = codec_encode_event(buf, sizeof(buf), &ev);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), -EBADMSG); /* rename without dest */

	ev.type = FSNOTE_EV_CREATE;
	ev.path = "relative";
	ev.path_len = 8;
	n = codec_encode_event(buf, sizeof(buf), &ev);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), -EBADMSG);

	ev.type = 99;
	ev.path = "/a";
	ev.path_len = 2;
	n = codec_encode_event(buf, sizeof(buf), &ev);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), -EBADMSG);
}
END_TEST

START_TEST(test_peek)
{
	size_t n = raw_hello(buf);
	uint32_t len = 0;
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(codec_frame_peek(buf, i, FSNOTE_REQUEST_MAX, &len), 0);
	ck_assert_int_eq(codec_frame_peek(buf, n, FSNOTE_REQUEST_MAX, &len), 1);
	ck_assert_uint_eq(len, n);
	ck_assert_int_eq(codec_frame_peek(buf, n + 5, FSNOTE_REQUEST_MAX, &len), 1);
	ck_assert_uint_eq(len, n);

	put32(buf, FSNOTE_REQUEST_MAX + 1);      /* oversized, known before the body arrives */
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EMSGSIZE);
	put32(buf, 0xffffffffu);
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_FRAME_MAX, &len), -EMSGSIZE);
	put32(buf, 0);                           /* zero-length frame */
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EBADMSG);
	put32(buf, FSNOTE_FRAME_MIN - 1);
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EBADMSG);
	raw_hello(buf);
	put16(buf + 6, 1);                       /* reserved field set */
	ck_assert_int_eq(codec_frame_peek(buf, n, FSNOTE_REQUEST_MAX, &len), -EBADMSG);
}
END_TEST

/* Each malformed frame is refused and leaves @rec untouched. */
static void expect_bad(size_t n, int err)
{
	memset(&rec, 0xa5, sizeof(rec.type));
	ck_assert_int_eq(codec_decode(buf, n, &rec), err);
	ck_assert_uint_eq(rec.type, 0xa5a5);
}

START_TEST(test_malformed)
{
	size_t n;

	/* truncated header */
	n = raw_hello(buf);
	expect_bad(4, -EBADMSG);
	expect_bad(0, -EBADMSG);
	/* frame shorter than its header says, and longer */
	expect_bad(n - 1, -EBADMSG);
	expect_bad(n + 1, -EBADMSG);
	/* zero-length frame */
	put32(buf, 0);
	expect_bad(n, -EBADMSG);
	/* truncated argument: header says 28, argument claims 5 value bytes */
	n = raw_hello(buf);
	put32(buf + 12, 5);
	expect_bad(n, -EBADMSG);
	/* argument length overflow: 0xffffffff must not wrap the bound check */
	n = raw_hello(buf);
	put32(buf + 12, 0xffffffffu);
	expect_bad(n, -EBADMSG);
	put32(buf + 12, 0xfffffff8u);
	expect_bad(n, -EBADMSG);
	/* wrong length for a u32 */
	n = raw_hello(buf);
	put32(buf, 8 + 16 + 8);
	put32(buf + 12, 8);
	memset(buf + 16, 0, 8);
	memset(buf + 24, 0, 8);
	expect_bad(32, -EBADMSG);
	/* missing DONE: frame ends right after the argument */
	n = raw_hello(buf);
	put32(buf, 20);
	expect_bad(20, -EBADMSG);
	/* DONE with a length */
	n = raw_hello(buf);
	put32(buf + 24, 1);
	expect_bad(n, -EBADMSG);
	/* bytes after DONE */
	n = raw_hello(buf);
	put32(buf, (uint32_t)n + 8);
	memset(buf + n, 0, 8);
	expect_bad(n + 8, -EBADMSG);
	/* unknown argument type */
	n = raw_hello(buf);
	put16(buf + 8, 0x7777);
	expect_bad(n, -EBADMSG);
	put16(buf + 8, 63);
	expect_bad(n, -EBADMSG);
	/* reserved field of an argument */
	n = raw_hello(buf);
	put16(buf + 10, 1);
	expect_bad(n, -EBADMSG);
	/* argument not allowed in this record */
	n = raw_hello(buf);
	put16(buf + 8, FSNOTE_ARG_REQ_ID);
	expect_bad(n, -EBADMSG);
	/* unknown record type */
	n = raw_hello(buf);
	put16(buf + 4, 0x0999);
	expect_bad(n, -EPROTONOSUPPORT);
	put16(buf + 4, 0);
	expect_bad(n, -EPROTONOSUPPORT);
	/* oversized frame */
	raw_hello(buf);
	put32(buf, FSNOTE_FRAME_MAX + 8);
	expect_bad(sizeof(buf), -EMSGSIZE);
	expect_bad(FSNOTE_FRAME_MAX + 8, -EMSGSIZE); /* refused on length alone */
}
END_TEST

START_TEST(test_malformed_strings)
{
	struct codec_writer w;
	int n;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_ERROR);
	codec_put_u32(&w, FSNOTE_ARG_ERRNO, 1);
	codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, "abc");
	n = codec_writer_finish(&w);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	/* the message value starts at 8 + 12 + 8 = 28: "abc\0" */
	buf[31] = 'd';                          /* string without its NUL */
	expect_bad((size_t)n, -EBADMSG);
	buf[31] = 0;
	buf[29] = 0;                            /* NUL inside the string */
	expect_bad((size_t)n, -EBADMSG);
	buf[29] = 'b';
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);

	/* empty string value (length 0) */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REC_SHUTDOWN);
	codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, "x");
	n = codec_writer_finish(&w);
	put32(buf, (uint32_t)n - 2);
	put32(buf + 12, 0);
	memmove(buf + 16, buf + 18, 8);
	expect_bad((size_t)n - 2, -EBADMSG);
}
END_TEST

START_TEST(test_required_and_repeats)
{
	struct codec_writer w;
	int n;

	/* subscribe without SUB_FLAGS */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	n = codec_writer_finish(&w);
	expect_bad((size_t)n, -EBADMSG);

	/* REQ_ID twice */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_STATUS);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 2);
	n = codec_writer_finish(&w);
	expect_bad((size_t)n, -EBADMSG);

	/* EXCLUDE may repeat */
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, "a");
	codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, "b");
	n = codec_writer_finish(&w);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_uint_eq(rec.n_args, 4);
}
END_TEST

START_TEST(test_too_many_args)
{
	struct codec_writer w;
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	for (int i = 0; i < 70; i++)
		codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, "x");
	ck_assert_int_eq(codec_writer_finish(&w), -EMSGSIZE);

	/* hand-build 64 arguments plus DONE: one too many */
	size_t off = 8;
	for (int i = 0; i < 64; i++) {
		put16(buf + off, FSNOTE_ARG_EXCLUDE);
		put16(buf + off + 2, 0);
		put32(buf + off + 4, 2);
		buf[off + 8] = 'x';
		buf[off + 9] = 0;
		off += 10;
	}
	put16(buf + off, FSNOTE_ARG_REQ_ID);
	put16(buf + off + 2, 0);
	put32(buf + off + 4, 4);
	put32(buf + off + 8, 1);
	off += 12;
	memset(buf + off, 0, 8);
	off += 8;
	put32(buf, (uint32_t)off);
	put16(buf + 4, FSNOTE_REQ_SUBSCRIBE);
	put16(buf + 6, 0);
	expect_bad(off, -EBADMSG);
}
END_TEST

START_TEST(test_writer_bounds)
{
	struct codec_writer w;
	char path[FSNOTE_PATH_MAX + 1];
	uint8_t small[40];

	memset(path, 'a', sizeof(path));
	path[0] = '/';
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_string(&w, FSNOTE_ARG_PATH, path, FSNOTE_PATH_MAX); /* NUL would make it 4097 */
	ck_assert_int_eq(codec_writer_finish(&w), -EMSGSIZE);

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_string(&w, FSNOTE_ARG_PATH, path, FSNOTE_PATH_MAX - 1);
	ck_assert_int_gt(codec_writer_finish(&w), 0);

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_string(&w, FSNOTE_ARG_PATH, "a\0b", 3);
	ck_assert_int_eq(codec_writer_finish(&w), -EINVAL);

	/* the writer never runs past a small buffer */
	memset(small, 0xee, sizeof(small));
	codec_writer_init(&w, small, 32, FSNOTE_REP_ERROR);
	codec_put_u32(&w, FSNOTE_ARG_ERRNO, 1);
	codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, "this message does not fit");
	ck_assert_int_eq(codec_writer_finish(&w), -EMSGSIZE);
	for (size_t i = 32; i < sizeof(small); i++)
		ck_assert_uint_eq(small[i], 0xee);

	codec_writer_init(&w, small, 8, FSNOTE_REP_ERROR);
	ck_assert_int_eq(codec_writer_finish(&w), -EMSGSIZE);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(codec_event_type_name(FSNOTE_EV_CLOSE_WRITE), "close_write");
	ck_assert_str_eq(codec_event_type_name(0), "unknown");
	ck_assert_str_eq(codec_event_type_name(1000), "unknown");
	ck_assert_uint_eq(codec_event_type_from_name("rename", 6), FSNOTE_EV_RENAME);
	ck_assert_uint_eq(codec_event_type_from_name("renamex", 7), 0);
	ck_assert_uint_eq(codec_event_type_from_name("ren", 3), 0);
	for (uint32_t t = 1; t <= FSNOTE_EV_MAX; t++) {
		const char *name = codec_event_type_name(t);
		ck_assert_uint_eq(codec_event_type_from_name(name, strlen(name)), t);
	}
	ck_assert_str_eq(codec_flag_name(0), "combined");
	ck_assert_str_eq(codec_flag_name(4), "renamed");
	ck_assert_ptr_null(codec_flag_name(31));
	ck_assert_ptr_null(codec_flag_name(32));
	ck_assert_str_eq(codec_record_name(FSNOTE_REQ_SUBSCRIBE), "subscribe");
	ck_assert(!codec_record_known(0x0400));
}
END_TEST

/* Every prefix of a valid frame is refused (never read past), and so is
 * every single-byte corruption that the rules can detect (no crash). */
START_TEST(test_every_prefix_and_flip)
{
	struct codec_event ev = {
		.sub_id = 1, .id = 5, .type = FSNOTE_EV_RENAME, .path = "/x/y", .path_len = 4,
		.dest = "/x/z", .dest_len = 4, .st = { .have_ino = true, .ino = 1 },
	};
	uint8_t frame[256];
	int n = codec_encode_event(frame, sizeof(frame), &ev);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		uint8_t *copy = malloc((size_t)i + 1); /* exact size: ASan catches overreads */
		memcpy(copy, frame, (size_t)i);
		ck_assert_int_ne(codec_decode(copy, (size_t)i, &rec), 0);
		free(copy);
	}
	for (int i = 0; i < n; i++) {
		uint8_t *copy = malloc((size_t)n);
		memcpy(copy, frame, (size_t)n);
		copy[i] ^= 0xff;
		(void)codec_decode(copy, (size_t)n, &rec);
		free(copy);
	}
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_raw_hello_decodes);
	tcase_add_test(tc, test_round_trip_every_record);
	tcase_add_test(tc, test_event_round_trip);
	tcase_add_test(tc, test_event_inconsistent);
	tcase_add_test(tc, test_peek);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_malformed_strings);
	tcase_add_test(tc, test_required_and_repeats);
	tcase_add_test(tc, test_too_many_args);
	tcase_add_test(tc, test_writer_bounds);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_every_prefix_and_flip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
