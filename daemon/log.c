/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.c - see log.h.  Messages are single lines; the journal gets them with
 * their priority so that `journalctl -p warning -u fsnoted` works.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-journal.h>
#include <time.h>

static bool use_journal;
static int max_level = LOG_NOTICE;

void log_setup(bool to_journal, int level)
{
	use_journal = to_journal;
	max_level = level;
}

void log_set_level(int level)
{
	max_level = level;
}

int log_get_level(void)
{
	return max_level;
}

void log_msg(int level, const char *fmt, ...)
{
	static const char *const names[] = { "emerg", "alert", "crit", "error",
					     "warning", "notice", "info", "debug" };
	char line[1024];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (use_journal) {
		sd_journal_send("MESSAGE=%s", line, "PRIORITY=%i", level,
				"SYSLOG_IDENTIFIER=fsnoted", NULL);
		return;
	}
	fprintf(stderr, "fsnoted: %s: %s\n", names[level & 7], line);
}
