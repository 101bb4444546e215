/*
 * trun.c - the test runner behind trun.h: libpcap in, engine, reports out.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "trun.h"

static int by_seq(const void *a, const void *b)
{
    const struct sd_trun_flow *x = a, *y = b;
    return x->r.seq < y->r.seq ? -1 : x->r.seq > y->r.seq;
}

static void copy_name(char *dst, struct sd_iov *v)
{
    if (!v->p) {
        dst[0] = 0;
        return;
    }
    size_t n = v->n < 255 ? v->n : 255;
    memcpy(dst, v->p, n);
    dst[n] = 0;
    v->p = (const uint8_t *)dst;
}

static void on_end(void *arg, const struct sd_flow_report *r)
{
    struct sd_trun *t = arg;
    if (t->n == SD_TRUN_MAX_FLOWS)
        return;
    struct sd_trun_flow *f = &t->flows[t->n++];
    f->r = *r;
    copy_name(f->sni, &f->r.sni);
    copy_name(f->host, &f->r.http_host);
    copy_name(f->qname, &f->r.dns_qname);
    snprintf(f->rule, sizeof(f->rule), "%s", r->rule ? r->rule : "");
    snprintf(f->action, sizeof(f->action), "%s", r->action ? r->action : "");
    snprintf(f->why, sizeof(f->why), "%s", r->why ? r->why : "");
    f->r.rule = f->rule;
    f->r.action = f->action;
    f->r.why = f->why;
}

static void on_release(void *arg, const uint8_t *l3, size_t len, uint64_t ts)
{
    struct sd_trun *t = arg;
    (void)ts;
    if (t->released < 64 && len >= 20)
        t->released_ttl[t->released] = (l3[0] >> 4) == 4 ? l3[8] : l3[7];
    t->released++;
}

int sd_trun_file(struct sd_trun *t, const char *preset, const char *policy_text, const char *inside, const char *path)
{
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    struct sd_policy *pol = NULL;
    char msg[1024];
    if (!b)
        return -1;
    if ((preset && sd_policy_builder_preset(b, preset, &err)) ||
        (policy_text && sd_policy_builder_parse(b, "test", policy_text, strlen(policy_text), &err)) ||
        (inside && sd_policy_builder_inside(b, inside, &err)) || !(pol = sd_policy_builder_finish(b, &err))) {
        sd_policy_error_format(&err, msg, sizeof(msg));
        fprintf(stderr, "trun: policy: %s\n", msg);
        sd_policy_builder_free(b);
        return -1;
    }
    sd_policy_builder_free(b);
    struct sd_engine_config cfg = {
        .max_flows = t->max_flows ? t->max_flows : 4096,
        .reasm_slots = 64,
        .track = true,
        .explain = true,
        .on_flow_end = on_end,
        .on_release = on_release,
        .arg = t,
    };
    struct sd_engine *e = sd_engine_new(pol, &cfg);
    char ebuf[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (!e || !pc) {
        fprintf(stderr, "trun: %s\n", pc ? "engine" : ebuf);
        sd_engine_free(e);
        if (pc)
            pcap_close(pc);
        sd_policy_free(pol);
        return -1;
    }
    int dlt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *data;
    while (pcap_next_ex(pc, &h, &data) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        struct sd_pkt pkt;
        struct sd_verdict v = {.kind = SD_V_PASS};
        if (sd_pkt_decode(&pkt, dlt, data, h->caplen) == 0)
            sd_engine_packet(e, &pkt, ts, &v);
        else
            memset(&pkt, 0, sizeof(pkt));
        switch (v.kind) {
        case SD_V_PASS:
            t->passed++;
            break;
        case SD_V_DROP:
            t->dropped++;
            break;
        case SD_V_REPLACE:
            t->replaced++;
            break;
        case SD_V_HOLD:
            t->held++;
            break;
        }
        if (t->on_packet)
            t->on_packet(t->arg, &pkt, &v, ts);
    }
    pcap_close(pc);
    sd_engine_free(e);
    sd_policy_free(pol);
    qsort(t->flows, (size_t)t->n, sizeof(t->flows[0]), by_seq);
    for (int i = 0; i < t->n; i++) {
        struct sd_trun_flow *f = &t->flows[i];
        /* qsort moved the records: re-aim the views at their own buffers. */
        f->r.sni.p = f->r.sni.p ? (const uint8_t *)f->sni : NULL;
        f->r.http_host.p = f->r.http_host.p ? (const uint8_t *)f->host : NULL;
        f->r.dns_qname.p = f->r.dns_qname.p ? (const uint8_t *)f->qname : NULL;
        f->r.rule = f->rule;
        f->r.action = f->action;
        f->r.why = f->why;
    }
    return 0;
}

const struct sd_trun_flow *sd_trun_by_port(const struct sd_trun *t, uint16_t port)
{
    for (int i = 0; i < t->n; i++)
        if (t->flows[i].r.cport == port || t->flows[i].r.sport == port)
            return &t->flows[i];
    return NULL;
}

const struct sd_trun_flow *sd_trun_by_sni(const struct sd_trun *t, const char *sni)
{
    for (int i = 0; i < t->n; i++)
        if (t->flows[i].r.sni.p && !strcmp(t->flows[i].sni, sni))
            return &t->flows[i];
    return NULL;
}

const char *sd_trun_tmp(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "/tmp/sd-test-%ld-%s.pcap", (long)getpid(), name);
    return buf;
}
