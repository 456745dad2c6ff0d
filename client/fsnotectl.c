/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl.c - the command line client of fsnoted.
 *
 * One verb per run (watch, wait, status, current-id, flush, inject, and
 * run in fsnotectl-run.c); each opens one connection through the public
 * libfsnote API only (fsnote.h), so that this tool is also the library's
 * first user and its example.  Events become lines in fsnotectl-format.c.
 *
 * The contract scripts rely on: standard output carries only results (one
 * event, ID or report per line, each written before the tool waits for
 * anything more, a burst's lines in large writes); every error is ONE line
 * on standard error starting "fsnotectl: "; the exit status is 0 for
 * success, 1 for an error and 2 when a --timeout expired.  Names are bytes:
 * nothing a file name contains reaches a terminal unescaped (control
 * characters, C1 controls, bidirectional overrides and bytes that are not
 * UTF-8 are written as escapes), and JSON output, which must be UTF-8,
 * carries the exact bytes of a non-UTF-8 name in a base64 field beside a
 * readable approximation.
 *
 * Every buffer here is bounded by the daemon's limits (FSNOTE_PATH_MAX) or
 * sized from the data it holds; the only state is the one handle.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsnote.h"
#include "fsnotectl-format.h"
#include "fsnotectl.h"
#include "fsnotectl-nats.h"

/* Explicit socket (--socket); NULL: $FSNOTE_SOCKET or the default. */
static const char *arg_socket;

/* --- messages ---------------------------------------------------------------- */

void errorf(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("fsnotectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* --- escapes ---------------------------------------------------------------------- */

/* An escaped copy of a NUL-terminated string (NULL counts as ""), for
 * messages; the caller frees it.  Never NULL: without memory for a few
 * bytes the tool cannot say anything useful, so it says that and exits. */
char *esc(const char *s)
{
	struct outbuf b = { 0 };

	fmt_escape_terminal(&b, s ? s : "", s ? strlen(s) : 0);
	outbuf_add(&b, "", 1);
	if (b.oom || !b.p) {
		fputs("fsnotectl: out of memory\n", stderr);
		exit(1);
	}
	return b.p;
}

/* --- argument parsing ----------------------------------------------------------- */

static int parse_u64(const char *opt, const char *s, uint64_t *ret)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-' || *s == '+') {
		errorf("invalid %s '%s': expected a non-negative integer", opt, s);
		return -EINVAL;
	}
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end) {
		errorf("invalid %s '%s': expected a non-negative integer", opt, s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* Seconds, fractional allowed, as nanoseconds. */
int parse_seconds(const char *opt, const char *s, int64_t *ret_ns)
{
	char *end;

	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e9) {
		errorf("invalid %s '%s': expected a number of seconds", opt, s);
		return -EINVAL;
	}
	*ret_ns = (int64_t)(v * 1e9);
	return 0;
}

/* A comma-separated list of event type names as an FSNOTE_MASK() set.
 * With @inotify (--format, --csv), inotifywait's names come first, with
 * its meaning (create is CREATE lines only, moved_to MOVED_TO lines ...),
 * and *@ret_want receives the lines they select; fsnoted's own names that
 * inotifywait lacks (rename, dropped ...) select the lines they give. */
static int parse_events(const char *list, bool inotify, uint64_t *ret, uint32_t *ret_want)
{
	uint64_t mask = 0;
	uint32_t want = 0;
	char *copy = strdup(list), *save = NULL;

	if (!copy) {
		errorf("out of memory");
		return -ENOMEM;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t types;
		uint32_t w;
		int k = fmt_inotify_event_name(tok, &w, &types);
		if (k == -EOPNOTSUPP) {
			char *e = esc(tok);
			errorf("fsnoted does not report %s events (closes of files opened read-only)", e);
			free(e);
			free(copy);
			return -EINVAL;
		}
		if (inotify && k == 0) {
			mask |= types;
			want |= w;
			continue;
		}
		uint32_t t = fsnote_type_from_name(tok);
		if (!t) {
			char known[256] = "";
			for (uint32_t n_ = 1; n_ <= FSNOTE_TYPE_MAX; n_++) {
				const char *n = fsnote_type_name(n_);
				if (!n)
					continue;
				if (*known)
					strncat(known, ", ", sizeof(known) - strlen(known) - 1);
				strncat(known, n, sizeof(known) - strlen(known) - 1);
			}
			char *e = esc(tok);
			if (k == 0)
				errorf("'%s' is an inotifywait event name: use it with --format or --csv, "
				       "or name fsnoted's types (known: %s)", e, known);
			else
				errorf("unknown event type '%s' (known: %s)", e, known);
			free(e);
			free(copy);
			return -EINVAL;
		}
		mask |= FSNOTE_MASK(t);
		want |= fmt_inotify_lines_of_type(t);
	}
	free(copy);
	if (!mask) {
		errorf("--events needs at least one event type");
		return -EINVAL;
	}
	*ret = mask;
	if (ret_want)
		*ret_want = want;
	return 0;
}

/* Reports a getopt failure for @verb; always returns 1. */
int bad_option(const char *verb, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		errorf("%s: option '%s' needs a value. " TRY_HELP, verb, arg);
	else if (optopt && optopt != '?')
		errorf("%s: unknown option '-%c'. " TRY_HELP, verb, optopt);
	else
		errorf("%s: unknown option '%s'. " TRY_HELP, verb, arg);
	return 1;
}

/* --- time ----------------------------------------------------------------------- */

int64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (no time zone). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Reads up to @max digits (at least @min) from *@s. */
static bool digits(const char **s, int min, int max, long *ret)
{
	long v = 0;
	int n = 0;

	while (n < max && (*s)[n] >= '0' && (*s)[n] <= '9') {
		v = v * 10 + ((*s)[n] - '0');
		n++;
	}
	if (n < min)
		return false;
	*s += n;
	*ret = v;
	return true;
}

/* ISO 8601: YYYY-MM-DD[(T| )HH:MM[:SS[.frac]]][Z|(+|-)HH[:]MM]; local time
 * without a zone. */
static int parse_iso8601(const char *s, int64_t *ret_ns)
{
	long y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac_ns = 0;
	const char *p = s;

	if (!digits(&p, 4, 4, &y) || *p++ != '-' || !digits(&p, 2, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, 2, &h) || *p++ != ':' || !digits(&p, 2, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				int64_t scale = 100000000;
				if (*p < '0' || *p > '9')
					return -EINVAL;
				for (; *p >= '0' && *p <= '9'; p++) {
					frac_ns += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	int64_t secs;
	if (*p == 'Z' || *p == 'z' || *p == '+' || *p == '-') {
		long off = 0;
		if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1;
			long oh, om = 0;
			p++;
			if (!digits(&p, 2, 2, &oh))
				return -EINVAL;
			if (*p == ':')
				p++;
			if (*p && !digits(&p, 2, 2, &om))
				return -EINVAL;
			off = sign * (oh * 3600 + om * 60);
		} else {
			p++;
		}
		if (*p)
			return -EINVAL;
		secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
		       off;
	} else {
		if (*p)
			return -EINVAL;
		struct tm tm = { .tm_year = (int)y - 1900, .tm_mon = (int)mo - 1, .tm_mday = (int)d,
				 .tm_hour = (int)h, .tm_min = (int)mi, .tm_sec = (int)sec, .tm_isdst = -1 };
		time_t t = mktime(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		secs = t;
	}
	*ret_ns = secs * 1000000000 + frac_ns;
	return 0;
}

/* "now", "@EPOCH[.frac]", "-N(ms|s|sec|m|min|h|hour|d|day)" relative to
 * now, or ISO 8601; nanoseconds since the epoch. */
static int parse_time(const char *s, int64_t *ret_ns)
{
	char *end;

	if (strcmp(s, "now") == 0) {
		*ret_ns = now_ns(CLOCK_REALTIME);
		return 0;
	}
	if (s[0] == '@') {
		errno = 0;
		double v = strtod(s + 1, &end);
		if (errno || end == s + 1 || *end || !isfinite(v) || v < 0 || v > 1e10)
			return -EINVAL;
		*ret_ns = (int64_t)(v * 1e9);
		return 0;
	}
	if (s[0] == '-') {
		static const struct {
			const char *unit;
			double ns;
		} units[] = {
			{ "ms", 1e6 }, { "s", 1e9 }, { "sec", 1e9 }, { "m", 60e9 }, { "min", 60e9 },
			{ "h", 3600e9 }, { "hour", 3600e9 }, { "d", 86400e9 }, { "day", 86400e9 },
		};
		errno = 0;
		double v = strtod(s + 1, &end);
		if (errno || end == s + 1 || !isfinite(v) || v < 0 || s[1] == '-' || s[1] == '+')
			return -EINVAL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].unit) == 0) {
				double ns = v * units[i].ns;
				if (ns > 1e18)
					return -EINVAL;
				*ret_ns = now_ns(CLOCK_REALTIME) - (int64_t)ns;
				return 0;
			}
		return -EINVAL;
	}
	return parse_iso8601(s, ret_ns);
}

/* --- connecting ------------------------------------------------------------------ */

static const char *socket_name(void)
{
	const char *s = arg_socket ? arg_socket : getenv("FSNOTE_SOCKET");
	return s && *s ? s : FSNOTE_DEFAULT_SOCKET;
}

/* Connects, or says why not on one line; returns 0 or 1 (the exit status). */
int connect_daemon(fsnote **ret)
{
	fsnote *h = NULL;
	int r = fsnote_connect(arg_socket, &h);

	if (r == 0) {
		*ret = h;
		return 0;
	}
	char *s = esc(socket_name());
	switch (-r) {
	case ENOENT:
	case ECONNREFUSED:
		errorf("fsnoted is not running (nothing listens on %s); start it with "
		       "'systemctl start fsnoted.socket' or run fsnoted",
		       s);
		break;
	case EACCES:
	case EPERM:
		errorf("permission denied on the socket %s", s);
		break;
	case EPROTONOSUPPORT:
		errorf("fsnoted on %s speaks another protocol version than this fsnotectl", s);
		break;
	case EDQUOT:
	case EUSERS:
		errorf("fsnoted refused the connection: too many connections for this user "
		       "(limit max_connections_per_uid or max_connections in fsnoted.conf)");
		break;
	case ECONNRESET:
	case EPIPE:
		/* the daemon closes at once only to refuse a connection */
		errorf("fsnoted on %s closed the connection during the handshake "
		       "(a limit such as max_connections_per_uid may be reached)",
		       s);
		break;
	default:
		errorf("cannot connect to fsnoted on %s: %s", s, strerror(-r));
		break;
	}
	free(s);
	return 1;
}

/* One line for a failed request, preferring the daemon's own words. */
int request_error(fsnote *h, const char *what, int r)
{
	const char *msg = fsnote_last_error(h);

	if (r == -ECONNRESET || r == -EPIPE)
		errorf("%s: lost the connection to fsnoted", what);
	else if (msg && *msg) {
		char *m = esc(msg);
		errorf("%s: %s", what, m);
		free(m);
	} else {
		errorf("%s: %s", what, strerror(-r));
	}
	return 1;
}

int subscribe_error(fsnote *h, const char *path, int r)
{
	const char *msg = fsnote_last_error(h);
	char *p = esc(path);
	char *m = esc(msg);

	if (msg && *msg && r != -ECONNRESET) {
		if (r == -EDQUOT || r == -EUSERS)
			errorf("cannot watch %s: a limit was reached: %s", p, m);
		else
			errorf("cannot watch %s: %s", p, m);
	} else {
		switch (-r) {
		case EACCES:
		case EPERM:
			errorf("cannot watch %s: permission denied", p);
			break;
		case ENOTDIR:
			errorf("cannot watch %s: not a directory", p);
			break;
		case ENOENT:
			errorf("cannot watch %s: no such file or directory", p);
			break;
		case EDQUOT:
		case EUSERS:
			errorf("cannot watch %s: a limit was reached", p);
			break;
		case ECONNRESET:
		case EPIPE:
			errorf("cannot watch %s: lost the connection to fsnoted", p);
			break;
		default:
			errorf("cannot watch %s: %s", p, strerror(-r));
			break;
		}
	}
	free(p);
	free(m);
	return 1;
}

/* --- printing events --------------------------------------------------------------- */

struct output {
	bool json;
	bool color;
	const struct fmt_inotify *inotify; /* --format or --csv */
	/* run_events() flushes when no more events are waiting; any other
	 * caller gets each line written at once */
	bool batch;
	struct outbuf buf;                 /* to standard output */
};

static bool want_color(void)
{
	const char *term = getenv("TERM");

	return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && !(term && strcmp(term, "dumb") == 0);
}

/* Formats one event into the output buffer, which is written out once it
 * holds OUTBUF_FLUSH_AT bytes and, with @out->batch, by run_events()
 * whenever no further event is waiting (else at once).  Returns 0 or
 * -errno. */
static int print_event(struct output *out, const fsnote_event *e)
{
	struct fmt_event v;

	out->buf.fd = STDOUT_FILENO;
	fmt_event_from(&v, e);
	if (out->inotify)
		fmt_inotify(&out->buf, &v, out->inotify);
	else if (out->json)
		fmt_json(&out->buf, &v);
	else
		fmt_human(&out->buf, &v, out->color);
	return out->batch ? outbuf_maybe_flush(&out->buf) : outbuf_flush(&out->buf);
}

/* --- watch and wait ------------------------------------------------------------------ */

struct watch_args {
	bool children, system, json, reconnect, quiet;
	bool have_since;
	uint64_t since;
	const char *at;        /* --at TIME: since the first ID at or after it */
	uint64_t mask;         /* 0: the daemon's default */
	uint64_t count;        /* 0: unlimited */
	int64_t timeout_ns;    /* <0: none */
	int64_t latency_us;    /* <0: the daemon's default */
	char **excludes;
	size_t n_excludes;
	/* inotifywait's forms (--format, --csv); the -e lists wait until the
	 * form is known, since it decides what their names mean */
	bool inotify_mode;
	struct fmt_inotify inotify;
	const char *event_lists[32];
	size_t n_event_lists;
	struct nats_watch_args nats; /* --nats and its options */
};

/* Events taken per read: enough that a burst costs few calls, small enough
 * that the library's buffer for them stays in the cache. */
#define WATCH_BATCH 256

/* Milliseconds left until @deadline for fsnote_read(): -1 without one. */
static int remaining_ms(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
	if (left <= 0)
		return 0;
	int64_t ms = (left + 999999) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int build_opts(const struct watch_args *a, fsnote_sub_opts **ret)
{
	fsnote_sub_opts *o = NULL;
	int r = fsnote_sub_opts_new(&o);

	if (r < 0)
		goto fail;
	if (a->children && (r = fsnote_sub_opts_set_children(o, true)) < 0)
		goto fail;
	if (a->system && (r = fsnote_sub_opts_set_system(o, true)) < 0)
		goto fail;
	if (a->mask && (r = fsnote_sub_opts_set_events(o, a->mask)) < 0)
		goto fail;
	if (a->have_since && (r = fsnote_sub_opts_set_since(o, a->since)) < 0)
		goto fail;
	if (a->latency_us >= 0 && (r = fsnote_sub_opts_set_latency_us(o, (uint32_t)a->latency_us)) < 0)
		goto fail;
	for (size_t i = 0; i < a->n_excludes; i++) {
		if ((r = fsnote_sub_opts_add_exclude(o, a->excludes[i])) < 0) {
			char *e = esc(a->excludes[i]);
			errorf("invalid --exclude '%s' (at most 32 patterns of up to 255 bytes)", e);
			free(e);
			fsnote_sub_opts_free(o);
			return -EINVAL;
		}
	}
	*ret = o;
	return 0;
fail:
	errorf("cannot set up the subscription: %s", strerror(-r));
	fsnote_sub_opts_free(o);
	return r;
}

/* Re-establishes a lost connection through fsnote_reconnect(), which
 * resumes every subscription after its last seen ID.  Returns 0, 1 (error)
 * or EXIT_TIMEOUT. */
static int reconnect(fsnote *h, int64_t deadline)
{
	fprintf(stderr, "fsnotectl: lost the connection to fsnoted; reconnecting\n");
	for (;;) {
		int ms = remaining_ms(deadline);
		if (ms == 0)
			return EXIT_TIMEOUT;
		int r = fsnote_reconnect(h, ms < 0 || ms > 5000 ? 5000 : ms);
		if (r == 0) {
			fprintf(stderr, "fsnotectl: reconnected; resuming where the connection was lost\n");
			return 0;
		}
		if (r != -ETIMEDOUT && r != -ENOENT && r != -ECONNREFUSED && r != -ECONNRESET &&
		    r != -EAGAIN && r != -ESHUTDOWN && r != -EPIPE && r != -EINTR)
			return request_error(h, "cannot reconnect", r);
	}
}

/* The event loop shared by watch (@until_first false) and wait (true).
 * Lines collect in one buffer and are written when it is large or, before
 * blocking, when no further event is waiting: a burst costs a write() per
 * 64 KiB, and a reader still sees every line without waiting for the
 * next event. */
static int run_events(fsnote *h, const struct watch_args *a, size_t n_subs, bool until_first)
{
	struct output out = { .json = a->json, .color = !a->json && !a->inotify_mode && want_color(),
			      .inotify = a->inotify_mode ? &a->inotify : NULL, .batch = true,
			      .buf = { .fd = STDOUT_FILENO } };
	int64_t deadline = a->timeout_ns >= 0 ? now_ns(CLOCK_MONOTONIC) + a->timeout_ns : -1;
	uint64_t printed = 0;
	size_t live = n_subs;
	int ret;

	for (;;) {
		/* the batch's events are the library's until the next read */
		const fsnote_event *evs[WATCH_BATCH];
		int r = fsnote_read_batch(h, 0, evs, WATCH_BATCH);

		if (r == -EAGAIN) {
			/* nothing more is waiting: show what we have, then block */
			r = outbuf_flush(&out.buf);
			if (r < 0) {
				errorf("cannot write to standard output: %s", strerror(-r));
				ret = 1;
				goto out;
			}
			r = fsnote_read_batch(h, remaining_ms(deadline), evs, WATCH_BATCH);
		}
		if (r == -EINTR)
			continue;
		if (r == -ETIMEDOUT || r == -EAGAIN) {
			if (deadline >= 0 && remaining_ms(deadline) == 0) {
				ret = EXIT_TIMEOUT;
				goto out;
			}
			continue;
		}
		if (r == -ESHUTDOWN || r == -ECONNRESET) {
			if (outbuf_flush(&out.buf) < 0) {
				ret = 1;
				goto out;
			}
			if (a->reconnect) {
				if (r == -ESHUTDOWN) {
					char *m = esc(fsnote_last_error(h));
					fprintf(stderr, "fsnotectl: %s\n", *m ? m : "fsnoted is shutting down");
					free(m);
				}
				int x = reconnect(h, deadline);
				if (x) {
					ret = x;
					goto out;
				}
				continue;
			}
			if (r == -ECONNRESET) {
				errorf("lost the connection to fsnoted");
				ret = 1;
				goto out;
			}
			/* the daemon stopped on purpose: a note, not an error */
			char *m = esc(fsnote_last_error(h));
			fprintf(stderr, "fsnotectl: %s\n", *m ? m : "fsnoted is shutting down");
			free(m);
			ret = 0;
			goto out;
		}
		if (r < 0) {
			(void)outbuf_flush(&out.buf);
			ret = request_error(h, "cannot read events", r);
			goto out;
		}

		for (int i = 0, n = r; i < n; i++) {
			r = print_event(&out, evs[i]);
			if (r < 0) {
				errorf("cannot write to standard output: %s", strerror(-r));
				ret = 1;
				goto out;
			}
			printed++;
			if (until_first || (a->count && printed >= a->count)) {
				ret = 0;
				goto done;
			}
			if ((fsnote_event_flags(evs[i]) & FSNOTE_F_SUB_ENDED) && live > 0 && --live == 0) {
				r = outbuf_flush(&out.buf);
				fprintf(stderr, "fsnotectl: every watch has ended\n");
				ret = 0;
				goto done;
			}
		}
	}
done:
	if (ret == 0) {
		int r = outbuf_flush(&out.buf);
		if (r < 0) {
			errorf("cannot write to standard output: %s", strerror(-r));
			ret = 1;
		}
	}
out:
	/* what an error left behind would only garble the error's story */
	outbuf_done(&out.buf);
	return ret;
}

/* Long-only options (values past any character). */
enum {
	OPT_FORMAT = 0x100,
	OPT_CSV,
	OPT_TIMEFMT,
	OPT_NO_NEWLINE,
};

static const struct option watch_options[] = {
	{ "children", no_argument, NULL, 'c' },
	{ "events", required_argument, NULL, 'e' },
	{ "since", required_argument, NULL, 'S' },
	{ "at", required_argument, NULL, 'A' },
	{ "json", no_argument, NULL, 'j' },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "csv", no_argument, NULL, OPT_CSV },
	{ "timefmt", required_argument, NULL, OPT_TIMEFMT },
	{ "no-newline", no_argument, NULL, OPT_NO_NEWLINE },
	{ "count", required_argument, NULL, 'n' },
	{ "timeout", required_argument, NULL, 't' },
	{ "exclude", required_argument, NULL, 'x' },
	{ "latency", required_argument, NULL, 'l' },
	{ "reconnect", no_argument, NULL, 'r' },
	{ "system", no_argument, NULL, 'Y' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	NATS_WATCH_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static void help_watch(void)
{
	printf("Usage: fsnotectl watch [OPTION]... PATH...\n"
	       "       fsnotectl watch --system [OPTION]...\n"
	       "Print the changes below each PATH (the whole subtree), one line per event.\n"
	       "\n"
	       "  -c, --children        direct children only, not the whole subtree\n"
	       "  -e, --events LIST     comma-separated event types (create,delete,modify,attrib,\n"
	       "                        close_write,rename,unmount,dropped,open,access,mount,fs_error)\n"
	       "      --since ID        first replay what happened after event ID\n"
	       "      --at TIME         first replay what happened from TIME on (as current-id --at)\n"
	       "      --json            one JSON object per line\n"
	       "      --format FMT      lines as inotifywait --format prints them: %%w %%f %%e\n"
	       "                        %%Xe %%T %%0 %%n %%%%; -e then takes inotifywait's names too\n"
	       "      --timefmt TFMT    strftime(3) format of %%T\n"
	       "      --no-newline      no newline after each --format line\n"
	       "      --csv             lines as inotifywait --csv prints them\n"
	       "      --count N         exit 0 after N events\n"
	       "      --timeout SEC     exit 2 once SEC seconds (fractions allowed) have passed\n"
	       "                        since 'Watches established.' (before N events with --count)\n"
	       "      --exclude PATTERN skip a name, glob or path below the root (repeatable)\n"
	       "      --latency MS      batch wake-ups for up to MS milliseconds (0: immediate)\n"
	       "      --reconnect       on a lost connection, reconnect and resume by event ID\n"
	       "      --system          every mounted filesystem (root or the privileged group)\n"
	       "  -q, --quiet           do not print 'Watches established.'\n"
	       "  -h, --help            show this help\n");
	nats_watch_help();
}

static void help_wait(void)
{
	printf("Usage: fsnotectl wait [OPTION]... PATH\n"
	       "Wait for the first event below PATH, print it and exit 0 (2 on timeout).\n"
	       "\n"
	       "  -e, --events LIST     wait for these event types only (comma-separated)\n"
	       "      --timeout SEC     exit 2 when nothing came within SEC seconds\n"
	       "      --children        direct children only\n"
	       "      --exclude PATTERN ignore a name, glob or path below PATH (repeatable)\n"
	       "      --json            print the event as JSON\n"
	       "  -q, --quiet           do not print 'Watches established.'\n"
	       "  -h, --help            show this help\n");
}

/* Settles the output form and what the -e lists mean in it.  Returns 0
 * or 1 (the exit status, with the message printed). */
static int parse_watch_forms(struct watch_args *a)
{
	struct fmt_inotify *f = &a->inotify;

	if (f->format && f->csv) {
		errorf("--format and --csv do not go together");
		return 1;
	}
	a->inotify_mode = f->format || f->csv;
	if (a->inotify_mode && a->json) {
		errorf("--json and --%s do not go together", f->csv ? "csv" : "format");
		return 1;
	}
	if ((f->timefmt || f->no_newline) && !f->format) {
		errorf("--%s goes with --format", f->timefmt ? "timefmt" : "no-newline");
		return 1;
	}
	if (fmt_inotify_check(f) < 0) {
		errorf("--format uses %%T but no --timefmt was given");
		return 1;
	}
	f->want = a->n_event_lists ? 0 : UINT32_MAX;
	a->mask = 0;
	for (size_t i = 0; i < a->n_event_lists; i++) {
		uint64_t m;
		uint32_t w;
		if (parse_events(a->event_lists[i], a->inotify_mode, &m, &w) < 0)
			return 1;
		a->mask |= m;
		f->want |= w;
	}
	return 0;
}

static int parse_watch(const char *verb, int argc, char **argv, struct watch_args *a)
{
	int c;

	*a = (struct watch_args){ .timeout_ns = -1, .latency_us = -1 };
	while ((c = getopt_long(argc, argv, ":ce:jqh", watch_options, NULL)) != -1) {
		uint64_t v;
		int64_t ns;
		switch (c) {
		case 'c':
			a->children = true;
			break;
		case 'e':
			/* repeatable, as inotifywait's -e */
			if (a->n_event_lists >= sizeof(a->event_lists) / sizeof(a->event_lists[0])) {
				errorf("too many --events options");
				return 1;
			}
			a->event_lists[a->n_event_lists++] = optarg;
			break;
		case 'S':
			if (parse_u64("--since", optarg, &a->since) < 0)
				return 1;
			a->have_since = true;
			break;
		case 'A': {
			int64_t t;
			if (parse_time(optarg, &t) < 0 || t < 0) {
				char *e = esc(optarg);
				errorf("invalid time '%s': use ISO 8601, @EPOCH, now or -N(ms|s|min|h|d)", e);
				free(e);
				return 1;
			}
			a->at = optarg;
			break;
		}
		case 'j':
			a->json = true;
			break;
		case OPT_FORMAT:
			a->inotify.format = optarg;
			break;
		case OPT_CSV:
			a->inotify.csv = true;
			break;
		case OPT_TIMEFMT:
			a->inotify.timefmt = optarg;
			break;
		case OPT_NO_NEWLINE:
			a->inotify.no_newline = true;
			break;
		case 'n':
			if (parse_u64("--count", optarg, &v) < 0)
				return 1;
			if (!v) {
				errorf("invalid --count '0': expected a positive integer");
				return 1;
			}
			a->count = v;
			break;
		case 't':
			if (parse_seconds("--timeout", optarg, &ns) < 0)
				return 1;
			a->timeout_ns = ns;
			break;
		case 'x': {
			if (a->n_excludes >= 32) {
				errorf("too many --exclude patterns (at most 32)");
				return 1;
			}
			char **n = realloc(a->excludes, (a->n_excludes + 1) * sizeof(*n));
			if (!n) {
				errorf("out of memory");
				return 1;
			}
			a->excludes = n;
			a->excludes[a->n_excludes++] = optarg;
			break;
		}
		case 'l':
			if (parse_seconds("--latency", optarg, &ns) < 0)
				return 1;
			/* parsed as seconds: MS milliseconds are MS * 1e6 ns, i.e. ns / 1000 us */
			if (ns / 1000 > UINT32_MAX) {
				errorf("invalid --latency '%s': too large", optarg);
				return 1;
			}
			a->latency_us = ns / 1000;
			break;
		case 'r':
			a->reconnect = true;
			break;
		case 'Y':
			a->system = true;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'h':
			if (strcmp(verb, "wait") == 0)
				help_wait();
			else
				help_watch();
			free(a->excludes);
			exit(0);
		default:
			if (c >= NATS_OPT_URL && c <= NATS_OPT_LAST) {
				nats_watch_option(&a->nats, c, optarg);
				break;
			}
			return bad_option(verb, c, argv);
		}
	}
	return parse_watch_forms(a);
}

/* inotifywait prints paths as they were given on its command line, where
 * events carry them absolute: remember, per subscription, the prefix to
 * put back. */
static int add_root(struct fmt_inotify *f, fsnote *h, uint32_t sub_id, const char *given)
{
	const char *abs = fsnote_sub_root(h, sub_id);
	if (!abs)
		return 0;
	struct fmt_root *n = realloc(f->roots, (f->n_roots + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	f->roots = n;
	size_t len = strlen(given);
	while (len > 0 && given[len - 1] == '/')
		len--;
	char *g = strndup(given, len), *ab = strdup(abs);
	if (!g || !ab) {
		free(g);
		free(ab);
		return -ENOMEM;
	}
	f->roots[f->n_roots++] = (struct fmt_root){ .sub_id = sub_id, .abs = ab, .given = g };
	return 0;
}

static void free_roots(struct fmt_inotify *f)
{
	for (size_t i = 0; i < f->n_roots; i++) {
		free((char *)f->roots[i].abs);
		free((char *)f->roots[i].given);
	}
	free(f->roots);
	f->roots = NULL;
	f->n_roots = 0;
}

/* in fsnotectl-history.c */
static int watch_at(fsnote *h, const char *at, fsnote_sub_opts *o);

static int print_remote(void *out, const fsnote_event *e)
{
	return print_event(out, e) < 0;
}

/* "watch --nats": the options a remote watch takes, then fsnotectl-nats.c. */
static int watch_remote(const struct watch_args *a, bool wait, int npaths)
{
	struct output out = { .json = a->json, .color = !a->json && !a->inotify_mode && want_color(),
			      .inotify = a->inotify_mode ? &a->inotify : NULL,
			      .buf = { .fd = STDOUT_FILENO } };
	struct nats_watch_common w = { .json = a->json, .quiet = a->quiet, .have_since = a->have_since,
				       .since = a->since, .mask = a->mask, .count = a->count,
				       .timeout_ns = a->timeout_ns };

	if (wait || !a->nats.url) {
		errorf(wait ? "--nats and its options are for watch. " TRY_HELP
			    : "--host, --at, --stream and the NATS connection options need --nats URL");
		return 1;
	}
	if (npaths || a->children || a->system || a->reconnect || a->n_excludes || a->latency_us >= 0) {
		errorf("watch --nats takes no PATH, --children, --system, --exclude, --latency or --reconnect");
		return 1;
	}
	/* --at is one option for both watches (parsed above as the local one's) */
	struct nats_watch_args nats = a->nats;
	if (a->at && !nats.at)
		nats.at = a->at;
	int r = nats_watch(&nats, &w, print_remote, &out, parse_time);
	free(out.buf.p);
	return r;
}

static int cmd_watch_or_wait(int argc, char **argv, bool wait)
{
	const char *verb = argv[0];
	struct watch_args a;
	fsnote *h = NULL;
	fsnote_sub_opts *o = NULL;
	int ret = parse_watch(verb, argc, argv, &a);
	int npaths = argc - optind;

	if (ret)
		goto out;
	if (a.nats.used) {
		ret = watch_remote(&a, wait, npaths);
		goto out;
	}
	ret = 1;
	if (wait) {
		if (a.system || a.have_since || a.at || a.count || a.reconnect || a.latency_us >= 0) {
			errorf("wait: --system, --since, --at, --count, --latency and --reconnect are for watch. " TRY_HELP);
			goto out;
		}
		if (npaths != 1) {
			errorf("wait needs exactly one PATH. " TRY_HELP);
			goto out;
		}
		if (a.inotify_mode) {
			errorf("wait: --format and --csv are for watch. " TRY_HELP);
			goto out;
		}
	} else if (a.system ? npaths != 0 : npaths < 1) {
		errorf(a.system ? "watch --system takes no PATH. " TRY_HELP
				: "watch needs at least one PATH. " TRY_HELP);
		goto out;
	} else if (a.system && a.children) {
		errorf("--system and --children do not go together");
		goto out;
	}
	if (a.at && a.have_since) {
		errorf("--since and --at do not go together. " TRY_HELP);
		goto out;
	}
	if (build_opts(&a, &o) < 0)
		goto out;
	if (connect_daemon(&h))
		goto out;
	if (a.at && watch_at(h, a.at, o) != 0)
		goto out;
	/* only JSON prints the attributes and the pid: the other forms spare
	 * the daemon looking them up, where it lets a subscriber say so */
	if (!a.json && (fsnote_features(h) & FSNOTE_HAS_FIELDS)) {
		int r = fsnote_sub_opts_set_fields(o, 0);
		if (r < 0) {
			errorf("cannot set up the subscription: %s", strerror(-r));
			goto out;
		}
	}

	size_t n_subs = 0;
	if (a.system) {
		uint32_t id;
		int r = fsnote_subscribe(h, NULL, o, &id);
		if (r < 0) {
			const char *msg = fsnote_last_error(h);
			if (r == -EPERM || r == -EACCES) {
				char *m = esc(msg);
				errorf("cannot watch the whole system: %s", *m ? m : "permission denied (root or the privileged group only)");
				free(m);
			} else {
				request_error(h, "cannot watch the whole system", r);
			}
			goto out;
		}
		n_subs = 1;
	}
	for (int i = optind; i < argc; i++) {
		uint32_t id;
		int r = fsnote_subscribe(h, argv[i], o, &id);
		if (r < 0) {
			subscribe_error(h, argv[i], r);
			goto out;
		}
		const char *warning = fsnote_sub_warning(h, id);
		if (warning) {
			char *p = esc(argv[i]), *w = esc(warning);
			fprintf(stderr, "fsnotectl: warning: %s: %s\n", p, w);
			free(p);
			free(w);
		}
		if (a.inotify_mode && add_root(&a.inotify, h, id, argv[i]) < 0) {
			errorf("out of memory");
			goto out;
		}
		n_subs++;
	}
	if (!a.quiet) {
		fputs("Watches established.\n", stderr);
		fflush(stderr);
	}
	ret = run_events(h, &a, n_subs, wait);
out:
	fsnote_sub_opts_free(o);
	fsnote_close(h);
	free(a.excludes);
	free_roots(&a.inotify);
	return ret;
}

/* --- status ---------------------------------------------------------------------------- */

static json_int_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (json_int_t)json_real_value(v);
	return 0;
}

static void human_size(double v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void bar(double frac, bool color)
{
	const int width = 30;
	int fill = (int)(frac * width + 0.5);

	if (fill > width)
		fill = width;
	if (fill < 0)
		fill = 0;
	fputc('[', stdout);
	if (color)
		fputs(frac >= 0.75 ? "\033[31m" : frac >= 0.5 ? "\033[33m" : "\033[32m", stdout);
	for (int i = 0; i < width; i++)
		fputc(i < fill ? '#' : '.', stdout);
	if (color)
		fputs("\033[0m", stdout);
	printf("] %3.0f%%", frac * 100);
}

/* Scalars of a source's status object, one line, nested objects inline. */
static void print_scalars(const json_t *obj, int depth)
{
	const char *key;
	json_t *v;
	bool first = true;

	json_object_foreach((json_t *)obj, key, v) {
		char *k = esc(key);
		if (!first)
			fputs(", ", stdout);
		first = false;
		if (json_is_object(v) && depth < 2) {
			printf("%s {", k);
			print_scalars(v, depth + 1);
			fputc('}', stdout);
		} else if (json_is_real(v) && strstr(key, "rate")) {
			printf("%s %.1f%%", k, json_real_value(v) * 100);
		} else if (json_is_string(v)) {
			char *s = esc(json_string_value(v));
			printf("%s %s", k, s);
			free(s);
		} else if (json_is_integer(v)) {
			printf("%s %" JSON_INTEGER_FORMAT, k, json_integer_value(v));
		} else if (json_is_real(v)) {
			printf("%s %g", k, json_real_value(v));
		} else if (json_is_boolean(v)) {
			printf("%s %s", k, json_is_true(v) ? "yes" : "no");
		} else if (json_is_array(v)) {
			printf("%s (%zu)", k, json_array_size(v));
		} else {
			printf("%s -", k);
		}
		free(k);
	}
}

/* the history verb and the journal's status lines share the helpers above */
#include "fsnotectl-history.c"

static void print_status(const json_t *root, const char *socket_path, bool color)
{
	const char *b = color ? "\033[1m" : "", *n = color ? "\033[0m" : "";
	const json_t *v;
	char *s;
	char a1[32], a2[32];

	s = esc(json_string_value(json_object_get(root, "version")));
	printf("%sfsnoted %s%s (pid %" JSON_INTEGER_FORMAT ") on ", b, s, n, jint(root, "pid"));
	free(s);
	s = esc(socket_path);
	printf("%s\n", s);
	free(s);
	double up = json_number_value(json_object_get(root, "uptime_s"));
	long long u = (long long)up;
	printf("  uptime        ");
	if (u >= 86400)
		printf("%lldd ", u / 86400);
	if (u >= 3600)
		printf("%lldh ", u % 86400 / 3600);
	if (u >= 60)
		printf("%lldm ", u % 3600 / 60);
	printf("%llds\n", u % 60);
	s = esc(json_string_value(json_object_get(root, "backend")));
	printf("  backend       %s\n", s);
	free(s);
	printf("  features      ");
	v = json_object_get(root, "features");
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x) {
		s = esc(json_string_value(x));
		printf("%s%s", i ? " " : "", s);
		free(s);
	}
	printf("%s\n", json_array_size(v) ? "" : "(none)");
	/* an unprivileged user is shown its own uid's share only ("view": "own") */
	bool own = json_is_string(json_object_get(root, "view")) &&
		   strcmp(json_string_value(json_object_get(root, "view")), "own") == 0;
	if (json_is_string(json_object_get(root, "health"))) {
		s = esc(json_string_value(json_object_get(root, "health")));
		printf("  health        %s\n", s);
		free(s);
	}
	printf("  %s %" JSON_INTEGER_FORMAT " connections, %" JSON_INTEGER_FORMAT
	       " subscriptions\n", own ? "yours        " : "clients      ",
	       jint(root, "clients"), jint(root, "subscriptions"));
	if (!own)
		printf("  events        %" JSON_INTEGER_FORMAT " in, %" JSON_INTEGER_FORMAT
		       " delivered, %" JSON_INTEGER_FORMAT " withheld by access checks\n",
		       jint(root, "events_in"), jint(root, "events_delivered"),
		       jint(root, "events_denied"));

	const json_t *pool = json_object_get(root, "pool");
	if (own && json_is_object(pool))
		printf("  current ID    %" JSON_INTEGER_FORMAT "\n", jint(pool, "current_id"));
	if (!own && json_is_object(pool)) {
		double ev = (double)jint(pool, "events"), evmax = (double)jint(pool, "max_events");
		double by = (double)jint(pool, "bytes"), bymax = (double)jint(pool, "max_bytes");
		double fe = evmax > 0 ? ev / evmax : 0, fb = bymax > 0 ? by / bymax : 0;
		printf("  %spool%s          ", b, n);
		bar(fe > fb ? fe : fb, color);
		human_size(by, a1, sizeof(a1));
		human_size(bymax, a2, sizeof(a2));
		printf("  %.0f/%.0f events, %s/%s\n", ev, evmax, a1, a2);
		printf("                current ID %" JSON_INTEGER_FORMAT ", history %" JSON_INTEGER_FORMAT
		       "/%" JSON_INTEGER_FORMAT " (oldest ID %" JSON_INTEGER_FORMAT ")\n",
		       jint(pool, "current_id"), jint(pool, "history"), jint(pool, "history_max"),
		       jint(pool, "oldest_history_id"));
		printf("                %" JSON_INTEGER_FORMAT " added, %" JSON_INTEGER_FORMAT
		       " coalesced, %" JSON_INTEGER_FORMAT " reclaimed from %" JSON_INTEGER_FORMAT
		       " rings\n",
		       jint(pool, "added"), jint(pool, "merged"), jint(pool, "reclaimed_events"),
		       jint(pool, "reclaimed_rings"));
	}
	print_journal_status(root, color);
	const json_t *ac = json_object_get(root, "access_cache");
	if (json_is_object(ac))
		printf("  access cache  %.1f%% hits (%" JSON_INTEGER_FORMAT " hits, %" JSON_INTEGER_FORMAT
		       " misses, %" JSON_INTEGER_FORMAT " denied, %" JSON_INTEGER_FORMAT " entries)\n",
		       json_number_value(json_object_get(ac, "hit_rate")) * 100, jint(ac, "hits"),
		       jint(ac, "misses"), jint(ac, "denied"), jint(ac, "entries"));
	const json_t *sources = json_object_get(root, "sources");
	const char *key;
	json_object_foreach((json_t *)sources, key, x) {
		s = esc(key);
		printf("  %-13s ", s);
		free(s);
		if (json_is_object(x))
			print_scalars(x, 0);
		fputc('\n', stdout);
	}
	const json_t *lim = json_object_get(root, "limits");
	if (json_is_object(lim)) {
		printf("  limits        ");
		print_scalars(lim, 0);
		fputc('\n', stdout);
	}

	const json_t *subs = json_object_get(root, "subscribers");
	json_int_t drops = 0, dropped = 0;
	json_array_foreach(subs, i, x) {
		drops += jint(x, "drops");
		dropped += jint(x, "dropped");
	}
	printf("  drops         %" JSON_INTEGER_FORMAT " dropped records, %" JSON_INTEGER_FORMAT
	       " events lost (listed subscriptions)\n",
	       drops, dropped);
	printf("\n%s%5s %7s %-15s %6s %-8s %15s %10s %8s  %s%s\n", b, "ID", "PID", "COMM", "UID",
	       "MODE", "QUEUED/DEPTH", "DELIVERED", "DROPPED", "PATH", n);
	json_array_foreach(subs, i, x) {
		char *comm = esc(json_string_value(json_object_get(x, "comm")));
		char *mode = esc(json_string_value(json_object_get(x, "mode")));
		char *path = esc(json_string_value(json_object_get(x, "path")));
		char qd[48];
		snprintf(qd, sizeof(qd), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
			 jint(x, "ring_queued"), jint(x, "ring_depth"));
		printf("%5" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT " %-15s %6" JSON_INTEGER_FORMAT
		       " %-8s %15s %10" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT "  %s",
		       jint(x, "id"), jint(x, "pid"), comm, jint(x, "uid"), mode, qd,
		       jint(x, "delivered"), jint(x, "dropped"), path);
		size_t np = json_array_size(json_object_get(x, "paths"));
		if (np > 1)
			printf(" (+%zu more)", np - 1);
		fputc('\n', stdout);
		free(comm);
		free(mode);
		free(path);
	}
	if (!json_array_size(subs))
		printf("  (no subscriptions you may see)\n");
	if (json_is_true(json_object_get(root, "subscribers_truncated")))
		printf("  (list truncated)\n");
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool as_json = false;
	int c;

	while ((c = getopt_long(argc, argv, ":jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			as_json = true;
			break;
		case 'h':
			printf("Usage: fsnotectl status [--json]\n"
			       "Show the daemon's state: version, backend, kernel features, uptime, pool\n"
			       "fill, clients, subscriptions (yours; all of them for root), drops and cache\n"
			       "hit rates.\n"
			       "\n"
			       "      --json   print the daemon's status document as is (one line)\n"
			       "  -h, --help   show this help\n");
			return 0;
		default:
			return bad_option("status", c, argv);
		}
	}
	if (optind < argc) {
		errorf("status takes no arguments. " TRY_HELP);
		return 1;
	}
	fsnote *h = NULL;
	char *text = NULL;
	if (connect_daemon(&h))
		return 1;
	int r = fsnote_status(h, &text);
	if (r < 0) {
		request_error(h, "cannot get the status", r);
		fsnote_close(h);
		return 1;
	}
	int ret = 0;
	if (as_json) {
		/* as is: the daemon sends it compact, on one line */
		fputs(text, stdout);
		fputc('\n', stdout);
	} else {
		json_error_t jerr;
		json_t *root = json_loads(text, 0, &jerr);
		if (!json_is_object(root)) {
			errorf("the daemon's status does not parse: %s", jerr.text);
			ret = 1;
		} else {
			print_status(root, fsnote_socket_path(h), want_color());
		}
		json_decref(root);
	}
	free(text);
	fsnote_close(h);
	if (ret == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
		errorf("cannot write to standard output: %s", strerror(errno));
		ret = 1;
	}
	return ret;
}

/* --- current-id, flush, inject ------------------------------------------------------------ */

static int cmd_current_id(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "at", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *at = NULL;
	int c;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			at = optarg;
			break;
		case 'h':
			printf("Usage: fsnotectl current-id [--at TIME]\n"
			       "Print the ID of the newest event, or with --at the first event ID at or\n"
			       "after TIME within the daemon's history.\n"
			       "\n"
			       "      --at TIME   ISO 8601 (2024-05-01T12:00:00[.frac][Z|+02:00]; local time\n"
			       "                  without a zone), @EPOCH seconds, now, or relative:\n"
			       "                  -500ms -30s -10min (or -10m) -2h -1d\n"
			       "  -h, --help      show this help\n");
			return 0;
		default:
			return bad_option("current-id", c, argv);
		}
	}
	if (optind < argc) {
		errorf("current-id takes no arguments. " TRY_HELP);
		return 1;
	}
	int64_t t = 0;
	if (at && (parse_time(at, &t) < 0 || t < 0)) {
		char *e = esc(at);
		errorf("invalid time '%s': use ISO 8601, @EPOCH, now or -N(ms|s|min|h|d)", e);
		free(e);
		return 1;
	}
	fsnote *h = NULL;
	uint64_t id;
	int r;
	if (connect_daemon(&h))
		return 1;
	if (at)
		r = fsnote_id_at_time(h, (uint64_t)t, &id);
	else
		r = fsnote_current_id(h, &id);
	if (r == -ERANGE) {
		char *e = esc(at);
		errorf("%s is older than the daemon's history reaches back", e);
		free(e);
		fsnote_close(h);
		return 1;
	}
	if (r < 0) {
		request_error(h, "cannot get the event ID", r);
		fsnote_close(h);
		return 1;
	}
	fsnote_close(h);
	printf("%" PRIu64 "\n", id);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_flush(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("Usage: fsnotectl flush PATH\n"
			       "Subscribe to PATH, wait until the daemon has read every change made\n"
			       "before the call, and print the event ID that covers them.\n"
			       "\n"
			       "  -h, --help   show this help\n");
			return 0;
		}
		return bad_option("flush", c, argv);
	}
	if (argc - optind != 1) {
		errorf("flush needs exactly one PATH. " TRY_HELP);
		return 1;
	}
	fsnote *h = NULL;
	uint32_t sub;
	uint64_t id;
	if (connect_daemon(&h))
		return 1;
	int r = fsnote_subscribe(h, argv[optind], NULL, &sub);
	if (r < 0) {
		subscribe_error(h, argv[optind], r);
		fsnote_close(h);
		return 1;
	}
	r = fsnote_flush(h, sub, &id);
	if (r < 0) {
		request_error(h, "cannot flush", r);
		fsnote_close(h);
		return 1;
	}
	fsnote_close(h);
	printf("%" PRIu64 "\n", id);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* An absolute form of @p without touching the filesystem (a synthetic
 * event may name a path that does not exist). */
static char *absolute(const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	size_t len = strlen(cwd) + strlen(p) + 2;
	char *r = malloc(len);
	if (r)
		snprintf(r, len, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", p);
	free(cwd);
	return r;
}

static int cmd_inject(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool dir = false;
	int c;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = true;
			break;
		case 'h':
			printf("Usage: fsnotectl inject [--dir] TYPE PATH [DEST]\n"
			       "Queue a synthetic event (root only), for tests and replays, and print\n"
			       "its event ID.  DEST is required for rename and refused otherwise.\n"
			       "\n"
			       "      --dir    the object is a directory\n"
			       "  -h, --help   show this help\n");
			return 0;
		default:
			return bad_option("inject", c, argv);
		}
	}
	int n = argc - optind;
	if (n < 2 || n > 3) {
		errorf("inject needs TYPE PATH [DEST]. " TRY_HELP);
		return 1;
	}
	const char *tname = argv[optind];
	uint32_t type = fsnote_type_from_name(tname);
	if (!type) {
		char *e = esc(tname);
		errorf("unknown event type '%s'", e);
		free(e);
		return 1;
	}
	if ((type == FSNOTE_RENAME) != (n == 3)) {
		errorf(type == FSNOTE_RENAME ? "inject rename needs a DEST" : "only rename takes a DEST");
		return 1;
	}
	char *path = absolute(argv[optind + 1]);
	char *dest = n == 3 ? absolute(argv[optind + 2]) : NULL;
	fsnote *h = NULL;
	uint64_t id;
	int ret = 1;
	if (!path || (n == 3 && !dest)) {
		errorf("cannot make the path absolute: %s", strerror(errno));
		goto out;
	}
	if (connect_daemon(&h))
		goto out;
	int r = fsnote_inject(h, type, path, dest, dir ? FSNOTE_F_IS_DIR : 0, &id);
	if (r < 0) {
		request_error(h, "cannot inject", r);
		goto out;
	}
	printf("%" PRIu64 "\n", id);
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	fsnote_close(h);
	free(path);
	free(dest);
	return ret;
}

/* --- main ---------------------------------------------------------------------------------- */

static void help_main(void)
{
	printf("Usage: fsnotectl [--socket PATH] VERB [OPTION]... [ARG]...\n"
	       "Watch filesystem changes through fsnoted, the filesystem notification daemon.\n"
	       "\n"
	       "Verbs:\n"
	       "  watch [--children] [-e|--events LIST] [--since ID | --at TIME] [--json] [--count N]\n"
	       "        [--timeout SEC] [--exclude PATTERN]... [--latency MS] [--reconnect]\n"
	       "        [--quiet] [--format FMT [--timefmt TFMT] | --csv] PATH...\n"
	       "                                   print changes below each PATH\n"
	       "  watch --system [OPTION]...       every mounted filesystem (privileged)\n"	       "  watch --nats URL [--host H] [OPTION]...\n"
	       "                                   the records fsnote-relay published (fsnote-relay(8))\n"
	       "  wait [-e|--events LIST] [--timeout SEC] [--json] PATH\n"
	       "                                   wait for the first change below PATH\n"
	       "  status [--json]                  the daemon's state\n"
	       "  current-id [--at TIME]           the newest event ID (or the first at TIME)\n"
	       "  flush PATH                       the event ID covering every change until now\n"
	       "  inject [--dir] TYPE PATH [DEST]  a synthetic event (root only)\n"
	       "  run [--debounce MS] [--restart] [--exclude PATTERN]... PATH... -- COMMAND\n"
	       "                                   run COMMAND again whenever PATH changed\n"
	       "  history [--since ID | --at TIME] [--until ID|TIME] [--json] PATH\n"
	       "                                   what the journal holds for PATH\n"
	       "\n"
	       "Event types: create delete modify attrib close_write rename unmount dropped\n"
	       "             open access mount fs_error\n"
	       "\n"
	       "      --socket PATH  the daemon's socket (default: $FSNOTE_SOCKET, else\n"
	       "                     " FSNOTE_DEFAULT_SOCKET ")\n"
	       "  -h, --help         show this help ('fsnotectl VERB --help' for a verb)\n"
	       "  -V, --version      show the version\n"
	       "\n"
	       "Exit status: 0 success, 1 error, 2 timeout.  See fsnotectl(1).\n");
}

int main(int argc, char **argv)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help_main();
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("fsnotectl %s\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
			arg_socket = argv[++i];
			continue;
		}
		if (strncmp(a, "--socket=", 9) == 0) {
			arg_socket = a + 9;
			continue;
		}
		char *e = esc(a);
		errorf("unknown option '%s'. " TRY_HELP, e);
		free(e);
		return 1;
	}
	if (i >= argc) {
		errorf("no verb given. " TRY_HELP);
		return 1;
	}
	const char *verb = argv[i];
	int vargc = argc - i;
	char **vargv = argv + i;

	if (strcmp(verb, "watch") == 0)
		return cmd_watch_or_wait(vargc, vargv, false);
	if (strcmp(verb, "wait") == 0)
		return cmd_watch_or_wait(vargc, vargv, true);
	if (strcmp(verb, "status") == 0)
		return cmd_status(vargc, vargv);
	if (strcmp(verb, "current-id") == 0)
		return cmd_current_id(vargc, vargv);
	if (strcmp(verb, "flush") == 0)
		return cmd_flush(vargc, vargv);
	if (strcmp(verb, "inject") == 0)
		return cmd_inject(vargc, vargv);
	if (strcmp(verb, "run") == 0)
		return cmd_run(vargc, vargv);
	if (strcmp(verb, "history") == 0)
		return cmd_history(vargc, vargv);
	if (strcmp(verb, "help") == 0) {
		help_main();
		return 0;
	}
	char *e = esc(verb);
	errorf("unknown verb '%s'. " TRY_HELP, e);
	free(e);
	return 1;
}
