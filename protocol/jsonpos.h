/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jsonpos.h - where things are in a JSON text, and the one-line
 * "FILE:LINE:COLUMN: what is wrong" messages that point there.
 *
 * fsnoted and fsnote-relay read their configuration with jansson, which
 * keeps no positions for the values it built.  To name the line and
 * column of a key it accepted but the program does not, both walk the
 * text again with this cursor; it only ever runs over text jansson has
 * already parsed, so it checks nothing and never reads past the end.
 * Lines and columns are counted as jansson counts them (a new line after
 * '\n', a column per character rather than per byte), so a syntax error
 * from jansson and a value error from us point the same way.
 */
#ifndef FSNOTE_JSONPOS_H
#define FSNOTE_JSONPOS_H

#include <stdarg.h>
#include <stddef.h>

/* A position in the text, both from 1; line 0 means none. */
struct jsonpos {
	unsigned line, col;
};

struct jsonpos_cursor {
	const char *p, *end;    /* the caller's text, not owned */
	struct jsonpos at;      /* of the character under p */
};

void jsonpos_init(struct jsonpos_cursor *c, const char *text, size_t len);
/* The byte under the cursor, or '\0' at the end. */
char jsonpos_peek(const struct jsonpos_cursor *c);
/* One byte on (none at the end). */
void jsonpos_next(struct jsonpos_cursor *c);
void jsonpos_skip_space(struct jsonpos_cursor *c);
/* From a string's opening '"' to just past its closing one. */
void jsonpos_skip_string(struct jsonpos_cursor *c);
/* Past one value that starts under the cursor (space skipped first). */
void jsonpos_skip_value(struct jsonpos_cursor *c);

/* The position of a jansson syntax error (json_error_t's line and
 * column), which may be -1 when jansson knows none. */
struct jsonpos jsonpos_from_jansson(int line, int column);

/* Writes "@path:LINE:COLUMN: " (or "@path: " when @at.line is 0) and the
 * message to @err (@errlen bytes, always NUL-terminated, cut if need be;
 * nothing when @err is NULL or @errlen 0). */
void jsonpos_verror(char *err, size_t errlen, const char *path, struct jsonpos at, const char *fmt,
		    va_list ap) __attribute__((format(printf, 5, 0)));
void jsonpos_error(char *err, size_t errlen, const char *path, struct jsonpos at, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#endif
