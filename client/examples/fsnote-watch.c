/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnote-watch.c - the smallest complete libfsnote program: watch one
 * directory tree and print what happens in it.
 *
 *     fsnote-watch DIRECTORY [COUNT]
 *
 * It waits in poll() on fsnote_fd(), as an application with its own event
 * loop would, then takes every event that is ready with a zero timeout
 * before it sleeps again.  When the daemon restarts, it reconnects and
 * carries on where it stopped (the daemon replays what it missed, or says
 * which directory to rescan).  With COUNT it exits after that many events.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsnote.h"

static void print_event(const fsnote_event *e)
{
	size_t len;
	const char *path = fsnote_event_path(e, &len);
	const char *dest = fsnote_event_dest(e, NULL);
	const char *type = fsnote_type_name(fsnote_event_type(e));
	uint32_t flags = fsnote_event_flags(e);

	printf("%" PRIu64 " %s %.*s", fsnote_event_id(e), type ? type : "?", (int)len, path);
	if (dest)
		printf(" -> %s", dest);
	for (unsigned bit = 0; bit < 32; bit++) {
		const char *name = fsnote_flag_name(bit);
		if ((flags & (1u << bit)) && name)
			printf(" [%s]", name);
	}
	if (fsnote_event_type(e) == FSNOTE_DROPPED)
		printf(" lost=%" PRIu64 " rescan=%s", fsnote_event_count(e), fsnote_event_rescan(e, NULL));
	putchar('\n');
	fflush(stdout);
}

int main(int argc, char **argv)
{
	fsnote *h = NULL;
	uint32_t sub;
	long count = argc > 2 ? strtol(argv[2], NULL, 10) : -1;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIRECTORY [COUNT]\n", argv[0]);
		return 1;
	}
	r = fsnote_connect(NULL, &h);
	if (r < 0) {
		fprintf(stderr, "cannot connect to fsnoted: %s\n", strerror(-r));
		return 1;
	}
	r = fsnote_subscribe(h, argv[1], NULL, &sub);
	if (r < 0) {
		const char *why = fsnote_last_error(h);
		fprintf(stderr, "cannot watch %s: %s\n", argv[1], *why ? why : strerror(-r));
		fsnote_close(h);
		return 1;
	}
	fprintf(stderr, "Watching %s (root %s, backend %s).\n", argv[1], fsnote_sub_root(h, sub),
		fsnote_sub_backend(h, sub));
	if (fsnote_sub_warning(h, sub))
		fprintf(stderr, "warning: %s\n", fsnote_sub_warning(h, sub));

	while (count != 0) {
		struct pollfd p = { .fd = fsnote_fd(h), .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		/* take everything that is ready, then sleep again */
		fsnote_event *e;
		while (count != 0 && (r = fsnote_read(h, 0, &e)) == 0) {
			print_event(e);
			fsnote_event_free(e);
			if (count > 0)
				count--;
		}
		if (r == -ECONNRESET || r == -ESHUTDOWN) {
			fprintf(stderr, "fsnoted went away (%s); reconnecting\n",
				*fsnote_last_error(h) ? fsnote_last_error(h) : strerror(-r));
			r = fsnote_reconnect(h, 30000);
			if (r < 0) {
				fprintf(stderr, "cannot reconnect: %s\n", strerror(-r));
				break;
			}
		} else if (r < 0 && r != -EAGAIN && r != -EINTR) {
			fprintf(stderr, "reading events: %s\n", strerror(-r));
			break;
		}
	}
	fsnote_close(h);
	return count == 0 ? 0 : 1;
}
