# SPDX-License-Identifier: LGPL-2.1-or-later
# End-to-end scripts for fsnotectl: every verb, option, output form and
# error message (cli.sh), and what an unprivileged subscriber may learn
# (security.sh).  Both run the real daemon and exit 77 without root.
TESTS += tests/e2e/cli.sh tests/e2e/security.sh
EXTRA_DIST += tests/e2e/cli.sh tests/e2e/security.sh
# inotifywait's forms against the real inotifywait (cli-inotify.sh), and
# the run verb (cli-run.sh).
TESTS += tests/e2e/cli-inotify.sh tests/e2e/cli-run.sh
EXTRA_DIST += tests/e2e/cli-inotify.sh tests/e2e/cli-run.sh
