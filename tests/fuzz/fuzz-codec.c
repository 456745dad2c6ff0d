/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-codec.c - libFuzzer target for the frame decoder.
 *
 * Feeds arbitrary bytes to the stream reader the way the daemon does
 * (codec_frame_peek() on a growing buffer, then codec_decode() of each
 * whole frame) and, for every record that decodes, exercises the typed
 * getters and the event decoder, then re-encodes events and checks that
 * the round trip is stable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const struct codec_record *rec)
{
	struct codec_event ev;
	const char *s;
	size_t len;
	uint64_t v64;
	uint32_t v32;

	for (unsigned i = 0; i < rec->n_args; i++) {
		switch (codec_arg_kind(rec->args[i].type)) {
		case FSNOTE_KIND_U32:
			if (codec_get_u32(rec, rec->args[i].type, &v32) != 0)
				abort();
			break;
		case FSNOTE_KIND_U64:
			if (codec_get_u64(rec, rec->args[i].type, &v64) != 0)
				abort();
			break;
		case FSNOTE_KIND_STRING:
			if (codec_get_string(rec, rec->args[i].type, &s, &len) != 0 || strlen(s) != len)
				abort();
			break;
		default:
			abort(); /* the decoder let through an argument it cannot type */
		}
	}
	if (codec_event_from_record(rec, &ev) == 0) {
		static uint8_t buf[FSNOTE_FRAME_MAX];
		int n = codec_encode_event(buf, sizeof(buf), &ev);
		struct codec_record again;
		struct codec_event ev2;
		if (n < 0 || codec_decode(buf, (size_t)n, &again) != 0 ||
		    codec_event_from_record(&again, &ev2) != 0 || ev2.id != ev.id ||
		    ev2.type != ev.type || ev2.path_len != ev.path_len ||
		    memcmp(ev2.path, ev.path, ev.path_len) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct codec_record rec;
	size_t off = 0;

	while (off < size) {
		uint32_t len;
		int r = codec_frame_peek(data + off, size - off, FSNOTE_REQUEST_MAX, &len);
		if (r <= 0)
			break;
		if (codec_decode(data + off, len, &rec) == 0)
			exercise(&rec);
		off += len;
	}
	/* the whole input as one frame, too */
	if (codec_decode(data, size, &rec) == 0)
		exercise(&rec);
	return 0;
}
