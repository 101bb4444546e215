/*
 * test_prefetch.c - sd_engine_prefetch changes nothing but the cache.
 *
 * A generated mix (200 interleaved TLS connections under tw21-exact, one in
 * five to twitter.com and so throttled, plus DNS-like UDP and a few flows that
 * end and reopen) goes through a fresh engine once without announcements and
 * then with announcements in several patterns: in order 1 to 8 packets
 * ahead, more than the engine keeps, skipping some, announcing packets that
 * never come, and out of order. Every verdict and every statistic must be the
 * same as without them; a stale announced hash would send a packet to
 * another flow, or to none, and change both.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <stdlib.h>
#include <string.h>

#include "clipolicy.h"
#include "engine.h"
#include "gen.h"
#include "pkt.h"
#include "policy.h"

enum { FLOWS = 200, DATA = 24, FRAME = 2048, MAXPKT = FLOWS * (DATA + 4) + 400 };

struct mix {
    uint8_t (*frame)[FRAME];
    size_t len[MAXPKT];
    uint64_t ts[MAXPKT];
    struct sd_pkt pkt[MAXPKT];
    int n;
};

static void add(struct mix *m, struct sd_gen_pkt *s, uint64_t ts)
{
    assert_true(m->n < MAXPKT);
    m->len[m->n] = sd_gen_frame(m->frame[m->n], FRAME, s);
    assert_true(m->len[m->n] > 0);
    assert_int_equal(sd_pkt_decode(&m->pkt[m->n], 1, m->frame[m->n], m->len[m->n]), 0);
    m->ts[m->n++] = ts;
}

static void build(struct mix *m)
{
    static uint8_t hello[2][1024], data[1400];
    size_t hl[2];
    struct sd_gen_hello h = {.sni = "example.org", .alpn = {"h2", NULL}};
    hl[0] = sd_gen_client_hello_record(hello[0], sizeof(hello[0]), &h);
    h.sni = "abs.twimg.com";
    hl[1] = sd_gen_client_hello_record(hello[1], sizeof(hello[1]), &h);
    memset(data, 0x5a, sizeof(data));
    m->n = 0;
    uint64_t t = 1618056000ull * 1000000000ull;
    for (int step = 0; step < DATA + 4; step++) {
        for (int f = 0; f < FLOWS; f++, t += 20000) {
            struct sd_gen_pkt s = {.linktype = 1, .proto = 6, .sport = (uint16_t)(20000 + f), .dport = 443};
            s.src.family = s.dst.family = 4;
            memcpy(s.src.a, (uint8_t[4]){10, 0, (uint8_t)(f >> 8), (uint8_t)f}, 4);
            memcpy(s.dst.a, (uint8_t[4]){104, 244, 42, (uint8_t)(f % 7)}, 4);
            bool s2c = step == 1 || step >= 4;
            if (s2c) {
                struct sd_gen_addr a = s.src;
                s.src = s.dst, s.dst = a, s.sport = 443, s.dport = (uint16_t)(20000 + f);
            }
            s.tcp_flags = step == 0 ? SD_TCP_SYN : step == 1 ? SD_TCP_SYN | SD_TCP_ACK : SD_TCP_ACK | SD_TCP_PSH;
            s.seq = 1000u + (uint32_t)step * 1400u;
            if (step == 3) {
                s.payload = hello[f % 5 == 0];
                s.payload_len = hl[f % 5 == 0];
            } else if (step >= 4) {
                s.payload = data;
                s.payload_len = sizeof(data);
            }
            add(m, &s, t);
        }
        struct sd_gen_pkt u = {.linktype = 1, .proto = 17, .sport = (uint16_t)(40000 + step), .dport = 53};
        u.src.family = u.dst.family = 4;
        memcpy(u.src.a, (uint8_t[4]){10, 9, 9, 9}, 4);
        memcpy(u.dst.a, (uint8_t[4]){77, 88, 8, 8}, 4);
        u.payload = data;
        u.payload_len = 40;
        add(m, &u, t);
    }
}

struct outcome {
    uint8_t kind[MAXPKT];
    struct sd_engine_stats st;
};

/* Which packet to announce as the k-th announcement before packet i of n
 * (-1: none this time; -2: no more before packet i). */
typedef int announce_fn(int i, int k, int n, int param);

static void run(const struct mix *m, const struct sd_policy *pol, announce_fn *announce, int param, struct outcome *o)
{
    struct sd_engine_config cfg = {.max_flows = 150}; /* evictions too */
    struct sd_engine *e = sd_engine_new(pol, &cfg);
    assert_non_null(e);
    for (int i = 0; i < m->n; i++) {
        for (int k = 0; announce; k++) {
            int a = announce(i, k, m->n, param);
            if (a == -2)
                break;
            if (a >= 0)
                sd_engine_prefetch(e, &m->pkt[a]);
        }
        struct sd_verdict v;
        sd_engine_packet(e, &m->pkt[i], m->ts[i], &v);
        o->kind[i] = v.kind;
    }
    sd_engine_get_stats(e, &o->st);
    sd_engine_free(e);
}

/* Packets 0..ahead before the first, then packet i+ahead before packet i. */
static int in_order(int i, int k, int n, int ahead)
{
    int a = (i == 0 ? 0 : i + ahead) + k;
    return a > i + ahead || a >= n ? -2 : a;
}

/* Three ahead, but every third announcement left out. */
static int skipping(int i, int k, int n, int param)
{
    (void)param;
    if (k > 0)
        return -2;
    return i + 3 < n && i % 3 != 0 ? i + 3 : -1;
}

/* An unrelated packet that never comes in that place, then the right one. */
static int phantom(int i, int k, int n, int param)
{
    (void)param;
    if (k > 1)
        return -2;
    return k == 0 ? (i * 7919 + 13) % n : i;
}

/* Pairs announced back to front. */
static int reversed(int i, int k, int n, int param)
{
    (void)param;
    if (k > 0)
        return -2;
    int a = i % 2 ? i + 1 : i + 3;
    return a < n ? a : -1;
}

static void announcements_change_nothing(void **state)
{
    (void)state;
    struct mix *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    m->frame = calloc(MAXPKT, FRAME);
    assert_non_null(m->frame);
    build(m);
    struct sd_clipolicy cp = {.preset = "tw21-exact"};
    struct sd_policy *pol = sd_clipolicy_build(&cp, "test_prefetch", "tw21-exact");
    assert_non_null(pol);
    struct outcome *base = calloc(1, sizeof(*base)), *o = calloc(1, sizeof(*o));
    assert_non_null(base);
    assert_non_null(o);
    run(m, pol, NULL, 0, base);
    assert_true(base->st.dropped > 0);   /* the throttled flows were policed */
    assert_true(base->st.flows_evicted > 0);
    for (int ahead = 1; ahead <= 10; ahead += 3) { /* 10: more than the engine keeps */
        run(m, pol, in_order, ahead, o);
        assert_memory_equal(o->kind, base->kind, (size_t)m->n);
        assert_memory_equal(&o->st, &base->st, sizeof(o->st));
    }
    announce_fn *const other[] = {skipping, phantom, reversed};
    for (size_t p = 0; p < sizeof(other) / sizeof(other[0]); p++) {
        memset(o, 0, sizeof(*o));
        run(m, pol, other[p], 0, o);
        assert_memory_equal(o->kind, base->kind, (size_t)m->n);
        assert_memory_equal(&o->st, &base->st, sizeof(o->st));
    }
    free(base);
    free(o);
    sd_policy_free(pol);
    free(m->frame);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announcements_change_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
