/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * record.h - an fsnote event as the JSON body of a NATS message, both ways.
 *
 * fsnote-relay turns each event it reads into one JSON object carrying the
 * fields "fsnotectl watch --json" prints plus "host"; "fsnotectl watch
 * --nats" turns such a body back into an event record of the wire format
 * (fsnote-protocol(7)), which fsnote_event_decode() makes into the very
 * object a local watch would have printed.  Bodies come from the network:
 * the decoder bounds the size, checks every field's type and range, and
 * leaves the final consistency checks (absolute paths, a rename's
 * destination, a dropped record's rescan path) to the protocol decoder.
 */
#ifndef FSNOTE_RELAY_RECORD_H
#define FSNOTE_RELAY_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "fsnote.h"

/* The largest message body either side accepts. */
#define RECORD_BODY_MAX (64u * 1024u)
/* Enough for any event frame: three paths at their limit plus arguments. */
#define RECORD_FRAME_MAX (3u * 4096u + 1024u)

/* The JSON text (compact, one line, malloc'd) for @e seen on @host; NULL
 * when memory runs out. */
char *record_encode(const fsnote_event *e, const char *host);

/* Decodes the body @body/@len into an event frame in @frame (RECORD_FRAME_MAX
 * bytes) and its length in *@ret_len; *@ret_host, if given, receives the
 * "host" field (malloc'd, NULL if absent).  Returns 0, or -EBADMSG with a
 * reason in @err (a static string) for a body that is not a record. */
int record_decode(const char *body, size_t len, uint8_t *frame, size_t *ret_len, char **ret_host,
		  const char **err);

#endif
