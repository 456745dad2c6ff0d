/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exclude.c - matching exclude patterns (see exclude.h).
 */
#include "exclude.h"

#include <fnmatch.h>
#include <string.h>

#include "fsnote-protocol.h"

bool exclude_match(char *const *patterns, size_t n_patterns, const char *rel, size_t rel_len)
{
	char path[FSNOTE_PATH_MAX];

	if (n_patterns == 0 || rel_len == 0 || rel_len >= sizeof(path))
		return false;
	memcpy(path, rel, rel_len);
	path[rel_len] = '\0';
	for (size_t i = 0; i < n_patterns; i++) {
		const char *pat = patterns[i];
		if (strchr(pat, '/')) {
			if (fnmatch(pat, path, FNM_PATHNAME | FNM_LEADING_DIR) == 0)
				return true;
			continue;
		}
		/* a plain pattern matches any one component */
		char *comp = path;
		for (;;) {
			char *slash = strchr(comp, '/');
			if (slash)
				*slash = '\0';
			bool hit = fnmatch(pat, comp, 0) == 0;
			if (slash)
				*slash = '/';
			if (hit)
				return true;
			if (!slash)
				break;
			comp = slash + 1;
		}
	}
	return false;
}
