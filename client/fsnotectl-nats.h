/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-nats.h - "fsnotectl watch --nats URL": the records
 * fsnote-relay published to NATS JetStream, read back on any machine.
 *
 * fsnotectl.c owns the command line and the printer; this module owns the
 * NATS options, the consumer and the conversion of each message back into
 * an event, which it hands to the printer so that a remote watch prints
 * exactly what a local one does.  Built without libnats, the options are
 * still recognised and the watch says that support is missing.
 */
#ifndef FSNOTECTL_NATS_H
#define FSNOTECTL_NATS_H

#include <stdbool.h>
#include <stdint.h>
#include <getopt.h>

#include "fsnote.h"

/* getopt codes of the options below (outside any character's range) */
enum {
	NATS_OPT_URL = 0x1000,
	NATS_OPT_HOST,
	NATS_OPT_AT,
	NATS_OPT_STREAM,
	NATS_OPT_CREDS,
	NATS_OPT_USER,
	NATS_OPT_PASSWORD,
	NATS_OPT_TLS_CA,
	NATS_OPT_TLS_CERT,
	NATS_OPT_TLS_KEY,
	NATS_OPT_TLS,
	NATS_OPT_LAST = NATS_OPT_TLS,
};

/* Entries for fsnotectl watch's option table. */
#define NATS_WATCH_OPTIONS                                                  \
	{ "nats", required_argument, NULL, NATS_OPT_URL },                  \
	{ "host", required_argument, NULL, NATS_OPT_HOST },                 \
	{ "stream", required_argument, NULL, NATS_OPT_STREAM },             \
	{ "creds", required_argument, NULL, NATS_OPT_CREDS },               \
	{ "user", required_argument, NULL, NATS_OPT_USER },                 \
	{ "password", required_argument, NULL, NATS_OPT_PASSWORD },         \
	{ "tls-ca", required_argument, NULL, NATS_OPT_TLS_CA },             \
	{ "tlsca", required_argument, NULL, NATS_OPT_TLS_CA },              \
	{ "tls-cert", required_argument, NULL, NATS_OPT_TLS_CERT },         \
	{ "tlscert", required_argument, NULL, NATS_OPT_TLS_CERT },          \
	{ "tls-key", required_argument, NULL, NATS_OPT_TLS_KEY },           \
	{ "tlskey", required_argument, NULL, NATS_OPT_TLS_KEY },            \
	{ "tls", no_argument, NULL, NATS_OPT_TLS }

/* Every string is borrowed from argv. */
struct nats_watch_args {
	bool used;              /* any option above was given */
	const char *url, *host, *at, *stream;
	const char *creds, *user, *password;
	const char *tls_ca, *tls_cert, *tls_key;
	bool tls;
};

/* What a remote watch shares with a local one (parsed by fsnotectl.c). */
struct nats_watch_common {
	bool json, quiet;
	bool have_since;
	uint64_t since;         /* a stream sequence: start after it */
	uint64_t mask;          /* 0: every type */
	uint64_t count;         /* 0: unlimited */
	int64_t timeout_ns;     /* <0: none */
};

/* Records option @c (one of NATS_OPT_*).  Never fails. */
void nats_watch_option(struct nats_watch_args *a, int c, const char *arg);

/* Usage lines for "fsnotectl watch --help". */
void nats_watch_help(void);

/* Runs the remote watch, handing each event to @print (whose nonzero
 * return ends the watch with status 1); @parse_time turns --at's TIME into
 * ns since the epoch.  Returns the exit status: 0, 1 (one line already on
 * standard error) or 2 (--timeout). */
int nats_watch(const struct nats_watch_args *a, const struct nats_watch_common *w,
	       int (*print)(void *ctx, const fsnote_event *e), void *ctx,
	       int (*parse_time)(const char *s, int64_t *ret_ns));

#endif
