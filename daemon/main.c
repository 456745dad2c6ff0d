/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * main.c - fsnoted: options, configuration, start-up, signals and shutdown.
 *
 * Start-up order matters for readiness: the configuration is read, the
 * kernel source is opened (fanotify, or inotify when fanotify cannot serve),
 * the listening socket is taken from the service manager or bound, and only
 * then is READY=1 sent.  SIGTERM stops accepting, sends every client a
 * shutdown record after what it already had queued, and exits 0 once the
 * clients are gone (or after a grace period).  SIGHUP reloads the
 * configuration; a file that does not parse leaves the running one in place.
 */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "mountwatch.h"

#define DEFAULT_SOCKET "/run/fsnoted/fsnoted.sock"
#define DEFAULT_STATE_DIR "/var/lib/fsnoted"
#define STATUS_INTERVAL_S 5
#define SHUTDOWN_GRACE_S 3

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: fsnoted [OPTION]...\n"
		"The filesystem notification daemon: owns fanotify (inotify where fanotify\n"
		"cannot serve) and hands events to unprivileged clients over a Unix socket.\n"
		"\n"
		"  -c, --config FILE      configuration file (default %s)\n"
		"  -s, --socket PATH      listen on PATH (default %s) unless the\n"
		"                         service manager passes a socket\n"
		"  -f, --foreground       log to stderr (the journal is used under systemd)\n"
		"  -l, --log-level LEVEL  error, warning, notice, info or debug\n"
		"  -b, --backend NAME     auto, fanotify or inotify\n"
		"      --state-dir DIR    keep the event journal in DIR (default\n"
		"                         $STATE_DIRECTORY, else %s)\n"
		"  -h, --help             show this help and exit\n"
		"  -V, --version          show the version and exit\n"
		"\n"
		"See fsnoted(8) and fsnoted.conf(5).\n",
		CONFIG_DEFAULT_PATH, DEFAULT_SOCKET, DEFAULT_STATE_DIR);
}

static void journal_config_from(const struct config *cfg, const char *dir, struct journal_config *ret)
{
	*ret = (struct journal_config){
		.dir = dir,
		.max_bytes = cfg->journal_max_bytes,
		.max_age_ns = (uint64_t)cfg->journal_max_age_s * 1000000000ull,
		.sync_ms = cfg->journal_sync_ms,
		.exclude = cfg->journal_exclude,
		.n_exclude = cfg->n_journal_exclude,
	};
}

/* Where the journal lives: --state-dir, "journal_dir", the service
 * manager's StateDirectory=, or the default.  @buf holds the first of
 * several $STATE_DIRECTORY entries. */
static const char *state_dir(const struct config *cfg, const char *opt, char *buf, size_t len)
{
	const char *env = getenv("STATE_DIRECTORY");

	if (opt)
		return opt;
	if (cfg->journal_dir)
		return cfg->journal_dir;
	if (env && env[0] == '/') {
		size_t n = strcspn(env, ":");
		if (n < len) {
			memcpy(buf, env, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return DEFAULT_STATE_DIR;
}

/* Opens the journal; without one the daemon still runs, with its history
 * in memory only, and says why. */
static void open_journal(struct daemon *d, const char *dir)
{
	struct journal_config jc;

	if (!d->cfg.journal) {
		log_info("journal: off (\"journal\": false)");
		return;
	}
	journal_config_from(&d->cfg, dir, &jc);
	int r = journal_open(&jc, now_real_ns(), &d->journal);
	if (r < 0)
		log_warn("journal: cannot use %s (%s): history does not survive a restart", dir,
			 r == -EBUSY ? "another fsnoted holds it" : strerror(-r));
}

static int pool_limits_from(const struct config *cfg, uint64_t first_id, uint64_t start_time_ns,
			    struct pool_limits *ret)
{
	*ret = (struct pool_limits){
		.max_events = cfg->pool_max_events,
		.max_bytes = cfg->pool_max_bytes,
		/* the allocator's own slack is part of the bound (see trim_cb) */
		.unchargeable = cfg->pool_max_bytes / 5,
		.history = cfg->history_events,
		.coalesce_ns = (uint64_t)cfg->coalesce_ms * 1000000ull,
		.first_id = first_id,
		.start_time_ns = start_time_ns,
	};
	return 0;
}

static void notify_status(struct daemon *d)
{
	struct pool_stats ps;
	pool_get_stats(d->pool, &ps);
	sd_notifyf(0, "STATUS=%zu clients, %zu subscriptions, %zu/%zu events pooled, "
		      "current ID %llu, backend %s",
		   d->n_clients, d->n_subs, ps.events, ps.max_events,
		   (unsigned long long)ps.current_id, d->primary->ops->name);
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
	notify_status(arg);
}

/* The bound (pool_max_bytes) counts what is held for subscribers as heap
 * chunks; what the allocator keeps after those chunks are freed (a burst's
 * events, rings and output buffers freed in another order than they came)
 * is not counted, and would let the daemon's memory grow past the bound by
 * a fraction of it.  So a fifth of the bound is never charged (the pool's
 * unchargeable part), and once what is held has fallen by more than a
 * thirty-second of the bound from its peak, the free heap is given back to
 * the kernel.  (Asking the allocator how much it holds free walks its
 * bins: too dear to do every 100 ms under load.) */
#define TRIM_INTERVAL_MS 100
static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	struct pool_stats ps;
	size_t slack = d->cfg.pool_max_bytes / 32;

	pool_get_stats(d->pool, &ps);
	size_t held = ps.bytes + ps.ring_bytes + ps.ext_bytes;
	if (held > d->trim_peak)
		d->trim_peak = held;
	else if (d->trim_peak - held > (slack < 512 * 1024 ? 512 * 1024 : slack)) {
		(void)malloc_trim(0);
		d->trim_peak = held;
	}
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_notify(0, "WATCHDOG=1");
}

static void reload(struct daemon *d)
{
	struct config cfg;
	char err[512];

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)(now_mono_ns() / 1000));
	int r = config_load(d->config_path, !d->config_explicit, &cfg, err, sizeof(err));
	if (r < 0) {
		log_err("reload failed, keeping the running configuration: %s", err);
		sd_notify(0, "READY=1");
		return;
	}
	/* the socket path, the backend and the journal's place stay as started */
	if (d->journal) {
		struct journal_config jc;
		journal_config_from(&cfg, "", &jc);
		int jr = journal_set_config(d->journal, &jc);
		if (jr < 0)
			log_warn("journal: keeping the running bounds and exclusions: %s", strerror(-jr));
	}
	struct pool_limits lim;
	pool_limits_from(&cfg, 0, 0, &lim);
	pool_set_limits(d->pool, &lim);
	log_set_level(cfg.log_level);
	config_clear(&d->cfg);
	d->cfg = cfg;
	log_notice("configuration reloaded from %s", d->config_path);
	sd_notify(0, "READY=1");
	notify_status(d);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP) {
		reload(d);
		return;
	}
	log_notice("received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	sd_notify(0, "STOPPING=1");
	server_begin_shutdown(d);
	/* clients that will not take their goodbye get a few seconds */
	struct timeval tv = { SHUTDOWN_GRACE_S, 0 };
	if (d->ev_exit)
		evtimer_add(d->ev_exit, &tv);
}

static void exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	event_base_loopbreak(d->base);
}

static int open_source(struct daemon *d, enum config_backend want)
{
	struct source_sink sink;
	int r = -ENOSYS;

	sub_sink_init(d, &sink);
	if (want != CONFIG_BACKEND_INOTIFY) {
		r = source_fanotify_new(d->base, &sink, d->cfg.path_cache_entries, &d->primary);
		if (r >= 0)
			return 0;
		if (want == CONFIG_BACKEND_FANOTIFY) {
			log_err("cannot use fanotify: %s", strerror(-r));
			return r;
		}
		log_notice("fanotify unavailable (%s): using inotify", strerror(-r));
	}
	r = source_inotify_new(d->base, &sink, &d->primary);
	if (r < 0)
		log_err("cannot use inotify: %s", strerror(-r));
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "backend", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .next_sub_id = 0 };
	const char *socket_opt = NULL, *level_opt = NULL, *backend_opt = NULL, *state_opt = NULL;
	char state_buf[4096];
	bool foreground = false;
	struct event *sigs[4] = { NULL };
	const int signums[4] = { SIGTERM, SIGINT, SIGHUP, 0 };
	char err[512];
	int c, r, ret = EXIT_FAILURE;

	d.config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:s:fl:b:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d.config_path = optarg;
			d.config_explicit = true;
			break;
		case 's':
			socket_opt = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'l':
			level_opt = optarg;
			break;
		case 'b':
			backend_opt = optarg;
			break;
		case 'D':
			if (optarg[0] != '/') {
				fprintf(stderr, "fsnoted: --state-dir needs an absolute path\n");
				return EXIT_FAILURE;
			}
			state_opt = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("fsnoted %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			fprintf(stderr, "Try 'fsnoted --help'.\n");
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fsnoted: unexpected argument '%s'\nTry 'fsnoted --help'.\n", argv[optind]);
		return EXIT_FAILURE;
	}

	/* under systemd (and not asked for stderr) the journal gets the logs */
	bool journal = !foreground && getenv("JOURNAL_STREAM") != NULL;
	log_setup(journal, LOG_NOTICE);

	r = config_load(d.config_path, !d.config_explicit, &d.cfg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err);
		return EXIT_FAILURE;
	}
	if (level_opt) {
		int lvl = config_parse_log_level(level_opt);
		if (lvl < 0) {
			log_err("unknown log level '%s' (error, warning, notice, info, debug)", level_opt);
			goto out;
		}
		d.cfg.log_level = lvl;
	}
	log_set_level(d.cfg.log_level);
	if (backend_opt) {
		if (strcmp(backend_opt, "auto") == 0)
			d.cfg.backend = CONFIG_BACKEND_AUTO;
		else if (strcmp(backend_opt, "fanotify") == 0)
			d.cfg.backend = CONFIG_BACKEND_FANOTIFY;
		else if (strcmp(backend_opt, "inotify") == 0)
			d.cfg.backend = CONFIG_BACKEND_INOTIFY;
		else {
			log_err("unknown backend '%s' (auto, fanotify, inotify)", backend_opt);
			goto out;
		}
	}
	const char *socket_path = socket_opt ? socket_opt :
				  d.cfg.socket_path ? d.cfg.socket_path : DEFAULT_SOCKET;

	signal(SIGPIPE, SIG_IGN);
	/* every client is a descriptor: the soft limit of 1024 would cap the
	 * daemon far below the subscribers it is meant to serve, and libevent
	 * uses epoll, so nothing depends on descriptors staying small */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/* the fanotify source naps for a fraction of a millisecond under load:
	 * epoll's own timeouts are whole milliseconds */
	struct event_config *ecfg = event_config_new();
	if (ecfg) {
		event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
		/* priorities are only looked at between rounds of callbacks, and
		 * one round may serve every client: after a few clients, or a
		 * millisecond, a readable kernel source gets its turn */
		struct timeval slice = { 0, 1000 };
		event_config_set_max_dispatch_interval(ecfg, &slice, 8, SOURCE_PRIORITY + 1);
	}
	d.base = ecfg ? event_base_new_with_config(ecfg) : NULL;
	if (ecfg)
		event_config_free(ecfg);
	/* kernel sources before clients: see SOURCE_PRIORITY in source.h */
	if (!d.base || event_base_priority_init(d.base, SOURCE_PRIORITY + 2) < 0) {
		log_err("cannot create the event loop");
		goto out;
	}
	d.start_ns = now_mono_ns();
	/* before the socket exists: whoever sees it may send SIGTERM at once */
	for (int i = 0; signums[i]; i++) {
		sigs[i] = evsignal_new(d.base, signums[i], signal_cb, &d);
		if (!sigs[i] || evsignal_add(sigs[i], NULL) < 0) {
			log_err("cannot handle signal %d", signums[i]);
			goto out;
		}
	}

	/* IDs continue to grow across restarts: a client resuming with an ID
	 * from an earlier run is then always behind the history and gets a
	 * must-rescan instead of events that are not what it missed.  They
	 * start at the wall clock in microseconds: a run would have to average
	 * more than one event per microsecond to catch up with the next start,
	 * and the IDs stay below 2^53, exact for every JSON reader that parses
	 * numbers as doubles (jq, JavaScript). */
	struct pool_limits lim;
	uint64_t start_real = now_real_ns();
	uint64_t first_id = start_real / 1000;
	open_journal(&d, state_dir(&d.cfg, state_opt, state_buf, sizeof(state_buf)));
	/* the journal may know IDs beyond the clock (set back, or a run that
	 * averaged more than one event per microsecond): never reuse one */
	if (d.journal && journal_last_id(d.journal) >= first_id)
		first_id = journal_last_id(d.journal) + 1;
	pool_limits_from(&d.cfg, first_id, start_real, &lim);
	struct pool_callbacks cb = { .ring_dropped = sub_ring_dropped,
				    .ring_stale_since = sub_ring_stale_since };
	r = pool_new(&lim, &cb, &d.pool);
	if (r < 0) {
		log_err("cannot create the event pool: %s", strerror(-r));
		goto out;
	}
	if (d.journal) {
		r = journal_start(d.journal, d.base, first_id, start_real);
		if (r < 0) {
			log_warn("journal: cannot start: %s: history does not survive a restart",
				 strerror(-r));
			d.journal = journal_free(d.journal);
		} else {
			log_info("journal in %s; this run's IDs start after %llu",
				 state_dir(&d.cfg, state_opt, state_buf, sizeof(state_buf)),
				 (unsigned long long)first_id);
		}
	}
	r = access_new(d.cfg.access_cache_entries, &d.access);
	if (r < 0) {
		log_err("cannot create the access checker: %s", strerror(-r));
		goto out;
	}
	r = open_source(&d, d.cfg.backend);
	if (r < 0)
		goto out;
	r = mountwatch_new(d.base, sub_mount_event, &d, &d.mounts);
	if (r < 0)
		log_info("no mount records: %s", r == -ENOSYS ? "the kernel has no mount notifications"
							       : strerror(-r));
	r = server_listen(&d, socket_path);
	if (r < 0)
		goto out;

	d.ev_exit = evtimer_new(d.base, exit_cb, &d);
	d.ev_status = event_new(d.base, -1, EV_PERSIST, status_cb, &d);
	struct timeval status_tv = { STATUS_INTERVAL_S, 0 };
	if (d.ev_status)
		event_add(d.ev_status, &status_tv);
	d.ev_trim = event_new(d.base, -1, EV_PERSIST, trim_cb, &d);
	struct timeval trim_tv = { 0, TRIM_INTERVAL_MS * 1000 };
	if (d.ev_trim)
		event_add(d.ev_trim, &trim_tv);
	uint64_t wd_usec = 0;
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
		d.ev_watchdog = event_new(d.base, -1, EV_PERSIST, watchdog_cb, &d);
		struct timeval tv = { (time_t)(wd_usec / 2 / 1000000), (suseconds_t)(wd_usec / 2 % 1000000) };
		if (d.ev_watchdog)
			event_add(d.ev_watchdog, &tv);
		log_info("watchdog: pinging every %llu ms", (unsigned long long)(wd_usec / 2000));
	}

	log_notice("fsnoted %s started (backend %s, pool %zu events / %zu bytes)", PACKAGE_VERSION,
		   d.primary->ops->name, d.cfg.pool_max_events, d.cfg.pool_max_bytes);
	sd_notify(0, "READY=1");
	notify_status(&d);

	event_base_dispatch(d.base);

	/* the clean-stop marker: the next start sees a stop, not a crash */
	if (d.journal) {
		r = journal_stop(d.journal, pool_current_id(d.pool), now_real_ns());
		if (r < 0)
			log_warn("journal: cannot write the clean-stop marker: %s", strerror(-r));
	}
	log_notice("fsnoted stopped");
	ret = EXIT_SUCCESS;
out:
	for (int i = 0; signums[i]; i++)
		if (sigs[i])
			event_free(sigs[i]);
	server_free_clients(&d);
	sub_free_lingers(&d);
	if (d.ev_exit)
		event_free(d.ev_exit);
	if (d.ev_status)
		event_free(d.ev_status);
	if (d.ev_trim)
		event_free(d.ev_trim);
	if (d.ev_watchdog)
		event_free(d.ev_watchdog);
	d.mounts = mountwatch_free(d.mounts);
	d.primary = source_free(d.primary);
	d.fallback = source_free(d.fallback);
	d.access = access_free(d.access);
	d.journal = journal_free(d.journal);
	d.pool = pool_free(d.pool);
	free(d.dev_heads);
	free(d.dev_keys);
	config_clear(&d.cfg);
	if (d.base)
		event_base_free(d.base);
	return ret;
}
