/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * record.c - JSON bodies of relayed events (see record.h).
 *
 * The field set and its spelling are those of "fsnotectl watch --json"
 * (fsnotectl(1)); names that are not well-formed UTF-8 travel as a lossy
 * readable string plus the exact bytes in "<key>_base64", by the one rule
 * both follow (protocol/jsonname.h).  The decoder accepts exactly what the
 * encoder writes: anything else in a known field is refused, unknown
 * fields are ignored so that a newer relay can add some.
 */
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "jsonname.h"

/* --- names ---------------------------------------------------------------------- */

/* Gathers the pieces of a readable form (room for all of them is made
 * beforehand). */
struct gather {
	char *p;
	size_t len;
};

static void put_gather(void *ctx, const char *s, size_t len)
{
	struct gather *g = ctx;

	memcpy(g->p + g->len, s, len);
	g->len += len;
}

/* Sets @key to the bytes @s/@len by the rule fsnotectl follows too
 * (jsonname.h): as is when they are UTF-8, otherwise readable in @key and
 * exact in "<key>_base64". */
static int set_bytes(json_t *o, const char *key, const char *s, size_t len)
{
	if (jsonname_utf8_valid(s, len))
		return json_object_set_new(o, key, json_stringn(s, len));

	struct gather lossy = { .p = malloc(JSONNAME_LOSSY_MAX(len) + 1) };
	char *enc = malloc(JSONNAME_BASE64_LEN(len) + 1);
	int r = -ENOMEM;
	if (!lossy.p || !enc)
		goto out;
	jsonname_lossy(s, len, put_gather, &lossy);
	size_t e = jsonname_base64(enc, s, len);
	char key64[48];
	snprintf(key64, sizeof(key64), "%s" JSONNAME_BASE64_SUFFIX, key);
	if (json_object_set_new(o, key, json_stringn(lossy.p, lossy.len)) == 0 &&
	    json_object_set_new(o, key64, json_stringn(enc, e)) == 0)
		r = 0;
out:
	free(lossy.p);
	free(enc);
	return r;
}

/* --- encoding ------------------------------------------------------------------ */

static void set_attrs(json_t *o, const fsnote_event *e, bool dest, const char *prefix)
{
	char key[32];
	uint64_t v64;
	uint32_t v32;

#define ATTR(name, fn, var)                                                 \
	if (fn(e, dest, &var) == 0) {                                       \
		snprintf(key, sizeof(key), "%s" name, prefix);              \
		json_object_set_new(o, key, json_integer((json_int_t)var)); \
	}
	ATTR("uid", fsnote_event_uid, v32)
	ATTR("gid", fsnote_event_gid, v32)
	ATTR("mode", fsnote_event_mode, v32)
	ATTR("ino", fsnote_event_ino, v64)
	ATTR("dev", fsnote_event_dev, v64)
#undef ATTR
}

char *record_encode(const fsnote_event *e, const char *host)
{
	uint32_t type = fsnote_event_type(e);
	const char *tname = fsnote_type_name(type);
	char tbuf[32];
	size_t len;
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (!tname) {
		snprintf(tbuf, sizeof(tbuf), "type%" PRIu32, type);
		tname = tbuf;
	}
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "id", json_integer((json_int_t)fsnote_event_id(e)));
	json_object_set_new(o, "sub_id", json_integer((json_int_t)fsnote_event_sub_id(e)));
	json_object_set_new(o, "type", json_string(tname));
	const char *path = fsnote_event_path(e, &len);
	set_bytes(o, "path", path ? path : "", path ? len : 0);
	const char *dest = fsnote_event_dest(e, &len);
	if (dest)
		set_bytes(o, "dest", dest, len);
	else
		json_object_set_new(o, "dest", json_null());
	json_object_set_new(o, "is_dir", json_boolean(fsnote_event_is_dir(e)));
	json_t *flags = json_array();
	uint32_t f = fsnote_event_flags(e);
	for (unsigned bit = 0; bit < 32; bit++) {
		if (!(f & UINT32_C(1) << bit))
			continue;
		const char *n = fsnote_flag_name(bit);
		char b[16];
		if (!n) {
			snprintf(b, sizeof(b), "bit%u", bit);
			n = b;
		}
		json_array_append_new(flags, json_string(n));
	}
	json_object_set_new(o, "flags", flags);
	json_object_set_new(o, "pid", json_integer((json_int_t)fsnote_event_pid(e)));
	set_attrs(o, e, false, "");
	uint64_t t = fsnote_event_time_ns(e);
	json_object_set_new(o, "time", json_real((double)t / 1e9));
	json_object_set_new(o, "time_ns", json_integer((json_int_t)t));
	if (dest)
		set_attrs(o, e, true, "dest_");
	if (type == FSNOTE_DROPPED) {
		json_object_set_new(o, "count", json_integer((json_int_t)fsnote_event_count(e)));
		json_object_set_new(o, "id_first", json_integer((json_int_t)fsnote_event_id_first(e)));
		json_object_set_new(o, "id_last", json_integer((json_int_t)fsnote_event_id_last(e)));
		const char *rescan = fsnote_event_rescan(e, &len);
		if (rescan)
			set_bytes(o, "rescan", rescan, len);
		else
			json_object_set_new(o, "rescan", json_null());
	}
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
	json_decref(o);
	return text;
}

/* --- decoding ------------------------------------------------------------------ */

/* An unsigned integer field no larger than @max; absent is -ENOENT. */
static int get_uint(const json_t *o, const char *key, uint64_t max, uint64_t *ret)
{
	const json_t *v = json_object_get(o, key);

	if (!v)
		return -ENOENT;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/* A byte string field: "<key>_base64" when present (the exact bytes),
 * else the string.  Absent or null is -ENOENT.  The bytes land in @buf
 * (FSNOTE_PATH_MAX), NUL-terminated. */
static int get_bytes(const json_t *o, const char *key, char *buf, size_t *ret_len)
{
	char key64[48];
	const json_t *v;

	snprintf(key64, sizeof(key64), "%s" JSONNAME_BASE64_SUFFIX, key);
	v = json_object_get(o, key64);
	if (v) {
		if (!json_is_string(v))
			return -EBADMSG;
		ssize_t n = jsonname_base64_decode(json_string_value(v), json_string_length(v), (uint8_t *)buf,
						   FSNOTE_PATH_MAX - 1);
		if (n < 0 || memchr(buf, '\0', (size_t)n))
			return -EBADMSG;
		buf[n] = '\0';
		*ret_len = (size_t)n;
		return 0;
	}
	v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return -ENOENT;
	if (!json_is_string(v))
		return -EBADMSG;
	size_t n = json_string_length(v);
	/* jansson refuses \u0000 unless asked, but say why if it ever comes */
	if (n >= FSNOTE_PATH_MAX || memchr(json_string_value(v), '\0', n))
		return -EBADMSG;
	memcpy(buf, json_string_value(v), n + 1);
	*ret_len = n;
	return 0;
}

static int get_stat(const json_t *o, const char *prefix, struct codec_stat *st)
{
	char key[32];
	uint64_t v;
	int r;

#define STAT(name, max, field, have)                                \
	snprintf(key, sizeof(key), "%s" name, prefix);              \
	r = get_uint(o, key, max, &v);                              \
	if (r == -EBADMSG)                                          \
		return r;                                           \
	if (r == 0) {                                               \
		st->field = v;                                      \
		st->have = true;                                    \
	}
	STAT("uid", UINT32_MAX, uid, have_uid)
	STAT("gid", UINT32_MAX, gid, have_gid)
	STAT("mode", UINT32_MAX, mode, have_mode)
	STAT("ino", INT64_MAX, ino, have_ino)
	STAT("dev", INT64_MAX, dev, have_dev)
#undef STAT
	return 0;
}

static int parse_flags(const json_t *arr, uint32_t *ret)
{
	uint32_t flags = 0;
	size_t i;
	const json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) > 32)
		return -EBADMSG;
	json_array_foreach(arr, i, v) {
		const char *n = json_string_value(v);
		unsigned bit;
		if (!n)
			return -EBADMSG;
		for (bit = 0; bit < 32; bit++) {
			const char *k = fsnote_flag_name(bit);
			if (k && strcmp(k, n) == 0)
				break;
		}
		if (bit == 32) {
			char *end;
			unsigned long b;
			if (strncmp(n, "bit", 3) != 0 || n[3] < '0' || n[3] > '9')
				return -EBADMSG;
			b = strtoul(n + 3, &end, 10);
			if (*end || b > 31)
				return -EBADMSG;
			bit = (unsigned)b;
		}
		flags |= UINT32_C(1) << bit;
	}
	*ret = flags;
	return 0;
}

int record_decode(const char *body, size_t len, uint8_t *frame, size_t *ret_len, char **ret_host,
		  const char **err)
{
	char path[FSNOTE_PATH_MAX], dest[FSNOTE_PATH_MAX], rescan[FSNOTE_PATH_MAX];
	struct codec_event ce = { 0 };
	json_error_t jerr;
	json_t *o = NULL;
	uint64_t v;
	int r = -EBADMSG;

#define BAD(why)              \
	do {                  \
		*err = why;   \
		goto out;     \
	} while (0)

	if (len > RECORD_BODY_MAX)
		BAD("the body is larger than 64 KiB");
	o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o))
		BAD("the body is not a JSON object");
	if (get_uint(o, "id", INT64_MAX, &ce.id) < 0)
		BAD("no valid \"id\"");
	if (get_uint(o, "sub_id", UINT32_MAX, &v) < 0)
		BAD("no valid \"sub_id\"");
	ce.sub_id = (uint32_t)v;
	const char *tname = json_string_value(json_object_get(o, "type"));
	if (!tname)
		BAD("no \"type\"");
	ce.type = fsnote_type_from_name(tname);
	if (!ce.type) {
		char *end;
		unsigned long t;
		if (strncmp(tname, "type", 4) != 0 || tname[4] < '0' || tname[4] > '9')
			BAD("unknown \"type\"");
		t = strtoul(tname + 4, &end, 10);
		if (*end || t == 0 || t > UINT16_MAX)
			BAD("unknown \"type\"");
		ce.type = (uint32_t)t;
	}
	if (parse_flags(json_object_get(o, "flags"), &ce.flags) < 0)
		BAD("no valid \"flags\"");
	if (json_is_true(json_object_get(o, "is_dir")))
		ce.flags |= FSNOTE_F_IS_DIR;
	if (get_uint(o, "pid", UINT32_MAX, &v) < 0)
		BAD("no valid \"pid\"");
	ce.pid = (uint32_t)v;
	if (get_uint(o, "time_ns", INT64_MAX, &ce.time_ns) < 0)
		BAD("no valid \"time_ns\"");
	if (get_bytes(o, "path", path, &ce.path_len) < 0)
		BAD("no valid \"path\"");
	ce.path = path;
	if (get_stat(o, "", &ce.st) < 0)
		BAD("an attribute is not a valid number");
	r = get_bytes(o, "dest", dest, &ce.dest_len);
	if (r == -EBADMSG)
		BAD("\"dest\" is not valid");
	if (r == 0) {
		ce.dest = dest;
		if (get_stat(o, "dest_", &ce.dest_st) < 0)
			BAD("an attribute is not a valid number");
	}
	r = -EBADMSG;
	if (ce.type == FSNOTE_DROPPED) {
		if (get_uint(o, "count", INT64_MAX, &ce.count) < 0 ||
		    get_uint(o, "id_first", INT64_MAX, &ce.id_first) < 0 ||
		    get_uint(o, "id_last", INT64_MAX, &ce.id_last) < 0)
			BAD("a dropped record without valid \"count\", \"id_first\" and \"id_last\"");
		if (get_bytes(o, "rescan", rescan, &ce.rescan_len) < 0)
			BAD("a dropped record without a valid \"rescan\"");
		ce.rescan = rescan;
	}
	char *host = NULL;
	const json_t *h = json_object_get(o, "host");
	if (h && !json_is_string(h))
		BAD("\"host\" is not a string");
	int n = codec_encode_event(frame, RECORD_FRAME_MAX, &ce);
	if (n < 0)
		BAD("the record does not fit the protocol's limits");
	/* the same checks fsnote_event_decode() makes, so that a refusal can
	 * say why rather than only that */
	struct codec_record rec;
	struct codec_event check;
	if (codec_decode(frame, (size_t)n, &rec) < 0 || codec_event_from_record(&rec, &check) < 0)
		BAD("an inconsistent record (a relative path, a rename without \"dest\" ...)");
	if (ret_host && h) {
		host = strdup(json_string_value(h));
		if (!host) {
			r = -ENOMEM;
			*err = "out of memory";
			goto out;
		}
	}
	*ret_len = (size_t)n;
	if (ret_host)
		*ret_host = host;
	r = 0;
#undef BAD
out:
	json_decref(o);
	return r;
}
