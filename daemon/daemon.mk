# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon: core (server, subscriptions, access checks) over the pool,
# the kernel sources and the configuration.
sbin_PROGRAMS += daemon/fsnoted
daemon_fsnoted_SOURCES = \
	daemon/main.c \
	daemon/daemon.h \
	daemon/server.c \
	daemon/subscriber.c \
	daemon/access.c \
	daemon/access.h \
	daemon/log.c \
	daemon/log.h
daemon_fsnoted_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSYSTEMD_CFLAGS) $(JANSSON_CFLAGS)
daemon_fsnoted_LDADD = \
	daemon/libfanotify.a \
	daemon/libinotify.a \
	daemon/libconfig.a \
	daemon/libpool.a \
	protocol/libfsnote-protocol.la \
	$(LIBEVENT_LIBS) $(LIBSYSTEMD_LIBS) $(JANSSON_LIBS)
