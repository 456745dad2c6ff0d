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

# The real daemon over its socket, once per backend (tests/unit/check-server.c).
check_PROGRAMS += tests/unit/check-server-fanotify tests/unit/check-server-inotify
TESTS += tests/unit/check-server-fanotify tests/unit/check-server-inotify
tests_unit_check_server_fanotify_SOURCES = tests/unit/check-server.c
tests_unit_check_server_fanotify_CPPFLAGS = $(AM_CPPFLAGS) -DBACKEND='"fanotify"'
tests_unit_check_server_fanotify_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_server_fanotify_LDADD = protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS)
tests_unit_check_server_inotify_SOURCES = tests/unit/check-server.c
tests_unit_check_server_inotify_CPPFLAGS = $(AM_CPPFLAGS) -DBACKEND='"inotify"'
tests_unit_check_server_inotify_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_server_inotify_LDADD = protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS)
