/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnote.h - libfsnote, the client library of the fsnoted filesystem
 * notification daemon.
 *
 * A handle (struct fsnote) is one connection to the daemon.  Requests
 * (subscribe, unsubscribe, current ID, status, flush, inject) are
 * synchronous: each sends one frame and waits for its reply; events that
 * arrive meanwhile are kept, in order, for the next read.  fsnote_read()
 * delivers separately allocated struct fsnote_event objects that the caller
 * owns and frees with fsnote_event_free(); they stay valid after the handle
 * is closed.  fsnote_read_batch() delivers many at a time as views into a
 * buffer the handle owns and reuses, which allocates nothing per event;
 * they are valid until the next read call on the handle or its close.
 *
 * Conventions: every function that can fail returns 0 (or a documented
 * positive value) on success and a negative errno on failure; output
 * parameters named ret_* are written only on success; destructors accept
 * NULL and return NULL.  The library never logs, never exits and never
 * raises SIGPIPE.  A handle may be used by one thread at a time; distinct
 * handles are independent.  The text of the daemon's last error reply is
 * available from fsnote_last_error().
 *
 * Names are bytes: paths are handed out with their length and may contain
 * any byte but NUL (and are NUL-terminated for convenience).
 */
#ifndef FSNOTE_H
#define FSNOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The socket used when neither an explicit path nor FSNOTE_SOCKET is given. */
#define FSNOTE_DEFAULT_SOCKET "/run/fsnoted/fsnoted.sock"

/* Event types (the same numbers as on the wire). */
enum fsnote_type {
	FSNOTE_CREATE = 1,
	FSNOTE_DELETE = 2,
	FSNOTE_MODIFY = 3,
	FSNOTE_ATTRIB = 4,
	FSNOTE_CLOSE_WRITE = 5,
	FSNOTE_RENAME = 6,
	FSNOTE_UNMOUNT = 7,
	FSNOTE_DROPPED = 8,       /* events were lost: rescan fsnote_event_rescan() */
	FSNOTE_OPEN = 9,          /* opt-in */
	FSNOTE_ACCESS = 10,       /* opt-in */
	FSNOTE_MOUNT = 11,        /* opt-in, privileged */
	FSNOTE_FS_ERROR = 12,     /* opt-in, privileged */
	FSNOTE_HISTORY_END = 13,  /* the history asked for is complete; the subscription is over */
};
#define FSNOTE_TYPE_MAX 13
#define FSNOTE_MASK(type) (UINT64_C(1) << (type))
/* What a subscription gets when it names no mask. */
#define FSNOTE_MASK_DEFAULT                                                               \
	(FSNOTE_MASK(FSNOTE_CREATE) | FSNOTE_MASK(FSNOTE_DELETE) | FSNOTE_MASK(FSNOTE_MODIFY) | \
	 FSNOTE_MASK(FSNOTE_ATTRIB) | FSNOTE_MASK(FSNOTE_CLOSE_WRITE) |                        \
	 FSNOTE_MASK(FSNOTE_RENAME) | FSNOTE_MASK(FSNOTE_UNMOUNT) | FSNOTE_MASK(FSNOTE_DROPPED))

/* Event flags (the same bits as on the wire). */
enum fsnote_flag {
	FSNOTE_F_COMBINED = 1u << 0,        /* several identical events merged into this one */
	FSNOTE_F_DROPPED = 1u << 1,         /* events were lost */
	FSNOTE_F_MUST_RESCAN = 1u << 2,     /* rescan fsnote_event_rescan() to catch up */
	FSNOTE_F_IS_DIR = 1u << 3,
	FSNOTE_F_RENAMED = 1u << 4,         /* half of a move whose other side is not visible */
	FSNOTE_F_KERNEL_OVERFLOW = 1u << 5,
	FSNOTE_F_RING_OVERFLOW = 1u << 6,
	FSNOTE_F_POOL_RECLAIM = 1u << 7,
	FSNOTE_F_INJECTED = 1u << 8,
	FSNOTE_F_HISTORY = 1u << 9,         /* replayed from the daemon's history */
	FSNOTE_F_ROOT = 1u << 10,           /* the subscription's root itself */
	FSNOTE_F_SUB_ENDED = 1u << 11,      /* the subscription is over */
	FSNOTE_F_LOCAL_ONLY = 1u << 12,     /* only changes made on this host are seen */
	FSNOTE_F_PATH_TOO_LONG = 1u << 13,  /* dropped: a path longer than the protocol carries */
};

/* Daemon features (fsnote_features()). */
enum fsnote_feature_bit {
	FSNOTE_HAS_FANOTIFY = 1u << 0,
	FSNOTE_HAS_RENAME = 1u << 1,
	FSNOTE_HAS_INOTIFY = 1u << 2,
	FSNOTE_HAS_HISTORY = 1u << 3,
	FSNOTE_HAS_FLUSH = 1u << 4,
	FSNOTE_HAS_MOUNT_EVENTS = 1u << 5,
	FSNOTE_HAS_FS_ERROR = 1u << 6,
	FSNOTE_HAS_JOURNAL = 1u << 7,       /* history survives restarts; fsnote_sub_opts_set_until() */
	FSNOTE_HAS_FIELDS = 1u << 8,        /* fsnote_sub_opts_set_fields() */
};

/* Optional parts of events (fsnote_sub_opts_set_fields()). */
enum fsnote_field_bit {
	FSNOTE_WITH_STAT = 1u << 0,         /* fsnote_event_ino/mode/uid/gid() */
	FSNOTE_WITH_PID = 1u << 1,          /* fsnote_event_pid() (else 0) */
};
#define FSNOTE_WITH_ALL (FSNOTE_WITH_STAT | FSNOTE_WITH_PID)

typedef struct fsnote fsnote;
typedef struct fsnote_event fsnote_event;
typedef struct fsnote_sub_opts fsnote_sub_opts;

/* --- connection ---------------------------------------------------------- */

/* Connects to @socket_path, or when NULL to $FSNOTE_SOCKET, or to
 * FSNOTE_DEFAULT_SOCKET, and completes the version handshake.  Returns 0,
 * -ENOENT or -ECONNREFUSED when no daemon listens there, -EPROTONOSUPPORT
 * when the daemon speaks another protocol version, -EDQUOT when the daemon
 * refuses the connection for a limit (see fsnote_last_error() of no handle:
 * the message is lost, so the errno says it), or another -errno. */
int fsnote_connect(const char *socket_path, fsnote **ret);
/* Closes the connection and frees the handle.  NULL-safe; returns NULL. */
fsnote *fsnote_close(fsnote *h);

/* A descriptor that becomes readable when fsnote_read() may have work;
 * for poll(), epoll or any event loop.  Owned by the handle. */
int fsnote_fd(const fsnote *h);
/* The socket path this handle connected to. */
const char *fsnote_socket_path(const fsnote *h);
/* What the daemon announced at hello. */
uint64_t fsnote_features(const fsnote *h);
const char *fsnote_backend(const fsnote *h);        /* "fanotify" or "inotify" */
const char *fsnote_server_version(const fsnote *h);
/* The message of the daemon's last error reply on this handle, or "". */
const char *fsnote_last_error(const fsnote *h);

/* --- subscriptions --------------------------------------------------------- */

int fsnote_sub_opts_new(fsnote_sub_opts **ret);
fsnote_sub_opts *fsnote_sub_opts_free(fsnote_sub_opts *o);
/* Direct children only (the default is the whole subtree). */
int fsnote_sub_opts_set_children(fsnote_sub_opts *o, bool children);
/* Every mounted filesystem (root or the daemon's privileged group only);
 * subscribe with a NULL path. */
int fsnote_sub_opts_set_system(fsnote_sub_opts *o, bool system);
/* FSNOTE_MASK() bits; -EINVAL for 0 or unknown bits. */
int fsnote_sub_opts_set_events(fsnote_sub_opts *o, uint64_t mask);
/* Only events on this filesystem (st_dev). */
int fsnote_sub_opts_set_dev_filter(fsnote_sub_opts *o, uint64_t dev);
int fsnote_sub_opts_set_ring_depth(fsnote_sub_opts *o, uint32_t depth);
/* Wake-up batching: deliver when @batch events are pending or @latency_us
 * after the first; latency 0 delivers at once. */
int fsnote_sub_opts_set_latency_us(fsnote_sub_opts *o, uint32_t latency_us);
int fsnote_sub_opts_set_batch(fsnote_sub_opts *o, uint32_t batch);
/* Replay what happened after event @id (from the daemon's history), or
 * receive a must-rescan record when the history no longer reaches back. */
int fsnote_sub_opts_set_since(fsnote_sub_opts *o, uint64_t id);
/* With a since ID: replay up to and including @id, then end the
 * subscription with a FSNOTE_HISTORY_END record (no live events).
 * Returns 0 or -EINVAL. */
int fsnote_sub_opts_set_until(fsnote_sub_opts *o, uint64_t id);
/* A directory name or glob ("node_modules", "*.tmp", ".git"), or a pattern
 * with '/' matched against the path below the root.  Up to 32. */
int fsnote_sub_opts_add_exclude(fsnote_sub_opts *o, const char *pattern);
/* Only these optional parts (FSNOTE_WITH_* bits, 0 for none) in the events,
 * so that the daemon need not compute the rest; without this call, all of
 * them.  Needs FSNOTE_HAS_FIELDS: subscribing fails with -EOPNOTSUPP
 * otherwise.  Returns 0 or -EINVAL for unknown bits. */
int fsnote_sub_opts_set_fields(fsnote_sub_opts *o, uint32_t fields);

/* Opens @path O_RDONLY|O_DIRECTORY itself (so the caller's own permissions
 * are what the daemon checks), passes the descriptor and waits for the
 * reply.  @o may be NULL for the defaults.  On success *@ret_sub_id is the
 * subscription's ID on this handle (stable across fsnote_reconnect()).
 * Returns 0, -EACCES, -ENOTDIR, -ENOENT (from opening), or the daemon's
 * refusal: -EPERM, -EDQUOT (a limit), -EOPNOTSUPP/-EXDEV (a filesystem that
 * cannot be watched), -ENOSPC (kernel watch limit), -EINVAL ... with its
 * message in fsnote_last_error(). */
int fsnote_subscribe(fsnote *h, const char *path, const fsnote_sub_opts *o, uint32_t *ret_sub_id);
/* The same with a directory the caller opened O_RDONLY|O_DIRECTORY
 * (borrowed; the library keeps no descriptor). */
int fsnote_subscribe_fd(fsnote *h, int dirfd, const fsnote_sub_opts *o, uint32_t *ret_sub_id);
int fsnote_unsubscribe(fsnote *h, uint32_t sub_id);

/* What the daemon said when it confirmed subscription @sub_id: its root as
 * the daemon sees it, flags (FSNOTE_F_LOCAL_ONLY ...), a warning for the
 * user (NULL if none), the backend serving it, and the event ID current
 * when it started.  NULL / 0 for an unknown ID. */
const char *fsnote_sub_root(const fsnote *h, uint32_t sub_id);
uint32_t fsnote_sub_flags(const fsnote *h, uint32_t sub_id);
const char *fsnote_sub_warning(const fsnote *h, uint32_t sub_id);
const char *fsnote_sub_backend(const fsnote *h, uint32_t sub_id);
uint64_t fsnote_sub_start_id(const fsnote *h, uint32_t sub_id);
/* The ID of the last event fsnote_read() or fsnote_read_batch() returned
 * for @sub_id (what a resume asks to continue after), 0 if none. */
uint64_t fsnote_sub_last_id(const fsnote *h, uint32_t sub_id);

/* --- events ------------------------------------------------------------------ */

/* Waits up to @timeout_ms (-1: forever, 0: do not wait) for the next event.
 * Returns 0 with *@ret, -ETIMEDOUT (or -EAGAIN for a zero timeout) when
 * none came, -ESHUTDOWN when the daemon said it is shutting down (the
 * message is in fsnote_last_error()), -ECONNRESET when the connection was
 * lost, -EINTR when a signal interrupted the wait, or -EBADMSG when the
 * daemon sent something that does not decode (the handle is then dead). */
int fsnote_read(fsnote *h, int timeout_ms, fsnote_event **ret);
/* The same for up to @max events at once: waits as fsnote_read() for the
 * first, then takes what is already here without waiting again.  Returns
 * how many it stored in @events (at least 1), or fsnote_read()'s errors
 * (a lost connection is reported after the events that came before it).
 * The events belong to the handle: they stay valid until the next
 * fsnote_read() or fsnote_read_batch() on @h, or fsnote_close(), and are
 * not to be freed (fsnote_event_free() leaves them alone).  Synchronous
 * requests in between do not disturb them. */
int fsnote_read_batch(fsnote *h, int timeout_ms, const fsnote_event **events, size_t max);

/* Reconnects a handle whose connection was lost (daemon restarted) and
 * resubscribes every subscription with "since" its last seen ID, so that
 * what happened meanwhile is replayed or a must-rescan record arrives.
 * Retries until @timeout_ms passes.  Subscription IDs stay the same.
 * Returns 0 or -errno (the handle stays usable for another attempt). */
int fsnote_reconnect(fsnote *h, int timeout_ms);

fsnote_event *fsnote_event_free(fsnote_event *e);

uint32_t fsnote_event_sub_id(const fsnote_event *e);
uint64_t fsnote_event_id(const fsnote_event *e);
uint32_t fsnote_event_type(const fsnote_event *e);      /* enum fsnote_type */
uint32_t fsnote_event_flags(const fsnote_event *e);     /* FSNOTE_F_* */
bool fsnote_event_is_dir(const fsnote_event *e);
uint64_t fsnote_event_time_ns(const fsnote_event *e);   /* ns since the epoch */
uint32_t fsnote_event_pid(const fsnote_event *e);       /* 0 when hidden or unknown */
/* Absolute path (the destination of a rename: fsnote_event_dest(), NULL
 * otherwise); *@ret_len, if given, receives the length without the NUL.
 * Valid as long as the event. */
const char *fsnote_event_path(const fsnote_event *e, size_t *ret_len);
const char *fsnote_event_dest(const fsnote_event *e, size_t *ret_len);
/* Attributes of the object (or, with @dest, of a rename's destination).
 * Each returns 0, or -ENODATA when the daemon did not know it. */
int fsnote_event_dev(const fsnote_event *e, bool dest, uint64_t *ret);
int fsnote_event_ino(const fsnote_event *e, bool dest, uint64_t *ret);
int fsnote_event_mode(const fsnote_event *e, bool dest, uint32_t *ret);
int fsnote_event_uid(const fsnote_event *e, bool dest, uint32_t *ret);
int fsnote_event_gid(const fsnote_event *e, bool dest, uint32_t *ret);
/* Dropped records: how many events were lost (0 = unknown), their ID
 * range (0 = unknown) and the directory to rescan. */
uint64_t fsnote_event_count(const fsnote_event *e);
uint64_t fsnote_event_id_first(const fsnote_event *e);
uint64_t fsnote_event_id_last(const fsnote_event *e);
const char *fsnote_event_rescan(const fsnote_event *e, size_t *ret_len);

/* A new event from one whole event record (FSNOTE_REC_EVENT) in the wire
 * format of fsnote-protocol(7), for tools that store or forward records;
 * the event's sub_id is the record's.  Returns 0, -EBADMSG for anything
 * but exactly one valid event record, or -ENOMEM. */
int fsnote_event_decode(const void *frame, size_t len, fsnote_event **ret);

/* "create", "delete" ... ; NULL for an unknown type. */
const char *fsnote_type_name(uint32_t type);
/* The type for @name, or 0. */
uint32_t fsnote_type_from_name(const char *name);
/* "combined", "dropped" ... for flag bit @bit (0..31); NULL if unassigned. */
const char *fsnote_flag_name(unsigned bit);

/* --- other requests ----------------------------------------------------------- */

/* The ID of the newest event the daemon has handed out. */
int fsnote_current_id(fsnote *h, uint64_t *ret_id);
/* The first event ID at or after @time_ns (ns since the epoch), within the
 * daemon's history; -ERANGE when the history does not reach back so far. */
int fsnote_id_at_time(fsnote *h, uint64_t time_ns, uint64_t *ret_id);
/* The daemon's status as a JSON document (malloc'd; the caller frees). */
int fsnote_status(fsnote *h, char **ret_json);
/* Sync barrier: returns once every kernel event that happened before the
 * call has been read by the daemon and queued to @sub_id ahead of the
 * reply, i.e. is available to fsnote_read() without waiting.  *@ret_id is
 * the event ID that covers them. */
int fsnote_flush(fsnote *h, uint32_t sub_id, uint64_t *ret_id);

/* A synthetic event (root only): @type with @path (absolute), @dest for a
 * rename (else NULL), @flags limited to FSNOTE_F_IS_DIR.  *@ret_id is its
 * event ID. */
int fsnote_inject(fsnote *h, uint32_t type, const char *path, const char *dest, uint32_t flags,
		  uint64_t *ret_id);

#ifdef __cplusplus
}
#endif

#endif
