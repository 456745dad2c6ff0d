/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * check-fsnotectl-format.c - unit tests for fsnotectl's direct formatters
 * (client/fsnotectl-format.c).
 *
 * The reference for JSON is jansson: ref_json() builds each record the way
 * fsnotectl did before it had its own formatter (a json_t per event,
 * json_dumps with JSON_COMPACT | JSON_PRESERVE_ORDER |
 * JSON_REAL_PRECISION(16)), and every record of a table of hostile names
 * (control characters, quotes, backslashes, invalid UTF-8, the longest
 * paths) must come out byte for byte the same, parse back with jansson
 * and give back the exact bytes (directly, or from the base64 key).  The
 * human form is checked the same way against its previous stdio
 * implementation, and inotifywait's forms against hand-written lines.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "fsnotectl-format.h"
#include "jsonname.h"

/* --- references ----------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A name as the previous code set it: as is when jansson takes it as
 * UTF-8, else U+FFFD for each bad byte plus "<key>_base64". */
static void ref_set_bytes(json_t *o, const char *key, const char *s, size_t len)
{
	json_t *str = json_stringn(s, len);
	if (str) {
		json_object_set_new(o, key, str);
		return;
	}
	char *lossy = malloc(len * 3 + 1), *enc = malloc((len + 2) / 3 * 4 + 1);
	size_t n = 0, m = 0;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		/* the longest prefix jansson accepts as one character */
		size_t k = 0;
		if (p[i] < 0x80)
			k = 1;
		for (size_t try = 4; !k && try >= 2; try--) {
			if (i + try > len)
				continue;
			json_t *t = json_stringn(s + i, try);
			if (t) {
				k = try;
				json_decref(t);
			}
		}
		if (!k) {
			memcpy(lossy + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		} else {
			memcpy(lossy + n, s + i, k);
			n += k;
			i += k;
		}
	}
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t k = len - i < 3 ? len - i : 3;
		if (k > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (k > 2)
			v |= p[i + 2];
		enc[m++] = b64[(v >> 18) & 63];
		enc[m++] = b64[(v >> 12) & 63];
		enc[m++] = k > 1 ? b64[(v >> 6) & 63] : '=';
		enc[m++] = k > 2 ? b64[v & 63] : '=';
	}
	char key64[64];
	snprintf(key64, sizeof(key64), "%s_base64", key);
	json_object_set_new(o, key, json_stringn(lossy, n));
	json_object_set_new(o, key64, json_stringn(enc, m));
	free(lossy);
	free(enc);
}

static void ref_attrs(json_t *o, const struct fmt_attrs *a, const char *prefix)
{
	static const char *const names[] = { "uid", "gid", "mode", "ino", "dev" };
	uint64_t v[5] = { a->uid, a->gid, a->mode, a->ino, a->dev };
	char key[32];
	for (int i = 0; i < 5; i++) {
		if (!(a->have & (1u << i)))
			continue;
		snprintf(key, sizeof(key), "%s%s", prefix, names[i]);
		json_object_set_new(o, key, json_integer((json_int_t)v[i]));
	}
}

static char *ref_json(const struct fmt_event *e)
{
	json_t *o = json_object();
	const char *tname = fsnote_type_name(e->type);
	char tbuf[32];
	if (!tname) {
		snprintf(tbuf, sizeof(tbuf), "type%" PRIu32, e->type);
		tname = tbuf;
	}
	json_object_set_new(o, "id", json_integer((json_int_t)e->id));
	json_object_set_new(o, "sub_id", json_integer((json_int_t)e->sub_id));
	json_object_set_new(o, "type", json_string(tname));
	ref_set_bytes(o, "path", e->path, e->path_len);
	if (e->dest)
		ref_set_bytes(o, "dest", e->dest, e->dest_len);
	else
		json_object_set_new(o, "dest", json_null());
	json_object_set_new(o, "is_dir", json_boolean(e->is_dir));
	json_t *flags = json_array();
	for (unsigned bit = 0; bit < 32; bit++) {
		if (!(e->flags & (1u << bit)))
			continue;
		const char *n = fsnote_flag_name(bit);
		char tmp[16];
		if (!n) {
			snprintf(tmp, sizeof(tmp), "bit%u", bit);
			n = tmp;
		}
		json_array_append_new(flags, json_string(n));
	}
	json_object_set_new(o, "flags", flags);
	json_object_set_new(o, "pid", json_integer((json_int_t)e->pid));
	ref_attrs(o, &e->attrs[0], "");
	json_object_set_new(o, "time", json_real((double)(e->time_ns / 1000) / 1e6));
	json_object_set_new(o, "time_ns", json_integer((json_int_t)e->time_ns));
	if (e->dest)
		ref_attrs(o, &e->attrs[1], "dest_");
	if (e->type == FSNOTE_DROPPED) {
		json_object_set_new(o, "count", json_integer((json_int_t)e->count));
		json_object_set_new(o, "id_first", json_integer((json_int_t)e->id_first));
		json_object_set_new(o, "id_last", json_integer((json_int_t)e->id_last));
		if (e->rescan)
			ref_set_bytes(o, "rescan", e->rescan, e->rescan_len);
		else
			json_object_set_new(o, "rescan", json_null());
	}
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
	json_decref(o);
	return text;
}

/* The previous human line, with stdio: a growing string and printf. */
struct rbuf {
	char *p;
	size_t len, cap;
};

static void radd(struct rbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void raddf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void raddf(struct rbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	radd(b, tmp, (size_t)n);
}

/* The previous escape, byte by byte with printf.  Which bytes form a
 * character is the shared rule's (protocol/jsonname.c), which
 * check-jsonname holds against the Unicode standard's own table. */
static void rescape(struct rbuf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c == '\\') {
			radd(b, "\\\\", 2);
			i++;
		} else if (c == '\n') {
			radd(b, "\\n", 2);
			i++;
		} else if (c == '\t') {
			radd(b, "\\t", 2);
			i++;
		} else if (c == '\r') {
			radd(b, "\\r", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			raddf(b, "\\x%02x", c);
			i++;
		} else if (c < 0x80) {
			radd(b, (const char *)p + i, 1);
			i++;
		} else {
			size_t n = jsonname_utf8_seq(p + i, len - i, &cp);
			bool mis = (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
				   (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
			if (!n) {
				raddf(b, "\\x%02x", c);
				i++;
			} else if (mis) {
				for (size_t k = 0; k < n; k++)
					raddf(b, "\\x%02x", p[i + k]);
				i += n;
			} else {
				radd(b, (const char *)p + i, n);
				i += n;
			}
		}
	}
}

static char *ref_human(const struct fmt_event *e, bool color)
{
	static const char *const colors[] = { "\033[35m", "\033[32m", "\033[31m", "\033[33m", "\033[34m",
					      "\033[33m", "\033[36m", "\033[1;31m", "\033[1;31m", "\033[35m",
					      "\033[35m", "\033[35m", "\033[1;31m" };
	struct rbuf b = { 0 };
	const char *tname = fsnote_type_name(e->type);
	time_t secs = (time_t)(e->time_ns / 1000000000);
	struct tm tm;
	char when[64];
	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (color)
		radd(&b, "\033[2m", 4);
	raddf(&b, "%s.%06u", when, (unsigned)(e->time_ns % 1000000000 / 1000));
	if (color)
		radd(&b, "\033[0m", 4);
	radd(&b, " ", 1);
	if (color) {
		const char *c = e->type <= 12 ? colors[e->type] : colors[0];
		radd(&b, c, strlen(c));
	}
	if (tname)
		raddf(&b, "%-11s", tname);
	else
		raddf(&b, "type%-7" PRIu32, e->type);
	if (color)
		radd(&b, "\033[0m", 4);
	radd(&b, " ", 1);
	rescape(&b, e->path, e->path_len);
	if (e->dest) {
		radd(&b, " -> ", 4);
		rescape(&b, e->dest, e->dest_len);
	}
	if (e->type == FSNOTE_DROPPED) {
		if (e->count)
			raddf(&b, " (%" PRIu64 " lost", e->count);
		else
			radd(&b, " (lost", 6);
		if (e->id_first && e->id_last)
			raddf(&b, ", IDs %" PRIu64 "-%" PRIu64, e->id_first, e->id_last);
		else if (e->id_first)
			raddf(&b, ", from ID %" PRIu64, e->id_first);
		else if (e->id_last)
			raddf(&b, ", up to ID %" PRIu64, e->id_last);
		if (e->rescan) {
			radd(&b, ", rescan ", 9);
			rescape(&b, e->rescan, e->rescan_len);
		}
		radd(&b, ")", 1);
	}
	if (e->flags) {
		radd(&b, " [", 2);
		bool first = true;
		for (unsigned bit = 0; bit < 32; bit++) {
			if (!(e->flags & (1u << bit)))
				continue;
			const char *n = fsnote_flag_name(bit);
			if (!first)
				radd(&b, ",", 1);
			first = false;
			if (n)
				radd(&b, n, strlen(n));
			else
				raddf(&b, "bit%u", bit);
		}
		radd(&b, "]", 1);
	}
	radd(&b, "\n", 1);
	return b.p;
}

/* --- the table ------------------------------------------------------------------ */

static char long_quotes[4096], long_ctl[4096], long_bad[4096], long_utf8[4096];

static const struct {
	const char *s;
	size_t len; /* 0: strlen */
} names[] = {
	{ "/plain/name.txt", 0 },
	{ "/", 0 },
	{ "", 0 },
	{ "/with \"quotes\" and \\backslash\\", 0 },
	{ "/ctl\x01\x02\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f end", 0 },
	{ "/caf\xc3\xa9/\xf0\x9f\x98\x80/\xe2\x80\xa8/\xe2\x80\xae/\xc2\x85", 0 },
	{ "/bad\xff", 0 },
	{ "/overlong\xc0\xaf", 0 },
	{ "/lone\x80" "continuation", 0 },
	{ "/truncated\xe2\x82", 0 },
	{ "/surrogate\xed\xa0\x80", 0 },
	{ "/too-high\xf4\x90\x80\x80", 0 },
	{ "/mixed\xff\"\\\n\xc3\xa9\x01", 0 },
	{ "/a\xc3", 0 },
	{ "/\xf0\x9f\x98", 0 },
	{ long_quotes, 4095 },
	{ long_ctl, 4095 },
	{ long_bad, 4095 },
	{ long_utf8, 4095 },
};
#define N_NAMES (sizeof(names) / sizeof(names[0]))

static void fill_long(void)
{
	long_quotes[0] = long_ctl[0] = long_bad[0] = long_utf8[0] = '/';
	for (size_t i = 1; i < 4095; i++) {
		long_quotes[i] = i % 2 ? '"' : '\\';
		long_ctl[i] = (char)(1 + i % 31);
		long_bad[i] = (char)(0x80 + i % 128);
	}
	for (size_t i = 1; i + 2 < 4095; i += 3)
		memcpy(long_utf8 + i, "\xe2\x82\xac", 3);
	memcpy(long_utf8 + 4093, "ab", 2);
}

static size_t name_len(size_t i)
{
	return names[i].len ? names[i].len : strlen(names[i].s);
}

static struct fmt_event event_n(unsigned n)
{
	static const uint64_t ids[] = { 1, 42, UINT64_C(1796599691000000123), INT64_MAX,
					(uint64_t)INT64_MAX + 1, UINT64_MAX };
	static const uint64_t times[] = { 0, 1, 999999999, 1000000000, UINT64_C(1796599691123456789),
					  UINT64_C(1796599691000000000), UINT64_C(1796599691000000500),
					  UINT64_C(1796599691999999500), UINT64_C(9999999999999999999),
					  UINT64_C(10000000000000000000) };
	struct fmt_event e = { 0 };
	size_t pi = n % N_NAMES, di = (n / 3) % N_NAMES;
	e.id = ids[n % 6];
	e.sub_id = n % 5;
	e.type = n % 14; /* 0 and 13 are unknown types */
	e.flags = n % 7 == 0 ? 0 : n % 7 == 1 ? UINT32_MAX : (uint32_t)(n * 2654435761u) & 0x80001fff;
	e.is_dir = n % 2;
	e.pid = n % 4 == 0 ? 0 : n * 7919;
	e.time_ns = times[n % 10];
	e.path = names[pi].s;
	e.path_len = name_len(pi);
	if (e.type == FSNOTE_RENAME || n % 11 == 0) {
		e.dest = names[di].s;
		e.dest_len = name_len(di);
	}
	e.attrs[0] = (struct fmt_attrs){ .have = n % 32, .uid = n, .gid = UINT32_MAX - n,
					 .mode = 040755, .ino = UINT64_MAX - n, .dev = n * 1000003ull };
	e.attrs[1] = (struct fmt_attrs){ .have = (n / 2) % 32, .uid = 7, .gid = 8, .mode = 0100644,
					 .ino = 9, .dev = 10 };
	if (e.type == FSNOTE_DROPPED) {
		e.count = n % 3 ? n * 1000 : 0;
		e.id_first = n % 4 ? e.id - 1 : 0;
		e.id_last = n % 5 ? e.id : 0;
		if (n % 2) {
			e.rescan = names[di].s;
			e.rescan_len = name_len(di);
		}
	}
	return e;
}

#define N_EVENTS 600u

static char *fmt_str(void (*f)(struct outbuf *, const struct fmt_event *), const struct fmt_event *e)
{
	struct outbuf o = { 0 };
	f(&o, e);
	outbuf_add(&o, "", 1);
	ck_assert(!o.oom);
	return o.p;
}

/* --- tests ---------------------------------------------------------------------- */

START_TEST(test_json_matches_jansson)
{
	fill_long();
	for (unsigned n = 0; n < N_EVENTS; n++) {
		struct fmt_event e = event_n(n);
		char *want = ref_json(&e), *got = fmt_str(fmt_json, &e);
		ck_assert_ptr_nonnull(want);
		size_t wl = strlen(want), gl = strlen(got);
		ck_assert_msg(gl == wl + 1 && got[wl] == '\n' && memcmp(got, want, wl) == 0,
			      "event %u:\n want %s\n got  %s", n, want, got);
		free(want);
		free(got);
	}
}
END_TEST

/* Every name comes back exactly: directly when it is UTF-8, else from
 * "path_base64"; and "path" is then what jansson calls UTF-8. */
START_TEST(test_json_round_trip)
{
	fill_long();
	for (size_t i = 0; i < N_NAMES; i++) {
		struct fmt_event e = { .type = FSNOTE_CREATE, .path = names[i].s, .path_len = name_len(i),
				       .time_ns = 1 };
		char *got = fmt_str(fmt_json, &e);
		json_error_t err;
		json_t *o = json_loads(got, 0, &err);
		ck_assert_msg(o != NULL, "name %zu: does not parse: %s: %s", i, err.text, got);
		json_t *p = json_object_get(o, "path"), *p64 = json_object_get(o, "path_base64");
		ck_assert(json_is_string(p));
		if (!p64) {
			ck_assert_uint_eq(json_string_length(p), name_len(i));
			ck_assert(memcmp(json_string_value(p), names[i].s, name_len(i)) == 0);
		} else {
			const char *t = json_string_value(p64);
			size_t tl = strlen(t), n = 0;
			unsigned char *bytes = malloc(tl);
			for (size_t k = 0; k < tl; k += 4) {
				uint32_t v = 0;
				int pad = 0;
				for (int j = 0; j < 4; j++) {
					const char *c = strchr(b64, t[k + j]);
					if (t[k + j] == '=') {
						pad++;
						v <<= 6;
					} else {
						ck_assert_ptr_nonnull(c);
						v = (v << 6) | (uint32_t)(c - b64);
					}
				}
				bytes[n++] = (unsigned char)(v >> 16);
				if (pad < 2)
					bytes[n++] = (unsigned char)(v >> 8);
				if (pad < 1)
					bytes[n++] = (unsigned char)v;
			}
			ck_assert_uint_eq(n, name_len(i));
			ck_assert(memcmp(bytes, names[i].s, n) == 0);
			free(bytes);
		}
		json_decref(o);
		free(got);
	}
}
END_TEST

START_TEST(test_real16)
{
	char want[64], got[64];
	uint64_t x = 88172645463325252ull;
	static const uint64_t fixed[] = { 0, 1, 500, 999999999999, 1000000000000000000ull,
					  1000000000000000001ull, 1796599691000000500ull,
					  1796599691000001500ull, 9999999999999999999ull,
					  9999999999999500000ull, 10000000000000000000ull };
	for (unsigned i = 0; i < 100000; i++) {
		uint64_t t;
		if (i < sizeof(fixed) / sizeof(fixed[0])) {
			t = fixed[i];
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* mostly in the epoch range, some anywhere */
			t = i % 8 ? 1000000000000000000ull + x % 9000000000000000000ull : x;
			if (i % 3 == 0)
				t = t / 1000 * 1000 + 500; /* half-way cases */
		}
		double v = (double)t / 1e9;
		json_t *r = json_real(v);
		char *j = json_dumps(r, JSON_ENCODE_ANY | JSON_REAL_PRECISION(16));
		snprintf(want, sizeof(want), "%s", j);
		free(j);
		json_decref(r);
		size_t n = fmt_real16(got, v);
		ck_assert_uint_eq(n, strlen(got));
		ck_assert_msg(strcmp(got, want) == 0, "t=%" PRIu64 ": want %s got %s", t, want, got);
	}
}
END_TEST

START_TEST(test_human_matches_stdio)
{
	static const char *const zones[] = { "UTC0", "CET-1CEST,M3.5.0,M10.5.0/3", "<+0530>-5:30" };
	fill_long();
	for (size_t z = 0; z < 3; z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		fmt_reset_time_cache();
		for (unsigned n = 0; n < N_EVENTS; n++) {
			struct fmt_event e = event_n(n);
			if (e.time_ns > UINT64_C(4000000000000000000))
				e.time_ns /= 3; /* within what localtime takes */
			for (int color = 0; color < 2; color++) {
				char *want = ref_human(&e, color);
				struct outbuf o = { 0 };
				fmt_human(&o, &e, color);
				outbuf_add(&o, "", 1);
				ck_assert_msg(strcmp(o.p, want) == 0, "event %u zone %s:\n want %s\n got  %s", n,
					      zones[z], want, o.p);
				free(o.p);
				free(want);
			}
		}
	}
}
END_TEST

static char *escaped(const char *s, size_t len)
{
	struct outbuf o = { 0 };
	fmt_escape_terminal(&o, s, len);
	outbuf_add(&o, "", 1);
	return o.p;
}

START_TEST(test_escape)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "plain" },
		{ "back\\slash", "back\\\\slash" },
		{ "nl\ntab\tcr\r", "nl\\ntab\\tcr\\r" },
		{ "esc\x1b[31m\x7f", "esc\\x1b[31m\\x7f" },
		{ "caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80" },
		{ "bad\xff\xc0\xaf", "bad\\xff\\xc0\\xaf" },
		{ "c1\xc2\x85", "c1\\xc2\\x85" },
		{ "bidi\xe2\x80\xae" "cba", "bidi\\xe2\\x80\\xae" "cba" },
		{ "ls\xe2\x80\xa8", "ls\\xe2\\x80\\xa8" },
		{ "iso\xe2\x81\xa6", "iso\\xe2\\x81\\xa6" },
		{ "sur\xed\xa0\x80", "sur\\xed\\xa0\\x80" },
		{ "trunc\xe2\x82", "trunc\\xe2\\x82" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = escaped(cases[i].in, strlen(cases[i].in));
		ck_assert_str_eq(got, cases[i].out);
		free(got);
	}
}
END_TEST

/* --- inotifywait's forms ------------------------------------------------------ */

static char *in_lines(const struct fmt_event *e, const struct fmt_inotify *f)
{
	struct outbuf o = { 0 };
	fmt_inotify(&o, e, f);
	outbuf_add(&o, "", 1);
	return o.p;
}

START_TEST(test_inotify_lines)
{
	struct fmt_root roots[] = { { .sub_id = 1, .abs = "/tmp/x/w", .given = "w" },
				    { .sub_id = 2, .abs = "/", .given = "" } };
	struct fmt_inotify f = { .format = "%w|%f|%e", .want = UINT32_MAX, .n_roots = 2, .roots = roots };
	static const struct {
		uint32_t sub, type, flags;
		bool dir;
		const char *path, *dest, *want;
	} cases[] = {
		{ 1, FSNOTE_CREATE, 0, false, "/tmp/x/w/a", NULL, "w/|a|CREATE\n" },
		{ 1, FSNOTE_CREATE, FSNOTE_F_IS_DIR, true, "/tmp/x/w/s/d", NULL, "w/s/|d|CREATE,ISDIR\n" },
		{ 1, FSNOTE_CREATE, FSNOTE_F_RENAMED, false, "/tmp/x/w/in", NULL, "w/|in|MOVED_TO\n" },
		{ 1, FSNOTE_DELETE, FSNOTE_F_RENAMED, false, "/tmp/x/w/out", NULL, "w/|out|MOVED_FROM\n" },
		{ 1, FSNOTE_DELETE, 0, true, "/tmp/x/w/s", NULL, "w/s/||DELETE_SELF\nw/|s|DELETE,ISDIR\n" },
		{ 1, FSNOTE_DELETE, FSNOTE_F_ROOT, true, "/tmp/x/w", NULL, "w/||DELETE_SELF\n" },
		{ 1, FSNOTE_MODIFY, 0, false, "/tmp/x/w/a", NULL, "w/|a|MODIFY\n" },
		{ 1, FSNOTE_CLOSE_WRITE, 0, false, "/tmp/x/w/a", NULL, "w/|a|CLOSE_WRITE,CLOSE\n" },
		{ 1, FSNOTE_ATTRIB, 0, true, "/tmp/x/w/s", NULL, "w/|s|ATTRIB,ISDIR\nw/s/||ATTRIB,ISDIR\n" },
		{ 1, FSNOTE_ATTRIB, FSNOTE_F_ROOT, true, "/tmp/x/w", NULL, "w/||ATTRIB,ISDIR\n" },
		{ 1, FSNOTE_RENAME, 0, false, "/tmp/x/w/a", "/tmp/x/w/s/b", "w/|a|MOVED_FROM\nw/s/|b|MOVED_TO\n" },
		{ 1, FSNOTE_RENAME, 0, true, "/tmp/x/w/t", "/tmp/x/w/u",
		  "w/|t|MOVED_FROM,ISDIR\nw/|u|MOVED_TO,ISDIR\nw/u/||MOVE_SELF\n" },
		{ 1, FSNOTE_OPEN, 0, false, "/tmp/x/w/a", NULL, "w/|a|OPEN\n" },
		{ 1, FSNOTE_ACCESS, 0, false, "/tmp/x/w/a", NULL, "w/|a|ACCESS\n" },
		{ 1, FSNOTE_UNMOUNT, FSNOTE_F_SUB_ENDED, true, "/tmp/x/w", NULL, "w/||UNMOUNT\n" },
		{ 1, FSNOTE_CREATE, 0, false, "/tmp/x/wx/a", NULL, "/tmp/x/wx/|a|CREATE\n" },
		{ 2, FSNOTE_CREATE, 0, false, "/a", NULL, "/|a|CREATE\n" },
		{ 2, FSNOTE_CREATE, 0, false, "/etc/a", NULL, "/etc/|a|CREATE\n" },
		{ 3, FSNOTE_CREATE, 0, false, "/elsewhere/a", NULL, "/elsewhere/|a|CREATE\n" },
		{ 1, 99, 0, false, "/tmp/x/w/a", NULL, "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fmt_event e = { .sub_id = cases[i].sub, .type = cases[i].type, .flags = cases[i].flags,
				       .is_dir = cases[i].dir, .path = cases[i].path,
				       .path_len = strlen(cases[i].path), .dest = cases[i].dest,
				       .dest_len = cases[i].dest ? strlen(cases[i].dest) : 0 };
		char *got = in_lines(&e, &f);
		ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: want '%s' got '%s'", i,
			      cases[i].want, got);
		free(got);
	}
	/* a dropped record names the directory to rescan */
	struct fmt_event d = { .sub_id = 1, .type = FSNOTE_DROPPED, .path = "/tmp/x/w", .path_len = 8,
			       .rescan = "/tmp/x/w/s", .rescan_len = 10 };
	f.want = IN_CREATE; /* shown whatever -e says, as inotifywait does */
	char *got = in_lines(&d, &f);
	ck_assert_str_eq(got, "w/s/||Q_OVERFLOW\n");
	free(got);
	/* -e selects lines, not records */
	struct fmt_event r = { .sub_id = 1, .type = FSNOTE_RENAME, .path = "/tmp/x/w/a", .path_len = 10,
			       .dest = "/tmp/x/w/b", .dest_len = 10 };
	f.want = IN_MOVED_TO;
	got = in_lines(&r, &f);
	ck_assert_str_eq(got, "w/|b|MOVED_TO\n");
	free(got);
}
END_TEST

START_TEST(test_inotify_format)
{
	struct fmt_event e = { .sub_id = 1, .type = FSNOTE_CLOSE_WRITE, .path = "/w/a", .path_len = 4,
			       .time_ns = UINT64_C(1796599691500000000) };
	static const struct {
		const char *fmt, *want;
		size_t want_len;
	} cases[] = {
		{ "%w%f %e", "/w/a CLOSE_WRITE,CLOSE\n", 0 },
		{ "%:e|%;e|%Xe", "CLOSE_WRITE:CLOSE|CLOSE_WRITE;CLOSE|CLOSE_WRITEXCLOSE\n", 0 },
		{ "100%% %q %", "100% %q %\n", 0 },
		{ "%f%0%n", "a\0\n\n", 4 },
		{ "%T", "2026-12-06 23:28:11\n", 0 },
		{ "", "\n", 0 },
	};
	setenv("TZ", "UTC0", 1);
	tzset();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fmt_inotify f = { .format = cases[i].fmt, .timefmt = "%Y-%m-%d %H:%M:%S",
					 .want = UINT32_MAX };
		struct outbuf o = { 0 };
		fmt_inotify(&o, &e, &f);
		size_t wl = cases[i].want_len ? cases[i].want_len : strlen(cases[i].want);
		ck_assert_msg(o.len == wl && memcmp(o.p, cases[i].want, wl) == 0, "format '%s': got '%.*s'",
			      cases[i].fmt, (int)o.len, o.p);
		free(o.p);
	}
	struct fmt_inotify nn = { .format = "%f", .no_newline = true, .want = UINT32_MAX };
	char *got = in_lines(&e, &nn);
	ck_assert_str_eq(got, "a");
	free(got);
	struct fmt_inotify t = { .format = "x %T" };
	ck_assert_int_eq(fmt_inotify_check(&t), -EINVAL);
	t.format = "x %%T";
	ck_assert_int_eq(fmt_inotify_check(&t), 0);
}
END_TEST

START_TEST(test_inotify_csv)
{
	struct fmt_root roots[] = { { .sub_id = 1, .abs = "/t/w", .given = "my, dir" } };
	struct fmt_inotify f = { .csv = true, .want = UINT32_MAX, .n_roots = 1, .roots = roots };
	static const struct {
		uint32_t type;
		bool dir;
		const char *path, *want;
	} cases[] = {
		{ FSNOTE_CREATE, false, "/t/w/plain", "\"my, dir/\",CREATE,plain\n" },
		{ FSNOTE_CREATE, true, "/t/w/a,b", "\"my, dir/\",\"CREATE,ISDIR\",\"a,b\"\n" },
		{ FSNOTE_CREATE, false, "/t/w/q\"x\"", "\"my, dir/\",CREATE,\"q\"\"x\"\"\"\n" },
		{ FSNOTE_CREATE, false, "/t/w/ sp", "\"my, dir/\",CREATE,\" sp\"\n" },
		{ FSNOTE_CREATE, false, "/t/w/sp ", "\"my, dir/\",CREATE,\"sp \"\n" },
		{ FSNOTE_CREATE, false, "/t/w/n\nl", "\"my, dir/\",CREATE,\"n\nl\"\n" },
		{ FSNOTE_CLOSE_WRITE, false, "/t/w/c", "\"my, dir/\",\"CLOSE_WRITE,CLOSE\",c\n" },
		{ FSNOTE_ATTRIB, true, "/u/d", "/u/,\"ATTRIB,ISDIR\",d\n/u/d/,\"ATTRIB,ISDIR\",\n" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fmt_event e = { .sub_id = 1, .type = cases[i].type, .is_dir = cases[i].dir,
				       .path = cases[i].path, .path_len = strlen(cases[i].path) };
		char *got = in_lines(&e, &f);
		ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: want '%s' got '%s'", i,
			      cases[i].want, got);
		free(got);
	}
}
END_TEST

START_TEST(test_inotify_names)
{
	uint32_t want;
	uint64_t types;
	ck_assert_int_eq(fmt_inotify_event_name("MOVED_TO", &want, &types), 0);
	ck_assert_uint_eq(want, IN_MOVED_TO);
	ck_assert(types & FSNOTE_MASK(FSNOTE_RENAME));
	ck_assert(types & FSNOTE_MASK(FSNOTE_CREATE));
	ck_assert_int_eq(fmt_inotify_event_name("close", &want, &types), 0);
	ck_assert_uint_eq(want, IN_CLOSE_WRITE);
	ck_assert_int_eq(fmt_inotify_event_name("close_nowrite", &want, &types), -EOPNOTSUPP);
	ck_assert_int_eq(fmt_inotify_event_name("rename", &want, &types), -EINVAL);
	ck_assert_uint_eq(fmt_inotify_lines_of_type(FSNOTE_RENAME), IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF);
}
END_TEST

/* The buffer writes out whole, and says when an append was lost. */
START_TEST(test_outbuf)
{
	FILE *tmp = tmpfile();
	ck_assert_ptr_nonnull(tmp);
	struct outbuf o = { .fd = fileno(tmp) };
	for (int i = 0; i < 10000; i++)
		outbuf_add(&o, "0123456789", 10);
	ck_assert_uint_ge(o.len, OUTBUF_FLUSH_AT);
	ck_assert_int_eq(outbuf_maybe_flush(&o), 0);
	ck_assert_uint_eq(o.len, 0);
	outbuf_add(&o, "x", 1);
	ck_assert_int_eq(outbuf_maybe_flush(&o), 0);
	ck_assert_uint_eq(o.len, 1);
	ck_assert_int_eq(outbuf_flush(&o), 0);
	ck_assert_int_eq((int)lseek(o.fd, 0, SEEK_END), 100001);
	o.oom = true;
	ck_assert_int_eq(outbuf_flush(&o), -ENOMEM);
	outbuf_done(&o);
	outbuf_done(NULL);
	fclose(tmp);
}
END_TEST

static Suite *format_suite(void)
{
	Suite *s = suite_create("fsnotectl-format");
	TCase *tc = tcase_create("format");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_json_matches_jansson);
	tcase_add_test(tc, test_json_round_trip);
	tcase_add_test(tc, test_real16);
	tcase_add_test(tc, test_human_matches_stdio);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_inotify_lines);
	tcase_add_test(tc, test_inotify_format);
	tcase_add_test(tc, test_inotify_csv);
	tcase_add_test(tc, test_inotify_names);
	tcase_add_test(tc, test_outbuf);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(format_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
