/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * natsconn.h - how fsnote-relay and "fsnotectl watch --nats" reach a NATS
 * server: server URLs, credentials and TLS, named as the nats CLI names
 * them, turned into libnats connection options in one place.
 */
#ifndef FSNOTE_RELAY_NATSCONN_H
#define FSNOTE_RELAY_NATSCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <nats/nats.h>

/* Every string is borrowed from the caller; NULL means unset. */
struct natsconn_opts {
	const char *url;        /* one URL or a comma-separated list */
	const char *creds;      /* a .creds file (JWT and NKey seed) */
	const char *user, *password;
	const char *token;
	const char *tls_ca;     /* CA bundle to verify the server with */
	const char *tls_cert, *tls_key; /* client certificate and its key */
	bool tls;               /* require TLS even without any file above */
	const char *name;       /* the connection's name, as the server shows it */
	int reconnect_wait_ms;
};

/* Builds libnats options for @o that reconnect for ever.  Returns 0 with
 * *@ret (the caller destroys it), or -EINVAL with the reason in @err. */
int natsconn_options(const struct natsconn_opts *o, natsOptions **ret, char *err, size_t errlen);

/* libnats' last error text for @s, for one-line messages. */
const char *natsconn_error(natsStatus s);

#endif
