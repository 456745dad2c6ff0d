/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * server.c - the listening socket, client connections and requests.
 *
 * A client's identity is what SO_PEERCRED and SO_PEERGROUPS said at accept
 * time, never anything it sends.  Until its hello is complete a client may
 * send one small frame and has a few seconds to do it.  Input is read with
 * recvmsg() so that descriptors can be checked: exactly one SCM_RIGHTS
 * descriptor, received close-on-exec, and only inside a subscribe frame; a
 * truncated control message, a second descriptor or a descriptor on any
 * other request ends the connection.  Every frame is bounded by its header
 * before its body is read, and any malformed frame gets an error record and
 * a closed connection; the daemon and every other client carry on.
 *
 * Output is never written with a blocking call: replies and events go into
 * the client's output buffer, bounded by a high-water mark and by the uid's
 * byte quota, and rings hold whatever does not fit yet.  A client that
 * stops reading stops being read from too, so requests cannot pile up.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "codec.h"
#include "daemon.h"
#include "log.h"
#include "mountwatch.h"

#define OUT_HIGH_WATER (256u * 1024u)
#define HANDSHAKE_FRAME_MAX 1024u
#define READ_CHUNK (64u * 1024u)
#define READS_PER_CALLBACK 8
#define CLOSE_GRACE_MS 1000

static void client_free(struct client *c);
static void client_try_write(struct client *c);
static void process_frames(struct client *c);

struct uid_acct *server_acct(struct daemon *d, uid_t uid)
{
	for (struct uid_acct *a = d->accts; a; a = a->next)
		if (a->uid == uid)
			return a;
	struct uid_acct *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->uid = uid;
	a->next = d->accts;
	d->accts = a;
	return a;
}

/* What an output buffer holding @len bytes costs the heap: libevent keeps
 * them in chains of up to 4 KiB it allocates as they fill (evbuffer_add()),
 * so the last one may be mostly empty, and each has a header. */
#define OUT_CHAIN_SLACK 4096u
#define OUT_CHAIN_HEADER 64u
static size_t output_cost(struct evbuffer *out, size_t len)
{
	if (len == 0)
		return 0;
	int chains = evbuffer_peek(out, -1, NULL, NULL, 0);
	return len + OUT_CHAIN_SLACK + (chains > 0 ? (size_t)chains : 1) * OUT_CHAIN_HEADER;
}

void server_charge(struct client *c)
{
	struct daemon *d = c->d;
	size_t len = evbuffer_get_length(c->out);
	size_t cost = output_cost(c->out, len);
	c->acct->queued_bytes = c->acct->queued_bytes - c->charged_len + len;
	d->out_bytes = d->out_bytes - c->charged + cost;
	c->charged = cost;
	c->charged_len = len;
	if (d->pool)
		pool_set_external(d->pool, d->out_bytes);
}

/* How far @c's output may be filled with events now.  Three bounds: the
 * high-water mark; its uid's quota; and the clients' share of the one
 * memory bound (pool_max_bytes, which charges output too), a quarter of
 * it.  Once that share is taken (stalled clients hold their bytes), a
 * client gets OUT_MIN_STEP at a time, and only when its output is empty,
 * so that everyone that reads still makes progress. */
#define OUT_SHARE_DIVISOR 4
#define OUT_MIN_STEP (4u * 1024u)
static size_t output_room(const struct client *c)
{
	const struct daemon *d = c->d;
	size_t quota = d->cfg.max_queued_bytes_per_uid;
	size_t used = c->acct->queued_bytes;
	size_t high = OUT_HIGH_WATER;
	size_t len = evbuffer_get_length(c->out);

	/* the uid's byte quota caps what this client may have queued */
	if (used >= quota)
		high = len;
	else if (quota - used < high - (len < high ? len : high))
		high = len + (quota - used);
	size_t share = d->cfg.pool_max_bytes / OUT_SHARE_DIVISOR;
	size_t others = d->out_bytes - c->charged;
	size_t cap = share > others ? share - others : 0;
	if (cap < OUT_MIN_STEP)
		cap = len == 0 ? OUT_MIN_STEP : len;
	return high < cap ? high : cap;
}

/* Closes the connection at the next turn, reading nothing more from it. */
static void close_now(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	event_del(c->ev_read);
	struct timeval now = { 0, 0 };
	evtimer_add(c->ev_deadline, &now);
}

/* Appends a frame built by the caller.  A frame that cannot be encoded (it
 * cannot happen for frames we build ourselves) or queued (no memory) would
 * leave the client waiting for a reply forever: the connection is closed
 * instead, so that the client sees it end. */
static void queue_frame(struct client *c, const uint8_t *buf, int n)
{
	if (n >= 0 && evbuffer_add(c->out, buf, (size_t)n) == 0)
		return;
	log_err("cannot queue a reply for pid %d uid %u: %s", (int)c->pid, c->uid,
		n < 0 ? strerror(-n) : "out of memory");
	close_now(c);
}

void server_send_error(struct client *c, uint32_t req_id, int error, const char *fmt, ...)
{
	uint8_t buf[FSNOTE_MESSAGE_MAX + 64];
	char msg[FSNOTE_MESSAGE_MAX];
	struct codec_writer w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_ERROR);
	if (req_id)
		codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	codec_put_u32(&w, FSNOTE_ARG_ERRNO, (uint32_t)(error < 0 ? -error : error));
	codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, msg);
	queue_frame(c, buf, codec_writer_finish(&w));
}

/* Stops reading, says @msg, flushes and closes.  The rest of the daemon
 * carries on. */
static void client_kill(struct client *c, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void client_kill(struct client *c, int error, const char *fmt, ...)
{
	char msg[FSNOTE_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->closing) {
		log_info("closing connection of pid %d uid %u: %s", (int)c->pid, c->uid, msg);
		server_send_error(c, 0, error, "%s", msg);
		c->closing = true;
		event_del(c->ev_read);
		struct timeval tv = { 0, CLOSE_GRACE_MS * 1000 };
		evtimer_add(c->ev_deadline, &tv);
	}
	/* written from the write callback: callers still hold @c */
	event_add(c->ev_write, NULL);
}

/* --- output ------------------------------------------------------------ */

/* Reading pauses while the output is above the high-water mark and resumes
 * once the socket has taken half of it, checked after every write and not
 * only when the output is empty: a subscriber whose events keep the buffer
 * busy must still get its requests answered. */
static void resume_reading(struct client *c)
{
	if (!c->read_paused || c->closing || evbuffer_get_length(c->out) >= OUT_HIGH_WATER / 2)
		return;
	c->read_paused = false;
	if (c->pending_sub)
		return; /* reading resumes with its reply */
	event_add(c->ev_read, NULL);
	/* requests read before the pause are not news to the socket: the
	 * read event would never fire for them */
	if (evbuffer_get_length(c->in) > 0)
		process_frames(c);
}

/* @c took some of what it had pending: it is not stalled, and room it
 * made may let a held kernel queue be read again. */
static void client_progressed(struct client *c)
{
	c->busy_since_ns = now_mono_ns();
	sub_resume_sources(c->d);
}

static void client_try_write(struct client *c)
{
	bool progress = false, idle = false;

	for (int round = 0; round < 4; round++) {
		if (!c->closing)
			(void)sub_drain_client(c, output_room(c));
		while (evbuffer_get_length(c->out) > 0) {
			int n = evbuffer_write(c->out, c->fd);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					break;
				client_free(c);
				return;
			}
			if (n == 0)
				break;
			progress = true;
		}
		server_charge(c);
		if (evbuffer_get_length(c->out) > 0) {
			event_add(c->ev_write, NULL);
			if (progress)
				client_progressed(c);
			resume_reading(c);
			return;
		}
		event_del(c->ev_write);
		if (c->closing) {
			client_free(c);
			return;
		}
		bool pending = false;
		for (struct sub *s = c->subs; s; s = s->next)
			if (sub_pending(s))
				pending = true;
		if (!pending) {
			idle = true;
			break;
		}
	}
	if (idle) {
		c->busy_since_ns = 0; /* nothing pending: it cannot be stalled */
		sub_resume_sources(c->d);
	} else if (progress) {
		client_progressed(c);
	}
	resume_reading(c);
	/* still pending after our rounds: come back after other clients had theirs */
	for (struct sub *s = c->subs; s; s = s->next) {
		if (ring_peek(s->ring) || ring_has_drop(s->ring)) {
			if (evbuffer_get_length(c->out) == 0)
				server_schedule_drain(c);
			break;
		}
	}
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	client_try_write(arg);
}

void server_schedule_drain(struct client *c)
{
	if (!c->closing)
		event_active(c->ev_drain, EV_TIMEOUT, 0);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	client_try_write(arg);
}

/* --- requests ------------------------------------------------------------ */

static uint64_t daemon_features(struct daemon *d)
{
	uint64_t f = FSNOTE_FEATURE_HISTORY | FSNOTE_FEATURE_FLUSH | FSNOTE_FEATURE_FIELDS;
	if (d->primary)
		f |= d->primary->ops->features(d->primary);
	if (d->fallback)
		f |= d->fallback->ops->features(d->fallback);
	if (d->mounts)
		f |= FSNOTE_FEATURE_MOUNT_EVENTS;
	if (d->journal)
		f |= FSNOTE_FEATURE_JOURNAL;
	return f;
}

static void handle_hello(struct client *c, const struct codec_record *rec)
{
	uint8_t buf[512];
	struct codec_writer w;
	uint32_t version = 0;

	(void)codec_get_u32(rec, FSNOTE_ARG_VERSION, &version);
	if (version != FSNOTE_PROTOCOL_VERSION) {
		client_kill(c, EPROTONOSUPPORT, "protocol version %u is not supported (fsnoted speaks %u)",
			    version, FSNOTE_PROTOCOL_VERSION);
		return;
	}
	c->hello_done = true;
	evtimer_del(c->ev_deadline);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_HELLO);
	codec_put_u32(&w, FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION);
	codec_put_cstring(&w, FSNOTE_ARG_SERVER_VERSION, PACKAGE_VERSION);
	codec_put_u64(&w, FSNOTE_ARG_FEATURES, daemon_features(c->d));
	codec_put_cstring(&w, FSNOTE_ARG_BACKEND, c->d->primary->ops->name);
	queue_frame(c, buf, codec_writer_finish(&w));
}

static void reply_subscribed(struct client *c, uint32_t req_id, const struct sub *s)
{
	uint8_t buf[FSNOTE_PATH_MAX + 1024];
	struct codec_writer w;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_SUBSCRIBED);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	codec_put_u32(&w, FSNOTE_ARG_SUB_ID, s->id);
	codec_put_u64(&w, FSNOTE_ARG_ID, pool_current_id(c->d->pool));
	if (s->n_anchors) {
		codec_put_cstring(&w, FSNOTE_ARG_PATH, s->anchors[0].root_abs);
		codec_put_u64(&w, FSNOTE_ARG_DEV, s->anchors[0].dev);
		codec_put_cstring(&w, FSNOTE_ARG_BACKEND, s->anchors[0].source->ops->name);
	}
	if (s->event_flags & FSNOTE_FLAG_LOCAL_ONLY) {
		codec_put_u32(&w, FSNOTE_ARG_FLAGS, s->event_flags);
		codec_put_cstring(&w, FSNOTE_ARG_MESSAGE,
				  s->warning ? s->warning
					     : "this filesystem reports only the changes made through "
					       "this host's mount: changes made elsewhere are not seen");
	}
	queue_frame(c, buf, codec_writer_finish(&w));
}

static void handle_subscribe(struct client *c, const struct codec_record *rec, uint32_t req_id,
			     int fd)
{
	char err[FSNOTE_MESSAGE_MAX] = "";
	struct sub *s;

	int r = sub_create(c->d, c, rec, fd, &s, err, sizeof(err));
	if (r < 0) {
		server_send_error(c, req_id, r, "%s", err);
		return;
	}
	if (r == SUB_PENDING) {
		/* a large tree is walked in turns, other clients served between
		 * them; this client's later requests wait for its reply */
		c->pending_sub = s;
		c->pending_req = req_id;
		event_del(c->ev_read);
		return;
	}
	log_debug("uid %u pid %d subscribed to %s (subscription %u)", c->uid, (int)c->pid,
		  s->n_anchors ? s->anchors[0].root_abs : "-", s->id);
	reply_subscribed(c, req_id, s);
}

void server_subscribe_done(struct client *c, struct sub *s, int r, const char *err)
{
	if (s)
		reply_subscribed(c, c->pending_req, s);
	else
		server_send_error(c, c->pending_req, r, "%s", err);
	if (c->closing)
		return;
	if (!c->read_paused)
		event_add(c->ev_read, NULL);
	process_frames(c); /* what came meanwhile */
	event_add(c->ev_write, NULL);
}

static void reply_id(struct client *c, uint16_t type, uint32_t req_id, uint32_t sub_id, uint64_t id)
{
	uint8_t buf[128];
	struct codec_writer w;

	codec_writer_init(&w, buf, sizeof(buf), type);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	if (sub_id)
		codec_put_u32(&w, FSNOTE_ARG_SUB_ID, sub_id);
	codec_put_u64(&w, FSNOTE_ARG_ID, id);
	queue_frame(c, buf, codec_writer_finish(&w));
}

/* "ok", or what is wrong, in a word. */
static const char *daemon_health(const struct daemon *d)
{
	if (d->draining)
		return "stopping";
	return "ok";
}

static void handle_status(struct client *c, uint32_t req_id)
{
	struct daemon *d = c->d;
	json_t *root = json_object();
	size_t n_clients = 0;

	/* an unprivileged asker sees the daemon's version, backend and health,
	 * its own uid's connections, subscriptions and limits: which types
	 * other users watch, which filesystems are marked and how busy they
	 * are is theirs and the administrator's business */
	for (struct client *x = d->clients; x; x = x->next)
		if (c->privileged || x->uid == c->uid)
			n_clients++;
	json_object_set_new(root, "version", json_string(PACKAGE_VERSION));
	json_object_set_new(root, "pid", json_integer(getpid()));
	json_object_set_new(root, "uptime_s", json_real((double)(now_mono_ns() - d->start_ns) / 1e9));
	json_object_set_new(root, "backend", json_string(d->primary->ops->name));
	json_t *features = json_array();
	static const char *const names[] = { "fanotify", "rename", "inotify", "history",
					     "flush", "mount_events", "fs_error", "journal" };
	uint64_t f = daemon_features(d);
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f & (UINT64_C(1) << i))
			json_array_append_new(features, json_string(names[i]));
	json_object_set_new(root, "features", features);
	json_object_set_new(root, "clients", json_integer((json_int_t)n_clients));
	json_object_set_new(root, "view", json_string(c->privileged ? "daemon" : "own"));
	json_object_set_new(root, "health", json_string(daemon_health(d)));
	json_object_set_new(root, "usage",
			    json_pack("{s:I,s:I,s:I,s:I}", "uid", (json_int_t)c->uid, "connections",
				      (json_int_t)c->acct->connections, "subscriptions",
				      (json_int_t)c->acct->subscriptions, "queued_bytes",
				      (json_int_t)c->acct->queued_bytes));
	if (!c->privileged)
		goto own;
	json_t *sources = json_object();
	json_t *prim = json_object();
	d->primary->ops->status(d->primary, prim);
	json_object_set_new(sources, d->primary->ops->name, prim);
	if (d->fallback) {
		json_t *fb = json_object();
		d->fallback->ops->status(d->fallback, fb);
		json_object_set_new(sources, "fallback", fb);
	}
	if (d->mounts)
		mountwatch_status(d->mounts, sources);
	json_object_set_new(root, "sources", sources);
own:
	sub_status(d, c, root);
	json_object_set_new(root, "limits",
			    json_pack("{s:I,s:I,s:I,s:I,s:I}", "max_connections_per_uid",
				      (json_int_t)d->cfg.max_connections_per_uid,
				      "max_subscriptions_per_uid",
				      (json_int_t)d->cfg.max_subscriptions_per_uid,
				      "max_watches_per_uid", (json_int_t)d->cfg.max_watches_per_uid,
				      "max_queued_bytes_per_uid",
				      (json_int_t)d->cfg.max_queued_bytes_per_uid, "ring_max_depth",
				      (json_int_t)d->cfg.ring_max_depth));

	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text) {
		server_send_error(c, req_id, ENOMEM, "cannot build the status");
		return;
	}
	size_t len = strlen(text);
	size_t cap = len + 128;
	uint8_t *buf = malloc(cap);
	struct codec_writer w;
	if (!buf) {
		free(text);
		server_send_error(c, req_id, ENOMEM, "cannot build the status");
		return;
	}
	codec_writer_init(&w, buf, cap, FSNOTE_REP_STATUS);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	codec_put_string(&w, FSNOTE_ARG_JSON, text, len);
	int n = codec_writer_finish(&w);
	if (n < 0)
		server_send_error(c, req_id, E2BIG, "the status is larger than a frame");
	else
		queue_frame(c, buf, n);
	free(buf);
	free(text);
}

static void handle_request(struct client *c, const struct codec_record *rec, int fd)
{
	struct daemon *d = c->d;
	uint32_t req_id = 0;
	uint64_t id;

	if (!c->hello_done) {
		if (rec->type != FSNOTE_REQ_HELLO) {
			client_kill(c, EPROTO, "the first request must be hello");
			return;
		}
		handle_hello(c, rec);
		return;
	}
	(void)codec_get_u32(rec, FSNOTE_ARG_REQ_ID, &req_id);
	switch (rec->type) {
	case FSNOTE_REQ_HELLO:
		client_kill(c, EPROTO, "hello was already done");
		return;
	case FSNOTE_REQ_SUBSCRIBE:
		handle_subscribe(c, rec, req_id, fd);
		return;
	case FSNOTE_REQ_UNSUBSCRIBE: {
		uint32_t sub_id = 0;
		(void)codec_get_u32(rec, FSNOTE_ARG_SUB_ID, &sub_id);
		struct sub *s = sub_find(c, sub_id);
		if (!s) {
			server_send_error(c, req_id, ENOENT, "no subscription %u on this connection", sub_id);
			return;
		}
		sub_destroy(s);
		uint8_t buf[64];
		struct codec_writer w;
		codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_UNSUBSCRIBED);
		codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
		codec_put_u32(&w, FSNOTE_ARG_SUB_ID, sub_id);
		queue_frame(c, buf, codec_writer_finish(&w));
		return;
	}
	case FSNOTE_REQ_CURRENT_ID: {
		uint64_t t;
		if (codec_get_u64(rec, FSNOTE_ARG_TIME, &t) == 0) {
			int r = pool_id_at_time(d->pool, t, &id);
			/* older than memory: the journal reaches further back */
			if (r == -ERANGE && d->journal && journal_id_at_time(d->journal, t, &id) == 0)
				r = 0;
			if (r < 0) {
				server_send_error(c, req_id, -r, "that time is older than the history "
								 "kept (history_events%s)",
						  d->journal ? " and the journal" : "");
				return;
			}
		} else {
			id = pool_current_id(d->pool);
		}
		reply_id(c, FSNOTE_REP_CURRENT_ID, req_id, 0, id);
		return;
	}
	case FSNOTE_REQ_STATUS:
		handle_status(c, req_id);
		return;
	case FSNOTE_REQ_INJECT: {
		if (c->uid != 0 && c->uid != geteuid()) {
			server_send_error(c, req_id, EPERM, "inject is for root only");
			return;
		}
		int r = sub_inject(d, rec, &id);
		if (r < 0) {
			server_send_error(c, req_id, -r, r == -ENOMEM ? "the event could not be pooled: %s"
							       : "invalid synthetic event: %s",
					  strerror(-r));
			return;
		}
		reply_id(c, FSNOTE_REP_INJECTED, req_id, 0, id);
		return;
	}
	case FSNOTE_REQ_FLUSH: {
		uint32_t sub_id = 0;
		(void)codec_get_u32(rec, FSNOTE_ARG_SUB_ID, &sub_id);
		struct sub *s = sub_find(c, sub_id);
		if (!s) {
			server_send_error(c, req_id, ENOENT, "no subscription %u on this connection", sub_id);
			return;
		}
		/* read everything the kernel queued before this request... */
		sub_flush_sources(d);
		/* ...and put it ahead of the reply; @s may end while draining */
		id = pool_current_id(d->pool);
		if (sub_find(c, sub_id))
			sub_drain_all(s);
		reply_id(c, FSNOTE_REP_FLUSHED, req_id, sub_id, id);
		return;
	}
	default:
		client_kill(c, EPROTO, "record type 0x%04x (%s) is not a request", rec->type,
			    codec_record_name(rec->type));
		return;
	}
}

/* --- input --------------------------------------------------------------- */

static void process_frames(struct client *c)
{
	static struct codec_record rec; /* large; the daemon is single-threaded */

	while (!c->closing && !c->pending_sub) {
		size_t avail = evbuffer_get_length(c->in);
		uint32_t max = c->hello_done ? FSNOTE_REQUEST_MAX : HANDSHAKE_FRAME_MAX;
		uint32_t len;

		if (evbuffer_get_length(c->out) >= OUT_HIGH_WATER) {
			/* the client is not reading its replies: stop reading its
			 * requests, but keep writing, so that the pause ends when it
			 * reads and its close is noticed when it goes */
			c->read_paused = true;
			event_del(c->ev_read);
			event_add(c->ev_write, NULL);
			return;
		}
		if (avail < FSNOTE_FRAME_HEADER_SIZE)
			break;
		int r = codec_frame_peek(evbuffer_pullup(c->in, FSNOTE_FRAME_HEADER_SIZE), avail, max,
					 &len);
		if (r == -EMSGSIZE) {
			client_kill(c, EMSGSIZE, "frame larger than %u bytes", max);
			return;
		}
		if (r < 0) {
			client_kill(c, EBADMSG, "malformed frame header");
			return;
		}
		if (r == 0)
			break;
		uint64_t start = c->in_offset - avail;
		int fd = -1;
		if (c->pending_fd >= 0) {
			if (c->pending_fd_offset < start) {
				client_kill(c, EBADMSG, "a descriptor arrived outside a subscribe request");
				return;
			}
			if (c->pending_fd_offset < start + len) {
				fd = c->pending_fd;
				c->pending_fd = -1;
			}
		}
		r = codec_decode(evbuffer_pullup(c->in, len), len, &rec);
		if (r < 0) {
			if (fd >= 0)
				close(fd);
			client_kill(c, -r, r == -EPROTONOSUPPORT ? "unknown record type" : "malformed frame");
			return;
		}
		if (fd >= 0 && rec.type != FSNOTE_REQ_SUBSCRIBE) {
			close(fd);
			client_kill(c, EBADMSG, "descriptors are accepted on subscribe requests only");
			return;
		}
		handle_request(c, &rec, fd);
		if (fd >= 0)
			close(fd); /* the daemon keeps no descriptor of a watched directory */
		evbuffer_drain(c->in, len);
	}
	if (evbuffer_get_length(c->out) > 0)
		event_add(c->ev_write, NULL);
}

static void close_fds(const struct cmsghdr *cm)
{
	size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	const int *fds = (const int *)CMSG_DATA(cm);
	for (size_t i = 0; i < n; i++) {
		int fd;
		memcpy(&fd, fds + i, sizeof(fd));
		close(fd);
	}
}

/* Takes the control messages of one recvmsg().  Returns 0, or -1 after
 * killing the client. */
static int take_cmsgs(struct client *c, struct msghdr *msg, uint64_t offset)
{
	int bad = 0;
	const char *why = NULL;

	if (msg->msg_flags & MSG_CTRUNC) {
		bad = 1;
		why = "control message truncated";
	}
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			why = why ? why : "unexpected control message";
			continue;
		}
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (bad || n != 1 || c->pending_fd >= 0) {
			close_fds(cm);
			bad = 1;
			why = why ? why : "exactly one descriptor per subscribe request";
			continue;
		}
		memcpy(&c->pending_fd, CMSG_DATA(cm), sizeof(int));
		c->pending_fd_offset = offset;
	}
	if (bad) {
		if (c->pending_fd >= 0) {
			close(c->pending_fd);
			c->pending_fd = -1;
		}
		client_kill(c, EBADMSG, "%s", why);
		return -1;
	}
	return 0;
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	/* one buffer for every client (the daemon is single-threaded): a chunk
	 * reserved in each client's own buffer would stay allocated for every
	 * idle connection; only the bytes received are copied there */
	static uint8_t chunk[READ_CHUNK];
	struct client *c = arg;

	for (int i = 0; i < READS_PER_CALLBACK && !c->closing; i++) {
		struct iovec iov = { .iov_base = chunk, .iov_len = sizeof(chunk) };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} control;
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		ssize_t n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			client_free(c);
			return;
		}
		uint64_t offset = c->in_offset;
		if (n > 0 && evbuffer_add(c->in, chunk, (size_t)n) < 0) {
			/* a descriptor that came is parked on the client, which
			 * closes it when it goes */
			if (msg.msg_controllen > 0)
				(void)take_cmsgs(c, &msg, offset);
			client_kill(c, ENOMEM, "out of memory");
			return;
		}
		c->in_offset += (uint64_t)n;
		/* the kernel joins earlier plain bytes onto the read that carries a
		 * descriptor and ends that read with the descriptor's own chunk, so
		 * the descriptor belongs to the frame holding the last byte read */
		if (msg.msg_controllen > 0 && take_cmsgs(c, &msg, offset + (uint64_t)(n > 0 ? n - 1 : 0)) < 0)
			return;
		if (n == 0) {
			client_free(c);
			return;
		}
		process_frames(c);
		if (c->closing || c->read_paused || c->pending_sub)
			return;
		/* a client that sent half a frame and a descriptor: wait for the rest */
	}
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	if (c->closing) {
		client_free(c); /* it would not take its last words */
		return;
	}
	client_kill(c, ETIMEDOUT, "handshake not completed within %u ms",
		    c->d->cfg.handshake_timeout_ms);
}

/* --- connections ------------------------------------------------------- */

static void client_free(struct client *c)
{
	struct daemon *d = c->d;

	while (c->subs)
		sub_destroy(c->subs);
	if (c->pending_sub)
		sub_abandon(c->pending_sub);
	if (c->pending_fd >= 0)
		close(c->pending_fd);
	event_free(c->ev_read);
	event_free(c->ev_write);
	event_free(c->ev_drain);
	event_free(c->ev_deadline);
	evbuffer_free(c->in);
	evbuffer_drain(c->out, evbuffer_get_length(c->out));
	server_charge(c);
	evbuffer_free(c->out);
	close(c->fd);
	c->acct->connections--;
	access_cred_put(d->access, c->cred);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->n_clients--;
	free(c);
	if (d->draining && !d->clients)
		event_base_loopbreak(d->base);
}

/* Refuses a connection with an error record, written straight away: the
 * socket buffer of a new connection has room for one small frame. */
static void refuse(int fd, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void refuse(int fd, int error, const char *fmt, ...)
{
	uint8_t buf[FSNOTE_MESSAGE_MAX + 64];
	char msg[FSNOTE_MESSAGE_MAX];
	struct codec_writer w;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REP_ERROR);
	codec_put_u32(&w, FSNOTE_ARG_ERRNO, (uint32_t)error);
	codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, msg);
	int n = codec_writer_finish(&w);
	if (n > 0)
		(void)send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static bool in_group(gid_t g, gid_t gid, const gid_t *groups, size_t n)
{
	if (g == (gid_t)-1)
		return false;
	if (gid == g)
		return true;
	for (size_t i = 0; i < n; i++)
		if (groups[i] == g)
			return true;
	return false;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct daemon *d = arg;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	gid_t *groups = NULL;

	if (d->draining) {
		close(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
		close(fd);
		return;
	}
	/* supplementary groups, growing the buffer as the kernel asks */
	socklen_t glen = 64 * sizeof(gid_t);
	for (;;) {
		gid_t *g = realloc(groups, glen ? glen : sizeof(gid_t));
		if (!g) {
			free(groups);
			close(fd);
			return;
		}
		groups = g;
		socklen_t want = glen;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &want) == 0) {
			glen = want;
			break;
		}
		if (errno != ERANGE || want <= glen || want > ACCESS_GROUPS_MAX * sizeof(gid_t)) {
			free(groups);
			close(fd);
			return;
		}
		glen = want;
	}
	size_t ngroups = glen / sizeof(gid_t);
	(void)server_adopt(d, fd, uc.pid, uc.uid, uc.gid, groups, ngroups);
	free(groups);
}

int server_adopt(struct daemon *d, int fd, pid_t pid, uid_t uid, gid_t gid, const gid_t *groups,
		 size_t ngroups)
{
	struct uid_acct *acct = server_acct(d, uid);
	if (!acct) {
		refuse(fd, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	if (acct->connections >= d->cfg.max_connections_per_uid) {
		refuse(fd, EUSERS, "too many connections for uid %u (limit %u, max_connections_per_uid)",
		       uid, d->cfg.max_connections_per_uid);
		return -EUSERS;
	}
	if (d->n_clients >= d->cfg.max_connections) {
		refuse(fd, EUSERS, "too many connections (limit %u, max_connections)",
		       d->cfg.max_connections);
		return -EUSERS;
	}

	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		refuse(fd, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	c->d = d;
	c->fd = fd;
	c->pid = pid;
	c->uid = uid;
	c->gid = gid;
	c->pending_fd = -1;
	c->acct = acct;
	/* root, the privileged group, and the daemon's own user: a per-user
	 * daemon sees nothing its owner could not see anyway */
	c->privileged = uid == 0 || uid == geteuid() ||
			in_group(d->cfg.privileged_gid, gid, groups, ngroups);
	int r = access_cred_get(d->access, uid, gid, groups, ngroups, &c->cred);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->ev_read = event_new(d->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->ev_write = event_new(d->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	c->ev_drain = event_new(d->base, -1, 0, drain_cb, c);
	c->ev_deadline = evtimer_new(d->base, deadline_cb, c);
	if (r < 0 || !c->in || !c->out || !c->ev_read || !c->ev_write || !c->ev_drain ||
	    !c->ev_deadline) {
		if (c->cred)
			access_cred_put(d->access, c->cred);
		if (c->in)
			evbuffer_free(c->in);
		if (c->out)
			evbuffer_free(c->out);
		if (c->ev_read)
			event_free(c->ev_read);
		if (c->ev_write)
			event_free(c->ev_write);
		if (c->ev_drain)
			event_free(c->ev_drain);
		if (c->ev_deadline)
			event_free(c->ev_deadline);
		free(c);
		refuse(fd, ENOMEM, "out of memory");
		return -ENOMEM;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "re");
	if (f) {
		if (fgets(c->comm, sizeof(c->comm), f))
			c->comm[strcspn(c->comm, "\n")] = '\0';
		fclose(f);
	}
	evutil_make_socket_nonblocking(fd);
	acct->connections++;
	c->next = d->clients;
	if (d->clients)
		d->clients->prev = c;
	d->clients = c;
	d->n_clients++;
	event_add(c->ev_read, NULL);
	struct timeval tv = { .tv_sec = d->cfg.handshake_timeout_ms / 1000,
			      .tv_usec = (d->cfg.handshake_timeout_ms % 1000) * 1000 };
	evtimer_add(c->ev_deadline, &tv);
	return 0;
}

static void listener_error_cb(struct evconnlistener *l, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();
	log_warn("accept failed: %s", evutil_socket_error_to_string(e));
}

/* --- the listening socket ------------------------------------------------- */

static int mkdir_parents(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int bind_own(struct daemon *d, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	r = mkdir_parents(path);
	if (r < 0) {
		log_err("cannot create the directory of %s: %s", path, strerror(-r));
		return r;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s exists and is not a socket; not replacing it", path);
			return -EEXIST;
		}
		/* a socket nobody answers on is stale; one somebody answers on is not ours */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			log_err("another daemon is listening on %s", path);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) < 0 && errno != ENOENT) {
			log_err("cannot remove stale socket %s: %m", path);
			return -errno;
		}
	}
	/* The socket is bound and listening under a temporary name first and
	 * then renamed into place, so that a client that sees the path can
	 * connect: between bind() and listen() a connect() is refused.  A path
	 * too long for the temporary name is bound in place. */
	struct sockaddr_un tmp = { .sun_family = AF_UNIX };
	int n = snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d.tmp", path, (int)getpid());
	bool staged = n > 0 && (size_t)n < sizeof(tmp.sun_path);
	const char *at = staged ? tmp.sun_path : path;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (staged)
		(void)unlink(at); /* a leftover of a daemon with our pid that crashed */
	mode_t old = umask(0);
	r = bind(fd, staged ? (struct sockaddr *)&tmp : (struct sockaddr *)&sun,
		 staged ? sizeof(tmp) : sizeof(sun));
	umask(old);
	if (r < 0 || chmod(at, 0666) < 0 || listen(fd, 256) < 0 || (staged && rename(at, path) < 0)) {
		r = -errno;
		log_err("cannot listen on %s: %s", path, strerror(-r));
		if (staged)
			(void)unlink(at);
		close(fd);
		return r;
	}
	d->socket_path = strdup(path);
	return fd;
}

int server_listen(struct daemon *d, const char *path)
{
	int fd;
	int n = sd_listen_fds(1);

	if (n > 1) {
		log_err("expected one socket from the service manager, got %d", n);
		return -EINVAL;
	}
	if (n == 1) {
		fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_err("the socket passed by the service manager is not a listening "
				"Unix stream socket");
			return -EINVAL;
		}
		evutil_make_socket_nonblocking(fd);
		evutil_make_socket_closeonexec(fd);
		log_info("using the socket passed by the service manager");
	} else {
		fd = bind_own(d, path);
		if (fd < 0)
			return fd;
		log_info("listening on %s", path);
	}
	d->listener = evconnlistener_new(d->base, accept_cb, d,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!d->listener) {
		close(fd);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(d->listener, listener_error_cb);
	return 0;
}

void server_begin_shutdown(struct daemon *d)
{
	uint8_t buf[256];
	struct codec_writer w;

	if (d->draining)
		return;
	d->draining = true;
	if (d->listener) {
		evconnlistener_free(d->listener);
		d->listener = NULL;
	}
	if (!d->clients) {
		event_base_loopbreak(d->base);
		return;
	}
	for (struct client *c = d->clients, *next; c; c = next) {
		next = c->next;
		if (c->closing)
			continue;
		/* what is queued goes out first, then the goodbye */
		(void)sub_drain_client(c, OUT_HIGH_WATER);
		codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REC_SHUTDOWN);
		codec_put_cstring(&w, FSNOTE_ARG_MESSAGE, "fsnoted is shutting down");
		queue_frame(c, buf, codec_writer_finish(&w));
		c->closing = true;
		event_del(c->ev_read);
		struct timeval tv = { 0, CLOSE_GRACE_MS * 1000 };
		evtimer_add(c->ev_deadline, &tv);
		client_try_write(c);
	}
}

void server_free_clients(struct daemon *d)
{
	while (d->clients)
		client_free(d->clients);
	/* lingering watches are charged to the accounts freed below */
	sub_free_lingers(d);
	if (d->listener) {
		evconnlistener_free(d->listener);
		d->listener = NULL;
	}
	if (d->socket_path) {
		unlink(d->socket_path);
		free(d->socket_path);
		d->socket_path = NULL;
	}
	while (d->accts) {
		struct uid_acct *a = d->accts;
		d->accts = a->next;
		free(a);
	}
}
