/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnote-protocol.h - the wire format spoken between fsnoted and its clients.
 *
 * This header is the only definition of the protocol; man/fsnote-protocol.7
 * describes the same thing in prose and must change with it.
 *
 * A connection carries a stream of frames in both directions.  Every frame
 * is an 8-byte header (total length, record type, reserved zero) followed by
 * typed arguments.  Every argument is an 8-byte header (argument type,
 * reserved zero, value length) followed by exactly that many value bytes,
 * with no padding.  The last argument of every frame is FSNOTE_ARG_DONE with
 * a zero length, and it ends exactly at the frame's end.  All integers are
 * little-endian.  Strings carry their terminating NUL inside their length
 * and contain no other NUL.
 *
 * The first frame a client sends is FSNOTE_REQ_HELLO; the daemon answers
 * FSNOTE_REP_HELLO (or FSNOTE_REP_ERROR and closes).  Every later request
 * gets exactly one reply, in order; event, dropped and shutdown records are
 * interleaved with replies at any point after the hello.
 *
 * Record types are numbered in ranges: 0x01xx requests (client to daemon),
 * 0x02xx replies, 0x03xx records the daemon sends unasked.
 */
#ifndef FSNOTE_PROTOCOL_H
#define FSNOTE_PROTOCOL_H

#include <stdint.h>

#define FSNOTE_PROTOCOL_VERSION 1

/* Limits.  A peer that exceeds one is sent FSNOTE_REP_ERROR and closed. */
#define FSNOTE_FRAME_HEADER_SIZE 8u
#define FSNOTE_ARG_HEADER_SIZE 8u
#define FSNOTE_FRAME_MIN (FSNOTE_FRAME_HEADER_SIZE + FSNOTE_ARG_HEADER_SIZE)
#define FSNOTE_FRAME_MAX (1024u * 1024u)   /* any frame, either direction */
#define FSNOTE_REQUEST_MAX (64u * 1024u)   /* a frame sent by a client */
#define FSNOTE_ARGS_MAX 64u                /* arguments per frame, DONE included */
#define FSNOTE_PATH_MAX 4096u              /* a path argument, NUL included */
#define FSNOTE_MESSAGE_MAX 1024u           /* an error message, NUL included */
#define FSNOTE_EXCLUDES_MAX 32u            /* exclude patterns per subscription */
#define FSNOTE_PATTERN_MAX 256u            /* one exclude pattern, NUL included */
#define FSNOTE_NAME_MAX 256u               /* client name in hello, NUL included */

/* Record types. */
enum fsnote_record_type {
	/* requests */
	FSNOTE_REQ_HELLO = 0x0101,        /* VERSION, [CLIENT_NAME] */
	FSNOTE_REQ_SUBSCRIBE = 0x0102,    /* REQ_ID, SUB_FLAGS, [EVENT_MASK], [DEV_FILTER],
	                                   * [RING_DEPTH], [LATENCY_US], [BATCH], [SINCE_ID],
	                                   * [UNTIL_ID] (needs SINCE_ID), [EXCLUDE]...,
	                                   * [PATH] (the label: how the client names the
	                                   * directory); one directory fd via SCM_RIGHTS
	                                   * unless SUB_FLAGS has FSNOTE_SUB_SYSTEM */
	FSNOTE_REQ_UNSUBSCRIBE = 0x0103,  /* REQ_ID, SUB_ID */
	FSNOTE_REQ_CURRENT_ID = 0x0104,   /* REQ_ID, [TIME] (first ID at or after TIME) */
	FSNOTE_REQ_STATUS = 0x0105,       /* REQ_ID */
	FSNOTE_REQ_INJECT = 0x0106,       /* REQ_ID, EVENT_TYPE, PATH, [FLAGS], [PID],
	                                   * [DEST_PATH], [DEV], [INO], [MODE], [UID], [GID];
	                                   * root only */
	FSNOTE_REQ_FLUSH = 0x0107,        /* REQ_ID, SUB_ID */

	/* replies; each carries the REQ_ID of its request */
	FSNOTE_REP_HELLO = 0x0201,        /* VERSION, SERVER_VERSION, FEATURES, BACKEND */
	FSNOTE_REP_SUBSCRIBED = 0x0202,   /* REQ_ID, SUB_ID, ID (current event ID),
	                                   * [PATH] (root as the daemon sees it), [DEV],
	                                   * [FLAGS] (FSNOTE_FLAG_LOCAL_ONLY ...), [MESSAGE]
	                                   * (a warning for the user), [BACKEND] */
	FSNOTE_REP_UNSUBSCRIBED = 0x0203, /* REQ_ID, SUB_ID */
	FSNOTE_REP_CURRENT_ID = 0x0204,   /* REQ_ID, ID */
	FSNOTE_REP_STATUS = 0x0205,       /* REQ_ID, JSON */
	FSNOTE_REP_INJECTED = 0x0206,     /* REQ_ID, ID */
	FSNOTE_REP_FLUSHED = 0x0207,      /* REQ_ID, SUB_ID, ID */
	FSNOTE_REP_ERROR = 0x02ff,        /* [REQ_ID], ERRNO, MESSAGE */

	/* unsolicited */
	FSNOTE_REC_EVENT = 0x0301,        /* SUB_ID, ID, EVENT_TYPE, FLAGS, TIME, PID, PATH,
	                                   * [DEV], [INO], [MODE], [UID], [GID],
	                                   * [DEST_PATH], [DEST_DEV], [DEST_INO], [DEST_MODE],
	                                   * [DEST_UID], [DEST_GID]; a dropped event adds
	                                   * COUNT, ID_FIRST, ID_LAST and RESCAN_PATH */
	FSNOTE_REC_SHUTDOWN = 0x0302,     /* MESSAGE; the daemon closes after it */
};

/* Argument types.  Each has one value kind (fsnote_arg_kind()). */
enum fsnote_arg_type {
	FSNOTE_ARG_DONE = 0x0000,         /* empty, last */

	FSNOTE_ARG_ID = 0x0001,           /* u64 event ID */
	FSNOTE_ARG_EVENT_TYPE = 0x0002,   /* u32 enum fsnote_event_type */
	FSNOTE_ARG_FLAGS = 0x0003,        /* u32 FSNOTE_FLAG_* */
	FSNOTE_ARG_TIME = 0x0004,         /* u64 ns since the epoch (CLOCK_REALTIME) */
	FSNOTE_ARG_PID = 0x0005,          /* u32 acting pid, 0 when hidden or unknown */
	FSNOTE_ARG_PATH = 0x0006,         /* string, absolute */
	FSNOTE_ARG_DEV = 0x0007,          /* u64 st_dev of the filesystem */
	FSNOTE_ARG_INO = 0x0008,          /* u64 */
	FSNOTE_ARG_MODE = 0x0009,         /* u32 st_mode */
	FSNOTE_ARG_UID = 0x000a,          /* u32 */
	FSNOTE_ARG_GID = 0x000b,          /* u32 */
	FSNOTE_ARG_DEST_PATH = 0x000c,    /* string, absolute */
	FSNOTE_ARG_DEST_DEV = 0x000d,     /* u64 */
	FSNOTE_ARG_DEST_INO = 0x000e,     /* u64 */
	FSNOTE_ARG_DEST_MODE = 0x000f,    /* u32 */
	FSNOTE_ARG_DEST_UID = 0x0010,     /* u32 */
	FSNOTE_ARG_DEST_GID = 0x0011,     /* u32 */
	FSNOTE_ARG_COUNT = 0x0012,        /* u64 events lost (0 = unknown) */
	FSNOTE_ARG_ID_FIRST = 0x0013,     /* u64 first lost ID (0 = unknown) */
	FSNOTE_ARG_ID_LAST = 0x0014,      /* u64 last lost ID (0 = unknown) */
	FSNOTE_ARG_RESCAN_PATH = 0x0015,  /* string, the directory to rescan */

	FSNOTE_ARG_REQ_ID = 0x0020,       /* u32 chosen by the client, echoed */
	FSNOTE_ARG_SUB_ID = 0x0021,       /* u32 chosen by the daemon */
	FSNOTE_ARG_SUB_FLAGS = 0x0022,    /* u32 FSNOTE_SUB_* */
	FSNOTE_ARG_EVENT_MASK = 0x0023,   /* u64, bit (1 << type) per wanted type */
	FSNOTE_ARG_DEV_FILTER = 0x0024,   /* u64 st_dev; only events on it */
	FSNOTE_ARG_RING_DEPTH = 0x0025,   /* u32 events */
	FSNOTE_ARG_LATENCY_US = 0x0026,   /* u32 microseconds, 0 = immediate */
	FSNOTE_ARG_BATCH = 0x0027,        /* u32 wake after this many pending */
	FSNOTE_ARG_SINCE_ID = 0x0028,     /* u64 replay events after this ID */
	FSNOTE_ARG_EXCLUDE = 0x0029,      /* string, repeatable */
	FSNOTE_ARG_UNTIL_ID = 0x002a,     /* u64 replay up to this ID, then a history_end
	                                   * record ends the subscription */
	FSNOTE_ARG_FIELDS = 0x002b,       /* u32 FSNOTE_FIELD_*: what the events carry */

	FSNOTE_ARG_VERSION = 0x0030,      /* u32 protocol version */
	FSNOTE_ARG_ERRNO = 0x0031,        /* u32 positive errno value */
	FSNOTE_ARG_MESSAGE = 0x0032,      /* string */
	FSNOTE_ARG_JSON = 0x0033,         /* string, a JSON document */
	FSNOTE_ARG_CLIENT_NAME = 0x0034,  /* string */
	FSNOTE_ARG_SERVER_VERSION = 0x0035, /* string, the daemon's package version */
	FSNOTE_ARG_FEATURES = 0x0036,     /* u64 FSNOTE_FEATURE_* */
	FSNOTE_ARG_BACKEND = 0x0037,      /* string, "fanotify" or "inotify" */
};

enum fsnote_arg_kind {
	FSNOTE_KIND_INVALID = 0,
	FSNOTE_KIND_EMPTY,   /* length 0 */
	FSNOTE_KIND_U32,     /* length 4 */
	FSNOTE_KIND_U64,     /* length 8 */
	FSNOTE_KIND_STRING,  /* length >= 1, NUL last and nowhere else */
};

/* Event types.  Values below 64 so that a mask fits in a u64. */
enum fsnote_event_type {
	FSNOTE_EV_CREATE = 1,
	FSNOTE_EV_DELETE = 2,
	FSNOTE_EV_MODIFY = 3,
	FSNOTE_EV_ATTRIB = 4,
	FSNOTE_EV_CLOSE_WRITE = 5,
	FSNOTE_EV_RENAME = 6,
	FSNOTE_EV_UNMOUNT = 7,
	FSNOTE_EV_DROPPED = 8,
	FSNOTE_EV_OPEN = 9,
	FSNOTE_EV_ACCESS = 10,
	FSNOTE_EV_MOUNT = 11,
	FSNOTE_EV_FS_ERROR = 12,
	FSNOTE_EV_HISTORY_END = 13,       /* the history asked for (UNTIL_ID) is complete;
	                                   * flagged SUB_ENDED, it is the subscription's last */
	FSNOTE_EV_MAX = 13,
};
#define FSNOTE_EV_BIT(t) (UINT64_C(1) << (t))
/* What a subscription gets when it names no mask: everything but the
 * opt-in types (open, access, mount, fs_error). */
#define FSNOTE_EV_DEFAULT_MASK                                                 \
	(FSNOTE_EV_BIT(FSNOTE_EV_CREATE) | FSNOTE_EV_BIT(FSNOTE_EV_DELETE) |   \
	 FSNOTE_EV_BIT(FSNOTE_EV_MODIFY) | FSNOTE_EV_BIT(FSNOTE_EV_ATTRIB) |   \
	 FSNOTE_EV_BIT(FSNOTE_EV_CLOSE_WRITE) | FSNOTE_EV_BIT(FSNOTE_EV_RENAME) | \
	 FSNOTE_EV_BIT(FSNOTE_EV_UNMOUNT) | FSNOTE_EV_BIT(FSNOTE_EV_DROPPED))
#define FSNOTE_EV_ALL_MASK (((UINT64_C(1) << (FSNOTE_EV_MAX + 1)) - 1) & ~UINT64_C(1))

/* Event flags. */
enum fsnote_event_flag {
	FSNOTE_FLAG_COMBINED = 1u << 0,     /* several identical events merged */
	FSNOTE_FLAG_DROPPED = 1u << 1,      /* events were lost before this one */
	FSNOTE_FLAG_MUST_RESCAN = 1u << 2,  /* rescan RESCAN_PATH to catch up */
	FSNOTE_FLAG_IS_DIR = 1u << 3,       /* the object is a directory */
	FSNOTE_FLAG_RENAMED = 1u << 4,      /* half of a move whose other side is hidden */
	FSNOTE_FLAG_KERNEL_OVERFLOW = 1u << 5, /* the kernel queue overflowed */
	FSNOTE_FLAG_RING_OVERFLOW = 1u << 6,   /* this subscriber's ring overflowed */
	FSNOTE_FLAG_POOL_RECLAIM = 1u << 7,    /* the global pool reclaimed this subscriber's events */
	FSNOTE_FLAG_INJECTED = 1u << 8,     /* synthetic, from FSNOTE_REQ_INJECT */
	FSNOTE_FLAG_HISTORY = 1u << 9,      /* replayed from history (since ID) */
	FSNOTE_FLAG_ROOT = 1u << 10,        /* the subscription's root itself */
	FSNOTE_FLAG_SUB_ENDED = 1u << 11,   /* the subscription is over (unmount) */
	FSNOTE_FLAG_LOCAL_ONLY = 1u << 12,  /* only changes made on this host are seen */
	FSNOTE_FLAG_PATH_TOO_LONG = 1u << 13, /* a path longer than FSNOTE_PATH_MAX */
	FSNOTE_FLAG_UNVERIFIED = 1u << 15,  /* a name withheld: the daemon could not verify
	                                     * the subscriber may see its directory */
};

/* Subscription flags. */
enum fsnote_sub_flag {
	FSNOTE_SUB_CHILDREN = 1u << 0,  /* direct children only (default: subtree) */
	FSNOTE_SUB_SYSTEM = 1u << 1,    /* every mounted filesystem; no fd; privileged */
};

/* Optional parts of event records (FSNOTE_ARG_FIELDS in SUBSCRIBE; without
 * it, all of them).  What no subscription asks for, the daemon does not
 * compute. */
enum fsnote_field {
	FSNOTE_FIELD_STAT = 1u << 0,    /* INO, MODE, UID, GID (and DEST_*) */
	FSNOTE_FIELD_PID = 1u << 1,     /* PID (else 0) */
};
#define FSNOTE_FIELDS_ALL (FSNOTE_FIELD_STAT | FSNOTE_FIELD_PID)

/* Daemon features announced in FSNOTE_REP_HELLO. */
enum fsnote_feature {
	FSNOTE_FEATURE_FANOTIFY = 1u << 0,
	FSNOTE_FEATURE_RENAME = 1u << 1,      /* FAN_RENAME: renames seen whole */
	FSNOTE_FEATURE_INOTIFY = 1u << 2,
	FSNOTE_FEATURE_HISTORY = 1u << 3,
	FSNOTE_FEATURE_FLUSH = 1u << 4,
	FSNOTE_FEATURE_MOUNT_EVENTS = 1u << 5,
	FSNOTE_FEATURE_FS_ERROR = 1u << 6,
	FSNOTE_FEATURE_JOURNAL = 1u << 7,     /* history survives restarts (UNTIL_ID too) */
	FSNOTE_FEATURE_FIELDS = 1u << 8,      /* SUBSCRIBE takes FIELDS */
};

#endif
