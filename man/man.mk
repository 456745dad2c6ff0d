# SPDX-License-Identifier: LGPL-2.1-or-later
# Manual pages.  fsnote-protocol.7 is installed by protocol/local.mk, next to
# the header it describes.
dist_man_MANS += man/fsnoted.8
