# SPDX-License-Identifier: LGPL-2.1-or-later
# The daemon's configuration: defaults, the JSON file and its validation
# (daemon/config.h), documented in fsnoted.conf(5).
noinst_LIBRARIES += daemon/libconfig.a
daemon_libconfig_a_SOURCES = daemon/config.c daemon/config.h
daemon_libconfig_a_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

dist_man_MANS += man/fsnoted.conf.5

check_PROGRAMS += tests/unit/check-config
TESTS += tests/unit/check-config
tests_unit_check_config_SOURCES = tests/unit/check-config.c
tests_unit_check_config_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_config_LDADD = daemon/libconfig.a protocol/libfsnote-protocol.la $(JANSSON_LIBS) $(CHECK_LIBS)
