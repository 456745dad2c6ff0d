# SPDX-License-Identifier: LGPL-2.1-or-later
# The hostile-user review as a test: two unprivileged users, one watching a
# shared directory, the other working in private ones, every known way of
# learning the other's names (path reuse with and without the daemon
# paused, history replay, stale verdicts, moved directories, search-only
# directories, attributes of the wrong object, two roots, status), on both
# backends.  pathrace plays the path-reuse race in lock step.
check_PROGRAMS += tests/e2e/leaks/pathrace
tests_e2e_leaks_pathrace_SOURCES = tests/e2e/leaks/pathrace.c
TESTS += tests/e2e/leaks.sh
EXTRA_DIST += tests/e2e/leaks.sh
