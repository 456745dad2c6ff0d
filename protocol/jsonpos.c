/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jsonpos.c - the cursor over a parsed JSON text and the configuration
 * error line (see jsonpos.h).
 */
#include "jsonpos.h"

#include <stdio.h>
#include <string.h>

void jsonpos_init(struct jsonpos_cursor *c, const char *text, size_t len)
{
	*c = (struct jsonpos_cursor){ .p = text, .end = text + len, .at = { 1, 1 } };
}

char jsonpos_peek(const struct jsonpos_cursor *c)
{
	return c->p < c->end ? *c->p : '\0';
}

void jsonpos_next(struct jsonpos_cursor *c)
{
	if (c->p >= c->end)
		return;
	if (*c->p == '\n') {
		c->at.line++;
		c->at.col = 1;
	} else if (c->p + 1 >= c->end || (((unsigned char)c->p[1]) & 0xc0) != 0x80) {
		/* the next byte starts a character (it is not a UTF-8
		 * continuation byte): this one's column is done */
		c->at.col++;
	}
	c->p++;
}

void jsonpos_skip_space(struct jsonpos_cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		jsonpos_next(c);
}

void jsonpos_skip_string(struct jsonpos_cursor *c)
{
	jsonpos_next(c);
	while (c->p < c->end && *c->p != '"') {
		if (*c->p == '\\')
			jsonpos_next(c);
		jsonpos_next(c);
	}
	jsonpos_next(c);
}

void jsonpos_skip_value(struct jsonpos_cursor *c)
{
	unsigned depth = 0;

	jsonpos_skip_space(c);
	do {
		if (c->p >= c->end)
			return;
		switch (*c->p) {
		case '"':
			jsonpos_skip_string(c);
			continue;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		default:
			if (depth == 0) {
				/* a scalar: up to the next delimiter */
				while (c->p < c->end && !strchr(",}] \t\r\n", *c->p))
					jsonpos_next(c);
				return;
			}
		}
		jsonpos_next(c);
	} while (depth > 0);
}

struct jsonpos jsonpos_from_jansson(int line, int column)
{
	/* -1 is jansson's "unknown" (never for a syntax error); keep the
	 * message's shape even then */
	return (struct jsonpos){ line > 0 ? (unsigned)line : 1, column > 0 ? (unsigned)column : 0 };
}

void jsonpos_verror(char *err, size_t errlen, const char *path, struct jsonpos at, const char *fmt,
		    va_list ap)
{
	int n;

	if (!err || errlen == 0)
		return;
	if (at.line > 0)
		n = snprintf(err, errlen, "%s:%u:%u: ", path, at.line, at.col);
	else
		n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return;
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

void jsonpos_error(char *err, size_t errlen, const char *path, struct jsonpos at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jsonpos_verror(err, errlen, path, at, fmt, ap);
	va_end(ap);
}
