# SPDX-License-Identifier: LGPL-2.1-or-later
# End-to-end tests of the features beyond the anchors: the flush barrier,
# daemon-side excludes, narrow rescan scopes, mount and unmount records,
# honest errors for filesystems that cannot be watched completely, and
# time-to-ID.  flush-barrier proves through libfsnote that a flush leaves
# every earlier event already in the subscriber's hands.
check_PROGRAMS += tests/e2e/beyond/flush-barrier
tests_e2e_beyond_flush_barrier_SOURCES = tests/e2e/beyond/flush-barrier.c
tests_e2e_beyond_flush_barrier_LDADD = client/libfsnote.la
TESTS += tests/e2e/beyond.sh
EXTRA_DIST += tests/e2e/beyond.sh
