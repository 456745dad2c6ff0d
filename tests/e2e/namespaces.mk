# SPDX-License-Identifier: LGPL-2.1-or-later
# Clients in other mount namespaces, chroots and user namespaces: the
# subscription is the directory object of the client's descriptor, and
# paths come back in the client's own view.  chroot-watch is a libfsnote
# client that subscribes from inside a chroot.
check_PROGRAMS += tests/e2e/ns/chroot-watch
tests_e2e_ns_chroot_watch_SOURCES = tests/e2e/ns/chroot-watch.c
tests_e2e_ns_chroot_watch_LDADD = client/libfsnote.la
TESTS += tests/e2e/namespaces.sh
EXTRA_DIST += tests/e2e/namespaces.sh
