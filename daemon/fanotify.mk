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
