#!/bin/sh
# Generates ./configure from configure.ac and the Makefile fragments.
set -e
cd "$(dirname "$0")"
autoreconf --install --force --warnings=all
