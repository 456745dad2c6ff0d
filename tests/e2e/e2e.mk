# SPDX-License-Identifier: LGPL-2.1-or-later
# End-to-end scripts: the real daemon and fsnotectl against the real kernel.
TESTS += tests/e2e/sources.sh
EXTRA_DIST += tests/e2e/common.sh tests/e2e/sources.sh
TESTS += tests/e2e/reliability.sh
EXTRA_DIST += tests/e2e/reliability.sh
TESTS += tests/e2e/quickstart.sh
EXTRA_DIST += tests/e2e/quickstart.sh
TESTS += tests/e2e/fanout.sh
EXTRA_DIST += tests/e2e/fanout.sh
