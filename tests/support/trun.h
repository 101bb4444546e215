/*
 * trun.h - runs a capture through the engine for tests and keeps what a test
 * asserts on: every flow's report (names copied), verdict counts, and an
 * optional callback per packet with its verdict.
 */
#ifndef SD_TRUN_H
#define SD_TRUN_H

#include <stdint.h>

#include "engine.h"
#include "pkt.h"

enum { SD_TRUN_MAX_FLOWS = 256 };

struct sd_trun_flow {
    struct sd_flow_report r;
    char sni[256], host[256], qname[256];
    char rule[32], action[16];
    char why[4096];
};

struct sd_trun {
    struct sd_trun_flow flows[SD_TRUN_MAX_FLOWS];
    int n;
    uint64_t passed, dropped, replaced, held, released;
    uint8_t released_ttl[64]; /* TTL / hop limit of the first 64 released packets */
    /* Optional: called for every packet after its verdict. */
    void (*on_packet)(void *arg, const struct sd_pkt *pkt, const struct sd_verdict *v, uint64_t ts_ns);
    void *arg;
    uint32_t max_flows; /* engine capacity, default 4096 */
};

/*
 * Builds the policy from |preset| (may be NULL) plus |policy_text| (may be
 * NULL), with |inside| replacing the inside networks when not NULL; runs the
 * capture |path| through it with tracking and explain on. Flows end up in
 * t->flows sorted by first packet. Returns 0, or -1 after printing why.
 */
int sd_trun_file(struct sd_trun *t, const char *preset, const char *policy_text, const char *inside, const char *path);

/* The flow whose client or server port is |port| (first match), or NULL. */
const struct sd_trun_flow *sd_trun_by_port(const struct sd_trun *t, uint16_t port);
/* The flow whose SNI is |sni|, or NULL. */
const struct sd_trun_flow *sd_trun_by_sni(const struct sd_trun *t, const char *sni);

/* A unique temporary path for a test capture: /tmp/sd-test-<pid>-<name>.pcap */
const char *sd_trun_tmp(const char *name);

#endif
