/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * js-dump.c - lists every message a JetStream stream holds, for the
 * end-to-end tests: one line per message, "SEQ SUBJECT MSG-ID", read with
 * direct gets from sequence 1 to the stream's last, so that the count is
 * exact (no consumer, no timeout deciding when the end has come).
 *
 * Usage: js-dump URL STREAM [--count | --leader]
 *   --count   only the number of messages the stream holds
 *   --leader  only the name of the server leading the stream
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

int main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	const char *mode = argc == 4 ? argv[3] : "";
	if (argc < 3 || argc > 4 || (*mode && strcmp(mode, "--count") && strcmp(mode, "--leader"))) {
		fprintf(stderr, "usage: js-dump URL STREAM [--count | --leader]\n");
		return 2;
	}
	s = natsConnection_ConnectTo(&nc, argv[1]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	/* a cluster that just lost its leader answers again after an election */
	for (int i = 0; s == NATS_OK && i < 100; i++) {
		s = js_GetStreamInfo(&si, js, argv[2], NULL, &jerr);
		if (s == NATS_OK || jerr == JSStreamNotFoundErr)
			break;
		s = NATS_OK;
		nats_Sleep(100);
	}
	if (s != NATS_OK || !si) {
		fprintf(stderr, "js-dump: %s: %s\n", argv[2], natsStatus_GetText(s ? s : NATS_TIMEOUT));
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
		nats_Close();
		return 1;
	}
	uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
	int ret = 0;
	if (strcmp(mode, "--count") == 0) {
		printf("%" PRIu64 "\n", si->State.Msgs);
		goto out;
	}
	if (strcmp(mode, "--leader") == 0) {
		printf("%s\n", si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
		goto out;
	}
	for (uint64_t seq = first; seq && seq <= last; seq++) {
		natsMsg *m = NULL;
		const char *id = "-";
		for (int i = 0; i < 50; i++) {
			jerr = 0;
			s = js_GetMsg(&m, js, argv[2], seq, NULL, &jerr);
			if (s == NATS_OK || jerr == JSNoMessageFoundErr)
				break;
			nats_Sleep(100);
		}
		if (jerr == JSNoMessageFoundErr)
			continue; /* deleted */
		if (s != NATS_OK) {
			fprintf(stderr, "js-dump: message %" PRIu64 ": %s\n", seq, natsStatus_GetText(s));
			ret = 1;
			break;
		}
		natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
		printf("%" PRIu64 " %s %s\n", seq, natsMsg_GetSubject(m), id ? id : "-");
		natsMsg_Destroy(m);
	}
out:
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return fflush(stdout) == 0 ? ret : 1;
}
