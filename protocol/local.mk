# SPDX-License-Identifier: LGPL-2.1-or-later
# The wire protocol: the one piece both the daemon and libfsnote link.  With
# it, the rule for writing a name as JSON, which fsnotectl and the relay
# share (jsonname.c), and the FILE:LINE:COLUMN errors of the daemon's and
# the relay's configuration files (jsonpos.c).
noinst_LTLIBRARIES += protocol/libfsnote-protocol.la
protocol_libfsnote_protocol_la_SOURCES = protocol/codec.c protocol/codec.h protocol/fsnote-protocol.h \
	protocol/jsonname.c protocol/jsonname.h protocol/jsonpos.c protocol/jsonpos.h

dist_man_MANS += man/fsnote-protocol.7

check_PROGRAMS += tests/unit/check-codec
TESTS += tests/unit/check-codec
tests_unit_check_codec_SOURCES = tests/unit/check-codec.c
tests_unit_check_codec_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_codec_LDADD = protocol/libfsnote-protocol.la $(CHECK_LIBS)

check_PROGRAMS += tests/unit/check-jsonname
TESTS += tests/unit/check-jsonname
tests_unit_check_jsonname_SOURCES = tests/unit/check-jsonname.c
tests_unit_check_jsonname_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_jsonname_LDADD = protocol/libfsnote-protocol.la $(CHECK_LIBS)

check_PROGRAMS += tests/unit/check-jsonpos
TESTS += tests/unit/check-jsonpos
tests_unit_check_jsonpos_SOURCES = tests/unit/check-jsonpos.c
tests_unit_check_jsonpos_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_jsonpos_LDADD = protocol/libfsnote-protocol.la $(CHECK_LIBS)

# The fuzz target replays its corpus as an ordinary test in every build
# (tests/fuzz/replay.c supplies main()); with --enable-fuzz it is also built
# as a libFuzzer binary for tests/fuzz/run.
check_PROGRAMS += tests/fuzz/replay-codec
TESTS += tests/fuzz/replay-codec
tests_fuzz_replay_codec_SOURCES = tests/fuzz/fuzz-codec.c tests/fuzz/replay.c
tests_fuzz_replay_codec_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS='"$(abs_top_srcdir)/tests/fuzz/corpus/codec"'
tests_fuzz_replay_codec_LDADD = protocol/libfsnote-protocol.la
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/run tests/fuzz/nightly
if FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz-codec
tests_fuzz_fuzz_codec_SOURCES = tests/fuzz/fuzz-codec.c
tests_fuzz_fuzz_codec_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_codec_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_codec_LDADD = protocol/libfsnote-protocol.la
endif
