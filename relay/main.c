/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c - fsnote-relay: publishes every record fsnoted hands it to a NATS
 * JetStream stream, one message per record.
 *
 * Guarantee: at least once, without gaps, and with JetStream's
 * de-duplication exactly once.  Each record becomes a message on
 * "fsnote.<host>.<type>" with the ID "<host>:<event ID>" (a dropped
 * record, whose event ID may repeat one already published, gets
 * "<host>:<event ID>:dropped:<time>"), so a record published twice is
 * stored once.  Records are published asynchronously into a window of at
 * most `window` messages; the relay waits for the server's acknowledgement
 * of the whole window before it counts the records as done, and only done
 * records advance the resume point.  Every message carries that resume
 * point in its Fsnote-Resume header.
 *
 * When the broker fails (an error or no acknowledgement in time), the
 * relay lets go of fsnoted at once, so that nothing piles up in its ring,
 * republishes the unacknowledged window in order once the broker answers
 * again, and then subscribes anew "since" the resume point: the later of
 * its own and the one in the last message the stream holds for this host.
 * A crash or SIGKILL resumes the same way from the stream alone.  What the
 * daemon can no longer replay arrives as a dropped record and is published
 * like any other, so a remote consumer learns of every loss.
 *
 * Threads: libnats runs its own and calls on_ack() from one of them for
 * every acknowledgement or failure.  The window (a ring of slots) is shared
 * with it under win_lock: on_ack() only marks slots and advances the head
 * and the resume point; the main thread alone fills slots and frees their
 * memory (when it reuses them), so a slot is never freed under a publish.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "config.h"
#include "fsnote.h"
#include "natsconn.h"
#include "record.h"

#define RESUME_HEADER "Fsnote-Resume"
#define SUBJECT_PREFIX "fsnote"

enum pump_result { PUMP_STOP, PUMP_BROKER, PUMP_DAEMON };

/* One published message; kept until acknowledged so that it can be
 * published again after a failure. */
struct slot {
	char *subject;
	char *body;
	size_t len;
	char msgid[RELAY_HOST_MAX + 64];
	uint64_t resume;        /* the resume point once this one is stored */
	int64_t sent_ns;        /* CLOCK_MONOTONIC of the last publish */
	bool acked;
};

struct relay {
	struct relay_config *cfg;
	natsConnection *nc;     /* owned; reconnects by itself */
	jsCtx *js;              /* owned */
	fsnote *h;              /* owned; NULL while fsnoted is let go */

	/* the window, a ring of cfg->window slots: [head, head + n) are
	 * published and not yet all acknowledged, oldest first */
	pthread_mutex_t win_lock;
	pthread_cond_t win_cond;  /* signalled when the head moves or a failure comes */
	struct slot *win;
	size_t head, n;
	bool failed;              /* a publish failed: republish the window */
	uint64_t resume;          /* newest event ID whose message is acknowledged */
	uint64_t published;       /* messages acknowledged, for STATUS= */

	uint64_t next_resume;     /* main thread: the resume point after the newest slot */
	bool ready;
};

static volatile sig_atomic_t stop;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("fsnote-relay: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Sleeps @ms unless asked to stop. */
static void nap(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	if (!stop)
		nanosleep(&ts, NULL);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* libnats' thread: one acknowledgement (@pa) or failure (@pae) of @msg. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct relay *r = closure;
	const char *id = NULL;

	(void)js;
	natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
	pthread_mutex_lock(&r->win_lock);
	if (pae || !pa) {
		r->failed = true;
	} else if (id) {
		/* acknowledgements come in order: look from the oldest */
		for (size_t i = 0; i < r->n; i++) {
			struct slot *sl = &r->win[(r->head + i) % r->cfg->window];
			if (!sl->acked && strcmp(sl->msgid, id) == 0) {
				sl->acked = true;
				break;
			}
		}
		while (r->n && r->win[r->head].acked) {
			r->resume = r->win[r->head].resume;
			r->head = (r->head + 1) % r->cfg->window;
			r->n--;
			r->published++;
		}
	}
	pthread_cond_broadcast(&r->win_cond);
	pthread_mutex_unlock(&r->win_lock);
	natsMsg_Destroy(msg);
}

/* --- the broker ---------------------------------------------------------------- */

static int broker_connect(struct relay *r)
{
	const struct relay_config *c = r->cfg;
	struct natsconn_opts o = {
		.url = c->url, .creds = c->creds, .user = c->user, .password = c->password,
		.token = c->token, .tls_ca = c->tls_ca, .tls_cert = c->tls_cert, .tls_key = c->tls_key,
		.tls = c->tls, .name = "fsnote-relay",
	};
	natsOptions *opts = NULL;
	char err[512];
	bool said = false;

	if (natsconn_options(&o, &opts, err, sizeof(err)) < 0) {
		say("%s", err);
		return -EINVAL;
	}
	while (!stop) {
		natsStatus s = natsConnection_Connect(&r->nc, opts);
		if (s == NATS_OK)
			break;
		if (!said)
			say("cannot connect to %s: %s; retrying", c->url ? c->url : NATS_DEFAULT_URL,
			     natsconn_error(s));
		said = true;
		nap(500);
	}
	natsOptions_Destroy(opts);
	if (stop)
		return -EINTR;

	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = c->ack_timeout_ms;
	/* the window is ours; libnats' own bound only has to leave room for
	 * the copies of a window republished after a failure */
	jo.PublishAsync.MaxPending = 2 * (int64_t)c->window + 16;
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = r;
	if (natsConnection_JetStream(&r->js, r->nc, &jo) != NATS_OK) {
		say("cannot set up JetStream: %s", natsconn_error(NATS_ERR));
		return -EIO;
	}
	if (said)
		say("connected to %s", c->url ? c->url : NATS_DEFAULT_URL);
	return 0;
}

/* Finds the stream, or creates it from the configuration.  Returns 0, or
 * -EAGAIN to be tried again (no answer: the broker is down or electing),
 * or -EINVAL (the stream cannot be created: a configuration error). */
static int ensure_stream(struct relay *r)
{
	static bool said_waiting;
	const struct relay_config *c = r->cfg;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, r->js, c->stream, NULL, &jerr);

	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr)
		return -EAGAIN;
	if (!c->create_stream) {
		say("the stream %s does not exist (and \"create\" is false)", c->stream);
		return -EINVAL;
	}
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = c->stream;
	sc.Subjects = (const char **)c->subjects;
	sc.SubjectsLen = (int)c->n_subjects;
	sc.Retention = c->retention == RELAY_RETAIN_INTEREST    ? js_InterestPolicy
		       : c->retention == RELAY_RETAIN_WORKQUEUE ? js_WorkQueuePolicy
								: js_LimitsPolicy;
	sc.Storage = c->storage == RELAY_STORE_MEMORY ? js_MemoryStorage : js_FileStorage;
	sc.Replicas = c->replicas;
	sc.MaxAge = (int64_t)c->max_age_s * 1000000000;
	sc.MaxBytes = c->max_bytes ? (int64_t)c->max_bytes : -1;
	sc.MaxMsgs = c->max_msgs ? (int64_t)c->max_msgs : -1;
	sc.Duplicates = (int64_t)c->duplicate_window_s * 1000000000;
	jerr = 0;
	s = js_AddStream(&si, r->js, &sc, NULL, &jerr);
	if (s == NATS_OK) {
		say("created the stream %s (%u replica%s)", c->stream, c->replicas, c->replicas > 1 ? "s" : "");
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (jerr == JSStreamNameExistErr)
		return 0; /* another relay was quicker */
	/* a cluster still electing its leaders or gathering its peers */
	if (jerr == JSClusterNotAvailErr || jerr == JSClusterNoPeersErr || jerr == JSClusterNotLeaderErr ||
	    jerr == JSInsufficientResourcesErr || jerr == JSClusterIncompleteErr) {
		if (!said_waiting)
			say("the cluster cannot create the stream %s yet (%s); retrying", c->stream, natsconn_error(s));
		said_waiting = true;
		return -EAGAIN;
	}
	if (jerr) {
		say("cannot create the stream %s: %s (JetStream error %d)", c->stream,
		     natsconn_error(s), (int)jerr);
		return -EINVAL;
	}
	return -EAGAIN;
}

/* The resume point stored with the last message of this host, 0 when the
 * stream holds none.  Returns 0 or -EAGAIN. */
static int stream_resume(struct relay *r, uint64_t *ret)
{
	char subject[RELAY_HOST_MAX + 16];
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	const char *v = NULL;

	snprintf(subject, sizeof(subject), SUBJECT_PREFIX ".%s.>", r->cfg->host);
	natsStatus s = js_GetLastMsg(&m, r->js, r->cfg->stream, subject, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
		*ret = 0;
		return 0;
	}
	if (s != NATS_OK)
		return -EAGAIN;
	/* the header, or for a message without it the ID of "<host>:<id>" */
	uint64_t id = 0;
	size_t hl = strlen(r->cfg->host);
	if (natsMsgHeader_Get(m, RESUME_HEADER, &v) != NATS_OK || !v) {
		v = NULL;
		if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK && v &&
		    strncmp(v, r->cfg->host, hl) == 0 && v[hl] == ':')
			v += hl + 1;
		else
			v = NULL;
	}
	if (v) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(v, &end, 10);
		if (!errno && *v >= '0' && *v <= '9' && !*end)
			id = x;
	}
	natsMsg_Destroy(m);
	*ret = id;
	return 0;
}

/* --- the window -------------------------------------------------------------------- */

static void slot_clear(struct slot *s)
{
	free(s->subject);
	free(s->body);
	*s = (struct slot){ 0 };
}

/* Called without win_lock: libnats may stall a publish until it has room,
 * and room comes through on_ack(), which takes the lock.  The slot stays
 * valid (only this thread reuses slots); on_ack() reads only msgid and
 * acked, which do not change here. */
static natsStatus publish_slot(struct relay *r, struct slot *sl)
{
	natsMsg *m = NULL;
	char resume[24];
	jsPubOptions po;

	jsPubOptions_Init(&po);
	po.MsgId = sl->msgid;
	po.MaxWait = r->cfg->ack_timeout_ms;
	snprintf(resume, sizeof(resume), "%" PRIu64, sl->resume);
	natsStatus s = natsMsg_Create(&m, sl->subject, NULL, sl->body, (int)sl->len);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, RESUME_HEADER, resume);
	if (s == NATS_OK)
		s = js_PublishMsgAsync(r->js, &m, &po);
	natsMsg_Destroy(m); /* NULL once libnats took it */
	return s;
}

/* Waits, with win_lock held, until the window holds fewer than @max
 * messages.  Returns 0, or -EIO when a publish failed or the oldest went
 * unacknowledged for ack_timeout_ms. */
static int window_wait_below(struct relay *r, size_t max)
{
	int64_t timeout = (int64_t)r->cfg->ack_timeout_ms * 1000000;

	while (r->n >= max && !r->failed) {
		int64_t left = r->win[r->head].sent_ns + timeout - mono_ns();
		if (left <= 0)
			return -EIO;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t until = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (left < 100000000 ? left : 100000000);
		ts.tv_sec = until / 1000000000;
		ts.tv_nsec = until % 1000000000;
		pthread_cond_timedwait(&r->win_cond, &r->win_lock, &ts);
	}
	return r->failed ? -EIO : 0;
}

/* Has the window failed (an error, or the oldest message unacknowledged
 * for too long)?  For the idle loop. */
static bool window_failed(struct relay *r)
{
	pthread_mutex_lock(&r->win_lock);
	bool f = r->failed || (r->n && mono_ns() - r->win[r->head].sent_ns >
					     (int64_t)r->cfg->ack_timeout_ms * 1000000);
	pthread_mutex_unlock(&r->win_lock);
	return f;
}

/* Waits for every message of the window to be acknowledged.  Returns 0 or
 * -EIO. */
static int window_complete(struct relay *r)
{
	pthread_mutex_lock(&r->win_lock);
	int ret = window_wait_below(r, 1);
	pthread_mutex_unlock(&r->win_lock);
	return ret;
}

/* Publishes the unacknowledged messages again, in order, until the broker
 * acknowledges all of them (JetStream drops the copies it already holds). */
static int window_republish(struct relay *r)
{
	bool said = false;

	while (!stop) {
		if (natsConnection_Status(r->nc) == NATS_CONN_STATUS_CONNECTED) {
			natsStatus s = NATS_OK;
			pthread_mutex_lock(&r->win_lock);
			r->failed = false;
			size_t head = r->head, n = r->n;
			int64_t t = mono_ns();
			for (size_t i = 0; i < n; i++)
				r->win[(head + i) % r->cfg->window].sent_ns = t;
			pthread_mutex_unlock(&r->win_lock);
			for (size_t i = 0; i < n && s == NATS_OK; i++) {
				struct slot *sl = &r->win[(head + i) % r->cfg->window];
				s = publish_slot(r, sl);
			}
			pthread_mutex_lock(&r->win_lock);
			if (s != NATS_OK)
				r->failed = true;
			int ret = window_wait_below(r, 1);
			pthread_mutex_unlock(&r->win_lock);
			if (ret == 0) {
				if (said)
					say("the broker acknowledged the records held back");
				return 0;
			}
		}
		if (!said) {
			pthread_mutex_lock(&r->win_lock);
			size_t n = r->n;
			pthread_mutex_unlock(&r->win_lock);
			say("waiting for the broker to acknowledge %zu record%s", n, n == 1 ? "" : "s");
		}
		said = true;
		nap(250);
	}
	return -EINTR;
}

/* Turns @e into the next slot and publishes it, once the window has room.
 * Returns 0, -ENOMEM, or -EIO when the broker failed (the record is then
 * in the window, to be republished). */
static int window_add(struct relay *r, const fsnote_event *e)
{
	const struct relay_config *c = r->cfg;
	uint32_t type = fsnote_event_type(e);
	const char *tname = fsnote_type_name(type);
	char tbuf[24], msgid[sizeof(((struct slot *)0)->msgid)];
	uint64_t resume = r->next_resume;

	if (!tname) {
		snprintf(tbuf, sizeof(tbuf), "type%" PRIu32, type);
		tname = tbuf;
	}
	if (type == FSNOTE_DROPPED) {
		snprintf(msgid, sizeof(msgid), "%s:%" PRIu64 ":dropped:%" PRIu64, c->host,
			 fsnote_event_id(e), fsnote_event_time_ns(e));
	} else {
		snprintf(msgid, sizeof(msgid), "%s:%" PRIu64, c->host, fsnote_event_id(e));
		/* a dropped record's ID says nothing about what was delivered */
		if (fsnote_event_id(e) > resume)
			resume = fsnote_event_id(e);
	}
	size_t slen = strlen(c->host) + strlen(tname) + sizeof(SUBJECT_PREFIX) + 3;
	char *subject = malloc(slen);
	char *body = record_encode(e, c->host);
	if (!subject || !body) {
		free(subject);
		free(body);
		return -ENOMEM;
	}
	snprintf(subject, slen, SUBJECT_PREFIX ".%s.%s", c->host, tname);

	pthread_mutex_lock(&r->win_lock);
	int ret = window_wait_below(r, c->window);
	if (ret < 0 && r->n == c->window) {
		/* no room: the caller republishes, then offers this record again
		 * after resuming (it is not lost: fsnoted replays it) */
		pthread_mutex_unlock(&r->win_lock);
		free(subject);
		free(body);
		return -EIO;
	}
	struct slot *sl = &r->win[(r->head + r->n) % c->window];
	slot_clear(sl);
	sl->subject = subject;
	sl->body = body;
	sl->len = strlen(body);
	memcpy(sl->msgid, msgid, sizeof(msgid));
	sl->resume = resume;
	sl->sent_ns = mono_ns();
	r->n++;
	r->next_resume = resume;
	pthread_mutex_unlock(&r->win_lock);
	natsStatus s = publish_slot(r, sl);
	pthread_mutex_lock(&r->win_lock);
	if (s != NATS_OK)
		r->failed = true;
	ret = r->failed ? -EIO : 0;
	pthread_mutex_unlock(&r->win_lock);
	return ret;
}

/* --- fsnoted ------------------------------------------------------------------------ */

static void daemon_close(struct relay *r)
{
	r->h = fsnote_close(r->h);
}

/* Connects and subscribes every configured directory, "since" the resume
 * point when there is one.  Returns 0, -EAGAIN (retry later) or -EINVAL. */
static int daemon_open(struct relay *r)
{
	const struct relay_config *c = r->cfg;
	fsnote_sub_opts *o = NULL;
	int ret = fsnote_connect(c->socket, &r->h);

	if (ret < 0) {
		r->h = NULL;
		return -EAGAIN;
	}
	ret = fsnote_sub_opts_new(&o);
	if (ret == 0 && c->mask)
		ret = fsnote_sub_opts_set_events(o, c->mask | FSNOTE_MASK(FSNOTE_DROPPED));
	if (ret == 0 && c->have_latency)
		ret = fsnote_sub_opts_set_latency_us(o, c->latency_ms * 1000);
	if (ret == 0 && c->ring_depth)
		ret = fsnote_sub_opts_set_ring_depth(o, c->ring_depth);
	if (ret == 0 && r->resume)
		ret = fsnote_sub_opts_set_since(o, r->resume);
	uint64_t start = 0;
	for (size_t i = 0; ret == 0 && i < c->n_paths; i++) {
		uint32_t id;
		ret = fsnote_subscribe(r->h, c->paths[i], o, &id);
		if (ret < 0) {
			const char *m = fsnote_last_error(r->h);
			say("cannot watch %s: %s", c->paths[i], m && *m ? m : strerror(-ret));
			break;
		}
		if (!start || fsnote_sub_start_id(r->h, id) < start)
			start = fsnote_sub_start_id(r->h, id);
	}
	fsnote_sub_opts_free(o);
	if (ret < 0) {
		daemon_close(r);
		return ret == -ECONNRESET || ret == -EPIPE ? -EAGAIN : -EINVAL;
	}
	/* a first start resumes, after a crash, from where it began */
	pthread_mutex_lock(&r->win_lock);
	if (!r->resume)
		r->resume = start;
	r->next_resume = r->resume;
	pthread_mutex_unlock(&r->win_lock);
	return 0;
}

/* --- the loop ------------------------------------------------------------------------ */

static enum pump_result pump(struct relay *r)
{
	int64_t status_at = 0;

	for (;;) {
		if (stop)
			return window_complete(r) < 0 ? PUMP_BROKER : PUMP_STOP;
		fsnote_event *e = NULL;
		int ret = fsnote_read(r->h, 200, &e);
		if (ret == 0) {
			ret = window_add(r, e);
			e = fsnote_event_free(e);
			if (ret == -ENOMEM) {
				say("out of memory");
				stop = 1;
				continue;
			}
			if (ret < 0)
				return PUMP_BROKER;
			continue;
		}
		if (ret == -EINTR)
			continue;
		if (ret == -EAGAIN || ret == -ETIMEDOUT) {
			if (window_failed(r))
				return PUMP_BROKER;
			if (mono_ns() - status_at > 1000000000) {
				pthread_mutex_lock(&r->win_lock);
				uint64_t n = r->published, resume = r->resume;
				pthread_mutex_unlock(&r->win_lock);
				sd_notifyf(0, "STATUS=%" PRIu64 " records published, resume point %" PRIu64, n, resume);
				status_at = mono_ns();
			}
			continue;
		}
		/* fsnoted went away or said something that does not decode */
		if (window_complete(r) < 0)
			return PUMP_BROKER;
		say("lost the connection to fsnoted (%s); resuming after event %" PRIu64, strerror(-ret),
		    r->resume);
		return PUMP_DAEMON;
	}
}

static int run(struct relay_config *c)
{
	struct relay r = { .cfg = c };
	int ret;
	bool said_daemon = false;

	pthread_mutex_init(&r.win_lock, NULL);
	pthread_cond_init(&r.win_cond, NULL);
	r.win = calloc(c->window, sizeof(*r.win));
	if (!r.win) {
		say("out of memory");
		return 1;
	}
	ret = broker_connect(&r);
	while (ret == 0 && !stop) {
		ret = ensure_stream(&r);
		if (ret == -EAGAIN) {
			ret = 0;
			nap(250);
			continue;
		}
		if (ret < 0)
			break;
		if (!r.h) {
			uint64_t last;
			if (stream_resume(&r, &last) < 0) {
				nap(250);
				continue;
			}
			pthread_mutex_lock(&r.win_lock);
			if (last > r.resume)
				r.resume = last;
			pthread_mutex_unlock(&r.win_lock);
			bool resuming = r.resume != 0;
			ret = daemon_open(&r);
			if (ret == -EAGAIN) {
				if (!said_daemon)
					say("fsnoted is not answering; retrying");
				said_daemon = true;
				ret = 0;
				nap(500);
				continue;
			}
			if (ret < 0)
				break;
			said_daemon = false;
			say("relaying %zu director%s as host %s to stream %s%s", c->n_paths,
			     c->n_paths == 1 ? "y" : "ies", c->host, c->stream,
			     resuming ? ", resuming" : "");
			if (!r.ready) {
				sd_notify(0, "READY=1");
				r.ready = true;
			}
		}
		switch (pump(&r)) {
		case PUMP_STOP:
			break;
		case PUMP_DAEMON:
			daemon_close(&r);
			nap(100);
			continue;
		case PUMP_BROKER:
			/* let fsnoted keep the rest in its history rather than in a ring */
			say("the broker did not acknowledge in time; holding back what it did not "
			    "acknowledge and resuming from the stream once it answers");
			daemon_close(&r);
			ret = window_republish(&r);
			continue;
		}
		break;
	}
	daemon_close(&r);
	/* no acknowledgement may arrive once the window is gone */
	if (r.nc)
		natsConnection_Close(r.nc);
	jsCtx_Destroy(r.js);
	natsConnection_Destroy(r.nc);
	/* libnats' threads (its timers call on_ack() with @r) must be gone
	 * before @r is */
	nats_CloseAndWait(2000);
	for (size_t i = 0; i < c->window; i++)
		slot_clear(&r.win[i]);
	free(r.win);
	pthread_cond_destroy(&r.win_cond);
	pthread_mutex_destroy(&r.win_lock);
	return ret < 0 && ret != -EINTR ? 1 : 0;
}

static void help(void)
{
	printf("Usage: fsnote-relay [--config FILE] [--check-config]\n"
	       "Publish the changes fsnoted reports below the configured directories to a\n"
	       "NATS JetStream stream, one message per record.\n"
	       "\n"
	       "  -c, --config FILE   the configuration (default " RELAY_DEFAULT_CONFIG ")\n"
	       "      --check-config  check the configuration, print nothing and exit\n"
	       "  -h, --help          show this help\n"
	       "  -V, --version       show the version\n"
	       "\n"
	       "See fsnote-relay(8) and fsnote-relay.conf(5).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = RELAY_DEFAULT_CONFIG;
	bool check = false;
	int c;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("fsnote-relay %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fputs("Try 'fsnote-relay --help'.\n", stderr);
			return 1;
		}
	}
	if (optind < argc) {
		say("unexpected argument '%s'. Try 'fsnote-relay --help'.", argv[optind]);
		return 1;
	}

	struct relay_config cfg;
	char err[1024];
	if (relay_config_load(path, &cfg, err, sizeof(err)) < 0) {
		say("%s", err);
		return 1;
	}
	if (check) {
		relay_config_clear(&cfg);
		return 0;
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ret = run(&cfg);
	relay_config_clear(&cfg);
	return ret;
}
