/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-run.c - `fsnotectl run PATH... -- COMMAND`: run a command once,
 * then again whenever something below PATH changed and the changes have
 * settled (the job of entr and watchexec).
 *
 * One process, one loop (poll on the library's descriptor and a signalfd)
 * and at most one COMMAND at a time:
 *
 *   - a change marks a run as pending and restarts the debounce clock; a
 *     run starts once nothing changed for the debounce time and no run is
 *     going on, so any number of changes during a run give exactly one
 *     more run after it;
 *   - with --restart, a settled change ends the running COMMAND instead:
 *     SIGTERM to its process group, SIGKILL after the grace time, and
 *     whatever is left of the group is killed once the command itself is
 *     gone; then the next run starts;
 *   - SIGINT or SIGTERM ends a running COMMAND the same way and exits with
 *     its status (the last run's status when none was running).
 *
 * COMMAND runs in its own process group (so that it can be ended whole),
 * with standard input from /dev/null (a background group reading the
 * terminal would stop), and with the changed paths in FSNOTE_CHANGED.
 *
 * What is ignored: the names .git, .hg and .svn and every --exclude, which
 * the daemon filters; and the rules of .fsnoteignore and .gitignore in each
 * watched directory (a subset of gitignore(5): see ignore_parse()), which
 * this file matches itself and also hands to the daemon where its simpler
 * syntax means the same.  Everything read from those files is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsnote.h"
#include "fsnotectl.h"

/* Bounds on what an ignore file may make us hold. */
#define IGNORE_FILE_MAX (256u * 1024u)
#define IGNORE_RULES_MAX 1024u
/* The daemon's bound on patterns per subscription (FSNOTE_EXCLUDES_MAX). */
#define DAEMON_EXCLUDES_MAX 32u
#define DAEMON_PATTERN_MAX 255u
/* FSNOTE_CHANGED holds at most this many bytes and paths. */
#define CHANGED_BYTES_MAX (64u * 1024u)
#define CHANGED_PATHS_MAX 1024u

static const char *const default_excludes[] = { ".git", ".hg", ".svn" };

/* --- ignore rules ----------------------------------------------------------------- */

struct ignore_rule {
	char *pat;      /* fnmatch(3) pattern, without '!', leading or trailing '/' */
	bool negate;    /* "!pat": re-include */
	bool dir_only;  /* "pat/": directories only */
	bool anchored;  /* had a '/' before its end: matched against the whole path */
	bool deep;      /* holds "**" inside: '*' may cross '/' */
};

struct ignore {
	struct ignore_rule *rules;
	size_t n;
	bool has_negation;
};

static void ignore_free(struct ignore *ig)
{
	for (size_t i = 0; i < ig->n; i++)
		free(ig->rules[i].pat);
	free(ig->rules);
	*ig = (struct ignore){ 0 };
}

/* One line of a gitignore-style file.  Honoured: blank lines and '#'
 * comments, '!' negation (the last matching rule wins; nothing is
 * re-included below an ignored directory), a trailing '/' for directories
 * only, a leading or inner '/' anchoring the pattern to the watched
 * directory, "**" as a leading "**" + "/" (any depth), a trailing "/" +
 * "**" (everything inside) or an inner "/" + "**" + "/" (one or more
 * directories), and fnmatch(3) globs with backslash escapes.  Trailing
 * spaces are dropped.  Returns 0 (rule added or nothing to add) or
 * -ENOMEM. */
static int ignore_add_line(struct ignore *ig, const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\r') &&
	       !(len >= 2 && line[len - 2] == '\\'))
		len--;
	if (len == 0 || line[0] == '#')
		return 0;
	struct ignore_rule r = { 0 };
	if (line[0] == '!') {
		r.negate = true;
		line++;
		len--;
	} else if (line[0] == '\\' && len > 1 && (line[1] == '!' || line[1] == '#')) {
		line++;
		len--;
	}
	if (len > 0 && line[len - 1] == '/') {
		r.dir_only = true;
		len--;
	}
	if (len >= 3 && memcmp(line, "**/", 3) == 0) {
		line += 3;
		len -= 3;
	} else if (len > 0 && line[0] == '/') {
		r.anchored = true;
		line++;
		len--;
	}
	if (len >= 3 && memcmp(line + len - 3, "/**", 3) == 0) {
		/* everything inside: the directory itself, as a directory */
		len -= 3;
		r.dir_only = true;
		r.anchored = true;
	}
	if (len == 0)
		return 0;
	if (memchr(line, '/', len))
		r.anchored = true;
	r.pat = strndup(line, len);
	if (!r.pat)
		return -ENOMEM;
	r.deep = strstr(r.pat, "**") != NULL;
	if (ig->n % 16 == 0) {
		struct ignore_rule *n = realloc(ig->rules, (ig->n + 16) * sizeof(*n));
		if (!n) {
			free(r.pat);
			return -ENOMEM;
		}
		ig->rules = n;
	}
	ig->has_negation |= r.negate;
	ig->rules[ig->n++] = r;
	return 0;
}

/* Reads @dir/@name if it is there.  Returns 0 (absent counts), -E2BIG past
 * the bounds, -ENOMEM, or the error of reading it. */
static int ignore_read(struct ignore *ig, const char *dir, const char *name)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (st.st_size > (off_t)IGNORE_FILE_MAX) {
		close(fd);
		return -E2BIG;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > (size_t)st.st_size) {
			/* it grew while we read: the bound still holds */
			len = (size_t)st.st_size;
			break;
		}
	}
	close(fd);
	int r = 0;
	for (size_t off = 0; off < len && r == 0;) {
		char *nl = memchr(buf + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - buf) : len;
		if (ig->n >= IGNORE_RULES_MAX)
			r = -E2BIG;
		else
			r = ignore_add_line(ig, buf + off, end - off);
		off = end + 1;
	}
	free(buf);
	return r;
}

static bool rule_matches(const struct ignore_rule *r, const char *prefix, const char *base, bool is_dir)
{
	if (r->dir_only && !is_dir)
		return false;
	if (!r->anchored)
		return fnmatch(r->pat, base, 0) == 0;
	return fnmatch(r->pat, prefix, r->deep ? 0 : FNM_PATHNAME) == 0;
}

/* Whether @rel (a path below the watched directory, no leading '/') is
 * ignored: each directory on the way down is judged first, and one that is
 * ignored hides everything below it, as in git. */
static bool ignore_match(const struct ignore *ig, const char *rel, size_t len, bool is_dir)
{
	char buf[PATH_MAX];

	if (!ig->n || len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, rel, len);
	buf[len] = '\0';
	size_t start = 0;
	for (;;) {
		char *slash = strchr(buf + start, '/');
		size_t end = slash ? (size_t)(slash - buf) : len;
		char saved = buf[end];
		buf[end] = '\0';
		bool ignored = false;
		for (size_t i = 0; i < ig->n; i++)
			if (rule_matches(&ig->rules[i], buf, buf + start, slash ? true : is_dir))
				ignored = !ig->rules[i].negate;
		buf[end] = saved;
		if (ignored)
			return true;
		if (!slash)
			return false;
		start = end + 1;
	}
}

/* Whether the daemon's exclude syntax (daemon/exclude.c: a pattern without
 * '/' matches any one component, one with '/' the path below the root with
 * FNM_PATHNAME | FNM_LEADING_DIR) means the same as @r. */
static bool daemon_can_take(const struct ignore *ig, const struct ignore_rule *r)
{
	return !ig->has_negation && !r->dir_only && !r->deep && strlen(r->pat) <= DAEMON_PATTERN_MAX &&
	       (!r->anchored || strchr(r->pat, '/'));
}

/* --- the changed paths ------------------------------------------------------------ */

struct changed {
	char *buf;      /* "path\npath\n..." (no NUL inside) */
	size_t len, n;
	bool truncated;
};

static void changed_add(struct changed *c, const char *path, size_t len)
{
	if (c->truncated)
		return;
	/* each path once: the list is short (bounded), a scan is cheap */
	for (size_t off = 0; off < c->len;) {
		char *nl = memchr(c->buf + off, '\n', c->len - off);
		size_t end = nl ? (size_t)(nl - c->buf) : c->len;
		if (end - off == len && memcmp(c->buf + off, path, len) == 0)
			return;
		off = end + 1;
	}
	if (c->n >= CHANGED_PATHS_MAX || c->len + len + 1 > CHANGED_BYTES_MAX) {
		c->truncated = true;
		return;
	}
	if (!c->buf && !(c->buf = malloc(CHANGED_BYTES_MAX + 1))) {
		c->truncated = true;
		return;
	}
	memcpy(c->buf + c->len, path, len);
	c->len += len;
	c->buf[c->len++] = '\n';
	c->n++;
}

/* --- the loop --------------------------------------------------------------------- */

struct run {
	fsnote *h;
	char **cmd;
	int64_t debounce_ns, grace_ns;
	bool restart, quiet;
	/* per subscription (index: ID - 1, IDs are handed out from 1) */
	size_t n_subs;
	struct watched {
		uint32_t sub_id;
		const char *root;
		struct ignore ig;
		bool ended;
	} *subs;

	pid_t child;            /* 0: no run going on */
	bool killing;           /* SIGTERM sent to the running command */
	int64_t kill_deadline;  /* when SIGKILL follows */
	bool pending;           /* something changed since the last run started */
	int64_t last_change;
	int last_status;
	struct changed changed;
	sigset_t old_mask;
};

static int exit_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

static int start(struct run *r)
{
	char *list = NULL;
	if (r->changed.len) {
		list = strndup(r->changed.buf, r->changed.len - 1);
		if (!list)
			return -ENOMEM;
	}
	bool truncated = r->changed.truncated;
	r->changed.len = r->changed.n = 0;
	r->changed.truncated = false;
	r->pending = false;

	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		free(list);
		return -e;
	}
	if (pid == 0) {
		setpgid(0, 0);
		sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
		int null = open("/dev/null", O_RDONLY);
		if (null >= 0 && null != STDIN_FILENO) {
			dup2(null, STDIN_FILENO);
			close(null);
		}
		setenv("FSNOTE_CHANGED", list ? list : "", 1);
		if (truncated)
			setenv("FSNOTE_CHANGED_TRUNCATED", "1", 1);
		else
			unsetenv("FSNOTE_CHANGED_TRUNCATED");
		execvp(r->cmd[0], r->cmd);
		int e = errno;
		char *name = esc(r->cmd[0]);
		errorf("cannot run %s: %s", name, strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	/* both sides set the group, so that it exists whoever runs first */
	(void)setpgid(pid, pid);
	free(list);
	r->child = pid;
	r->killing = false;
	return 0;
}

static void stop_child(struct run *r, int64_t now)
{
	if (!r->child || r->killing)
		return;
	(void)kill(-r->child, SIGTERM);
	r->killing = true;
	r->kill_deadline = now + r->grace_ns;
}

/* Reaps the command if it ended; returns true then. */
static bool reap(struct run *r)
{
	siginfo_t si = { 0 };

	if (!r->child)
		return false;
	/* look without reaping: while the command is a zombie its process group
	 * ID cannot be reused, so what is left of the group can be killed
	 * safely */
	if (waitid(P_PID, (id_t)r->child, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
		return false;
	if (r->killing)
		(void)kill(-r->child, SIGKILL);
	int status = 0;
	while (waitpid(r->child, &status, 0) < 0 && errno == EINTR)
		;
	r->last_status = exit_status(status);
	r->child = 0;
	r->killing = false;
	return true;
}

static struct watched *watched_of(struct run *r, uint32_t sub_id)
{
	for (size_t i = 0; i < r->n_subs; i++)
		if (r->subs[i].sub_id == sub_id)
			return &r->subs[i];
	return NULL;
}

/* Whether @path (absolute) is ignored in @w. */
static bool ignored(const struct watched *w, const char *path, size_t len, bool is_dir)
{
	size_t rl = strlen(w->root);
	while (rl > 1 && w->root[rl - 1] == '/')
		rl--;
	if (len <= rl || memcmp(path, w->root, rl) != 0 || (rl > 1 && path[rl] != '/'))
		return false;
	const char *rel = path + rl + (rl > 1 ? 1 : 0);
	return ignore_match(&w->ig, rel, len - (size_t)(rel - path), is_dir);
}

/* Takes one event in: true if it asks for a run. */
static bool take_event(struct run *r, const fsnote_event *e)
{
	uint32_t type = fsnote_event_type(e);
	uint32_t flags = fsnote_event_flags(e);
	struct watched *w = watched_of(r, fsnote_event_sub_id(e));
	size_t len, dlen;
	const char *path = fsnote_event_path(e, &len);
	const char *dest = fsnote_event_dest(e, &dlen);
	bool is_dir = fsnote_event_is_dir(e);

	if (flags & FSNOTE_F_SUB_ENDED && w)
		w->ended = true;
	if (type == FSNOTE_DROPPED) {
		/* lost events: whatever they were, run again, and say so */
		const char *rescan = fsnote_event_rescan(e, &len);
		if (rescan)
			changed_add(&r->changed, rescan, len);
		r->changed.truncated = true;
		return true;
	}
	if (type == FSNOTE_UNMOUNT)
		return false;
	bool any = false;
	if (path && !(w && ignored(w, path, len, is_dir))) {
		changed_add(&r->changed, path, len);
		any = true;
	}
	if (dest && !(w && ignored(w, dest, dlen, is_dir))) {
		changed_add(&r->changed, dest, dlen);
		any = true;
	}
	return any;
}

/* Reads every event that is waiting.  Returns 0, or 1 when the connection
 * is gone (the message printed). */
static int drain(struct run *r, int64_t now)
{
	for (;;) {
		fsnote_event *e = NULL;
		int x = fsnote_read(r->h, 0, &e);
		if (x == -EAGAIN || x == -ETIMEDOUT || x == -EINTR)
			return 0;
		if (x == -ESHUTDOWN) {
			char *m = esc(fsnote_last_error(r->h));
			fprintf(stderr, "fsnotectl: %s\n", *m ? m : "fsnoted is shutting down");
			free(m);
			return 1;
		}
		if (x == -ECONNRESET) {
			errorf("lost the connection to fsnoted");
			return 1;
		}
		if (x < 0) {
			request_error(r->h, "cannot read events", x);
			return 1;
		}
		if (take_event(r, e)) {
			r->pending = true;
			r->last_change = now;
		}
		fsnote_event_free(e);
	}
}

static bool all_ended(const struct run *r)
{
	for (size_t i = 0; i < r->n_subs; i++)
		if (!r->subs[i].ended)
			return false;
	return true;
}

static int loop(struct run *r, int sfd)
{
	bool quit = false;  /* a signal asked us to stop: end the run, exit */
	bool done = false;  /* no more events will come: finish the run, exit */
	int ret = -1;       /* our own failure (1), else the command's status */

	int x = start(r);
	if (x < 0) {
		errorf("cannot start the command: %s", strerror(-x));
		return 1;
	}
	for (;;) {
		int64_t now = now_ns(CLOCK_MONOTONIC);

		reap(r);
		if ((quit || done) && !r->child)
			return ret >= 0 ? ret : r->last_status;
		if (quit)
			stop_child(r, now);
		else if (!done && r->pending && now - r->last_change >= r->debounce_ns) {
			if (!r->child) {
				x = start(r);
				if (x < 0) {
					errorf("cannot start the command: %s", strerror(-x));
					quit = true;
					ret = 1;
					continue;
				}
			} else if (r->restart) {
				stop_child(r, now);
			}
		}
		if (r->child && r->killing && now >= r->kill_deadline)
			(void)kill(-r->child, SIGKILL);

		/* sleep until an event, a signal, or the next deadline */
		int64_t wake = -1;
		if (!quit && !done && r->pending && (!r->child || (r->restart && !r->killing)))
			wake = r->last_change + r->debounce_ns;
		if (r->child && r->killing && (wake < 0 || r->kill_deadline < wake))
			wake = r->kill_deadline;
		int timeout = -1;
		if (wake >= 0) {
			int64_t ms = wake > now ? (wake - now + 999999) / 1000000 : 0;
			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		}
		struct pollfd p[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = done ? -1 : fsnote_fd(r->h), .events = POLLIN },
		};
		if (poll(p, 2, timeout) < 0 && errno != EINTR) {
			errorf("poll: %s", strerror(errno));
			return 1;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
					/* a second one does not wait for the grace */
					if (quit && r->child)
						(void)kill(-r->child, SIGKILL);
					quit = true;
				}
			}
		}
		if (!done && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (drain(r, now_ns(CLOCK_MONOTONIC))) {
				done = true;
				ret = 1;
			} else if (all_ended(r)) {
				fprintf(stderr, "fsnotectl: every watch has ended\n");
				done = true;
			}
		}
	}
}

/* --- the verb --------------------------------------------------------------------- */

static void help_run(void)
{
	printf("Usage: fsnotectl run [OPTION]... PATH... -- COMMAND [ARG]...\n"
	       "Run COMMAND, then again each time something below a PATH changed and the\n"
	       "changes settled.  Never two at once: changes during a run give one more run.\n"
	       "The changed paths are in $FSNOTE_CHANGED, one per line.\n"
	       "\n"
	       "      --debounce MS     wait until nothing changed for MS milliseconds (100)\n"
	       "  -r, --restart         end a running COMMAND (SIGTERM to its process group,\n"
	       "                        SIGKILL after the grace) and start it again\n"
	       "      --grace MS        time between SIGTERM and SIGKILL (2000)\n"
	       "      --exclude PATTERN ignore a name, glob or path below PATH (repeatable)\n"
	       "      --no-ignore       ignore neither .git/.hg/.svn nor the rules of\n"
	       "                        .fsnoteignore and .gitignore in each PATH\n"
	       "  -q, --quiet           do not print 'Watches established.'\n"
	       "  -h, --help            show this help\n"
	       "\n"
	       "On SIGINT or SIGTERM, a running COMMAND is ended the same way, and the exit\n"
	       "status is COMMAND's last (128+N when a signal N ended it).\n");
}

static int parse_ms(const char *opt, const char *s, int64_t *ret_ns)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 86400e3) {
		errorf("invalid %s '%s': expected a number of milliseconds", opt, s);
		return -EINVAL;
	}
	*ret_ns = (int64_t)(v * 1e6);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "debounce", required_argument, NULL, 'd' },
		{ "restart", no_argument, NULL, 'r' },
		{ "grace", required_argument, NULL, 'g' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "no-ignore", no_argument, NULL, 'I' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run r = { .debounce_ns = 100 * 1000000LL, .grace_ns = 2000 * 1000000LL };
	const char *excludes[DAEMON_EXCLUDES_MAX];
	size_t n_excludes = 0;
	bool no_ignore = false;
	int c, ret = 1, sfd = -1;
	fsnote_sub_opts *o = NULL;

	/* "--" ends the PATHs: the options are parsed up to it only, so that
	 * COMMAND's own options stay its own */
	int dash = 1;
	while (dash < argc && strcmp(argv[dash], "--") != 0)
		dash++;
	if (dash >= argc || dash + 1 >= argc) {
		for (int i = 1; i < argc; i++)
			if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
				help_run();
				return 0;
			}
		errorf("run needs PATH... -- COMMAND. " TRY_HELP);
		return 1;
	}
	while ((c = getopt_long(dash, argv, ":rqh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_ms("--debounce", optarg, &r.debounce_ns) < 0)
				return 1;
			break;
		case 'g':
			if (parse_ms("--grace", optarg, &r.grace_ns) < 0)
				return 1;
			break;
		case 'r':
			r.restart = true;
			break;
		case 'x':
			if (n_excludes + sizeof(default_excludes) / sizeof(default_excludes[0]) >=
			    DAEMON_EXCLUDES_MAX) {
				errorf("too many --exclude patterns (at most %zu)",
				       DAEMON_EXCLUDES_MAX - sizeof(default_excludes) / sizeof(default_excludes[0]));
				return 1;
			}
			if (strlen(optarg) > DAEMON_PATTERN_MAX || !*optarg) {
				char *e = esc(optarg);
				errorf("invalid --exclude '%s' (1 to %u bytes)", e, DAEMON_PATTERN_MAX);
				free(e);
				return 1;
			}
			excludes[n_excludes++] = optarg;
			break;
		case 'I':
			no_ignore = true;
			break;
		case 'q':
			r.quiet = true;
			break;
		case 'h':
			help_run();
			return 0;
		default:
			return bad_option("run", c, argv);
		}
	}
	int npaths = dash - optind;
	if (npaths < 1) {
		errorf("run needs at least one PATH before --. " TRY_HELP);
		return 1;
	}
	r.cmd = argv + dash + 1;
	r.subs = calloc((size_t)npaths, sizeof(*r.subs));
	if (!r.subs) {
		errorf("out of memory");
		return 1;
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &r.old_mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		errorf("signalfd: %s", strerror(errno));
		goto out;
	}
	if (connect_daemon(&r.h))
		goto out;

	for (int i = 0; i < npaths; i++) {
		const char *path = argv[optind + i];
		struct watched *w = &r.subs[i];
		if (!no_ignore) {
			int x = ignore_read(&w->ig, path, ".fsnoteignore");
			if (x == 0)
				x = ignore_read(&w->ig, path, ".gitignore");
			if (x < 0) {
				char *p = esc(path);
				if (x == -E2BIG)
					errorf("the ignore files in %s are too large (at most %u KiB and %u rules)", p,
					       IGNORE_FILE_MAX / 1024, IGNORE_RULES_MAX);
				else
					errorf("cannot read the ignore files in %s: %s", p, strerror(-x));
				free(p);
				goto out;
			}
		}
		int x = fsnote_sub_opts_new(&o);
		if (x < 0) {
			errorf("cannot set up the subscription: %s", strerror(-x));
			goto out;
		}
		size_t pushed = 0;
		for (size_t k = 0; !no_ignore && k < sizeof(default_excludes) / sizeof(default_excludes[0]); k++)
			if (fsnote_sub_opts_add_exclude(o, default_excludes[k]) == 0)
				pushed++;
		for (size_t k = 0; k < n_excludes; k++)
			if (fsnote_sub_opts_add_exclude(o, excludes[k]) == 0)
				pushed++;
		/* the rest are matched here; the daemon only saves us the traffic */
		for (size_t k = 0; k < w->ig.n && pushed < DAEMON_EXCLUDES_MAX; k++)
			if (daemon_can_take(&w->ig, &w->ig.rules[k]) &&
			    fsnote_sub_opts_add_exclude(o, w->ig.rules[k].pat) == 0)
				pushed++;
		x = fsnote_subscribe(r.h, path, o, &w->sub_id);
		o = fsnote_sub_opts_free(o);
		if (x < 0) {
			subscribe_error(r.h, path, x);
			goto out;
		}
		w->root = fsnote_sub_root(r.h, w->sub_id);
		if (!w->root)
			w->root = "/";
		r.n_subs++;
	}
	if (!r.quiet) {
		fputs("Watches established.\n", stderr);
		fflush(stderr);
	}
	fflush(stdout);
	ret = loop(&r, sfd);
out:
	fsnote_sub_opts_free(o);
	fsnote_close(r.h);
	if (sfd >= 0)
		close(sfd);
	for (size_t i = 0; i < (size_t)(npaths > 0 ? npaths : 0); i++)
		ignore_free(&r.subs[i].ig);
	free(r.subs);
	free(r.changed.buf);
	sigprocmask(SIG_SETMASK, &r.old_mask, NULL);
	return ret;
}
