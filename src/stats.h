/*
 * stats.h - the statistics of the detector: plain functions over arrays the
 * caller owns (no allocation, no clock, no randomness), so every number the
 * detector prints can be recomputed from its series.
 *
 * Three layers:
 *   - numbers: mean, standard deviation, quantiles, least-squares slope;
 *   - tests: the two-sample Kolmogorov-Smirnov test (Wehe's distribution
 *     test), two-sided and one-sided, with asymptotic p-values;
 *   - series: the features of one transfer's goodput time series (steady
 *     rate, plateau, silences, delay rise, loss) and the mechanism they
 *     point to: a policer, a shaper, or noise (congestion, random loss).
 * The thresholds are named constants below, documented in
 * man/slowdown-detect.1 with the reasoning behind each.
 */
#ifndef SD_STATS_H
#define SD_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

/* Arithmetic mean; 0 for n == 0. */
double sd_stats_mean(const double *x, size_t n);

/* Sample standard deviation (n - 1 in the denominator); 0 for n < 2. */
double sd_stats_sd(const double *x, size_t n);

/* Coefficient of variation sd / mean; 0 when the mean is 0. */
double sd_stats_cv(const double *x, size_t n);

/*
 * The q-quantile (0 <= q <= 1) of the n values of x, interpolating linearly
 * between order statistics (Hyndman-Fan type 7, R's default). |scratch|
 * holds n doubles (x is not changed). 0 for n == 0.
 */
double sd_stats_quantile(const double *x, size_t n, double q, double *scratch);

/* Least-squares slope of y against t (n points); 0 when n < 2 or t is constant. */
double sd_stats_slope(const double *t, const double *y, size_t n);

/* Result of a two-sample Kolmogorov-Smirnov test of a against b. */
struct sd_ks {
    double d;     /* sup |Fa - Fb| */
    double d_lt;  /* sup (Fa - Fb): large when a is stochastically smaller than b */
    double p;     /* two-sided asymptotic p-value (Kolmogorov distribution, Stephens' correction) */
    double p_lt;  /* one-sided p-value for "a < b": exp(-2 n_eff d_lt^2) */
    double n_eff; /* na nb / (na + nb) */
};

/*
 * Two-sample KS test of the na values of a against the nb values of b.
 * |scratch| holds na + nb doubles. Returns 0, or SD_EINVAL when a sample is
 * empty. The p-values assume independent samples; goodput intervals of one
 * TCP flow are not, so the detector asks for a far smaller p than usual.
 */
int sd_stats_ks(const double *a, size_t na, const double *b, size_t nb, double *scratch, struct sd_ks *out);

/* Kolmogorov's limiting distribution: Q(lambda) = 2 sum_k (-1)^(k-1) exp(-2 k^2 lambda^2). */
double sd_stats_kolmogorov_q(double lambda);

/* One transfer's time series, as the features below read it. */
struct sd_series {
    const uint64_t *bytes;   /* payload bytes per bin */
    const uint32_t *rtt_us;  /* an RTT sample per bin, 0 where none (NULL: no RTT) */
    const uint32_t *lost;    /* cumulative loss signal per bin (retransmitted segments, or segments
                                that arrived out of order), 0 where not sampled (NULL: none) */
    const uint32_t *segs;    /* cumulative data segments per bin (sent, or received), the same
                                bins sampled as lost (NULL: none) */
    bool lost_is_ooo;        /* lost counts out-of-order arrivals (a receiver's view: a high share
                                means isolated drops, as a burst of drops leaves nothing to arrive) */
    uint32_t n;              /* bins in the transfer */
    uint64_t bin_ns;         /* bin width */
    uint64_t warmup_ns;      /* left out at the start (a policer's burst allowance) */
    uint64_t base_rtt_us;    /* the path's RTT before any queue (e.g. the TCP handshake); 0: unknown */
};

enum {
    SD_STATS_KS_WINDOW_MS = 250,  /* goodput windows sampled for the KS test */
    SD_STATS_WINDOW_MS = 1000,    /* goodput windows of the plateau test */
    SD_STATS_SILENCE_MIN_MS = 200,/* a silence is a zero-byte gap of at least max(this, 5 RTT) */
    SD_STATS_MAX_WINDOWS = 512,
};

/* Features of one series (all rates in kbit/s of payload). */
struct sd_series_stats {
    double steady_s;         /* length of the steady window (after the warm-up, to the last bin) */
    double kbps;             /* mean goodput over the steady window */
    double slope_kbps;       /* least-squares slope of the cumulative bytes over the steady window */
    double cv;               /* coefficient of variation of the SD_STATS_WINDOW_MS windows */
    double p10_kbps, p50_kbps, p90_kbps; /* quantiles of the window rates */
    uint32_t windows;        /* window rates computed */
    uint32_t silences;       /* zero-byte gaps >= the silence threshold inside the steady window */
    double silence_s;        /* their total length */
    double silence_min_s;    /* the threshold used */
    double longest_gap_s;    /* longest zero-byte gap anywhere, the trailing one included */
    double last_byte_s;      /* end of the last bin with bytes (0: none) */
    double first_byte_s;     /* start of the first bin with bytes */
    uint64_t total_bytes;
    double rtt_base_ms;      /* base RTT (series.base_rtt_us, else the lowest sample) */
    double rtt_p50_ms;       /* median RTT sample in the steady window (0: none) */
    uint32_t rtt_samples;
    double loss_frac;        /* loss signal per data segment in the steady window (-1: unknown) */
    bool lost_is_ooo;        /* copied from the series */
};

/*
 * Computes the features of |s| into |out|. |scratch| holds
 * SD_STATS_MAX_WINDOWS + 2 * s->n doubles. Returns 0, or SD_EINVAL for an empty
 * series or a zero bin width.
 */
int sd_stats_series(const struct sd_series *s, double *scratch, struct sd_series_stats *out);

/*
 * Writes the goodput (kbit/s) of each whole |window_ms| window of the steady
 * part of |s| into |out| (capacity |cap|). Returns how many. With
 * SD_STATS_KS_WINDOW_MS these are the KS samples.
 */
size_t sd_stats_windows(const struct sd_series *s, uint32_t window_ms, double *out, size_t cap);

enum sd_mechanism {
    SD_MECH_UNKNOWN = 0,  /* too little data: under 1 s or 4 windows of steady transfer */
    SD_MECH_POLICING = 1, /* a plateau kept by bursts of drops: retransmission-timeout silences */
    SD_MECH_SHAPING = 2,  /* a smooth plateau kept by a queue: the delay rises */
    SD_MECH_NOISY = 3,    /* no plateau: congestion, or random loss at low RTT */
    SD_MECH_STEADY = 4,   /* a plateau with neither drops nor queueing seen */
    SD_MECH_LOSS = 5,     /* a plateau kept by isolated drops: random loss aimed at a target */
};

/*
 * Names the mechanism behind a series' rate from its features. The rules
 * (thresholds in stats.c, documented in man/slowdown-detect.1):
 *   plateau   = cv of the 1 s windows <= 0.25 and their p10 >= 0.5 median
 *   queue     = the median RTT exceeds the base by >= 20 ms and 2x
 *   bursty    = silences cover >= 25% of the steady window
 *   scattered = out-of-order arrivals are >= 30% of the segments
 *   lossy     = >= 5% of the segments were lost (retransmitted)
 * and, in order: no plateau -> NOISY; scattered -> LOSS; queue and not
 * bursty -> SHAPING; bursty -> POLICING; lossy -> LOSS; else STEADY.
 */
int sd_stats_mechanism(const struct sd_series_stats *st);

/* "policing", "shaping", "noisy", "steady", "loss", "unknown". */
const char *sd_stats_mechanism_name(int mech);

#endif
