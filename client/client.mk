# SPDX-License-Identifier: LGPL-2.1-or-later
# libfsnote, the client library.  The protocol codec is a convenience
# library linked into it; the version script keeps everything but fsnote_*
# private, and -version-info sets the SONAME (see LIBFSNOTE_LT_VERSION in
# configure.ac: bump it by libtool's rules on every ABI change).
lib_LTLIBRARIES += client/libfsnote.la
client_libfsnote_la_SOURCES = client/libfsnote.c client/fsnote.h
client_libfsnote_la_LIBADD = protocol/libfsnote-protocol.la
client_libfsnote_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(LIBFSNOTE_LT_VERSION) \
	-Wl,--version-script=$(top_srcdir)/client/libfsnote.sym -Wl,-z,defs
EXTRA_client_libfsnote_la_DEPENDENCIES = $(top_srcdir)/client/libfsnote.sym
EXTRA_DIST += client/libfsnote.sym

include_HEADERS += client/fsnote.h
pkgconfig_DATA += client/libfsnote.pc
DISTCLEANFILES += client/libfsnote.pc

dist_man_MANS += man/libfsnote.3

# The example is built by "make check" so that it keeps compiling.
check_PROGRAMS += client/examples/fsnote-watch
client_examples_fsnote_watch_SOURCES = client/examples/fsnote-watch.c
client_examples_fsnote_watch_LDADD = client/libfsnote.la

# The library against the real daemon (tests/unit/check-libfsnote.c), with
# the daemon's own backend choice and with inotify.  The codec is linked in
# directly for the stand-in daemon of the batch and FIELDS tests (the library does
# not export it).
check_PROGRAMS += tests/unit/check-libfsnote tests/unit/check-libfsnote-inotify
TESTS += tests/unit/check-libfsnote tests/unit/check-libfsnote-inotify
tests_unit_check_libfsnote_SOURCES = tests/unit/check-libfsnote.c
tests_unit_check_libfsnote_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_libfsnote_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS)
tests_unit_check_libfsnote_inotify_SOURCES = tests/unit/check-libfsnote.c
tests_unit_check_libfsnote_inotify_CPPFLAGS = $(AM_CPPFLAGS) -DBACKEND='"inotify"'
tests_unit_check_libfsnote_inotify_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_libfsnote_inotify_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS)

# One name per page for man(1); each is ".so man3/libfsnote.3".
dist_man_MANS += \
	man/fsnote_connect.3 \
	man/fsnote_close.3 \
	man/fsnote_fd.3 \
	man/fsnote_read.3 \
	man/fsnote_reconnect.3 \
	man/fsnote_subscribe.3 \
	man/fsnote_subscribe_fd.3 \
	man/fsnote_unsubscribe.3 \
	man/fsnote_flush.3 \
	man/fsnote_current_id.3 \
	man/fsnote_id_at_time.3 \
	man/fsnote_status.3 \
	man/fsnote_inject.3 \
	man/fsnote_event_decode.3 \
	man/fsnote_read_batch.3 \
	man/fsnote_sub_opts_set_fields.3
