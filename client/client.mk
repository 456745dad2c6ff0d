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
