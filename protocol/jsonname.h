/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jsonname.h - a name (bytes) as JSON text, the one rule every writer keeps.
 *
 * Names are bytes; JSON strings are UTF-8.  A name that is well-formed
 * UTF-8 is written as it is.  Any other name is written twice: "<key>"
 * with U+FFFD in place of each byte outside a well-formed sequence (so
 * that it stays readable), and "<key>_base64" with its exact bytes in
 * padded base64 (so that nothing is lost).  "fsnotectl watch --json" and
 * fsnote-relay's message bodies both follow this rule through this module,
 * and a reader of either gets the same bytes back with
 * jsonname_base64_decode().
 *
 * Well-formed means RFC 3629: no overlong forms, no surrogates, nothing
 * past U+10FFFF, no truncated sequence.  Nothing here allocates; JSON
 * escaping of the readable form is left to the writer (fsnotectl's own,
 * or jansson's, which agree).
 */
#ifndef FSNOTE_JSONNAME_H
#define FSNOTE_JSONNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The key of the exact bytes is the name's key followed by this. */
#define JSONNAME_BASE64_SUFFIX "_base64"
/* The length of the base64 form of @len bytes. */
#define JSONNAME_BASE64_LEN(len) (((len) + 2) / 3 * 4)
/* The longest readable form of @len bytes: every byte a U+FFFD. */
#define JSONNAME_LOSSY_MAX(len) (3 * (len))

/* Length (1..4) of the well-formed UTF-8 sequence at @p, which has @left
 * (at least 1) bytes, or 0 when @p[0] does not start one; the code point
 * goes to *@ret_cp on success. */
size_t jsonname_utf8_seq(const unsigned char *p, size_t left, uint32_t *ret_cp);

/* Whether @s/@len is well-formed UTF-8.  Inline because it runs for every
 * name a formatter writes, and names are mostly ASCII. */
static inline bool jsonname_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0; i < len;) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = jsonname_utf8_seq(p + i, len - i, &cp);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* Receives the readable form piece by piece (see jsonname_lossy()). */
typedef void jsonname_put_fn(void *ctx, const char *s, size_t len);

/* Hands the readable form of @s/@len to @put, in order: each run of
 * well-formed UTF-8 as it is, and "\xef\xbf\xbd" (U+FFFD) for each byte
 * outside one.  At most JSONNAME_LOSSY_MAX(@len) bytes in all. */
void jsonname_lossy(const char *s, size_t len, jsonname_put_fn *put, void *ctx);

/* Writes the padded base64 form of @s/@len to @dst (which holds
 * JSONNAME_BASE64_LEN(@len) bytes; no NUL is added).  Returns its length. */
size_t jsonname_base64(char *dst, const void *s, size_t len);

/* Decodes the padded base64 @s/@len into @out (capacity @cap).  Returns
 * the number of bytes, or -EBADMSG for text that is not padded base64 or
 * whose bytes do not fit. */
ssize_t jsonname_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap);

#endif
