/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * journal.c - the persistent event journal (see journal.h).
 *
 * On disk: a directory holding "lock" and segment files named by a
 * sequence number ("%016llx.fsj").  A segment is a 64-byte header (magic,
 * version, sequence, base ID, creation time, its own CRC) followed by
 * records.  A record is a 32-byte header (CRC32C of everything after the
 * CRC field, payload length, kind, ID, time) and its payload: an event
 * (every field of struct pool_event that judging and delivering it needs,
 * the directory identities included, then the path, destination and
 * handle bytes), a gap, or the clean-stop marker.  Integers are in host
 * byte order: the journal never leaves the machine that wrote it.
 *
 * Invariants:
 * - Record IDs never decrease along the segments in sequence order, and
 *   every record in a segment has an ID above the segment's base ID.
 * - Everything in a segment before its recorded size has been checked (at
 *   start) or written by this run; a segment whose check failed was cut
 *   at the first bad record and the loss is in the gap list.
 * - The write buffer only ever holds whole records; a failed write is
 *   undone (ftruncate) so a segment never holds half a record written by
 *   a live daemon, and the loss becomes a gap record.
 * - Segments are removed oldest first; the journal's floor is the oldest
 *   remaining segment's base ID, and gaps below it are forgotten (a resume
 *   from there crosses the floor, which is reported as a gap of its own).
 *
 * The only other thread is the syncer: it fdatasync()s and closes the
 * descriptors it is handed and touches nothing else of the journal.
 *
 * Each segment keeps a sparse index in memory (one entry per 64 KiB:
 * offset, ID, the newest time before it), built while checking at start
 * and while appending, so that a since-ID or at-time lookup reads at most
 * one stride of one segment.
 */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "fsnote-protocol.h"
#include "log.h"
#include "mountinfo.h"

#define SEG_MAGIC "FSNJRNL1"
#define SEG_VERSION 1u
#define SEG_HDR_SIZE 64u
#define REC_HDR_SIZE 32u
#define JBUF_SIZE (256u * 1024u)         /* write buffer */
#define RBUF_SIZE (64u * 1024u)          /* read buffer of a cursor */
#define IDX_STRIDE (64u * 1024u)         /* bytes between index entries */
#define SEG_MIN (64u * 1024u)
#define SEG_MAX (64u * 1024u * 1024u)
#define GAPS_MAX 4096u                   /* remembered in memory */
#define STATUS_GAPS_MAX 32u

enum rec_kind {
	REC_EVENT = 1,
	REC_GAP = 2,
	REC_STOP = 3,
};

struct seg_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t seq;
	uint64_t base_id;
	uint64_t created_ns;
	uint32_t crc;                   /* of the 40 bytes before it */
	uint8_t pad[20];
} __attribute__((packed));
_Static_assert(sizeof(struct seg_hdr) == SEG_HDR_SIZE, "segment header size");

struct rec_hdr {
	uint32_t crc;                   /* CRC32C of the rest of the header and the payload */
	uint32_t len;                   /* payload bytes */
	uint16_t kind;
	uint16_t reserved;
	uint32_t reserved2;
	uint64_t id;
	uint64_t time_ns;
} __attribute__((packed));
_Static_assert(sizeof(struct rec_hdr) == REC_HDR_SIZE, "record header size");

enum { EVB_ST = 1, EVB_DEST_ST = 2, EVB_DIR_SELF = 4, EVB_DDIR_SELF = 8, EVB_DEST = 16 };

struct rec_event {
	uint16_t type, path_len, dest_len;
	uint8_t dir_len, ddir_len;
	uint32_t flags, pid, actor_uid, bits;
	int32_t dir_type, ddir_type;
	uint64_t dev, fsid;
	uint64_t st_ino;
	uint32_t st_mode, st_uid, st_gid;
	uint64_t dst_ino;
	uint32_t dst_mode, dst_uid, dst_gid;
	uint64_t dir_ino, ddir_ino;
	/* followed by path, dest, dir handle, dest dir handle (no NULs) */
} __attribute__((packed));

struct rec_gap {
	uint32_t reason;
	uint64_t id_first, id_last, time_first, time_last, dev;
} __attribute__((packed));

#define REC_PAYLOAD_MAX (sizeof(struct rec_event) + 2 * FSNOTE_PATH_MAX + 2 * POOL_HANDLE_MAX)

struct idx_entry {
	uint64_t off;
	uint64_t id;                    /* of the record at off */
	uint64_t tmax_before;           /* newest time of the records before off */
};

struct seg {
	uint64_t seq, base_id;
	uint64_t created_ns;            /* everything pooled after this is in it or later */
	uint64_t size;                  /* valid bytes (header included), buffered ones too */
	uint64_t last_id;               /* highest record ID, base_id if none */
	uint64_t first_time, tmax;      /* oldest and newest record time, 0 if none */
	uint64_t last_idx_off;
	struct idx_entry *idx;
	size_t n_idx, cap_idx;
};

struct excl {
	uint64_t dev;                   /* 0: the path did not exist, match any */
	char *abs, *fsrel;              /* fsrel NULL when unknown */
	size_t abs_len, fsrel_len;
};

struct fsid_entry {
	uint64_t dev, fsid;
	uint64_t epoch;                 /* events of @dev up to this ID were another filesystem's */
};

struct journal {
	char *dir;
	int dirfd, lockfd;
	uint64_t max_bytes, max_age_ns, seg_max;
	uint32_t sync_ms;
	struct excl *excl;
	size_t n_excl;
	struct excl own;                /* the journal's own directory */

	struct seg *segs;               /* oldest first; the last is active once started */
	size_t n_segs;
	int fd;                         /* active segment, -1 before start */
	uint64_t written;               /* bytes of the active segment on disk */
	unsigned char *buf;
	size_t buf_len;
	bool dirty;                     /* written since the last sync */

	uint64_t last_id, last_time;    /* newest record */
	uint64_t buf_last_id;           /* newest record in the buffer */
	uint64_t durable_id;            /* newest record written out */
	bool clean;                     /* the newest record is a clean stop */
	bool tail_cut;                  /* a corrupt tail was cut at open */
	uint64_t cut_after_id, cut_time;
	struct journal_gap *gaps;       /* oldest first */
	size_t n_gaps;

	/* a write failed: these IDs are missing until a gap says so */
	bool failing;
	uint64_t fail_after_id, fail_time;
	uint64_t write_errors, excluded, appended;

	struct fsid_entry *fsids;
	size_t n_fsids;

	struct event *timer;
	bool started;

	/* The timer's fdatasync() runs on a thread of its own: on a busy
	 * disk it takes tens of milliseconds, which the event loop (and every
	 * client and the kernel queue behind it) must not wait for.  The
	 * thread syncs a duplicate of the active segment's descriptor and
	 * closes it; everything else about the journal stays on the loop. */
	pthread_t syncer;
	pthread_mutex_t sync_lock;
	pthread_cond_t sync_cond;
	bool syncer_running, sync_stop;
	int sync_fd;                    /* handed to the thread, -1 when none */
	int sync_err;                   /* the thread's last failure, 0 if none */
};

struct journal_cursor {
	struct journal *j;
	uint64_t since, until;
	int *fds;                       /* the segments to read, oldest first; -1 until reached */
	uint64_t *seqs, *sizes;
	size_t n, cur;
	uint64_t off;                   /* in fds[cur] */
	unsigned char *rbuf;
	size_t rlen, rpos;              /* rbuf holds [off - rpos, off - rpos + rlen) */
	struct pool_event *ev;          /* the view handed out */
	bool done;
};

/* --- CRC32C --------------------------------------------------------------- */

static uint32_t crc_table[8][256];
static bool crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
	crc_ready = true;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

/* Slicing by eight: a table per byte position, eight bytes per step. */
static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
	if (!crc_ready)
		crc_init();
	while (len >= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
#if defined(__x86_64__)
	static int hw = -1;
	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (hw)
		return ~crc_hw(crc, p, len);
#endif
	/* byte-order note: the tables assume a little-endian host for the
	 * eight-byte step; a big-endian one takes the bytewise loop */
	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) {
		if (!crc_ready)
			crc_init();
		while (len--)
			crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		return ~crc;
	}
	return ~crc_sw(crc, p, len);
}

static uint32_t rec_crc(const struct rec_hdr *h, const void *payload, size_t len)
{
	uint32_t c = journal_crc32c(0, (const unsigned char *)h + 4, REC_HDR_SIZE - 4);
	return journal_crc32c(c, payload, len);
}

/* --- small helpers ------------------------------------------------------ */

static bool path_under(const char *p, size_t len, const char *prefix, size_t plen)
{
	if (plen == 1 && prefix[0] == '/')
		return len >= 1 && p[0] == '/';
	return len >= plen && memcmp(p, prefix, plen) == 0 && (len == plen || p[plen] == '/');
}

const char *journal_gap_reason_name(uint32_t reason)
{
	if (reason & JOURNAL_GAP_CORRUPT)
		return "corrupt";
	if (reason & JOURNAL_GAP_CRASHED)
		return "crashed";
	if (reason & JOURNAL_GAP_STOPPED)
		return "stopped";
	if (reason & JOURNAL_GAP_OVERFLOW)
		return "overflow";
	if (reason & JOURNAL_GAP_WRITE_ERROR)
		return "write_error";
	if (reason & JOURNAL_GAP_CUT)
		return "cut";
	return "unknown";
}

static int seg_idx_add(struct seg *s, uint64_t off, uint64_t id)
{
	if (s->n_idx && off - s->last_idx_off < IDX_STRIDE)
		return 0;
	if (s->n_idx == s->cap_idx) {
		size_t cap = s->cap_idx ? 2 * s->cap_idx : 16;
		struct idx_entry *n = realloc(s->idx, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->idx = n;
		s->cap_idx = cap;
	}
	s->idx[s->n_idx++] = (struct idx_entry){ .off = off, .id = id, .tmax_before = s->tmax };
	s->last_idx_off = off;
	return 0;
}

/* What a record at @off with @id and @time does to its segment's summary. */
static int seg_note(struct seg *s, uint64_t off, uint64_t id, uint64_t time_ns, size_t total)
{
	int r = seg_idx_add(s, off, id);
	if (r < 0)
		return r;
	if (id > s->last_id)
		s->last_id = id;
	if (!s->first_time)
		s->first_time = time_ns;
	if (time_ns > s->tmax)
		s->tmax = time_ns;
	s->size = off + total;
	return 0;
}

static int gap_add(struct journal *j, const struct journal_gap *g)
{
	if (j->n_gaps == GAPS_MAX) {
		memmove(j->gaps, j->gaps + 1, (GAPS_MAX - 1) * sizeof(*j->gaps));
		j->n_gaps--;
	}
	if (!j->gaps) {
		j->gaps = calloc(GAPS_MAX, sizeof(*j->gaps));
		if (!j->gaps)
			return -ENOMEM;
	}
	j->gaps[j->n_gaps++] = *g;
	return 0;
}

static void seg_clear(struct seg *s)
{
	free(s->idx);
	s->idx = NULL;
	s->n_idx = s->cap_idx = 0;
}

/* --- checking at open ------------------------------------------------------ */

/* Is the event payload @p (@len bytes) consistent with itself? */
static bool event_valid(const unsigned char *p, size_t len)
{
	struct rec_event e;

	if (len < sizeof(e))
		return false;
	memcpy(&e, p, sizeof(e));
	if (e.path_len >= FSNOTE_PATH_MAX || e.dest_len >= FSNOTE_PATH_MAX ||
	    e.dir_len > POOL_HANDLE_MAX || e.ddir_len > POOL_HANDLE_MAX || e.type == 0 ||
	    e.type > FSNOTE_EV_MAX)
		return false;
	size_t want = sizeof(e) + (size_t)e.path_len + e.dest_len + e.dir_len + e.ddir_len;
	if (want != len)
		return false;
	const unsigned char *s = p + sizeof(e);
	return !memchr(s, 0, (size_t)e.path_len + e.dest_len);
}

struct scan {
	uint64_t last_id, last_time;
	bool clean;
	bool any;
};

/* Checks one segment, record by record, building its index; cuts it at the
 * first record that fails.  Returns 0 (with *ret_cut when something was
 * cut) or -errno for an I/O error. */
static int scan_segment(struct journal *j, struct seg *s, int fd, uint64_t file_size,
			struct scan *sc, bool *ret_cut)
{
	unsigned char *buf = malloc(JBUF_SIZE + REC_HDR_SIZE + REC_PAYLOAD_MAX);
	uint64_t off = SEG_HDR_SIZE;        /* of buf[0] */
	size_t have = 0, pos = 0;
	bool cut = false;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	s->size = SEG_HDR_SIZE;
	for (;;) {
		/* make sure a whole header, then a whole record, is in buf */
		if (have - pos < REC_HDR_SIZE + REC_PAYLOAD_MAX && off + have < file_size) {
			memmove(buf, buf + pos, have - pos);
			off += pos;
			have -= pos;
			pos = 0;
			ssize_t n = pread(fd, buf + have, JBUF_SIZE + REC_HDR_SIZE + REC_PAYLOAD_MAX - have,
					  (off_t)(off + have));
			if (n < 0) {
				r = -errno;
				break;
			}
			have += (size_t)n;
		}
		uint64_t rec_off = off + pos;
		if (rec_off == file_size)
			break;
		struct rec_hdr h;
		if (have - pos < REC_HDR_SIZE) {
			cut = true;
			break;
		}
		memcpy(&h, buf + pos, REC_HDR_SIZE);
		if (h.len > REC_PAYLOAD_MAX || have - pos - REC_HDR_SIZE < h.len ||
		    rec_crc(&h, buf + pos + REC_HDR_SIZE, h.len) != h.crc || h.id < s->base_id ||
		    (sc->any && h.id < sc->last_id)) {
			cut = true;
			break;
		}
		const unsigned char *pl = buf + pos + REC_HDR_SIZE;
		if (h.kind == REC_EVENT) {
			if (!event_valid(pl, h.len)) {
				cut = true;
				break;
			}
		} else if (h.kind == REC_GAP) {
			struct rec_gap g;
			if (h.len != sizeof(g)) {
				cut = true;
				break;
			}
			memcpy(&g, pl, sizeof(g));
			struct journal_gap jg = { g.reason, g.id_first, g.id_last, g.time_first,
						  g.time_last, g.dev };
			r = gap_add(j, &jg);
			if (r < 0)
				break;
		} else if (h.kind != REC_STOP || h.len != 0) {
			cut = true;
			break;
		}
		r = seg_note(s, rec_off, h.id, h.time_ns, REC_HDR_SIZE + h.len);
		if (r < 0)
			break;
		sc->last_id = h.id;
		if (h.time_ns > sc->last_time)
			sc->last_time = h.time_ns;
		sc->clean = h.kind == REC_STOP;
		sc->any = true;
		pos += REC_HDR_SIZE + h.len;
	}
	free(buf);
	if (r < 0)
		return r;
	if (cut && ftruncate(fd, (off_t)s->size) < 0)
		return -errno;
	*ret_cut = cut;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Lists the segment sequence numbers in the directory, sorted. */
static int list_segments(int dirfd, uint64_t **ret, size_t *ret_n)
{
	int fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	DIR *dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	rewinddir(dir);
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		char *end;
		size_t l = strlen(de->d_name);
		if (l != 20 || strcmp(de->d_name + 16, ".fsj") != 0)
			continue;
		unsigned long long seq = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			uint64_t *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				closedir(dir);
				return -ENOMEM;
			}
			v = nv;
		}
		v[n++] = seq;
	}
	closedir(dir);
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void seg_name(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%016llx.fsj", (unsigned long long)seq);
}

static bool seg_hdr_valid(const struct seg_hdr *h, uint64_t seq)
{
	return memcmp(h->magic, SEG_MAGIC, 8) == 0 && h->version == SEG_VERSION &&
	       h->hdr_size == SEG_HDR_SIZE && h->seq == seq &&
	       journal_crc32c(0, h, offsetof(struct seg_hdr, crc)) == h->crc;
}

static int load(struct journal *j, uint64_t now_ns)
{
	uint64_t *seqs = NULL;
	size_t n = 0;
	struct scan sc = { 0 };
	int r = list_segments(j->dirfd, &seqs, &n);

	if (r < 0)
		return r;
	j->segs = calloc(n + 1, sizeof(*j->segs));
	if (!j->segs) {
		free(seqs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		char name[32];
		struct seg_hdr h;
		struct stat st;
		seg_name(seqs[i], name, sizeof(name));
		int fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			r = -errno;
			break;
		}
		bool cut = false;
		struct seg *s = &j->segs[j->n_segs];
		*s = (struct seg){ .seq = seqs[i] };
		if (fstat(fd, &st) < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
		    !seg_hdr_valid(&h, seqs[i]) || (sc.any && h.base_id < sc.last_id)) {
			/* nothing in it can be placed: it goes, and its loss
			 * is what lies between its neighbours */
			close(fd);
			(void)unlinkat(j->dirfd, name, 0);
			log_warn("journal: %s/%s has no valid header: removed, its events are a gap",
				 j->dir, name);
			cut = true;
		} else {
			s->base_id = s->last_id = h.base_id;
			s->created_ns = h.created_ns;
			r = scan_segment(j, s, fd, (uint64_t)st.st_size, &sc, &cut);
			close(fd);
			if (r < 0)
				break;
			if (cut)
				log_warn("journal: %s/%s is damaged after byte %llu (a torn write or "
					 "corruption): cut there, what followed is a gap",
					 j->dir, name, (unsigned long long)s->size);
			j->n_segs++;
		}
		if (cut && !j->tail_cut) {
			j->tail_cut = true;
			j->cut_after_id = sc.last_id;
			j->cut_time = sc.last_time;
		}
		if (cut && i + 1 < n) {
			/* a cut in the middle: the next segment's base closes it */
			char nname[32];
			struct seg_hdr nh;
			seg_name(seqs[i + 1], nname, sizeof(nname));
			int nfd = openat(j->dirfd, nname, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (nfd >= 0 && pread(nfd, &nh, sizeof(nh), 0) == (ssize_t)sizeof(nh) &&
			    seg_hdr_valid(&nh, seqs[i + 1])) {
				struct journal_gap g = {
					.reason = JOURNAL_GAP_CORRUPT,
					.id_first = j->cut_after_id + 1,
					.id_last = nh.base_id + 1,
					.time_first = j->cut_time,
					.time_last = nh.created_ns,
				};
				r = gap_add(j, &g);
				j->tail_cut = false; /* told */
			}
			if (nfd >= 0)
				close(nfd);
		}
	}
	free(seqs);
	if (r < 0)
		return r;
	j->last_id = sc.last_id;
	j->last_time = sc.last_time;
	j->clean = sc.clean;
	/* a journal whose segments all went is no journal at all */
	if (j->n_segs && !sc.any && !j->tail_cut)
		j->clean = true;
	(void)now_ns;
	return 0;
}

/* --- exclusions and filesystem identity ------------------------------------- */

/* @path's location in its filesystem's own path space (the space the
 * fanotify source reports in), from the nearest ancestor that exists. */
static int resolve_excl(const char *path, struct excl *ret)
{
	size_t len = strlen(path);
	char *anc = strdup(path);
	struct stat st;
	struct mountinfo_entry *mi = NULL;
	int r = -ENOENT;

	if (!anc)
		return -ENOMEM;
	while (len > 1 && anc[len - 1] == '/')
		anc[--len] = '\0';
	*ret = (struct excl){ 0 };
	ret->abs = strdup(anc);
	if (!ret->abs) {
		free(anc);
		return -ENOMEM;
	}
	ret->abs_len = len;
	size_t alen = len;
	while (stat(anc, &st) < 0) {
		char *slash = strrchr(anc, '/');
		if (!slash || slash == anc) {
			alen = 1;
			anc[1] = '\0';
			if (stat(anc, &st) < 0)
				goto out;
			break;
		}
		*slash = '\0';
		alen = (size_t)(slash - anc);
	}
	mi = malloc(sizeof(*mi));
	int fd = open(anc, O_PATH | O_CLOEXEC);
	if (!mi || fd < 0 || mountinfo_of_fd(fd, mi) < 0) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	ret->dev = (uint64_t)st.st_dev;
	/* anc = point + inside; fsrel = root + inside + the part that is missing */
	size_t pl = strlen(mi->point);
	const char *inside = anc + (pl == 1 ? 0 : pl);
	if (!path_under(anc, alen, mi->point, pl))
		goto out;
	const char *rest = path + alen;
	size_t rl = strlen(mi->root);
	const char *root = rl == 1 ? "" : mi->root;
	size_t need = strlen(root) + strlen(inside) + (len - alen) + 2;
	ret->fsrel = malloc(need);
	if (!ret->fsrel) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(ret->fsrel, need, "%s%s%.*s", root, inside, (int)(len - alen), rest);
	if (!ret->fsrel[0])
		strcpy(ret->fsrel, "/");
	ret->fsrel_len = strlen(ret->fsrel);
	r = 0;
out:
	free(mi);
	free(anc);
	if (r == -ENOMEM) {
		free(ret->abs);
		free(ret->fsrel);
		return r;
	}
	return 0; /* unresolved: matched by the absolute path alone */
}

static void excl_clear(struct journal *j)
{
	for (size_t i = 0; i < j->n_excl; i++) {
		free(j->excl[i].abs);
		free(j->excl[i].fsrel);
	}
	free(j->excl);
	j->excl = NULL;
	j->n_excl = 0;
}

static int excl_set(struct journal *j, char *const *paths, size_t n)
{
	struct excl *v = n ? calloc(n, sizeof(*v)) : NULL;
	if (n && !v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = resolve_excl(paths[i], &v[i]);
		if (r < 0) {
			for (size_t k = 0; k < i; k++) {
				free(v[k].abs);
				free(v[k].fsrel);
			}
			free(v);
			return r;
		}
	}
	excl_clear(j);
	j->excl = v;
	j->n_excl = n;
	return 0;
}

/* Source paths are the daemon's absolute paths (inotify) or paths from the
 * filesystem's root (fanotify): an exclusion matches either.  Matching one
 * too many only keeps more out of the journal. */
static bool excl_match(const struct excl *x, uint64_t dev, const char *p, size_t len)
{
	if (!x->abs || (x->dev && dev && x->dev != dev))
		return false;
	return path_under(p, len, x->abs, x->abs_len) ||
	       (x->fsrel && path_under(p, len, x->fsrel, x->fsrel_len));
}

static bool excluded(const struct journal *j, uint64_t dev, const char *p, size_t len)
{
	if (excl_match(&j->own, dev, p, len))
		return true;
	for (size_t i = 0; i < j->n_excl; i++)
		if (excl_match(&j->excl[i], dev, p, len))
			return true;
	return false;
}

bool journal_is_own(const struct journal *j, uint64_t dev, const char *path, size_t len)
{
	return j && excl_match(&j->own, dev, path, len);
}

bool journal_may_exclude(const struct journal *j, uint64_t dev, const char *root)
{
	size_t rl = strlen(root);

	for (size_t i = 0; j && i < j->n_excl; i++) {
		const struct excl *x = &j->excl[i];
		if (x->dev && dev && x->dev != dev)
			continue;
		if (path_under(x->abs, x->abs_len, root, rl) || path_under(root, rl, x->abs, x->abs_len))
			return true;
	}
	return false;
}

struct fsid_find {
	uint64_t dev;
	char point[MOUNTINFO_STR_MAX];
	bool found;
};

static int fsid_find_cb(const struct mountinfo_entry *e, void *userdata)
{
	struct fsid_find *f = userdata;
	if (e->dev != f->dev)
		return 0;
	snprintf(f->point, sizeof(f->point), "%s", e->point);
	f->found = true;
	return 1;
}

static uint64_t fsid_from(const struct statfs *sfs)
{
	uint32_t v[2];
	memcpy(v, &sfs->f_fsid, sizeof(v));
	return (uint64_t)v[0] | (uint64_t)v[1] << 32;
}

void journal_note_fs_fd(struct journal *j, uint64_t dev, int fd, uint64_t current_id)
{
	struct statfs sfs;

	if (!dev || fstatfs(fd, &sfs) < 0)
		return;
	uint64_t fsid = fsid_from(&sfs);
	for (size_t i = 0; i < j->n_fsids; i++) {
		if (j->fsids[i].dev == dev) {
			if (j->fsids[i].fsid != fsid)
				j->fsids[i].epoch = current_id;
			j->fsids[i].fsid = fsid;
			return;
		}
	}
	struct fsid_entry *n = realloc(j->fsids, (j->n_fsids + 1) * sizeof(*n));
	if (n) {
		j->fsids = n;
		j->fsids[j->n_fsids++] = (struct fsid_entry){ dev, fsid, 0 };
	}
}

uint64_t journal_fs_epoch(const struct journal *j, uint64_t dev)
{
	for (size_t i = 0; j && i < j->n_fsids; i++)
		if (j->fsids[i].dev == dev)
			return j->fsids[i].epoch;
	return 0;
}

uint64_t journal_fsid_of(struct journal *j, uint64_t dev)
{
	if (!dev)
		return 0;
	for (size_t i = 0; i < j->n_fsids; i++)
		if (j->fsids[i].dev == dev)
			return j->fsids[i].fsid;
	uint64_t fsid = 0;
	struct fsid_find *f = malloc(sizeof(*f));
	if (f) {
		f->dev = dev;
		f->found = false;
		struct statfs sfs;
		if (mountinfo_foreach(fsid_find_cb, f) >= 0 && f->found && statfs(f->point, &sfs) == 0)
			fsid = fsid_from(&sfs);
		free(f);
	}
	struct fsid_entry *n = realloc(j->fsids, (j->n_fsids + 1) * sizeof(*n));
	if (n) {
		j->fsids = n;
		j->fsids[j->n_fsids++] = (struct fsid_entry){ dev, fsid, 0 };
	}
	return fsid;
}

/* --- open and close ----------------------------------------------------------- */

static void apply_bounds(struct journal *j, const struct journal_config *cfg)
{
	j->max_bytes = cfg->max_bytes;
	j->max_age_ns = cfg->max_age_ns;
	j->sync_ms = cfg->sync_ms ? cfg->sync_ms : 1000;
	/* eight segments or more, so that retention takes an eighth at a time */
	uint64_t sm = cfg->max_bytes / 8;
	j->seg_max = sm < SEG_MIN ? SEG_MIN : sm > SEG_MAX ? SEG_MAX : sm;
}

int journal_open(const struct journal_config *cfg, uint64_t now_ns, struct journal **ret)
{
	struct journal *j;
	int r;

	if (!cfg->dir || cfg->dir[0] != '/')
		return -EINVAL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->dirfd = j->lockfd = j->fd = j->sync_fd = -1;
	pthread_mutex_init(&j->sync_lock, NULL);
	pthread_cond_init(&j->sync_cond, NULL);
	apply_bounds(j, cfg);
	j->dir = strdup(cfg->dir);
	j->buf = malloc(JBUF_SIZE);
	if (!j->dir || !j->buf) {
		r = -ENOMEM;
		goto fail;
	}
	/* resident from the start: fixed memory shows before the first burst */
	memset(j->buf, 0xff, JBUF_SIZE);
	/* the names of every user's files: the daemon's eyes only */
	if (mkdir(cfg->dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		goto fail;
	}
	j->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (j->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(j->dirfd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		r = -EPERM; /* someone else's directory: never write names there */
		goto fail;
	}
	if ((st.st_mode & 077) && fchmod(j->dirfd, 0700) < 0) {
		r = -errno;
		goto fail;
	}
	j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->lockfd < 0) {
		r = -errno;
		goto fail;
	}
	if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	r = load(j, now_ns);
	if (r < 0)
		goto fail;
	r = excl_set(j, cfg->exclude, cfg->n_exclude);
	if (r < 0)
		goto fail;
	r = resolve_excl(cfg->dir, &j->own);
	if (r < 0)
		goto fail;
	*ret = j;
	return 0;
fail:
	journal_free(j);
	return r;
}

int journal_set_config(struct journal *j, const struct journal_config *cfg)
{
	int r = excl_set(j, cfg->exclude, cfg->n_exclude);
	if (r < 0)
		return r;
	apply_bounds(j, cfg);
	if (j->timer && j->started) {
		struct timeval tv = { j->sync_ms / 1000, (j->sync_ms % 1000) * 1000 };
		evtimer_add(j->timer, &tv);
	}
	return 0;
}

struct journal *journal_free(struct journal *j)
{
	if (!j)
		return NULL;
	if (j->fd >= 0) {
		(void)journal_flush(j, true);
		close(j->fd);
	}
	if (j->syncer_running) {
		pthread_mutex_lock(&j->sync_lock);
		j->sync_stop = true;
		pthread_cond_broadcast(&j->sync_cond);
		pthread_mutex_unlock(&j->sync_lock);
		pthread_join(j->syncer, NULL);
	}
	pthread_mutex_destroy(&j->sync_lock);
	pthread_cond_destroy(&j->sync_cond);
	if (j->timer)
		event_free(j->timer);
	for (size_t i = 0; i < j->n_segs; i++)
		seg_clear(&j->segs[i]);
	free(j->segs);
	free(j->gaps);
	free(j->fsids);
	excl_clear(j);
	free(j->own.abs);
	free(j->own.fsrel);
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	free(j->buf);
	free(j->dir);
	free(j);
	return NULL;
}

uint64_t journal_last_id(const struct journal *j)
{
	return j->last_id;
}

uint64_t journal_floor(const struct journal *j)
{
	return j->n_segs ? j->segs[0].base_id : j->last_id;
}

/* --- writing ------------------------------------------------------------------ */

/* Writes the buffer to the active segment.  On failure the segment is cut
 * back to what was on disk and the buffered records become a gap. */
static int write_buffer(struct journal *j)
{
	size_t done = 0;
	int r = 0;

	while (done < j->buf_len) {
		ssize_t n = write(j->fd, j->buf + done, j->buf_len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (r == 0) {
		j->written += j->buf_len;
		j->buf_len = 0;
		j->durable_id = j->buf_last_id;
		j->dirty = true;
		return 0;
	}
	/* never leave half a record behind */
	if (ftruncate(j->fd, (off_t)j->written) < 0 || lseek(j->fd, (off_t)j->written, SEEK_SET) < 0)
		r = r ? r : -errno;
	struct seg *s = &j->segs[j->n_segs - 1];
	s->size = j->written;
	while (s->n_idx && s->idx[s->n_idx - 1].off >= j->written)
		s->n_idx--;
	s->last_idx_off = s->n_idx ? s->idx[s->n_idx - 1].off : 0;
	s->last_id = j->durable_id > s->base_id ? j->durable_id : s->base_id;
	if (!j->failing) {
		j->failing = true;
		j->fail_after_id = j->durable_id;
		/* the newest record known to be on disk is at least that */
		j->fail_time = j->last_time;
		log_warn("journal: cannot write to %s: %s; events are missing until it can",
			 j->dir, strerror(-r));
	}
	j->write_errors++;
	j->buf_len = 0;
	return r;
}

static void retention(struct journal *j, uint64_t now_ns);
static int rotate(struct journal *j, uint64_t now_ns);
static void syncer_wait(struct journal *j);

/* Appends one record to the buffer (writing it out first when full). */
static int put_record(struct journal *j, uint16_t kind, uint64_t id, uint64_t time_ns,
		      const void *a, size_t alen, const void *b, size_t blen, const void *c,
		      size_t clen, const void *d, size_t dlen, const void *e, size_t elen)
{
	size_t len = alen + blen + clen + dlen + elen;
	size_t total = REC_HDR_SIZE + len;
	struct seg *s = &j->segs[j->n_segs - 1];
	int r;

	if (s->size + total > j->seg_max && s->size > SEG_HDR_SIZE) {
		r = rotate(j, time_ns);
		if (r < 0)
			return r;
		s = &j->segs[j->n_segs - 1];
	}
	if (j->buf_len + total > JBUF_SIZE) {
		r = write_buffer(j);
		if (r < 0)
			return r;
	}
	struct rec_hdr h = { .len = (uint32_t)len, .kind = kind, .id = id, .time_ns = time_ns };
	unsigned char *p = j->buf + j->buf_len + REC_HDR_SIZE;
	size_t o = 0;
	if (alen)
		memcpy(p + o, a, alen), o += alen;
	if (blen)
		memcpy(p + o, b, blen), o += blen;
	if (clen)
		memcpy(p + o, c, clen), o += clen;
	if (dlen)
		memcpy(p + o, d, dlen), o += dlen;
	if (elen)
		memcpy(p + o, e, elen), o += elen;
	h.crc = rec_crc(&h, p, len);
	memcpy(j->buf + j->buf_len, &h, REC_HDR_SIZE);
	r = seg_note(s, s->size, id, time_ns, total);
	if (r < 0)
		return r;
	j->buf_len += total;
	j->buf_last_id = id;
	if (id > j->last_id)
		j->last_id = id;
	if (time_ns > j->last_time)
		j->last_time = time_ns;
	j->clean = kind == REC_STOP;
	return 0;
}

static int put_gap(struct journal *j, const struct journal_gap *g)
{
	struct rec_gap rg = { g->reason, g->id_first, g->id_last, g->time_first, g->time_last, g->dev };
	int r = put_record(j, REC_GAP, g->id_last, g->time_last, &rg, sizeof(rg), NULL, 0, NULL, 0,
			   NULL, 0, NULL, 0);
	if (r < 0)
		return r;
	return gap_add(j, g);
}

/* A record that could not be taken (no memory for the index, a failed
 * write): what follows the last one taken is missing until a gap says so. */
static void note_loss(struct journal *j)
{
	j->write_errors++;
	if (j->failing)
		return;
	j->failing = true;
	j->fail_after_id = j->buf_last_id;
	j->fail_time = j->last_time;
}

/* After a failed write: once writing works again the loss is a gap. */
static int settle_failure(struct journal *j, uint64_t next_id, uint64_t now_ns)
{
	if (!j->failing)
		return 0;
	struct journal_gap g = {
		.reason = JOURNAL_GAP_WRITE_ERROR,
		.id_first = j->fail_after_id + 1,
		.id_last = next_id,
		.time_first = j->fail_time,
		.time_last = now_ns,
	};
	j->failing = false;
	int r = put_gap(j, &g);
	if (r < 0) {
		j->failing = true;
		return r;
	}
	log_notice("journal: taking events again after a failure; IDs %llu to %llu are a gap",
		   (unsigned long long)g.id_first, (unsigned long long)g.id_last);
	return 0;
}

static int open_segment(struct journal *j, uint64_t base_id, uint64_t now_ns)
{
	uint64_t seq = j->n_segs ? j->segs[j->n_segs - 1].seq + 1 : 1;
	char name[32];
	struct seg_hdr h = { .version = SEG_VERSION, .hdr_size = SEG_HDR_SIZE, .seq = seq,
			     .base_id = base_id, .created_ns = now_ns };

	memcpy(h.magic, SEG_MAGIC, 8);
	h.crc = journal_crc32c(0, &h, offsetof(struct seg_hdr, crc));
	struct seg *segs = realloc(j->segs, (j->n_segs + 1) * sizeof(*segs));
	if (!segs)
		return -ENOMEM;
	j->segs = segs;
	seg_name(seq, name, sizeof(name));
	int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
			0600);
	if (fd < 0)
		return -errno;
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h)) {
		int r = errno ? -errno : -EIO;
		close(fd);
		(void)unlinkat(j->dirfd, name, 0);
		return r;
	}
	/* the new name must survive a crash as much as what goes in it */
	(void)fsync(j->dirfd);
	j->segs[j->n_segs++] = (struct seg){ .seq = seq, .base_id = base_id, .last_id = base_id,
					      .created_ns = now_ns, .size = SEG_HDR_SIZE };
	j->fd = fd;
	j->written = SEG_HDR_SIZE;
	return 0;
}

static int rotate(struct journal *j, uint64_t now_ns)
{
	int r = 0;

	if (j->buf_len)
		r = write_buffer(j);
	if (j->fd >= 0 && j->syncer_running) {
		/* the full segment is synced (and closed) off the loop */
		syncer_wait(j);
		pthread_mutex_lock(&j->sync_lock);
		j->sync_fd = j->fd;
		pthread_cond_broadcast(&j->sync_cond);
		pthread_mutex_unlock(&j->sync_lock);
		j->fd = -1;
	} else if (j->fd >= 0) {
		(void)fdatasync(j->fd);
		close(j->fd);
		j->fd = -1;
	}
	j->dirty = false;
	int r2 = open_segment(j, j->last_id, now_ns);
	if (r2 < 0) {
		log_warn("journal: cannot start a new segment in %s: %s", j->dir, strerror(-r2));
		/* keep appending to the old one rather than lose events */
		char name[32];
		seg_name(j->segs[j->n_segs - 1].seq, name, sizeof(name));
		j->fd = openat(j->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
		j->written = j->segs[j->n_segs - 1].size;
		return j->fd < 0 ? -errno : r;
	}
	retention(j, now_ns);
	return r;
}

/* Oldest segments go first, until the journal is within its bounds; the
 * active one always stays. */
static void retention(struct journal *j, uint64_t now_ns)
{
	uint64_t total = 0;
	size_t drop = 0;

	for (size_t i = 0; i < j->n_segs; i++)
		total += j->segs[i].size;
	while (drop + 1 < j->n_segs) {
		const struct seg *s = &j->segs[drop];
		bool too_old = j->max_age_ns && s->tmax && now_ns > j->max_age_ns &&
			       s->tmax < now_ns - j->max_age_ns;
		if (total <= j->max_bytes && !too_old)
			break;
		char name[32];
		seg_name(s->seq, name, sizeof(name));
		if (unlinkat(j->dirfd, name, 0) < 0 && errno != ENOENT)
			break;
		total -= s->size;
		seg_clear(&j->segs[drop]);
		drop++;
	}
	if (!drop)
		return;
	memmove(j->segs, j->segs + drop, (j->n_segs - drop) * sizeof(*j->segs));
	j->n_segs -= drop;
	/* gaps wholly below the floor are covered by the cut */
	uint64_t floor = j->segs[0].base_id;
	size_t k = 0;
	while (k < j->n_gaps && j->gaps[k].id_last <= floor)
		k++;
	if (k) {
		memmove(j->gaps, j->gaps + k, (j->n_gaps - k) * sizeof(*j->gaps));
		j->n_gaps -= k;
	}
}

static void *syncer_main(void *arg)
{
	struct journal *j = arg;

	pthread_mutex_lock(&j->sync_lock);
	for (;;) {
		while (j->sync_fd < 0 && !j->sync_stop)
			pthread_cond_wait(&j->sync_cond, &j->sync_lock);
		if (j->sync_fd < 0)
			break;
		int fd = j->sync_fd;
		pthread_mutex_unlock(&j->sync_lock);
		int r = fdatasync(fd) < 0 ? errno : 0;
		close(fd);
		pthread_mutex_lock(&j->sync_lock);
		j->sync_fd = -1;
		if (r)
			j->sync_err = r;
		pthread_cond_broadcast(&j->sync_cond);
	}
	pthread_mutex_unlock(&j->sync_lock);
	return NULL;
}

/* Waits until the thread holds nothing (so that a synchronous sync or a
 * close after it covers everything). */
static void syncer_wait(struct journal *j)
{
	if (!j->syncer_running)
		return;
	pthread_mutex_lock(&j->sync_lock);
	while (j->sync_fd >= 0)
		pthread_cond_wait(&j->sync_cond, &j->sync_lock);
	pthread_mutex_unlock(&j->sync_lock);
}

/* Writes the buffer and hands the sync to the thread; when the thread is
 * still busy with the last one, this round's sync is left to the next. */
static void sync_async(struct journal *j)
{
	if (j->buf_len)
		(void)write_buffer(j);
	if (!j->dirty || j->fd < 0)
		return;
	pthread_mutex_lock(&j->sync_lock);
	if (j->sync_err) {
		log_warn("journal: cannot sync %s: %s", j->dir, strerror(j->sync_err));
		j->write_errors++;
		j->sync_err = 0;
	}
	if (j->sync_fd < 0) {
		j->sync_fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 3);
		if (j->sync_fd >= 0) {
			j->dirty = false;
			pthread_cond_broadcast(&j->sync_cond);
		}
	}
	pthread_mutex_unlock(&j->sync_lock);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct journal *j = arg;
	uint64_t now = 0;
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (j->syncer_running)
		sync_async(j);
	else
		(void)journal_flush(j, true);
	/* let an idle active segment age out too */
	struct seg *s = &j->segs[j->n_segs - 1];
	if (j->max_age_ns && s->first_time && now > s->first_time &&
	    now - s->first_time > j->max_age_ns / 4 && s->size > SEG_HDR_SIZE)
		(void)rotate(j, now);
	else
		retention(j, now);
}

int journal_start(struct journal *j, struct event_base *base, uint64_t first_id, uint64_t now_ns)
{
	bool had_records = j->last_id != 0 || j->n_gaps || j->tail_cut;
	uint64_t prev_last = j->last_id, prev_time = j->last_time;
	int r;

	if (first_id < j->last_id)
		return -EINVAL;
	/* a new journal reaches back to this run's start, no further */
	r = open_segment(j, had_records ? j->last_id : first_id, now_ns);
	if (r < 0)
		return r;
	j->durable_id = j->buf_last_id = j->last_id;
	if (had_records) {
		struct journal_gap g = {
			.reason = j->clean ? JOURNAL_GAP_STOPPED : JOURNAL_GAP_CRASHED,
			.id_first = prev_last + 1,
			.id_last = first_id,
			.time_first = prev_time,
			.time_last = now_ns,
		};
		if (j->tail_cut) {
			g.reason |= JOURNAL_GAP_CORRUPT;
			g.id_first = j->cut_after_id + 1;
		}
		r = put_gap(j, &g);
		if (r < 0)
			return r;
	}
	j->tail_cut = false;
	r = journal_flush(j, true);
	if (r < 0)
		return r;
	retention(j, now_ns);
	if (base) {
		j->timer = event_new(base, -1, EV_PERSIST, timer_cb, j);
		if (!j->timer)
			return -ENOMEM;
		/* without the thread, the timer syncs on the loop itself */
		if (pthread_create(&j->syncer, NULL, syncer_main, j) == 0)
			j->syncer_running = true;
		struct timeval tv = { j->sync_ms / 1000, (j->sync_ms % 1000) * 1000 };
		evtimer_add(j->timer, &tv);
	}
	j->started = true;
	return 0;
}

int journal_stop(struct journal *j, uint64_t last_id, uint64_t now_ns)
{
	if (!j->started)
		return 0;
	(void)settle_failure(j, last_id + 1, now_ns);
	if (last_id < j->last_id)
		last_id = j->last_id;
	int r = put_record(j, REC_STOP, last_id, now_ns, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
	int r2 = journal_flush(j, true);
	return r < 0 ? r : r2;
}

int journal_append(struct journal *j, const struct pool_event *ev)
{
	if (!j->started)
		return -ENOTCONN;
	if (j->n_excl && (excluded(j, ev->dev, ev->path, ev->path_len) ||
			  (ev->dest && excluded(j, ev->dev, ev->dest, ev->dest_len)))) {
		j->excluded++;
		return 1;
	}
	if (j->failing) {
		int r = settle_failure(j, ev->id, ev->time_ns);
		if (r < 0)
			return r;
	}
	size_t dir_len = ev->dir.bytes ? ev->dir.len : 0;
	size_t ddir_len = ev->dest && ev->dest_dir.bytes ? ev->dest_dir.len : 0;
	struct rec_event e = {
		.type = ev->type,
		.path_len = ev->path_len,
		.dest_len = ev->dest ? ev->dest_len : 0,
		.dir_len = (uint8_t)dir_len,
		.ddir_len = (uint8_t)ddir_len,
		.flags = ev->flags,
		.pid = ev->pid,
		.actor_uid = ev->actor_uid,
		.bits = (ev->st.valid ? EVB_ST : 0) | (ev->dest_st.valid ? EVB_DEST_ST : 0) |
			(ev->dir.self ? EVB_DIR_SELF : 0) | (ev->dest_dir.self ? EVB_DDIR_SELF : 0) |
			(ev->dest ? EVB_DEST : 0),
		.dir_type = ev->dir.type,
		.ddir_type = ev->dest_dir.type,
		.dev = ev->dev,
		.fsid = journal_fsid_of(j, ev->dev),
		.st_ino = ev->st.ino,
		.st_mode = ev->st.mode,
		.st_uid = ev->st.uid,
		.st_gid = ev->st.gid,
		.dst_ino = ev->dest_st.ino,
		.dst_mode = ev->dest_st.mode,
		.dst_uid = ev->dest_st.uid,
		.dst_gid = ev->dest_st.gid,
		.dir_ino = ev->dir.ino,
		.ddir_ino = ev->dest_dir.ino,
	};
	int r = put_record(j, REC_EVENT, ev->id, ev->time_ns, &e, sizeof(e), ev->path, ev->path_len,
			   ev->dest, e.dest_len, ev->dir.bytes, dir_len, ev->dest_dir.bytes, ddir_len);
	if (r == 0)
		j->appended++;
	else
		note_loss(j);
	return r;
}

int journal_note_gap(struct journal *j, uint32_t reason, uint64_t after_id, uint64_t dev,
		     uint64_t now_ns)
{
	if (!j->started)
		return -ENOTCONN;
	struct journal_gap g = {
		.reason = reason,
		.id_first = after_id + 1,
		.id_last = after_id + 1,
		.time_first = now_ns,
		.time_last = now_ns,
		.dev = dev,
	};
	int r = put_gap(j, &g);
	if (r < 0)
		note_loss(j);
	return r;
}

int journal_flush(struct journal *j, bool sync)
{
	int r = 0;

	if (j->fd < 0)
		return 0;
	if (j->buf_len)
		r = write_buffer(j);
	if (sync)
		syncer_wait(j);
	if (sync && j->dirty) {
		if (fdatasync(j->fd) < 0 && r == 0)
			r = -errno;
		j->dirty = false;
	}
	return r;
}

/* --- reading -------------------------------------------------------------------- */

size_t journal_gaps(const struct journal *j, uint64_t since, uint64_t until, uint64_t dev,
		    void (*fn)(const struct journal_gap *g, void *userdata), void *userdata)
{
	size_t n = 0;
	uint64_t floor = journal_floor(j);

	if (since < floor) {
		struct journal_gap g = {
			.reason = JOURNAL_GAP_CUT,
			.id_first = since + 1,
			.id_last = floor,
			.time_first = 0,
			.time_last = j->n_segs ? j->segs[0].first_time : 0,
		};
		fn(&g, userdata);
		n++;
	}
	for (size_t i = 0; i < j->n_gaps; i++) {
		const struct journal_gap *g = &j->gaps[i];
		if (since >= g->id_last || g->id_first > until)
			continue;
		if (dev && g->dev && g->dev != dev)
			continue;
		fn(g, userdata);
		n++;
	}
	if (j->failing && until > j->fail_after_id) {
		struct journal_gap g = { JOURNAL_GAP_WRITE_ERROR, j->fail_after_id + 1, until,
					 j->fail_time, j->last_time, 0 };
		fn(&g, userdata);
		n++;
	}
	return n;
}

/* The index entry to start reading @s at for the first record with an ID
 * above @since: the last entry whose ID is at most @since. */
static uint64_t seek_id(const struct seg *s, uint64_t since)
{
	size_t lo = 0, hi = s->n_idx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].id <= since)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? s->idx[lo - 1].off : SEG_HDR_SIZE;
}

static int open_seg_ro(const struct journal *j, uint64_t seq)
{
	char name[32];
	seg_name(seq, name, sizeof(name));
	int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int journal_cursor_new(struct journal *j, uint64_t since, uint64_t until,
		       struct journal_cursor **ret)
{
	struct journal_cursor *c;
	size_t first = 0;
	int r;

	r = journal_flush(j, false);
	if (r < 0)
		return r;
	/* the first segment holding an ID above @since */
	while (first < j->n_segs && j->segs[first].last_id <= since)
		first++;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->j = j;
	c->since = since;
	c->until = until;
	c->n = j->n_segs - first;
	c->fds = calloc(c->n + 1, sizeof(*c->fds));
	c->seqs = calloc(c->n + 1, sizeof(*c->seqs));
	c->sizes = calloc(c->n + 1, sizeof(*c->sizes));
	c->rbuf = malloc(RBUF_SIZE + REC_HDR_SIZE + REC_PAYLOAD_MAX);
	c->ev = malloc(sizeof(*c->ev) + 2 * FSNOTE_PATH_MAX + 2 * POOL_HANDLE_MAX + 2);
	if (!c->fds || !c->seqs || !c->sizes || !c->rbuf || !c->ev) {
		journal_cursor_free(c);
		return -ENOMEM;
	}
	/* what the segments hold now is all the cursor reads (everything up
	 * to @until was written above); each is opened when reached, and one
	 * that retention removed meanwhile ends the cursor with -ESTALE */
	for (size_t i = 0; i < c->n; i++) {
		c->fds[i] = -1;
		c->seqs[i] = j->segs[first + i].seq;
		c->sizes[i] = j->segs[first + i].size;
	}
	if (c->n) {
		c->fds[0] = open_seg_ro(j, c->seqs[0]);
		if (c->fds[0] < 0) {
			r = c->fds[0];
			journal_cursor_free(c);
			return r;
		}
	}
	c->off = c->n ? seek_id(&j->segs[first], since) : 0;
	c->done = c->n == 0 || since >= until;
	*ret = c;
	return 0;
}

struct journal_cursor *journal_cursor_free(struct journal_cursor *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; c->fds && i < c->n; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	free(c->fds);
	free(c->seqs);
	free(c->sizes);
	free(c->rbuf);
	free(c->ev);
	free(c);
	return NULL;
}

/* Makes @need bytes at the cursor's offset available in rbuf.  Returns the
 * bytes available (fewer at the end of the segment) or -errno. */
static ssize_t cursor_fill(struct journal_cursor *c, size_t need)
{
	if (c->rlen - c->rpos >= need)
		return (ssize_t)(c->rlen - c->rpos);
	memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
	c->rlen -= c->rpos;
	c->rpos = 0;
	uint64_t end = c->sizes[c->cur];
	uint64_t at = c->off + c->rlen;
	size_t room = RBUF_SIZE + REC_HDR_SIZE + REC_PAYLOAD_MAX - c->rlen;
	if (at < end) {
		if (room > end - at)
			room = (size_t)(end - at);
		ssize_t n = pread(c->fds[c->cur], c->rbuf + c->rlen, room, (off_t)at);
		if (n < 0)
			return -errno;
		c->rlen += (size_t)n;
	}
	return (ssize_t)c->rlen;
}

static void fill_view(struct pool_event *ev, const struct rec_hdr *h, const unsigned char *pl)
{
	struct rec_event e;
	memcpy(&e, pl, sizeof(e));
	const unsigned char *p = pl + sizeof(e);
	char *d = ev->data;

	*ev = (struct pool_event){
		.id = h->id,
		.refs = 1,
		.type = e.type,
		.path_len = e.path_len,
		.dest_len = (e.bits & EVB_DEST) ? e.dest_len : 0,
		.flags = e.flags,
		.pid = e.pid,
		.actor_uid = e.actor_uid,
		.time_ns = h->time_ns,
		.dev = e.dev,
		.st = { .valid = e.bits & EVB_ST, .ino = e.st_ino, .mode = e.st_mode, .uid = e.st_uid,
			.gid = e.st_gid },
		.dest_st = { .valid = e.bits & EVB_DEST_ST, .ino = e.dst_ino, .mode = e.dst_mode,
			     .uid = e.dst_uid, .gid = e.dst_gid },
		.dir = { .ino = e.dir_ino, .type = e.dir_type, .len = e.dir_len,
			 .self = e.bits & EVB_DIR_SELF },
		.dest_dir = { .ino = e.ddir_ino, .type = e.ddir_type, .len = e.ddir_len,
			      .self = e.bits & EVB_DDIR_SELF },
		.delivered = true,
	};
	memcpy(d, p, e.path_len);
	d[e.path_len] = '\0';
	ev->path = d;
	p += e.path_len;
	d += e.path_len + 1;
	if (e.bits & EVB_DEST) {
		memcpy(d, p, e.dest_len);
		d[e.dest_len] = '\0';
		ev->dest = d;
		d += e.dest_len + 1;
	}
	p += e.dest_len;
	unsigned char *hb = (unsigned char *)d;
	memcpy(hb, p, e.dir_len);
	ev->dir.bytes = e.dir_len ? hb : NULL;
	p += e.dir_len;
	memcpy(hb + e.dir_len, p, e.ddir_len);
	ev->dest_dir.bytes = e.ddir_len ? hb + e.dir_len : NULL;
}

int journal_cursor_next(struct journal_cursor *c, struct pool_event **ret_ev,
			uint64_t *ret_fsid)
{
	while (!c->done) {
		if (c->off >= c->sizes[c->cur]) {
			close(c->fds[c->cur]);
			c->fds[c->cur] = -1;
			if (++c->cur == c->n) {
				c->done = true;
				break;
			}
			c->off = SEG_HDR_SIZE;
			c->rlen = c->rpos = 0;
			c->fds[c->cur] = open_seg_ro(c->j, c->seqs[c->cur]);
			if (c->fds[c->cur] < 0) {
				c->done = true;
				return c->fds[c->cur] == -ENOENT ? -ESTALE : c->fds[c->cur];
			}
			continue;
		}
		ssize_t avail = cursor_fill(c, REC_HDR_SIZE);
		if (avail < 0)
			return (int)avail;
		if ((size_t)avail < REC_HDR_SIZE)
			goto bad;
		struct rec_hdr h;
		memcpy(&h, c->rbuf + c->rpos, REC_HDR_SIZE);
		if (h.len > REC_PAYLOAD_MAX)
			goto bad;
		avail = cursor_fill(c, REC_HDR_SIZE + h.len);
		if (avail < 0)
			return (int)avail;
		if ((size_t)avail < REC_HDR_SIZE + h.len)
			goto bad;
		const unsigned char *pl = c->rbuf + c->rpos + REC_HDR_SIZE;
		if (rec_crc(&h, pl, h.len) != h.crc)
			goto bad;
		c->rpos += REC_HDR_SIZE + h.len;
		c->off += REC_HDR_SIZE + h.len;
		if (h.id <= c->since)
			continue;
		if (h.id > c->until) {
			c->done = true;
			break;
		}
		if (h.kind != REC_EVENT)
			continue;
		if (!event_valid(pl, h.len))
			goto bad;
		struct rec_event e;
		memcpy(&e, pl, sizeof(e));
		fill_view(c->ev, &h, pl);
		*ret_ev = c->ev;
		*ret_fsid = e.fsid;
		return 1;
	}
	return 0;
bad:
	/* changed under us since it was checked: nothing after it is trusted */
	c->done = true;
	return -EBADMSG;
}

int journal_id_at_time(struct journal *j, uint64_t time_ns, uint64_t *ret_id)
{
	size_t si = 0;

	if (!j->n_segs || j->last_id == 0)
		return -ENOENT;
	/* the first segment whose newest record is at or after @time_ns */
	while (si < j->n_segs && j->segs[si].tmax < time_ns)
		si++;
	if (si == j->n_segs)
		return -ENOENT;
	/* the oldest segment vouches for everything since it was opened */
	if (time_ns < j->segs[0].created_ns)
		return -ERANGE;
	int r = journal_flush(j, false);
	if (r < 0)
		return r;
	const struct seg *s = &j->segs[si];
	size_t lo = 0, hi = s->n_idx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].tmax_before < time_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t off = lo ? s->idx[lo - 1].off : SEG_HDR_SIZE;
	int fd = open_seg_ro(j, s->seq);
	if (fd < 0)
		return fd;
	size_t cap = IDX_STRIDE + REC_HDR_SIZE + REC_PAYLOAD_MAX;
	unsigned char *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	r = -ENOENT;
	size_t have = 0, pos = 0;
	for (;;) {
		if (have - pos < REC_HDR_SIZE + REC_PAYLOAD_MAX && off + have < s->size) {
			memmove(buf, buf + pos, have - pos);
			off += pos;
			have -= pos;
			pos = 0;
			size_t room = cap - have;
			if (room > s->size - (off + have))
				room = (size_t)(s->size - (off + have));
			ssize_t n = pread(fd, buf + have, room, (off_t)(off + have));
			if (n <= 0) {
				r = n < 0 ? -errno : -EIO;
				break;
			}
			have += (size_t)n;
		}
		if (have - pos < REC_HDR_SIZE)
			break;
		struct rec_hdr h;
		memcpy(&h, buf + pos, REC_HDR_SIZE);
		if (h.len > REC_PAYLOAD_MAX || have - pos - REC_HDR_SIZE < h.len) {
			r = -EBADMSG;
			break;
		}
		if (h.time_ns >= time_ns && (h.kind == REC_EVENT || h.kind == REC_GAP)) {
			uint64_t id = h.id;
			if (h.kind == REC_GAP) {
				/* the time falls in a gap: the answer crosses it */
				struct rec_gap g;
				memcpy(&g, buf + pos + REC_HDR_SIZE, sizeof(g));
				id = g.id_first;
			}
			*ret_id = id;
			r = 0;
			break;
		}
		pos += REC_HDR_SIZE + h.len;
	}
	free(buf);
	close(fd);
	return r;
}

/* --- status ------------------------------------------------------------------------ */

void journal_status(const struct journal *j, json_t *obj)
{
	uint64_t total = 0;

	for (size_t i = 0; i < j->n_segs; i++)
		total += j->segs[i].size;
	json_object_set_new(obj, "enabled", json_true());
	json_object_set_new(obj, "dir", json_string(j->dir));
	json_object_set_new(obj, "bytes", json_integer((json_int_t)total));
	json_object_set_new(obj, "max_bytes", json_integer((json_int_t)j->max_bytes));
	json_object_set_new(obj, "max_age_s", json_integer((json_int_t)(j->max_age_ns / 1000000000ull)));
	json_object_set_new(obj, "segments", json_integer((json_int_t)j->n_segs));
	json_object_set_new(obj, "first_id", json_integer((json_int_t)journal_floor(j)));
	json_object_set_new(obj, "last_id", json_integer((json_int_t)j->last_id));
	json_object_set_new(obj, "oldest_time",
			    json_integer((json_int_t)(j->n_segs ? j->segs[0].first_time : 0)));
	json_object_set_new(obj, "newest_time", json_integer((json_int_t)j->last_time));
	json_object_set_new(obj, "appended", json_integer((json_int_t)j->appended));
	json_object_set_new(obj, "excluded", json_integer((json_int_t)j->excluded));
	json_object_set_new(obj, "write_errors", json_integer((json_int_t)j->write_errors));
	json_t *gaps = json_array();
	size_t from = j->n_gaps > STATUS_GAPS_MAX ? j->n_gaps - STATUS_GAPS_MAX : 0;
	for (size_t i = from; i < j->n_gaps; i++) {
		const struct journal_gap *g = &j->gaps[i];
		json_array_append_new(gaps, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "reason",
						      journal_gap_reason_name(g->reason), "id_first",
						      (json_int_t)g->id_first, "id_last",
						      (json_int_t)g->id_last, "time_first",
						      (json_int_t)g->time_first, "time_last",
						      (json_int_t)g->time_last, "dev", (json_int_t)g->dev));
	}
	json_object_set_new(obj, "gaps", gaps);
	json_object_set_new(obj, "gaps_total", json_integer((json_int_t)j->n_gaps));
}
