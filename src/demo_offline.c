/*
 * demo_offline.c - 'slowdown demo' without root: the same five names the
 * lab demo measures, as generated TLS downloads (a 2.3 Mbit/s server stream
 * each, 20 s of pcap time), judged by the presets of the first day
 * (tw21-initial) and of April 2021 (tw21-exact). The goodput shown is what
 * the censor lets through, measured in pcap time after the first bucket; the
 * capture is open loop (no TCP reacts to the drops), so it shows the policer
 * itself, where the lab shows what a real TCP gets.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"
#include "engine.h"
#include "gen.h"
#include "pkt.h"
#include "policy.h"

enum { N_NAMES = 5, DOWN_BPS = 2300000, SECONDS = 20 };

static const char *const demo_names[N_NAMES] = {"twitter.com", "abs.twimg.com", "reddit.com", "microsoft.com",
                                                "example.org"};
static const uint64_t T0 = 1615366800000000000ULL; /* 2021-03-10 09:00 UTC */

static int write_capture(const char *path)
{
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 1);
    if (!w)
        return -1;
    for (int i = 0; i < N_NAMES; i++) {
        struct sd_gen_tcp c;
        uint8_t buf[2048];
        struct sd_gen_hello h = {.sni = demo_names[i], .alpn = {"h2", "http/1.1", NULL}};
        /* One after another: a capture is in time order. */
        sd_gen_tcp_init(&c, w, "10.0.0.2", (uint16_t)(45000 + i), "203.0.113.5", 443, T0 + (uint64_t)i * (SECONDS + 5) * 1000000000ULL);
        sd_gen_tcp_handshake(&c, false);
        sd_gen_tcp_send(&c, SD_GEN_C2S, buf, sd_gen_client_hello_record(buf, sizeof(buf), &h), 1000000);
        sd_gen_tcp_bulk(&c, SD_GEN_S2C, (size_t)DOWN_BPS / 8 * SECONDS, DOWN_BPS);
    }
    return sd_gen_pcap_close(w);
}

struct tally {
    uint64_t bytes[N_NAMES];
    uint64_t first[N_NAMES], last[N_NAMES];
    char action[N_NAMES][16];
};

static void on_end(void *arg, const struct sd_flow_report *r)
{
    struct tally *t = arg;
    int i = r->cport - 45000;
    if (i >= 0 && i < N_NAMES)
        snprintf(t->action[i], sizeof(t->action[i]), "%s", r->action);
}

static int judge(const char *path, const char *preset, struct tally *t)
{
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    struct sd_policy *p = NULL;
    if (b && sd_policy_builder_preset(b, preset, &err) == 0)
        p = sd_policy_builder_finish(b, &err);
    sd_policy_builder_free(b);
    if (!p)
        return -1;
    memset(t, 0, sizeof(*t));
    struct sd_engine_config cfg = {.max_flows = 64, .track = true, .on_flow_end = on_end, .arg = t};
    struct sd_engine *e = sd_engine_new(p, &cfg);
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = e ? pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf) : NULL;
    if (!pc) {
        sd_engine_free(e);
        sd_policy_free(p);
        return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        struct sd_pkt pkt;
        struct sd_verdict v;
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        if (sd_pkt_decode(&pkt, pcap_datalink(pc), data, h->caplen) != 0)
            continue;
        sd_engine_packet(e, &pkt, ts, &v);
        int i = pkt.dport - 45000;
        if (pkt.sport != 443 || i < 0 || i >= N_NAMES || pkt.payload_len == 0)
            continue;
        if (!t->first[i])
            t->first[i] = ts;
        t->last[i] = ts;
        /* Goodput after the first two seconds: the bucket's burst is spent. */
        if (v.kind == SD_V_PASS && ts >= t->first[i] + 2000000000ULL)
            t->bytes[i] += pkt.payload_len;
    }
    pcap_close(pc);
    sd_engine_free(e);
    sd_policy_free(p);
    return 0;
}

static double kbps(const struct tally *t, int i)
{
    double secs = (double)(t->last[i] - t->first[i]) / 1e9 - 2.0;
    return secs > 0 ? (double)t->bytes[i] * 8 / secs / 1000 : 0;
}

int sd_demo_offline(int argc, char **argv)
{
    bool json = false;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--json"))
            json = true;
    char path[] = "/tmp/slowdown-demo-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("slowdown demo: temporary capture");
        return SD_EXIT_ERR;
    }
    close(fd);
    struct tally t[2];
    const char *presets[2] = {"tw21-initial", "tw21-exact"};
    int rc = write_capture(path);
    for (int k = 0; rc == 0 && k < 2; k++)
        rc = judge(path, presets[k], &t[k]);
    unlink(path);
    if (rc) {
        fprintf(stderr, "slowdown demo: the offline demo failed\n");
        return SD_EXIT_ERR;
    }
    if (json) {
        for (int k = 0; k < 2; k++) {
            double control = kbps(&t[k], N_NAMES - 1);
            for (int i = 0; i < N_NAMES; i++) {
                double g = kbps(&t[k], i), ratio = control > 0 ? g / control : 0;
                bool thr = ratio < 0.15 && g < 250;
                char rate[32] = "null"; /* as slowdown detect: a rate only when throttled */
                if (thr)
                    snprintf(rate, sizeof(rate), "%.1f", g);
                printf("{\"type\":\"measurement\",\"mode\":\"offline\",\"preset\":\"%s\",\"name\":\"%s\","
                       "\"direction\":\"down\",\"kbps\":%.1f,\"control_kbps\":%.1f,\"ratio\":%.5f,\"verdict\":\"%s\","
                       "\"rate_estimate_kbps\":%s,\"duration_s\":%d}\n",
                       presets[k], demo_names[i], g, control, ratio, thr ? "throttled" : "not_throttled", rate,
                       SECONDS);
            }
        }
        return SD_EXIT_OK;
    }
    printf("Offline demo (no network lab without root): the same generated traffic -- a TLS download of %d s at "
           "%.1f Mbit/s per name -- judged by the first day's rules and by April's.\n\n",
           SECONDS, DOWN_BPS / 1e6);
    printf("%-16s %-30s %-30s\n", "name", "tw21-initial (2021-03-10)", "tw21-exact (2021-04-02)");
    for (int i = 0; i < N_NAMES; i++) {
        char cell[2][64];
        for (int k = 0; k < 2; k++)
            snprintf(cell[k], sizeof(cell[k]), "%8.1f kbit/s  %s", kbps(&t[k], i),
                     strcmp(t[k].action[i], "throttle") ? "full speed" : "THROTTLED");
        printf("%-16s %-30s %-30s\n", demo_names[i], cell[0], cell[1]);
    }
    printf("\nOn 10 March 2021 the rule *t.co* matched any name containing \"t.co\": reddit.com and microsoft.com\n"
           "were throttled with Twitter. The fix of 11 March anchored the rules; by April only Twitter's names were.\n"
           "Run as root for the same measurement over real TCP through a network lab.\n");
    return SD_EXIT_OK;
}
