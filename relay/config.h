/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.h - fsnote-relay's configuration file (fsnote-relay.conf(5)).
 *
 * One JSON object: what to watch, where to publish, the stream to publish
 * into.  Loading fills a private struct and hands it over only when every
 * key is valid; errors are one line "FILE:LINE:COLUMN: what is wrong", as
 * fsnoted.conf's are.  Every string is owned by the struct.
 */
#ifndef FSNOTE_RELAY_CONFIG_H
#define FSNOTE_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* like fsnoted.json: /etc whatever the prefix, where an administrator looks */
#define RELAY_DEFAULT_CONFIG "/etc/fsnoted/relay.json"
#define RELAY_HOST_MAX 64

enum relay_retention { RELAY_RETAIN_LIMITS, RELAY_RETAIN_INTEREST, RELAY_RETAIN_WORKQUEUE };
enum relay_storage { RELAY_STORE_FILE, RELAY_STORE_MEMORY };

struct relay_config {
	char *host;             /* subject token and message ID prefix */
	char *socket;           /* fsnoted's socket; NULL: libfsnote's default */
	char **paths;           /* absolute directories, n_paths >= 1 */
	size_t n_paths;
	uint64_t mask;          /* FSNOTE_MASK() set; 0: the daemon's default */
	uint32_t window;        /* publishes awaiting their acknowledgement, at most */
	uint32_t ack_timeout_ms;
	uint32_t ring_depth;    /* 0: the daemon's default */
	bool have_latency;      /* else the daemon's default batching window */
	uint32_t latency_ms;

	/* the NATS connection */
	char *url, *creds, *user, *password, *token;
	char *tls_ca, *tls_cert, *tls_key;
	bool tls;

	/* the stream, created when missing */
	char *stream;
	char **subjects;
	size_t n_subjects;
	enum relay_retention retention;
	enum relay_storage storage;
	uint32_t replicas;
	uint64_t max_age_s, max_bytes, max_msgs; /* 0: unlimited */
	uint32_t duplicate_window_s;
	bool create_stream;
};

/* Loads @path into *@ret (untouched on failure).  Returns 0, or -errno
 * with a one-line message in @err. */
int relay_config_load(const char *path, struct relay_config *ret, char *err, size_t errlen);
void relay_config_clear(struct relay_config *c);

/* Is @s usable as the host token of a subject ("fsnote.<host>.<type>")? */
bool relay_host_valid(const char *s);

#endif
