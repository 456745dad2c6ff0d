/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-jsonname.c - unit tests for the JSON forms of a name: which bytes
 * count as well-formed UTF-8 (against Table 3-7 of the Unicode standard,
 * written out independently here), the readable form, and base64 both
 * ways.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jsonname.h"

/* --- an independent reference ------------------------------------------------ */

/* Table 3-7, "Well-Formed UTF-8 Byte Sequences": for each lead byte range,
 * the allowed range of the second byte; later bytes are 80..BF. */
static const struct {
	unsigned char lo, hi, n, second_lo, second_hi;
} table37[] = {
	{ 0x00, 0x7f, 1, 0, 0 },       { 0xc2, 0xdf, 2, 0x80, 0xbf }, { 0xe0, 0xe0, 3, 0xa0, 0xbf },
	{ 0xe1, 0xec, 3, 0x80, 0xbf }, { 0xed, 0xed, 3, 0x80, 0x9f }, { 0xee, 0xef, 3, 0x80, 0xbf },
	{ 0xf0, 0xf0, 4, 0x90, 0xbf }, { 0xf1, 0xf3, 4, 0x80, 0xbf }, { 0xf4, 0xf4, 4, 0x80, 0x8f },
};

static size_t ref_seq(const unsigned char *p, size_t left)
{
	for (size_t t = 0; t < sizeof(table37) / sizeof(table37[0]); t++) {
		if (p[0] < table37[t].lo || p[0] > table37[t].hi)
			continue;
		size_t n = table37[t].n;
		if (left < n)
			return 0;
		if (n > 1 && (p[1] < table37[t].second_lo || p[1] > table37[t].second_hi))
			return 0;
		for (size_t i = 2; i < n; i++)
			if (p[i] < 0x80 || p[i] > 0xbf)
				return 0;
		return n;
	}
	return 0;
}

/* The readable form as the rule states it, for comparison. */
static size_t ref_lossy(const unsigned char *p, size_t len, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		size_t n = ref_seq(p + i, len - i);
		if (n) {
			memcpy(out + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	return o;
}

/* A fixed-seed generator: the same bytes on every run. */
static uint32_t rng_state = 0x2545f491u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* --- helpers ------------------------------------------------------------------ */

struct sink {
	char buf[4 * 4096];
	size_t len;
	unsigned pieces;
};

static void put_sink(void *ctx, const char *s, size_t len)
{
	struct sink *k = ctx;

	/* plain checks: a name can come in thousands of pieces */
	if (len == 0 || k->len + len > sizeof(k->buf))
		ck_abort_msg("a piece of %zu bytes after %zu", len, k->len);
	memcpy(k->buf + k->len, s, len);
	k->len += len;
	k->pieces++;
}

static struct sink lossy(const char *s, size_t len)
{
	struct sink k = { .len = 0 };
	jsonname_lossy(s, len, put_sink, &k);
	ck_assert_uint_le(k.len, JSONNAME_LOSSY_MAX(len));
	return k;
}

#define ASSERT_LOSSY(in, want)                                                 \
	do {                                                                   \
		struct sink k_ = lossy((in), sizeof(in) - 1);                  \
		ck_assert_uint_eq(k_.len, sizeof(want) - 1);                   \
		ck_assert_mem_eq(k_.buf, (want), sizeof(want) - 1);            \
		ck_assert(!jsonname_utf8_valid((in), sizeof(in) - 1));         \
		ck_assert(jsonname_utf8_valid(k_.buf, k_.len));                \
	} while (0)

#define FFFD "\xef\xbf\xbd"

/* --- tests -------------------------------------------------------------------- */

START_TEST(valid_utf8_is_one_piece)
{
	static const char *const names[] = {
		"",
		"plain ascii/with.dots",
		"caf\xc3\xa9",                 /* U+00E9 */
		"\xc2\x80",                    /* U+0080, the smallest two-byte */
		"\xe0\xa0\x80",                /* U+0800, the smallest three-byte */
		"\xed\x9f\xbf",                /* U+D7FF, just below the surrogates */
		"\xee\x80\x80",                /* U+E000, just above them */
		"\xef\xbf\xbf",                /* U+FFFF */
		"\xf0\x90\x80\x80",            /* U+10000 */
		"\xf4\x8f\xbf\xbf",            /* U+10FFFF, the last */
		"\xe2\x80\xae rtl \xf0\x9f\x98\x80",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i]);
		ck_assert_msg(jsonname_utf8_valid(names[i], len), "name %zu", i);
		struct sink k = lossy(names[i], len);
		ck_assert_uint_eq(k.len, len);
		ck_assert_mem_eq(k.buf, names[i], len);
		/* no copy and no split of a valid name */
		ck_assert_uint_eq(k.pieces, len ? 1 : 0);
	}
}
END_TEST

START_TEST(code_points)
{
	uint32_t cp = 0;

	ck_assert_uint_eq(jsonname_utf8_seq((const unsigned char *)"A", 1, &cp), 1);
	ck_assert_uint_eq(cp, 'A');
	ck_assert_uint_eq(jsonname_utf8_seq((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
	ck_assert_uint_eq(cp, 0xe9);
	ck_assert_uint_eq(jsonname_utf8_seq((const unsigned char *)"\xe2\x80\xae", 3, &cp), 3);
	ck_assert_uint_eq(cp, 0x202e);
	ck_assert_uint_eq(jsonname_utf8_seq((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, &cp), 4);
	ck_assert_uint_eq(cp, 0x10ffff);
	/* a refusal leaves the output alone */
	cp = 7;
	ck_assert_uint_eq(jsonname_utf8_seq((const unsigned char *)"\xff", 1, &cp), 0);
	ck_assert_uint_eq(cp, 7);
}
END_TEST

START_TEST(stray_bytes)
{
	ASSERT_LOSSY("a\xff" "b", "a" FFFD "b");
	ASSERT_LOSSY("\x80", FFFD);
	ASSERT_LOSSY("\xfe\xff", FFFD FFFD);
	ASSERT_LOSSY("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
	ASSERT_LOSSY("caf\xe9.txt", "caf" FFFD ".txt"); /* Latin-1 */
	ASSERT_LOSSY("x\xc3\xa9\xa9y", "x\xc3\xa9" FFFD "y");
}
END_TEST

START_TEST(truncated_sequences)
{
	ASSERT_LOSSY("\xe2\x82", FFFD FFFD);           /* at the end */
	ASSERT_LOSSY("\xe2\x82" "a", FFFD FFFD "a");   /* cut by ASCII */
	ASSERT_LOSSY("\xf0\x9f\x98", FFFD FFFD FFFD);
	ASSERT_LOSSY("\xc3", FFFD);
	ASSERT_LOSSY("\xc3\xc3\xa9", FFFD "\xc3\xa9"); /* a new lead */
}
END_TEST

START_TEST(overlong_forms)
{
	ASSERT_LOSSY("\xc0\xaf", FFFD FFFD);                   /* '/' in two bytes */
	ASSERT_LOSSY("\xc1\xbf", FFFD FFFD);
	ASSERT_LOSSY("\xe0\x80\xaf", FFFD FFFD FFFD);           /* in three */
	ASSERT_LOSSY("\xe0\x9f\xbf", FFFD FFFD FFFD);           /* U+07FF in three */
	ASSERT_LOSSY("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);  /* in four */
	ASSERT_LOSSY("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD);  /* U+FFFF in four */
	ASSERT_LOSSY("\xc0\x80", FFFD FFFD);                   /* "modified UTF-8" NUL */
}
END_TEST

START_TEST(surrogates_and_beyond)
{
	ASSERT_LOSSY("\xed\xa0\x80", FFFD FFFD FFFD);           /* U+D800 */
	ASSERT_LOSSY("\xed\xbf\xbf", FFFD FFFD FFFD);           /* U+DFFF */
	ASSERT_LOSSY("\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD); /* CESU-8 */
	ASSERT_LOSSY("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);  /* U+110000 */
}
END_TEST

/* The module against the reference for one sequence; a plain comparison
 * (ck_assert marks a point per call, too slow for millions of calls). */
static void compare(const unsigned char *b, size_t left)
{
	uint32_t cp;

	size_t got = jsonname_utf8_seq(b, left, &cp), want = ref_seq(b, left);
	if (got != want)
		ck_abort_msg("%02x %02x %02x %02x (%zu bytes): %zu, Table 3-7 says %zu", b[0],
			     left > 1 ? b[1] : 0, left > 2 ? b[2] : 0, left > 3 ? b[3] : 0, left, got, want);
}

/* Every lead byte with every second and third byte, and every four-byte
 * lead with the edges of the fourth, against Table 3-7. */
START_TEST(agrees_with_table_3_7)
{
	static const unsigned char fourth[] = { 0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff };
	unsigned char b[4];

	for (unsigned x = 0; x < 256; x++) {
		b[0] = (unsigned char)x;
		compare(b, 1);
		for (unsigned y = 0; y < 256; y++) {
			b[1] = (unsigned char)y;
			compare(b, 2);
			for (unsigned z = 0; z < 256; z++) {
				b[2] = (unsigned char)z;
				compare(b, 3);
				if (x < 0xf0 || x > 0xf4)
					continue;
				for (size_t w = 0; w < sizeof(fourth); w++) {
					b[3] = fourth[w];
					compare(b, 4);
				}
			}
		}
	}
}
END_TEST

START_TEST(base64_vectors)
{
	/* RFC 4648, section 10 */
	static const char *const vec[][2] = {
		{ "", "" },         { "f", "Zg==" },        { "fo", "Zm8=" },         { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	char enc[16];
	uint8_t dec[16];

	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		size_t len = strlen(vec[i][0]);
		size_t n = jsonname_base64(enc, vec[i][0], len);
		ck_assert_uint_eq(n, JSONNAME_BASE64_LEN(len));
		ck_assert_uint_eq(n, strlen(vec[i][1]));
		ck_assert_mem_eq(enc, vec[i][1], n);
		ck_assert_int_eq(jsonname_base64_decode(vec[i][1], n, dec, sizeof(dec)), (ssize_t)len);
		ck_assert_mem_eq(dec, vec[i][0], len);
	}
	/* the upper half of the alphabet and every bit of a byte */
	const unsigned char hi[] = { 0xfb, 0xff, 0xbf };
	ck_assert_uint_eq(jsonname_base64(enc, hi, 3), 4);
	ck_assert_mem_eq(enc, "+/+/", 4);
}
END_TEST

START_TEST(base64_refusals)
{
	uint8_t out[8];

	ck_assert_int_eq(jsonname_base64_decode("Zg=", 3, out, sizeof(out)), -EBADMSG);      /* length */
	ck_assert_int_eq(jsonname_base64_decode("Zg=!", 4, out, sizeof(out)), -EBADMSG);     /* alphabet */
	ck_assert_int_eq(jsonname_base64_decode("Z===", 4, out, sizeof(out)), -EBADMSG);     /* 3 pads */
	ck_assert_int_eq(jsonname_base64_decode("Zg==Zg==", 8, out, sizeof(out)), -EBADMSG); /* pad inside */
	ck_assert_int_eq(jsonname_base64_decode("Z=g=", 4, out, sizeof(out)), -EBADMSG);     /* data after pad */
	ck_assert_int_eq(jsonname_base64_decode("Zm9v\0Zm9", 8, out, sizeof(out)), -EBADMSG); /* NUL */
	ck_assert_int_eq(jsonname_base64_decode("Zm9vYmFy", 8, out, 5), -EBADMSG);          /* room */
	ck_assert_int_eq(jsonname_base64_decode("Zm9vYmFy", 8, out, 6), 6);
}
END_TEST

/* Arbitrary bytes without NUL (names never hold one): the readable form
 * is the reference's and always valid, and base64 gives the bytes back. */
START_TEST(arbitrary_bytes_round_trip)
{
	static unsigned char name[4096];
	static char enc[JSONNAME_BASE64_LEN(sizeof(name))], ref[JSONNAME_LOSSY_MAX(sizeof(name))];
	static uint8_t dec[sizeof(name)];

	for (unsigned round = 0; round < 2000; round++) {
		size_t len = round < 300 ? round : rng() % sizeof(name) + 1;
		/* mostly ASCII with some high bytes, or anything at all */
		unsigned high = round % 3 == 0 ? 256 : 8;
		for (size_t i = 0; i < len; i++) {
			uint32_t r = rng();
			name[i] = r % high == 0 ? (unsigned char)(0x80 | (r >> 8)) : (unsigned char)(1 + (r >> 8) % 255);
		}
		struct sink k = lossy((const char *)name, len);
		size_t ref_len = ref_lossy(name, len, ref);
		ck_assert_uint_eq(k.len, ref_len);
		ck_assert_mem_eq(k.buf, ref, ref_len);
		ck_assert(jsonname_utf8_valid(k.buf, k.len));
		ck_assert(jsonname_utf8_valid((const char *)name, len) == (ref_len == len && !memcmp(ref, name, len)));

		size_t n = jsonname_base64(enc, name, len);
		ck_assert_uint_eq(n, JSONNAME_BASE64_LEN(len));
		ck_assert_int_eq(jsonname_base64_decode(enc, n, dec, len), (ssize_t)len);
		ck_assert_mem_eq(dec, name, len);
	}
}
END_TEST

static Suite *jsonname_suite(void)
{
	Suite *s = suite_create("jsonname");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, valid_utf8_is_one_piece);
	tcase_add_test(tc, code_points);
	tcase_add_test(tc, stray_bytes);
	tcase_add_test(tc, truncated_sequences);
	tcase_add_test(tc, overlong_forms);
	tcase_add_test(tc, surrogates_and_beyond);
	tcase_add_test(tc, agrees_with_table_3_7);
	tcase_add_test(tc, base64_vectors);
	tcase_add_test(tc, base64_refusals);
	tcase_add_test(tc, arbitrary_bytes_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(jsonname_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
