/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-daemon.c - libFuzzer target: the daemon's request handling over a
 * socketpair.
 *
 * One daemon core (pool, access checks, an inotify source with no watches)
 * lives for the whole run.  Each input becomes one client: the first byte
 * picks its credentials (root or nobody), the rest is written to the
 * client's end of a socketpair, the write side is shut, and the event loop
 * runs until the daemon has dropped the connection.  The daemon must neither
 * crash nor leak, whatever the bytes; the loop must end with no client.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct daemon d;

static void daemon_init(void)
{
	struct pool_limits lim;
	struct pool_callbacks cb = { .ring_dropped = sub_ring_dropped };
	struct source_sink sink;

	log_setup(false, LOG_EMERG);
	if (config_defaults(&d.cfg) < 0)
		abort();
	d.cfg.handshake_timeout_ms = 100;
	d.base = event_base_new();
	lim = (struct pool_limits){ .max_events = 1024, .max_bytes = 1 << 20, .history = 64,
				    .coalesce_ns = 1000000, .first_id = 0 };
	if (!d.base || pool_new(&lim, &cb, &d.pool) < 0 || access_new(64, &d.access) < 0)
		abort();
	sub_sink_init(&d, &sink);
	if (source_inotify_new(d.base, &sink, &d.primary) < 0)
		abort();
	d.start_ns = now_mono_ns();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	int sv[2];

	if (!ready) {
		daemon_init();
		ready = true;
	}
	if (size < 1 || size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		return 0;
	uid_t uid = (data[0] & 1) ? 0 : 65534;
	if (server_adopt(&d, sv[0], getpid(), uid, uid, NULL, 0) < 0) {
		close(sv[1]);
		return 0;
	}
	(void)!write(sv[1], data + 1, size - 1);
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 200 && d.clients; i++) {
		char sink[65536];
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
		event_base_loop(d.base, EVLOOP_NONBLOCK);
	}
	close(sv[1]);
	/* a client that is still there would be a leak between runs */
	server_free_clients(&d);
	sub_free_lingers(&d);
	return 0;
}
