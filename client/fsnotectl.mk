# SPDX-License-Identifier: LGPL-2.1-or-later
# fsnotectl: the command line client, its manual page and bash completion.
bin_PROGRAMS += client/fsnotectl
client_fsnotectl_SOURCES = client/fsnotectl.c client/fsnote.h \
	client/fsnotectl-format.c client/fsnotectl-format.h \
	client/fsnotectl-run.c client/fsnotectl.h \
	client/fsnotectl-nats.c client/fsnotectl-nats.h
# included by fsnotectl.c: the history verb shares its helpers
EXTRA_DIST += client/fsnotectl-history.c
client_fsnotectl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
client_fsnotectl_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(JANSSON_LIBS) -lm

dist_man_MANS += man/fsnotectl.1

# bash-completion looks a completion up by the command's name, but
# client/fsnotectl is the binary: the installed copy is built under its own
# directory so that the plain _DATA rules install and uninstall it.
bashcompletion_DATA += client/completion/fsnotectl
client/completion/fsnotectl: $(srcdir)/client/fsnotectl.bash-completion
	$(AM_V_GEN)$(MKDIR_P) client/completion && cp $(srcdir)/client/fsnotectl.bash-completion $@
CLEANFILES += client/completion/fsnotectl
EXTRA_DIST += client/fsnotectl.bash-completion

# The formatters against jansson and the previous stdio code, for a table
# of hostile names (tests/unit/check-fsnotectl-format.c).
check_PROGRAMS += tests/unit/check-fsnotectl-format
TESTS += tests/unit/check-fsnotectl-format
tests_unit_check_fsnotectl_format_SOURCES = tests/unit/check-fsnotectl-format.c \
	client/fsnotectl-format.c client/fsnotectl-format.h
tests_unit_check_fsnotectl_format_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/client
tests_unit_check_fsnotectl_format_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_check_fsnotectl_format_LDADD = client/libfsnote.la protocol/libfsnote-protocol.la $(CHECK_LIBS) $(JANSSON_LIBS) \
	-lm
