# SPDX-License-Identifier: LGPL-2.1-or-later
# The inotify kernel source: per-directory watches shared by every
# subscription, for filesystems fanotify cannot serve and unprivileged daemons.
noinst_LIBRARIES += daemon/libinotify.a
daemon_libinotify_a_SOURCES = daemon/source-inotify.c daemon/source.h
daemon_libinotify_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(JANSSON_CFLAGS)
