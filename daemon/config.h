/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.h - fsnoted's configuration: defaults, the JSON file, validation.
 *
 * A struct config is a plain value: config_load() fills a fresh one from
 * defaults and the file, and only a fully valid file produces one, so a
 * reload that fails leaves the running configuration untouched.
 */
#ifndef FSNOTED_CONFIG_H
#define FSNOTED_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_PATH "/etc/fsnoted/fsnoted.json"

enum config_backend {
	CONFIG_BACKEND_AUTO = 0,  /* fanotify if it works, else inotify */
	CONFIG_BACKEND_FANOTIFY,
	CONFIG_BACKEND_INOTIFY,
};

struct config {
	/* pool */
	size_t pool_max_events;         /* "pool_max_events", default 262144 */
	size_t pool_max_bytes;          /* "pool_max_bytes", default 64 MiB */
	size_t history_events;          /* "history_events", default 65536 */
	uint32_t coalesce_ms;           /* "coalesce_ms", default 1000; 0 disables */
	uint32_t resume_linger_ms;      /* "resume_linger_ms", default 60000; 0 disables */
	/* rings and wake-ups (per subscription, overridable by the client) */
	uint32_t ring_default_depth;    /* "ring_default_depth", default 65536 */
	uint32_t ring_max_depth;        /* "ring_max_depth", default 131072 */
	uint32_t latency_ms;            /* "latency_ms", default 10 */
	uint32_t batch;                 /* "batch", default 16 */
	/* per uid */
	uint32_t max_connections_per_uid;   /* "max_connections_per_uid", default 64 */
	uint32_t max_subscriptions_per_uid; /* "max_subscriptions_per_uid", default 256 */
	uint32_t max_watches_per_uid;       /* "max_watches_per_uid", default 0: a quarter
	                                     * of fs.inotify.max_user_watches */
	size_t max_queued_bytes_per_uid;    /* "max_queued_bytes_per_uid", default 16 MiB */
	uint32_t handshake_timeout_ms;      /* "handshake_timeout_ms", default 3000 */
	uint32_t max_connections;           /* "max_connections", default 16384 (all uids) */
	/* access */
	char *privileged_group;         /* "privileged_group", default NULL (root only) */
	gid_t privileged_gid;           /* resolved at load; (gid_t)-1 if none */
	size_t access_cache_entries;    /* "access_cache_entries", default 4096 */
	/* sources */
	enum config_backend backend;    /* "backend": "auto" | "fanotify" | "inotify" */
	size_t path_cache_entries;      /* "path_cache_entries", default 65536 */
	/* daemon */
	int log_level;                  /* "log_level": "error" ... "debug", LOG_* values */
	char *socket_path;              /* "socket", default /run/fsnoted/fsnoted.sock */
	/* the persistent journal (journal.h) */
	bool journal;                   /* "journal", default true */
	char *journal_dir;              /* "journal_dir", default NULL: $STATE_DIRECTORY or
	                                 * /var/lib/fsnoted */
	size_t journal_max_bytes;       /* "journal_max_bytes", default 256 MiB */
	uint32_t journal_max_age_s;     /* "journal_max_age", seconds, default 30 days; 0: none */
	uint32_t journal_sync_ms;       /* "journal_sync_ms", default 1000 */
	char **journal_exclude;         /* "journal_exclude": absolute paths never journaled */
	size_t n_journal_exclude;
};

/* Fills @ret with the built-in defaults.  Returns 0 or -ENOMEM. */
int config_defaults(struct config *ret);
/* Loads @path over the defaults.  Returns 0, or -errno with a one-line
 * message "FILE:LINE:COLUMN: what is wrong" in @err (size @errlen).
 * When @missing_ok and the file does not exist, returns the defaults.
 * @ret is written only on success. */
int config_load(const char *path, bool missing_ok, struct config *ret, char *err, size_t errlen);
/* Frees what @c owns (not @c itself); NULL-safe. */
void config_clear(struct config *c);
/* Parses a log level name ("error", "warning", "notice", "info", "debug").
 * Returns the LOG_* value or -EINVAL. */
int config_parse_log_level(const char *name);
const char *config_backend_name(enum config_backend b);

#endif
