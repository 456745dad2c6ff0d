/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * chroot-watch - a libfsnote client in a chroot (used by namespaces.sh).
 *
 *   chroot-watch SOCKET ROOT UID PATH
 *
 * Connects to the daemon at SOCKET, enters the chroot ROOT, becomes UID,
 * subscribes to PATH (a path inside the chroot), says "ready" on stderr,
 * then prints "TYPE PATH [DEST]" per event, flushed per line, until killed.
 * The daemon must report paths as the client sees them.
 */
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsnote.h"

int main(int argc, char **argv)
{
	fsnote *h = NULL;
	uint32_t sub;

	if (argc != 5) {
		fprintf(stderr, "usage: chroot-watch SOCKET ROOT UID PATH\n");
		return 2;
	}
	uid_t uid = (uid_t)strtoul(argv[3], NULL, 10);
	int r = fsnote_connect(argv[1], &h);
	if (r < 0 || chroot(argv[2]) < 0 || chdir("/") < 0 || setgroups(0, NULL) < 0 ||
	    setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0) {
		fprintf(stderr, "chroot-watch: setup failed (%d)\n", r);
		return 1;
	}
	r = fsnote_subscribe(h, argv[4], NULL, &sub);
	if (r < 0) {
		fprintf(stderr, "chroot-watch: subscribe %s: %s\n", argv[4], strerror(-r));
		return 1;
	}
	fprintf(stderr, "ready\n");
	for (;;) {
		fsnote_event *e;
		r = fsnote_read(h, -1, &e);
		if (r == -EINTR || r == -ETIMEDOUT)
			continue;
		if (r < 0) {
			fprintf(stderr, "chroot-watch: read: %s\n", strerror(-r));
			return 1;
		}
		const char *dest = fsnote_event_dest(e, NULL);
		printf("%s %s%s%s\n", fsnote_type_name(fsnote_event_type(e)), fsnote_event_path(e, NULL),
		       dest ? " " : "", dest ? dest : "");
		fflush(stdout);
		fsnote_event_free(e);
	}
}
