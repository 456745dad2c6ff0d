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
		   { FSNOTE_ARG_UNTIL_ID, UINT64_C(0xfedcba9876543299), NULL },
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

/* One encoding serves every subscription with the same view: patching
 * SUB_ID gives the very bytes an encoding with that SUB_ID gives. */
START_TEST(test_event_patch_sub_id)
{
	uint8_t other[512];
	struct codec_event ev = {
		.sub_id = 7, .id = 99, .type = FSNOTE_EV_CREATE, .time_ns = 5,
		.path = "/srv/a", .path_len = 6,
	};
	int n = codec_encode_event(buf, sizeof(buf), &ev);
	ck_assert_int_gt(n, 0);
	codec_patch_event_sub_id(buf, 0xa1b2c3d4u);
	ev.sub_id = 0xa1b2c3d4u;
	int m = codec_encode_event(other, sizeof(other), &ev);
	ck_assert_int_eq(n, m);
	ck_assert_mem_eq(buf, other, (size_t)n);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	struct codec_event out;
	ck_assert_int_eq(codec_event_from_record(&rec, &out), 0);
	ck_assert_uint_eq(out.sub_id, 0xa1b2c3d4u);
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
	/* the end of a bounded history (UNTIL_ID) has a name of its own */
	ck_assert_str_eq(codec_event_type_name(FSNOTE_EV_HISTORY_END), "history_end");
	ck_assert_uint_eq(codec_event_type_from_name("history_end", 11), FSNOTE_EV_HISTORY_END);
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

/* --- a raw frame builder, for frames the encoder would never produce ---- */

static size_t rb_len;

static void rb_start(uint16_t type)
{
	memset(buf, 0, FSNOTE_FRAME_HEADER_SIZE);
	put16(buf + 4, type);
	rb_len = FSNOTE_FRAME_HEADER_SIZE;
}

/* An argument header claiming @claimed value bytes, followed by @vlen bytes. */
static void rb_arg(uint16_t type, uint32_t claimed, const void *v, size_t vlen)
{
	put16(buf + rb_len, type);
	put16(buf + rb_len + 2, 0);
	put32(buf + rb_len + 4, claimed);
	if (vlen)
		memcpy(buf + rb_len + FSNOTE_ARG_HEADER_SIZE, v, vlen);
	rb_len += FSNOTE_ARG_HEADER_SIZE + vlen;
}

static void rb_u32(uint16_t type, uint32_t v)
{
	uint8_t b[4];
	put32(b, v);
	rb_arg(type, 4, b, 4);
}

static void rb_u64(uint16_t type, uint64_t v)
{
	uint8_t b[8];
	put32(b, (uint32_t)v);
	put32(b + 4, (uint32_t)(v >> 32));
	rb_arg(type, 8, b, 8);
}

static void rb_str(uint16_t type, const char *s)
{
	rb_arg(type, (uint32_t)strlen(s) + 1, s, strlen(s) + 1);
}

/* A string value of @len bytes, NUL included. */
static void rb_str_len(uint16_t type, uint32_t len)
{
	put16(buf + rb_len, type);
	put16(buf + rb_len + 2, 0);
	put32(buf + rb_len + 4, len);
	memset(buf + rb_len + FSNOTE_ARG_HEADER_SIZE, 'a', len);
	buf[rb_len + FSNOTE_ARG_HEADER_SIZE] = '/';
	buf[rb_len + FSNOTE_ARG_HEADER_SIZE + len - 1] = '\0';
	rb_len += FSNOTE_ARG_HEADER_SIZE + len;
}

/* Sets the header length to what was built, without a DONE. */
static size_t rb_end(void)
{
	put32(buf, (uint32_t)rb_len);
	return rb_len;
}

static size_t rb_done(void)
{
	rb_arg(FSNOTE_ARG_DONE, 0, NULL, 0);
	return rb_end();
}

/* --- the protocol as fsnote-protocol.h writes it, independently of codec.c */

#define B(x) (UINT64_C(1) << (FSNOTE_ARG_##x))

struct spec {
	uint16_t type;
	uint64_t allowed, required, repeatable;
};

static const struct spec specs[] = {
	{ FSNOTE_REQ_HELLO, B(VERSION) | B(CLIENT_NAME), B(VERSION), 0 },
	{ FSNOTE_REQ_SUBSCRIBE,
	  B(REQ_ID) | B(SUB_FLAGS) | B(EVENT_MASK) | B(DEV_FILTER) | B(RING_DEPTH) | B(LATENCY_US) |
		  B(BATCH) | B(SINCE_ID) | B(UNTIL_ID) | B(EXCLUDE) | B(PATH) | B(FIELDS),
	  B(REQ_ID) | B(SUB_FLAGS), B(EXCLUDE) },
	{ FSNOTE_REQ_UNSUBSCRIBE, B(REQ_ID) | B(SUB_ID), B(REQ_ID) | B(SUB_ID), 0 },
	{ FSNOTE_REQ_CURRENT_ID, B(REQ_ID) | B(TIME), B(REQ_ID), 0 },
	{ FSNOTE_REQ_STATUS, B(REQ_ID), B(REQ_ID), 0 },
	{ FSNOTE_REQ_INJECT,
	  B(REQ_ID) | B(EVENT_TYPE) | B(PATH) | B(FLAGS) | B(PID) | B(DEST_PATH) | B(DEV) | B(INO) |
		  B(MODE) | B(UID) | B(GID),
	  B(REQ_ID) | B(EVENT_TYPE) | B(PATH), 0 },
	{ FSNOTE_REQ_FLUSH, B(REQ_ID) | B(SUB_ID), B(REQ_ID) | B(SUB_ID), 0 },
	{ FSNOTE_REP_HELLO, B(VERSION) | B(SERVER_VERSION) | B(FEATURES) | B(BACKEND), B(VERSION), 0 },
	{ FSNOTE_REP_SUBSCRIBED,
	  B(REQ_ID) | B(SUB_ID) | B(ID) | B(PATH) | B(DEV) | B(FLAGS) | B(MESSAGE) | B(BACKEND),
	  B(REQ_ID) | B(SUB_ID) | B(ID), 0 },
	{ FSNOTE_REP_UNSUBSCRIBED, B(REQ_ID) | B(SUB_ID), B(REQ_ID) | B(SUB_ID), 0 },
	{ FSNOTE_REP_CURRENT_ID, B(REQ_ID) | B(ID), B(REQ_ID) | B(ID), 0 },
	{ FSNOTE_REP_STATUS, B(REQ_ID) | B(JSON), B(REQ_ID) | B(JSON), 0 },
	{ FSNOTE_REP_INJECTED, B(REQ_ID) | B(ID), B(REQ_ID) | B(ID), 0 },
	{ FSNOTE_REP_FLUSHED, B(REQ_ID) | B(SUB_ID) | B(ID), B(REQ_ID) | B(SUB_ID) | B(ID), 0 },
	{ FSNOTE_REP_ERROR, B(REQ_ID) | B(ERRNO) | B(MESSAGE), B(ERRNO) | B(MESSAGE), 0 },
	{ FSNOTE_REC_EVENT,
	  B(SUB_ID) | B(ID) | B(EVENT_TYPE) | B(FLAGS) | B(TIME) | B(PID) | B(PATH) | B(DEV) | B(INO) |
		  B(MODE) | B(UID) | B(GID) | B(DEST_PATH) | B(DEST_DEV) | B(DEST_INO) | B(DEST_MODE) |
		  B(DEST_UID) | B(DEST_GID) | B(COUNT) | B(ID_FIRST) | B(ID_LAST) | B(RESCAN_PATH),
	  B(SUB_ID) | B(ID) | B(EVENT_TYPE) | B(FLAGS) | B(TIME) | B(PID) | B(PATH), 0 },
	{ FSNOTE_REC_SHUTDOWN, B(MESSAGE), B(MESSAGE), 0 },
};

#define N_SPECS (sizeof(specs) / sizeof(specs[0]))
#define ARG_LAST FSNOTE_ARG_BACKEND

/* Each argument type's kind, as the header's comments give it. */
static enum fsnote_arg_kind spec_kind(unsigned arg)
{
	static const uint64_t u32 = B(EVENT_TYPE) | B(FLAGS) | B(PID) | B(MODE) | B(UID) | B(GID) |
				    B(DEST_MODE) | B(DEST_UID) | B(DEST_GID) | B(REQ_ID) | B(SUB_ID) |
				    B(SUB_FLAGS) | B(RING_DEPTH) | B(LATENCY_US) | B(BATCH) |
				    B(FIELDS) | B(VERSION) | B(ERRNO);
	static const uint64_t u64 = B(ID) | B(TIME) | B(DEV) | B(INO) | B(DEST_DEV) | B(DEST_INO) |
				    B(COUNT) | B(ID_FIRST) | B(ID_LAST) | B(EVENT_MASK) |
				    B(DEV_FILTER) | B(SINCE_ID) | B(UNTIL_ID) | B(FEATURES);
	static const uint64_t str = B(PATH) | B(DEST_PATH) | B(RESCAN_PATH) | B(EXCLUDE) |
				    B(MESSAGE) | B(JSON) | B(CLIENT_NAME) | B(SERVER_VERSION) |
				    B(BACKEND);
	if (arg == FSNOTE_ARG_DONE)
		return FSNOTE_KIND_EMPTY;
	if (arg >= 64)
		return FSNOTE_KIND_INVALID;
	uint64_t bit = UINT64_C(1) << arg;
	return (u32 & bit) ? FSNOTE_KIND_U32 : (u64 & bit) ? FSNOTE_KIND_U64 :
	       (str & bit) ? FSNOTE_KIND_STRING : FSNOTE_KIND_INVALID;
}

/* Appends a valid value of @arg's kind. */
static void rb_valid(unsigned arg)
{
	switch (spec_kind(arg)) {
	case FSNOTE_KIND_U32:
		rb_u32((uint16_t)arg, 1);
		break;
	case FSNOTE_KIND_U64:
		rb_u64((uint16_t)arg, 1);
		break;
	case FSNOTE_KIND_STRING:
		rb_str((uint16_t)arg, "/x");
		break;
	default:
		ck_abort_msg("argument 0x%x has no value kind", arg);
	}
}

/* A frame of record @sp holding the arguments in @set, in type order,
 * with @extra (if not 0xffff) appended before DONE. */
static size_t rb_record(const struct spec *sp, uint64_t set, unsigned extra)
{
	rb_start(sp->type);
	for (unsigned a = 1; a < 64; a++)
		if (set & (UINT64_C(1) << a))
			rb_valid(a);
	if (extra != 0xffff)
		rb_valid(extra);
	return rb_done();
}

START_TEST(test_arg_kinds_match_header)
{
	for (unsigned a = 0; a <= 0xff; a++)
		ck_assert_msg(codec_arg_kind((uint16_t)a) == spec_kind(a), "argument 0x%x", a);
	ck_assert_int_eq(codec_arg_kind(0x7777), FSNOTE_KIND_INVALID);
	ck_assert_int_eq(codec_arg_kind(0xffff), FSNOTE_KIND_INVALID);
}
END_TEST

/* For every record type: the required arguments alone decode, so do all
 * allowed arguments together; dropping any required one, adding any known
 * argument the record does not allow, repeating any non-repeatable one and
 * giving any one a value of the wrong length is refused. */
START_TEST(test_record_rules)
{
	for (size_t i = 0; i < N_SPECS; i++) {
		const struct spec *sp = &specs[i];
		size_t n;

		ck_assert(codec_record_known(sp->type));
		n = rb_record(sp, sp->required, 0xffff);
		ck_assert_msg(codec_decode(buf, n, &rec) == 0, "record 0x%04x, required only", sp->type);
		ck_assert_uint_eq(rec.n_args, (unsigned)__builtin_popcountll(sp->required));
		n = rb_record(sp, sp->allowed, 0xffff);
		ck_assert_msg(codec_decode(buf, n, &rec) == 0, "record 0x%04x, all allowed", sp->type);
		ck_assert_uint_eq(rec.n_args, (unsigned)__builtin_popcountll(sp->allowed));

		for (unsigned a = 1; a <= ARG_LAST; a++) {
			uint64_t bit = UINT64_C(1) << a;
			if (spec_kind(a) == FSNOTE_KIND_INVALID)
				continue;
			if (sp->required & bit) {
				n = rb_record(sp, sp->allowed & ~bit, 0xffff);
				ck_assert_msg(codec_decode(buf, n, &rec) == -EBADMSG,
					      "record 0x%04x without required 0x%x", sp->type, a);
			}
			if (!(sp->allowed & bit)) {
				n = rb_record(sp, sp->required, a);
				ck_assert_msg(codec_decode(buf, n, &rec) == -EBADMSG,
					      "record 0x%04x with foreign 0x%x", sp->type, a);
				continue;
			}
			n = rb_record(sp, sp->required | bit, a);
			ck_assert_msg(codec_decode(buf, n, &rec) == ((sp->repeatable & bit) ? 0 : -EBADMSG),
				      "record 0x%04x with 0x%x twice", sp->type, a);

			/* the wrong length for the kind */
			static const uint8_t zeros[16];
			uint32_t bad = spec_kind(a) == FSNOTE_KIND_U32 ? 8 :
				       spec_kind(a) == FSNOTE_KIND_U64 ? 4 : 0;
			rb_start(sp->type);
			for (unsigned b = 1; b < 64; b++)
				if ((sp->required & ~bit) & (UINT64_C(1) << b))
					rb_valid(b);
			rb_arg((uint16_t)a, bad, zeros, bad);
			n = rb_done();
			ck_assert_msg(codec_decode(buf, n, &rec) == -EBADMSG,
				      "record 0x%04x with 0x%x of length %u", sp->type, a, bad);
		}
	}
}
END_TEST

START_TEST(test_wrong_lengths_for_kinds)
{
	static const uint8_t zeros[16];
	static const uint32_t u32_bad[] = { 0, 1, 2, 3, 5, 8 };
	static const uint32_t u64_bad[] = { 0, 4, 7, 9, 16 };

	for (size_t i = 0; i < sizeof(u32_bad) / sizeof(u32_bad[0]); i++) {
		rb_start(FSNOTE_REQ_STATUS);
		rb_arg(FSNOTE_ARG_REQ_ID, u32_bad[i], zeros, u32_bad[i]);
		expect_bad(rb_done(), -EBADMSG);
	}
	for (size_t i = 0; i < sizeof(u64_bad) / sizeof(u64_bad[0]); i++) {
		rb_start(FSNOTE_REQ_CURRENT_ID);
		rb_u32(FSNOTE_ARG_REQ_ID, 1);
		rb_arg(FSNOTE_ARG_TIME, u64_bad[i], zeros, u64_bad[i]);
		expect_bad(rb_done(), -EBADMSG);
	}
	/* and the right ones, for contrast */
	rb_start(FSNOTE_REQ_CURRENT_ID);
	rb_u32(FSNOTE_ARG_REQ_ID, 1);
	rb_u64(FSNOTE_ARG_TIME, 2);
	ck_assert_int_eq(codec_decode(buf, rb_done(), &rec), 0);
}
END_TEST

START_TEST(test_truncated_argument_header)
{
	/* the frame ends four bytes into the second argument's header */
	rb_start(FSNOTE_REQ_HELLO);
	rb_u32(FSNOTE_ARG_VERSION, 1);
	memset(buf + rb_len, 0, 4);
	rb_len += 4;
	expect_bad(rb_end(), -EBADMSG);
	/* and the header alone, no argument at all (below the minimum) */
	rb_start(FSNOTE_REQ_HELLO);
	expect_bad(rb_end(), -EBADMSG);
}
END_TEST

START_TEST(test_argument_length_overflow)
{
	/* value lengths that wrap a 32-bit sum of offset and length, or run
	 * just one byte past the frame */
	static const uint32_t lens[] = { 0xfffffff0u, 0xfffffff8u, 0xfffffffcu, 0xffffffffu,
					 0x80000000u, 13 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = raw_hello(buf);
		put32(buf + 12, lens[i]);
		expect_bad(n, -EBADMSG);
	}
	/* a string claiming the rest of the frame and one byte more */
	rb_start(FSNOTE_REP_ERROR);
	rb_u32(FSNOTE_ARG_ERRNO, 1);
	rb_arg(FSNOTE_ARG_MESSAGE, 2 + 8 + 1, "a\0", 2);
	expect_bad(rb_done(), -EBADMSG);
	/* a string swallowing the DONE header exactly: no DONE is left */
	rb_start(FSNOTE_REP_ERROR);
	rb_u32(FSNOTE_ARG_ERRNO, 1);
	rb_arg(FSNOTE_ARG_MESSAGE, 2 + 8, "a\0", 2);
	expect_bad(rb_done(), -EBADMSG);
}
END_TEST

START_TEST(test_frame_length_rules)
{
	/* frame lengths below the minimum, as decode sees them */
	for (uint32_t len = 0; len < FSNOTE_FRAME_MIN; len++) {
		memset(buf, 0, FSNOTE_FRAME_MIN);
		put32(buf, len);
		put16(buf + 4, FSNOTE_REQ_STATUS);
		expect_bad(len, -EBADMSG);
		expect_bad(FSNOTE_FRAME_MIN, -EBADMSG); /* header disagrees with the bytes */
	}
	/* the smallest well-formed frame: header and DONE, for a record that
	 * requires nothing - there is none, so it fails on rules, not length */
	rb_start(FSNOTE_REQ_STATUS);
	expect_bad(rb_done(), -EBADMSG);

	/* reserved fields: the frame's, the argument's and DONE's */
	size_t n = raw_hello(buf);
	put16(buf + 6, 0x8000);
	expect_bad(n, -EBADMSG);
	n = raw_hello(buf);
	put16(buf + 10, 0x0100);
	expect_bad(n, -EBADMSG);
	n = raw_hello(buf);
	put16(buf + 22, 1);
	expect_bad(n, -EBADMSG);
	n = raw_hello(buf);
	ck_assert_int_eq(codec_decode(buf, n, &rec), 0);
}
END_TEST

START_TEST(test_frame_max_boundaries)
{
	uint32_t len = 0;

	/* a status reply of exactly FSNOTE_FRAME_MAX bytes decodes... */
	uint32_t json = FSNOTE_FRAME_MAX - FSNOTE_FRAME_HEADER_SIZE - 12 - FSNOTE_ARG_HEADER_SIZE -
			FSNOTE_ARG_HEADER_SIZE;
	rb_start(FSNOTE_REP_STATUS);
	rb_u32(FSNOTE_ARG_REQ_ID, 1);
	rb_str_len(FSNOTE_ARG_JSON, json);
	size_t n = rb_done();
	ck_assert_uint_eq(n, FSNOTE_FRAME_MAX);
	ck_assert_int_eq(codec_decode(buf, n, &rec), 0);
	ck_assert_int_eq(codec_frame_peek(buf, n, FSNOTE_FRAME_MAX, &len), 1);
	ck_assert_uint_eq(len, FSNOTE_FRAME_MAX);
	/* ...but not from a client, whose limit is FSNOTE_REQUEST_MAX */
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EMSGSIZE);

	/* one byte more is refused by length alone, whatever max the caller asks */
	rb_start(FSNOTE_REP_STATUS);
	rb_u32(FSNOTE_ARG_REQ_ID, 1);
	rb_str_len(FSNOTE_ARG_JSON, json + 1);
	n = rb_done();
	ck_assert_uint_eq(n, FSNOTE_FRAME_MAX + 1);
	expect_bad(n, -EMSGSIZE);
	ck_assert_int_eq(codec_frame_peek(buf, 8, UINT32_MAX, &len), -EMSGSIZE);
	ck_assert_int_eq(codec_frame_peek(buf, n, UINT32_MAX, &len), -EMSGSIZE);

	/* the request limit: exactly FSNOTE_REQUEST_MAX is whole, one more is not */
	memset(buf, 0, 8);
	put32(buf, FSNOTE_REQUEST_MAX);
	put16(buf + 4, FSNOTE_REQ_SUBSCRIBE);
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), 0);
	ck_assert_int_eq(codec_frame_peek(buf, FSNOTE_REQUEST_MAX, FSNOTE_REQUEST_MAX, &len), 1);
	ck_assert_uint_eq(len, FSNOTE_REQUEST_MAX);
	put32(buf, FSNOTE_REQUEST_MAX + 1);
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EMSGSIZE);
	/* a bad reserved field is reported before the size */
	put16(buf + 6, 1);
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EBADMSG);
	/* ret_len is written only on success */
	len = 12345;
	ck_assert_int_eq(codec_frame_peek(buf, 8, FSNOTE_REQUEST_MAX, &len), -EBADMSG);
	ck_assert_uint_eq(len, 12345);
}
END_TEST

START_TEST(test_string_limits)
{
	static const struct {
		uint16_t arg;
		uint16_t record;
		uint32_t max;
	} lim[] = {
		{ FSNOTE_ARG_PATH, FSNOTE_REQ_INJECT, FSNOTE_PATH_MAX },
		{ FSNOTE_ARG_DEST_PATH, FSNOTE_REQ_INJECT, FSNOTE_PATH_MAX },
		{ FSNOTE_ARG_RESCAN_PATH, FSNOTE_REC_EVENT, FSNOTE_PATH_MAX },
		{ FSNOTE_ARG_EXCLUDE, FSNOTE_REQ_SUBSCRIBE, FSNOTE_PATTERN_MAX },
		{ FSNOTE_ARG_MESSAGE, FSNOTE_REP_ERROR, FSNOTE_MESSAGE_MAX },
		{ FSNOTE_ARG_CLIENT_NAME, FSNOTE_REQ_HELLO, FSNOTE_NAME_MAX },
		{ FSNOTE_ARG_SERVER_VERSION, FSNOTE_REP_HELLO, FSNOTE_NAME_MAX },
		{ FSNOTE_ARG_BACKEND, FSNOTE_REP_HELLO, FSNOTE_NAME_MAX },
	};
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		const struct spec *sp = NULL;
		for (size_t j = 0; j < N_SPECS; j++)
			if (specs[j].type == lim[i].record)
				sp = &specs[j];
		ck_assert_ptr_nonnull(sp);
		for (uint32_t len = lim[i].max; len <= lim[i].max + 1; len++) {
			rb_start(sp->type);
			uint64_t bit = UINT64_C(1) << lim[i].arg;
			for (unsigned a = 1; a < 64; a++)
				if ((sp->required & ~bit) & (UINT64_C(1) << a))
					rb_valid(a);
			rb_str_len(lim[i].arg, len);
			size_t n = rb_done();
			ck_assert_msg(codec_decode(buf, n, &rec) == (len <= lim[i].max ? 0 : -EBADMSG),
				      "argument 0x%x of %u bytes", lim[i].arg, len);
		}
	}
	/* the empty string (just its NUL) is well-formed */
	rb_start(FSNOTE_REC_SHUTDOWN);
	rb_str(FSNOTE_ARG_MESSAGE, "");
	ck_assert_int_eq(codec_decode(buf, rb_done(), &rec), 0);
	/* a NUL first, then more bytes: NUL inside */
	rb_start(FSNOTE_REC_SHUTDOWN);
	rb_arg(FSNOTE_ARG_MESSAGE, 3, "\0a\0", 3);
	expect_bad(rb_done(), -EBADMSG);
	/* bytes 0x01..0xff are all fine inside a string: names are bytes */
	char all[256];
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	rb_start(FSNOTE_REC_SHUTDOWN);
	rb_arg(FSNOTE_ARG_MESSAGE, 256, all, 256);
	ck_assert_int_eq(codec_decode(buf, rb_done(), &rec), 0);
}
END_TEST

START_TEST(test_args_max_boundary)
{
	/* FSNOTE_ARGS_MAX counts DONE: 63 arguments and DONE are fine... */
	rb_start(FSNOTE_REQ_SUBSCRIBE);
	rb_u32(FSNOTE_ARG_REQ_ID, 1);
	rb_u32(FSNOTE_ARG_SUB_FLAGS, 0);
	for (unsigned i = 0; i < FSNOTE_ARGS_MAX - 3; i++)
		rb_str(FSNOTE_ARG_EXCLUDE, "x");
	size_t n = rb_done();
	ck_assert_int_eq(codec_decode(buf, n, &rec), 0);
	ck_assert_uint_eq(rec.n_args, FSNOTE_ARGS_MAX - 1);
	/* ...and one more is not */
	rb_start(FSNOTE_REQ_SUBSCRIBE);
	rb_u32(FSNOTE_ARG_REQ_ID, 1);
	rb_u32(FSNOTE_ARG_SUB_FLAGS, 0);
	for (unsigned i = 0; i < FSNOTE_ARGS_MAX - 2; i++)
		rb_str(FSNOTE_ARG_EXCLUDE, "x");
	expect_bad(rb_done(), -EBADMSG);

	/* the writer stops at the same place */
	struct codec_writer w;
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	for (unsigned i = 0; i < FSNOTE_ARGS_MAX - 3; i++)
		codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, "x");
	int len = codec_writer_finish(&w);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)len, &rec), 0);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, 1);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, 0);
	for (unsigned i = 0; i < FSNOTE_ARGS_MAX - 2; i++)
		codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, "x");
	ck_assert_int_eq(codec_writer_finish(&w), -EMSGSIZE);
}
END_TEST

START_TEST(test_unknown_records_and_args)
{
	static const uint16_t types[] = { 0x0000, 0x0001, 0x0100, 0x0108, 0x01ff, 0x0200,
					  0x0208, 0x02fe, 0x0300, 0x0303, 0x0401, 0xffff };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		size_t n = raw_hello(buf);
		put16(buf + 4, types[i]);
		ck_assert(!codec_record_known(types[i]));
		expect_bad(n, -EPROTONOSUPPORT);
	}
	/* unassigned argument types, below and above 64 */
	static const uint16_t args[] = { 0x0016, 0x001f, 0x002a, 0x0038, 0x003f,
					 0x0040, 0x0100, 0x7777, 0xffff };
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		rb_start(FSNOTE_REQ_HELLO);
		rb_u32(FSNOTE_ARG_VERSION, 1);
		rb_u32(args[i], 0);
		expect_bad(rb_done(), -EBADMSG);
		/* even an empty one, which looks like DONE but for its type */
		rb_start(FSNOTE_REQ_HELLO);
		rb_u32(FSNOTE_ARG_VERSION, 1);
		rb_arg(args[i], 0, NULL, 0);
		expect_bad(rb_done(), -EBADMSG);
	}
}
END_TEST

START_TEST(test_done_rules)
{
	/* DONE twice: the first DONE does not end the frame */
	rb_start(FSNOTE_REQ_HELLO);
	rb_u32(FSNOTE_ARG_VERSION, 1);
	rb_arg(FSNOTE_ARG_DONE, 0, NULL, 0);
	expect_bad(rb_done(), -EBADMSG);
	/* DONE first, then the argument */
	rb_start(FSNOTE_REQ_HELLO);
	rb_arg(FSNOTE_ARG_DONE, 0, NULL, 0);
	rb_u32(FSNOTE_ARG_VERSION, 1);
	expect_bad(rb_end(), -EBADMSG);
	/* one stray byte after DONE */
	rb_start(FSNOTE_REQ_HELLO);
	rb_u32(FSNOTE_ARG_VERSION, 1);
	size_t n = rb_done();
	buf[n] = 0;
	put32(buf, (uint32_t)n + 1);
	expect_bad(n + 1, -EBADMSG);
	/* DONE claiming a value it then carries */
	rb_start(FSNOTE_REQ_HELLO);
	rb_u32(FSNOTE_ARG_VERSION, 1);
	rb_arg(FSNOTE_ARG_DONE, 4, "\0\0\0\0", 4);
	expect_bad(rb_end(), -EBADMSG);
}
END_TEST

/* Field by field: the structure has padding. */
static void check_stat(const struct codec_stat *a, const struct codec_stat *b)
{
	ck_assert(a->have_dev == b->have_dev && a->have_ino == b->have_ino &&
		  a->have_mode == b->have_mode && a->have_uid == b->have_uid &&
		  a->have_gid == b->have_gid);
	ck_assert_uint_eq(a->dev, b->dev);
	ck_assert_uint_eq(a->ino, b->ino);
	ck_assert_uint_eq(a->mode, b->mode);
	ck_assert_uint_eq(a->uid, b->uid);
	ck_assert_uint_eq(a->gid, b->gid);
}

/* An event with every optional argument the record allows, decoded both
 * as a record and as a structured event. */
START_TEST(test_event_every_argument)
{
	struct codec_event in = {
		.sub_id = 0xfffffffeu, .id = UINT64_MAX - 1, .type = FSNOTE_EV_RENAME,
		.flags = FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | FSNOTE_FLAG_HISTORY,
		.time_ns = UINT64_C(1) << 62, .pid = 1,
		.path = "/a/\xff\x01", .path_len = 5,
		.st = { .have_dev = true, .dev = UINT64_MAX, .have_ino = true, .ino = 2,
			.have_mode = true, .mode = 0100600, .have_uid = true, .uid = 3,
			.have_gid = true, .gid = 4 },
		.dest = "/b", .dest_len = 2,
		.dest_st = { .have_dev = true, .dev = 5, .have_ino = true, .ino = 6,
			     .have_mode = true, .mode = 0120777, .have_uid = true, .uid = 7,
			     .have_gid = true, .gid = 8 },
		.count = 9, .id_first = 10, .id_last = 11, .rescan = "/a", .rescan_len = 2,
	};
	struct codec_event out;
	int n = codec_encode_event(buf, sizeof(buf), &in);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_uint_eq(rec.n_args, (unsigned)__builtin_popcountll(specs[N_SPECS - 2].allowed));
	ck_assert_int_eq(codec_event_from_record(&rec, &out), 0);
	ck_assert_uint_eq(out.sub_id, in.sub_id);
	ck_assert_uint_eq(out.id, in.id);
	ck_assert_uint_eq(out.time_ns, in.time_ns);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_uint_eq(out.path_len, 5);
	ck_assert_mem_eq(out.path, in.path, 5);
	check_stat(&out.st, &in.st);
	ck_assert_str_eq(out.dest, "/b");
	check_stat(&out.dest_st, &in.dest_st);
	ck_assert_uint_eq(out.count, 9);
	ck_assert_uint_eq(out.id_first, 10);
	ck_assert_uint_eq(out.id_last, 11);
	ck_assert_str_eq(out.rescan, "/a");
}
END_TEST

/* The minimal forms: optional arguments absent, and a dropped record with
 * the empty path the protocol allows it. */
START_TEST(test_round_trip_minimal)
{
	ROUND_TRIP(FSNOTE_REQ_HELLO, { FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION, NULL });
	ROUND_TRIP(FSNOTE_REQ_SUBSCRIBE, { FSNOTE_ARG_REQ_ID, 1, NULL }, { FSNOTE_ARG_SUB_FLAGS, 0, NULL });
	ROUND_TRIP(FSNOTE_REQ_CURRENT_ID, { FSNOTE_ARG_REQ_ID, 2, NULL });
	ROUND_TRIP(FSNOTE_REQ_INJECT, { FSNOTE_ARG_REQ_ID, 3, NULL },
		   { FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_CREATE, NULL }, { FSNOTE_ARG_PATH, 0, "/x" });
	ROUND_TRIP(FSNOTE_REP_HELLO, { FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION, NULL });
	ROUND_TRIP(FSNOTE_REP_SUBSCRIBED, { FSNOTE_ARG_REQ_ID, 1, NULL }, { FSNOTE_ARG_SUB_ID, 1, NULL },
		   { FSNOTE_ARG_ID, 0, NULL });
	ROUND_TRIP(FSNOTE_REP_SUBSCRIBED, { FSNOTE_ARG_REQ_ID, 1, NULL }, { FSNOTE_ARG_SUB_ID, 1, NULL },
		   { FSNOTE_ARG_ID, 5, NULL }, { FSNOTE_ARG_PATH, 0, "/mnt/nfs" },
		   { FSNOTE_ARG_DEV, 0x2c, NULL }, { FSNOTE_ARG_FLAGS, FSNOTE_FLAG_LOCAL_ONLY, NULL },
		   { FSNOTE_ARG_MESSAGE, 0, "only local changes are seen" },
		   { FSNOTE_ARG_BACKEND, 0, "inotify" });
	ROUND_TRIP(FSNOTE_REP_ERROR, { FSNOTE_ARG_ERRNO, EBADMSG, NULL }, { FSNOTE_ARG_MESSAGE, 0, "" });

	struct codec_event drop = {
		.sub_id = 2, .id = 7, .type = FSNOTE_EV_DROPPED,
		.flags = FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | FSNOTE_FLAG_KERNEL_OVERFLOW,
		.path = "", .path_len = 0, .rescan = "/", .rescan_len = 1,
	};
	struct codec_event out;
	int n = codec_encode_event(buf, sizeof(buf), &drop);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(codec_decode(buf, (size_t)n, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), 0);
	ck_assert_uint_eq(out.path_len, 0);
	ck_assert_uint_eq(out.count, 0);
	ck_assert_uint_eq(out.id_first, 0);
	ck_assert_str_eq(out.rescan, "/");
	ck_assert(!out.st.have_dev && !out.st.have_ino);

	/* a dropped record without its rescan path is inconsistent */
	rb_start(FSNOTE_REC_EVENT);
	rb_u32(FSNOTE_ARG_SUB_ID, 1);
	rb_u64(FSNOTE_ARG_ID, 1);
	rb_u32(FSNOTE_ARG_EVENT_TYPE, FSNOTE_EV_DROPPED);
	rb_u32(FSNOTE_ARG_FLAGS, FSNOTE_FLAG_DROPPED);
	rb_u64(FSNOTE_ARG_TIME, 1);
	rb_u32(FSNOTE_ARG_PID, 0);
	rb_str(FSNOTE_ARG_PATH, "/");
	ck_assert_int_eq(codec_decode(buf, rb_done(), &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), -EBADMSG);
	/* and so is a record of another type */
	size_t len = raw_hello(buf);
	ck_assert_int_eq(codec_decode(buf, len, &rec), 0);
	ck_assert_int_eq(codec_event_from_record(&rec, &out), -EBADMSG);
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_raw_hello_decodes);
	tcase_add_test(tc, test_round_trip_every_record);
	tcase_add_test(tc, test_event_round_trip);
	tcase_add_test(tc, test_event_patch_sub_id);
	tcase_add_test(tc, test_event_inconsistent);
	tcase_add_test(tc, test_peek);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_malformed_strings);
	tcase_add_test(tc, test_required_and_repeats);
	tcase_add_test(tc, test_too_many_args);
	tcase_add_test(tc, test_writer_bounds);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_every_prefix_and_flip);
	tcase_add_test(tc, test_arg_kinds_match_header);
	tcase_add_test(tc, test_record_rules);
	tcase_add_test(tc, test_wrong_lengths_for_kinds);
	tcase_add_test(tc, test_truncated_argument_header);
	tcase_add_test(tc, test_argument_length_overflow);
	tcase_add_test(tc, test_frame_length_rules);
	tcase_add_test(tc, test_frame_max_boundaries);
	tcase_add_test(tc, test_string_limits);
	tcase_add_test(tc, test_args_max_boundary);
	tcase_add_test(tc, test_unknown_records_and_args);
	tcase_add_test(tc, test_done_rules);
	tcase_add_test(tc, test_event_every_argument);
	tcase_add_test(tc, test_round_trip_minimal);
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
