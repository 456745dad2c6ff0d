/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * codec.c - the fsnote frame encoder and decoder.
 *
 * The decoder is the daemon's first line of defence: every byte a client
 * sends passes through codec_frame_peek() and codec_decode() before anything
 * else looks at it.  It bounds the frame length before reading further,
 * widens every sum to 64 bits before comparing, checks each argument header
 * and value against the bytes left, checks the value's length against the
 * argument's kind, and checks the argument against the record type's table
 * of allowed, required and repeatable arguments.  It never allocates.
 *
 * Both directions use one table, so a daemon reply that breaks the rules is
 * refused by the library as firmly as a bad request is refused by the daemon.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

#define A(x) (UINT64_C(1) << (FSNOTE_ARG_##x))

/* Argument types are all below 64, so sets of them fit in a u64. */
struct record_rule {
	uint16_t type;
	const char *name;
	uint64_t allowed;
	uint64_t required;
	uint64_t repeatable;
};

#define EVENT_ARGS                                                                 \
	(A(SUB_ID) | A(ID) | A(EVENT_TYPE) | A(FLAGS) | A(TIME) | A(PID) | A(PATH) |   \
	 A(DEV) | A(INO) | A(MODE) | A(UID) | A(GID) | A(DEST_PATH) | A(DEST_DEV) |    \
	 A(DEST_INO) | A(DEST_MODE) | A(DEST_UID) | A(DEST_GID) | A(COUNT) |           \
	 A(ID_FIRST) | A(ID_LAST) | A(RESCAN_PATH))

static const struct record_rule rules[] = {
	{ FSNOTE_REQ_HELLO, "hello", A(VERSION) | A(CLIENT_NAME), A(VERSION), 0 },
	{ FSNOTE_REQ_SUBSCRIBE, "subscribe",
	  A(REQ_ID) | A(SUB_FLAGS) | A(EVENT_MASK) | A(DEV_FILTER) | A(RING_DEPTH) |
	          A(LATENCY_US) | A(BATCH) | A(SINCE_ID) | A(UNTIL_ID) | A(EXCLUDE) | A(PATH) | A(FIELDS),
	  A(REQ_ID) | A(SUB_FLAGS), A(EXCLUDE) },
	{ FSNOTE_REQ_UNSUBSCRIBE, "unsubscribe", A(REQ_ID) | A(SUB_ID), A(REQ_ID) | A(SUB_ID), 0 },
	{ FSNOTE_REQ_CURRENT_ID, "current-id", A(REQ_ID) | A(TIME), A(REQ_ID), 0 },
	{ FSNOTE_REQ_STATUS, "status", A(REQ_ID), A(REQ_ID), 0 },
	{ FSNOTE_REQ_INJECT, "inject",
	  A(REQ_ID) | A(EVENT_TYPE) | A(PATH) | A(FLAGS) | A(PID) | A(DEST_PATH) | A(DEV) |
	          A(INO) | A(MODE) | A(UID) | A(GID),
	  A(REQ_ID) | A(EVENT_TYPE) | A(PATH), 0 },
	{ FSNOTE_REQ_FLUSH, "flush", A(REQ_ID) | A(SUB_ID), A(REQ_ID) | A(SUB_ID), 0 },

	{ FSNOTE_REP_HELLO, "hello-reply",
	  A(VERSION) | A(SERVER_VERSION) | A(FEATURES) | A(BACKEND), A(VERSION), 0 },
	{ FSNOTE_REP_SUBSCRIBED, "subscribed",
	  A(REQ_ID) | A(SUB_ID) | A(ID) | A(PATH) | A(DEV) | A(FLAGS) | A(MESSAGE) | A(BACKEND),
	  A(REQ_ID) | A(SUB_ID) | A(ID), 0 },
	{ FSNOTE_REP_UNSUBSCRIBED, "unsubscribed", A(REQ_ID) | A(SUB_ID), A(REQ_ID) | A(SUB_ID), 0 },
	{ FSNOTE_REP_CURRENT_ID, "current-id-reply", A(REQ_ID) | A(ID), A(REQ_ID) | A(ID), 0 },
	{ FSNOTE_REP_STATUS, "status-reply", A(REQ_ID) | A(JSON), A(REQ_ID) | A(JSON), 0 },
	{ FSNOTE_REP_INJECTED, "injected", A(REQ_ID) | A(ID), A(REQ_ID) | A(ID), 0 },
	{ FSNOTE_REP_FLUSHED, "flushed", A(REQ_ID) | A(SUB_ID) | A(ID),
	  A(REQ_ID) | A(SUB_ID) | A(ID), 0 },
	{ FSNOTE_REP_ERROR, "error", A(REQ_ID) | A(ERRNO) | A(MESSAGE), A(ERRNO) | A(MESSAGE), 0 },

	{ FSNOTE_REC_EVENT, "event", EVENT_ARGS,
	  A(SUB_ID) | A(ID) | A(EVENT_TYPE) | A(FLAGS) | A(TIME) | A(PID) | A(PATH), 0 },
	{ FSNOTE_REC_SHUTDOWN, "shutdown", A(MESSAGE), A(MESSAGE), 0 },
};

static const struct record_rule *rule_for(uint16_t type)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].type == type)
			return &rules[i];
	return NULL;
}

bool codec_record_known(uint16_t type)
{
	return rule_for(type) != NULL;
}

const char *codec_record_name(uint16_t type)
{
	const struct record_rule *r = rule_for(type);
	return r ? r->name : "unknown";
}

enum fsnote_arg_kind codec_arg_kind(uint16_t arg)
{
	switch (arg) {
	case FSNOTE_ARG_DONE:
		return FSNOTE_KIND_EMPTY;
	case FSNOTE_ARG_EVENT_TYPE:
	case FSNOTE_ARG_FLAGS:
	case FSNOTE_ARG_PID:
	case FSNOTE_ARG_MODE:
	case FSNOTE_ARG_UID:
	case FSNOTE_ARG_GID:
	case FSNOTE_ARG_DEST_MODE:
	case FSNOTE_ARG_DEST_UID:
	case FSNOTE_ARG_DEST_GID:
	case FSNOTE_ARG_REQ_ID:
	case FSNOTE_ARG_SUB_ID:
	case FSNOTE_ARG_SUB_FLAGS:
	case FSNOTE_ARG_RING_DEPTH:
	case FSNOTE_ARG_LATENCY_US:
	case FSNOTE_ARG_BATCH:
	case FSNOTE_ARG_FIELDS:
	case FSNOTE_ARG_VERSION:
	case FSNOTE_ARG_ERRNO:
		return FSNOTE_KIND_U32;
	case FSNOTE_ARG_ID:
	case FSNOTE_ARG_TIME:
	case FSNOTE_ARG_DEV:
	case FSNOTE_ARG_INO:
	case FSNOTE_ARG_DEST_DEV:
	case FSNOTE_ARG_DEST_INO:
	case FSNOTE_ARG_COUNT:
	case FSNOTE_ARG_ID_FIRST:
	case FSNOTE_ARG_ID_LAST:
	case FSNOTE_ARG_EVENT_MASK:
	case FSNOTE_ARG_DEV_FILTER:
	case FSNOTE_ARG_SINCE_ID:
	case FSNOTE_ARG_UNTIL_ID:
	case FSNOTE_ARG_FEATURES:
		return FSNOTE_KIND_U64;
	case FSNOTE_ARG_PATH:
	case FSNOTE_ARG_DEST_PATH:
	case FSNOTE_ARG_RESCAN_PATH:
	case FSNOTE_ARG_EXCLUDE:
	case FSNOTE_ARG_MESSAGE:
	case FSNOTE_ARG_JSON:
	case FSNOTE_ARG_CLIENT_NAME:
	case FSNOTE_ARG_SERVER_VERSION:
	case FSNOTE_ARG_BACKEND:
		return FSNOTE_KIND_STRING;
	default:
		return FSNOTE_KIND_INVALID;
	}
}

/* The longest string each string argument may hold, NUL included. */
static uint32_t string_max(uint16_t arg)
{
	switch (arg) {
	case FSNOTE_ARG_PATH:
	case FSNOTE_ARG_DEST_PATH:
	case FSNOTE_ARG_RESCAN_PATH:
		return FSNOTE_PATH_MAX;
	case FSNOTE_ARG_EXCLUDE:
		return FSNOTE_PATTERN_MAX;
	case FSNOTE_ARG_MESSAGE:
		return FSNOTE_MESSAGE_MAX;
	case FSNOTE_ARG_CLIENT_NAME:
	case FSNOTE_ARG_SERVER_VERSION:
	case FSNOTE_ARG_BACKEND:
		return FSNOTE_NAME_MAX;
	default: /* JSON: bounded by the frame */
		return FSNOTE_FRAME_MAX;
	}
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void codec_writer_init(struct codec_writer *w, void *buf, size_t cap, uint16_t type)
{
	*w = (struct codec_writer){ .buf = buf, .cap = cap };
	if (cap > FSNOTE_FRAME_MAX)
		w->cap = FSNOTE_FRAME_MAX;
	if (w->cap < FSNOTE_FRAME_MIN) {
		w->error = -EMSGSIZE;
		return;
	}
	put_le32(w->buf, 0);
	put_le16(w->buf + 4, type);
	put_le16(w->buf + 6, 0);
	w->len = FSNOTE_FRAME_HEADER_SIZE;
}

/* Reserves room for an argument and returns where its value goes, or NULL
 * (and a sticky error).  Room for the final DONE is always kept back. */
static uint8_t *put_arg(struct codec_writer *w, uint16_t arg, size_t len)
{
	if (w->error)
		return NULL;
	/* one argument slot is kept for DONE */
	if (w->n_args + 1 >= FSNOTE_ARGS_MAX ||
	    (uint64_t)w->len + FSNOTE_ARG_HEADER_SIZE + len + FSNOTE_ARG_HEADER_SIZE > w->cap) {
		w->error = -EMSGSIZE;
		return NULL;
	}
	uint8_t *p = w->buf + w->len;
	put_le16(p, arg);
	put_le16(p + 2, 0);
	put_le32(p + 4, (uint32_t)len);
	w->len += FSNOTE_ARG_HEADER_SIZE + len;
	w->n_args++;
	return p + FSNOTE_ARG_HEADER_SIZE;
}

void codec_put_u32(struct codec_writer *w, uint16_t arg, uint32_t v)
{
	uint8_t *p = put_arg(w, arg, 4);
	if (p)
		put_le32(p, v);
}

void codec_put_u64(struct codec_writer *w, uint16_t arg, uint64_t v)
{
	uint8_t *p = put_arg(w, arg, 8);
	if (p)
		put_le64(p, v);
}

void codec_put_string(struct codec_writer *w, uint16_t arg, const char *s, size_t len)
{
	if (w->error)
		return;
	if (len >= string_max(arg)) {
		w->error = -EMSGSIZE;
		return;
	}
	if (memchr(s, '\0', len)) {
		w->error = -EINVAL;
		return;
	}
	uint8_t *p = put_arg(w, arg, len + 1);
	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
}

void codec_put_cstring(struct codec_writer *w, uint16_t arg, const char *s)
{
	codec_put_string(w, arg, s, strlen(s));
}

int codec_writer_finish(struct codec_writer *w)
{
	if (w->error)
		return w->error;
	/* put_arg() always left room for this */
	uint8_t *p = w->buf + w->len;
	memset(p, 0, FSNOTE_ARG_HEADER_SIZE);
	w->len += FSNOTE_ARG_HEADER_SIZE;
	put_le32(w->buf, (uint32_t)w->len);
	return (int)w->len;
}

int codec_frame_peek(const void *buf, size_t avail, uint32_t max, uint32_t *ret_len)
{
	const uint8_t *p = buf;

	if (avail < FSNOTE_FRAME_HEADER_SIZE)
		return 0;
	uint32_t len = codec_le32(p);
	if (len < FSNOTE_FRAME_MIN || codec_le16(p + 6) != 0)
		return -EBADMSG;
	if (len > max || len > FSNOTE_FRAME_MAX)
		return -EMSGSIZE;
	if (avail < len)
		return 0;
	*ret_len = len;
	return 1;
}

static bool value_ok(uint16_t arg, const uint8_t *v, uint32_t len)
{
	switch (codec_arg_kind(arg)) {
	case FSNOTE_KIND_EMPTY:
		return len == 0;
	case FSNOTE_KIND_U32:
		return len == 4;
	case FSNOTE_KIND_U64:
		return len == 8;
	case FSNOTE_KIND_STRING:
		/* NUL last and nowhere else */
		return len >= 1 && len <= string_max(arg) && v[len - 1] == '\0' &&
		       memchr(v, '\0', len - 1) == NULL;
	default:
		return false;
	}
}

int codec_decode(const void *buf, size_t len, struct codec_record *ret)
{
	const uint8_t *p = buf;
	uint32_t frame_len;
	int r;

	if (len > FSNOTE_FRAME_MAX)
		return -EMSGSIZE;
	r = codec_frame_peek(buf, len, FSNOTE_FRAME_MAX, &frame_len);
	if (r < 0)
		return r;
	if (r == 0 || frame_len != len)
		return -EBADMSG;

	uint16_t type = codec_le16(p + 4);
	const struct record_rule *rule = rule_for(type);
	if (!rule)
		return -EPROTONOSUPPORT;

	/* Decode into a local record so that @ret stays untouched on error;
	 * the record is large but bounded, and callers keep it off hot stacks. */
	struct codec_record rec = { .type = type, .length = frame_len };
	uint64_t seen = 0;
	size_t off = FSNOTE_FRAME_HEADER_SIZE;
	bool done = false;

	while (off < len) {
		if ((uint64_t)off + FSNOTE_ARG_HEADER_SIZE > len)
			return -EBADMSG;
		uint16_t arg = codec_le16(p + off);
		uint16_t reserved = codec_le16(p + off + 2);
		uint32_t vlen = codec_le32(p + off + 4);
		off += FSNOTE_ARG_HEADER_SIZE;
		if (reserved != 0 || (uint64_t)off + vlen > len)
			return -EBADMSG;
		if (arg == FSNOTE_ARG_DONE) {
			if (vlen != 0 || off != len)
				return -EBADMSG;
			done = true;
			break;
		}
		if (arg >= 64 || !(rule->allowed & (UINT64_C(1) << arg)))
			return -EBADMSG;
		if ((seen & (UINT64_C(1) << arg)) && !(rule->repeatable & (UINT64_C(1) << arg)))
			return -EBADMSG;
		if (!value_ok(arg, p + off, vlen))
			return -EBADMSG;
		if (rec.n_args + 1 >= FSNOTE_ARGS_MAX)
			return -EBADMSG;
		rec.args[rec.n_args++] = (struct codec_arg){ .type = arg, .len = vlen, .value = p + off };
		seen |= UINT64_C(1) << arg;
		off += vlen;
	}
	if (!done || (seen & rule->required) != rule->required)
		return -EBADMSG;

	ret->type = rec.type;
	ret->length = rec.length;
	ret->n_args = rec.n_args;
	memcpy(ret->args, rec.args, rec.n_args * sizeof(rec.args[0]));
	return 0;
}

const struct codec_arg *codec_find(const struct codec_record *r, uint16_t arg)
{
	for (unsigned i = 0; i < r->n_args; i++)
		if (r->args[i].type == arg)
			return &r->args[i];
	return NULL;
}

int codec_get_u32(const struct codec_record *r, uint16_t arg, uint32_t *ret)
{
	const struct codec_arg *a = codec_find(r, arg);
	if (!a || a->len != 4)
		return -ENOENT;
	*ret = codec_le32(a->value);
	return 0;
}

int codec_get_u64(const struct codec_record *r, uint16_t arg, uint64_t *ret)
{
	const struct codec_arg *a = codec_find(r, arg);
	if (!a || a->len != 8)
		return -ENOENT;
	*ret = codec_le64(a->value);
	return 0;
}

int codec_get_string(const struct codec_record *r, uint16_t arg, const char **ret, size_t *ret_len)
{
	const struct codec_arg *a = codec_find(r, arg);
	if (!a || a->len < 1)
		return -ENOENT;
	*ret = (const char *)a->value;
	if (ret_len)
		*ret_len = a->len - 1;
	return 0;
}

static const char *const event_names[FSNOTE_EV_MAX + 1] = {
	[FSNOTE_EV_CREATE] = "create",       [FSNOTE_EV_DELETE] = "delete",
	[FSNOTE_EV_MODIFY] = "modify",       [FSNOTE_EV_ATTRIB] = "attrib",
	[FSNOTE_EV_CLOSE_WRITE] = "close_write", [FSNOTE_EV_RENAME] = "rename",
	[FSNOTE_EV_UNMOUNT] = "unmount",     [FSNOTE_EV_DROPPED] = "dropped",
	[FSNOTE_EV_OPEN] = "open",           [FSNOTE_EV_ACCESS] = "access",
	[FSNOTE_EV_MOUNT] = "mount",         [FSNOTE_EV_FS_ERROR] = "fs_error",
	[FSNOTE_EV_HISTORY_END] = "history_end",
};

const char *codec_event_type_name(uint32_t type)
{
	if (type > FSNOTE_EV_MAX || !event_names[type])
		return "unknown";
	return event_names[type];
}

uint32_t codec_event_type_from_name(const char *name, size_t len)
{
	for (uint32_t t = 1; t <= FSNOTE_EV_MAX; t++)
		if (event_names[t] && strlen(event_names[t]) == len && memcmp(event_names[t], name, len) == 0)
			return t;
	return 0;
}

static const char *const flag_names[32] = {
	"combined", "dropped", "must_rescan", "is_dir", "renamed", "kernel_overflow",
	"ring_overflow", "pool_reclaim", "injected", "history", "root", "sub_ended",
	"local_only", "path_too_long", NULL, "unverified",
};

const char *codec_flag_name(unsigned bit)
{
	return bit < 32 ? flag_names[bit] : NULL;
}

static void put_stat(struct codec_writer *w, const struct codec_stat *st, bool dest)
{
	if (st->have_dev)
		codec_put_u64(w, dest ? FSNOTE_ARG_DEST_DEV : FSNOTE_ARG_DEV, st->dev);
	if (st->have_ino)
		codec_put_u64(w, dest ? FSNOTE_ARG_DEST_INO : FSNOTE_ARG_INO, st->ino);
	if (st->have_mode)
		codec_put_u32(w, dest ? FSNOTE_ARG_DEST_MODE : FSNOTE_ARG_MODE, st->mode);
	if (st->have_uid)
		codec_put_u32(w, dest ? FSNOTE_ARG_DEST_UID : FSNOTE_ARG_UID, st->uid);
	if (st->have_gid)
		codec_put_u32(w, dest ? FSNOTE_ARG_DEST_GID : FSNOTE_ARG_GID, st->gid);
}

int codec_encode_event(void *buf, size_t cap, const struct codec_event *ev)
{
	struct codec_writer w;

	codec_writer_init(&w, buf, cap, FSNOTE_REC_EVENT);
	codec_put_u32(&w, FSNOTE_ARG_SUB_ID, ev->sub_id);
	codec_put_u64(&w, FSNOTE_ARG_ID, ev->id);
	codec_put_u32(&w, FSNOTE_ARG_EVENT_TYPE, ev->type);
	codec_put_u32(&w, FSNOTE_ARG_FLAGS, ev->flags);
	codec_put_u64(&w, FSNOTE_ARG_TIME, ev->time_ns);
	codec_put_u32(&w, FSNOTE_ARG_PID, ev->pid);
	codec_put_string(&w, FSNOTE_ARG_PATH, ev->path ? ev->path : "", ev->path ? ev->path_len : 0);
	put_stat(&w, &ev->st, false);
	if (ev->dest) {
		codec_put_string(&w, FSNOTE_ARG_DEST_PATH, ev->dest, ev->dest_len);
		put_stat(&w, &ev->dest_st, true);
	}
	if (ev->rescan) {
		codec_put_u64(&w, FSNOTE_ARG_COUNT, ev->count);
		codec_put_u64(&w, FSNOTE_ARG_ID_FIRST, ev->id_first);
		codec_put_u64(&w, FSNOTE_ARG_ID_LAST, ev->id_last);
		codec_put_string(&w, FSNOTE_ARG_RESCAN_PATH, ev->rescan, ev->rescan_len);
	}
	return codec_writer_finish(&w);
}

static void get_stat(const struct codec_record *r, struct codec_stat *st, bool dest)
{
	st->have_dev = codec_get_u64(r, dest ? FSNOTE_ARG_DEST_DEV : FSNOTE_ARG_DEV, &st->dev) == 0;
	st->have_ino = codec_get_u64(r, dest ? FSNOTE_ARG_DEST_INO : FSNOTE_ARG_INO, &st->ino) == 0;
	st->have_mode = codec_get_u32(r, dest ? FSNOTE_ARG_DEST_MODE : FSNOTE_ARG_MODE, &st->mode) == 0;
	st->have_uid = codec_get_u32(r, dest ? FSNOTE_ARG_DEST_UID : FSNOTE_ARG_UID, &st->uid) == 0;
	st->have_gid = codec_get_u32(r, dest ? FSNOTE_ARG_DEST_GID : FSNOTE_ARG_GID, &st->gid) == 0;
}

int codec_event_from_record(const struct codec_record *r, struct codec_event *ret)
{
	struct codec_event ev = { 0 };

	if (r->type != FSNOTE_REC_EVENT)
		return -EBADMSG;
	/* required arguments were checked by codec_decode() */
	(void)codec_get_u32(r, FSNOTE_ARG_SUB_ID, &ev.sub_id);
	(void)codec_get_u64(r, FSNOTE_ARG_ID, &ev.id);
	(void)codec_get_u32(r, FSNOTE_ARG_EVENT_TYPE, &ev.type);
	(void)codec_get_u32(r, FSNOTE_ARG_FLAGS, &ev.flags);
	(void)codec_get_u64(r, FSNOTE_ARG_TIME, &ev.time_ns);
	(void)codec_get_u32(r, FSNOTE_ARG_PID, &ev.pid);
	(void)codec_get_string(r, FSNOTE_ARG_PATH, &ev.path, &ev.path_len);
	get_stat(r, &ev.st, false);
	if (codec_get_string(r, FSNOTE_ARG_DEST_PATH, &ev.dest, &ev.dest_len) == 0)
		get_stat(r, &ev.dest_st, true);
	if (codec_get_string(r, FSNOTE_ARG_RESCAN_PATH, &ev.rescan, &ev.rescan_len) == 0) {
		(void)codec_get_u64(r, FSNOTE_ARG_COUNT, &ev.count);
		(void)codec_get_u64(r, FSNOTE_ARG_ID_FIRST, &ev.id_first);
		(void)codec_get_u64(r, FSNOTE_ARG_ID_LAST, &ev.id_last);
	}

	if (ev.type == 0 || ev.type > FSNOTE_EV_MAX)
		return -EBADMSG;
	if (ev.type == FSNOTE_EV_RENAME && !ev.dest)
		return -EBADMSG;
	if (ev.type == FSNOTE_EV_DROPPED && !ev.rescan)
		return -EBADMSG;
	/* every path is absolute, except the empty path of a dropped record */
	if (ev.path_len > 0 && ev.path[0] != '/')
		return -EBADMSG;
	if (ev.path_len == 0 && ev.type != FSNOTE_EV_DROPPED)
		return -EBADMSG;
	if (ev.dest && (ev.dest_len == 0 || ev.dest[0] != '/'))
		return -EBADMSG;
	if (ev.rescan && (ev.rescan_len == 0 || ev.rescan[0] != '/'))
		return -EBADMSG;
	*ret = ev;
	return 0;
}
