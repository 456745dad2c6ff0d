/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jsonname.c - the readable and the exact JSON forms of a name (see
 * jsonname.h).
 *
 * The readable form is handed out in pieces rather than written to a
 * buffer of ours so that each writer keeps its own: fsnotectl escapes the
 * pieces straight into its output buffer with no copy and no allocation,
 * the relay gathers them for jansson.
 */
#include "jsonname.h"

#include <errno.h>
#include <string.h>

size_t jsonname_utf8_seq(const unsigned char *p, size_t left, uint32_t *ret_cp)
{
	uint32_t cp;
	size_t n;

	if (p[0] < 0x80) {
		*ret_cp = p[0];
		return 1;
	}
	/* 0xc0 and 0xc1 could only start an overlong form of ASCII, 0xf5 and
	 * above only something past U+10FFFF */
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return n;
}

void jsonname_lossy(const char *s, size_t len, jsonname_put_fn *put, void *ctx)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;
	size_t run = 0;

	for (size_t i = 0; i < len;) {
		size_t n = jsonname_utf8_seq(p + i, len - i, &cp);
		if (n) {
			i += n;
			continue;
		}
		/* one replacement per stray byte, not per broken sequence:
		 * the count of bytes stays visible */
		if (i > run)
			put(ctx, s + run, i - run);
		put(ctx, "\xef\xbf\xbd", 3);
		i++;
		run = i;
	}
	if (len > run)
		put(ctx, s + run, len - run);
}

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t jsonname_base64(char *dst, const void *s, size_t len)
{
	const unsigned char *p = s;
	char *d = dst;

	for (size_t i = 0; i < len; i += 3) {
		size_t n = len - i < 3 ? len - i : 3;
		uint32_t v = (uint32_t)p[i] << 16;
		if (n > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		*d++ = b64_alphabet[(v >> 18) & 63];
		*d++ = b64_alphabet[(v >> 12) & 63];
		*d++ = n > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*d++ = n > 2 ? b64_alphabet[v & 63] : '=';
	}
	return (size_t)(d - dst);
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

ssize_t jsonname_base64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
	size_t o = 0;

	if (len % 4)
		return -EBADMSG;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		size_t n = 3;
		for (int k = 0; k < 4; k++) {
			/* '=' only as the last one or two characters of the text */
			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				n = n < (size_t)k - 1 ? n : (size_t)k - 1;
				continue;
			}
			if (n < 3 || (v[k] = b64_value(s[i + k])) < 0)
				return -EBADMSG;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		if (o + n > cap)
			return -EBADMSG;
		out[o++] = (uint8_t)(w >> 16);
		if (n > 1)
			out[o++] = (uint8_t)(w >> 8);
		if (n > 2)
			out[o++] = (uint8_t)w;
	}
	return (ssize_t)o;
}
