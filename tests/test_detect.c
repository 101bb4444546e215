/*
 * test_detect.c - the detector's judgement on synthetic flows (no network):
 * a policed A against fast controls (throttled, policing, the rate
 * estimate's arithmetic), equal flows (not throttled), a reset handshake, a
 * freeze of every flow (cdn25), nothing reachable, handshake timeouts with
 * quick and with slow controls, a starved A on a slow shared path (neither
 * blocked nor throttled), the gray zone, random loss, a TLS-wide limit;
 * the made-up control name; and one real run on loopback against an
 * in-process slowdown serve (the transfers start after every handshake).
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "detect.h"
#include "mono.h"
#include "serve.h"

enum { BINS = 1200 };
static const uint64_t BIN = 10ull * SD_NS_PER_MS, WARM = 3ull * SD_NS_PER_S, T0 = 5ull * SD_NS_PER_S;

struct store {
    uint64_t bins[SD_DETECT_ROLES][BINS];
    uint32_t rtt[SD_DETECT_ROLES][BINS], lost[SD_DETECT_ROLES][BINS], segs[SD_DETECT_ROLES][BINS];
};
static struct store st;
static struct sd_detect_dir dir;

/* A flow that ran its 12 s, with no bytes yet. */
static struct sd_detect_flow *flow(int k)
{
    struct sd_detect_flow *f = &dir.f[k];
    memset(f, 0, sizeof(*f));
    memset(st.bins[k], 0, sizeof(st.bins[k]));
    memset(st.rtt[k], 0, sizeof(st.rtt[k]));
    memset(st.lost[k], 0, sizeof(st.lost[k]));
    memset(st.segs[k], 0, sizeof(st.segs[k]));
    f->used = true;
    f->bins = st.bins[k];
    f->rtt_us = st.rtt[k];
    f->lost = st.lost[k];
    f->segs = st.segs[k];
    f->n = BINS;
    f->r.stage = SD_FETCH_TRANSFER;
    f->r.end = SD_FETCH_DONE;
    f->r.start_ns = T0 - 20 * SD_NS_PER_MS;
    f->r.connect_ns = 1 * SD_NS_PER_MS;
    f->r.handshake_ns = 3 * SD_NS_PER_MS;
    f->r.transfer_start_ns = T0;
    f->r.transfer_ns = BINS * BIN;
    f->r.tcp.mss = 1448;
    f->r.tcp.min_rtt_us = 1000;
    return f;
}

/* Fills a flow with |kbps| of payload, evenly, with |jitter| (0..1) of seeded noise per bin. */
static void fill(struct sd_detect_flow *f, double kbps, double jitter, uint64_t seed)
{
    double per_bin = kbps * 1000 / 8 * ((double)BIN / 1e9);
    uint64_t x = seed;
    for (uint32_t i = 0; i < f->n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(x >> 11) / 9007199254740992.0;
        f->bins[i] = (uint64_t)(per_bin * (1 + jitter * (2 * u - 1)));
        f->r.bytes += f->bins[i];
        f->segs[i] = (uint32_t)(f->r.bytes / 1448);
    }
}

/* The 2021 policer at 128 kbit/s as an upload sees it: a 16 KB burst each
 * second, silence in between, RTT flat, a third of the segments resent. */
static void policed(struct sd_detect_flow *f)
{
    uint32_t segs = 0, lost = 0;
    for (uint32_t i = 0; i < f->n; i++) {
        int phase = (int)(i % 100);
        f->bins[i] = phase < 10 ? 1600 : 0;
        f->r.bytes += f->bins[i];
        if (phase < 10) {
            segs += 2;
            lost += phase % 5 == 0;
            f->rtt_us[i] = 1200;
        }
        f->lost[i] = lost;
        f->segs[i] = segs;
    }
}

static void judge(uint8_t d)
{
    dir.measured = true;
    dir.dir = d;
    sd_detect_judge(&dir, BIN, WARM, false);
}

static void test_policed(void **state)
{
    (void)state;
    policed(flow(SD_DETECT_A));
    fill(flow(SD_DETECT_B), 100000, 0.3, 1);
    fill(flow(SD_DETECT_C), 200000, 0.3, 2);
    judge(SD_FETCH_UP);
    assert_int_equal(dir.verdict, SD_VERDICT_THROTTLED);
    assert_int_equal(dir.kind, SD_KIND_POLICING);
    assert_int_equal(dir.scope, SD_SCOPE_NAME);
    assert_int_equal(dir.control, SD_DETECT_B); /* the slower control */
    assert_float_equal(dir.kbps, 128.0, 0.5);
    assert_float_equal(dir.control_kbps, 100000, 1500);
    assert_float_equal(dir.ratio, 0.00128, 0.0001);
    assert_true(dir.ks.p_lt < 1e-9);
    /* IP bytes: payload slope x (1448 + 52) / 1448 x (1 + 22 / 16384). */
    double slope = dir.f[SD_DETECT_A].st.slope_kbps;
    assert_float_equal(slope, 128.0, 2.0);
    assert_float_equal(dir.rate_estimate_kbps, slope * 1500.0 / 1448.0 * (1 + 22.0 / 16384), 1e-6);
    assert_non_null(strstr(dir.evidence, "A: policing"));
}

static void test_equal(void **state)
{
    (void)state;
    fill(flow(SD_DETECT_A), 50000, 0.4, 3);
    fill(flow(SD_DETECT_B), 52000, 0.4, 4);
    fill(flow(SD_DETECT_C), 60000, 0.4, 5);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_NOT_THROTTLED);
    assert_int_equal(dir.kind, SD_KIND_NONE);
    assert_true(dir.ratio > 0.9 && dir.ratio < 1.0);
    assert_float_equal(dir.rate_estimate_kbps, -1, 0);
}

static void test_rst(void **state)
{
    (void)state;
    struct sd_detect_flow *a = flow(SD_DETECT_A);
    a->r.stage = SD_FETCH_HANDSHAKE;
    a->r.end = SD_FETCH_RST;
    a->r.transfer_ns = 0;
    a->n = 0;
    fill(flow(SD_DETECT_B), 100000, 0.2, 6);
    fill(flow(SD_DETECT_C), 100000, 0.2, 7);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_BLOCKED);
    assert_int_equal(dir.kind, SD_KIND_RST);
    assert_int_equal(dir.scope, SD_SCOPE_NAME);
    assert_non_null(strstr(dir.evidence, "reset during the TLS handshake"));
}

/* cdn25: every flow froze after ~16 KB. */
static void test_freeze_all(void **state)
{
    (void)state;
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        struct sd_detect_flow *f = flow(k);
        f->bins[0] = 15000;
        f->r.bytes = 15000;
        f->r.tcp.bytes_in = 16597;
    }
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_BLOCKED);
    assert_int_equal(dir.kind, SD_KIND_FREEZE);
    assert_int_equal(dir.scope, SD_SCOPE_ALL);
    assert_int_equal(dir.f[SD_DETECT_A].fail_bytes, 16597);
    /* The same freeze of A alone, with busy controls: the name. */
    fill(flow(SD_DETECT_B), 100000, 0.2, 8);
    fill(flow(SD_DETECT_C), 100000, 0.2, 9);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_BLOCKED);
    assert_int_equal(dir.scope, SD_SCOPE_NAME);
}

static void test_unreachable(void **state)
{
    (void)state;
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        struct sd_detect_flow *f = flow(k);
        f->r.stage = SD_FETCH_CONNECT;
        f->r.end = SD_FETCH_TIMEOUT;
        f->r.transfer_ns = 0;
        f->n = 0;
    }
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_INCONCLUSIVE);
    assert_non_null(strstr(dir.evidence, "unreachable"));
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    struct sd_detect_flow *a = flow(SD_DETECT_A);
    a->r.stage = SD_FETCH_HANDSHAKE;
    a->r.end = SD_FETCH_TIMEOUT;
    a->n = 0;
    fill(flow(SD_DETECT_B), 20000, 0.2, 10);
    fill(flow(SD_DETECT_C), 20000, 0.2, 11);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_BLOCKED);
    assert_int_equal(dir.kind, SD_KIND_HS_TIMEOUT);
    /* On a crawling path where B's handshake took 3 s: no verdict. */
    dir.f[SD_DETECT_B].r.handshake_ns = 3ull * SD_NS_PER_S;
    fill(flow(SD_DETECT_C), 60, 0.5, 12);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_INCONCLUSIVE);
    assert_int_equal(dir.kind, SD_KIND_NONE);
}

/* A starved on a bloated 1 Mbit/s path: silent for its last 7 s, while the
 * controls crawl. Neither a freeze nor a throttle. */
static void test_starved(void **state)
{
    (void)state;
    struct sd_detect_flow *a = flow(SD_DETECT_A);
    for (int i = 0; i < 500; i += 7) {
        a->bins[i] = 1448 * 3;
        a->r.bytes += a->bins[i];
    }
    fill(flow(SD_DETECT_B), 60, 1.0, 13);
    fill(flow(SD_DETECT_C), 90, 1.0, 14);
    judge(SD_FETCH_DOWN);
    assert_int_not_equal(dir.verdict, SD_VERDICT_BLOCKED);
    assert_int_not_equal(dir.verdict, SD_VERDICT_THROTTLED);
    assert_non_null(strstr(dir.evidence, "the path, not a freeze"));
}

/* A at a fifth of the controls: the gray zone. */
static void test_gray(void **state)
{
    (void)state;
    fill(flow(SD_DETECT_A), 20000, 0.05, 15);
    fill(flow(SD_DETECT_B), 100000, 0.05, 16);
    fill(flow(SD_DETECT_C), 100000, 0.05, 17);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_INCONCLUSIVE);
    assert_non_null(strstr(dir.evidence, "gray zone"));
}

/* yt24 as a receiver sees it: a plateau at 4 Mbit/s with most segments out of order. */
static void test_random_loss(void **state)
{
    (void)state;
    struct sd_detect_flow *a = flow(SD_DETECT_A);
    fill(a, 4000, 0.3, 18);
    for (uint32_t i = 0; i < a->n; i++)
        a->lost[i] = a->segs[i] * 7 / 10;
    a->lost_is_ooo = true;
    fill(flow(SD_DETECT_B), 400000, 0.3, 19);
    fill(flow(SD_DETECT_C), 500000, 0.3, 20);
    judge(SD_FETCH_DOWN);
    assert_int_equal(dir.verdict, SD_VERDICT_THROTTLED);
    assert_int_equal(dir.kind, SD_KIND_LOSS);
    /* The same counts read as an upload's retransmissions: still isolated losses. */
    dir.f[SD_DETECT_A].lost_is_ooo = false;
    judge(SD_FETCH_UP);
    assert_int_equal(dir.verdict, SD_VERDICT_THROTTLED);
    assert_int_equal(dir.kind, SD_KIND_LOSS);
}

/* A and B alike at a policed plateau, C fast: TLS whatever the name. */
static void test_tls_scope(void **state)
{
    (void)state;
    policed(flow(SD_DETECT_A));
    policed(flow(SD_DETECT_B));
    fill(flow(SD_DETECT_C), 100000, 0.2, 21);
    judge(SD_FETCH_UP);
    assert_int_equal(dir.verdict, SD_VERDICT_THROTTLED);
    assert_int_equal(dir.scope, SD_SCOPE_TLS);
    assert_int_equal(dir.kind, SD_KIND_POLICING);
    /* Without C there is nothing to tell a limit from the path. */
    dir.f[SD_DETECT_C].used = false;
    judge(SD_FETCH_UP);
    assert_int_equal(dir.verdict, SD_VERDICT_NOT_THROTTLED);
}

static void test_control_name(void **state)
{
    char a[300], b[300], c[300];
    (void)state;

    assert_int_equal(sd_detect_control_name("twitter.com", 0, a, sizeof(a)), 0);
    assert_int_equal(strlen(a), 11);
    assert_string_equal(a + 7, ".com");
    for (int i = 0; i < 7; i++)
        assert_non_null(strchr("bdfhjkmpqvwxz", a[i]));
    /* Deterministic for a seed, different for another. */
    assert_int_equal(sd_detect_control_name("twitter.com", 0, b, sizeof(b)), 0);
    assert_string_equal(a, b);
    assert_int_equal(sd_detect_control_name("twitter.com", 1, c, sizeof(c)), 0);
    assert_string_not_equal(a, c);
    /* Shape kept: dots, hyphens, label lengths; digits replaced; the TLD kept. */
    assert_int_equal(sd_detect_control_name("rr3---sn-a5m.googlevideo.com", 7, a, sizeof(a)), 0);
    assert_int_equal(strlen(a), strlen("rr3---sn-a5m.googlevideo.com"));
    assert_memory_equal(a + 3, "---", 3);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[12], '.');
    assert_string_equal(a + 24, ".com");
    assert_null(strpbrk(a, "0123456789"));
    /* A name longer than 16 characters gets fresh letters past the 16th. */
    assert_int_equal(sd_detect_control_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", 3, a, sizeof(a)), 0);
    assert_memory_not_equal(a, a + 16, 16);
    /* One label: everything replaced; a numeric last label is no TLD. */
    assert_int_equal(sd_detect_control_name("t.co", 0, a, sizeof(a)), 0);
    assert_string_equal(a + 1, ".co");
    assert_int_equal(sd_detect_control_name("localhost", 0, a, sizeof(a)), 0);
    assert_null(strstr(a, "host"));
    assert_int_equal(sd_detect_control_name("10.0.0.1", 0, a, sizeof(a)), 0);
    assert_null(strpbrk(a, "0123456789"));
    /* Errors. */
    assert_int_equal(sd_detect_control_name("", 0, a, sizeof(a)), SD_EINVAL);
    assert_int_equal(sd_detect_control_name("twitter.com", 0, a, 11), SD_ERANGE);
    assert_string_equal(sd_detect_verdict_name(SD_VERDICT_NOT_THROTTLED), "not_throttled");
    assert_string_equal(sd_detect_kind_name(SD_KIND_HS_TIMEOUT), "handshake_timeout");
    assert_null(sd_detect_kind_name(SD_KIND_NONE));
    assert_string_equal(sd_detect_scope_name(SD_SCOPE_TLS), "tls");
}

static void *serve_main(void *arg)
{
    void **a = arg;
    sd_serve_run(a[0], *(int *)a[1]);
    return NULL;
}

/*
 * A real run, both directions, against a slowdown serve on loopback (2 s,
 * 20 Mbit/s per flow, no warm-up connection): six flows reach their
 * transfers, and none began its transfer before the last TLS handshake had
 * ended (the start barrier). Timing is not compared otherwise: the machine
 * may be loaded.
 */
static void test_run_loopback(void **state)
{
    struct sd_serve_config sc = {.listen = "127.0.0.1", .tls = true, .plain = true};
    char err[256];
    int stop[2];
    pthread_t tid;
    (void)state;

    signal(SIGPIPE, SIG_IGN);
    struct sd_serve *srv = sd_serve_open(&sc, err, sizeof(err));
    assert_non_null(srv);
    assert_int_equal(pipe(stop), 0);
    void *args[2] = {srv, &stop[0]};
    assert_int_equal(pthread_create(&tid, NULL, serve_main, args), 0);

    struct sd_detect_config cfg = {
        .addr = "127.0.0.1", .tls_port = sd_serve_port(srv, true), .plain_port = sd_serve_port(srv, false),
        .name = "twitter.com", .seconds_ns = 2ull * SD_NS_PER_S, .warmup_ns = SD_NS_PER_S / 2,
        .max_kbps = 20000, .no_prime = true,
    };
    struct sd_detect_result res;
    assert_int_equal(sd_detect_run(&cfg, &res), 0);
    uint64_t last_handshake = 0;
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < SD_DETECT_ROLES; k++) {
            const struct sd_fetch_result *r = &res.d[d].f[k].r;
            last_handshake = SD_MAX(last_handshake, r->start_ns + r->connect_ns + r->handshake_ns);
        }
    }
    for (int d = 0; d < 2; d++) {
        assert_true(res.d[d].measured);
        assert_int_not_equal(res.d[d].verdict, SD_VERDICT_BLOCKED);
        for (int k = 0; k < SD_DETECT_ROLES; k++) {
            const struct sd_fetch_result *r = &res.d[d].f[k].r;
            assert_int_equal(r->stage, SD_FETCH_TRANSFER);
            assert_true(r->bytes > 0);
            assert_true(r->transfer_start_ns >= last_handshake);
        }
    }
    sd_detect_result_free(&res);
    assert_int_equal(write(stop[1], "x", 1), 1);
    pthread_join(tid, NULL);
    sd_serve_free(srv);
    close(stop[0]);
    close(stop[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policed),     cmocka_unit_test(test_equal),
        cmocka_unit_test(test_rst),         cmocka_unit_test(test_freeze_all),
        cmocka_unit_test(test_unreachable), cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_starved),     cmocka_unit_test(test_gray),
        cmocka_unit_test(test_random_loss), cmocka_unit_test(test_tls_scope),
        cmocka_unit_test(test_control_name), cmocka_unit_test(test_run_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
