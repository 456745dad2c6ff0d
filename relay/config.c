/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c - reading and checking fsnote-relay's configuration file.
 *
 * The file is bounded (RELAY_CONFIG_MAX) and parsed by jansson with
 * duplicate keys refused; its members are then checked in file order
 * against one table per object, so the error reported is the first one in
 * the file.  jansson keeps no positions for the values it built, so a small
 * scanner walks the (already valid) text to find the line and column of
 * the key named in an error, with the cursor and the message line
 * daemon/config.c uses for fsnoted.conf (protocol/jsonpos.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsnote.h"
#include "jsonpos.h"

#define RELAY_CONFIG_MAX (256 * 1024)

struct loader {
	const char *path;
	const char *text;
	size_t len;
	char *err;
	size_t errlen;
};

/* --- where a key is ------------------------------------------------------------ */

/* Finds the member named by @path ("stream.replicas", "paths[2]") in the
 * value at @c.  On success @c is at the member's key (or element). */
static bool cur_find(struct jsonpos_cursor *c, const char *path)
{
	jsonpos_skip_space(c);
	if (!*path)
		return true;
	if (*path == '[') {
		char *end;
		unsigned long k = strtoul(path + 1, &end, 10);
		if (*end != ']' || jsonpos_peek(c) != '[')
			return false;
		jsonpos_next(c);
		for (unsigned long j = 0;; j++) {
			jsonpos_skip_space(c);
			if (jsonpos_peek(c) == ']' || !jsonpos_peek(c))
				return false;
			if (j == k)
				return cur_find(c, end + 1);
			jsonpos_skip_value(c);
			jsonpos_skip_space(c);
			if (jsonpos_peek(c) == ',')
				jsonpos_next(c);
		}
	}
	if (*path == '.')
		path++;
	size_t seg = strcspn(path, ".[");
	if (jsonpos_peek(c) != '{')
		return false;
	jsonpos_next(c);
	for (;;) {
		jsonpos_skip_space(c);
		if (jsonpos_peek(c) != '"')
			return false;
		struct jsonpos_cursor key = *c;
		jsonpos_skip_string(c);
		/* the raw name, between the quotes */
		const char *name = key.p + 1;
		size_t len = (size_t)(c->p - name) - 1;
		jsonpos_skip_space(c);
		jsonpos_next(c); /* ':' */
		if (len == seg && memcmp(name, path, seg) == 0) {
			if (!path[seg]) {
				*c = key;
				return true;
			}
			return cur_find(c, path + seg);
		}
		jsonpos_skip_value(c);
		jsonpos_skip_space(c);
		if (jsonpos_peek(c) != ',')
			return false;
		jsonpos_next(c);
	}
}

static int fail(struct loader *l, const char *key, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct loader *l, const char *key, int r, const char *fmt, ...)
{
	struct jsonpos_cursor c;
	struct jsonpos at = { 0, 0 };
	va_list ap;

	if (key && l->text) {
		jsonpos_init(&c, l->text, l->len);
		if (cur_find(&c, key))
			at = c.at;
	}
	va_start(ap, fmt);
	jsonpos_verror(l->err, l->errlen, l->path, at, fmt, ap);
	va_end(ap);
	return r;
}

/* --- values -------------------------------------------------------------------- */

bool relay_host_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > RELAY_HOST_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

static int get_string(struct loader *l, const char *key, json_t *v, char **field)
{
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 4096 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return fail(l, key, -EINVAL, "'%s' must be a non-empty string", key);
	char *s = strdup(json_string_value(v));
	if (!s)
		return fail(l, NULL, -ENOMEM, "out of memory");
	free(*field);
	*field = s;
	return 0;
}

static int get_u64(struct loader *l, const char *key, json_t *v, uint64_t min, uint64_t max,
		   uint64_t *ret)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
		return fail(l, key, -EINVAL, "'%s' must be an integer from %llu to %llu", key,
			    (unsigned long long)min, (unsigned long long)max);
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_u32(struct loader *l, const char *key, json_t *v, uint32_t min, uint32_t max,
		   uint32_t *ret)
{
	uint64_t x;
	int r = get_u64(l, key, v, min, max, &x);
	if (r == 0)
		*ret = (uint32_t)x;
	return r;
}

static int get_bool(struct loader *l, const char *key, json_t *v, bool *ret)
{
	if (!json_is_boolean(v))
		return fail(l, key, -EINVAL, "'%s' must be true or false", key);
	*ret = json_is_true(v);
	return 0;
}

/* An array of 1..@max non-empty strings; @abs: each an absolute path. */
static int get_strings(struct loader *l, const char *key, json_t *v, size_t max, bool abs,
		       char ***field, size_t *n_field)
{
	char k[64];
	size_t i;
	json_t *x;

	if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > max)
		return fail(l, key, -EINVAL, "'%s' must be an array of 1 to %zu strings", key, max);
	char **arr = calloc(json_array_size(v), sizeof(*arr));
	if (!arr)
		return fail(l, NULL, -ENOMEM, "out of memory");
	json_array_foreach(v, i, x) {
		snprintf(k, sizeof(k), "%s[%zu]", key, i);
		int r = get_string(l, k, x, &arr[i]);
		if (r == 0 && abs && arr[i][0] != '/')
			r = fail(l, k, -EINVAL, "'%s' must be an absolute path", k);
		if (r < 0) {
			for (size_t j = 0; j <= i; j++)
				free(arr[j]);
			free(arr);
			return r;
		}
	}
	for (size_t j = 0; j < *n_field; j++)
		free((*field)[j]);
	free(*field);
	*field = arr;
	*n_field = json_array_size(v);
	return 0;
}

/* --- the three objects --------------------------------------------------------- */

static int apply_tls(struct loader *l, json_t *obj, struct relay_config *c)
{
	const char *k;
	json_t *v;
	char key[64];

	if (!json_is_object(obj))
		return fail(l, "nats.tls", -EINVAL, "'nats.tls' must be an object");
	json_object_foreach(obj, k, v) {
		int r;
		snprintf(key, sizeof(key), "nats.tls.%s", k);
		if (strcmp(k, "ca") == 0)
			r = get_string(l, key, v, &c->tls_ca);
		else if (strcmp(k, "cert") == 0)
			r = get_string(l, key, v, &c->tls_cert);
		else if (strcmp(k, "key") == 0)
			r = get_string(l, key, v, &c->tls_key);
		else if (strcmp(k, "required") == 0)
			r = get_bool(l, key, v, &c->tls);
		else
			r = fail(l, key, -EINVAL, "unknown key '%s' (known: ca, cert, key, required)", key);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_nats(struct loader *l, json_t *obj, struct relay_config *c)
{
	const char *k;
	json_t *v;
	char key[64];

	if (!json_is_object(obj))
		return fail(l, "nats", -EINVAL, "'nats' must be an object");
	json_object_foreach(obj, k, v) {
		int r;
		snprintf(key, sizeof(key), "nats.%s", k);
		if (strcmp(k, "url") == 0)
			r = get_string(l, key, v, &c->url);
		else if (strcmp(k, "creds") == 0)
			r = get_string(l, key, v, &c->creds);
		else if (strcmp(k, "user") == 0)
			r = get_string(l, key, v, &c->user);
		else if (strcmp(k, "password") == 0)
			r = get_string(l, key, v, &c->password);
		else if (strcmp(k, "token") == 0)
			r = get_string(l, key, v, &c->token);
		else if (strcmp(k, "tls") == 0)
			r = apply_tls(l, v, c);
		else
			r = fail(l, key, -EINVAL,
				 "unknown key '%s' (known: url, creds, user, password, token, tls)", key);
		if (r < 0)
			return r;
	}
	if (c->creds && (c->user || c->token))
		return fail(l, "nats.creds", -EINVAL, "'nats.creds' and 'nats.user' or 'nats.token' do not go together");
	if (c->password && !c->user)
		return fail(l, "nats.password", -EINVAL, "'nats.password' needs 'nats.user'");
	if (!!c->tls_cert != !!c->tls_key)
		return fail(l, "nats.tls", -EINVAL, "'nats.tls' needs both 'cert' and 'key', or neither");
	return 0;
}

static int apply_stream(struct loader *l, json_t *obj, struct relay_config *c)
{
	const char *k;
	json_t *v;
	char key[64];

	if (!json_is_object(obj))
		return fail(l, "stream", -EINVAL, "'stream' must be an object");
	json_object_foreach(obj, k, v) {
		int r;
		snprintf(key, sizeof(key), "stream.%s", k);
		if (strcmp(k, "name") == 0) {
			r = get_string(l, key, v, &c->stream);
			/* a stream name is one subject token: no dots, wildcards or spaces */
			if (r == 0 && (strpbrk(c->stream, ".*> \t\r\n/\\") || strlen(c->stream) > 255))
				r = fail(l, key, -EINVAL, "'%s' must not contain '.', '*', '>', '/', '\\' or white space", key);
		} else if (strcmp(k, "subjects") == 0) {
			r = get_strings(l, key, v, 16, false, &c->subjects, &c->n_subjects);
		} else if (strcmp(k, "retention") == 0) {
			const char *s = json_string_value(v);
			r = 0;
			if (s && strcmp(s, "limits") == 0)
				c->retention = RELAY_RETAIN_LIMITS;
			else if (s && strcmp(s, "interest") == 0)
				c->retention = RELAY_RETAIN_INTEREST;
			else if (s && strcmp(s, "workqueue") == 0)
				c->retention = RELAY_RETAIN_WORKQUEUE;
			else
				r = fail(l, key, -EINVAL, "'%s' must be \"limits\", \"interest\" or \"workqueue\"", key);
		} else if (strcmp(k, "storage") == 0) {
			const char *s = json_string_value(v);
			r = 0;
			if (s && strcmp(s, "file") == 0)
				c->storage = RELAY_STORE_FILE;
			else if (s && strcmp(s, "memory") == 0)
				c->storage = RELAY_STORE_MEMORY;
			else
				r = fail(l, key, -EINVAL, "'%s' must be \"file\" or \"memory\"", key);
		} else if (strcmp(k, "replicas") == 0) {
			r = get_u32(l, key, v, 1, 5, &c->replicas);
		} else if (strcmp(k, "max_age_s") == 0) {
			r = get_u64(l, key, v, 0, UINT64_C(1) << 32, &c->max_age_s);
		} else if (strcmp(k, "max_bytes") == 0) {
			r = get_u64(l, key, v, 0, INT64_MAX, &c->max_bytes);
		} else if (strcmp(k, "max_msgs") == 0) {
			r = get_u64(l, key, v, 0, INT64_MAX, &c->max_msgs);
		} else if (strcmp(k, "duplicate_window_s") == 0) {
			r = get_u32(l, key, v, 1, 7 * 86400, &c->duplicate_window_s);
		} else if (strcmp(k, "create") == 0) {
			r = get_bool(l, key, v, &c->create_stream);
		} else {
			r = fail(l, key, -EINVAL,
				 "unknown key '%s' (known: name, subjects, retention, storage, replicas, "
				 "max_age_s, max_bytes, max_msgs, duplicate_window_s, create)",
				 key);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply(struct loader *l, json_t *root, struct relay_config *c)
{
	const char *k;
	json_t *v;

	if (!json_is_object(root))
		return fail(l, "", -EINVAL, "the configuration must be a JSON object");
	json_object_foreach(root, k, v) {
		int r;
		if (strcmp(k, "host") == 0) {
			r = get_string(l, k, v, &c->host);
			if (r == 0 && !relay_host_valid(c->host))
				r = fail(l, k, -EINVAL, "'host' must be 1 to %d letters, digits, '-' or '_' "
					 "(it is one token of the subject)", RELAY_HOST_MAX);
		} else if (strcmp(k, "socket") == 0) {
			r = get_string(l, k, v, &c->socket);
		} else if (strcmp(k, "paths") == 0) {
			r = get_strings(l, k, v, 256, true, &c->paths, &c->n_paths);
		} else if (strcmp(k, "events") == 0) {
			size_t i;
			json_t *x;
			char key[64];
			r = 0;
			if (!json_is_array(v) || json_array_size(v) == 0)
				r = fail(l, k, -EINVAL, "'events' must be a non-empty array of event type names");
			c->mask = 0;
			json_array_foreach(v, i, x) {
				uint32_t t = json_is_string(x) ? fsnote_type_from_name(json_string_value(x)) : 0;
				snprintf(key, sizeof(key), "events[%zu]", i);
				if (r == 0 && !t)
					r = fail(l, key, -EINVAL, "'%s' is not an event type (see fsnotectl(1))", key);
				if (t)
					c->mask |= FSNOTE_MASK(t);
			}
		} else if (strcmp(k, "window") == 0) {
			r = get_u32(l, k, v, 1, 65536, &c->window);
		} else if (strcmp(k, "ack_timeout_ms") == 0) {
			r = get_u32(l, k, v, 100, 600000, &c->ack_timeout_ms);
		} else if (strcmp(k, "latency_ms") == 0) {
			r = get_u32(l, k, v, 0, 60000, &c->latency_ms);
			c->have_latency = r == 0;
		} else if (strcmp(k, "ring_depth") == 0) {
			r = get_u32(l, k, v, 4, 16 * 1024 * 1024, &c->ring_depth);
		} else if (strcmp(k, "nats") == 0) {
			r = apply_nats(l, v, c);
		} else if (strcmp(k, "stream") == 0) {
			r = apply_stream(l, v, c);
		} else {
			r = fail(l, k, -EINVAL,
				 "unknown key '%s' (known: host, socket, paths, events, window, "
				 "ack_timeout_ms, latency_ms, ring_depth, nats, stream)",
				 k);
		}
		if (r < 0)
			return r;
	}
	if (!c->n_paths)
		return fail(l, NULL, -EINVAL, "'paths' is required: the directories to relay");
	return 0;
}

/* --- loading ------------------------------------------------------------------- */

static int defaults(struct relay_config *c)
{
	char host[256] = "";

	*c = (struct relay_config){
		.window = 256,
		.ack_timeout_ms = 5000,
		.replicas = 1,
		.duplicate_window_s = 120,
		.create_stream = true,
		.retention = RELAY_RETAIN_LIMITS,
		.storage = RELAY_STORE_FILE,
	};
	/* the short name: a dot would split the subject token */
	if (gethostname(host, sizeof(host) - 1) == 0)
		host[strcspn(host, ".")] = '\0';
	c->host = strdup(relay_host_valid(host) ? host : "localhost");
	c->stream = strdup("FSNOTE");
	c->subjects = calloc(1, sizeof(char *));
	if (c->subjects)
		c->subjects[0] = strdup("fsnote.>");
	c->n_subjects = 1;
	if (!c->host || !c->stream || !c->subjects || !c->subjects[0])
		return -ENOMEM;
	return 0;
}

void relay_config_clear(struct relay_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_paths; i++)
		free(c->paths[i]);
	free(c->paths);
	for (size_t i = 0; i < c->n_subjects; i++)
		free(c->subjects ? c->subjects[i] : NULL);
	free(c->subjects);
	free(c->host);
	free(c->socket);
	free(c->url);
	free(c->creds);
	free(c->user);
	free(c->password);
	free(c->token);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->stream);
	*c = (struct relay_config){ 0 };
}

int relay_config_load(const char *path, struct relay_config *ret, char *err, size_t errlen)
{
	struct loader l = { .path = path, .err = err, .errlen = errlen };
	struct relay_config c;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	json_t *root = NULL;
	int r;

	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(&l, NULL, -errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(&l, NULL, -EINVAL, "not a regular file");
	}
	buf = malloc(RELAY_CONFIG_MAX + 1);
	if (!buf) {
		close(fd);
		return fail(&l, NULL, -ENOMEM, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, RELAY_CONFIG_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = fail(&l, NULL, -errno, "cannot read: %s", strerror(errno));
			close(fd);
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > RELAY_CONFIG_MAX) {
			close(fd);
			free(buf);
			return fail(&l, NULL, -EFBIG, "larger than %d bytes", RELAY_CONFIG_MAX);
		}
	}
	close(fd);
	buf[len] = '\0';

	json_error_t jerr;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		jsonpos_error(err, errlen, path, jsonpos_from_jansson(jerr.line, jerr.column), "%s", jerr.text);
		free(buf);
		return -EINVAL;
	}
	l.text = buf;
	l.len = len;
	r = defaults(&c);
	if (r < 0)
		fail(&l, NULL, r, "out of memory");
	else
		r = apply(&l, root, &c);
	json_decref(root);
	free(buf);
	if (r < 0) {
		relay_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}
