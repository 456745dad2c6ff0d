# SPDX-License-Identifier: LGPL-2.1-or-later
# The pure-Python client package (python/fsnote): installed into the Python
# path configure found (Debian's /usr/bin/python3 when there is one), its
# manual page, and its tests (a fake daemon, then the real fsnoted with each
# backend, as root and as nobody: tests/e2e/python.sh, which skips without
# /usr/bin/python3).
if HAVE_PYTHON
fsnotepydir = $(pythondir)/fsnote
fsnotepy_PYTHON = python/fsnote/__init__.py python/fsnote/_client.py python/fsnote/_wire.py
else
EXTRA_DIST += python/fsnote/__init__.py python/fsnote/_client.py python/fsnote/_wire.py
endif
dist_man_MANS += man/fsnote-python.3
EXTRA_DIST += python/pyproject.toml python/README.md \
	python/tests/test_wire.py python/tests/test_daemon.py python/bench/fsnote-sink.py
TESTS += tests/e2e/python.sh
EXTRA_DIST += tests/e2e/python.sh
