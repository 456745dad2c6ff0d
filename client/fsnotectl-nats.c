/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-nats.c - the remote watch: read fsnote-relay's messages from a
 * JetStream stream and print them as a local watch would (see
 * fsnotectl-nats.h).
 *
 * The consumer is an ephemeral ordered one: it exists only while this
 * runs, delivers in stream order, and libnats re-creates it at the right
 * sequence when a message is missed or the server changes, so that a
 * remote watch never skips or repeats silently.  The subject selects the
 * host (or every host) and, for a single event type, the type; a set of
 * types is filtered here.  Message bodies come from the network: each is
 * bounded and decoded by relay/record.c, then checked once more as a wire
 * record by fsnote_event_decode(); one that fails is reported on standard
 * error with its stream sequence and skipped.
 */
#include "fsnotectl-nats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void nats_watch_option(struct nats_watch_args *a, int c, const char *arg)
{
	a->used = true;
	switch (c) {
	case NATS_OPT_URL: a->url = arg; break;
	case NATS_OPT_HOST: a->host = arg; break;
	case NATS_OPT_AT: a->at = arg; break;
	case NATS_OPT_STREAM: a->stream = arg; break;
	case NATS_OPT_CREDS: a->creds = arg; break;
	case NATS_OPT_USER: a->user = arg; break;
	case NATS_OPT_PASSWORD: a->password = arg; break;
	case NATS_OPT_TLS_CA: a->tls_ca = arg; break;
	case NATS_OPT_TLS_CERT: a->tls_cert = arg; break;
	case NATS_OPT_TLS_KEY: a->tls_key = arg; break;
	case NATS_OPT_TLS: a->tls = true; break;
	}
}

void nats_watch_help(void)
{
	printf("\n"
	       "Remote: the records fsnote-relay publishes to NATS JetStream (no PATH):\n"
	       "      --nats URL        the NATS server(s), comma-separated\n"
	       "      --host HOST       only this host's records (default: every host)\n"
	       "      --since SEQ       start after stream sequence SEQ (0: the whole stream)\n"
	       "      --at TIME         start with the first record stored at or after TIME\n"
	       "      --stream NAME     the stream (default: the one holding fsnote.>)\n"
	       "      --creds FILE      NATS credentials file\n"
	       "      --user USER, --password PASS\n"
	       "      --tls-ca FILE, --tls-cert FILE, --tls-key FILE, --tls\n");
}

#ifdef HAVE_NATS

#include <nats/nats.h>

#include "natsconn.h"
#include "record.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool token_ok(const char *s)
{
	return *s && !strpbrk(s, ".*> \t\r\n");
}

int nats_watch(const struct nats_watch_args *a, const struct nats_watch_common *w,
	       int (*print)(void *ctx, const fsnote_event *e), void *ctx,
	       int (*parse_time)(const char *s, int64_t *ret_ns))
{
	struct natsconn_opts o = {
		.url = a->url, .creds = a->creds, .user = a->user, .password = a->password,
		.tls_ca = a->tls_ca, .tls_cert = a->tls_cert, .tls_key = a->tls_key, .tls = a->tls,
		.name = "fsnotectl",
	};
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	char err[512], subject[128];
	int64_t at_ns = 0;
	int ret = 1;
	natsStatus s;

	if (a->host && !token_ok(a->host)) {
		fprintf(stderr, "fsnotectl: invalid --host '%s': one subject token (no '.', '*', '>' or spaces)\n", a->host);
		return 1;
	}
	if (a->stream && !token_ok(a->stream)) {
		fprintf(stderr, "fsnotectl: invalid --stream '%s'\n", a->stream);
		return 1;
	}
	if (a->at && (parse_time(a->at, &at_ns) < 0 || at_ns < 0)) {
		fprintf(stderr, "fsnotectl: invalid time '%s': use ISO 8601, @EPOCH, now or -N(ms|s|min|h|d)\n", a->at);
		return 1;
	}
	if (a->at && w->have_since) {
		fprintf(stderr, "fsnotectl: --since and --at do not go together\n");
		return 1;
	}
	if (natsconn_options(&o, &opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "fsnotectl: %s\n", err);
		return 1;
	}
	/* one try: a watch that cannot connect says so instead of hanging */
	s = natsConnection_Connect(&nc, opts);
	if (s != NATS_OK) {
		fprintf(stderr, "fsnotectl: cannot connect to NATS at %s: %s\n", a->url, natsconn_error(s));
		goto out;
	}
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
		fprintf(stderr, "fsnotectl: cannot use JetStream: %s\n", natsconn_error(NATS_ERR));
		goto out;
	}

	/* a single type narrows the subject; a set is filtered below */
	const char *type = "";
	uint32_t only = 0;
	for (uint32_t t = 1; t <= FSNOTE_TYPE_MAX; t++)
		if (w->mask == FSNOTE_MASK(t))
			only = t;
	if (only)
		type = fsnote_type_name(only);
	snprintf(subject, sizeof(subject), "fsnote.%s.%s", a->host ? a->host : "*", only ? type : ">");

	jsSubOptions so;
	jsErrCode jerr = 0;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Stream = a->stream;
	if (w->have_since) {
		so.Config.DeliverPolicy = w->since ? js_DeliverByStartSequence : js_DeliverAll;
		so.Config.OptStartSeq = w->since + 1;
		if (!w->since)
			so.Config.OptStartSeq = 0;
	} else if (a->at) {
		so.Config.DeliverPolicy = js_DeliverByStartTime;
		so.Config.OptStartTime = at_ns;
	} else {
		so.Config.DeliverPolicy = js_DeliverNew;
	}
	/* a cluster that just lost a node answers again once it has elected
	 * new leaders: a few seconds, not an error to give up on at once */
	int64_t give_up = mono_ns() + (int64_t)20 * 1000000000;
	for (;;) {
		jerr = 0;
		s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
		if (s == NATS_OK || mono_ns() > give_up)
			break;
		if (s != NATS_TIMEOUT && jerr != JSClusterNotAvailErr && jerr != JSClusterNotLeaderErr &&
		    jerr != JSClusterNoPeersErr && jerr != JSInsufficientResourcesErr)
			break;
		nats_Sleep(250);
	}
	if (s != NATS_OK) {
		if (jerr)
			fprintf(stderr, "fsnotectl: cannot read %s from JetStream: %s (JetStream error %d)\n",
				subject, natsconn_error(s), (int)jerr);
		else
			fprintf(stderr, "fsnotectl: cannot read %s from JetStream: %s\n", subject,
				natsconn_error(s));
		goto out;
	}
	if (!w->quiet) {
		fputs("Watches established.\n", stderr);
		fflush(stderr);
	}

	int64_t deadline = w->timeout_ns >= 0 ? mono_ns() + w->timeout_ns : -1;
	uint64_t printed = 0;
	uint8_t *frame = malloc(RECORD_FRAME_MAX);
	if (!frame) {
		fprintf(stderr, "fsnotectl: out of memory\n");
		goto out;
	}
	for (;;) {
		int64_t wait_ms = 1000;
		if (deadline >= 0) {
			int64_t left = deadline - mono_ns();
			if (left <= 0) {
				ret = 2;
				break;
			}
			wait_ms = (left + 999999) / 1000000;
			if (wait_ms > 1000)
				wait_ms = 1000;
		}
		natsMsg *m = NULL;
		s = natsSubscription_NextMsg(&m, sub, wait_ms);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			fprintf(stderr, "fsnotectl: lost the JetStream subscription: %s\n", natsconn_error(s));
			break;
		}
		const char *why = NULL;
		size_t flen;
		fsnote_event *e = NULL;
		int r = record_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), frame, &flen,
				      NULL, &why);
		if (r == 0 && fsnote_event_decode(frame, flen, &e) < 0)
			why = "not an event record", r = -EBADMSG;
		if (r < 0) {
			fprintf(stderr, "fsnotectl: skipping message %" PRIu64 " on %s: %s\n",
				natsMsg_GetSequence(m), natsMsg_GetSubject(m), why ? why : strerror(-r));
			natsMsg_Destroy(m);
			continue;
		}
		natsMsg_Destroy(m);
		if (w->mask && !(w->mask & FSNOTE_MASK(fsnote_event_type(e)))) {
			fsnote_event_free(e);
			continue;
		}
		r = print(ctx, e);
		fsnote_event_free(e);
		if (r) {
			fprintf(stderr, "fsnotectl: cannot write to standard output\n");
			break;
		}
		if (w->count && ++printed >= w->count) {
			ret = 0;
			break;
		}
	}
	free(frame);
out:
	/* unsubscribe and close before anything is freed: destroying a
	 * subscription while the connection still delivers to it can leave
	 * libnats' reader waiting for a lock for ever */
	if (sub)
		natsSubscription_Unsubscribe(sub);
	if (nc)
		natsConnection_Close(nc);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	nats_Close();
	return ret;
}

#else

int nats_watch(const struct nats_watch_args *a, const struct nats_watch_common *w,
	       int (*print)(void *ctx, const fsnote_event *e), void *ctx,
	       int (*parse_time)(const char *s, int64_t *ret_ns))
{
	(void)a, (void)w, (void)print, (void)ctx, (void)parse_time;
	fprintf(stderr, "fsnotectl: this fsnotectl was built without NATS support (libnats)\n");
	return 1;
}

#endif
