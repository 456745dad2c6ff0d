/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h - the daemon's logging: the journal under systemd, stderr otherwise.
 *
 * Only the daemon's top layers (main, server, subscriber) log; modules below
 * them return errors and let the caller decide what is worth saying.
 */
#ifndef FSNOTED_LOG_H
#define FSNOTED_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* @to_journal: send records to the journal (with PRIORITY and a
 * SYSLOG_IDENTIFIER) rather than stderr.  @level: the most verbose LOG_*
 * level that is still written. */
void log_setup(bool to_journal, int level);
void log_set_level(int level);
int log_get_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
