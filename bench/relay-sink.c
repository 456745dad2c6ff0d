/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * relay-sink.c - the remote end of the relay benchmark: reads what
 * fsnote-relay publishes, as "fsnotectl watch --nats" does (an ordered
 * JetStream consumer from now on), and counts it like fsnote-sink:
 *
 *   relay-sink [--timeout SEC] URL HOST
 *
 * Prints "ready" on stderr once subscribed; stops at the create record of
 * a BENCH-END file and prints one JSON line with the records seen by type
 * and, for files named lat-<ns>, the latency from their creation (by
 * CLOCK_REALTIME) to this consumer holding the message.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	double timeout = 120;
	int a = 1;

	if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
		timeout = atof(argv[2]);
		a = 3;
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: relay-sink [--timeout SEC] URL HOST\n");
		return 2;
	}
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsSubscription *sub = NULL;
	jsSubOptions so;
	char subject[128];
	snprintf(subject, sizeof(subject), "fsnote.%s.>", argv[a + 1]);
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverNew;
	natsStatus s = natsConnection_ConnectTo(&nc, argv[a]);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = js_SubscribeSync(&sub, js, subject, NULL, &so, NULL);
	if (s != NATS_OK) {
		fprintf(stderr, "relay-sink: %s\n", natsStatus_GetText(s));
		return 1;
	}
	fprintf(stderr, "ready\n");

	size_t lat_cap = 1 << 20, n_lat = 0;
	uint64_t *lat = malloc(lat_cap * sizeof(*lat));
	uint64_t records = 0, create = 0, delete = 0, close_write = 0, rename = 0, dropped = 0;
	uint64_t first = 0, last = 0, deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)(timeout * 1e9);
	bool done = false;
	while (!done && lat && now_ns(CLOCK_MONOTONIC) < deadline) {
		natsMsg *m = NULL;
		if (natsSubscription_NextMsg(&m, sub, 1000) != NATS_OK)
			continue;
		uint64_t t = now_ns(CLOCK_MONOTONIC), rt = now_ns(CLOCK_REALTIME);
		if (!first)
			first = t;
		last = t;
		records++;
		json_t *o = json_loadb(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0, NULL);
		const char *type = json_string_value(json_object_get(o, "type"));
		const char *path = json_string_value(json_object_get(o, "path"));
		const char *base = path ? strrchr(path, '/') : NULL;
		base = base ? base + 1 : "";
		if (type && strcmp(type, "create") == 0) {
			create++;
			if (strncmp(base, "lat-", 4) == 0 && n_lat < lat_cap) {
				uint64_t sent = strtoull(base + 4, NULL, 10);
				if (rt > sent)
					lat[n_lat++] = rt - sent;
			}
			if (strcmp(base, "BENCH-END") == 0)
				done = true;
		} else if (type && strcmp(type, "delete") == 0) {
			delete++;
		} else if (type && strcmp(type, "close_write") == 0) {
			close_write++;
		} else if (type && strcmp(type, "rename") == 0) {
			rename++;
		} else if (type && strcmp(type, "dropped") == 0) {
			dropped++;
		}
		json_decref(o);
		natsMsg_Destroy(m);
	}
	printf("{\"records\":%llu,\"create\":%llu,\"delete\":%llu,\"close_write\":%llu,\"rename\":%llu,"
	       "\"dropped_records\":%llu,\"seconds\":%.6f,\"complete\":%s",
	       (unsigned long long)records, (unsigned long long)create, (unsigned long long)delete,
	       (unsigned long long)close_write, (unsigned long long)rename, (unsigned long long)dropped,
	       (double)(last - first) / 1e9, done ? "true" : "false");
	if (n_lat) {
		qsort(lat, n_lat, sizeof(*lat), cmp_u64);
		printf(",\"latency_n\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f", n_lat,
		       (double)lat[n_lat / 2] / 1e3, (double)lat[n_lat * 99 / 100] / 1e3,
		       (double)lat[n_lat - 1] / 1e3);
	}
	printf("}\n");
	free(lat);
	natsSubscription_Unsubscribe(sub);
	natsConnection_Close(nc);
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return done ? 0 : 3;
}
