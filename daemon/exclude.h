/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exclude.h - subscription exclude patterns, shared by the core (which
 * keeps excluded events out of a ring) and the inotify source (which adds
 * no watch under a directory every covering subscription excludes), so
 * that both judge a path the same way.
 *
 * A pattern without '/' is a glob matched against every single component
 * of the path below the subscription root ("node_modules", "*.tmp",
 * ".git"); a pattern with '/' is matched against the whole relative path
 * and also excludes everything below what it matches ("build/out").
 */
#ifndef FSNOTED_EXCLUDE_H
#define FSNOTED_EXCLUDE_H

#include <stdbool.h>
#include <stddef.h>

/* Does any of @patterns exclude @rel (the path below the root, no leading
 * '/', not NUL-terminated, @rel_len bytes)?  A path too long to judge is
 * not excluded, so that nothing is hidden by accident. */
bool exclude_match(char *const *patterns, size_t n_patterns, const char *rel, size_t rel_len);

#endif
