/*
 * test_stats.c - the detector's statistics: numbers against hand-computed
 * values, the KS test against Kolmogorov's table and exact small cases, and
 * the mechanism of synthetic goodput series at 10 ms bins: a policed
 * sawtooth (bursts, retransmission-timeout silences, flat RTT), a shaped
 * trickle (one packet every 90 ms, RTT climbing), congested noise (a seeded
 * random walk), random loss (a plateau with out-of-order arrivals) and a
 * plain steady line.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

enum { BINS = 1200, BIN_NS = 10 * 1000 * 1000 }; /* 12 s at 10 ms */

static double scratch[SD_STATS_MAX_WINDOWS + 2 * BINS];

static void test_numbers(void **state)
{
    static const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    static const double ten[] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    double s[16];
    (void)state;

    assert_float_equal(sd_stats_mean(x, 8), 5.0, 1e-12);
    assert_float_equal(sd_stats_sd(x, 8), sqrt(32.0 / 7.0), 1e-12);
    assert_float_equal(sd_stats_cv(x, 8), sqrt(32.0 / 7.0) / 5.0, 1e-12);
    assert_float_equal(sd_stats_mean(x, 0), 0.0, 0);
    assert_float_equal(sd_stats_sd(x, 1), 0.0, 0);
    /* Type 7 quantiles of 1..10 (R: quantile(1:10, c(0, .1, .5, .9, 1))). */
    assert_float_equal(sd_stats_quantile(ten, 10, 0.0, s), 1.0, 1e-12);
    assert_float_equal(sd_stats_quantile(ten, 10, 0.1, s), 1.9, 1e-12);
    assert_float_equal(sd_stats_quantile(ten, 10, 0.5, s), 5.5, 1e-12);
    assert_float_equal(sd_stats_quantile(ten, 10, 0.9, s), 9.1, 1e-12);
    assert_float_equal(sd_stats_quantile(ten, 10, 1.0, s), 10.0, 1e-12);
    assert_float_equal(ten[0], 10.0, 0); /* the input is left alone */
    /* Slope of y = 3 t - 1, and of a constant t. */
    double t[5] = {0, 1, 2, 3, 4}, y[5], c[5] = {2, 2, 2, 2, 2};
    for (int i = 0; i < 5; i++)
        y[i] = 3 * t[i] - 1;
    assert_float_equal(sd_stats_slope(t, y, 5), 3.0, 1e-12);
    assert_float_equal(sd_stats_slope(c, y, 5), 0.0, 0);
}

/* Sorting beyond the insertion-sort cut-off (heap sort). */
static void test_quantile_large(void **state)
{
    double x[1000], s[1000];
    (void)state;

    for (int i = 0; i < 1000; i++)
        x[i] = (double)((i * 7919) % 1000); /* a permutation of 0..999 */
    assert_float_equal(sd_stats_quantile(x, 1000, 0.5, s), 499.5, 1e-9);
    assert_float_equal(sd_stats_quantile(x, 1000, 0.25, s), 249.75, 1e-9);
    for (int i = 1; i < 1000; i++)
        assert_true(s[i - 1] <= s[i]);
}

static void test_kolmogorov(void **state)
{
    (void)state;
    /* Table values of Q(lambda) = P(K > lambda). */
    assert_float_equal(sd_stats_kolmogorov_q(1.358), 0.0500, 0.0005);
    assert_float_equal(sd_stats_kolmogorov_q(1.628), 0.0100, 0.0002);
    assert_float_equal(sd_stats_kolmogorov_q(1.0), 0.26999967, 1e-6);
    assert_float_equal(sd_stats_kolmogorov_q(0.5), 0.96394524, 1e-6);
    assert_float_equal(sd_stats_kolmogorov_q(0.1), 1.0, 0);
    assert_true(sd_stats_kolmogorov_q(6.0) < 1e-30);
}

static void test_ks(void **state)
{
    double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {4, 3, 2, 1}, sc[16];
    struct sd_ks k;
    (void)state;

    /* Fully separated, a below b: d = d_lt = 1; ne = 2. */
    assert_int_equal(sd_stats_ks(a, 4, b, 4, sc, &k), 0);
    assert_float_equal(k.d, 1.0, 1e-12);
    assert_float_equal(k.d_lt, 1.0, 1e-12);
    assert_float_equal(k.n_eff, 2.0, 1e-12);
    assert_float_equal(k.p_lt, exp(-4.0), 1e-12);
    double lambda = (sqrt(2.0) + 0.12 + 0.11 / sqrt(2.0)) * 1.0;
    assert_float_equal(k.p, sd_stats_kolmogorov_q(lambda), 1e-12);
    /* The other way round: d = 1 but a is not smaller. */
    assert_int_equal(sd_stats_ks(b, 4, a, 4, sc, &k), 0);
    assert_float_equal(k.d, 1.0, 1e-12);
    assert_float_equal(k.d_lt, 0.0, 1e-12);
    assert_float_equal(k.p_lt, 1.0, 0);
    /* The same values in another order: no difference. */
    assert_int_equal(sd_stats_ks(a, 4, c, 4, sc, &k), 0);
    assert_float_equal(k.d, 0.0, 1e-12);
    assert_float_equal(k.p, 1.0, 1e-12);
    /* Half overlap: {1,2,3,4} against {3,4,5,6}: d = 0.5 at x = 2. */
    double e[4] = {3, 4, 5, 6};
    assert_int_equal(sd_stats_ks(a, 4, e, 4, sc, &k), 0);
    assert_float_equal(k.d, 0.5, 1e-12);
    assert_float_equal(k.d_lt, 0.5, 1e-12);
    /* Ties across samples count together: {1,1,2} vs {1,2,2}: d = 1/3. */
    double f[3] = {1, 1, 2}, g[3] = {1, 2, 2};
    assert_int_equal(sd_stats_ks(f, 3, g, 3, sc, &k), 0);
    assert_float_equal(k.d, 1.0 / 3.0, 1e-12);
    assert_int_equal(sd_stats_ks(a, 0, b, 4, sc, &k), SD_EINVAL);
}

/* ---- synthetic series ---- */

struct synth {
    uint64_t bytes[BINS];
    uint32_t rtt[BINS], lost[BINS], segs[BINS];
    struct sd_series s;
    struct sd_series_stats st;
};

static void init(struct synth *y, bool rtt, bool ooo)
{
    memset(y, 0, sizeof(*y));
    y->s = (struct sd_series){
        .bytes = y->bytes, .rtt_us = rtt ? y->rtt : NULL, .lost = y->lost, .segs = y->segs, .n = BINS,
        .bin_ns = BIN_NS, .warmup_ns = 3000000000ull, .base_rtt_us = 20000, .lost_is_ooo = ooo,
    };
}

static void run(struct synth *y)
{
    assert_int_equal(sd_stats_series(&y->s, scratch, &y->st), 0);
}

/* A 128 kbit/s policer against a TCP sender: a 16 KB burst, then 1 s of silence
 * (timeouts), sender RTT flat at 20 ms, 40% of the segments retransmitted. */
static void test_policed(void **state)
{
    static struct synth y;
    (void)state;

    init(&y, true, false);
    uint32_t segs = 0, lost = 0;
    for (int i = 0; i < BINS; i++) {
        int phase = i % 100;
        y.bytes[i] = phase < 10 ? 1600 : 0; /* 16000 B per second = 128 kbit/s */
        if (phase < 10) {
            segs += 2;
            lost += (phase % 5 == 0) ? 6 : 0; /* 12 of 32 segments per burst are retransmissions */
            segs += (phase % 5 == 0) ? 6 : 0;
        }
        y.rtt[i] = phase < 10 ? 21000 : 0;
        y.lost[i] = lost;
        y.segs[i] = segs;
    }
    run(&y);
    assert_float_equal(y.st.kbps, 128.0, 0.5);
    assert_float_equal(y.st.slope_kbps, 128.0, 2.0);
    assert_float_equal(y.st.steady_s, 9.0, 1e-9);
    assert_int_equal(y.st.windows, 9);
    assert_true(y.st.cv < 0.01);
    /* One per second that ends inside the window (the trailing one ends nowhere). */
    assert_int_equal(y.st.silences, 8);
    assert_float_equal(y.st.silence_s, 7.2, 1e-6);
    assert_float_equal(y.st.rtt_base_ms, 20.0, 1e-9);
    assert_float_equal(y.st.rtt_p50_ms, 21.0, 1e-9);
    assert_float_equal(y.st.loss_frac, 12.0 / 32.0, 1e-9);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_POLICING);
}

/* A shaper: one 1448-byte packet every 90 ms (128.7 kbit/s), never a gap of
 * 200 ms, and the RTT climbing from 20 ms to 600 ms as the queue fills. */
static void test_shaped(void **state)
{
    static struct synth y;
    (void)state;

    init(&y, true, false);
    for (int i = 0; i < BINS; i++) {
        y.bytes[i] = i % 9 == 0 ? 1448 : 0;
        y.rtt[i] = (uint32_t)(20000 + SD_MIN(i, 300) * 2000);
        y.segs[i] = (uint32_t)(i / 9 + 1);
    }
    run(&y);
    assert_float_equal(y.st.kbps, 128.7, 1.0);
    assert_int_equal(y.st.silences, 0);
    assert_true(y.st.cv < 0.05);
    assert_true(y.st.rtt_p50_ms > 500);
    assert_float_equal(y.st.loss_frac, 0.0, 0);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_SHAPING);
    /* The same trickle with no RTT samples (a download): a steady plateau. */
    y.s.rtt_us = NULL;
    run(&y);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_STEADY);
}

static double uniform(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*x >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Congestion: every 500 ms a new level, log-uniform between 160 kbit/s and
 * 16 Mbit/s (seeded), with jitter inside each bin. */
static void test_congested(void **state)
{
    static struct synth y;
    uint64_t x = 12345;
    double level = 1000;
    (void)state;

    init(&y, true, false);
    for (int i = 0; i < BINS; i++) {
        double u = uniform(&x);
        if (i % 50 == 0)
            level = 200 * pow(100, uniform(&x));
        y.bytes[i] = (uint64_t)(level * (0.5 + u));
        y.rtt[i] = (uint32_t)(20000 + 30000 * u);
        y.segs[i] = (uint32_t)i * 2;
        y.lost[i] = (uint32_t)i / 100;
    }
    run(&y);
    assert_float_equal(y.st.cv, 0.707, 0.001); /* windows 9626, 2036, ... 1563 kbit/s */
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_NOISY);
}

/* Random loss as a receiver sees it: a plateau at 4 Mbit/s, no silences,
 * 70% of the segments arriving after a hole. */
static void test_random_loss(void **state)
{
    static struct synth y;
    (void)state;

    init(&y, false, true);
    for (int i = 0; i < BINS; i++) {
        y.bytes[i] = (i % 3 == 0) ? 4000 : 5500;
        y.segs[i] = (uint32_t)i * 3;
        y.lost[i] = (uint32_t)(i * 3 * 7 / 10);
    }
    run(&y);
    assert_float_equal(y.st.loss_frac, 0.7, 0.01);
    assert_int_equal(y.st.silences, 0);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_LOSS);
    /* The same losses counted as out-of-order arrivals of a policed burst would be few. */
    for (int i = 0; i < BINS; i++)
        y.lost[i] = (uint32_t)(i * 3 / 20);
    run(&y);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_STEADY);
}

/* The steady part, the trailing gap of a frozen flow, and too little data. */
static void test_edges(void **state)
{
    static struct synth y;
    (void)state;

    init(&y, false, false);
    y.bytes[0] = 16000; /* 16 KB in the first bin, then nothing: a freeze */
    run(&y);
    assert_float_equal(y.st.kbps, 0.0, 0);
    assert_float_equal(y.st.last_byte_s, 0.01, 1e-9);
    assert_float_equal(y.st.longest_gap_s, 11.99, 1e-9);
    assert_int_equal(y.st.total_bytes, 16000);
    assert_int_equal(sd_stats_mechanism(&y.st), SD_MECH_UNKNOWN);
    /* A transfer shorter than twice the warm-up keeps its second half. */
    init(&y, false, false);
    y.s.n = 200;
    for (int i = 0; i < 200; i++)
        y.bytes[i] = i < 100 ? 100000 : 1000;
    run(&y);
    assert_float_equal(y.st.steady_s, 1.0, 1e-9);
    assert_float_equal(y.st.kbps, 800.0, 1e-6);
    /* KS windows of the steady part. */
    double w[64];
    size_t k = sd_stats_windows(&y.s, SD_STATS_KS_WINDOW_MS, w, 64);
    assert_int_equal(k, 4);
    assert_float_equal(w[0], 800.0, 1e-6);
    /* Errors. */
    y.s.n = 0;
    assert_int_equal(sd_stats_series(&y.s, scratch, &y.st), SD_EINVAL);
    assert_string_equal(sd_stats_mechanism_name(SD_MECH_LOSS), "loss");
    assert_string_equal(sd_stats_mechanism_name(99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),   cmocka_unit_test(test_quantile_large), cmocka_unit_test(test_kolmogorov),
        cmocka_unit_test(test_ks),        cmocka_unit_test(test_policed),        cmocka_unit_test(test_shaped),
        cmocka_unit_test(test_congested), cmocka_unit_test(test_random_loss),    cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
