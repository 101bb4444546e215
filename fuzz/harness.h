/*
 * harness.h - what fuzz_engine.c and fuzz_pcap.c share: a few policies
 * built once per process, a small engine per input, and the report path.
 *
 * Policies are parsed on first use and kept for the life of the fuzzing
 * process (building one parses a preset and compiles its sets, which would
 * dominate a run if done per input). Engines are made per input, so no state
 * leaks from one input to the next and every finding replays on its own.
 * The engine is deliberately small (SD_HARNESS_FLOWS flows, two reassembly
 * slots) so that eviction and pool exhaustion are reached by short inputs.
 *
 * Static functions only: each fuzz target is one translation unit (plus
 * replay.c in gcc builds), and this header is included by exactly one file
 * of each target.
 */
#ifndef SD_FUZZ_HARNESS_H
#define SD_FUZZ_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "pkt.h"
#include "policy.h"
#include "report.h"

enum { SD_HARNESS_FLOWS = 8, SD_HARNESS_REASM = 2 };

/* The presets a fuzz input may pick, with an optional addition (the lab's
 * server range for cdn25, so that the generated servers are in it). The
 * last one is a policy of its own that reaches what no preset does: records
 * mode, DNS, checksum verification, FIN/RST release, short timeouts, and the
 * drop-after, rst, ipblock and L2-counting actions. */
static const struct {
    const char *preset;
    const char *extra;
} sd_harness_policies[] = {
    {"tw21-exact", NULL},
    {"observe", NULL},
    {"tw22-block", NULL},
    {"quic23-sni", NULL},
    {"cdn25-16k", "ips cdn25 203.0.113.0/24 2001:db8::/32\n"},
    {"yt24-policer", NULL},
    {"tw22-sni3", NULL},
    {"quic22-v1", NULL},
    {"quic22-initial", NULL},
    {"host25-udp", "ips host25-trigger 198.51.100.0/24\nips host25-target 203.0.113.0/24 2001:db8::/32\n"},
    /* L4 rules that fire at a flow's first packet while the preset's L7 rules
     * still inspect it: the action's state and reassembly share the flow. */
    {"yt24-policer", "rule l4t when tcp then throttle rate=64kbit\nrule l4u when udp then freeze bytes=2000\n"},
    {NULL, "names k twitter.com *.twitter.com *t.co* example.net\n"
           "ips lab 203.0.113.0/24 198.51.100.0/24 2001:db8::/32\n"
           "set inspect.tls records\n"
           "set inspect.dns on\n"
           "set inspect.verify-checksum on\n"
           "set eligibility.unknown on\n"
           "set timeout.fin-rst-clears on\n"
           "set timeout.syn 1\n"
           "set timeout.udp 2\n"
           "set timeout.tcp 3\n"
           "set reasm.bytes 600\n"
           "rule a when dns in k then drop-after n=2\n"
           "rule b when host in k then rst\n"
           "rule c when server in lab and port 8080 then ipblock\n"
           "rule d when sni in k and not ech then throttle rate=64kbit burst=3000 count=l2 acks=police\n"},
};

enum { SD_HARNESS_NPOL = sizeof(sd_harness_policies) / sizeof(sd_harness_policies[0]) };

/* Policy |i| (modulo the table), built on first use. Aborts when a built-in
 * policy fails to build: that is a bug, not an input. */
static const struct sd_policy *sd_harness_policy(unsigned i)
{
    static struct sd_policy *cache[SD_HARNESS_NPOL]; /* process lifetime: see the comment at the top */
    i %= SD_HARNESS_NPOL;
    if (cache[i])
        return cache[i];
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    const char *pre = sd_harness_policies[i].preset, *extra = sd_harness_policies[i].extra;
    if (!b || (pre && sd_policy_builder_preset(b, pre, &err)) ||
        (extra && sd_policy_builder_parse(b, "harness", extra, strlen(extra), &err)) ||
        !(cache[i] = sd_policy_builder_finish(b, &err))) {
        char msg[600];
        sd_policy_error_format(&err, msg, sizeof(msg));
        fprintf(stderr, "harness: policy %u: %s\n", i, msg);
        abort();
    }
    sd_policy_builder_free(b);
    return cache[i];
}

/* The sink of the report path: the output is formatted and thrown away,
 * or shown on stderr when SD_FUZZ_SHOW is set (to see what a seed or a
 * finding does: SD_FUZZ_SHOW=1 ./build-fuzz/fuzz_engine FILE). */
static FILE *sd_harness_null(void)
{
    static FILE *null;
    if (!null && !(null = getenv("SD_FUZZ_SHOW") ? stderr : fopen("/dev/null", "w")))
        abort();
    return null;
}

static void sd_harness_release(void *arg, const uint8_t *l3, size_t len, uint64_t ts_ns)
{
    (void)arg;
    (void)ts_ns;
    struct sd_pkt p;
    if (len > 65535 || sd_pkt_decode(&p, SD_DLT_RAW, l3, len) == SD_EPROTO)
        abort(); /* a held packet comes back as the IP packet it was */
}

/* A small tracking engine whose flows end up in |rep|. */
static struct sd_engine *sd_harness_engine(const struct sd_policy *pol, struct sd_report *rep, bool explain)
{
    struct sd_engine_config cfg = {
        .max_flows = SD_HARNESS_FLOWS,
        .reasm_slots = SD_HARNESS_REASM,
        .frag_slots = 2,
        .track = true,
        .explain = explain,
        .on_flow_end = sd_report_add,
        .on_release = sd_harness_release,
        .arg = rep,
    };
    struct sd_engine *e = sd_engine_new(pol, &cfg);
    if (!e)
        abort();
    return e;
}

/* Checks what the engine promises about a verdict: a known kind, and a
 * replacement that is a well-formed TCP RST with valid checksums. */
static void sd_harness_check_verdict(const struct sd_verdict *v)
{
    if (v->kind > SD_V_HOLD)
        abort();
    if (v->kind != SD_V_REPLACE)
        return;
    struct sd_pkt p;
    if (!v->data || v->len < 40 || v->len > 128 || sd_pkt_decode(&p, SD_DLT_RAW, v->data, v->len) != 0 ||
        p.proto != 6 || !(p.tcp_flags & SD_TCP_RST) || p.payload_len != 0 || !sd_pkt_l4_csum_ok(&p))
        abort();
}

/* Ends an input: checks the table bound, frees the engine (which reports
 * the flows still open), prints the reports both ways and frees them. */
static void sd_harness_finish(struct sd_engine *e, struct sd_report *rep, bool why)
{
    struct sd_engine_stats st;
    sd_engine_get_stats(e, &st);
    if (st.flows_active > SD_HARNESS_FLOWS || st.flows_created < st.flows_active ||
        st.flows_created - st.flows_active < st.flows_evicted + st.flows_expired)
        abort();
    sd_engine_free(e);
    FILE *null = sd_harness_null();
    sd_report_print_json(rep, null);
    sd_report_print_table(rep, null, why);
    fflush(null);
    sd_report_free(rep);
}

#endif
