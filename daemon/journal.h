/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal.h - the persistent event journal: every pooled event on disk, so
 * that a since-ID or at-time resume works across restarts and reboots.
 *
 * The journal is a directory (the service's state directory, mode 0700) of
 * append-only segment files.  Each record carries a CRC32C; a record that
 * does not check out ends its segment (the tail is cut off) and the loss is
 * recorded as a gap.  Appends go to a memory buffer that is written when it
 * fills and written and synced on a bounded interval (a libevent timer) and
 * on a clean stop.  The journal stays within its byte and age bounds by
 * removing whole segments, oldest first.
 *
 * IDs: every record names an event ID, and IDs never decrease along the
 * journal.  A gap is a record of its own (why, the IDs and times it spans,
 * the filesystem or 0 for all).  A resume from ID S crosses a gap when
 * S < gap.id_last; it crosses the journal's start when S < the floor (the
 * oldest segment's base ID).
 *
 * Ownership: struct journal owns its directory descriptor, its lock, the
 * active segment's descriptor, the write buffer, the per-segment index and
 * the gap list.  A cursor owns its descriptor and buffers; it must be freed
 * before the journal.  The journal never holds a pool event.
 */
#ifndef FSNOTED_JOURNAL_H
#define FSNOTED_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "pool.h"

struct journal_config {
	const char *dir;                /* created 0700 if missing */
	uint64_t max_bytes;             /* every segment counted */
	uint64_t max_age_ns;            /* 0: no age bound */
	uint32_t sync_ms;               /* write and fsync at least this often */
	char *const *exclude;           /* absolute paths never journaled */
	size_t n_exclude;
};

enum journal_gap_reason {
	JOURNAL_GAP_STOPPED = 1u << 0,     /* the daemon was stopped cleanly */
	JOURNAL_GAP_CRASHED = 1u << 1,     /* it ended without a clean-stop marker */
	JOURNAL_GAP_OVERFLOW = 1u << 2,    /* the kernel queue overflowed */
	JOURNAL_GAP_CORRUPT = 1u << 3,     /* records failed their checksum and were cut */
	JOURNAL_GAP_WRITE_ERROR = 1u << 4, /* records could not be written */
	JOURNAL_GAP_CUT = 1u << 5,         /* older than the journal reaches (retention) */
};

struct journal_gap {
	uint32_t reason;                /* JOURNAL_GAP_* */
	uint64_t id_first, id_last;     /* a resume from S < id_last crosses it */
	uint64_t time_first, time_last; /* CLOCK_REALTIME ns */
	uint64_t dev;                   /* 0: every filesystem */
};

struct journal;
struct journal_cursor;

/* Opens (or creates) the journal in cfg->dir, checks every segment, cuts a
 * torn or corrupt tail and notes the loss.  @now_ns: CLOCK_REALTIME.
 * Returns 0, -EBUSY when another daemon holds the journal, or -errno. */
int journal_open(const struct journal_config *cfg, uint64_t now_ns, struct journal **ret);
/* Flushes and frees; NULL-safe, returns NULL.  Without journal_stop() the
 * next start sees a crash. */
struct journal *journal_free(struct journal *j);
/* New bounds, sync interval and exclusions (the directory stays). */
int journal_set_config(struct journal *j, const struct journal_config *cfg);

/* The highest ID any record names (0 for an empty journal). */
uint64_t journal_last_id(const struct journal *j);
/* Starts a run whose first event gets @first_id + 1: records the gap since
 * the last run (stopped or crashed), opens a new segment and arms the sync
 * timer on @base.  Returns 0 or -errno. */
int journal_start(struct journal *j, struct event_base *base, uint64_t first_id, uint64_t now_ns);
/* Writes the clean-stop marker (@last_id: the last ID handed out) and syncs. */
int journal_stop(struct journal *j, uint64_t last_id, uint64_t now_ns);

/* Journals @ev unless its path is excluded.  Never blocks on the disk
 * beyond one write() of a full buffer.  Returns 0, 1 when excluded, or
 * -errno (the loss is then recorded as a gap once writing works again). */
int journal_append(struct journal *j, const struct pool_event *ev);
/* Records a loss the journal did not see (kernel overflow on @dev) between
 * @after_id and the next ID. */
int journal_note_gap(struct journal *j, uint32_t reason, uint64_t after_id, uint64_t dev,
		     uint64_t now_ns);
/* Writes what is buffered; with @sync also fdatasync()s.  Returns 0 or -errno. */
int journal_flush(struct journal *j, bool sync);

/* A resume from @since up to @until (inclusive) can be answered from IDs
 * above journal_floor() only. */
uint64_t journal_floor(const struct journal *j);
/* Calls @fn for every gap a resume from @since to @until crosses, oldest
 * first, including the journal's own start (JOURNAL_GAP_CUT) when @since
 * is below the floor.  @dev: 0 or the filesystem asked about (gaps of other
 * filesystems are skipped).  Returns how many were reported. */
size_t journal_gaps(const struct journal *j, uint64_t since, uint64_t until, uint64_t dev,
		    void (*fn)(const struct journal_gap *g, void *userdata), void *userdata);
/* Could an event under absolute directory @root (dev @dev) have been left
 * out by an exclusion?  (A resume from the journal cannot vouch for it.) */
bool journal_may_exclude(const struct journal *j, uint64_t dev, const char *root);
/* Is @path (source space, on @dev) inside the journal's own directory?
 * Its writes are the daemon's own doing: reporting them would feed the
 * journal its own tail, once per sync, forever. */
bool journal_is_own(const struct journal *j, uint64_t dev, const char *path, size_t len);
/* The first ID whose time is at or after @time_ns.  Returns 0, or -ERANGE
 * when @time_ns is before the journal's oldest record, -ENOENT when the
 * journal is empty or @time_ns is after its newest record. */
int journal_id_at_time(struct journal *j, uint64_t time_ns, uint64_t *ret_id);

/* The filesystem identity (statfs f_fsid, or the mount source hashed) of
 * @dev as the journal records it; 0 if unknown. */
uint64_t journal_fsid_of(struct journal *j, uint64_t dev);
/* @dev is the filesystem open at @fd now (a new watch on it): its identity
 * replaces what was known of that device number.  When it is another
 * filesystem than before, the events of @dev up to @current_id were the
 * earlier one's (journal_fs_epoch()). */
void journal_note_fs_fd(struct journal *j, uint64_t dev, int fd, uint64_t current_id);
/* The ID up to which events of @dev belong to a filesystem that was
 * replaced under that device number in this run (0: none). */
uint64_t journal_fs_epoch(const struct journal *j, uint64_t dev);

/* Reads events with IDs in (@since, @until], oldest first. */
int journal_cursor_new(struct journal *j, uint64_t since, uint64_t until,
		       struct journal_cursor **ret);
/* 1 with *@ret_ev (valid until the next call; ev->dev as journaled) and
 * *@ret_fsid, 0 at the end, -EBADMSG when a record failed its checksum,
 * -ESTALE when retention removed a segment before the cursor reached it
 * (the cursor then ends: the caller must report the rest as lost), or
 * -errno. */
int journal_cursor_next(struct journal_cursor *c, struct pool_event **ret_ev,
			uint64_t *ret_fsid);
struct journal_cursor *journal_cursor_free(struct journal_cursor *c);

/* Adds span, size, bounds and gaps to @obj. */
void journal_status(const struct journal *j, json_t *obj);
const char *journal_gap_reason_name(uint32_t reason);

/* CRC32C (Castagnoli) of @len bytes, continuing from @crc (0 to start). */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
