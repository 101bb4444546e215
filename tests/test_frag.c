/*
 * test_frag.c - the fragment pool's size (issue 8): sized from the queues,
 * never smaller than one packet of the most fragments, exhausted as before;
 * an engine allocates it only once a policy holds fragments, including a
 * policy that arrives by reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "frag.h"
#include "gen.h"
#include "pkt.h"
#include "policy.h"
#include "tpolicy.h"

#define SEC 1000000000ULL

enum { MAXF = 64 };

/* The fragments of one UDP datagram of |payload| bytes from 10.0.0.2 with IP
 * id |id|, cut every |size| bytes; decoded into pkt[], frames kept in buf[]. */
struct frags {
    uint8_t buf[MAXF][1600];
    size_t len[MAXF];
    struct sd_pkt pkt[MAXF];
    int n;
};

static void make_frags(struct frags *fr, uint16_t id, size_t payload, size_t size)
{
    static uint8_t data[1400];
    uint8_t frame[1600];
    struct sd_gen_pkt u = {.linktype = 1, .proto = 17, .sport = 5000, .dport = 6000, .ttl = 60, .ip_id = id,
                           .payload = data, .payload_len = payload};
    u.src = sd_gen_addr("10.0.0.2");
    u.dst = sd_gen_addr("203.0.113.5");
    size_t fl = sd_gen_frame(frame, sizeof(frame), &u);
    assert_true(fl > 0);
    uint8_t *out[MAXF];
    for (int i = 0; i < MAXF; i++)
        out[i] = fr->buf[i];
    fr->n = sd_gen_fragment(frame, fl, 1, size, out, fr->len, sizeof(fr->buf[0]), MAXF);
    assert_true(fr->n > 1);
    for (int i = 0; i < fr->n; i++)
        assert_int_equal(sd_pkt_decode(&fr->pkt[i], SD_DLT_EN10MB, fr->buf[i], fr->len[i]), 0);
}

static int released;

static void count_emit(void *arg, const uint8_t *l3, size_t len)
{
    (void)arg;
    (void)l3;
    (void)len;
    released++;
}

/* One queue, the pool sized from it: a packet of 45 fragments still fits. */
static void test_pool_from_queues(void **state)
{
    (void)state;
    static struct frags fr;
    make_frags(&fr, 7, 1000, 24);
    assert_true(fr.n >= 40 && fr.n <= 45);
    struct sd_frag *f = sd_frag_new(1, 0);
    assert_non_null(f);
    uint32_t q = UINT32_MAX;
    for (int i = 0; i < fr.n - 1; i++)
        assert_int_equal(sd_frag_add(f, &fr.pkt[i], SEC, 45, false, &q), SD_FRAG_HELD);
    assert_int_equal(sd_frag_add(f, &fr.pkt[fr.n - 1], SEC, 45, false, &q), SD_FRAG_RELEASE);
    released = 0;
    sd_frag_release(f, q, count_emit, NULL);
    assert_int_equal(released, fr.n);
    /* The queue and its chunks are free again. */
    for (int i = 0; i < fr.n - 1; i++)
        assert_int_equal(sd_frag_add(f, &fr.pkt[i], 2 * SEC, 45, false, &q), SD_FRAG_HELD);
    sd_frag_free(f);
}

/* More packets than queues: the extra one is not buffered; an explicit pool
 * that runs dry drops the set, as before. */
static void test_queues_and_exhaustion(void **state)
{
    (void)state;
    static struct frags a, b, c;
    make_frags(&a, 1, 200, 64);
    make_frags(&b, 2, 200, 64);
    make_frags(&c, 3, 200, 64);
    struct sd_frag *f = sd_frag_new(2, 0);
    assert_non_null(f);
    uint32_t q;
    assert_int_equal(sd_frag_add(f, &a.pkt[0], SEC, 45, false, &q), SD_FRAG_HELD);
    assert_int_equal(sd_frag_add(f, &b.pkt[0], SEC, 45, false, &q), SD_FRAG_HELD);
    assert_int_equal(sd_frag_add(f, &c.pkt[0], SEC, 45, false, &q), SD_FRAG_PASS);
    sd_frag_free(f);

    static struct frags big;
    make_frags(&big, 4, 1000, 96); /* 11 fragments */
    f = sd_frag_new(1, 4);
    assert_non_null(f);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sd_frag_add(f, &big.pkt[i], SEC, 45, false, &q), SD_FRAG_HELD);
    assert_int_equal(sd_frag_add(f, &big.pkt[4], SEC, 45, false, &q), SD_FRAG_DROP);
    sd_frag_free(f);
    assert_null(sd_frag_new(0, 0));
}

static void on_release(void *arg, const uint8_t *l3, size_t len, uint64_t ts_ns)
{
    (void)l3;
    (void)len;
    (void)ts_ns;
    (*(int *)arg)++;
}

/* Fragments pass unheld while the policy does not buffer them; a reload that
 * turns buffering on gets the pool, sized from frag_slots. */
static void test_engine_pool_on_reload(void **state)
{
    (void)state;
    struct sd_policy *off = tpolicy("names bad blocked.test\nrule t when sni in bad then drop\n");
    struct sd_policy *on = tpolicy("set frag.buffer on\nnames bad blocked.test\nrule t when sni in bad then drop\n");
    int got = 0;
    struct sd_engine_config cfg = {.max_flows = 64, .reasm_slots = 2, .frag_slots = 2, .on_release = on_release,
                                   .arg = &got};
    static struct frags fr;
    make_frags(&fr, 9, 300, 64);
    struct sd_verdict v;
    uint64_t t = SEC;

    struct sd_engine *e = sd_engine_new(off, &cfg);
    assert_non_null(e);
    for (int i = 0; i < fr.n; i++) {
        sd_engine_packet(e, &fr.pkt[i], t += SEC / 100, &v);
        assert_int_equal(v.kind, SD_V_PASS);
    }
    sd_engine_set_policy(e, on);
    for (int i = 0; i < fr.n; i++) {
        sd_engine_packet(e, &fr.pkt[i], t += SEC / 100, &v);
        assert_int_equal(v.kind, SD_V_HOLD);
    }
    assert_int_equal(got, fr.n);
    struct sd_engine_stats st;
    sd_engine_get_stats(e, &st);
    assert_int_equal(st.frag_exhausted, 0);
    sd_engine_free(e);

    /* Created with buffering on: the same, from the first packet. */
    got = 0;
    e = sd_engine_new(on, &cfg);
    assert_non_null(e);
    for (int i = 0; i < fr.n; i++) {
        sd_engine_packet(e, &fr.pkt[i], t += SEC / 100, &v);
        assert_int_equal(v.kind, SD_V_HOLD);
    }
    assert_int_equal(got, fr.n);
    sd_engine_free(e);
    sd_policy_free(off);
    sd_policy_free(on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_from_queues),
        cmocka_unit_test(test_queues_and_exhaustion),
        cmocka_unit_test(test_engine_pool_on_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
