/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-format.h - how fsnotectl turns events into lines: the human
 * form, JSON, and inotifywait's --format and --csv forms, written straight
 * into one large output buffer.
 *
 * The formatters know nothing of libfsnote: they read a struct fmt_event
 * (a plain view of one event, filled by fmt_event_from() or, in the unit
 * tests, by hand), so that every byte they produce can be checked against
 * a reference without a daemon.  They never fail and never allocate except
 * to grow the buffer; out of memory is remembered in the buffer and
 * reported by outbuf_flush().
 *
 * The buffer is written out by outbuf_flush(); outbuf_maybe_flush() does it
 * once OUTBUF_FLUSH_AT bytes are pending, so that a burst costs one write()
 * per 64 KiB and not one per line.  The caller flushes before it blocks for
 * more events, which keeps "a reader sees each line without waiting for
 * the next event" true.
 */
#ifndef FSNOTECTL_FORMAT_H
#define FSNOTECTL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsnote.h"

#define OUTBUF_FLUSH_AT (64u * 1024u)

struct outbuf {
	char *p;
	size_t len, cap;
	int fd;         /* where outbuf_flush() writes; not owned */
	bool oom;       /* a grow failed: output was lost, outbuf_flush() says so */
};

/* Appends @n bytes; grows the buffer (doubling) when needed. */
void outbuf_add(struct outbuf *o, const void *s, size_t n);
/* Writes everything pending to o->fd.  Returns 0, -ENOMEM if an append was
 * lost, or the write's -errno. */
int outbuf_flush(struct outbuf *o);
int outbuf_maybe_flush(struct outbuf *o);
/* Frees the memory (without writing); NULL-safe. */
void outbuf_done(struct outbuf *o);

enum {
	FMT_HAVE_UID = 1u << 0,
	FMT_HAVE_GID = 1u << 1,
	FMT_HAVE_MODE = 1u << 2,
	FMT_HAVE_INO = 1u << 3,
	FMT_HAVE_DEV = 1u << 4,
};

struct fmt_attrs {
	unsigned have;  /* FMT_HAVE_* */
	uint32_t uid, gid, mode;
	uint64_t ino, dev;
};

/* One event, borrowed: the strings belong to whoever filled it.  @path is
 * never NULL ("" when the event has none); @dest and @rescan are NULL when
 * absent.  attrs[0] describes the object, attrs[1] a rename's destination. */
struct fmt_event {
	uint64_t id, time_ns, count, id_first, id_last;
	uint32_t sub_id, type, flags, pid;
	bool is_dir;
	const char *path, *dest, *rescan;
	size_t path_len, dest_len, rescan_len;
	struct fmt_attrs attrs[2];
};

void fmt_event_from(struct fmt_event *v, const fsnote_event *e);

/* One JSON object and a newline; the keys, their order and every byte are
 * what man/fsnotectl.1 (JSON OUTPUT) describes. */
void fmt_json(struct outbuf *o, const struct fmt_event *e);
/* One human line (HUMAN OUTPUT in the manual) and a newline. */
void fmt_human(struct outbuf *o, const struct fmt_event *e, bool color);
/* Forgets the cached local time of the last second formatted (after a
 * change of TZ). */
void fmt_reset_time_cache(void);

/* Appends @len bytes escaped for a terminal (see the manual). */
void fmt_escape_terminal(struct outbuf *o, const char *s, size_t len);
/* Appends the characters of a JSON string for @len bytes of well-formed
 * UTF-8 (no quotes added): '"', '\' and control characters escaped the way
 * jansson writes them. */
void fmt_json_chars(struct outbuf *o, const char *s, size_t len);
/* A double as jansson writes it with JSON_REAL_PRECISION(16): "%.16g",
 * with ".0" added when that has neither '.' nor 'e' and the exponent
 * without '+' or leading zeros.  Returns the length written to @buf (at
 * least 32 bytes). */
size_t fmt_real16(char *buf, double v);

/* --- inotifywait's forms ------------------------------------------------------ */

/* Which inotifywait lines to print: IN_* bits of <sys/inotify.h>, plus the
 * two fsnoted types inotify has no name for. */
#define FMT_IN_MOUNT (1u << 20)
#define FMT_IN_FS_ERROR (1u << 21)

struct fmt_inotify {
	const char *format;    /* --format, or NULL with csv */
	bool csv;              /* --csv: inotifywait's three quoted columns */
	bool no_newline;       /* --no-newline */
	const char *timefmt;   /* --timefmt for %T */
	uint32_t want;         /* lines whose event is in this set are printed */
	/* per subscription: the event path prefix to replace by the name the
	 * user gave (inotifywait prints paths as they were given) */
	size_t n_roots;
	struct fmt_root {
		uint32_t sub_id;
		const char *abs;   /* as events spell it */
		const char *given; /* as the user spelled it, without trailing '/' */
	} *roots;
};

/* Maps an event name as inotifywait's -e takes it (case-insensitively) to
 * the IN_* lines it selects and the fsnoted types that produce them.
 * Returns 0, or -EOPNOTSUPP for a name fsnoted cannot serve
 * (close_nowrite), or -EINVAL for an unknown name. */
int fmt_inotify_event_name(const char *name, uint32_t *ret_want, uint64_t *ret_types);
/* The IN_* lines an fsnoted type gives (for -e names only fsnoted has). */
uint32_t fmt_inotify_lines_of_type(uint32_t type);
/* Checks a --format string: -EINVAL with %T but no --timefmt. */
int fmt_inotify_check(const struct fmt_inotify *f);
/* The lines inotifywait -m -r would print for @e (zero, one, two or three). */
void fmt_inotify(struct outbuf *o, const struct fmt_event *e, const struct fmt_inotify *f);

#endif
