/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * natsconn.c - libnats connection options from struct natsconn_opts.
 *
 * Reconnection is left to libnats (unbounded attempts, a short wait) so
 * that a broker outage is a pause, not an exit; whoever uses the
 * connection decides how long to wait for an answer.
 */
#include "natsconn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *natsconn_error(natsStatus s)
{
	natsStatus st;
	const char *text = nats_GetLastError(&st);

	return text && *text ? text : natsStatus_GetText(s);
}

int natsconn_options(const struct natsconn_opts *o, natsOptions **ret, char *err, size_t errlen)
{
	natsOptions *opts = NULL;
	natsStatus s;
	const char *what = "cannot set up the connection";

	if (o->creds && (o->user || o->token)) {
		snprintf(err, errlen, "a credentials file and a user or token do not go together");
		return -EINVAL;
	}
	if (!!o->tls_cert != !!o->tls_key) {
		snprintf(err, errlen, "a TLS client certificate needs its key, and the key its certificate");
		return -EINVAL;
	}
	if (o->password && !o->user) {
		snprintf(err, errlen, "a password needs a user");
		return -EINVAL;
	}
	/* natsOptions_SetURL() takes one URL; a list goes to SetServers() */
	char *list = strdup(o->url ? o->url : NATS_DEFAULT_URL), *save = NULL;
	const char *servers[32];
	int n = 0;
	if (!list) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (char *t = strtok_r(list, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (n == 32) {
			snprintf(err, errlen, "more than 32 server URLs");
			free(list);
			return -EINVAL;
		}
		servers[n++] = t;
	}
	if (!n) {
		snprintf(err, errlen, "no server URL");
		free(list);
		return -EINVAL;
	}
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, servers, n);
	free(list);
	if (s == NATS_OK && o->name)
		s = natsOptions_SetName(opts, o->name);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, o->reconnect_wait_ms > 0 ? o->reconnect_wait_ms : 250);
	/* a publish made while disconnected waits in this buffer, bounded */
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(opts, 8 * 1024 * 1024);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, 2000);
	if (s == NATS_OK && o->user)
		s = natsOptions_SetUserInfo(opts, o->user, o->password ? o->password : "");
	if (s == NATS_OK && o->token)
		s = natsOptions_SetToken(opts, o->token);
	if (s == NATS_OK && o->creds) {
		what = "cannot use the credentials file";
		s = natsOptions_SetUserCredentialsFromFiles(opts, o->creds, NULL);
	}
	if (s == NATS_OK && (o->tls || o->tls_ca || o->tls_cert)) {
		what = "cannot set up TLS";
		s = natsOptions_SetSecure(opts, true);
		if (s == NATS_OK && o->tls_ca) {
			what = "cannot load the TLS CA file";
			s = natsOptions_LoadCATrustedCertificates(opts, o->tls_ca);
		}
		if (s == NATS_OK && o->tls_cert) {
			what = "cannot load the TLS certificate or key";
			s = natsOptions_LoadCertificatesChain(opts, o->tls_cert, o->tls_key);
		}
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "%s: %s", what, natsconn_error(s));
		natsOptions_Destroy(opts);
		return -EINVAL;
	}
	*ret = opts;
	return 0;
}
