/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * failmalloc.c - an LD_PRELOAD shim that makes the Nth allocation fail.
 *
 * It owns nothing of the program it is loaded into: every allocation entry
 * point that glibc does not route through malloc itself (malloc, calloc,
 * realloc, posix_memalign, aligned_alloc, memalign, valloc; strdup, strndup,
 * reallocarray and friends call the interposed malloc/realloc, which glibc
 * supports for replacement allocators) is wrapped, counted and passed on to
 * the next definition (glibc's), except that the Nth counted call returns
 * NULL with errno ENOMEM.
 *
 * Counting starts only once the shim is ARMED, so that start-up (which may
 * legitimately give up on ENOMEM) is not what is tested:
 *   FAILMALLOC_ARM=signal  (default) armed by the first SIGUSR2;
 *   FAILMALLOC_ARM=start   armed from the first allocation on.
 * FAILMALLOC_NTH=N         fail the Nth armed allocation (1-based; 0 or
 *                          unset: fail nothing, only count: a dry run);
 * FAILMALLOC_COUNT=M       fail M consecutive allocations from the Nth (1);
 * FAILMALLOC_REPORT=FILE   where the report goes: the call stack of every
 *                          failed allocation when it happens, and at exit
 *                          "armed=A failed=F nth=N" (A: armed allocations).
 *
 * Invariants: the shim never allocates through the wrapped functions on
 * its own behalf (report writing uses only open/write/snprintf into stack
 * buffers); dlsym() may itself call calloc before the real functions are
 * known, and those calls are served from a small static arena whose blocks
 * are never handed to the real free(); calls made while the shim is busy
 * (resolving, or taking a backtrace, which may load libgcc_s) are neither
 * counted nor failed.  The counters are atomics, so threads are safe too.
 * Must not be combined with ASan, which owns malloc itself.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exported by the shim; declared here for -Wmissing-prototypes (their
 * public prototypes come from stdlib.h/malloc.h, some of which are not
 * declared without extra feature macros). */
void *memalign(size_t alignment, size_t size);
void *valloc(size_t size);

#define ARENA_SIZE 16384
#define STACK_DEPTH 32

/* Bootstrap arena for allocations made while dlsym() resolves the real
 * functions; max_align_t aligned, bump allocated, never freed. */
static _Alignas(max_align_t) unsigned char arena[ARENA_SIZE];
static size_t arena_used;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);

static _Thread_local int busy;   /* the shim itself is allocating: pass through */
static volatile sig_atomic_t armed;
static bool arm_at_start;
static uint64_t nth, fail_count = 1;
static uint64_t counted;         /* armed allocations seen (atomic) */
static uint64_t failed;          /* allocations failed (atomic) */
static char report_path[4096];
static bool configured;

static bool in_arena(const void *p)
{
	return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + ARENA_SIZE;
}

static void *arena_alloc(size_t size)
{
	size_t align = _Alignof(max_align_t);
	size_t start = (arena_used + align - 1) & ~(align - 1);

	if (size > ARENA_SIZE - start)
		return NULL;
	arena_used = start + size;
	return arena + start;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;

	if (!s || !*s)
		return dflt;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return dflt;
	return v;
}

static void arm_handler(int sig)
{
	(void)sig;
	armed = 1;
}

/* Resolves the real functions and reads the environment, once.  Runs from
 * the constructor, or earlier from the first allocation of another
 * library's constructor. */
static void setup(void)
{
	if (configured || busy)
		return;
	busy++;
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	real_posix_memalign = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	real_aligned_alloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
	real_valloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "valloc");
	if (!real_malloc || !real_calloc || !real_realloc || !real_free) {
		static const char msg[] = "failmalloc: cannot find the real allocator\n";
		(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
		_exit(127);
	}
	nth = env_u64("FAILMALLOC_NTH", 0);
	fail_count = env_u64("FAILMALLOC_COUNT", 1);
	const char *arm = getenv("FAILMALLOC_ARM");
	arm_at_start = arm && strcmp(arm, "start") == 0;
	const char *rep = getenv("FAILMALLOC_REPORT");
	if (rep && strlen(rep) < sizeof(report_path))
		strcpy(report_path, rep);
	configured = true;
	/* backtrace() loads libgcc_s (and allocates, from the real allocator
	 * now, uncounted while busy) the first time: do that here rather than
	 * inside the first failing call */
	void *frames[2];
	(void)backtrace(frames, 2);
	busy--;
	if (arm_at_start) {
		armed = 1;
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = arm_handler;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR2, &sa, NULL);
	}
}

__attribute__((constructor)) static void failmalloc_init(void)
{
	setup();
}

static void report_append(const char *buf, size_t len)
{
	if (!report_path[0])
		return;
	int fd = open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)!write(fd, buf, len);
	close(fd);
}

/* Whether this (counted) allocation must fail; records its stack if so. */
static bool should_fail(const char *what, size_t size)
{
	if (!armed || busy || !configured)
		return false;
	uint64_t k = __atomic_add_fetch(&counted, 1, __ATOMIC_RELAXED);
	if (nth == 0 || k < nth || k - nth >= fail_count)
		return false;
	__atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
	busy++;
	char line[160];
	int n = snprintf(line, sizeof(line), "FAIL #%llu %s(%zu) pid %ld\n", (unsigned long long)k,
			 what, size, (long)getpid());
	report_append(line, (size_t)n);
	if (report_path[0]) {
		void *frames[STACK_DEPTH];
		int depth = backtrace(frames, STACK_DEPTH);
		int fd = open(report_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			/* frame 0 is this function, frame 1 the wrapper */
			if (depth > 2)
				backtrace_symbols_fd(frames + 2, depth - 2, fd);
			close(fd);
		}
	}
	busy--;
	errno = ENOMEM;
	return true;
}

__attribute__((destructor)) static void failmalloc_fini(void)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "armed=%llu failed=%llu nth=%llu\n",
			 (unsigned long long)__atomic_load_n(&counted, __ATOMIC_RELAXED),
			 (unsigned long long)__atomic_load_n(&failed, __ATOMIC_RELAXED),
			 (unsigned long long)nth);
	report_append(line, (size_t)n);
}

void *malloc(size_t size)
{
	if (!configured) {
		if (busy)
			return arena_alloc(size);
		setup();
	}
	if (should_fail("malloc", size))
		return NULL;
	return real_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (!configured) {
		if (busy) {
			/* dlsym's own calloc; the arena is zero (static) */
			if (size && n > SIZE_MAX / size)
				return NULL;
			return arena_alloc(n * size);
		}
		setup();
	}
	if (should_fail("calloc", n * size))
		return NULL;
	return real_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	if (in_arena(p)) {
		/* an arena block grows into a real one; its old size is unknown,
		 * but bounded by what is left of the arena after it */
		void *q = malloc(size);
		if (q) {
			size_t left = (size_t)(arena + ARENA_SIZE - (unsigned char *)p);
			memcpy(q, p, size < left ? size : left);
		}
		return q;
	}
	if (!configured) {
		if (busy)
			return arena_alloc(size);
		setup();
	}
	/* realloc(p, 0) frees: not an allocation that can fail */
	if (size != 0 && should_fail("realloc", size))
		return NULL;
	return real_realloc(p, size);
}

void free(void *p)
{
	if (!p || in_arena(p))
		return;
	if (!real_free)
		setup();
	real_free(p);
}

int posix_memalign(void **ret, size_t alignment, size_t size)
{
	if (!configured)
		setup();
	if (should_fail("posix_memalign", size))
		return ENOMEM;
	return real_posix_memalign ? real_posix_memalign(ret, alignment, size) : ENOMEM;
}

void *aligned_alloc(size_t alignment, size_t size)
{
	if (!configured)
		setup();
	if (should_fail("aligned_alloc", size) || !real_aligned_alloc)
		return NULL;
	return real_aligned_alloc(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
	if (!configured)
		setup();
	if (should_fail("memalign", size) || !real_memalign)
		return NULL;
	return real_memalign(alignment, size);
}

void *valloc(size_t size)
{
	if (!configured)
		setup();
	if (should_fail("valloc", size) || !real_valloc)
		return NULL;
	return real_valloc(size);
}
