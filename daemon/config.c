/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c - fsnoted's configuration file: defaults, reading, validation.
 *
 * The file is one JSON object of known keys (see config.h and
 * fsnoted.conf(5)).  Loading works on a private struct config and hands it
 * over only when every key has been checked, so a caller's configuration is
 * never half replaced.  The file is bounded (CONFIG_FILE_MAX) before it is
 * read, and jansson parses it with duplicate keys rejected.
 *
 * Every error is one line "FILE:LINE:COLUMN: what is wrong".  Syntax errors
 * carry jansson's position.  jansson keeps no positions for the values it
 * built, so for a key it accepted but we do not, a small scanner
 * (protocol/jsonpos.c, shared with fsnote-relay) walks the (already valid)
 * text and finds where that key and its value start; the keys are also
 * checked in the order the scanner meets them, so the error reported is
 * the first one in the file.  Columns count characters, as jansson's do.  Errors that concern the whole file (cannot open it, too
 * large, not a regular file) have no position and read "FILE: ...".
 */
#include "config.h"
#include "jsonpos.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1024 * 1024)
#define DEFAULT_SOCKET_PATH "/run/fsnoted/fsnoted.sock"
#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
/* a byte count that fits in size_t on every target, 32-bit included */
#define SIZE_CAP(x) ((uint64_t)SIZE_MAX < (x) ? (uint64_t)SIZE_MAX : (x))
/* getgrnam_r() buffers grow up to this, for groups with many members */
#define GROUP_BUF_MAX (1024 * 1024)
/* entries of a list of paths ("journal_exclude") */
#define CONFIG_PATHS_MAX 256

enum key_kind {
	KEY_U32,
	KEY_SIZE,
	KEY_BACKEND,
	KEY_LOG_LEVEL,
	KEY_SOCKET,
	KEY_GROUP,
	KEY_BOOL,
	KEY_DIR,
	KEY_PATHS,
};

struct key {
	const char *name;
	enum key_kind kind;
	size_t offset;          /* of the field in struct config */
	uint64_t min, max;      /* numeric kinds only, inclusive */
};

#define NUM(n, k, field, lo, hi) { n, k, offsetof(struct config, field), lo, hi }

/* The one list of keys; fsnoted.conf(5) documents the same ranges. */
static const struct key keys[] = {
	NUM("pool_max_events", KEY_SIZE, pool_max_events, 1024, 64 * MiB),
	NUM("pool_max_bytes", KEY_SIZE, pool_max_bytes, 1 * MiB, SIZE_CAP(64 * GiB)),
	NUM("history_events", KEY_SIZE, history_events, 0, 64 * MiB),
	NUM("coalesce_ms", KEY_U32, coalesce_ms, 0, 60000),
	NUM("resume_linger_ms", KEY_U32, resume_linger_ms, 0, 3600000),
	NUM("ring_default_depth", KEY_U32, ring_default_depth, 4, 16 * MiB),
	NUM("ring_max_depth", KEY_U32, ring_max_depth, 4, 16 * MiB),
	NUM("latency_ms", KEY_U32, latency_ms, 0, 60000),
	NUM("batch", KEY_U32, batch, 1, 1 * MiB),
	NUM("max_connections_per_uid", KEY_U32, max_connections_per_uid, 1, 1 * MiB),
	NUM("max_subscriptions_per_uid", KEY_U32, max_subscriptions_per_uid, 1, 1 * MiB),
	NUM("max_watches_per_uid", KEY_U32, max_watches_per_uid, 0, 16 * MiB),
	NUM("max_queued_bytes_per_uid", KEY_SIZE, max_queued_bytes_per_uid, 64 * KiB,
	    SIZE_CAP(64 * GiB)),
	NUM("handshake_timeout_ms", KEY_U32, handshake_timeout_ms, 100, 60000),
	NUM("max_connections", KEY_U32, max_connections, 1, 1 * MiB),
	{ "privileged_group", KEY_GROUP, offsetof(struct config, privileged_group), 0, 0 },
	NUM("access_cache_entries", KEY_SIZE, access_cache_entries, 16, 16 * MiB),
	{ "backend", KEY_BACKEND, offsetof(struct config, backend), 0, 0 },
	NUM("path_cache_entries", KEY_SIZE, path_cache_entries, 64, 16 * MiB),
	{ "log_level", KEY_LOG_LEVEL, offsetof(struct config, log_level), 0, 0 },
	{ "socket", KEY_SOCKET, offsetof(struct config, socket_path), 0, 0 },
	{ "journal", KEY_BOOL, offsetof(struct config, journal), 0, 0 },
	{ "journal_dir", KEY_DIR, offsetof(struct config, journal_dir), 0, 0 },
	NUM("journal_max_bytes", KEY_SIZE, journal_max_bytes, 1 * MiB, SIZE_CAP(1024 * GiB)),
	NUM("journal_max_age", KEY_U32, journal_max_age_s, 0, 10 * 366 * 86400u),
	NUM("journal_sync_ms", KEY_U32, journal_sync_ms, 10, 60000),
	{ "journal_exclude", KEY_PATHS, offsetof(struct config, journal_exclude), 0, 0 },
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static const char *const backend_names[] = {
	[CONFIG_BACKEND_AUTO] = "auto",
	[CONFIG_BACKEND_FANOTIFY] = "fanotify",
	[CONFIG_BACKEND_INOTIFY] = "inotify",
};

static const struct {
	const char *name;
	int level;
} log_levels[] = {
	{ "error", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "notice", LOG_NOTICE },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

int config_defaults(struct config *ret)
{
	char *sock = strdup(DEFAULT_SOCKET_PATH);
	if (!sock)
		return -ENOMEM;
	*ret = (struct config){
		.pool_max_events = 262144,
		.pool_max_bytes = 64 * 1024 * 1024,
		.history_events = 65536,
		.coalesce_ms = 1000,
		.resume_linger_ms = 60000,
		.ring_default_depth = 65536,
		.ring_max_depth = 131072,
		.latency_ms = 10,
		.batch = 16,
		.max_connections_per_uid = 64,
		.max_subscriptions_per_uid = 256,
		.max_queued_bytes_per_uid = 16 * 1024 * 1024,
		.handshake_timeout_ms = 3000,
		.max_connections = 16384,
		.privileged_group = NULL,
		.privileged_gid = (gid_t)-1,
		.access_cache_entries = 4096,
		.backend = CONFIG_BACKEND_AUTO,
		.path_cache_entries = 65536,
		.log_level = LOG_NOTICE,
		.socket_path = sock,
		.journal = true,
		.journal_max_bytes = 256 * 1024 * 1024,
		.journal_max_age_s = 30 * 86400,
		.journal_sync_ms = 1000,
	};
	return 0;
}

void config_clear(struct config *c)
{
	if (!c)
		return;
	free(c->privileged_group);
	c->privileged_group = NULL;
	free(c->socket_path);
	c->socket_path = NULL;
	free(c->journal_dir);
	c->journal_dir = NULL;
	for (size_t i = 0; i < c->n_journal_exclude; i++)
		free(c->journal_exclude[i]);
	free(c->journal_exclude);
	c->journal_exclude = NULL;
	c->n_journal_exclude = 0;
}

int config_parse_log_level(const char *name)
{
	if (!name)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcmp(name, log_levels[i].name) == 0)
			return log_levels[i].level;
	return -EINVAL;
}

const char *config_backend_name(enum config_backend b)
{
	if ((unsigned)b < sizeof(backend_names) / sizeof(backend_names[0]))
		return backend_names[b];
	return "unknown";
}

/* --- error messages ---------------------------------------------------- */

struct loader {
	const char *path;
	const char *text;       /* the file, NUL-terminated; not owned */
	size_t len;
	char *err;
	size_t errlen;
};

static int fail(struct loader *l, struct jsonpos at, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes "PATH:LINE:COLUMN: message" (or "PATH: message" when @at.line is
 * 0) to the caller's buffer and returns @r. */
static int fail(struct loader *l, struct jsonpos at, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jsonpos_verror(l->err, l->errlen, l->path, at, fmt, ap);
	va_end(ap);
	return r;
}

/* No position: the message concerns the whole file. */
#define NOWHERE ((struct jsonpos){ 0, 0 })

/* Copies @s into @buf for a message: printable ASCII as is, anything else
 * as \xNN, cut with "..." so that a hostile key cannot flood the log. */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (o + 8 >= size) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
	}
	buf[o] = '\0';
	return buf;
}

/* --- where things are in the text -------------------------------------- */

/* One member of the top-level object, as met in the text. */
struct member {
	char *name;             /* decoded, owned */
	struct jsonpos key, value;
};

/* Reads the next top-level member after the cursor (which sits after '{'
 * or after the previous member's value).  Returns 1 with @ret filled, 0 at
 * the object's end, or -ENOMEM. */
static int next_member(struct jsonpos_cursor *c, struct member *ret)
{
	jsonpos_skip_space(c);
	if (c->p < c->end && *c->p == ',') {
		jsonpos_next(c);
		jsonpos_skip_space(c);
	}
	if (c->p >= c->end || *c->p != '"')
		return 0;
	struct jsonpos key = c->at;
	const char *start = c->p;
	jsonpos_skip_string(c);
	size_t raw_len = (size_t)(c->p - start);
	char *name;
	if (memchr(start, '\\', raw_len)) {
		/* let jansson undo the escapes, exactly as it did for the object */
		json_t *s = json_loadb(start, raw_len, JSON_DECODE_ANY, NULL);
		name = s && json_is_string(s) ? strdup(json_string_value(s)) : NULL;
		json_decref(s);
	} else {
		name = strndup(start + 1, raw_len - 2);
	}
	if (!name)
		return -ENOMEM;
	jsonpos_skip_space(c);
	jsonpos_next(c); /* ':' */
	jsonpos_skip_space(c);
	*ret = (struct member){ .name = name, .key = key, .value = c->at };
	jsonpos_skip_value(c);
	return 1;
}

/* --- values ------------------------------------------------------------ */

static int group_lookup(const char *name, gid_t *ret)
{
	long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
	size_t size = hint > 0 && hint < GROUP_BUF_MAX ? (size_t)hint : 1024;

	for (;;) {
		struct group g, *found = NULL;
		char *buf = malloc(size);
		if (!buf)
			return -ENOMEM;
		int r = getgrnam_r(name, &g, buf, size, &found);
		if (r == 0 && found) {
			*ret = found->gr_gid;
			free(buf);
			return 0;
		}
		free(buf);
		if (r == ERANGE && size < GROUP_BUF_MAX) {
			size *= 2;
			continue;
		}
		/* "not found" comes back as 0 or as one of several errnos */
		if (r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM)
			return -ENOENT;
		return -r;
	}
}

static int set_value(struct loader *l, struct config *c, const struct key *k, json_t *v,
		     struct jsonpos at)
{
	char *field = (char *)c + k->offset;
	char shown[96];

	switch (k->kind) {
	case KEY_U32:
	case KEY_SIZE: {
		json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
		if (!json_is_integer(v) || n < 0 || (uint64_t)n < k->min || (uint64_t)n > k->max)
			return fail(l, at, -EINVAL,
				    "\"%s\" must be an integer from %llu to %llu", k->name,
				    (unsigned long long)k->min, (unsigned long long)k->max);
		if (k->kind == KEY_U32)
			*(uint32_t *)(void *)field = (uint32_t)n;
		else
			*(size_t *)(void *)field = (size_t)n;
		return 0;
	}
	case KEY_BACKEND:
		for (size_t i = 0; json_is_string(v) && i < sizeof(backend_names) / sizeof(backend_names[0]);
		     i++) {
			if (strcmp(json_string_value(v), backend_names[i]) == 0) {
				c->backend = (enum config_backend)i;
				return 0;
			}
		}
		return fail(l, at, -EINVAL,
			    "\"backend\" must be \"auto\", \"fanotify\" or \"inotify\"");
	case KEY_LOG_LEVEL: {
		int lvl = json_is_string(v) ? config_parse_log_level(json_string_value(v)) : -EINVAL;
		if (lvl < 0)
			return fail(l, at, -EINVAL,
				    "\"log_level\" must be \"error\", \"warning\", \"notice\", "
				    "\"info\" or \"debug\"");
		c->log_level = lvl;
		return 0;
	}
	case KEY_SOCKET: {
		struct sockaddr_un sun;
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		if (!s || s[0] != '/' || strlen(s) >= sizeof(sun.sun_path))
			return fail(l, at, -EINVAL,
				    "\"socket\" must be an absolute path shorter than %zu bytes",
				    sizeof(sun.sun_path));
		char *copy = strdup(s);
		if (!copy)
			return fail(l, NOWHERE, -ENOMEM, "out of memory");
		free(c->socket_path);
		c->socket_path = copy;
		return 0;
	}
	case KEY_GROUP: {
		if (json_is_null(v)) {
			free(c->privileged_group);
			c->privileged_group = NULL;
			c->privileged_gid = (gid_t)-1;
			return 0;
		}
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		if (!s || !*s)
			return fail(l, at, -EINVAL,
				    "\"privileged_group\" must be a group name or null");
		gid_t gid = (gid_t)-1;
		int r = group_lookup(s, &gid);
		if (r == -ENOENT)
			return fail(l, at, -EINVAL, "unknown group \"%s\"",
				    printable(s, shown, sizeof(shown)));
		if (r < 0)
			return fail(l, at, r, "cannot look up group \"%s\": %s",
				    printable(s, shown, sizeof(shown)), strerror(-r));
		char *copy = strdup(s);
		if (!copy)
			return fail(l, NOWHERE, -ENOMEM, "out of memory");
		free(c->privileged_group);
		c->privileged_group = copy;
		c->privileged_gid = gid;
		return 0;
	}
	case KEY_BOOL:
		if (!json_is_boolean(v))
			return fail(l, at, -EINVAL, "\"%s\" must be true or false", k->name);
		*(bool *)(void *)field = json_is_true(v);
		return 0;
	case KEY_DIR: {
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		if (!s || s[0] != '/' || strlen(s) >= PATH_MAX)
			return fail(l, at, -EINVAL,
				    "\"%s\" must be an absolute path shorter than %d bytes", k->name,
				    PATH_MAX);
		char *copy = strdup(s);
		if (!copy)
			return fail(l, NOWHERE, -ENOMEM, "out of memory");
		free(*(char **)(void *)field);
		*(char **)(void *)field = copy;
		return 0;
	}
	case KEY_PATHS: {
		size_t n = json_is_array(v) ? json_array_size(v) : 0;
		if (!json_is_array(v) || n > CONFIG_PATHS_MAX)
			return fail(l, at, -EINVAL,
				    "\"%s\" must be an array of at most %d absolute paths", k->name,
				    CONFIG_PATHS_MAX);
		char **list = calloc(n + 1, sizeof(*list));
		if (!list)
			return fail(l, NOWHERE, -ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			json_t *e = json_array_get(v, i);
			const char *s = json_is_string(e) ? json_string_value(e) : NULL;
			if (!s || s[0] != '/' || strlen(s) >= PATH_MAX || (list[i] = strdup(s)) == NULL) {
				for (size_t k2 = 0; k2 < i; k2++)
					free(list[k2]);
				free(list);
				if (s && s[0] == '/' && strlen(s) < PATH_MAX)
					return fail(l, NOWHERE, -ENOMEM, "out of memory");
				return fail(l, at, -EINVAL,
					    "\"%s\" element %zu must be an absolute path shorter than %d bytes",
					    k->name, i, PATH_MAX);
			}
		}
		for (size_t i = 0; i < c->n_journal_exclude; i++)
			free(c->journal_exclude[i]);
		free(c->journal_exclude);
		c->journal_exclude = list;
		c->n_journal_exclude = n;
		return 0;
	}
	}
	return -EINVAL;
}

/* Checks every member of @root in the order of the text, then the rules
 * that tie two keys together. */
static int apply(struct loader *l, json_t *root, struct config *c)
{
	struct jsonpos_cursor cur;
	struct jsonpos seen[N_KEYS] = { { 0, 0 } };
	char shown[96];
	int r = 0;

	jsonpos_init(&cur, l->text, l->len);
	jsonpos_skip_space(&cur);
	jsonpos_next(&cur); /* '{' */
	for (;;) {
		struct member m;
		r = next_member(&cur, &m);
		if (r == 0)
			break;
		if (r < 0)
			return fail(l, NOWHERE, r, "out of memory");
		const struct key *k = NULL;
		for (size_t i = 0; i < N_KEYS; i++) {
			if (strcmp(keys[i].name, m.name) == 0) {
				k = &keys[i];
				seen[i] = m.value;
				break;
			}
		}
		json_t *v = json_object_get(root, m.name);
		if (!k)
			r = fail(l, m.key, -EINVAL, "unknown key \"%s\"",
				 printable(m.name, shown, sizeof(shown)));
		else if (!v) /* cannot happen: the scanner and jansson disagree */
			r = fail(l, m.key, -EINVAL, "cannot locate \"%s\"", k->name);
		else
			r = set_value(l, c, k, v, m.value);
		free(m.name);
		if (r < 0)
			return r;
	}

	/* a file that lowers ring_max_depth below the default depth, without
	 * naming a default, means that maximum as the default too */
	for (size_t j = 0; j < N_KEYS; j++)
		if (strcmp(keys[j].name, "ring_default_depth") == 0 && seen[j].line == 0 &&
		    c->ring_default_depth > c->ring_max_depth)
			c->ring_default_depth = c->ring_max_depth;

	/* pairs: point at whichever of the two the file set, the later one
	 * if it set both (that is where the reader's eye is) */
	struct {
		const char *small, *big;
		uint64_t a, b;
	} pairs[] = {
		{ "ring_default_depth", "ring_max_depth", c->ring_default_depth, c->ring_max_depth },
		{ "history_events", "pool_max_events", c->history_events, c->pool_max_events },
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		if (pairs[i].a <= pairs[i].b)
			continue;
		struct jsonpos p1 = { 0, 0 }, p2 = { 0, 0 };
		for (size_t j = 0; j < N_KEYS; j++) {
			if (strcmp(keys[j].name, pairs[i].small) == 0)
				p1 = seen[j];
			if (strcmp(keys[j].name, pairs[i].big) == 0)
				p2 = seen[j];
		}
		struct jsonpos at = p1;
		if (p2.line > p1.line || (p2.line == p1.line && p2.col > p1.col))
			at = p2;
		return fail(l, at, -EINVAL, "\"%s\" (%llu) must not exceed \"%s\" (%llu)",
			    pairs[i].small, (unsigned long long)pairs[i].a, pairs[i].big,
			    (unsigned long long)pairs[i].b);
	}
	return 0;
}

/* --- the file ---------------------------------------------------------- */

/* Reads at most CONFIG_FILE_MAX bytes of @fd into a NUL-terminated buffer;
 * a file that is (or grows) larger is refused rather than cut. */
static int read_bounded(struct loader *l, int fd, char **ret, size_t *ret_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int r = -errno;
		return fail(l, NOWHERE, r, "cannot stat: %s", strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return fail(l, NOWHERE, -EINVAL, "not a regular file");
	if (st.st_size > CONFIG_FILE_MAX)
		return fail(l, NOWHERE, -EFBIG, "larger than %d bytes", CONFIG_FILE_MAX);
	char *buf = malloc(CONFIG_FILE_MAX + 2);
	if (!buf)
		return fail(l, NOWHERE, -ENOMEM, "out of memory");
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			free(buf);
			return fail(l, NOWHERE, r, "cannot read: %s", strerror(-r));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CONFIG_FILE_MAX) {
			free(buf);
			return fail(l, NOWHERE, -EFBIG, "larger than %d bytes", CONFIG_FILE_MAX);
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int config_load(const char *path, bool missing_ok, struct config *ret, char *err, size_t errlen)
{
	struct loader l = { .path = path, .err = err, .errlen = errlen };
	struct config c;
	char *text = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	int r;

	if (err && errlen)
		err[0] = '\0';
	r = config_defaults(&c);
	if (r < 0)
		return fail(&l, NOWHERE, r, "out of memory");

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && missing_ok) {
			*ret = c;
			return 0;
		}
		fail(&l, NOWHERE, r, "cannot open: %s", strerror(-r));
		goto out;
	}
	r = read_bounded(&l, fd, &text, &l.len);
	close(fd);
	if (r < 0)
		goto out;
	l.text = text;

	root = json_loadb(text, l.len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		r = fail(&l, jsonpos_from_jansson(jerr.line, jerr.column), -EINVAL, "%s", jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		/* jansson takes an array as well; say where it starts */
		struct jsonpos_cursor cur;
		jsonpos_init(&cur, text, l.len);
		jsonpos_skip_space(&cur);
		r = fail(&l, cur.at, -EINVAL, "the top level must be an object");
		goto out;
	}
	r = apply(&l, root, &c);
	if (r < 0)
		goto out;

	*ret = c;
	c = (struct config){ .socket_path = NULL };
	r = 0;
out:
	json_decref(root);
	free(text);
	config_clear(&c);
	return r;
}
