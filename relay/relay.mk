# SPDX-License-Identifier: LGPL-2.1-or-later
# fsnote-relay (publishes records to NATS JetStream) and the NATS half of
# fsnotectl ("watch --nats").  Both need libnats; without it neither is
# built and tests/e2e/relay*.sh skip.  The JSON form of a record and the
# connection options are shared by the two (relay/record.c, natsconn.c).
if HAVE_NATS
bin_PROGRAMS += relay/fsnote-relay
relay_fsnote_relay_SOURCES = relay/main.c relay/config.c relay/config.h relay/record.c relay/record.h \
	relay/natsconn.c relay/natsconn.h
relay_fsnote_relay_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(NATS_CFLAGS) $(LIBSYSTEMD_CFLAGS)
relay_fsnote_relay_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(JANSSON_LIBS) \
	$(NATS_LIBS) $(LIBSYSTEMD_LIBS)

client_fsnotectl_SOURCES += relay/record.c relay/natsconn.c
client_fsnotectl_CFLAGS += $(NATS_CFLAGS) -I$(top_srcdir)/relay
client_fsnotectl_LDADD += $(NATS_LIBS)

dist_man_MANS += man/fsnote-relay.8 man/fsnote-relay.conf.5

systemdsystemunit_DATA += systemd/fsnote-relay.service
CLEANFILES += systemd/fsnote-relay.service
systemd/fsnote-relay.service: $(srcdir)/systemd/fsnote-relay.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|[@]bindir[@]|$(bindir)|g' \
		$(srcdir)/systemd/fsnote-relay.service.in > $@.tmp && mv $@.tmp $@

# The record's JSON form both ways (names as fsnotectl writes them) and the
# configuration file's errors.
check_PROGRAMS += tests/unit/check-relay
TESTS += tests/unit/check-relay
tests_unit_check_relay_SOURCES = tests/unit/check-relay.c relay/config.c relay/record.c client/fsnotectl-format.c
tests_unit_check_relay_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_relay_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS) -lm

# Counts and lists what a stream holds, for the end-to-end tests.
check_PROGRAMS += tests/relay/js-dump
tests_relay_js_dump_SOURCES = tests/relay/js-dump.c
tests_relay_js_dump_CFLAGS = $(AM_CFLAGS) $(NATS_CFLAGS)
tests_relay_js_dump_LDADD = $(NATS_LIBS)
endif
EXTRA_DIST += man/fsnote-relay.8 man/fsnote-relay.conf.5 systemd/fsnote-relay.service.in \
	relay/fsnote-relay.example.json

TESTS += tests/e2e/relay.sh tests/e2e/relay-cluster.sh tests/e2e/relay-auth.sh
EXTRA_DIST += tests/e2e/relay.sh tests/e2e/relay-cluster.sh tests/e2e/relay-auth.sh tests/e2e/nats.sh

# The relay's benchmark consumer (bench/run --only relay).
if HAVE_NATS
noinst_PROGRAMS += bench/relay-sink
bench_relay_sink_SOURCES = bench/relay-sink.c
bench_relay_sink_CFLAGS = $(AM_CFLAGS) $(NATS_CFLAGS) $(JANSSON_CFLAGS)
bench_relay_sink_LDADD = $(NATS_LIBS) $(JANSSON_LIBS)
endif
