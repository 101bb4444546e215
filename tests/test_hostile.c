/*
 * test_hostile.c - the engine in front of hostile traffic (issue 9): floods
 * of new flows, half-open flows, overlapping segments with conflicting
 * bytes, tiny fragments, ClientHellos whose lengths lie, reassembly slots
 * held by an attacker. Each test mixes legitimate flows into the hostile
 * traffic and asserts three things: nothing crashes (the suite runs under
 * ASan and UBSan), memory stays bounded (the engine's counters, and the
 * process RSS for the flood), and the legitimate flows still get their
 * verdicts -- throttle for twitter.com, pass for example.org.
 *
 * Packets are built with the generator and fed to the engine directly,
 * without a capture file: the flood is 200,000 packets, and the test looks
 * at every verdict of the legitimate flows as it happens. Legitimate flows
 * run from 10.1.2.3 or fd00::3, client ports 50000-50099; their reports are
 * kept, the flood's are not (keeping 200,000 reports would itself be
 * unbounded memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "bytes.h"
#include "gen.h"
#include "pkt.h"
#include "policy.h"

#define T0 1615366800000000000ULL /* 2021-03-10 09:00 UTC */
#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL

enum { LEGIT_PORT = 50000, LEGIT_MAX = 100 };

/* What the test keeps of a legitimate flow: its report and the verdicts it
 * saw per direction. */
struct legit {
    bool ended;
    char action[16], sni[64];
    uint64_t dropped[2], packets[2];
    uint64_t replaced_s2c; /* server packets turned into RSTs, counted as fed */
    int ends;              /* times the engine ended it (an eviction mid-flow shows as 2) */
    size_t why_len;        /* length of the explain trace */
};

struct hostile {
    struct sd_policy *pol;
    struct sd_engine *e;
    uint64_t now;
    uint64_t rng;
    struct legit legit[LEGIT_MAX];
    uint8_t frame[70000];
};

/* ---- set-up ---- */

static struct sd_policy *make_policy(const char *preset, const char *extra)
{
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    struct sd_policy *p = NULL;
    assert_non_null(b);
    if ((!preset || sd_policy_builder_preset(b, preset, &err) == 0) &&
        (!extra || sd_policy_builder_parse(b, "test", extra, strlen(extra), &err) == 0))
        p = sd_policy_builder_finish(b, &err);
    if (!p) {
        char msg[600];
        sd_policy_error_format(&err, msg, sizeof(msg));
        fail_msg("policy: %s", msg);
    }
    sd_policy_builder_free(b);
    return p;
}

/* Legitimate clients are 10.1.2.3 and fd00::3; the flood never uses them. */
static bool legit_client(const struct sd_flow_report *r)
{
    static const uint8_t v4[4] = {10, 1, 2, 3};
    static const uint8_t v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
    return r->family == 4 ? !memcmp(r->caddr, v4, 4) : !memcmp(r->caddr, v6, 16);
}

static void on_end(void *arg, const struct sd_flow_report *r)
{
    struct hostile *h = arg;
    if (r->cport < LEGIT_PORT || r->cport >= LEGIT_PORT + LEGIT_MAX || !legit_client(r))
        return;
    struct legit *l = &h->legit[r->cport - LEGIT_PORT];
    l->ended = true;
    l->ends++;
    l->why_len = r->why ? strlen(r->why) : 0;
    snprintf(l->action, sizeof(l->action), "%s", r->action);
    snprintf(l->sni, sizeof(l->sni), "%.*s", r->sni.p ? (int)SD_MIN(r->sni.n, 63) : 0,
             r->sni.p ? (const char *)r->sni.p : "");
    for (int d = 0; d < 2; d++) {
        l->dropped[d] = r->dropped[d];
        l->packets[d] = r->packets[d];
    }
}

static struct hostile *setup_ex(const char *preset, const char *extra, uint32_t max_flows, uint32_t reasm_slots,
                                bool explain)
{
    struct hostile *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->pol = make_policy(preset, extra);
    struct sd_engine_config cfg = {
        .max_flows = max_flows,
        .reasm_slots = reasm_slots,
        .track = true,
        .explain = explain,
        .on_flow_end = on_end,
        .arg = h,
    };
    h->e = sd_engine_new(h->pol, &cfg);
    assert_non_null(h->e);
    h->now = T0;
    h->rng = 0x243f6a8885a308d3ULL;
    return h;
}

static struct hostile *setup(const char *preset, const char *extra, uint32_t max_flows, uint32_t reasm_slots)
{
    return setup_ex(preset, extra, max_flows, reasm_slots, false);
}

/* Ends the run: the engine reports the flows still open (the legitimate
 * flows' reports are then complete) and is freed. */
static void finish(struct hostile *h)
{
    sd_engine_free(h->e);
    h->e = NULL;
}

static void teardown(struct hostile *h)
{
    finish(h);
    sd_policy_free(h->pol);
    free(h);
}

static uint64_t rnd(struct hostile *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    return h->rng;
}

static struct sd_engine_stats stats(const struct hostile *h)
{
    struct sd_engine_stats st;
    sd_engine_get_stats(h->e, &st);
    return st;
}

/* ---- feeding ---- */

/* Feeds one raw-IP frame; returns the verdict kind. */
static int feed_frame(struct hostile *h, const uint8_t *frame, size_t len)
{
    struct sd_pkt p;
    struct sd_verdict v = {.kind = SD_V_PASS};
    if (sd_pkt_decode(&p, SD_DLT_RAW_FILE, frame, len) != 0)
        return SD_V_PASS; /* what slowdown pcap does with an undecodable frame */
    sd_engine_packet(h->e, &p, h->now, &v);
    assert_true(v.kind <= SD_V_HOLD);
    return v.kind;
}

static int feed(struct hostile *h, const struct sd_gen_pkt *s)
{
    size_t n = sd_gen_frame(h->frame, sizeof(h->frame), s);
    assert_true(n > 0);
    return feed_frame(h, h->frame, n);
}

/* A legitimate TCP conversation, built packet by packet. */
struct conv {
    struct sd_gen_pkt tmpl; /* client -> server */
    uint32_t seq[2];
    struct legit *l;
};

static void conv_init(struct hostile *h, struct conv *c, const char *client, uint16_t cport, const char *server,
                      uint16_t sport)
{
    memset(c, 0, sizeof(*c));
    c->tmpl.linktype = 101;
    c->tmpl.src = sd_gen_addr(client);
    c->tmpl.dst = sd_gen_addr(server);
    c->tmpl.proto = 6;
    c->tmpl.sport = cport;
    c->tmpl.dport = sport;
    c->seq[0] = 1000u + cport;
    c->seq[1] = 7000000u + cport;
    c->l = cport >= LEGIT_PORT && cport < LEGIT_PORT + LEGIT_MAX ? &h->legit[cport - LEGIT_PORT] : NULL;
}

/* Sends |len| bytes (or none) with |flags| in |dir| at sequence offset
 * |delta| from the next sequence number, without advancing it. */
static int conv_at(struct hostile *h, struct conv *c, int dir, uint8_t flags, int32_t delta, const uint8_t *data,
                   size_t len)
{
    struct sd_gen_pkt s = c->tmpl;
    if (dir) {
        s.src = c->tmpl.dst;
        s.dst = c->tmpl.src;
        s.sport = c->tmpl.dport;
        s.dport = c->tmpl.sport;
    }
    s.tcp_flags = flags;
    s.seq = c->seq[dir] + (uint32_t)delta;
    s.ack = (flags & SD_TCP_ACK) ? c->seq[!dir] : 0;
    s.payload = data;
    s.payload_len = len;
    int v = feed(h, &s);
    if (c->l && dir == 1 && v == SD_V_REPLACE)
        c->l->replaced_s2c++;
    return v;
}

static int conv_send(struct hostile *h, struct conv *c, int dir, uint8_t flags, const uint8_t *data, size_t len)
{
    int v = conv_at(h, c, dir, flags, 0, data, len);
    c->seq[dir] += (uint32_t)len + ((flags & (SD_TCP_SYN | SD_TCP_FIN)) ? 1u : 0u);
    return v;
}

static void conv_handshake(struct hostile *h, struct conv *c)
{
    conv_send(h, c, 0, SD_TCP_SYN, NULL, 0);
    h->now += 10 * MS;
    conv_send(h, c, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
    h->now += 100 * US;
    conv_send(h, c, 0, SD_TCP_ACK, NULL, 0);
}

static size_t hello(uint8_t *buf, size_t cap, const char *sni)
{
    struct sd_gen_hello g = {.sni = sni, .alpn = {"h2", "http/1.1", NULL}};
    size_t n = sd_gen_client_hello_record(buf, cap, &g);
    assert_true(n > 0);
    return n;
}

static const struct legit *legit(const struct hostile *h, uint16_t cport)
{
    const struct legit *l = &h->legit[cport - LEGIT_PORT];
    if (!l->ended)
        fail_msg("flow %u was not reported", cport);
    return l;
}

static void assert_legit(const struct hostile *h, uint16_t cport, const char *action, const char *sni)
{
    const struct legit *l = legit(h, cport);
    if (strcmp(l->action, action) != 0 || (sni && strcmp(l->sni, sni) != 0))
        fail_msg("flow %u: action %s sni '%s', expected %s '%s'", cport, l->action, l->sni, action, sni ? sni : "*");
    if (l->ends != 1)
        fail_msg("flow %u: its state was ended %d times (evicted mid-flow?)", cport, l->ends);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* ---- flood ---- */

/* One packet of the flood, by kind: a SYN from a random 5-tuple (half of
 * them from inside addresses, which makes them eligible flows), a SYN/ACK
 * answering no SYN, a mid-stream data segment of random bytes (an unknown
 * opener), or a UDP datagram whose first bytes look like a QUIC Initial. */
static void flood_packet(struct hostile *h, unsigned kind)
{
    uint8_t junk[128];
    struct sd_gen_pkt s;
    memset(&s, 0, sizeof(s));
    uint64_t r = rnd(h), q = rnd(h);
    s.linktype = 101;
    s.src.family = s.dst.family = 4;
    s.src.a[0] = (r & 1) ? 10 : (uint8_t)(11 + (r >> 1) % 180);
    memcpy(s.src.a + 1, (const uint8_t *)&q, 3);
    s.src.a[1] = (uint8_t)(200 + s.src.a[1] % 50); /* never a legitimate client */
    s.dst.a[0] = 198;
    s.dst.a[1] = 18;
    memcpy(s.dst.a + 2, (const uint8_t *)&q + 3, 2);
    s.sport = (uint16_t)(1024 + (r >> 8) % 48000); /* below the legitimate ports */
    s.dport = (r >> 40) & 1 ? 443 : (uint16_t)(r >> 48);
    s.proto = 6;
    s.seq = (uint32_t)q;
    switch (kind % 4) {
    case 0:
        s.tcp_flags = SD_TCP_SYN;
        break;
    case 1:
        s.tcp_flags = SD_TCP_SYN | SD_TCP_ACK;
        break;
    case 2:
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rnd(h);
        s.tcp_flags = SD_TCP_PSH | SD_TCP_ACK;
        s.payload = junk;
        s.payload_len = 40 + (r >> 20) % 80;
        break;
    default:
        junk[0] = 0xc3;
        junk[1] = junk[2] = junk[3] = 0;
        junk[4] = 1;
        for (size_t i = 5; i < sizeof(junk); i++)
            junk[i] = (uint8_t)rnd(h);
        s.proto = 17;
        s.dport = 443;
        s.payload = junk;
        s.payload_len = sizeof(junk);
        break;
    }
    assert_int_equal(feed(h, &s), SD_V_PASS);
}

enum { NLEGIT = 8, SEGS = 200 };

struct flood_result {
    long rss0, rss1;     /* kB, after the first 20,000 packets and at the end */
    uint64_t max_active; /* flows in the table, sampled every 1000 packets */
};

/* Runs |n| flood packets (n >= 100,000) at 10,000 a second; eight
 * legitimate flows start inside it, |n| / 10 packets apart, alternating
 * twitter.com and example.org, each downloading SEGS segments (2 s) at about
 * 1.2 Mbit/s with its packets interleaved with the flood's. */
static struct flood_result flood_with_legit(struct hostile *h, unsigned n, uint32_t cap)
{
    struct flood_result fr = {-1, -1, 0};
    struct conv c[NLEGIT];
    uint8_t buf[4096], seg[1460];
    memset(seg, 0x42, sizeof(seg));
    int sent[NLEGIT] = {0};
    for (unsigned t = 0; t < n; t++) {
        h->now += 100 * US;
        flood_packet(h, t);
        if (t == 20000)
            fr.rss0 = rss_kb();
        for (int i = 0; i < NLEGIT; i++) {
            unsigned start = n / 20 + (unsigned)i * (n / 10);
            if (t == start) {
                conv_init(h, &c[i], "10.1.2.3", (uint16_t)(LEGIT_PORT + i), "203.0.113.5", 443);
                conv_handshake(h, &c[i]);
                conv_send(h, &c[i], 0, SD_TCP_PSH | SD_TCP_ACK, buf,
                          hello(buf, sizeof(buf), i % 2 ? "example.org" : "twitter.com"));
            } else if (t > start && (t - start) % 100 == 0 && sent[i] < SEGS) {
                /* A server segment every 10 ms, an ACK every second one. */
                conv_send(h, &c[i], 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));
                if (++sent[i] % 2 == 0)
                    conv_send(h, &c[i], 0, SD_TCP_ACK, NULL, 0);
            }
        }
        if (t % 1000 == 0) {
            struct sd_engine_stats st = stats(h);
            assert_true(st.flows_active <= cap);
            fr.max_active = SD_MAX(fr.max_active, st.flows_active);
        }
    }
    fr.rss1 = rss_kb();
    for (int i = 0; i < NLEGIT; i++)
        assert_int_equal(sent[i], SEGS);
    return fr;
}

/* The legitimate flows of flood_with_legit, once the engine is finished:
 * twitter.com throttled (most of its download dropped by the 128 kbit/s
 * policer), example.org untouched, each ended exactly once (at shutdown or
 * idle after its download: never evicted mid-flow and re-created). */
static void assert_legit_verdicts(const struct hostile *h)
{
    for (int i = 0; i < NLEGIT; i++) {
        uint16_t port = (uint16_t)(LEGIT_PORT + i);
        assert_legit(h, port, i % 2 ? "pass" : "throttle", i % 2 ? "example.org" : "twitter.com");
        const struct legit *l = legit(h, port);
        assert_int_equal(l->packets[1], SEGS + 1);
        if (i % 2)
            assert_int_equal(l->dropped[0] + l->dropped[1], 0);
        else
            assert_true(l->dropped[1] > SEGS / 2);
    }
}

/*
 * 200,000 flood packets (as many new flows) against a table of 4096 flows
 * under tw21-exact, with eight legitimate flows inside the flood. While the
 * flood runs the table stays at or under its capacity, the flood's flows
 * are evicted, and RSS does not grow; the legitimate flows keep their state
 * and get their verdicts.
 */
static void syn_flood_keeps_verdicts(void **state)
{
    (void)state;
    enum { FLOOD = 200000, CAP = 4096 };
    struct hostile *h = setup("tw21-exact", NULL, CAP, 0);
    struct flood_result fr = flood_with_legit(h, FLOOD, CAP);
    struct sd_engine_stats st = stats(h);
    print_message("flood: %llu packets, %llu flows created, %llu evicted, %llu expired, max active %llu of %u; "
                  "RSS %ld kB -> %ld kB\n",
                  (unsigned long long)st.packets, (unsigned long long)st.flows_created,
                  (unsigned long long)st.flows_evicted, (unsigned long long)st.flows_expired,
                  (unsigned long long)fr.max_active, CAP, fr.rss0, fr.rss1);
    assert_true(st.flows_active <= CAP);
    assert_int_equal(fr.max_active, CAP);
    assert_true(st.flows_created >= 140000);
    assert_true(st.flows_evicted >= st.flows_created - CAP - st.flows_expired);
    assert_true(fr.rss0 > 0 && fr.rss1 > 0);
    assert_true(fr.rss1 - fr.rss0 < 16 * 1024); /* no growth with the number of flows */
    finish(h);
    assert_legit_verdicts(h);
    teardown(h);
}

/*
 * The same flood under observe plus a twitter.com throttle rule: every flow
 * is inspected (stream reassembly of the junk segments, decryption attempts
 * of the QUIC-looking datagrams, names kept per flow), with 1024 flows and
 * 64 reassembly slots. The table stays bounded (RSS is not measured here:
 * per-flow allocations go through ASan's quarantine), and the legitimate
 * flows get their verdicts.
 */
static void inspected_flood_keeps_verdicts(void **state)
{
    (void)state;
    enum { FLOOD = 100000, CAP = 1024 };
    struct hostile *h = setup("observe", "names tw twitter.com\n"
                                         "rule tw when sni in tw then throttle rate=128kbit burst=16000\n",
                              CAP, 64);
    struct flood_result fr = flood_with_legit(h, FLOOD, CAP);
    struct sd_engine_stats st = stats(h);
    print_message("inspected flood: %llu flows created, %llu evicted, max active %llu of %u, %llu triggers\n",
                  (unsigned long long)st.flows_created, (unsigned long long)st.flows_evicted,
                  (unsigned long long)fr.max_active, CAP, (unsigned long long)st.triggers);
    assert_int_equal(fr.max_active, CAP);
    assert_true(st.flows_evicted >= st.flows_created - CAP - st.flows_expired);
    assert_int_equal(st.triggers, NLEGIT / 2);
    finish(h);
    assert_legit_verdicts(h);
    teardown(h);
}

/* ---- half-open flows ---- */

/*
 * 3000 SYNs that are never answered and 3000 SYN + SYN/ACK pairs that are
 * never completed, with one legitimate throttled flow in the middle. The
 * state of all of them is released by the timeouts, without eviction:
 * SYN-only flows after timeout.syn (60 s), the half-open ones after
 * timeout.tcp (600 s); the legitimate flow, throttled, after timeout.action
 * (600 s of idleness too) -- and it is still throttled before that.
 */
static void half_open_flows_expire(void **state)
{
    (void)state;
    enum { N = 3000, CAP = 8192 };
    struct hostile *h = setup("tw21-exact", NULL, CAP, 0);
    uint8_t buf[4096], seg[1000];
    memset(seg, 0x42, sizeof(seg));
    struct conv c, legit_c;
    for (int i = 0; i < N; i++) {
        h->now += 100 * US;
        conv_init(h, &c, "10.9.0.1", (uint16_t)(2000 + i), "198.51.100.7", 443);
        conv_send(h, &c, 0, SD_TCP_SYN, NULL, 0);
        conv_init(h, &c, "10.9.0.2", (uint16_t)(2000 + i), "198.51.100.7", 443);
        conv_send(h, &c, 0, SD_TCP_SYN, NULL, 0);
        conv_send(h, &c, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
        if (i == N / 2) {
            conv_init(h, &legit_c, "10.1.2.3", LEGIT_PORT, "203.0.113.5", 443);
            conv_handshake(h, &legit_c);
            conv_send(h, &legit_c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, hello(buf, sizeof(buf), "twitter.com"));
        }
    }
    struct sd_engine_stats st = stats(h);
    assert_int_equal(st.flows_active, 2 * N + 1);
    assert_int_equal(st.flows_evicted, 0);

    h->now += 61 * SEC;
    sd_engine_expire(h->e, h->now);
    st = stats(h);
    assert_int_equal(st.flows_active, N + 1); /* the SYN-only flows are gone */
    assert_int_equal(st.flows_expired, N);
    /* The legitimate flow is still known, and still throttled: 30 KB at once
     * from the server overflows the 16000-byte bucket. */
    int drops = 0;
    for (int i = 0; i < 30; i++)
        drops += conv_send(h, &legit_c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg)) == SD_V_DROP;
    assert_true(drops >= 10);

    h->now += 601 * SEC;
    sd_engine_expire(h->e, h->now);
    st = stats(h);
    assert_int_equal(st.flows_active, 0);
    assert_int_equal(st.flows_expired, 2 * N + 1);
    assert_int_equal(st.flows_evicted, 0);
    assert_legit(h, LEGIT_PORT, "throttle", "twitter.com");
    teardown(h);
}

/* ---- overlapping and retransmitted segments ---- */

/*
 * Under observe the client's stream is reassembled, and overlapping bytes
 * keep what arrived first. Two ClientHellos of the same length that differ
 * only in the name (twitter.com, example.org) are mixed:
 *   - 50000: example.org's tail arrives first, out of order; then the whole
 *     twitter.com hello. Only its head fills the hole: the name is
 *     example.org's, and a twitter.com rule does not fire;
 *   - 50001: the whole twitter.com hello arrives first; example.org's
 *     retransmission of the same range changes nothing: twitter.com, throttled;
 *   - 50002: twitter.com in 15 pieces, the odd ones back to front first (7
 *     holes: one more than the reassembler tracks, so one piece is refused),
 *     then the even ones; each piece twice, the second copy carrying
 *     example.org's bytes; then everything again. The first copy wins each
 *     range, the refused piece comes back in the second round: twitter.com;
 *   - 50003: 1-byte segments with conflicting copies and sequence numbers far
 *     outside the stream (before it, past the byte cap): no crash, no
 *     name, pass.
 */
static void conflicting_retransmissions(void **state)
{
    (void)state;
    struct hostile *h = setup("observe", "names tw twitter.com\n"
                                         "rule tw when sni in tw then throttle rate=128kbit burst=16000\n",
                              1024, 16);
    uint8_t tw[4096], ex[4096], seg[1400];
    memset(seg, 0x42, sizeof(seg));
    size_t n = hello(tw, sizeof(tw), "twitter.com");
    assert_int_equal(hello(ex, sizeof(ex), "example.org"), n);
    assert_true(memcmp(tw, ex, n) != 0);
    struct conv c;

    conv_init(h, &c, "10.1.2.3", LEGIT_PORT, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, 60, ex + 60, n - 60);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, tw, n);
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 1, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, 0, tw, n);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, ex, n);
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 2, "203.0.113.5", 443);
    conv_handshake(h, &c);
    enum { PIECES = 15 };
    size_t piece = (n + PIECES - 1) / PIECES;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < PIECES; k++) {
            /* Odd pieces back to front (each a separate hole), then even. */
            int j = k < PIECES / 2 ? PIECES - 2 - 2 * k : 2 * (PIECES - 1 - k);
            size_t off = (size_t)j * piece, len = off < n ? SD_MIN(piece, n - off) : 0;
            if (!len)
                continue;
            conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, (int32_t)off, tw + off, len);
            conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, (int32_t)off, ex + off, len);
        }
    }
    c.seq[0] += (uint32_t)n;
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 3, "203.0.113.5", 443);
    conv_handshake(h, &c);
    for (int i = 0; i < 200; i++) {
        int32_t at = i % 3 == 0 ? -(int32_t)(rnd(h) % 100000) : i % 3 == 1 ? (int32_t)(rnd(h) % 2000000) : i / 3;
        conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, at, (i % 2 ? tw : ex) + (size_t)i % n, 1);
    }
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    finish(h);
    assert_legit(h, LEGIT_PORT, "pass", "example.org");
    assert_int_equal(legit(h, LEGIT_PORT)->dropped[1], 0);
    assert_legit(h, LEGIT_PORT + 1, "throttle", "twitter.com");
    assert_true(legit(h, LEGIT_PORT + 1)->dropped[1] > 0);
    assert_legit(h, LEGIT_PORT + 2, "throttle", "twitter.com");
    assert_legit(h, LEGIT_PORT + 3, "pass", "");
    teardown(h);
}

/* ---- tiny fragments ---- */

/* Feeds the frame of |s| cut into IP fragments of |size| bytes, last first
 * when |reverse|; returns how many were not passed. */
static int feed_fragments(struct hostile *h, const struct sd_gen_pkt *s, size_t size, bool reverse)
{
    static uint8_t bufs[400][128];
    uint8_t *out[400];
    size_t out_len[400];
    for (int i = 0; i < 400; i++)
        out[i] = bufs[i];
    size_t n = sd_gen_frame(h->frame, sizeof(h->frame), s);
    int k = sd_gen_fragment(h->frame, n, 101, size, out, out_len, sizeof(bufs[0]), 400);
    assert_true(k > 1);
    int not_passed = 0;
    for (int i = 0; i < k; i++) {
        int j = reverse ? k - 1 - i : i;
        not_passed += feed_frame(h, out[j], out_len[j]) != SD_V_PASS;
    }
    return not_passed;
}

/*
 * ClientHellos for twitter.com cut into 8- and 16-byte IPv4 and IPv6
 * fragments, in order and reversed, under tw22-block (which blocks
 * twitter.com with RSTs), plus 20,000 stray non-first fragments of random
 * datagrams. Fragments pass (the engine does not reassemble IP: the first
 * fragment's 8 bytes do not even hold the TCP header), create no flows,
 * and the fragmented hellos evade, as they did on the 2022 box (spec 4.4):
 * their flows pass, while an unfragmented twitter.com hello in the same
 * traffic is blocked (its server packets become RSTs).
 * The preset's fragment buffering (spec 4.4) is switched off here: with it,
 * 8-byte fragments make more than 45 pieces, which the box does not handle
 * (test_behaviour.c s44_fragments covers buffering).
 */
static void tiny_fragments(void **state)
{
    (void)state;
    struct hostile *h = setup("tw22-block", "set frag.buffer off\n", 1024, 0);
    uint8_t buf[4096], seg[1000], junk[64];
    memset(seg, 0x42, sizeof(seg));
    size_t n = hello(buf, sizeof(buf), "twitter.com");
    static const char *const clients[2] = {"10.1.2.3", "fd00::3"};
    static const char *const servers[2] = {"203.0.113.5", "2001:db8::5"};
    for (int i = 0; i < 4; i++) {
        struct conv c;
        conv_init(h, &c, clients[i / 2], (uint16_t)(LEGIT_PORT + i), servers[i / 2], 443);
        conv_handshake(h, &c);
        struct sd_gen_pkt s = c.tmpl;
        s.tcp_flags = SD_TCP_PSH | SD_TCP_ACK;
        s.seq = c.seq[0];
        s.ack = c.seq[1];
        s.payload = buf;
        s.payload_len = n;
        assert_int_equal(feed_fragments(h, &s, i % 2 ? 16 : 8, i % 2), 0);
        c.seq[0] += (uint32_t)n;
        for (int k = 0; k < 5; k++)
            assert_int_equal(conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg)), SD_V_PASS);
    }
    uint64_t created = stats(h).flows_created;
    for (int i = 0; i < 20000; i++) {
        /* A non-first fragment: offset 8..65528, random id and addresses. */
        uint8_t *ip = h->frame;
        uint64_t r = rnd(h);
        memset(ip, 0, 20);
        ip[0] = 0x45;
        sd_put16be(ip + 2, 20 + sizeof(junk));
        sd_put16be(ip + 4, (uint16_t)r);
        sd_put16be(ip + 6, (uint16_t)(0x2000 | (1 + (r >> 16) % 8190)));
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, &r, 8);
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (uint8_t)rnd(h);
        memcpy(ip + 20, junk, sizeof(junk));
        sd_put16be(ip + 10, sd_csum_fold(sd_csum_add(0, ip, 20)));
        assert_int_equal(feed_frame(h, ip, 20 + sizeof(junk)), SD_V_PASS);
    }
    assert_int_equal(stats(h).flows_created, created);
    struct conv c;
    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 4, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, n);
    for (int k = 0; k < 5; k++)
        assert_int_equal(conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg)), SD_V_REPLACE);
    finish(h);
    for (int i = 0; i < 4; i++)
        assert_legit(h, (uint16_t)(LEGIT_PORT + i), "pass", "");
    assert_legit(h, LEGIT_PORT + 4, "block", "twitter.com");
    assert_int_equal(legit(h, LEGIT_PORT + 4)->dropped[1], 5);
    teardown(h);
}

/* ---- ClientHellos with lying lengths ---- */

enum lie {
    L_REC_LONG, L_REC_MAX, L_REC_SHORT, L_HS_LONG, L_HS_MAX, L_HS_SHORT, L_EXTS_LONG, L_EXTS_MAX,
    L_SNI_EXT_LONG, L_SNI_LIST_LONG, L_NAME_LONG, L_NAME_MAX, L_NAME_ZERO, L_SID_MAX, L_CS_MAX, L_COUNT
};

/* Offsets of the length fields of a generated hello record. */
struct hello_map {
    size_t sid, cs, exts, sni_ext, name;
};

static struct hello_map map_hello(const uint8_t *rec, size_t n)
{
    struct hello_map m;
    m.sid = 5 + 4 + 2 + 32;
    m.cs = m.sid + 1 + rec[m.sid];
    size_t comp = m.cs + 2 + sd_rd16be(rec + m.cs);
    m.exts = comp + 1 + rec[comp];
    size_t p = m.exts + 2, end = p + sd_rd16be(rec + m.exts);
    assert_true(end <= n);
    m.sni_ext = 0;
    while (p + 4 <= end && !m.sni_ext) {
        if (sd_rd16be(rec + p) == 0)
            m.sni_ext = p;
        p += 4 + sd_rd16be(rec + p + 2);
    }
    assert_true(m.sni_ext != 0);
    m.name = m.sni_ext + 4 + 2 + 1; /* type, ext len, list len, name type: then the name length */
    return m;
}

static void add16(uint8_t *p, int delta)
{
    sd_put16be(p, (uint16_t)(sd_rd16be(p) + delta));
}

static size_t lying_hello(uint8_t *buf, size_t cap, enum lie lie)
{
    size_t n = hello(buf, cap, "twitter.com");
    struct hello_map m = map_hello(buf, n);
    uint32_t hs = sd_rd24be(buf + 6);
    switch (lie) {
    case L_REC_LONG: add16(buf + 3, 1000); break;
    case L_REC_MAX: sd_put16be(buf + 3, 0xffff); break;
    case L_REC_SHORT: add16(buf + 3, -20); break;
    case L_HS_LONG: hs += 100; break;
    case L_HS_MAX: hs = 0xffffff; break;
    case L_HS_SHORT: hs -= 30; break;
    case L_EXTS_LONG: add16(buf + m.exts, 50); break;
    case L_EXTS_MAX: sd_put16be(buf + m.exts, 0xffff); break;
    case L_SNI_EXT_LONG: add16(buf + m.sni_ext + 2, 9); break;
    case L_SNI_LIST_LONG: add16(buf + m.sni_ext + 4, 20); break;
    case L_NAME_LONG: add16(buf + m.name, 5); break;
    case L_NAME_MAX: sd_put16be(buf + m.name, 0xffff); break;
    case L_NAME_ZERO: sd_put16be(buf + m.name, 0); break;
    case L_SID_MAX: buf[m.sid] = 0xff; break;
    case L_CS_MAX: sd_put16be(buf + m.cs, 0xfffe); break;
    case L_COUNT: break;
    }
    buf[6] = (uint8_t)(hs >> 16);
    buf[7] = (uint8_t)(hs >> 8);
    buf[8] = (uint8_t)hs;
    return n;
}

/*
 * Fifteen kinds of lying length fields in a twitter.com ClientHello -- the
 * record, handshake, session id, cipher suites, extensions, server_name
 * extension, list and name lengths, too long, too short, maximal -- each
 * sent as one segment on its own flow, under the three ways of finding a
 * hello (strict 2021, hello-gathering 2024, stream 2026/observe), followed
 * by an honest twitter.com flow and an example.org flow. Whatever the lie,
 * a reported name is exactly twitter.com (never bytes from beyond the name),
 * a name whose length runs past its extension is never accepted, and the
 * honest flows after the lies get throttle and pass.
 */
static void lying_hello_lengths(void **state)
{
    (void)state;
    static const char *const modes[3] = {"strict", "hello", "stream"};
    for (int mi = 0; mi < 3; mi++) {
        char extra[300];
        snprintf(extra, sizeof(extra), "set inspect.tls %s\nset reasm.bytes 16384\n", modes[mi]);
        struct hostile *h = setup("tw21-exact", extra, 1024, 64);
        uint8_t buf[4096], seg[1400];
        memset(seg, 0x42, sizeof(seg));
        for (int lie = 0; lie <= L_COUNT + 1; lie++) {
            struct conv c;
            conv_init(h, &c, "10.1.2.3", (uint16_t)(LEGIT_PORT + lie), "203.0.113.5", 443);
            conv_handshake(h, &c);
            size_t n = lie < L_COUNT    ? lying_hello(buf, sizeof(buf), (enum lie)lie)
                       : lie == L_COUNT ? hello(buf, sizeof(buf), "twitter.com")
                                        : hello(buf, sizeof(buf), "example.org");
            conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, n);
            for (int i = 0; i < 20; i++)
                conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));
            h->now += SEC;
        }
        finish(h);
        for (int lie = 0; lie < L_COUNT; lie++) {
            const struct legit *l = legit(h, (uint16_t)(LEGIT_PORT + lie));
            print_message("%-6s lie %2d: %-8s sni '%s'\n", modes[mi], lie, l->action, l->sni);
            assert_true(!strcmp(l->sni, "") || !strcmp(l->sni, "twitter.com"));
            assert_true(!strcmp(l->action, "pass") || !strcmp(l->action, "throttle"));
            if (!strcmp(l->action, "throttle"))
                assert_string_equal(l->sni, "twitter.com");
            if (lie == L_NAME_LONG || lie == L_NAME_MAX || lie == L_SNI_EXT_LONG)
                assert_legit(h, (uint16_t)(LEGIT_PORT + lie), "pass", "");
        }
        assert_legit(h, LEGIT_PORT + L_COUNT, "throttle", "twitter.com");
        assert_true(legit(h, LEGIT_PORT + L_COUNT)->dropped[1] > 0);
        assert_legit(h, LEGIT_PORT + L_COUNT + 1, "pass", "example.org");
        assert_int_equal(legit(h, LEGIT_PORT + L_COUNT + 1)->dropped[1], 0);
        teardown(h);
    }
}

/* ---- reassembly slots held by an attacker ---- */

/*
 * Stream reassembly (observe plus a twitter.com throttle rule) with 16
 * reassembly slots. 100 attacker flows each send the first 60 bytes of a
 * hello whose record claims 16000 bytes, and then nothing: the first 16 hold
 * every slot, waiting. A twitter.com hello in one segment is still found
 * (the segment is inspected on its own when no slot is free) and throttled;
 * a hello split over two segments needs a slot and, while none is free,
 * passes -- the degradation is an evasion, not a crash and not a wrong
 * block. After timeout.tcp the attackers' flows are released and a split
 * hello is reassembled again.
 */
static void reasm_slots_exhausted(void **state)
{
    (void)state;
    struct hostile *h = setup("observe", "names tw twitter.com\n"
                                         "rule tw when sni in tw then throttle rate=128kbit burst=16000\n",
                              1024, 16);
    uint8_t buf[4096], seg[1400], bait[60];
    memset(seg, 0x42, sizeof(seg));
    size_t n = hello(buf, sizeof(buf), "twitter.com");
    memcpy(bait, buf, sizeof(bait));
    sd_put16be(bait + 3, 16000);
    for (int i = 0; i < 100; i++) {
        struct conv c;
        conv_init(h, &c, "10.66.0.1", (uint16_t)(3000 + i), "198.51.100.7", 443);
        conv_handshake(h, &c);
        conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, bait, sizeof(bait));
    }
    assert_true(stats(h).reasm_exhausted >= 84);

    struct conv c;
    conv_init(h, &c, "10.1.2.3", LEGIT_PORT, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, n);
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 1, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, 100);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf + 100, n - 100);
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));

    h->now += 601 * SEC;
    sd_engine_expire(h->e, h->now);
    uint64_t exhausted = stats(h).reasm_exhausted;
    conv_init(h, &c, "10.1.2.3", LEGIT_PORT + 2, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf, 100);
    conv_send(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, buf + 100, n - 100);
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));
    assert_int_equal(stats(h).reasm_exhausted, exhausted);

    finish(h);
    assert_legit(h, LEGIT_PORT, "throttle", "twitter.com");
    assert_legit(h, LEGIT_PORT + 1, "pass", NULL);
    assert_legit(h, LEGIT_PORT + 2, "throttle", "twitter.com");
    assert_true(legit(h, LEGIT_PORT + 2)->dropped[1] > 0);
    teardown(h);
}

/* ---- retransmission storms ---- */

/*
 * Under stream reassembly a ClientHello of 15 KB (a padding extension)
 * arrives in two halves; between them the client retransmits the first 100
 * bytes 20,000 times, and as often a piece of the second half past a hole.
 * These add no byte to the stream in order, so they
 * must cost no parsing and leave no trace: the explain trace of the flow
 * stays short (before the fix each one re-parsed the 7 KB gathered so far
 * and added a "waiting for more" line: 1.3 MB of trace), and the hello is
 * still found when the second half comes.
 */
static void retransmission_storm(void **state)
{
    (void)state;
    struct hostile *h = setup_ex("observe", "names tw twitter.com\n"
                                            "rule tw when sni in tw then throttle rate=128kbit burst=16000\n",
                                 64, 4, true);
    static uint8_t big[20000];
    uint8_t seg[1400];
    memset(seg, 0x42, sizeof(seg));
    struct sd_gen_hello g = {.sni = "twitter.com", .padding = 15000};
    size_t n = sd_gen_client_hello_record(big, sizeof(big), &g), half = 7000;
    assert_true(n > 15000);
    struct conv c;
    conv_init(h, &c, "10.1.2.3", LEGIT_PORT, "203.0.113.5", 443);
    conv_handshake(h, &c);
    conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, 0, big, half);
    for (int i = 0; i < 20000; i++) {
        h->now += 10 * US;
        conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, 0, big, 100);
        /* and a piece past a hole, again and again */
        conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, (int32_t)half + 1000, big + half + 1000, 100);
    }
    conv_at(h, &c, 0, SD_TCP_PSH | SD_TCP_ACK, (int32_t)half, big + half, n - half);
    c.seq[0] += (uint32_t)n;
    for (int i = 0; i < 20; i++)
        conv_send(h, &c, 1, SD_TCP_PSH | SD_TCP_ACK, seg, sizeof(seg));
    finish(h);
    assert_legit(h, LEGIT_PORT, "throttle", "twitter.com");
    const struct legit *l = legit(h, LEGIT_PORT);
    print_message("storm: trace of %zu bytes for %llu client packets\n", l->why_len,
                  (unsigned long long)l->packets[0]);
    assert_true(l->packets[0] > 40000);
    assert_true(l->why_len < 4096);
    teardown(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(syn_flood_keeps_verdicts),
        cmocka_unit_test(inspected_flood_keeps_verdicts),
        cmocka_unit_test(half_open_flows_expire),
        cmocka_unit_test(conflicting_retransmissions),
        cmocka_unit_test(tiny_fragments),
        cmocka_unit_test(lying_hello_lengths),
        cmocka_unit_test(reasm_slots_exhausted),
        cmocka_unit_test(retransmission_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
