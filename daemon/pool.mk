# SPDX-License-Identifier: LGPL-2.1-or-later
# The event pool and the subscriber rings: pure logic, no kernel, no I/O.
noinst_LIBRARIES += daemon/libpool.a
daemon_libpool_a_SOURCES = daemon/pool.c daemon/ring.c daemon/pool.h daemon/pool-internal.h

check_PROGRAMS += tests/unit/check-pool
TESTS += tests/unit/check-pool
tests_unit_check_pool_SOURCES = tests/unit/check-pool.c
tests_unit_check_pool_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_pool_LDADD = daemon/libpool.a $(CHECK_LIBS)

# Events per second through add, fan-out, drain and release, and the memory
# an idle subscriber costs.  Built with the project, never run by make check.
noinst_PROGRAMS += bench/pool-bench
bench_pool_bench_SOURCES = bench/pool-bench.c
bench_pool_bench_LDADD = daemon/libpool.a
