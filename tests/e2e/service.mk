# SPDX-License-Identifier: LGPL-2.1-or-later
# End to end, the service side: units, socket activation, reload, drain,
# start-up errors and socket ownership (tests/e2e/service.sh).
TESTS += tests/e2e/service.sh
EXTRA_DIST += tests/e2e/service.sh
