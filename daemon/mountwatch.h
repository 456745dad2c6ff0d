/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mountwatch.h - mount and unmount records for subscribers that ask for
 * them, from the kernel's mount-namespace notifications where it has them.
 */
#ifndef FSNOTED_MOUNTWATCH_H
#define FSNOTED_MOUNTWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct mountwatch;

/* @attached: mounted (true) or unmounted; @point: absolute mount point. */
typedef void (*mountwatch_cb)(void *ctx, bool attached, const char *point, uint64_t dev,
			      const char *fstype);

/* Returns 0, -ENOSYS when the kernel has no mount notifications (before
 * 6.14), or -errno. */
int mountwatch_new(struct event_base *base, mountwatch_cb cb, void *ctx, struct mountwatch **ret);
struct mountwatch *mountwatch_free(struct mountwatch *w);
void mountwatch_status(const struct mountwatch *w, json_t *obj);

#endif
