# SPDX-License-Identifier: LGPL-2.1-or-later
# The fanotify source and its handle -> path cache.
noinst_LIBRARIES += daemon/libfanotify.a
daemon_libfanotify_a_SOURCES = \
	daemon/source-fanotify.c \
	daemon/pathcache.c \
	daemon/pathcache.h
daemon_libfanotify_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)

# The cache is pure logic: its test links the one object it needs.
check_PROGRAMS += tests/unit/check-pathcache
TESTS += tests/unit/check-pathcache
tests_unit_check_pathcache_SOURCES = tests/unit/check-pathcache.c daemon/pathcache.c
tests_unit_check_pathcache_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_pathcache_LDADD = $(CHECK_LIBS)

# The source against the real kernel (root, private mount namespace).
check_PROGRAMS += tests/unit/check-source-fanotify
TESTS += tests/unit/check-source-fanotify
tests_unit_check_source_fanotify_SOURCES = tests/unit/check-source-fanotify.c
tests_unit_check_source_fanotify_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_source_fanotify_LDADD = daemon/libfanotify.a daemon/libmountinfo.a \
	protocol/libfsnote-protocol.la $(LIBEVENT_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS)
