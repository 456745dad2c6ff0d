# SPDX-License-Identifier: LGPL-2.1-or-later
# The persistent event journal (daemon/journal.h): segment files under the
# state directory, checked, bounded and read back for since-ID resumes.
noinst_LIBRARIES += daemon/libjournal.a
daemon_libjournal_a_SOURCES = daemon/journal.c daemon/journal.h
daemon_libjournal_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS) $(LIBSYSTEMD_CFLAGS)

check_PROGRAMS += tests/unit/check-journal
TESTS += tests/unit/check-journal
tests_unit_check_journal_SOURCES = tests/unit/check-journal.c
tests_unit_check_journal_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_journal_LDADD = daemon/libjournal.a daemon/libcore.a daemon/libmountinfo.a \
	$(LIBEVENT_LIBS) $(LIBSYSTEMD_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS)

# The journal end to end: restarts, kill -9, corruption, retention, replay
# permissions (tests/e2e/journal.sh).
TESTS += tests/e2e/journal.sh
EXTRA_DIST += tests/e2e/journal.sh
