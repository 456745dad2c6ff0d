# SPDX-License-Identifier: LGPL-2.1-or-later
# End to end under real systemd: the installed units and the daemon in a
# booted systemd-nspawn container.  Root only; skipped with
# FSNOTE_SKIP_SLOW=1.  The debootstrapped root is cached in the build tree.
TESTS += tests/e2e/nspawn.sh
EXTRA_DIST += \
	tests/e2e/nspawn.sh \
	tests/e2e/nspawn/check.sh \
	tests/e2e/nspawn/fsnote-e2e.service

# the cached container root (kept by `make clean`, so that reruns are fast)
# and any run a killed test left behind
distclean-local: clean-nspawn
clean-nspawn:
	-rm -rf --one-file-system nspawn-root nspawn-root.tmp.* nspawn-run.* nspawn-root.lock
.PHONY: clean-nspawn
