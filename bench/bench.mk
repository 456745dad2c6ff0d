# SPDX-License-Identifier: LGPL-2.1-or-later
# Benchmarks (bench/run drives them; see bench/README.md).  Built with the
# project so that they always compile; never run by make check.
noinst_PROGRAMS += bench/raw-fanotify bench/workload bench/fsnote-sink
bench_raw_fanotify_SOURCES = bench/raw-fanotify.c
bench_workload_SOURCES = bench/workload.c
bench_fsnote_sink_SOURCES = bench/fsnote-sink.c
bench_fsnote_sink_LDADD = client/libfsnote.la
noinst_PROGRAMS += bench/journal-resume
bench_journal_resume_SOURCES = bench/journal-resume.c
bench_journal_resume_LDADD = client/libfsnote.la
EXTRA_DIST += bench/run bench/README.md bench/cli-cpu bench/journal-formats.c
