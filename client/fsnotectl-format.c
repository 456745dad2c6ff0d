/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-format.c - events into bytes, without a JSON object or a
 * printf per field.
 *
 * A burst through `fsnotectl watch --json` is hundreds of thousands of
 * records a second, so each record is written straight into one output
 * buffer: integers by hand, strings escaped by scanning for the few bytes
 * that need it and copying the runs between them, the time through an
 * exact integer rounding instead of "%.16g", and the local time of the
 * human form computed once per second.  What comes out is byte for byte
 * what the previous jansson and stdio code wrote (tests/unit/
 * check-fsnotectl-format.c holds a jansson reference and compares): scripts
 * keep working.
 *
 * Invariants: a formatter appends exactly one record (one or more whole
 * lines) or, when memory runs out, sets o->oom; nothing here writes to a
 * descriptor except outbuf_flush().
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "fsnotectl-format.h"
#include "jsonname.h"

/* --- the buffer ------------------------------------------------------------------ */

/* The slow half of reserve(): grows the buffer, doubling. */
static __attribute__((noinline)) char *grow(struct outbuf *o, size_t n)
{
	if (o->oom)
		return NULL;
	size_t cap = o->cap ? o->cap : 2 * OUTBUF_FLUSH_AT;
	while (cap - o->len < n)
		cap *= 2;
	char *p = realloc(o->p, cap);
	if (!p) {
		o->oom = true;
		return NULL;
	}
	o->p = p;
	o->cap = cap;
	return o->p + o->len;
}

/* Room for @n more bytes, or NULL (o->oom set). */
static inline char *reserve(struct outbuf *o, size_t n)
{
	if (__builtin_expect(o->cap - o->len >= n && !o->oom, 1))
		return o->p + o->len;
	return grow(o, n);
}

static inline void add(struct outbuf *o, const void *s, size_t n)
{
	char *d = reserve(o, n);
	if (d) {
		memcpy(d, s, n);
		o->len += n;
	}
}

void outbuf_add(struct outbuf *o, const void *s, size_t n)
{
	char *d = reserve(o, n);
	if (d) {
		memcpy(d, s, n);
		o->len += n;
	}
}

static inline void add_c(struct outbuf *o, char c)
{
	if (o->len < o->cap) {
		o->p[o->len++] = c;
		return;
	}
	add(o, &c, 1);
}

#define ADD_LIT(o, lit) add((o), (lit), sizeof(lit) - 1)

static inline void add_str(struct outbuf *o, const char *s)
{
	add(o, s, strlen(s));
}

int outbuf_flush(struct outbuf *o)
{
	size_t off = 0;
	int r = 0;

	while (off < o->len) {
		ssize_t n = write(o->fd, o->p + off, o->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* a descriptor someone left non-blocking: wait as a
				 * blocking write would */
				struct pollfd p = { .fd = o->fd, .events = POLLOUT };
				if (poll(&p, 1, -1) >= 0 || errno == EINTR)
					continue;
			}
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	o->len = 0;
	if (r == 0 && o->oom) {
		o->oom = false;
		r = -ENOMEM;
	}
	return r;
}

int outbuf_maybe_flush(struct outbuf *o)
{
	return o->len >= OUTBUF_FLUSH_AT || o->oom ? outbuf_flush(o) : 0;
}

void outbuf_done(struct outbuf *o)
{
	if (!o)
		return;
	free(o->p);
	*o = (struct outbuf){ .fd = o->fd };
}

/* --- numbers ---------------------------------------------------------------------- */

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
				  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
				  "8081828384858687888990919293949596979899";

/* Decimal digits of @v at the end of @end; returns where they start.  Two
 * digits per division: IDs have nineteen. */
static char *u64_digits(char *end, uint64_t v)
{
	while (v >= 100) {
		unsigned i = (unsigned)(v % 100) * 2;
		v /= 100;
		*--end = digit_pairs[i + 1];
		*--end = digit_pairs[i];
	}
	if (v >= 10) {
		unsigned i = (unsigned)v * 2;
		*--end = digit_pairs[i + 1];
		*--end = digit_pairs[i];
	} else {
		*--end = (char)('0' + v);
	}
	return end;
}

static void add_u64(struct outbuf *o, uint64_t v)
{
	char tmp[24], *e = tmp + sizeof(tmp);
	char *s = u64_digits(e, v);
	add(o, s, (size_t)(e - s));
}

/* jansson holds integers as json_int_t (long long): a value past INT64_MAX
 * was written negative, and still is. */
static void add_i64(struct outbuf *o, int64_t v)
{
	if (v < 0) {
		add_c(o, '-');
		add_u64(o, (uint64_t)0 - (uint64_t)v);
	} else {
		add_u64(o, (uint64_t)v);
	}
}

size_t fmt_real16(char *buf, double v)
{
	/* the fast path, exact: an epoch time in [1e9, 1e10) s has ten integer
	 * digits, so "%.16g" is the value rounded to six decimals (ties to
	 * even, as glibc rounds), trailing zeros dropped */
	if (v >= 1e9 && v < 1e10) {
		int exp;
		double f = frexp(v, &exp);
		uint64_t m = (uint64_t)ldexp(f, 53);
		int shift = 53 - exp; /* v = m / 2^shift, shift in 19..24 */
		unsigned __int128 n = (unsigned __int128)m * 1000000u;
		unsigned __int128 q = n >> shift, rem = n & (((unsigned __int128)1 << shift) - 1);
		unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
		if (rem > half || (rem == half && (q & 1)))
			q++;
		if (q < 10000000000000000ull) {
			uint64_t u = (uint64_t)q;
			char *p = buf;
			char tmp[24], *e = tmp + sizeof(tmp);
			char *s = u64_digits(e, u / 1000000);
			memcpy(p, s, (size_t)(e - s));
			p += e - s;
			uint32_t frac = (uint32_t)(u % 1000000);
			*p++ = '.';
			if (!frac) {
				*p++ = '0';
			} else {
				char d[6];
				for (int i = 5; i >= 0; i--) {
					d[i] = (char)('0' + frac % 10);
					frac /= 10;
				}
				int n_d = 6;
				while (d[n_d - 1] == '0')
					n_d--;
				memcpy(p, d, (size_t)n_d);
				p += n_d;
			}
			*p = '\0';
			return (size_t)(p - buf);
		}
	}
	int len = snprintf(buf, 32, "%.16g", v);
	if (len < 0 || len >= 29) {
		strcpy(buf, "0.0");
		return 3;
	}
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	char *start = strchr(buf, 'e');
	if (start) {
		start++;
		char *end = start + 1;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)len - (size_t)(end - buf) + 1);
			len -= (int)(end - start);
		}
	}
	return (size_t)len;
}

/* --- UTF-8 and escapes ------------------------------------------------------------ */

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

void fmt_json_chars(struct outbuf *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		add(o, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			ADD_LIT(o, "\\\"");
			break;
		case '\\':
			ADD_LIT(o, "\\\\");
			break;
		case '\b':
			ADD_LIT(o, "\\b");
			break;
		case '\f':
			ADD_LIT(o, "\\f");
			break;
		case '\n':
			ADD_LIT(o, "\\n");
			break;
		case '\r':
			ADD_LIT(o, "\\r");
			break;
		case '\t':
			ADD_LIT(o, "\\t");
			break;
		default: {
			char u[6] = { '\\', 'u', '0', '0', hex_upper[c >> 4], hex_upper[c & 15] };
			add(o, u, sizeof(u));
			break;
		}
		}
	}
	add(o, s + run, len - run);
}

/* Code points that are printable in the strict sense but change how a
 * terminal shows what follows them: C1 controls, bidirectional embeddings
 * and isolates, line and paragraph separators. */
static bool misleading(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static void add_hex_byte(struct outbuf *o, unsigned char c)
{
	char x[4] = { '\\', 'x', hex_lower[c >> 4], hex_lower[c & 15] };
	add(o, x, sizeof(x));
}

void fmt_escape_terminal(struct outbuf *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t n = jsonname_utf8_seq(p + i, len - i, &cp);
			if (n && !misleading(cp)) {
				i += n;
				continue;
			}
			add(o, s + run, i - run);
			if (!n) {
				add_hex_byte(o, c);
				i++;
			} else {
				for (size_t k = 0; k < n; k++)
					add_hex_byte(o, p[i + k]);
				i += n;
			}
			run = i;
			continue;
		}
		add(o, s + run, i - run);
		if (c == '\\')
			ADD_LIT(o, "\\\\");
		else if (c == '\n')
			ADD_LIT(o, "\\n");
		else if (c == '\t')
			ADD_LIT(o, "\\t");
		else if (c == '\r')
			ADD_LIT(o, "\\r");
		else
			add_hex_byte(o, c);
		i++;
		run = i;
	}
	add(o, s + run, len - run);
}

/* --- JSON ------------------------------------------------------------------------- */

static void put_json_chars(void *o, const char *s, size_t len)
{
	fmt_json_chars(o, s, len);
}

/* "@key":"..." for a name, by the rule of jsonname.h: as it is when it is
 * UTF-8, else readable in "@key" and exact in "@key_base64". */
static void json_name(struct outbuf *o, const char *key, size_t key_len, const char *s, size_t len)
{
	add_c(o, '"');
	add(o, key, key_len);
	ADD_LIT(o, "\":\"");
	if (jsonname_utf8_valid(s, len)) {
		fmt_json_chars(o, s, len);
		add_c(o, '"');
		return;
	}
	/* a replacement character needs no escape; the runs between them are
	 * escaped straight into the buffer */
	jsonname_lossy(s, len, put_json_chars, o);
	ADD_LIT(o, "\",\"");
	add(o, key, key_len);
	ADD_LIT(o, JSONNAME_BASE64_SUFFIX "\":\"");
	char *d = reserve(o, JSONNAME_BASE64_LEN(len));
	if (!d)
		return;
	o->len += jsonname_base64(d, s, len);
	add_c(o, '"');
}

#define JSON_NAME(o, key, s, len) json_name((o), (key), sizeof(key) - 1, (s), (len))

static void json_attrs(struct outbuf *o, const struct fmt_attrs *a, bool dest)
{
	static const struct {
		unsigned bit;
		const char *key, *dest_key;
	} keys[] = {
		{ FMT_HAVE_UID, ",\"uid\":", ",\"dest_uid\":" },
		{ FMT_HAVE_GID, ",\"gid\":", ",\"dest_gid\":" },
		{ FMT_HAVE_MODE, ",\"mode\":", ",\"dest_mode\":" },
		{ FMT_HAVE_INO, ",\"ino\":", ",\"dest_ino\":" },
		{ FMT_HAVE_DEV, ",\"dev\":", ",\"dest_dev\":" },
	};
	uint64_t v[5] = { a->uid, a->gid, a->mode, a->ino, a->dev };

	for (size_t i = 0; i < 5; i++) {
		if (!(a->have & keys[i].bit))
			continue;
		add_str(o, dest ? keys[i].dest_key : keys[i].key);
		add_i64(o, (int64_t)v[i]);
	}
}

/* A type's name, or "type<N>" in @tmp for one this library does not know. */
static const char *type_name(uint32_t type, char tmp[16])
{
	const char *n = fsnote_type_name(type);
	if (n)
		return n;
	char d[12], *e = d + sizeof(d), *s = u64_digits(e, type);
	memcpy(tmp, "type", 4);
	memcpy(tmp + 4, s, (size_t)(e - s));
	tmp[4 + (e - s)] = '\0';
	return tmp;
}

static const char *flag_name(unsigned bit, char tmp[16])
{
	const char *n = fsnote_flag_name(bit);
	if (n)
		return n;
	char d[12], *e = d + sizeof(d), *s = u64_digits(e, bit);
	memcpy(tmp, "bit", 3);
	memcpy(tmp + 3, s, (size_t)(e - s));
	tmp[3 + (e - s)] = '\0';
	return tmp;
}

void fmt_json(struct outbuf *o, const struct fmt_event *e)
{
	char tmp[16], real[40];

	ADD_LIT(o, "{\"id\":");
	add_i64(o, (int64_t)e->id);
	ADD_LIT(o, ",\"sub_id\":");
	add_i64(o, e->sub_id);
	ADD_LIT(o, ",\"type\":\"");
	const char *tn = type_name(e->type, tmp);
	fmt_json_chars(o, tn, strlen(tn));
	ADD_LIT(o, "\",");
	JSON_NAME(o, "path", e->path, e->path_len);
	if (e->dest) {
		add_c(o, ',');
		JSON_NAME(o, "dest", e->dest, e->dest_len);
	} else {
		ADD_LIT(o, ",\"dest\":null");
	}
	if (e->is_dir)
		ADD_LIT(o, ",\"is_dir\":true,\"flags\":[");
	else
		ADD_LIT(o, ",\"is_dir\":false,\"flags\":[");
	bool first = true;
	for (uint32_t f = e->flags; f; f &= f - 1) {
		unsigned bit = (unsigned)__builtin_ctz(f);
		if (!first)
			add_c(o, ',');
		first = false;
		add_c(o, '"');
		const char *n = flag_name(bit, tmp);
		fmt_json_chars(o, n, strlen(n));
		add_c(o, '"');
	}
	ADD_LIT(o, "],\"pid\":");
	add_i64(o, e->pid);
	json_attrs(o, &e->attrs[0], false);
	ADD_LIT(o, ",\"time\":");
	/* truncated to the microsecond, as the human output is: whole
	 * microseconds over 1e6 print back exactly at sixteen digits */
	add(o, real, fmt_real16(real, (double)(e->time_ns / 1000) / 1e6));
	ADD_LIT(o, ",\"time_ns\":");
	add_i64(o, (int64_t)e->time_ns);
	if (e->dest)
		json_attrs(o, &e->attrs[1], true);
	if (e->type == FSNOTE_DROPPED) {
		ADD_LIT(o, ",\"count\":");
		add_i64(o, (int64_t)e->count);
		ADD_LIT(o, ",\"id_first\":");
		add_i64(o, (int64_t)e->id_first);
		ADD_LIT(o, ",\"id_last\":");
		add_i64(o, (int64_t)e->id_last);
		if (e->rescan) {
			add_c(o, ',');
			JSON_NAME(o, "rescan", e->rescan, e->rescan_len);
		} else {
			ADD_LIT(o, ",\"rescan\":null");
		}
	}
	ADD_LIT(o, "}\n");
}

/* --- human ------------------------------------------------------------------------ */

static const char *type_color(uint32_t type)
{
	switch (type) {
	case FSNOTE_CREATE:
		return "\033[32m";
	case FSNOTE_DELETE:
		return "\033[31m";
	case FSNOTE_RENAME:
		return "\033[36m";
	case FSNOTE_MODIFY:
	case FSNOTE_CLOSE_WRITE:
		return "\033[33m";
	case FSNOTE_ATTRIB:
		return "\033[34m";
	case FSNOTE_DROPPED:
	case FSNOTE_UNMOUNT:
	case FSNOTE_FS_ERROR:
		return "\033[1;31m";
	default:
		return "\033[35m";
	}
}

/* "YYYY-MM-DDThh:mm:ss" of @secs in local time.  Events come in bursts
 * within the same second, so the conversion (time zone rules and all) is
 * done once per second; a zone's offset only ever changes on a whole
 * second, so the cache is exact. */
static struct {
	time_t secs;
	size_t len; /* 0: empty */
	char text[64];
} time_cache;

static size_t local_time(time_t secs, char *buf, size_t size)
{
	if (time_cache.len && secs == time_cache.secs) {
		memcpy(buf, time_cache.text, time_cache.len);
		return time_cache.len;
	}
	struct tm tm;
	size_t n;
	if (!localtime_r(&secs, &tm) || !(n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm))) {
		int k = snprintf(buf, size, "@%lld", (long long)secs);
		return k > 0 ? (size_t)k : 0;
	}
	if (n < sizeof(time_cache.text)) {
		memcpy(time_cache.text, buf, n);
		time_cache.len = n;
		time_cache.secs = secs;
	}
	return n;
}

void fmt_reset_time_cache(void)
{
	time_cache.len = 0;
}

void fmt_human(struct outbuf *o, const struct fmt_event *e, bool color)
{
	uint64_t t = e->time_ns;
	char when[64], tmp[16];
	size_t len = local_time((time_t)(t / 1000000000), when, sizeof(when));

	if (color)
		ADD_LIT(o, "\033[2m");
	add(o, when, len);
	uint32_t us = (uint32_t)(t % 1000000000 / 1000);
	char frac[7] = { '.' };
	for (int i = 6; i >= 1; i--) {
		frac[i] = (char)('0' + us % 10);
		us /= 10;
	}
	add(o, frac, sizeof(frac));
	if (color)
		ADD_LIT(o, "\033[0m");
	add_c(o, ' ');
	if (color)
		add_str(o, type_color(e->type));
	const char *tn = fsnote_type_name(e->type);
	size_t n;
	if (tn) {
		n = strlen(tn);
		add_str(o, tn);
	} else {
		/* "type%-7u": the number padded to 7, so 11 columns again */
		char d[12], *end = d + sizeof(d), *s = u64_digits(end, e->type);
		ADD_LIT(o, "type");
		add(o, s, (size_t)(end - s));
		for (n = (size_t)(end - s); n < 7; n++)
			add_c(o, ' ');
		n = 11;
	}
	for (; n < 11; n++)
		add_c(o, ' ');
	if (color)
		ADD_LIT(o, "\033[0m");
	add_c(o, ' ');
	fmt_escape_terminal(o, e->path, e->path_len);
	if (e->dest) {
		ADD_LIT(o, " -> ");
		fmt_escape_terminal(o, e->dest, e->dest_len);
	}
	if (e->type == FSNOTE_DROPPED) {
		if (e->count) {
			ADD_LIT(o, " (");
			add_u64(o, e->count);
			ADD_LIT(o, " lost");
		} else {
			ADD_LIT(o, " (lost");
		}
		/* either end of the lost range may be unknown (0) */
		if (e->id_first && e->id_last) {
			ADD_LIT(o, ", IDs ");
			add_u64(o, e->id_first);
			add_c(o, '-');
			add_u64(o, e->id_last);
		} else if (e->id_first) {
			ADD_LIT(o, ", from ID ");
			add_u64(o, e->id_first);
		} else if (e->id_last) {
			ADD_LIT(o, ", up to ID ");
			add_u64(o, e->id_last);
		}
		if (e->rescan) {
			ADD_LIT(o, ", rescan ");
			fmt_escape_terminal(o, e->rescan, e->rescan_len);
		}
		add_c(o, ')');
	}
	if (e->flags) {
		ADD_LIT(o, " [");
		bool first = true;
		for (uint32_t f = e->flags; f; f &= f - 1) {
			if (!first)
				add_c(o, ',');
			first = false;
			add_str(o, flag_name((unsigned)__builtin_ctz(f), tmp));
		}
		add_c(o, ']');
	}
	add_c(o, '\n');
}

/* --- the event view ------------------------------------------------------------------ */

static void attrs_from(struct fmt_attrs *a, const fsnote_event *e, bool dest)
{
	a->have = 0;
	if (fsnote_event_uid(e, dest, &a->uid) == 0)
		a->have |= FMT_HAVE_UID;
	if (fsnote_event_gid(e, dest, &a->gid) == 0)
		a->have |= FMT_HAVE_GID;
	if (fsnote_event_mode(e, dest, &a->mode) == 0)
		a->have |= FMT_HAVE_MODE;
	if (fsnote_event_ino(e, dest, &a->ino) == 0)
		a->have |= FMT_HAVE_INO;
	if (fsnote_event_dev(e, dest, &a->dev) == 0)
		a->have |= FMT_HAVE_DEV;
}

void fmt_event_from(struct fmt_event *v, const fsnote_event *e)
{
	v->id = fsnote_event_id(e);
	v->sub_id = fsnote_event_sub_id(e);
	v->type = fsnote_event_type(e);
	v->flags = fsnote_event_flags(e);
	v->is_dir = fsnote_event_is_dir(e);
	v->pid = fsnote_event_pid(e);
	v->time_ns = fsnote_event_time_ns(e);
	v->path = fsnote_event_path(e, &v->path_len);
	if (!v->path) {
		v->path = "";
		v->path_len = 0;
	}
	v->dest = fsnote_event_dest(e, &v->dest_len);
	if (!v->dest)
		v->dest_len = 0;
	attrs_from(&v->attrs[0], e, false);
	if (v->dest)
		attrs_from(&v->attrs[1], e, true);
	else
		v->attrs[1].have = 0;
	if (v->type == FSNOTE_DROPPED) {
		v->count = fsnote_event_count(e);
		v->id_first = fsnote_event_id_first(e);
		v->id_last = fsnote_event_id_last(e);
		v->rescan = fsnote_event_rescan(e, &v->rescan_len);
		if (!v->rescan)
			v->rescan_len = 0;
	} else {
		v->count = v->id_first = v->id_last = 0;
		v->rescan = NULL;
		v->rescan_len = 0;
	}
}

/* --- inotifywait's forms -------------------------------------------------------------- */

/* inotifywait's names, in the order it lists them in one %e. */
static const struct {
	uint32_t bit;
	const char *name;
} in_names[] = {
	{ IN_ACCESS, "ACCESS" },
	{ IN_MODIFY, "MODIFY" },
	{ IN_ATTRIB, "ATTRIB" },
	{ IN_CLOSE_WRITE, "CLOSE_WRITE" },
	{ IN_CLOSE_NOWRITE, "CLOSE_NOWRITE" },
	{ IN_OPEN, "OPEN" },
	{ IN_MOVED_FROM, "MOVED_FROM" },
	{ IN_MOVED_TO, "MOVED_TO" },
	{ IN_CREATE, "CREATE" },
	{ IN_DELETE, "DELETE" },
	{ IN_DELETE_SELF, "DELETE_SELF" },
	{ IN_UNMOUNT, "UNMOUNT" },
	{ IN_Q_OVERFLOW, "Q_OVERFLOW" },
	{ IN_IGNORED, "IGNORED" },
	{ IN_CLOSE, "CLOSE" },
	{ IN_MOVE_SELF, "MOVE_SELF" },
	{ IN_ISDIR, "ISDIR" },
	{ FMT_IN_MOUNT, "MOUNT" },
	{ FMT_IN_FS_ERROR, "FS_ERROR" },
};

int fmt_inotify_event_name(const char *name, uint32_t *ret_want, uint64_t *ret_types)
{
	static const struct {
		const char *name;
		uint32_t want;
		uint64_t types;
	} map[] = {
		{ "access", IN_ACCESS, FSNOTE_MASK(FSNOTE_ACCESS) },
		{ "modify", IN_MODIFY, FSNOTE_MASK(FSNOTE_MODIFY) },
		{ "attrib", IN_ATTRIB, FSNOTE_MASK(FSNOTE_ATTRIB) },
		{ "close_write", IN_CLOSE_WRITE, FSNOTE_MASK(FSNOTE_CLOSE_WRITE) },
		{ "close", IN_CLOSE_WRITE, FSNOTE_MASK(FSNOTE_CLOSE_WRITE) },
		{ "open", IN_OPEN, FSNOTE_MASK(FSNOTE_OPEN) },
		/* a move whose other side is hidden arrives as create or delete
		 * flagged renamed, which inotifywait spells MOVED_TO / MOVED_FROM */
		{ "moved_from", IN_MOVED_FROM, FSNOTE_MASK(FSNOTE_RENAME) | FSNOTE_MASK(FSNOTE_DELETE) },
		{ "moved_to", IN_MOVED_TO, FSNOTE_MASK(FSNOTE_RENAME) | FSNOTE_MASK(FSNOTE_CREATE) },
		{ "move", IN_MOVED_FROM | IN_MOVED_TO,
		  FSNOTE_MASK(FSNOTE_RENAME) | FSNOTE_MASK(FSNOTE_CREATE) | FSNOTE_MASK(FSNOTE_DELETE) },
		{ "move_self", IN_MOVE_SELF, FSNOTE_MASK(FSNOTE_RENAME) },
		{ "create", IN_CREATE, FSNOTE_MASK(FSNOTE_CREATE) },
		{ "delete", IN_DELETE, FSNOTE_MASK(FSNOTE_DELETE) },
		{ "delete_self", IN_DELETE_SELF, FSNOTE_MASK(FSNOTE_DELETE) },
		{ "unmount", IN_UNMOUNT, FSNOTE_MASK(FSNOTE_UNMOUNT) },
	};

	if (strcasecmp(name, "close_nowrite") == 0)
		return -EOPNOTSUPP;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(name, map[i].name) == 0) {
			*ret_want = map[i].want;
			*ret_types = map[i].types;
			return 0;
		}
	return -EINVAL;
}

uint32_t fmt_inotify_lines_of_type(uint32_t type)
{
	switch (type) {
	case FSNOTE_CREATE:
		return IN_CREATE | IN_MOVED_TO;
	case FSNOTE_DELETE:
		return IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF;
	case FSNOTE_MODIFY:
		return IN_MODIFY;
	case FSNOTE_ATTRIB:
		return IN_ATTRIB;
	case FSNOTE_CLOSE_WRITE:
		return IN_CLOSE_WRITE;
	case FSNOTE_RENAME:
		return IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF;
	case FSNOTE_UNMOUNT:
		return IN_UNMOUNT;
	case FSNOTE_DROPPED:
		return IN_Q_OVERFLOW;
	case FSNOTE_OPEN:
		return IN_OPEN;
	case FSNOTE_ACCESS:
		return IN_ACCESS;
	case FSNOTE_MOUNT:
		return FMT_IN_MOUNT;
	case FSNOTE_FS_ERROR:
		return FMT_IN_FS_ERROR;
	default:
		return 0;
	}
}

int fmt_inotify_check(const struct fmt_inotify *f)
{
	if (!f->format || f->timefmt)
		return 0;
	for (const char *p = f->format; *p; p++) {
		if (*p != '%')
			continue;
		if (p[1] == 'T')
			return -EINVAL;
		if (p[1])
			p++;
	}
	return 0;
}

/* One line as inotifywait sees it: %w (a directory, printed with a
 * trailing slash) and %f (a name in it, or empty for an event on the
 * directory itself). */
struct in_line {
	const char *w;
	size_t w_len;
	const char *f;
	size_t f_len;
	uint32_t mask;
};

/* A line about the name at the end of @path (%w its directory). */
static struct in_line name_line(const char *path, size_t len, uint32_t mask)
{
	const char *slash = memrchr(path, '/', len);
	size_t dir_len = slash ? (size_t)(slash - path) : 0;
	size_t name_off = slash ? dir_len + 1 : 0;
	return (struct in_line){ path, dir_len, path + name_off, len - name_off, mask };
}

/* A line about the directory @path itself (%w the directory, %f empty). */
static struct in_line self_line(const char *path, size_t len, uint32_t mask)
{
	while (len > 0 && path[len - 1] == '/')
		len--;
	return (struct in_line){ path, len, "", 0, mask };
}

static void add_events(struct outbuf *o, uint32_t mask, char sep)
{
	bool first = true;

	for (size_t i = 0; i < sizeof(in_names) / sizeof(in_names[0]); i++) {
		uint32_t bit = in_names[i].bit;
		if (bit == IN_CLOSE ? !(mask & IN_CLOSE) : !(mask & bit))
			continue;
		if (!first)
			add_c(o, sep);
		first = false;
		add_str(o, in_names[i].name);
	}
}

/* %w: the directory (without its trailing slash in @l), spelled as the
 * user gave the watched path, then the slash. */
static void add_w(struct outbuf *o, const struct in_line *l, const struct fmt_inotify *f,
		  uint32_t sub_id)
{
	for (size_t i = 0; i < f->n_roots; i++) {
		const struct fmt_root *r = &f->roots[i];
		size_t n = strlen(r->abs);
		while (n > 1 && r->abs[n - 1] == '/')
			n--;
		if (r->sub_id != sub_id || l->w_len < n || memcmp(l->w, r->abs, n) != 0 ||
		    (l->w_len > n && l->w[n] != '/' && !(n == 1 && r->abs[0] == '/')))
			continue;
		add_str(o, r->given);
		if (n == 1 && r->abs[0] == '/') {
			/* the root directory: what follows starts without a slash */
			if (l->w_len > 1) {
				add_c(o, '/');
				add(o, l->w + 1, l->w_len - 1);
			}
		} else {
			add(o, l->w + n, l->w_len - n);
		}
		add_c(o, '/');
		return;
	}
	add(o, l->w, l->w_len);
	add_c(o, '/');
}

/* The w part of @l as one string in @tmp (for CSV, which needs it whole to
 * decide on quoting). */
static size_t w_string(char *tmp, size_t size, const struct in_line *l, const struct fmt_inotify *f,
		       uint32_t sub_id)
{
	struct outbuf b = { 0 };
	add_w(&b, l, f, sub_id);
	size_t n = b.len < size ? b.len : size;
	if (b.p)
		memcpy(tmp, b.p, n);
	free(b.p);
	return n;
}

/* inotifywait's CSV field: quoted (with '"' doubled) when it holds a
 * quote, a comma or a newline or starts or ends with a space. */
static void add_csv(struct outbuf *o, const char *s, size_t len)
{
	if (!len)
		return;
	if (!memchr(s, '"', len) && !memchr(s, ',', len) && !memchr(s, '\n', len) && s[0] != ' ' &&
	    s[len - 1] != ' ') {
		add(o, s, len);
		return;
	}
	add_c(o, '"');
	size_t run = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '"')
			continue;
		add(o, s + run, i + 1 - run);
		run = i;
	}
	add(o, s + run, len - run);
	add_c(o, '"');
}

static void emit_line(struct outbuf *o, const struct in_line *l, const struct fmt_event *e,
		      const struct fmt_inotify *f)
{
	if (f->csv) {
		char w[8192]; /* a path (at most 4096 bytes) and the given root */
		size_t wn = w_string(w, sizeof(w), l, f, e->sub_id);
		add_csv(o, w, wn);
		add_c(o, ',');
		struct outbuf ev = { 0 };
		add_events(&ev, l->mask, ',');
		add_csv(o, ev.p, ev.len);
		free(ev.p);
		add_c(o, ',');
		add_csv(o, l->f, l->f_len);
		add_c(o, '\n');
		return;
	}
	const char *p = f->format;
	while (*p) {
		const char *pct = strchr(p, '%');
		if (!pct) {
			add_str(o, p);
			break;
		}
		add(o, p, (size_t)(pct - p));
		char c = pct[1];
		p = pct + 2;
		switch (c) {
		case 'w':
			add_w(o, l, f, e->sub_id);
			break;
		case 'f':
			add(o, l->f, l->f_len);
			break;
		case 'e':
			add_events(o, l->mask, ',');
			break;
		case 'T': {
			time_t secs = (time_t)(e->time_ns / 1000000000);
			struct tm tm;
			char buf[512];
			size_t n = 0;
			/* the user's own strftime(3) format, as inotifywait takes it */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			if (f->timefmt && *f->timefmt && localtime_r(&secs, &tm))
				n = strftime(buf, sizeof(buf), f->timefmt, &tm);
#pragma GCC diagnostic pop
			add(o, buf, n);
			break;
		}
		case '0':
			add_c(o, '\0');
			break;
		case 'n':
			add_c(o, '\n');
			break;
		case '%':
			add_c(o, '%');
			break;
		case '\0':
			add_c(o, '%');
			p = pct + 1;
			break;
		default:
			if (pct[2] == 'e') {
				add_events(o, l->mask, c);
				p = pct + 3;
			} else {
				/* not a conversion: as written */
				add(o, pct, 2);
			}
			break;
		}
	}
	if (!f->no_newline)
		add_c(o, '\n');
}

void fmt_inotify(struct outbuf *o, const struct fmt_event *e, const struct fmt_inotify *f)
{
	struct in_line l[3];
	size_t n = 0;
	uint32_t dir = e->is_dir ? IN_ISDIR : 0;
	bool root = e->flags & FSNOTE_F_ROOT;
	bool renamed = e->flags & FSNOTE_F_RENAMED;

	switch (e->type) {
	case FSNOTE_CREATE:
		l[n++] = name_line(e->path, e->path_len, (renamed ? IN_MOVED_TO : IN_CREATE) | dir);
		break;
	case FSNOTE_DELETE:
		if (root || (e->is_dir && !renamed))
			l[n++] = self_line(e->path, e->path_len, IN_DELETE_SELF);
		if (!root)
			l[n++] = name_line(e->path, e->path_len, (renamed ? IN_MOVED_FROM : IN_DELETE) | dir);
		break;
	case FSNOTE_RENAME:
		l[n++] = name_line(e->path, e->path_len, IN_MOVED_FROM | dir);
		if (e->dest) {
			l[n++] = name_line(e->dest, e->dest_len, IN_MOVED_TO | dir);
			if (e->is_dir)
				l[n++] = self_line(e->dest, e->dest_len, IN_MOVE_SELF);
		}
		break;
	case FSNOTE_MODIFY:
	case FSNOTE_CLOSE_WRITE:
	case FSNOTE_ATTRIB:
	case FSNOTE_OPEN:
	case FSNOTE_ACCESS: {
		/* inotify -r watches every directory: an event on a directory
		 * comes from its parent's watch and from its own */
		uint32_t m = fmt_inotify_lines_of_type(e->type) | dir;
		if (!root)
			l[n++] = name_line(e->path, e->path_len, m);
		if (root || e->is_dir)
			l[n++] = self_line(e->path, e->path_len, m);
		break;
	}
	case FSNOTE_UNMOUNT:
		l[n++] = self_line(e->path, e->path_len, IN_UNMOUNT);
		break;
	case FSNOTE_DROPPED:
		if (e->rescan)
			l[n++] = self_line(e->rescan, e->rescan_len, IN_Q_OVERFLOW);
		else
			l[n++] = self_line(e->path, e->path_len, IN_Q_OVERFLOW);
		break;
	case FSNOTE_MOUNT:
	case FSNOTE_FS_ERROR:
		l[n++] = self_line(e->path, e->path_len, fmt_inotify_lines_of_type(e->type));
		break;
	default:
		return;
	}
	for (size_t i = 0; i < n; i++) {
		/* what inotifywait prints whatever -e says */
		uint32_t always = IN_UNMOUNT | IN_Q_OVERFLOW;
		if (l[i].mask & (f->want | always) & ~IN_ISDIR)
			emit_line(o, &l[i], e, f);
	}
}
