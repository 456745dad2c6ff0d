/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libfsnote.c - the client library: one connection to fsnoted per handle.
 *
 * Input.  The socket is non-blocking and read in chunks of at least
 * READ_CHUNK bytes into one growable buffer; whole frames are cut out of it
 * with codec_frame_peek() (bounded by FSNOTE_FRAME_MAX before anything else
 * is believed) and decoded in place.  A decoded record points into the
 * buffer and stays valid until the next fill(), which is the only function
 * that moves or reallocates it.  Whatever fsnote_read() cannot hand out at
 * once (events that arrived while a request waited for its reply, or events
 * left over when a connection is replaced) is kept in a FIFO of finished
 * event objects; the FIFO only ever holds what the daemon sent, and the
 * daemon bounds that by the subscription's ring.
 *
 * Batches.  fsnote_read_batch() copies events (the FIFO's first, so the
 * order is the daemon's) into one slab the handle owns, packed, and hands
 * out pointers into it; the next read call starts the slab over.  The slab
 * never moves while a batch points into it: a batch that runs out of room
 * stops short and the slab doubles at the next call, up to SLAB_MAX, so a
 * steady stream costs no allocation at all.  A slab event is marked
 * borrowed, which fsnote_event_free() honours.
 *
 * Readiness.  fsnote_fd() is an epoll descriptor that watches the socket and
 * an eventfd.  The eventfd is kept signalled exactly while fsnote_read() has
 * work the socket would not announce (queued events, whole frames already
 * in the buffer, a dead connection to report), so a caller's event loop
 * never sleeps on work that is already here.  The descriptor stays the same
 * across fsnote_reconnect().
 *
 * Subscriptions.  The IDs callers see are the library's own; each entry
 * maps to the daemon's ID on the current connection (0 while it has none)
 * and remembers how to subscribe again: the path (given, or read from
 * /proc/self/fd when the caller passed a descriptor; no descriptor is kept,
 * so that no mount is pinned), the options, and the newest event ID
 * received, which is what a resubscription asks to continue after.
 *
 * Errors are 0 / -errno; ret_* are written only on success.  The library
 * never logs, never exits, sends with MSG_NOSIGNAL and opens everything
 * close-on-exec.  Nothing is global: a handle is used by one thread at a
 * time and handles are independent.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "fsnote.h"

#define READ_CHUNK (64u * 1024u)
#define BUF_INITIAL (128u * 1024u)
/* A request whose daemon says nothing at all for this long is abandoned and
 * the connection is considered lost (its state is unknown from then on). */
#define REQUEST_IDLE_MS 30000
#define RECONNECT_PAUSE_MS 50
#define SUB_REQUEST_MAX (20u * 1024u) /* excludes, the label and the rest */
/* fsnote_read_batch()'s slab: where it starts, and how far a run of batches
 * cut short for room may double it (one event of the largest frame always
 * fits, however large max is). */
#define SLAB_INITIAL (64u * 1024u)
#define SLAB_MAX (16u * 1024u * 1024u)
#define EVENT_ALIGN _Alignof(struct fsnote_event)

/* The public flag and type numbers are the wire's. */
_Static_assert((unsigned)FSNOTE_F_LOCAL_ONLY == (unsigned)FSNOTE_FLAG_LOCAL_ONLY, "flag numbering");
_Static_assert((unsigned)FSNOTE_F_PATH_TOO_LONG == (unsigned)FSNOTE_FLAG_PATH_TOO_LONG,
	       "flag numbering");
_Static_assert((unsigned)FSNOTE_F_SUB_ENDED == (unsigned)FSNOTE_FLAG_SUB_ENDED, "flag numbering");
_Static_assert(FSNOTE_TYPE_MAX == FSNOTE_EV_MAX, "type numbering");
_Static_assert(FSNOTE_MASK_DEFAULT == FSNOTE_EV_DEFAULT_MASK, "default mask");
_Static_assert((unsigned)FSNOTE_HAS_FS_ERROR == (unsigned)FSNOTE_FEATURE_FS_ERROR, "feature numbering");
_Static_assert((unsigned)FSNOTE_HAS_JOURNAL == (unsigned)FSNOTE_FEATURE_JOURNAL, "feature numbering");
_Static_assert((unsigned)FSNOTE_HAS_FIELDS == (unsigned)FSNOTE_FEATURE_FIELDS, "feature numbering");
_Static_assert((unsigned)FSNOTE_WITH_STAT == (unsigned)FSNOTE_FIELD_STAT, "field numbering");
_Static_assert((unsigned)FSNOTE_WITH_PID == (unsigned)FSNOTE_FIELD_PID, "field numbering");
_Static_assert((unsigned)FSNOTE_WITH_ALL == (unsigned)FSNOTE_FIELDS_ALL, "field numbering");

struct fsnote_sub_opts {
	uint32_t sub_flags;
	bool have_mask, have_dev, have_depth, have_latency, have_batch, have_since, have_until;
	bool have_fields;
	uint64_t mask, dev, since, until;
	uint32_t depth, latency_us, batch, fields;
	size_t n_excludes;
	char *excludes[FSNOTE_EXCLUDES_MAX];
};

struct fsnote_event {
	struct fsnote_event *next; /* the handle's queue; NULL once handed out */
	bool borrowed;             /* in a handle's slab: fsnote_event_free() leaves it */
	uint32_t sub_id;           /* the library's ID */
	uint32_t type, flags, pid;
	uint64_t id, time_ns;
	struct codec_stat st, dest_st;
	uint64_t count, id_first, id_last;
	const char *path, *dest, *rescan; /* into data[] */
	size_t path_len, dest_len, rescan_len;
	char data[];
};

struct sub_entry {
	uint32_t id;          /* the library's, never reused on a handle */
	uint32_t daemon_id;   /* on the current connection; 0 when none */
	bool ended;           /* the daemon ended it, or it could not be restored */
	char *path;           /* absolute, to subscribe again; NULL for system */
	struct fsnote_sub_opts opts; /* as given, since excepted; owns its excludes */
	uint64_t resume_id;   /* newest ID received, or the start ID */
	uint64_t last_id;     /* newest ID handed out by fsnote_read() */
	/* from the last confirmation */
	uint64_t start_id;
	uint32_t flags;
	char *root, *warning, *backend;
};

struct fsnote {
	int sock;             /* owned; -1 between connections */
	int epfd;             /* owned; what fsnote_fd() returns, for the handle's life */
	int evfd;             /* owned; signalled while userspace has work */
	bool signalled;
	int dead;             /* 0, or the sticky error of the current connection */
	char *socket_path;

	uint64_t features;
	char *backend, *server_version;
	char last_error[FSNOTE_MESSAGE_MAX];

	uint8_t *in;          /* owned; bytes [in_off, in_end) are unparsed */
	size_t in_off, in_end, in_cap;

	fsnote_event *q_head, *q_tail;

	/* What fsnote_read_batch() handed out last: events packed one after
	 * another, each aligned for struct fsnote_event.  The next read call
	 * reuses it from the start; it only grows (doubling) when a batch had
	 * to stop early for room, so a steady stream allocates nothing. */
	uint8_t *slab;
	size_t slab_used, slab_cap;
	bool slab_short;

	struct sub_entry **subs;
	size_t n_subs, cap_subs;
	size_t hint;          /* index of the last entry found by daemon ID */
	uint32_t next_sub_id, next_req_id;
};

static char *strdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds left until @deadline (-1: none), for poll(). */
static int remaining(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void set_error(fsnote *h, const char *msg, size_t len)
{
	if (len >= sizeof(h->last_error))
		len = sizeof(h->last_error) - 1;
	memcpy(h->last_error, msg, len);
	h->last_error[len] = '\0';
}

static void set_error_from(fsnote *h, const struct codec_record *rec)
{
	const char *msg;
	size_t len;

	if (codec_get_string(rec, FSNOTE_ARG_MESSAGE, &msg, &len) == 0)
		set_error(h, msg, len);
	else
		h->last_error[0] = '\0';
}

/* The positive errno of an error reply, never 0. */
static int reply_errno(const struct codec_record *rec)
{
	uint32_t e = 0;

	(void)codec_get_u32(rec, FSNOTE_ARG_ERRNO, &e);
	return e == 0 || e > 4095 ? EPROTO : (int)e;
}

/* --- subscriptions table ------------------------------------------------ */

static void opts_clear(struct fsnote_sub_opts *o)
{
	for (size_t i = 0; i < o->n_excludes; i++)
		free(o->excludes[i]);
	o->n_excludes = 0;
}

static int opts_copy(const struct fsnote_sub_opts *src, struct fsnote_sub_opts *ret)
{
	struct fsnote_sub_opts o = *src;

	for (size_t i = 0; i < src->n_excludes; i++) {
		o.excludes[i] = strdup(src->excludes[i]);
		if (!o.excludes[i]) {
			o.n_excludes = i;
			opts_clear(&o);
			return -ENOMEM;
		}
	}
	*ret = o;
	return 0;
}

static struct sub_entry *entry_free(struct sub_entry *e)
{
	if (!e)
		return NULL;
	free(e->path);
	opts_clear(&e->opts);
	free(e->root);
	free(e->warning);
	free(e->backend);
	free(e);
	return NULL;
}

static struct sub_entry *entry_by_id(const fsnote *h, uint32_t id)
{
	if (!h || id == 0)
		return NULL;
	for (size_t i = 0; i < h->n_subs; i++)
		if (h->subs[i]->id == id)
			return h->subs[i];
	return NULL;
}

/* Events name the daemon's ID; consecutive events mostly name the same one. */
static struct sub_entry *entry_by_daemon_id(fsnote *h, uint32_t daemon_id)
{
	if (daemon_id == 0)
		return NULL;
	if (h->hint < h->n_subs && h->subs[h->hint]->daemon_id == daemon_id)
		return h->subs[h->hint];
	for (size_t i = 0; i < h->n_subs; i++) {
		if (h->subs[i]->daemon_id == daemon_id) {
			h->hint = i;
			return h->subs[i];
		}
	}
	return NULL;
}

static void entry_remove(fsnote *h, struct sub_entry *e)
{
	for (size_t i = 0; i < h->n_subs; i++) {
		if (h->subs[i] == e) {
			memmove(&h->subs[i], &h->subs[i + 1], (h->n_subs - i - 1) * sizeof(*h->subs));
			h->n_subs--;
			break;
		}
	}
	entry_free(e);
}

/* --- readiness -------------------------------------------------------------- */

static bool frame_buffered(const fsnote *h)
{
	uint32_t len;
	/* a malformed header counts: fsnote_read() must come and report it */
	return codec_frame_peek(h->in + h->in_off, h->in_end - h->in_off, FSNOTE_FRAME_MAX, &len) != 0;
}

static void update_ready(fsnote *h)
{
	bool want = h->q_head || h->dead || h->sock < 0 || frame_buffered(h);

	if (want == h->signalled)
		return;
	if (want) {
		uint64_t one = 1;
		if (write(h->evfd, &one, sizeof(one)) == sizeof(one))
			h->signalled = true;
	} else {
		uint64_t v;
		if (read(h->evfd, &v, sizeof(v)) == sizeof(v) || errno == EAGAIN)
			h->signalled = false;
	}
}

/* --- input ---------------------------------------------------------------- */

static void set_dead(fsnote *h, int error)
{
	if (!h->dead)
		h->dead = error;
}

/* Reads what the socket has, in one recv() of at least READ_CHUNK bytes.
 * Returns the byte count, 0 when nothing is there (EAGAIN), or the dead
 * connection's error (EOF is -ECONNRESET). */
static int fill(fsnote *h)
{
	size_t pending = h->in_end - h->in_off;

	if (h->dead)
		return h->dead;
	if (h->sock < 0)
		return -ENOTCONN;
	/* only a partial frame is left when we get here: moving it is cheap */
	if (h->in_off > 0) {
		memmove(h->in, h->in + h->in_off, pending);
		h->in_off = 0;
		h->in_end = pending;
	}
	if (h->in_cap - h->in_end < READ_CHUNK) {
		/* bounded: pending is less than one FSNOTE_FRAME_MAX frame */
		size_t cap = h->in_cap ? h->in_cap : BUF_INITIAL;
		while (cap - h->in_end < READ_CHUNK)
			cap *= 2;
		uint8_t *p = realloc(h->in, cap);
		if (!p)
			return -ENOMEM;
		h->in = p;
		h->in_cap = cap;
	}
	for (;;) {
		ssize_t n = recv(h->sock, h->in + h->in_end, h->in_cap - h->in_end, MSG_DONTWAIT);
		if (n > 0) {
			h->in_end += (size_t)n;
			return (int)(n > INT_MAX ? INT_MAX : n);
		}
		if (n == 0) {
			set_dead(h, -ECONNRESET);
			return h->dead;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		set_dead(h, errno == ECONNRESET || errno == EPIPE ? -ECONNRESET : -errno);
		return h->dead;
	}
}

/* Cuts the next whole frame out of the buffer and decodes it into @rec
 * (which then points into the buffer until the next fill()).  Returns 1,
 * 0 when no whole frame is buffered, or -EBADMSG (the connection is then
 * dead: nothing after a bad frame can be trusted). */
static int next_frame(fsnote *h, struct codec_record *rec)
{
	size_t avail = h->in_end - h->in_off;
	uint32_t len;

	int r = codec_frame_peek(h->in + h->in_off, avail, FSNOTE_FRAME_MAX, &len);
	if (r == 0)
		return 0;
	if (r > 0)
		r = codec_decode(h->in + h->in_off, len, rec);
	if (r < 0) {
		h->in_off = h->in_end;
		set_dead(h, -EBADMSG);
		return -EBADMSG;
	}
	h->in_off += len;
	return 1;
}

/* The bytes an event with @ce's strings takes, header included. */
static size_t event_size(const struct codec_event *ce)
{
	size_t size = sizeof(fsnote_event) + ce->path_len + 1;
	if (ce->dest)
		size += ce->dest_len + 1;
	if (ce->rescan)
		size += ce->rescan_len + 1;
	return size;
}

/* Builds the event for @ce in @e, which has event_size(@ce) bytes. */
static void event_fill(fsnote_event *e, uint32_t sub_id, const struct codec_event *ce, bool borrowed)
{
	*e = (fsnote_event){
		.borrowed = borrowed,
		.sub_id = sub_id,
		.type = ce->type,
		.flags = ce->flags,
		.pid = ce->pid,
		.id = ce->id,
		.time_ns = ce->time_ns,
		.st = ce->st,
		.dest_st = ce->dest_st,
		.count = ce->count,
		.id_first = ce->id_first,
		.id_last = ce->id_last,
	};
	char *p = e->data;
	memcpy(p, ce->path, ce->path_len);
	p[ce->path_len] = '\0';
	e->path = p;
	e->path_len = ce->path_len;
	p += ce->path_len + 1;
	if (ce->dest) {
		memcpy(p, ce->dest, ce->dest_len);
		p[ce->dest_len] = '\0';
		e->dest = p;
		e->dest_len = ce->dest_len;
		p += ce->dest_len + 1;
	}
	if (ce->rescan) {
		memcpy(p, ce->rescan, ce->rescan_len);
		p[ce->rescan_len] = '\0';
		e->rescan = p;
		e->rescan_len = ce->rescan_len;
	}
}

/* The codec's view of a finished event, to copy it elsewhere. */
static void event_view(const fsnote_event *e, struct codec_event *ret)
{
	*ret = (struct codec_event){
		.id = e->id,
		.type = e->type,
		.flags = e->flags,
		.time_ns = e->time_ns,
		.pid = e->pid,
		.path = e->path,
		.path_len = e->path_len,
		.st = e->st,
		.dest = e->dest,
		.dest_len = e->dest_len,
		.dest_st = e->dest_st,
		.count = e->count,
		.id_first = e->id_first,
		.id_last = e->id_last,
		.rescan = e->rescan,
		.rescan_len = e->rescan_len,
	};
}

static int event_new(uint32_t sub_id, const struct codec_event *ce, fsnote_event **ret)
{
	fsnote_event *e = malloc(event_size(ce));
	if (!e)
		return -ENOMEM;
	event_fill(e, sub_id, ce, false);
	*ret = e;
	return 0;
}

static void queue_push(fsnote *h, fsnote_event *e)
{
	e->next = NULL;
	if (h->q_tail)
		h->q_tail->next = e;
	else
		h->q_head = e;
	h->q_tail = e;
}

static fsnote_event *queue_pop(fsnote *h)
{
	fsnote_event *e = h->q_head;
	if (e) {
		h->q_head = e->next;
		if (!h->q_head)
			h->q_tail = NULL;
		e->next = NULL;
	}
	return e;
}

/* Handles a record that is not a reply.  Returns 1 with *@ret_ce (whose
 * strings point into the input buffer) and *@ret_s for an event of a
 * subscription we know, or 0 when there is nothing to hand out. */
static int classify(fsnote *h, const struct codec_record *rec, struct codec_event *ret_ce,
		    struct sub_entry **ret_s)
{
	switch (rec->type) {
	case FSNOTE_REC_EVENT: {
		struct codec_event ce;
		if (codec_event_from_record(rec, &ce) < 0) {
			/* nothing after an inconsistent record can be trusted either */
			h->in_off = h->in_end;
			set_dead(h, -EBADMSG);
			return 0;
		}
		struct sub_entry *s = entry_by_daemon_id(h, ce.sub_id);
		if (!s)
			return 0; /* unsubscribed meanwhile: the caller asked not to hear more */
		*ret_ce = ce;
		*ret_s = s;
		return 1;
	}
	case FSNOTE_REC_SHUTDOWN:
		set_error_from(h, rec);
		set_dead(h, -ESHUTDOWN);
		return 0;
	case FSNOTE_REP_ERROR: {
		uint32_t req;
		if (codec_get_u32(rec, FSNOTE_ARG_REQ_ID, &req) < 0) {
			/* no request named: the daemon is closing this connection */
			set_error_from(h, rec);
			set_dead(h, -ECONNRESET);
		}
		return 0;
	}
	default:
		/* a reply to a request that was given up on, or a record type that
		 * is valid on the wire but not ours to receive: nothing to do */
		return 0;
	}
}

/* Notes that @ce of @s was kept: a resume continues after it, and the
 * daemon destroyed the subscription after a record that says it ended. */
static void received(struct sub_entry *s, const struct codec_event *ce)
{
	if (ce->id > s->resume_id)
		s->resume_id = ce->id;
	if (ce->flags & FSNOTE_FLAG_SUB_ENDED) {
		s->ended = true;
		s->daemon_id = 0;
	}
}

/* classify() into a separately allocated event.  Returns 1 with *@ret_ev,
 * 0 when there is nothing to hand out, or -ENOMEM. */
static int dispatch(fsnote *h, const struct codec_record *rec, fsnote_event **ret_ev)
{
	struct codec_event ce;
	struct sub_entry *s;

	if (classify(h, rec, &ce, &s) <= 0)
		return 0;
	fsnote_event *e;
	int r = event_new(s->id, &ce, &e);
	if (r < 0)
		return r;
	received(s, &ce);
	*ret_ev = e;
	return 1;
}

/* Waits until the socket is readable (or @events), up to @timeout_ms.
 * Returns the revents, 0 on timeout, or -errno. */
static int wait_sock(fsnote *h, short events, int timeout_ms)
{
	struct pollfd p = { .fd = h->sock, .events = events };
	int n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return -errno;
	return n == 0 ? 0 : (p.revents ? p.revents : POLLIN);
}

/* --- requests ------------------------------------------------------------- */

static uint32_t next_req(fsnote *h)
{
	if (++h->next_req_id == 0)
		h->next_req_id = 1;
	return h->next_req_id;
}

/* Reads whatever the socket has and queues the events in it, so that the
 * daemon never waits on us while we wait on it. */
static int pump(fsnote *h)
{
	struct codec_record rec;
	int r = fill(h);
	if (r < 0)
		return r;
	for (;;) {
		r = next_frame(h, &rec);
		if (r <= 0)
			return r;
		if ((rec.type & 0xff00) == 0x0200 && rec.type != FSNOTE_REP_ERROR)
			continue; /* not ours to keep: nothing is waiting for it yet */
		fsnote_event *e = NULL;
		r = dispatch(h, &rec, &e);
		if (r < 0)
			return r;
		if (e)
			queue_push(h, e);
	}
}

static int send_frame(fsnote *h, const uint8_t *buf, size_t len, int pass_fd)
{
	size_t done = 0;
	int64_t idle = now_ms() + REQUEST_IDLE_MS;

	while (done < len) {
		struct iovec iov = { .iov_base = (void *)(buf + done), .iov_len = len - done };
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int))];
		} control;
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

		if (pass_fd >= 0) {
			memset(&control, 0, sizeof(control));
			msg.msg_control = control.buf;
			msg.msg_controllen = sizeof(control.buf);
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
		}
		ssize_t n = sendmsg(h->sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			pass_fd = -1; /* it travelled with the first bytes */
			idle = now_ms() + REQUEST_IDLE_MS;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			set_dead(h, errno == EPIPE || errno == ECONNRESET ? -ECONNRESET : -errno);
			return h->dead;
		}
		int ev = wait_sock(h, POLLOUT | POLLIN, remaining(idle));
		if (ev == -EINTR)
			continue;
		if (ev < 0)
			return ev;
		if (ev == 0) {
			set_dead(h, -ETIMEDOUT);
			return -ETIMEDOUT;
		}
		if (ev & (POLLIN | POLLHUP | POLLERR)) {
			int r = pump(h);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* The hello could not be sent because the daemon had already closed: it
 * refuses a connection at accept (a per-uid limit, say) with an error
 * record that is still waiting in our receive queue.  Returns that
 * record's -errno (with its message in last_error), or 0 if there is none. */
static int refusal_of(fsnote *h)
{
	struct codec_record rec;
	int dead = h->dead, found = 0;

	h->dead = 0;
	for (int i = 0; i < 16 && !found; i++) {
		int r = next_frame(h, &rec);
		if (r > 0) {
			if (rec.type == FSNOTE_REP_ERROR && !codec_find(&rec, FSNOTE_ARG_REQ_ID)) {
				set_error_from(h, &rec);
				found = -reply_errno(&rec);
			}
			continue;
		}
		if (r < 0 || fill(h) <= 0)
			break;
	}
	h->dead = dead;
	return found;
}

/* Sends one request and waits for its reply, queueing the events that come
 * first.  @req_id 0 is the hello, whose reply carries none.  On success
 * *@rec is the reply of type @want, pointing into the input buffer (valid
 * until the next I/O on @h).  An error reply is returned as its -errno with
 * its message in last_error. */
static int request(fsnote *h, const uint8_t *frame, size_t len, int pass_fd, uint32_t req_id,
		   uint16_t want, struct codec_record *rec)
{
	int r;

	if (h->sock < 0)
		return -ENOTCONN;
	if (h->dead)
		return h->dead;
	h->last_error[0] = '\0';
	r = send_frame(h, frame, len, pass_fd);
	if (r == -ECONNRESET && req_id == 0) {
		int why = refusal_of(h);
		if (why < 0)
			r = why;
	}
	if (r < 0)
		goto out;

	int64_t idle = now_ms() + REQUEST_IDLE_MS;
	for (;;) {
		r = next_frame(h, rec);
		if (r < 0)
			goto out;
		if (r > 0) {
			bool is_reply = (rec->type & 0xff00) == 0x0200;
			uint32_t id = 0;
			bool has_id = codec_get_u32(rec, FSNOTE_ARG_REQ_ID, &id) == 0;
			if (is_reply && ((req_id && has_id && id == req_id) || (!req_id && !has_id))) {
				if (rec->type == FSNOTE_REP_ERROR) {
					set_error_from(h, rec);
					r = -reply_errno(rec);
					if (!req_id)
						set_dead(h, -ECONNRESET);
					goto out;
				}
				if (rec->type != want) {
					set_dead(h, -EBADMSG);
					r = -EBADMSG;
					goto out;
				}
				r = 0;
				goto out;
			}
			if (rec->type == FSNOTE_REP_ERROR && !has_id) {
				/* the daemon is closing the connection: say why */
				set_error_from(h, rec);
				r = -reply_errno(rec);
				set_dead(h, -ECONNRESET);
				goto out;
			}
			if (is_reply)
				continue;
			fsnote_event *e = NULL;
			r = dispatch(h, rec, &e);
			if (r < 0)
				goto out;
			if (e)
				queue_push(h, e);
			continue;
		}
		if (h->dead) {
			r = h->dead;
			goto out;
		}
		r = fill(h);
		if (r < 0)
			goto out;
		if (r > 0) {
			idle = now_ms() + REQUEST_IDLE_MS;
			continue;
		}
		r = wait_sock(h, POLLIN, remaining(idle));
		if (r == 0) {
			set_dead(h, -ETIMEDOUT);
			r = -ETIMEDOUT;
			goto out;
		}
		if (r < 0 && r != -EINTR)
			goto out;
	}
out:
	update_ready(h);
	return r;
}

/* --- connection --------------------------------------------------------- */

static int open_socket(const char *path, int *ret)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, len);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* a blocking connect: a full backlog waits instead of failing with EAGAIN */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		return -e;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	*ret = fd;
	return 0;
}

static void drop_connection(fsnote *h)
{
	if (h->sock >= 0) {
		(void)epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->sock, NULL);
		close(h->sock);
		h->sock = -1;
	}
	h->in_off = h->in_end = 0;
	h->dead = 0;
	for (size_t i = 0; i < h->n_subs; i++)
		h->subs[i]->daemon_id = 0;
}

/* Connects and says hello; on failure the handle is left without a
 * connection. */
static int establish(fsnote *h)
{
	uint8_t buf[512];
	struct codec_writer w;
	struct codec_record rec;
	const char *name;
	size_t name_len;
	int fd = -1;

	int r = open_socket(h->socket_path, &fd);
	if (r < 0)
		return r;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	h->sock = fd;
	h->dead = 0;
	h->in_off = h->in_end = 0;

	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_HELLO);
	codec_put_u32(&w, FSNOTE_ARG_VERSION, FSNOTE_PROTOCOL_VERSION);
	name = program_invocation_short_name;
	name_len = strnlen(name, FSNOTE_NAME_MAX - 1);
	if (name_len > 0)
		codec_put_string(&w, FSNOTE_ARG_CLIENT_NAME, name, name_len);
	int n = codec_writer_finish(&w);
	r = n < 0 ? n : request(h, buf, (size_t)n, -1, 0, FSNOTE_REP_HELLO, &rec);
	if (r == 0) {
		uint32_t version = 0;
		uint64_t features = 0;
		const char *s;
		size_t len;
		(void)codec_get_u32(&rec, FSNOTE_ARG_VERSION, &version);
		(void)codec_get_u64(&rec, FSNOTE_ARG_FEATURES, &features);
		if (version != FSNOTE_PROTOCOL_VERSION) {
			r = -EPROTONOSUPPORT;
		} else {
			char *backend = codec_get_string(&rec, FSNOTE_ARG_BACKEND, &s, &len) == 0
						? strndup(s, len) : strdup("");
			char *ver = codec_get_string(&rec, FSNOTE_ARG_SERVER_VERSION, &s, &len) == 0
					    ? strndup(s, len) : strdup("");
			if (!backend || !ver) {
				free(backend);
				free(ver);
				r = -ENOMEM;
			} else {
				free(h->backend);
				free(h->server_version);
				h->backend = backend;
				h->server_version = ver;
				h->features = features;
			}
		}
	}
	if (r < 0) {
		drop_connection(h);
		/* a refusal for a limit (EUSERS on the wire) is documented as EDQUOT */
		if (r == -EUSERS)
			r = -EDQUOT;
		return r;
	}
	update_ready(h);
	return 0;
}

static fsnote *handle_free(fsnote *h)
{
	if (!h)
		return NULL;
	if (h->sock >= 0)
		close(h->sock);
	if (h->epfd >= 0)
		close(h->epfd);
	if (h->evfd >= 0)
		close(h->evfd);
	while (h->q_head)
		free(queue_pop(h));
	for (size_t i = 0; i < h->n_subs; i++)
		entry_free(h->subs[i]);
	free(h->subs);
	free(h->in);
	free(h->slab);
	free(h->socket_path);
	free(h->backend);
	free(h->server_version);
	free(h);
	return NULL;
}

int fsnote_connect(const char *socket_path, fsnote **ret)
{
	if (!ret)
		return -EINVAL;
	if (!socket_path || !*socket_path) {
		socket_path = secure_getenv("FSNOTE_SOCKET");
		if (!socket_path || !*socket_path)
			socket_path = FSNOTE_DEFAULT_SOCKET;
	}

	fsnote *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->sock = h->epfd = h->evfd = -1;
	h->socket_path = strdup(socket_path);
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!h->socket_path || h->epfd < 0 || h->evfd < 0) {
		int r = h->socket_path ? -errno : -ENOMEM;
		handle_free(h);
		return r;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = h->evfd };
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->evfd, &ev) < 0) {
		int r = -errno;
		handle_free(h);
		return r;
	}
	int r = establish(h);
	if (r < 0) {
		handle_free(h);
		return r;
	}
	*ret = h;
	return 0;
}

fsnote *fsnote_close(fsnote *h)
{
	return handle_free(h);
}

int fsnote_fd(const fsnote *h)
{
	return h ? h->epfd : -EINVAL;
}

const char *fsnote_socket_path(const fsnote *h)
{
	return h ? h->socket_path : NULL;
}

uint64_t fsnote_features(const fsnote *h)
{
	return h ? h->features : 0;
}

const char *fsnote_backend(const fsnote *h)
{
	return h && h->backend ? h->backend : "";
}

const char *fsnote_server_version(const fsnote *h)
{
	return h && h->server_version ? h->server_version : "";
}

const char *fsnote_last_error(const fsnote *h)
{
	return h ? h->last_error : "";
}

/* --- subscription options ---------------------------------------------- */

int fsnote_sub_opts_new(fsnote_sub_opts **ret)
{
	if (!ret)
		return -EINVAL;
	fsnote_sub_opts *o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;
}

fsnote_sub_opts *fsnote_sub_opts_free(fsnote_sub_opts *o)
{
	if (o) {
		opts_clear(o);
		free(o);
	}
	return NULL;
}

int fsnote_sub_opts_set_children(fsnote_sub_opts *o, bool children)
{
	if (!o)
		return -EINVAL;
	if (children)
		o->sub_flags |= FSNOTE_SUB_CHILDREN;
	else
		o->sub_flags &= ~(uint32_t)FSNOTE_SUB_CHILDREN;
	return 0;
}

int fsnote_sub_opts_set_system(fsnote_sub_opts *o, bool system)
{
	if (!o)
		return -EINVAL;
	if (system)
		o->sub_flags |= FSNOTE_SUB_SYSTEM;
	else
		o->sub_flags &= ~(uint32_t)FSNOTE_SUB_SYSTEM;
	return 0;
}

int fsnote_sub_opts_set_events(fsnote_sub_opts *o, uint64_t mask)
{
	if (!o || mask == 0 || (mask & ~FSNOTE_EV_ALL_MASK))
		return -EINVAL;
	o->mask = mask;
	o->have_mask = true;
	return 0;
}

int fsnote_sub_opts_set_dev_filter(fsnote_sub_opts *o, uint64_t dev)
{
	if (!o)
		return -EINVAL;
	o->dev = dev;
	o->have_dev = true;
	return 0;
}

int fsnote_sub_opts_set_ring_depth(fsnote_sub_opts *o, uint32_t depth)
{
	if (!o || depth == 0)
		return -EINVAL;
	o->depth = depth;
	o->have_depth = true;
	return 0;
}

int fsnote_sub_opts_set_latency_us(fsnote_sub_opts *o, uint32_t latency_us)
{
	if (!o)
		return -EINVAL;
	o->latency_us = latency_us;
	o->have_latency = true;
	return 0;
}

int fsnote_sub_opts_set_batch(fsnote_sub_opts *o, uint32_t batch)
{
	if (!o || batch == 0)
		return -EINVAL;
	o->batch = batch;
	o->have_batch = true;
	return 0;
}

int fsnote_sub_opts_set_since(fsnote_sub_opts *o, uint64_t id)
{
	if (!o)
		return -EINVAL;
	o->since = id;
	o->have_since = true;
	return 0;
}

int fsnote_sub_opts_set_until(fsnote_sub_opts *o, uint64_t id)
{
	if (!o || id == 0)
		return -EINVAL;
	o->until = id;
	o->have_until = true;
	return 0;
}

int fsnote_sub_opts_set_fields(fsnote_sub_opts *o, uint32_t fields)
{
	if (!o || (fields & ~(uint32_t)FSNOTE_FIELDS_ALL))
		return -EINVAL;
	o->fields = fields;
	o->have_fields = true;
	return 0;
}

int fsnote_sub_opts_add_exclude(fsnote_sub_opts *o, const char *pattern)
{
	if (!o || !pattern || !*pattern)
		return -EINVAL;
	if (strlen(pattern) >= FSNOTE_PATTERN_MAX)
		return -ENAMETOOLONG;
	if (o->n_excludes >= FSNOTE_EXCLUDES_MAX)
		return -E2BIG;
	char *p = strdup(pattern);
	if (!p)
		return -ENOMEM;
	o->excludes[o->n_excludes++] = p;
	return 0;
}

/* --- subscribe ------------------------------------------------------------ */

/* @label: the path the directory was opened by, in this process's view,
 * which the daemon puts in front of what it reports below the directory
 * (it is never trusted for access), or NULL. */
static int encode_subscribe(const struct fsnote_sub_opts *o, const char *label, uint32_t req_id,
			    bool has_since, uint64_t since, uint8_t *buf, size_t cap)
{
	struct codec_writer w;

	codec_writer_init(&w, buf, cap, FSNOTE_REQ_SUBSCRIBE);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	codec_put_u32(&w, FSNOTE_ARG_SUB_FLAGS, o->sub_flags);
	if (label && label[0] == '/' && strlen(label) < FSNOTE_PATH_MAX)
		codec_put_cstring(&w, FSNOTE_ARG_PATH, label);
	if (o->have_mask)
		codec_put_u64(&w, FSNOTE_ARG_EVENT_MASK, o->mask);
	if (o->have_dev)
		codec_put_u64(&w, FSNOTE_ARG_DEV_FILTER, o->dev);
	if (o->have_depth)
		codec_put_u32(&w, FSNOTE_ARG_RING_DEPTH, o->depth);
	if (o->have_latency)
		codec_put_u32(&w, FSNOTE_ARG_LATENCY_US, o->latency_us);
	if (o->have_batch)
		codec_put_u32(&w, FSNOTE_ARG_BATCH, o->batch);
	if (has_since)
		codec_put_u64(&w, FSNOTE_ARG_SINCE_ID, since);
	if (has_since && o->have_until)
		codec_put_u64(&w, FSNOTE_ARG_UNTIL_ID, o->until);
	if (o->have_fields)
		codec_put_u32(&w, FSNOTE_ARG_FIELDS, o->fields);
	for (size_t i = 0; i < o->n_excludes; i++)
		codec_put_cstring(&w, FSNOTE_ARG_EXCLUDE, o->excludes[i]);
	return codec_writer_finish(&w);
}

/* Sends a subscribe request for @e (with @dirfd unless it is a system
 * subscription) and records the confirmation in @e. */
static int subscribe_entry(fsnote *h, struct sub_entry *e, int dirfd, bool has_since, uint64_t since)
{
	uint8_t buf[SUB_REQUEST_MAX];
	struct codec_record rec;

	if (e->opts.have_fields && !(h->features & FSNOTE_FEATURE_FIELDS)) {
		/* the daemon would refuse the argument as malformed and close */
		static const char msg[] = "fsnoted does not support choosing event fields";
		set_error(h, msg, sizeof(msg) - 1);
		return -EOPNOTSUPP;
	}
	uint32_t req_id = next_req(h);
	int n = encode_subscribe(&e->opts, e->path, req_id, has_since, since, buf, sizeof(buf));
	if (n < 0)
		return n;
	int r = request(h, buf, (size_t)n, dirfd, req_id, FSNOTE_REP_SUBSCRIBED, &rec);
	if (r < 0)
		return r;

	uint32_t daemon_id = 0, flags = 0;
	uint64_t start = 0;
	const char *s;
	size_t len;
	(void)codec_get_u32(&rec, FSNOTE_ARG_SUB_ID, &daemon_id);
	(void)codec_get_u64(&rec, FSNOTE_ARG_ID, &start);
	(void)codec_get_u32(&rec, FSNOTE_ARG_FLAGS, &flags);
	char *root = codec_get_string(&rec, FSNOTE_ARG_PATH, &s, &len) == 0 ? strndup(s, len) : NULL;
	char *warning = codec_get_string(&rec, FSNOTE_ARG_MESSAGE, &s, &len) == 0 ? strndup(s, len)
										   : NULL;
	char *backend = codec_get_string(&rec, FSNOTE_ARG_BACKEND, &s, &len) == 0 ? strndup(s, len)
										   : strdup_or_null(h->backend);
	/* the daemon has the subscription now: keep the mapping even without
	 * the decorations, which only cost their accessors */
	e->daemon_id = daemon_id;
	e->start_id = start;
	e->flags = flags;
	free(e->root);
	free(e->warning);
	free(e->backend);
	e->root = root;
	e->warning = warning;
	e->backend = backend;
	return 0;
}

static int add_entry(fsnote *h, const char *path, const fsnote_sub_opts *o, int dirfd,
		     uint32_t *ret_sub_id)
{
	static const fsnote_sub_opts defaults;
	struct sub_entry *e;
	int r;

	if (!o)
		o = &defaults;
	if (h->n_subs == h->cap_subs) {
		size_t cap = h->cap_subs ? h->cap_subs * 2 : 8;
		struct sub_entry **p = realloc(h->subs, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		h->subs = p;
		h->cap_subs = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	r = opts_copy(o, &e->opts);
	if (r < 0) {
		free(e);
		return r;
	}
	e->opts.have_since = false;
	if (path && !(e->path = strdup(path))) {
		entry_free(e);
		return -ENOMEM;
	}
	r = subscribe_entry(h, e, dirfd, o->have_since, o->since);
	if (r < 0) {
		entry_free(e);
		return r;
	}
	/* a caller's "since" is where a resume continues from until events come */
	e->resume_id = o->have_since && o->since < e->start_id ? o->since : e->start_id;
	if (++h->next_sub_id == 0)
		h->next_sub_id = 1;
	e->id = h->next_sub_id;
	h->subs[h->n_subs++] = e;
	*ret_sub_id = e->id;
	return 0;
}

/* The absolute path of an open directory, as the kernel names it. */
static char *fd_path(int fd)
{
	char proc[64], buf[PATH_MAX];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, buf, sizeof(buf) - 1);
	if (n <= 0 || buf[0] != '/')
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

int fsnote_subscribe(fsnote *h, const char *path, const fsnote_sub_opts *o, uint32_t *ret_sub_id)
{
	bool system = o && (o->sub_flags & FSNOTE_SUB_SYSTEM);

	if (!h || !ret_sub_id || system != !path || (path && !*path))
		return -EINVAL;
	if (system)
		return add_entry(h, NULL, o, -1, ret_sub_id);

	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* a relative path would mean something else after a chdir(): resume by
	 * the absolute name the directory had now */
	char *abs = path[0] == '/' ? strdup(path) : fd_path(fd);
	int r = abs ? add_entry(h, abs, o, fd, ret_sub_id) : -ENOMEM;
	free(abs);
	close(fd);
	return r;
}

int fsnote_subscribe_fd(fsnote *h, int dirfd, const fsnote_sub_opts *o, uint32_t *ret_sub_id)
{
	if (!h || !ret_sub_id || dirfd < 0 || (o && (o->sub_flags & FSNOTE_SUB_SYSTEM)))
		return -EINVAL;
	/* no descriptor is kept (it would pin the mount): remember the name */
	char *abs = fd_path(dirfd);
	if (!abs)
		return errno == ENOMEM ? -ENOMEM : -EBADF;
	int r = add_entry(h, abs, o, dirfd, ret_sub_id);
	free(abs);
	return r;
}

static void purge_queue(fsnote *h, uint32_t sub_id)
{
	fsnote_event **pp = &h->q_head;
	h->q_tail = NULL;
	while (*pp) {
		fsnote_event *e = *pp;
		if (e->sub_id == sub_id) {
			*pp = e->next;
			free(e);
			continue;
		}
		h->q_tail = e;
		pp = &e->next;
	}
}

int fsnote_unsubscribe(fsnote *h, uint32_t sub_id)
{
	struct sub_entry *e = entry_by_id(h, sub_id);
	uint8_t buf[64];
	struct codec_writer w;
	struct codec_record rec;

	if (!e)
		return h ? -ENOENT : -EINVAL;
	if (e->daemon_id && h->sock >= 0 && !h->dead) {
		uint32_t req_id = next_req(h);
		codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_UNSUBSCRIBE);
		codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
		codec_put_u32(&w, FSNOTE_ARG_SUB_ID, e->daemon_id);
		int n = codec_writer_finish(&w);
		int r = n < 0 ? n : request(h, buf, (size_t)n, -1, req_id, FSNOTE_REP_UNSUBSCRIBED, &rec);
		/* ENOENT: the daemon ended it first; a lost connection ended it too */
		if (r < 0 && r != -ENOENT && !h->dead)
			return r;
	}
	/* whatever is still queued for it was asked not to be heard any more */
	purge_queue(h, e->id);
	entry_remove(h, e);
	update_ready(h);
	return 0;
}

const char *fsnote_sub_root(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->root : NULL;
}

uint32_t fsnote_sub_flags(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->flags : 0;
}

const char *fsnote_sub_warning(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->warning : NULL;
}

const char *fsnote_sub_backend(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->backend : NULL;
}

uint64_t fsnote_sub_start_id(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->start_id : 0;
}

uint64_t fsnote_sub_last_id(const fsnote *h, uint32_t sub_id)
{
	const struct sub_entry *e = entry_by_id(h, sub_id);
	return e ? e->last_id : 0;
}

/* --- events ----------------------------------------------------------------- */

static void handed_out(fsnote *h, fsnote_event *e)
{
	struct sub_entry *s = entry_by_id(h, e->sub_id);
	if (s && e->id > s->last_id)
		s->last_id = e->id;
}

/* Nothing decoded is left to hand out: reads more from the socket, waiting
 * until @deadline unless @have (events are in hand already).  Returns 1
 * when there may be more to decode, 0 when @have and nothing more is here,
 * or -errno (the connection's end, -EAGAIN or -ETIMEDOUT). */
static int read_more(fsnote *h, int64_t deadline, int timeout_ms, bool have)
{
	if (h->dead)
		return h->dead;
	if (h->sock < 0)
		return -ENOTCONN;
	int r = fill(h);
	if (r < 0 && !h->dead)
		return r;
	if (r != 0)
		return 1;
	if (have)
		return 0;
	r = wait_sock(h, POLLIN, remaining(deadline));
	if (r < 0)
		return r;
	if (r == 0)
		return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
	return 1;
}

int fsnote_read(fsnote *h, int timeout_ms, fsnote_event **ret)
{
	struct codec_record rec;
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r;

	if (!h || !ret)
		return -EINVAL;
	for (;;) {
		fsnote_event *e = queue_pop(h);
		if (e) {
			r = 0;
			handed_out(h, e);
			*ret = e;
			goto out;
		}
		/* the hot path: one decode and one allocation per buffered frame */
		r = next_frame(h, &rec);
		if (r > 0) {
			if ((rec.type & 0xff00) == 0x0200 && rec.type != FSNOTE_REP_ERROR)
				continue; /* the reply of a request given up on */
			r = dispatch(h, &rec, &e);
			if (r < 0)
				goto out;
			if (e) {
				r = 0;
				handed_out(h, e);
				*ret = e;
				goto out;
			}
			continue;
		}
		r = read_more(h, deadline, timeout_ms, false);
		if (r < 0)
			goto out;
	}
out:
	update_ready(h);
	return r;
}

/* --- batches ------------------------------------------------------------------ */

static size_t slab_round(size_t size)
{
	return (size + EVENT_ALIGN - 1) & ~(size_t)(EVENT_ALIGN - 1);
}

/* Starts a batch: the previous one's events are given up.  A batch that had
 * to stop early for room doubles the slab now, while nothing points into
 * it; when that allocation fails the old slab simply serves again. */
static void slab_reset(fsnote *h)
{
	h->slab_used = 0;
	if (h->slab_short && h->slab_cap < SLAB_MAX) {
		uint8_t *p = malloc(h->slab_cap * 2);
		if (p) {
			free(h->slab);
			h->slab = p;
			h->slab_cap *= 2;
		}
	}
	h->slab_short = false;
}

/* Makes sure @size more bytes fit.  The slab may move only while the batch
 * (@first) holds nothing yet; after that a realloc would leave the events
 * already handed out dangling, so the batch stops here instead.  Returns
 * 0, -ENOSPC (stop the batch) or -ENOMEM. */
static int slab_room(fsnote *h, size_t size, bool first)
{
	size = slab_round(size);
	if (h->slab_cap - h->slab_used >= size)
		return 0;
	if (!first) {
		h->slab_short = true;
		return -ENOSPC;
	}
	size_t cap = h->slab_cap ? h->slab_cap : SLAB_INITIAL;
	while (cap < size)
		cap *= 2;
	uint8_t *p = malloc(cap);
	if (!p)
		return -ENOMEM;
	free(h->slab);
	h->slab = p;
	h->slab_cap = cap;
	h->slab_used = 0;
	return 0;
}

/* @size bytes that slab_room() made room for. */
static fsnote_event *slab_take(fsnote *h, size_t size)
{
	fsnote_event *e = (fsnote_event *)(void *)(h->slab + h->slab_used);
	h->slab_used += slab_round(size);
	return e;
}

/* The next queued event (older than anything in the input buffer) into the
 * slab.  Returns 1 with *@ret, or what slab_room() returns. */
static int batch_queued(fsnote *h, bool first, const fsnote_event **ret)
{
	struct codec_event ce;

	event_view(h->q_head, &ce);
	size_t size = event_size(&ce);
	int r = slab_room(h, size, first);
	if (r < 0)
		return r;
	fsnote_event *q = queue_pop(h);
	fsnote_event *e = slab_take(h, size);
	event_fill(e, q->sub_id, &ce, true);
	free(q);
	handed_out(h, e);
	*ret = e;
	return 1;
}

/* The next buffered frame into the slab, if it is an event to hand out.
 * Returns 1 with *@ret, 0 for a frame that was not one, -EAGAIN when no
 * whole frame is buffered, -EBADMSG, or what slab_room() returns. */
static int batch_frame(fsnote *h, bool first, const fsnote_event **ret)
{
	struct codec_record rec;
	struct codec_event ce;
	struct sub_entry *s;
	uint32_t len;

	/* the frame bounds what its event takes (each string and its NUL is
	 * inside it), so room is made before anything is consumed */
	int r = codec_frame_peek(h->in + h->in_off, h->in_end - h->in_off, FSNOTE_FRAME_MAX, &len);
	if (r > 0) {
		r = slab_room(h, sizeof(fsnote_event) + len, first);
		if (r < 0)
			return r;
	}
	r = next_frame(h, &rec);
	if (r <= 0)
		return r < 0 ? r : -EAGAIN;
	if ((rec.type & 0xff00) == 0x0200 && rec.type != FSNOTE_REP_ERROR)
		return 0; /* the reply of a request given up on */
	if (classify(h, &rec, &ce, &s) <= 0)
		return 0;
	size_t size = event_size(&ce);
	if (slab_round(size) > h->slab_cap - h->slab_used) {
		/* cannot happen for a frame the codec accepted; never overrun */
		h->in_off = h->in_end;
		set_dead(h, -EBADMSG);
		return -EBADMSG;
	}
	fsnote_event *e = slab_take(h, size);
	event_fill(e, s->id, &ce, true);
	received(s, &ce);
	handed_out(h, e);
	*ret = e;
	return 1;
}

int fsnote_read_batch(fsnote *h, int timeout_ms, const fsnote_event **events, size_t max)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	size_t n = 0;
	int r;

	if (!h || !events || max == 0)
		return -EINVAL;
	if (max > INT_MAX)
		max = INT_MAX;
	slab_reset(h);
	for (;;) {
		while (n < max && h->q_head) {
			r = batch_queued(h, n == 0, &events[n]);
			if (r < 0)
				goto out;
			n++;
		}
		while (n < max) {
			r = batch_frame(h, n == 0, &events[n]);
			if (r == -EAGAIN)
				break;
			if (r < 0)
				goto out;
			n += (size_t)r;
		}
		if (n == max)
			break;
		/* a dead connection is reported once what came before it is
		 * out; with events in hand, nothing more is waited for */
		r = read_more(h, deadline, timeout_ms, n > 0);
		if (r < 0)
			goto out;
		if (r == 0)
			break;
	}
out:
	update_ready(h);
	return n > 0 ? (int)n : r;
}

/* Ends @e locally with a record that says so, so that a subscription that
 * could not be restored is never lost silently. */
static int end_entry(fsnote *h, struct sub_entry *e)
{
	const char *path = e->path ? e->path : "/";
	struct codec_event ce = {
		.sub_id = 0,
		.id = e->resume_id,
		.type = FSNOTE_EV_DROPPED,
		.flags = FSNOTE_FLAG_DROPPED | FSNOTE_FLAG_MUST_RESCAN | FSNOTE_FLAG_SUB_ENDED,
		.time_ns = now_real_ns(),
		.path = path,
		.path_len = strlen(path),
		.rescan = path,
		.rescan_len = strlen(path),
		.id_first = e->resume_id + 1,
	};
	fsnote_event *ev;
	int r = event_new(e->id, &ce, &ev);
	if (r < 0)
		return r;
	e->ended = true;
	e->daemon_id = 0;
	queue_push(h, ev);
	return 0;
}

static bool conn_error(int r)
{
	return r == -ECONNRESET || r == -ESHUTDOWN || r == -ENOTCONN || r == -EPIPE ||
	       r == -ETIMEDOUT || r == -EBADMSG;
}

/* Subscribes every live entry again, each continuing after the newest
 * event it received.  Returns 0 or a connection-level error. */
static int resubscribe_all(fsnote *h)
{
	for (size_t i = 0; i < h->n_subs; i++) {
		struct sub_entry *e = h->subs[i];
		int fd = -1, r;

		if (e->ended)
			continue;
		if (!(e->opts.sub_flags & FSNOTE_SUB_SYSTEM)) {
			fd = e->path ? open(e->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
			if (fd < 0) {
				r = end_entry(h, e);
				if (r < 0)
					return r;
				continue;
			}
		}
		r = subscribe_entry(h, e, fd, true, e->resume_id);
		if (fd >= 0)
			close(fd);
		if (r < 0 && (conn_error(r) || h->dead))
			return h->dead ? h->dead : r;
		if (r < 0) {
			/* refused now (permissions changed, limit ...): say it ended */
			r = end_entry(h, e);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static bool retryable(int r)
{
	return conn_error(r) || r == -ENOENT || r == -ECONNREFUSED || r == -EAGAIN || r == -EDQUOT ||
	       r == -EUSERS || r == -EINTR;
}

int fsnote_reconnect(fsnote *h, int timeout_ms)
{
	struct codec_record rec;
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int r;

	if (!h)
		return -EINVAL;
	/* what arrived whole on the old connection is still the caller's */
	while (next_frame(h, &rec) > 0) {
		if ((rec.type & 0xff00) == 0x0200 && rec.type != FSNOTE_REP_ERROR)
			continue;
		fsnote_event *e = NULL;
		if (dispatch(h, &rec, &e) < 0)
			return -ENOMEM;
		if (e)
			queue_push(h, e);
	}
	for (;;) {
		drop_connection(h);
		r = establish(h);
		if (r == 0) {
			r = resubscribe_all(h);
			if (r == 0)
				break;
		}
		if (!retryable(r) || (deadline >= 0 && now_ms() >= deadline))
			break;
		int pause = remaining(deadline);
		if (pause < 0 || pause > RECONNECT_PAUSE_MS)
			pause = RECONNECT_PAUSE_MS;
		struct timespec ts = { 0, (long)pause * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (r < 0) {
		/* reads say "lost" until an attempt succeeds */
		drop_connection(h);
		h->dead = -ECONNRESET;
	}
	update_ready(h);
	return r;
}

fsnote_event *fsnote_event_free(fsnote_event *e)
{
	/* a batch's events belong to the handle's slab */
	if (e && !e->borrowed)
		free(e);
	return NULL;
}

uint32_t fsnote_event_sub_id(const fsnote_event *e)
{
	return e->sub_id;
}

uint64_t fsnote_event_id(const fsnote_event *e)
{
	return e->id;
}

uint32_t fsnote_event_type(const fsnote_event *e)
{
	return e->type;
}

uint32_t fsnote_event_flags(const fsnote_event *e)
{
	return e->flags;
}

bool fsnote_event_is_dir(const fsnote_event *e)
{
	return e->flags & FSNOTE_FLAG_IS_DIR;
}

uint64_t fsnote_event_time_ns(const fsnote_event *e)
{
	return e->time_ns;
}

uint32_t fsnote_event_pid(const fsnote_event *e)
{
	return e->pid;
}

const char *fsnote_event_path(const fsnote_event *e, size_t *ret_len)
{
	if (ret_len)
		*ret_len = e->path_len;
	return e->path;
}

const char *fsnote_event_dest(const fsnote_event *e, size_t *ret_len)
{
	if (e->dest && ret_len)
		*ret_len = e->dest_len;
	return e->dest;
}

static const struct codec_stat *side(const fsnote_event *e, bool dest)
{
	return dest ? &e->dest_st : &e->st;
}

int fsnote_event_dev(const fsnote_event *e, bool dest, uint64_t *ret)
{
	const struct codec_stat *st = side(e, dest);
	if (!st->have_dev)
		return -ENODATA;
	*ret = st->dev;
	return 0;
}

int fsnote_event_ino(const fsnote_event *e, bool dest, uint64_t *ret)
{
	const struct codec_stat *st = side(e, dest);
	if (!st->have_ino)
		return -ENODATA;
	*ret = st->ino;
	return 0;
}

int fsnote_event_mode(const fsnote_event *e, bool dest, uint32_t *ret)
{
	const struct codec_stat *st = side(e, dest);
	if (!st->have_mode)
		return -ENODATA;
	*ret = st->mode;
	return 0;
}

int fsnote_event_uid(const fsnote_event *e, bool dest, uint32_t *ret)
{
	const struct codec_stat *st = side(e, dest);
	if (!st->have_uid)
		return -ENODATA;
	*ret = st->uid;
	return 0;
}

int fsnote_event_gid(const fsnote_event *e, bool dest, uint32_t *ret)
{
	const struct codec_stat *st = side(e, dest);
	if (!st->have_gid)
		return -ENODATA;
	*ret = st->gid;
	return 0;
}

uint64_t fsnote_event_count(const fsnote_event *e)
{
	return e->count;
}

uint64_t fsnote_event_id_first(const fsnote_event *e)
{
	return e->id_first;
}

uint64_t fsnote_event_id_last(const fsnote_event *e)
{
	return e->id_last;
}

const char *fsnote_event_rescan(const fsnote_event *e, size_t *ret_len)
{
	if (e->rescan && ret_len)
		*ret_len = e->rescan_len;
	return e->rescan;
}

/* The record is checked by the same decoder that reads the socket, so an
 * event made here is indistinguishable from one fsnote_read() returned. */
int fsnote_event_decode(const void *frame, size_t len, fsnote_event **ret)
{
	struct codec_record rec;
	struct codec_event ce;
	uint32_t flen;

	if (!frame || !ret)
		return -EINVAL;
	if (codec_frame_peek(frame, len, FSNOTE_FRAME_MAX, &flen) != 1 || flen != len ||
	    codec_decode(frame, len, &rec) < 0 || codec_event_from_record(&rec, &ce) < 0)
		return -EBADMSG;
	return event_new(ce.sub_id, &ce, ret);
}

const char *fsnote_type_name(uint32_t type)
{
	if (type == 0 || type > FSNOTE_EV_MAX)
		return NULL;
	return codec_event_type_name(type);
}

uint32_t fsnote_type_from_name(const char *name)
{
	return name ? codec_event_type_from_name(name, strlen(name)) : 0;
}

const char *fsnote_flag_name(unsigned bit)
{
	return codec_flag_name(bit);
}

/* --- other requests ---------------------------------------------------------- */

static int request_id(fsnote *h, uint16_t type, uint16_t want, bool with_sub, uint32_t daemon_sub,
		      bool with_time, uint64_t time_ns, uint64_t *ret_id)
{
	uint8_t buf[128];
	struct codec_writer w;
	struct codec_record rec;
	uint32_t req_id = next_req(h);
	uint64_t id = 0;

	codec_writer_init(&w, buf, sizeof(buf), type);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	if (with_sub)
		codec_put_u32(&w, FSNOTE_ARG_SUB_ID, daemon_sub);
	if (with_time)
		codec_put_u64(&w, FSNOTE_ARG_TIME, time_ns);
	int n = codec_writer_finish(&w);
	if (n < 0)
		return n;
	int r = request(h, buf, (size_t)n, -1, req_id, want, &rec);
	if (r < 0)
		return r;
	(void)codec_get_u64(&rec, FSNOTE_ARG_ID, &id);
	*ret_id = id;
	return 0;
}

int fsnote_current_id(fsnote *h, uint64_t *ret_id)
{
	if (!h || !ret_id)
		return -EINVAL;
	return request_id(h, FSNOTE_REQ_CURRENT_ID, FSNOTE_REP_CURRENT_ID, false, 0, false, 0, ret_id);
}

int fsnote_id_at_time(fsnote *h, uint64_t time_ns, uint64_t *ret_id)
{
	if (!h || !ret_id)
		return -EINVAL;
	return request_id(h, FSNOTE_REQ_CURRENT_ID, FSNOTE_REP_CURRENT_ID, false, 0, true, time_ns,
			  ret_id);
}

int fsnote_flush(fsnote *h, uint32_t sub_id, uint64_t *ret_id)
{
	struct sub_entry *e = entry_by_id(h, sub_id);

	if (!h || !ret_id)
		return -EINVAL;
	if (!e || e->daemon_id == 0)
		return h->dead ? h->dead : -ENOENT;
	return request_id(h, FSNOTE_REQ_FLUSH, FSNOTE_REP_FLUSHED, true, e->daemon_id, false, 0,
			  ret_id);
}

int fsnote_status(fsnote *h, char **ret_json)
{
	uint8_t buf[64];
	struct codec_writer w;
	struct codec_record rec;
	const char *json;
	size_t len;

	if (!h || !ret_json)
		return -EINVAL;
	uint32_t req_id = next_req(h);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_STATUS);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	int n = codec_writer_finish(&w);
	if (n < 0)
		return n;
	int r = request(h, buf, (size_t)n, -1, req_id, FSNOTE_REP_STATUS, &rec);
	if (r < 0)
		return r;
	if (codec_get_string(&rec, FSNOTE_ARG_JSON, &json, &len) < 0)
		return -EBADMSG;
	char *copy = strndup(json, len);
	if (!copy)
		return -ENOMEM;
	*ret_json = copy;
	return 0;
}

int fsnote_inject(fsnote *h, uint32_t type, const char *path, const char *dest, uint32_t flags,
		  uint64_t *ret_id)
{
	uint8_t buf[2 * FSNOTE_PATH_MAX + 256];
	struct codec_writer w;
	struct codec_record rec;
	uint64_t id = 0;

	if (!h || !ret_id || !path || type == 0 || type > FSNOTE_EV_MAX ||
	    (flags & ~(uint32_t)FSNOTE_FLAG_IS_DIR))
		return -EINVAL;
	if (strlen(path) >= FSNOTE_PATH_MAX || (dest && strlen(dest) >= FSNOTE_PATH_MAX))
		return -ENAMETOOLONG;
	uint32_t req_id = next_req(h);
	codec_writer_init(&w, buf, sizeof(buf), FSNOTE_REQ_INJECT);
	codec_put_u32(&w, FSNOTE_ARG_REQ_ID, req_id);
	codec_put_u32(&w, FSNOTE_ARG_EVENT_TYPE, type);
	codec_put_cstring(&w, FSNOTE_ARG_PATH, path);
	if (flags)
		codec_put_u32(&w, FSNOTE_ARG_FLAGS, flags);
	if (dest)
		codec_put_cstring(&w, FSNOTE_ARG_DEST_PATH, dest);
	int n = codec_writer_finish(&w);
	if (n < 0)
		return n;
	int r = request(h, buf, (size_t)n, -1, req_id, FSNOTE_REP_INJECTED, &rec);
	if (r < 0)
		return r;
	(void)codec_get_u64(&rec, FSNOTE_ARG_ID, &id);
	*ret_id = id;
	return 0;
}
