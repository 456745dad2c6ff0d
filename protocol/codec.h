/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * codec.h - encode and decode fsnote frames (see fsnote-protocol.h).
 *
 * The encoder writes into a caller-supplied buffer and never overruns it;
 * errors are sticky and reported once by codec_writer_finish().  The decoder
 * allocates nothing: a decoded record points into the caller's bytes, which
 * must outlive it.  The decoder never reads outside [buf, buf + len) and
 * accepts a frame only if every rule in fsnote-protocol(7) holds.
 */
#ifndef FSNOTE_CODEC_H
#define FSNOTE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsnote-protocol.h"

struct codec_writer {
	uint8_t *buf;   /* caller's, not owned */
	size_t cap;
	size_t len;
	unsigned n_args;
	int error;      /* first error, 0 if none */
};

/* Starts a frame of record type @type in @buf (which must stay valid until
 * codec_writer_finish()). */
void codec_writer_init(struct codec_writer *w, void *buf, size_t cap, uint16_t type);
void codec_put_u32(struct codec_writer *w, uint16_t arg, uint32_t v);
void codec_put_u64(struct codec_writer *w, uint16_t arg, uint64_t v);
/* @len excludes the NUL, which the encoder adds; a NUL inside @s is -EINVAL. */
void codec_put_string(struct codec_writer *w, uint16_t arg, const char *s, size_t len);
void codec_put_cstring(struct codec_writer *w, uint16_t arg, const char *s);
/* Appends DONE and the header.  Returns the frame length, or -EMSGSIZE when
 * the frame would not fit in the buffer or exceed FSNOTE_FRAME_MAX or
 * FSNOTE_ARGS_MAX, or -EINVAL for a bad argument. */
int codec_writer_finish(struct codec_writer *w);

struct codec_arg {
	uint16_t type;
	uint32_t len;
	const uint8_t *value;  /* points into the decoded bytes */
};

struct codec_record {
	uint16_t type;
	uint32_t length;       /* whole frame */
	unsigned n_args;       /* DONE excluded */
	struct codec_arg args[FSNOTE_ARGS_MAX];
};

/* Looks at the first bytes of a stream.  Returns 1 and the frame length
 * when a whole frame of at most @max bytes is available, 0 when more bytes
 * are needed, -EMSGSIZE when the header announces more than @max, and
 * -EBADMSG for a length below FSNOTE_FRAME_MIN or a non-zero reserved
 * field. */
int codec_frame_peek(const void *buf, size_t avail, uint32_t max, uint32_t *ret_len);

/* Decodes exactly one frame occupying all of [buf, buf + len).  Returns 0,
 * -EMSGSIZE (longer than FSNOTE_FRAME_MAX), -EPROTONOSUPPORT (unknown record
 * type) or -EBADMSG (anything else malformed: lengths, kinds, a string's
 * NUL, an argument not allowed in this record or repeated, a required one
 * missing, no DONE or bytes after it).  @ret is written only on success. */
int codec_decode(const void *buf, size_t len, struct codec_record *ret);

const struct codec_arg *codec_find(const struct codec_record *r, uint16_t arg);
/* Each returns 0, or -ENOENT when the argument is absent; the value was
 * validated by codec_decode(). */
int codec_get_u32(const struct codec_record *r, uint16_t arg, uint32_t *ret);
int codec_get_u64(const struct codec_record *r, uint16_t arg, uint64_t *ret);
/* @ret_len excludes the NUL. */
int codec_get_string(const struct codec_record *r, uint16_t arg, const char **ret, size_t *ret_len);

enum fsnote_arg_kind codec_arg_kind(uint16_t arg);
bool codec_record_known(uint16_t type);
const char *codec_record_name(uint16_t type);

/* Event types and flags by name, as fsnotectl prints them. */
const char *codec_event_type_name(uint32_t type);
/* Returns the type, or 0 for an unknown name. */
uint32_t codec_event_type_from_name(const char *name, size_t len);
/* Name of flag bit @bit (0..31), NULL if unassigned. */
const char *codec_flag_name(unsigned bit);

/* One side (source or destination) of an event's object. */
struct codec_stat {
	bool have_dev, have_ino, have_mode, have_uid, have_gid;
	uint64_t dev, ino;
	uint32_t mode, uid, gid;
};

/* An event record in structured form.  Strings point into the decoded
 * frame (decode) or the caller's memory (encode); lengths exclude NULs. */
struct codec_event {
	uint32_t sub_id;
	uint64_t id;
	uint32_t type;
	uint32_t flags;
	uint64_t time_ns;
	uint32_t pid;
	const char *path;
	size_t path_len;
	struct codec_stat st;
	const char *dest;       /* NULL unless a rename */
	size_t dest_len;
	struct codec_stat dest_st;
	/* dropped records */
	uint64_t count, id_first, id_last;
	const char *rescan;     /* NULL unless dropped */
	size_t rescan_len;
};

/* Encodes @ev as a FSNOTE_REC_EVENT frame into @buf.  Returns the frame
 * length or a negative errno as codec_writer_finish(). */
int codec_encode_event(void *buf, size_t cap, const struct codec_event *ev);
/* Sets the SUB_ID of an event frame made by codec_encode_event(), which
 * always puts it first: one encoding then serves every subscription that
 * sees the same record. */
#define CODEC_EVENT_SUB_ID_OFFSET (FSNOTE_FRAME_HEADER_SIZE + FSNOTE_ARG_HEADER_SIZE)
static inline void codec_patch_event_sub_id(uint8_t *frame, uint32_t sub_id)
{
	for (int i = 0; i < 4; i++)
		frame[CODEC_EVENT_SUB_ID_OFFSET + i] = (uint8_t)(sub_id >> (8 * i));
}
/* Fills @ret from a decoded FSNOTE_REC_EVENT record.  Returns 0 or -EBADMSG
 * (wrong record type, or an inconsistent event: a rename without its
 * destination, a dropped record without its rescan path, a relative path). */
int codec_event_from_record(const struct codec_record *r, struct codec_event *ret);

static inline uint32_t codec_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t codec_le64(const uint8_t *p)
{
	return (uint64_t)codec_le32(p) | (uint64_t)codec_le32(p + 4) << 32;
}

static inline uint16_t codec_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

#endif
