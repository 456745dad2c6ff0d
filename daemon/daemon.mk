# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon: core (server, subscriptions, access checks) over the pool,
# the kernel sources and the configuration.
# The core is a library so that the fuzzer can drive it without main().
# The mount table reader and the exclude matcher are shared by the core and
# the sources, so they are a library of their own, last in the link order.
noinst_LIBRARIES += daemon/libmountinfo.a
daemon_libmountinfo_a_SOURCES = daemon/mountinfo.c daemon/mountinfo.h daemon/exclude.c daemon/exclude.h daemon/clock.h

noinst_LIBRARIES += daemon/libcore.a
daemon_libcore_a_SOURCES = \
	daemon/daemon.h \
	daemon/server.c \
	daemon/subscriber.c \
	daemon/access.c \
	daemon/access.h \
	daemon/log.c \
	daemon/log.h \
	daemon/mountwatch.c \
	daemon/mountwatch.h
daemon_libcore_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSYSTEMD_CFLAGS) $(JANSSON_CFLAGS)
DAEMON_LIBS = \
	daemon/libcore.a \
	daemon/libjournal.a \
	daemon/libfanotify.a \
	daemon/libinotify.a \
	daemon/libconfig.a \
	daemon/libpool.a \
	daemon/libmountinfo.a \
	protocol/libfsnote-protocol.la \
	$(LIBEVENT_LIBS) $(LIBSYSTEMD_LIBS) $(JANSSON_LIBS)

sbin_PROGRAMS += daemon/fsnoted
daemon_fsnoted_SOURCES = daemon/main.c
daemon_fsnoted_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(LIBSYSTEMD_CFLAGS) $(JANSSON_CFLAGS)
daemon_fsnoted_LDADD = $(DAEMON_LIBS)

# The daemon over a socketpair: its corpus is replayed by every test run,
# and with --enable-fuzz it is a libFuzzer binary for tests/fuzz/run.
check_PROGRAMS += tests/fuzz/replay-daemon
TESTS += tests/fuzz/replay-daemon
tests_fuzz_replay_daemon_SOURCES = tests/fuzz/fuzz-daemon.c tests/fuzz/replay.c
tests_fuzz_replay_daemon_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/corpus/daemon"'
tests_fuzz_replay_daemon_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_replay_daemon_LDADD = $(DAEMON_LIBS)
if FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz-daemon
tests_fuzz_fuzz_daemon_SOURCES = tests/fuzz/fuzz-daemon.c
tests_fuzz_fuzz_daemon_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_daemon_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_daemon_LDADD = $(DAEMON_LIBS)
endif

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

# The access checker against the real kernel (root: it takes another
# user's credentials).
check_PROGRAMS += tests/unit/check-access
TESTS += tests/unit/check-access
tests_unit_check_access_SOURCES = tests/unit/check-access.c
tests_unit_check_access_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_access_LDADD = daemon/libcore.a $(CHECK_LIBS) $(JANSSON_LIBS)
