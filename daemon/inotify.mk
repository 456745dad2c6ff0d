# SPDX-License-Identifier: LGPL-2.1-or-later
# The inotify kernel source: per-directory watches shared by every
# subscription, for filesystems fanotify cannot serve and unprivileged daemons.
noinst_LIBRARIES += daemon/libinotify.a
daemon_libinotify_a_SOURCES = daemon/source-inotify.c daemon/source.h
daemon_libinotify_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)

check_PROGRAMS += tests/unit/check-source-inotify
TESTS += tests/unit/check-source-inotify
tests_unit_check_source_inotify_SOURCES = tests/unit/check-source-inotify.c
tests_unit_check_source_inotify_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_source_inotify_LDADD = daemon/libinotify.a daemon/libmountinfo.a \
	protocol/libfsnote-protocol.la $(LIBEVENT_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS)
