# SPDX-License-Identifier: LGPL-2.1-or-later
# Allocation-failure injection: an LD_PRELOAD shim that fails the Nth
# allocation after it is armed, and the scripted session that runs the real
# daemon under it for a spread of N.  The shim is a libtool module that is
# never installed (-rpath only makes libtool build a shared object); it is
# built without the sanitizer flags because ASan owns malloc itself, and
# the session skips in a sanitized build.
check_LTLIBRARIES += tests/faultinject/libfailmalloc.la
tests_faultinject_libfailmalloc_la_SOURCES = tests/faultinject/failmalloc.c
tests_faultinject_libfailmalloc_la_CFLAGS = $(WARN_CFLAGS)
tests_faultinject_libfailmalloc_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
TESTS += tests/faultinject/session.sh
EXTRA_DIST += tests/faultinject/session.sh
# The long versions (10-minute soak, 1M-event stalled subscriber) are run by
# hand, never by make check; shipped so that a tarball can run them too.
EXTRA_DIST += bench/soak
