# SPDX-License-Identifier: LGPL-2.1-or-later
# The systemd units: the socket clients connect to, and the hardened service
# it activates.  The service names the installed binary, so it is generated
# at build time (not by configure: the sbindir placeholder must be fully
# expanded, and a `make sbindir=...` must be honoured).  [@] keeps
# config.status from substituting the pattern itself.
systemdsystemunit_DATA += systemd/fsnoted.socket systemd/fsnoted.service
EXTRA_DIST += systemd/fsnoted.socket systemd/fsnoted.service.in
CLEANFILES += systemd/fsnoted.service

systemd/fsnoted.service: $(srcdir)/systemd/fsnoted.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && \
	sed -e 's|[@]sbindir[@]|$(sbindir)|g' $(srcdir)/systemd/fsnoted.service.in > $@.tmp && \
	mv $@.tmp $@
