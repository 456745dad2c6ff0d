/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * clock.h - the two clocks the daemon reads: CLOCK_REALTIME for the times
 * events carry, CLOCK_MONOTONIC for windows, deadlines and pacing.  One
 * definition for the core and every source.
 */
#ifndef FSNOTED_CLOCK_H
#define FSNOTED_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static inline uint64_t now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

#endif
