/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl-history.c - `fsnotectl history` and the journal lines of
 * `fsnotectl status`.
 *
 * history is a subscription with a since ID and an until ID: the daemon
 * replays what its journal and memory hold for PATH in that range, judged
 * exactly as live delivery (the caller sees only what it may see), and ends
 * the subscription with a history_end record, after which the command
 * exits.  Gaps inside the range come first as must-rescan dropped records,
 * printed like any other event.
 *
 * watch --at TIME resumes the same way, from the ID of TIME.
 *
 * This file is part of fsnotectl.c's translation unit (included from it),
 * so that the verb shares the parsing, connecting and printing helpers with
 * watch rather than copying them.
 */

/* Resolves --at/--until times to IDs: the first ID at or after @t. */
static int history_id_at(fsnote *h, const char *what, int64_t t, uint64_t *ret)
{
	int r = fsnote_id_at_time(h, (uint64_t)t, ret);
	if (r == -ERANGE) {
		errorf("%s is older than the daemon's history and journal reach back", what);
		return 1;
	}
	if (r < 0)
		return request_error(h, "cannot turn a time into an event ID", r);
	return 0;
}

/* watch --at TIME: resumes from the first ID at or after TIME.  Returns 0
 * or 1 (the exit status, the message said). */
static int watch_at(fsnote *h, const char *at, fsnote_sub_opts *o)
{
	int64_t t = 0;
	uint64_t id;

	if (parse_time(at, &t) < 0 || t < 0)
		return 1;
	if (history_id_at(h, at, t, &id))
		return 1;
	int r = fsnote_sub_opts_set_since(o, id ? id - 1 : 0);
	if (r < 0) {
		errorf("cannot set up the subscription: %s", strerror(-r));
		return 1;
	}
	return 0;
}

/* The journal's oldest ID from the status document, for a history without
 * --since or --at; 0 when there is none. */
static uint64_t history_floor(fsnote *h)
{
	char *text = NULL;
	uint64_t floor = 0;

	if (fsnote_status(h, &text) < 0)
		return 0;
	json_t *root = json_loads(text, 0, NULL);
	const json_t *j = json_object_get(root, "journal");
	if (json_is_true(json_object_get(j, "enabled")))
		floor = (uint64_t)jint(j, "first_id");
	json_decref(root);
	free(text);
	return floor;
}

static void help_history(void)
{
	printf("Usage: fsnotectl history [--since ID | --at TIME] [--until ID|TIME] [--json]\n"
	       "                         [--children] [-e LIST] PATH\n"
	       "Print what the daemon's journal (and memory) holds for PATH, oldest first, and\n"
	       "exit.  Gaps (the daemon stopped or crashed, a kernel overflow, a cut journal)\n"
	       "come first as dropped records flagged must_rescan.\n"
	       "\n"
	       "      --since ID      events after ID (default: the journal's oldest)\n"
	       "      --at TIME       events from TIME on (forms as for current-id --at)\n"
	       "      --until X       up to event ID X, or up to TIME X (default: now)\n"
	       "  -c, --children      direct children of PATH only\n"
	       "  -e, --events LIST   event types, comma separated (as for watch)\n"
	       "      --json          one JSON object per line\n"
	       "  -h, --help          show this help\n");
}

static int cmd_history(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "at", required_argument, NULL, 'a' },
		{ "until", required_argument, NULL, 'u' },
		{ "children", no_argument, NULL, 'c' },
		{ "events", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *at = NULL, *until = NULL;
	struct output out = { .buf = { .fd = STDOUT_FILENO } };
	bool have_since = false, children = false, json = false;
	uint64_t since = 0, mask = 0;
	int c;

	while ((c = getopt_long(argc, argv, ":ce:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_u64("--since", optarg, &since) < 0)
				return 1;
			have_since = true;
			break;
		case 'a':
			at = optarg;
			break;
		case 'u':
			until = optarg;
			break;
		case 'c':
			children = true;
			break;
		case 'e':
			if (parse_events(optarg, false, &mask, NULL) < 0)
				return 1;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			help_history();
			return 0;
		default:
			return bad_option("history", c, argv);
		}
	}
	if (have_since && at) {
		errorf("--since and --at do not go together. " TRY_HELP);
		return 1;
	}
	if (argc - optind != 1) {
		errorf("history needs exactly one PATH. " TRY_HELP);
		return 1;
	}
	const char *path = argv[optind];
	int64_t at_ns = 0, until_ns = -1;
	uint64_t until_id = 0;
	if (at && (parse_time(at, &at_ns) < 0 || at_ns < 0)) {
		char *e = esc(at);
		errorf("invalid time '%s': use ISO 8601, @EPOCH, now or -N(ms|s|min|h|d)", e);
		free(e);
		return 1;
	}
	if (until) {
		/* all digits: an ID; anything else: a time */
		if (until[0] && strspn(until, "0123456789") == strlen(until)) {
			if (parse_u64("--until", until, &until_id) < 0)
				return 1;
		} else if (parse_time(until, &until_ns) < 0 || until_ns < 0) {
			char *e = esc(until);
			errorf("invalid --until '%s': an event ID or a time", e);
			free(e);
			return 1;
		}
	}

	fsnote *h = NULL;
	fsnote_sub_opts *o = NULL;
	int ret = 1, r;
	if (connect_daemon(&h))
		return 1;
	if (at) {
		uint64_t id;
		if (history_id_at(h, at, at_ns, &id))
			goto out;
		since = id ? id - 1 : 0;
	} else if (!have_since) {
		since = history_floor(h);
	}
	if (until_ns >= 0) {
		uint64_t id;
		r = fsnote_id_at_time(h, (uint64_t)until_ns + 1, &id);
		if (r == -ERANGE) {
			ret = 0; /* before everything kept: nothing to print */
			goto out;
		}
		if (r < 0) {
			request_error(h, "cannot turn --until into an event ID", r);
			goto out;
		}
		until_id = id ? id - 1 : 0;
	} else if (!until_id) {
		r = fsnote_current_id(h, &until_id);
		if (r < 0) {
			request_error(h, "cannot get the current event ID", r);
			goto out;
		}
	}
	if (until_id <= since) {
		ret = 0;
		goto out;
	}
	if ((r = fsnote_sub_opts_new(&o)) < 0 || (r = fsnote_sub_opts_set_since(o, since)) < 0 ||
	    (r = fsnote_sub_opts_set_until(o, until_id)) < 0 ||
	    (children && (r = fsnote_sub_opts_set_children(o, true)) < 0) ||
	    (mask && (r = fsnote_sub_opts_set_events(o, mask)) < 0)) {
		errorf("cannot set up the subscription: %s", strerror(-r));
		goto out;
	}
	uint32_t sub_id;
	r = fsnote_subscribe(h, path, o, &sub_id);
	if (r < 0) {
		subscribe_error(h, path, r);
		goto out;
	}
	out.json = json;
	out.color = !json && want_color();
	for (;;) {
		fsnote_event *e = NULL;
		r = fsnote_read(h, -1, &e);
		if (r == -EINTR || r == -EAGAIN || r == -ETIMEDOUT)
			continue;
		if (r < 0) {
			request_error(h, "cannot read the history", r);
			goto out;
		}
		uint32_t type = fsnote_event_type(e), flags = fsnote_event_flags(e);
		if (type != FSNOTE_HISTORY_END)
			r = print_event(&out, e);
		e = fsnote_event_free(e);
		if (r < 0) {
			errorf("cannot write to standard output: %s", strerror(-r));
			goto out;
		}
		if (type == FSNOTE_HISTORY_END || (flags & FSNOTE_F_SUB_ENDED))
			break;
	}
	ret = 0;
out:
	free(out.buf.p);
	fsnote_sub_opts_free(o);
	fsnote_close(h);
	return ret;
}

/* The journal's lines of `fsnotectl status`. */
static void print_journal_status(const json_t *root, bool color)
{
	const char *b = color ? "\033[1m" : "", *n = color ? "\033[0m" : "";
	const json_t *j = json_object_get(root, "journal");
	char a1[32], a2[32];

	if (!json_is_object(j))
		return;
	if (!json_is_true(json_object_get(j, "enabled"))) {
		printf("  %sjournal%s       off: history does not survive a restart\n", b, n);
		return;
	}
	double by = (double)jint(j, "bytes"), bymax = (double)jint(j, "max_bytes");
	printf("  %sjournal%s       ", b, n);
	bar(bymax > 0 ? by / bymax : 0, color);
	human_size(by, a1, sizeof(a1));
	human_size(bymax, a2, sizeof(a2));
	char *dir = esc(json_string_value(json_object_get(j, "dir")));
	printf("  %s/%s in %" JSON_INTEGER_FORMAT " segments, %s\n", a1, a2, jint(j, "segments"), dir);
	free(dir);
	time_t t0 = (time_t)(jint(j, "oldest_time") / 1000000000), t1 = (time_t)(jint(j, "newest_time") / 1000000000);
	char s0[64] = "-", s1[64] = "-";
	struct tm tm;
	if (t0 && localtime_r(&t0, &tm))
		strftime(s0, sizeof(s0), "%Y-%m-%d %H:%M:%S", &tm);
	if (t1 && localtime_r(&t1, &tm))
		strftime(s1, sizeof(s1), "%Y-%m-%d %H:%M:%S", &tm);
	printf("                IDs %" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT ", %s to %s"
	       ", max age %" JSON_INTEGER_FORMAT " s\n",
	       jint(j, "first_id"), jint(j, "last_id"), s0, s1, jint(j, "max_age_s"));
	const json_t *gaps = json_object_get(j, "gaps");
	printf("                %" JSON_INTEGER_FORMAT " gaps, %" JSON_INTEGER_FORMAT " excluded, %"
	       JSON_INTEGER_FORMAT " write errors\n",
	       jint(j, "gaps_total"), jint(j, "excluded"), jint(j, "write_errors"));
	size_t i;
	const json_t *g;
	json_array_foreach(gaps, i, g) {
		time_t gt = (time_t)(jint(g, "time_last") / 1000000000);
		char sg[64] = "-";
		if (gt && localtime_r(&gt, &tm))
			strftime(sg, sizeof(sg), "%Y-%m-%d %H:%M:%S", &tm);
		char *why = esc(json_string_value(json_object_get(g, "reason")));
		printf("                gap %-11s IDs %" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT
		       ", until %s\n",
		       why, jint(g, "id_first"), jint(g, "id_last"), sg);
		free(why);
	}
}
