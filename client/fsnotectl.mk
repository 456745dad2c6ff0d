# SPDX-License-Identifier: LGPL-2.1-or-later
# fsnotectl: the command line client, its manual page and bash completion.
bin_PROGRAMS += client/fsnotectl
client_fsnotectl_SOURCES = client/fsnotectl.c client/fsnote.h client/fsnotectl-nats.c client/fsnotectl-nats.h
client_fsnotectl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
client_fsnotectl_LDADD = client/libfsnote.la $(JANSSON_LIBS) -lm

dist_man_MANS += man/fsnotectl.1

# bash-completion looks a completion up by the command's name, but
# client/fsnotectl is the binary: the installed copy is built under its own
# directory so that the plain _DATA rules install and uninstall it.
bashcompletion_DATA += client/completion/fsnotectl
client/completion/fsnotectl: $(srcdir)/client/fsnotectl.bash-completion
	$(AM_V_GEN)$(MKDIR_P) client/completion && cp $(srcdir)/client/fsnotectl.bash-completion $@
CLEANFILES += client/completion/fsnotectl
EXTRA_DIST += client/fsnotectl.bash-completion
