/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fsnotectl.h - what the verbs of fsnotectl share: the one-line error
 * messages, escaping for them, connecting, and option helpers.  Internal
 * to the tool (fsnotectl.c defines these; fsnotectl-run.c uses them).
 */
#ifndef FSNOTECTL_H
#define FSNOTECTL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fsnote.h"

#define EXIT_TIMEOUT 2

/* The "Try" hint names the overall help, which lists every verb's options. */
#define TRY_HELP "Try 'fsnotectl --help'."

/* "fsnotectl: " and one line on standard error. */
void errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An escaped copy of @s for a message (see fsnotectl(1)); the caller frees
 * it.  Never NULL. */
char *esc(const char *s);
/* Reports a getopt failure for @verb; returns 1. */
int bad_option(const char *verb, int c, char **argv);
int parse_seconds(const char *opt, const char *s, int64_t *ret_ns);
int64_t now_ns(clockid_t clk);
/* Connects, or says why not; returns 0 or 1 (the exit status). */
int connect_daemon(fsnote **ret);
/* One line for a failed request or subscription; return 1. */
int request_error(fsnote *h, const char *what, int r);
int subscribe_error(fsnote *h, const char *path, int r);

/* The run verb (fsnotectl-run.c). */
int cmd_run(int argc, char **argv);

#endif
