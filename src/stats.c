/*
 * stats.c - the detector's statistics (see stats.h).
 *
 * Everything works on caller arrays. Sorting is an insertion sort for small
 * inputs and a heap sort above that, so nothing allocates and the worst case
 * stays n log n; the series are at most a few thousand bins.
 *
 * The KS p-values are the textbook asymptotics: two-sided from Kolmogorov's
 * distribution with Stephens' small-sample correction
 * lambda = (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)) d (Numerical Recipes'
 * probks), one-sided from Smirnov's exp(-2 ne d^2).
 *
 * Series features follow the signs of spec 3.4: a policer's goodput has a
 * plateau (its token rate) reached through drops, which TCP answers with
 * retransmission timeouts, i.e. silences longer than 5 RTT, while the RTT
 * stays at the path's; a shaper's plateau is smooth and bought with a queue,
 * so the RTT grows; congestion and random loss have no plateau at all.
 */
#include <math.h>
#include <string.h>

#include "stats.h"

/* Thresholds of sd_stats_mechanism (see stats.h and man/slowdown-detect.1),
 * calibrated in the lab: a 128 kbit/s policer gave window cv 0.10-0.19 and
 * silences over 44-88% of the window at RTT 0-50 ms; random loss (yt24)
 * gave cv 0.29-0.90 at RTT 0, and at RTT 20-100 ms a plateau with silences
 * over 0-14% and 69-87% of the segments arriving out of order (a policer:
 * 1-9%). */
static const double PLATEAU_CV_MAX = 0.25;     /* window-to-window variation of a plateau */
static const double PLATEAU_P10_MIN = 0.5;     /* p10 window >= 0.5 median: no deep dips */
static const double QUEUE_RISE_MS = 20.0;      /* a queue adds at least this much RTT ... */
static const double QUEUE_RISE_FACTOR = 2.0;   /* ... and doubles it */
static const double BURSTY_SILENCE_SHARE = 0.25;
static const double SCATTERED_OOO_FRAC = 0.3;
static const double LOSSY_FRAC = 0.05;
static const double MIN_STEADY_S = 1.0;        /* less than this is UNKNOWN ... */
static const uint32_t MIN_WINDOWS = 4;         /* ... and so are fewer plateau windows */

double sd_stats_mean(const double *x, size_t n)
{
    double s = 0;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

double sd_stats_sd(const double *x, size_t n)
{
    double m = sd_stats_mean(x, n), s = 0;

    if (n < 2)
        return 0;
    for (size_t i = 0; i < n; i++)
        s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (double)(n - 1));
}

double sd_stats_cv(const double *x, size_t n)
{
    double m = sd_stats_mean(x, n);
    return m > 0 ? sd_stats_sd(x, n) / m : 0;
}

static void sift_down(double *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        double t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/* Sorts a[0..n) ascending in place. */
static void sort_doubles(double *a, size_t n)
{
    if (n <= 32) {
        for (size_t i = 1; i < n; i++) {
            double v = a[i];
            size_t j = i;
            for (; j > 0 && a[j - 1] > v; j--)
                a[j] = a[j - 1];
            a[j] = v;
        }
        return;
    }
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n - 1; end > 0; end--) {
        double t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

/* Quantile of an already sorted array. */
static double sorted_quantile(const double *s, size_t n, double q)
{
    if (n == 0)
        return 0;
    if (q <= 0)
        return s[0];
    if (q >= 1)
        return s[n - 1];
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)h;
    double frac = h - (double)lo;
    return lo + 1 < n ? s[lo] + frac * (s[lo + 1] - s[lo]) : s[lo];
}

double sd_stats_quantile(const double *x, size_t n, double q, double *scratch)
{
    if (n == 0)
        return 0;
    memcpy(scratch, x, n * sizeof(*x));
    sort_doubles(scratch, n);
    return sorted_quantile(scratch, n, q);
}

double sd_stats_slope(const double *t, const double *y, size_t n)
{
    double mt = sd_stats_mean(t, n), my = sd_stats_mean(y, n), sxy = 0, sxx = 0;

    if (n < 2)
        return 0;
    for (size_t i = 0; i < n; i++) {
        sxy += (t[i] - mt) * (y[i] - my);
        sxx += (t[i] - mt) * (t[i] - mt);
    }
    return sxx > 0 ? sxy / sxx : 0;
}

double sd_stats_kolmogorov_q(double lambda)
{
    double sum = 0, sign = 1, a2 = -2.0 * lambda * lambda, prev = 0;

    if (lambda < 0.2)
        return 1.0; /* the series converges slowly here and Q is 1 to 1e-9 */
    for (int k = 1; k <= 100; k++) {
        double term = sign * 2.0 * exp(a2 * k * k);
        sum += term;
        if (fabs(term) <= 1e-12 * fabs(sum) || fabs(term) <= 1e-300 || fabs(term) <= 1e-3 * prev)
            return sum < 0 ? 0 : sum > 1 ? 1 : sum;
        prev = fabs(term);
        sign = -sign;
    }
    return 1.0; /* did not converge: no evidence */
}

int sd_stats_ks(const double *a, size_t na, const double *b, size_t nb, double *scratch, struct sd_ks *out)
{
    memset(out, 0, sizeof(*out));
    out->p = out->p_lt = 1;
    if (na == 0 || nb == 0)
        return SD_EINVAL;
    double *sa = scratch, *sb = scratch + na;
    memcpy(sa, a, na * sizeof(*a));
    memcpy(sb, b, nb * sizeof(*b));
    sort_doubles(sa, na);
    sort_doubles(sb, nb);
    /* Walk both sorted samples; at each distinct value compare the ECDFs. */
    size_t i = 0, j = 0;
    double d = 0, d_lt = 0;
    while (i < na && j < nb) {
        double v = sa[i] < sb[j] ? sa[i] : sb[j];
        while (i < na && sa[i] <= v)
            i++;
        while (j < nb && sb[j] <= v)
            j++;
        double fa = (double)i / (double)na, fb = (double)j / (double)nb;
        d = SD_MAX(d, fabs(fa - fb));
        d_lt = SD_MAX(d_lt, fa - fb);
    }
    out->d = d;
    out->d_lt = d_lt;
    out->n_eff = (double)na * (double)nb / (double)(na + nb);
    double sq = sqrt(out->n_eff);
    out->p = sd_stats_kolmogorov_q((sq + 0.12 + 0.11 / sq) * d);
    out->p_lt = d_lt > 0 ? exp(-2.0 * out->n_eff * d_lt * d_lt) : 1.0;
    return 0;
}

/* First bin of the steady window. */
static uint32_t steady_first(const struct sd_series *s)
{
    uint64_t w = s->warmup_ns / s->bin_ns;
    /* A transfer shorter than twice the warm-up keeps its second half. */
    if (w * 2 > s->n)
        w = s->n / 2;
    return (uint32_t)w;
}

size_t sd_stats_windows(const struct sd_series *s, uint32_t window_ms, double *out, size_t cap)
{
    uint64_t per = (uint64_t)window_ms * 1000000u / s->bin_ns;
    size_t k = 0;

    if (per == 0)
        per = 1;
    for (uint64_t i = steady_first(s); i + per <= s->n && k < cap; i += per) {
        uint64_t sum = 0;
        for (uint64_t j = i; j < i + per; j++)
            sum += s->bytes[j];
        out[k++] = (double)sum * 8.0 / ((double)(per * s->bin_ns) / 1e9) / 1000.0;
    }
    return k;
}

/* Goodput: mean rate and slope of the cumulative bytes over the steady window. */
static void steady_rate(const struct sd_series *s, uint32_t first, double *t, struct sd_series_stats *out)
{
    uint64_t sum = 0, cum = 0;
    uint32_t m = s->n - first;
    double bin_s = (double)s->bin_ns / 1e9;

    /* t holds the bin times, t + m the cumulative bytes: 2 m <= n + windows scratch. */
    for (uint32_t i = 0; i < m; i++) {
        cum += s->bytes[first + i];
        t[i] = (double)(first + i + 1) * bin_s;
        t[m + i] = (double)cum;
        sum += s->bytes[first + i];
    }
    out->steady_s = (double)m * bin_s;
    out->kbps = out->steady_s > 0 ? (double)sum * 8.0 / out->steady_s / 1000.0 : 0;
    out->slope_kbps = sd_stats_slope(t, t + m, m) * 8.0 / 1000.0;
    if (out->slope_kbps < 0)
        out->slope_kbps = 0;
}

/* Zero-byte gaps: silences inside the steady window, the longest gap, first and last byte. */
static void gaps(const struct sd_series *s, uint32_t first, struct sd_series_stats *out)
{
    double bin_s = (double)s->bin_ns / 1e9;
    uint32_t run = 0, longest = 0, min_bins;
    double rtt_s = (double)s->base_rtt_us / 1e6;
    bool seen = false;

    out->silence_min_s = SD_MAX((double)SD_STATS_SILENCE_MIN_MS / 1000.0, 5.0 * rtt_s);
    min_bins = (uint32_t)ceil(out->silence_min_s / bin_s - 1e-9);
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->bytes[i] == 0) {
            run++;
            continue;
        }
        if (!seen)
            out->first_byte_s = (double)i * bin_s;
        seen = true;
        out->last_byte_s = (double)(i + 1) * bin_s;
        out->total_bytes += s->bytes[i];
        /* A gap that ends inside the steady window counts as a silence there. */
        if (run >= min_bins && i >= first && i - run >= first) {
            out->silences++;
            out->silence_s += (double)run * bin_s;
        }
        longest = SD_MAX(longest, run);
        run = 0;
    }
    longest = SD_MAX(longest, run); /* a trailing gap: the transfer froze, or ended early */
    out->longest_gap_s = (double)longest * bin_s;
}

/* RTT: base and steady median. */
static void rtt(const struct sd_series *s, uint32_t first, double *scratch, struct sd_series_stats *out)
{
    uint32_t k = 0, lo = UINT32_MAX;

    for (uint32_t i = 0; s->rtt_us && i < s->n; i++) {
        if (!s->rtt_us[i])
            continue;
        lo = SD_MIN(lo, s->rtt_us[i]);
        if (i >= first)
            scratch[k++] = (double)s->rtt_us[i] / 1000.0;
    }
    out->rtt_samples = k;
    out->rtt_p50_ms = k ? sd_stats_quantile(scratch, k, 0.5, scratch + k) : 0;
    if (s->base_rtt_us)
        out->rtt_base_ms = (double)s->base_rtt_us / 1000.0;
    else
        out->rtt_base_ms = lo != UINT32_MAX ? (double)lo / 1000.0 : 0;
}

/* Loss per segment in the steady window. Both counters are cumulative and
 * sampled now and then (0 where not sampled), so the count inside the window
 * is the maximum there minus the maximum before. */
static void loss(const struct sd_series *s, uint32_t first, struct sd_series_stats *out)
{
    uint32_t lost0 = 0, lost1 = 0, segs0 = 0, segs1 = 0;

    out->loss_frac = -1;
    if (!s->lost || !s->segs)
        return;
    for (uint32_t i = 0; i < s->n; i++) {
        if (i < first) {
            lost0 = SD_MAX(lost0, s->lost[i]);
            segs0 = SD_MAX(segs0, s->segs[i]);
        } else {
            lost1 = SD_MAX(lost1, s->lost[i]);
            segs1 = SD_MAX(segs1, s->segs[i]);
        }
    }
    if (segs1 > segs0)
        out->loss_frac = (double)(lost1 > lost0 ? lost1 - lost0 : 0) / (double)(segs1 - segs0);
}

int sd_stats_series(const struct sd_series *s, double *scratch, struct sd_series_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!s->n || !s->bin_ns || !s->bytes)
        return SD_EINVAL;
    uint32_t first = steady_first(s);
    double *w = scratch, *rest = scratch + SD_STATS_MAX_WINDOWS;

    steady_rate(s, first, rest, out);
    gaps(s, first, out);
    size_t k = sd_stats_windows(s, SD_STATS_WINDOW_MS, w, SD_STATS_MAX_WINDOWS);
    out->windows = (uint32_t)k;
    out->cv = sd_stats_cv(w, k);
    sort_doubles(w, k);
    out->p10_kbps = sorted_quantile(w, k, 0.1);
    out->p50_kbps = sorted_quantile(w, k, 0.5);
    out->p90_kbps = sorted_quantile(w, k, 0.9);
    rtt(s, first, rest, out);
    loss(s, first, out);
    out->lost_is_ooo = s->lost_is_ooo;
    return 0;
}

int sd_stats_mechanism(const struct sd_series_stats *st)
{
    if (st->steady_s < MIN_STEADY_S || st->windows < MIN_WINDOWS || st->kbps <= 0)
        return SD_MECH_UNKNOWN;
    bool plateau = st->cv <= PLATEAU_CV_MAX && st->p10_kbps >= PLATEAU_P10_MIN * st->p50_kbps;
    bool queue = st->rtt_samples > 0 && st->rtt_p50_ms - st->rtt_base_ms >= QUEUE_RISE_MS &&
                 st->rtt_p50_ms >= QUEUE_RISE_FACTOR * st->rtt_base_ms;
    bool bursty = st->silence_s >= BURSTY_SILENCE_SHARE * st->steady_s;
    bool scattered = st->lost_is_ooo && st->loss_frac >= SCATTERED_OOO_FRAC;
    bool lossy = !st->lost_is_ooo && st->loss_frac >= LOSSY_FRAC;

    if (!plateau)
        return SD_MECH_NOISY;
    if (scattered)
        return SD_MECH_LOSS;
    if (queue && !bursty)
        return SD_MECH_SHAPING;
    if (bursty)
        return SD_MECH_POLICING;
    if (lossy)
        return SD_MECH_LOSS;
    return queue ? SD_MECH_SHAPING : SD_MECH_STEADY;
}

const char *sd_stats_mechanism_name(int mech)
{
    static const char *const names[] = {"unknown", "policing", "shaping", "noisy", "steady", "loss"};
    return mech >= 0 && (size_t)mech < SD_COUNTOF(names) ? names[mech] : "unknown";
}
