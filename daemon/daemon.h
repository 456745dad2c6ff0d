/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * daemon.h - the daemon's core state, shared by server.c (connections and
 * requests) and subscriber.c (subscriptions, fan-out, delivery).
 *
 * Ownership: struct daemon owns the event base, the pool, the sources, the
 * access checker, every client and (through its clients) every
 * subscription.  A client owns its socket, its input and output buffers, its
 * libevent events and its subscriptions.  A subscription owns its ring, its
 * latency timer and its source watches; it never holds a descriptor of the
 * directory it watches (so that unmount keeps working).
 */
#ifndef FSNOTED_DAEMON_H
#define FSNOTED_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "access.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "journal.h"
#include "pool.h"
#include "source.h"

struct client;
struct sub;


/* What one uid holds; every connection, subscription and queued byte is
 * charged here. */
struct uid_acct {
	uid_t uid;
	uint32_t connections;
	uint32_t subscriptions;
	size_t queued_bytes;
	struct source_budget watches;  /* kernel watches (inotify), max_watches_per_uid */
	struct uid_acct *next;
};

/* One filesystem's share of a subscription: a whole-system subscription
 * has one per filesystem, any other exactly one. */
struct anchor {
	struct sub *sub;
	struct source *source;
	struct source_watch *watch;   /* NULL once the filesystem is gone */
	uint64_t dev;
	char *root_src;               /* root in the source's path space */
	size_t root_src_len;
	char *root_abs;               /* root as the daemon's absolute path */
	size_t root_abs_len;
	struct access_root *aroot;    /* the root as the access checker reaches it */
	/* anchors with the same root_src and root_abs map paths alike and share
	 * it, so that an event encoded for one serves them all (subscriber.c) */
	uint32_t map_id;
	/* every event of the subscription's types in scope with an ID above
	 * this was pooled (a since-ID resume older than this cannot be
	 * answered from the history) */
	uint64_t covered_from;
	struct anchor *dev_next;      /* daemon's per-filesystem list */
};

/* The watch of a subscription that ended, kept for resume_linger_ms so that
 * a client coming back with a since ID is replayed what it missed.  It owns
 * its source watch, its root, its exclude patterns and its share of the
 * interest counts. */
struct lingering {
	struct daemon *d;
	struct source *source;
	struct source_watch *watch;
	uint64_t dev;
	char *root_src;
	size_t root_src_len;
	bool recursive;
	uint64_t mask;
	uint64_t covered_from;
	char **excludes;
	size_t n_excludes;
	uid_t uid;
	struct event *timer;
	struct lingering *next;
};

struct sub {
	uint32_t id;
	struct client *client;
	struct ring *ring;
	struct event *timer;          /* latency window, created on first use */
	struct anchor *anchors;
	size_t n_anchors;
	uint32_t flags;               /* FSNOTE_SUB_* */
	uint32_t event_flags;         /* FSNOTE_FLAG_LOCAL_ONLY ... for every event */
	uint64_t mask;                /* FSNOTE_EV_BIT set */
	uint64_t dev_filter;          /* 0 = none */
	uint32_t latency_us, batch, depth;
	uint32_t fields;              /* FSNOTE_FIELD_* its events carry */
	char **excludes;
	size_t n_excludes;
	const char *warning;          /* static: why only local changes are seen, or NULL */
	bool privileged;              /* sees everything, pids included */
	bool ending;                  /* unmounted or root deleted: free when drained */
	bool lagging;                 /* kept an event waiting LAG_NS: holds nobody back
	                               * until it has emptied its ring (subscriber.c) */
	/* a resume older than the memory history reads the journal first:
	 * its cursor (owned), the last ID it gave, and per anchor the
	 * filesystem identity journaled events must carry */
	struct journal_cursor *replay;
	uint64_t replay_pos, replay_end;
	uint64_t *replay_fsids;
	uint64_t until_id;            /* 0, or the ID after which the subscription ends */
	bool pending;                 /* its watch is still being set up */
	uint32_t n_pending;           /* anchors whose watch is still being set up */
	bool has_since;               /* a resume, kept while pending */
	uint64_t since;
	struct sub *next;             /* client's list */
};

struct client {
	struct daemon *d;
	int fd;
	struct event *ev_read, *ev_write, *ev_drain, *ev_deadline;
	struct evbuffer *in, *out;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char comm[32];
	struct access_cred *cred;
	struct uid_acct *acct;
	bool hello_done;
	bool privileged;              /* root or the privileged group */
	bool closing;                 /* flush out, then free */
	bool read_paused;
	uint64_t in_offset;           /* bytes received so far */
	int pending_fd;               /* from SCM_RIGHTS, -1 if none */
	uint64_t pending_fd_offset;   /* stream offset of the last byte of the read it came with */
	size_t charged_len;           /* out bytes charged to acct */
	size_t charged;               /* what they cost the heap, charged to the pool's bound */
	/* when it last had nothing pending, or last wrote something while it
	 * did (0: nothing pending); see sub_client_stalled() */
	uint64_t busy_since_ns;
	struct sub *subs;
	struct sub *pending_sub;      /* subscribed, watch still being set up: the
	                               * client's later requests wait for it */
	uint32_t pending_req;         /* its REQ_ID */
	struct sub *drain_cursor;     /* round-robin position */
	struct client *prev, *next;
};

/* The rescan scope last given for a withheld name (subscriber.c). */
struct withheld_memo {
	uint32_t sub_id;
	uint64_t gen;                 /* daemon.dir_changes when made */
	char *dir;                    /* source-space directory of the name (owned) */
	size_t dir_len;
	char *scope;                  /* what withheld_scope() said (owned, may be NULL) */
};

struct daemon {
	struct event_base *base;
	struct config cfg;
	char *config_path;
	bool config_explicit;
	struct pool *pool;
	struct journal *journal;      /* NULL when off or unusable */
	struct access *access;
	struct source *primary;       /* fanotify or inotify */
	struct source *fallback;      /* inotify, created when first needed */
	struct mountwatch *mounts;    /* mount records, NULL where the kernel has none */
	struct evconnlistener *listener;
	char *socket_path;            /* bound by us (unlinked at exit), or NULL */
	struct client *clients;
	size_t n_clients;
	struct uid_acct *accts;
	struct anchor **dev_heads;    /* per-filesystem anchor lists */
	uint64_t *dev_keys;
	size_t n_devs;
	struct sub *system_subs_hint; /* unused marker for status */
	uint32_t next_sub_id;
	size_t n_subs, n_unprivileged;
	size_t n_want_stat;           /* subscriptions asking FSNOTE_FIELD_STAT */
	size_t n_want_pid;            /* unprivileged ones asking FSNOTE_FIELD_PID */
	uint32_t next_map_id;         /* anchor.map_id */
	struct lingering *lingers;       /* newest first */
	size_t n_lingers;
	uint32_t interest[FSNOTE_EV_MAX + 1];
	uint64_t interest_mask;
	uint64_t source_mask;         /* what the sources were last asked for */
	uint64_t events_in, events_delivered, events_denied;
	uint64_t dir_changes;         /* directory attrib, rename and delete records seen */
	uint64_t now_ns;              /* CLOCK_MONOTONIC of the event being fanned out */
	size_t out_bytes;             /* every client's output, charged to the pool's bound */
	bool read_held;               /* a source holds its queue for want of room */
	size_t trim_peak;             /* most held since the heap was last trimmed (main.c) */
	struct withheld_memo withheld;
	uint64_t start_ns;
	bool draining;
	struct event *ev_status, *ev_watchdog, *ev_exit, *ev_trim;
	uint64_t watchdog_usec;
};

/* subscriber.c */
/* Returns 0 with *ret linked, SUB_PENDING with *ret not yet linked (its
 * watch is completed in later turns, then server_subscribe_done() is
 * called), or -errno with a message in @err. */
#define SUB_PENDING 1
int sub_create(struct daemon *d, struct client *c, const struct codec_record *req, int dirfd,
	       struct sub **ret, char *err, size_t errlen);
/* Frees a subscription left pending (its client went). */
void sub_abandon(struct sub *s);
void sub_destroy(struct sub *s);
/* Ends every lingering watch and frees what subscriptions left behind
 * (shutdown). */
void sub_free_lingers(struct daemon *d);
struct sub *sub_find(struct client *c, uint32_t id);
/* Moves pending events of @c's subscriptions into its output buffer until
 * the buffer reaches its high-water mark.  Returns true if anything is
 * still pending. */
bool sub_drain_client(struct client *c, size_t high_water);
/* Moves every pending event of @s into @s->client's output, bounded only by
 * the ring (the flush barrier). */
void sub_drain_all(struct sub *s);
void sub_sink_init(struct daemon *d, struct source_sink *sink);
/* Reads, synchronously, what every source's kernel queue holds into the
 * pool (the barrier before a flush reply or a new subscription). */
void sub_flush_sources(struct daemon *d);
int sub_inject(struct daemon *d, const struct codec_record *req, uint64_t *ret_id);
void sub_status(struct daemon *d, const struct client *asker, json_t *root);
/* Has @c had something to deliver for a while without taking any of it?
 * Such a client no longer holds the kernel queue back for everyone. */
bool sub_client_stalled(const struct client *c, uint64_t now_ns);
/* Room came back (a client took some of its events): sources that held
 * their queue read again. */
void sub_resume_sources(struct daemon *d);
/* Does @s have anything to deliver (ring, pending drop, journal replay)? */
bool sub_pending(const struct sub *s);
void sub_ring_dropped(struct ring *r, void *owner);
uint64_t sub_ring_stale_since(struct ring *r, void *owner);
/* A mountwatch callback: mount and unmount records for those who asked. */
void sub_mount_event(void *ctx, bool attached, const char *point, uint64_t dev, const char *fstype);

/* server.c */
int server_listen(struct daemon *d, const char *path);
/* Serves the connected socket @fd (taking it over) as a client with the
 * given credentials: the accept path, and the fuzzer's way in. */
int server_adopt(struct daemon *d, int fd, pid_t pid, uid_t uid, gid_t gid, const gid_t *groups,
		 size_t ngroups);
void server_schedule_drain(struct client *c);
/* The pending subscription of @c is ready (@s, with @r 0) or failed (@s
 * NULL, -errno @r, message @err): reply, and go on with its requests. */
void server_subscribe_done(struct client *c, struct sub *s, int r, const char *err);
void server_send_error(struct client *c, uint32_t req_id, int error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void server_begin_shutdown(struct daemon *d);
void server_free_clients(struct daemon *d);
struct uid_acct *server_acct(struct daemon *d, uid_t uid);
/* Charge or release output bytes against the client's uid. */
void server_charge(struct client *c);

#endif
