/*
 * detect.c - the throttling detector (see detect.h).
 *
 * Measurement: a 1 s warm-up connection each way (as B), then one thread
 * per flow (A, B, C in each direction asked for), released together once
 * all exist, each running one sd_fetch_run with its own series storage and
 * the same absolute end; the transfers start together once every flow is
 * connected and through its handshake (a barrier in fetch's ready hook).
 * Threads keep each connection a straight line of code and start at the
 * same moment, which is what "shared path conditions" needs; the flows are
 * few (at most six), so threads cost nothing worth a poll loop. Every flow
 * is capped (200 Mbit/s by default) and closed with a reset.
 *
 * Judgement, per direction (sd_detect_judge, pure):
 *
 *   1. How each flow ended: flowing to the end, or connect failure, reset,
 *      handshake timeout, freeze (data stopped for good: a trailing silence
 *      of >= max(4 s, half the transfer)), other error. A failure of A that
 *      the path explains (the controls barely moved during A's silence; B's
 *      handshake or connect was slow too) is not a block.
 *   2. Features of each flowing series after the warm-up (stats.h): steady
 *      goodput, plateau, silences, RTT rise, loss; its mechanism.
 *   3. The verdict, against the slower control as the reference:
 *        A failed                     -> blocked (kind = how), scope by
 *                                        whether B and C failed too; all
 *                                        flows unable to connect -> inconclusive
 *        A/ref < 0.1, KS p(A<ref) < 1e-4, and a limiter visible (A has a
 *        plateau, or ref >= 2 Mbit/s) -> throttled, scope name
 *        A and B alike with plateaus, both < 0.1 C -> throttled, scope tls
 *        A/ref < 0.3, KS significant  -> inconclusive (gray zone)
 *        no control flowed            -> inconclusive
 *        otherwise                    -> not_throttled
 *      The kind of a throttle is A's mechanism: policing, shaping, loss
 *      (random drops, or no plateau) or limited.
 *   4. Rate estimate: the least-squares slope of A's cumulative payload over
 *      the steady window (robust to a bucket's content at either end),
 *      converted to IP bytes as a policer counts them:
 *      rate = slope * (mss + 52 or 72) / mss * (1 + 22/16384 for TLS).
 *
 * The 0.1 ratio is where the crowd data of 2021 split (spec 3.2: 8,629
 * throttled samples below 0.05, 255 between 0.10 and 0.15); 0.3 bounds the
 * gray zone in which a slow path, not a censor, may explain the difference.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "detect.h"
#include "mono.h"
#include "replay.h"
#include "siphash.h"

static const double THROTTLE_RATIO = 0.1;
static const double GRAY_RATIO = 0.3;
static const double KS_P_MAX = 1e-4;
static const double FREEZE_MIN_S = 4.0;
static const double FREEZE_MIN_SHARE = 0.5;
static const double FREEZE_PATH_FACTOR = 10.0; /* controls move 10x A's bytes while A is silent */
static const double HS_PATH_MIN_KBPS = 1000.0;  /* C this fast: the path could carry a handshake */
static const double FREEZE_PATH_MIN_BYTES = 100000.0;
static const double FAST_PATH_KBPS = 2000.0;    /* a noisy A counts as throttled only against controls this fast */
static const uint64_t QUICK_CONNECT_NS = 1000000000ull; /* B connected within 1 s: A's failure is A's */

enum {
    CONNECT_TIMEOUT_S = 4,
    HANDSHAKE_TIMEOUT_S = 6,
    SETUP_ALLOWANCE_MS = 1000, /* the run lasts seconds + this: time for connects and handshakes */
    PRIME_MS = 1000,           /* the warm-up connection */
    READY_WAIT_MS = 2000,      /* the start barrier waits this long after the first ready flow */
    FIRST_MAX = 4096,
    TLS_RECORD_OVERHEAD = 22, /* TLS 1.3: header 5, tag 16, content type 1 */
    TLS_RECORD = 16384,
};

/* ---- the control name ---- */

int sd_detect_control_name(const char *name, uint64_t seed, char *out, size_t cap)
{
    static const char letters[] = "bdfhjkmpqvwxz";
    static const uint8_t key_base[SD_SIPHASH_KEY_LEN] = "slowdown-detect";
    uint8_t key[SD_SIPHASH_KEY_LEN];
    size_t n = strlen(name);

    if (n == 0 || n > SD_DETECT_NAME_MAX)
        return SD_EINVAL;
    if (n + 1 > cap)
        return SD_ERANGE;
    memcpy(key, key_base, sizeof(key));
    for (int i = 0; i < 8; i++)
        key[i] ^= (uint8_t)(seed >> (8 * i));
    /* Keep the last label when it looks like a top-level domain. */
    const char *dot = strrchr(name, '.');
    size_t keep_from = n;
    if (dot && dot != name && n - (size_t)(dot - name) - 1 >= 2) {
        keep_from = (size_t)(dot - name);
        for (const char *p = dot + 1; *p; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
                keep_from = n;
        }
    }
    uint64_t h = sd_siphash(key, name, n);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (i >= keep_from || c == '.' || c == '-') {
            out[i] = c;
            continue;
        }
        if (i % 16 == 0 && i > 0) {
            uint8_t idx[8];
            for (int b = 0; b < 8; b++)
                idx[b] = (uint8_t)(i >> (8 * b));
            h = sd_siphash(key, idx, sizeof(idx)) ^ h;
        }
        out[i] = letters[(h >> (4 * (i % 16))) % (sizeof(letters) - 1)];
    }
    out[n] = '\0';
    return 0;
}

/* ---- measurement ---- */

/*
 * The flow threads are released together once all of them exist. With
 * SYNC_START, each then waits at the ready hook (connected, TLS handshake
 * done) until every flow is ready or has failed, READY_WAIT_MS after the
 * first one at most: no flow's bulk transfer competes with another's
 * handshake. On a bottleneck (a 1 Mbit/s shaper, congestion) C's bulk,
 * started at connect, could otherwise starve A's handshake past its
 * timeout by chance, and a handshake timeout with B quick reads as a block.
 * With LINGER0, every socket is closed with a reset: an upload's unsent
 * data is dropped rather than drained after the run, where it would queue
 * ahead of the next measurement (seconds of it behind a slow shaper).
 */
enum { SYNC_START = 1, LINGER0 = 2 }; /* SYNC_START comes with LINGER0 */

struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool open;
    bool started;       /* the start barrier is passed: nobody waits any more */
    int expected;       /* threads made */
    int arrived;        /* flows ready, or ended before they were */
    uint64_t first_ns;  /* when the first flow got ready */
    uint64_t end_ns;    /* the transfers' common end, 0 none */
};

struct job {
    struct sd_fetch_opts *o;
    struct sd_fetch_result *r;
    int *rc;
    struct gate *gate;
    bool reached; /* passed the ready hook */
};

static int linger0_hook(void *arg, int fd, char *detail, size_t len)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    (void)arg;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0) {
        snprintf(detail, len, "SO_LINGER: %s", strerror(errno));
        return SD_EIO;
    }
    return 0;
}

/* Counts one flow in at the barrier; the caller holds the lock. */
static void arrive(struct gate *g)
{
    g->arrived++;
    pthread_cond_broadcast(&g->cond);
}

static int ready_hook(void *arg, int fd, char *detail, size_t len)
{
    struct job *j = arg;
    struct gate *g = j->gate;
    (void)fd;
    (void)detail;
    (void)len;

    pthread_mutex_lock(&g->lock);
    j->reached = true;
    arrive(g);
    if (!g->first_ns)
        g->first_ns = sd_mono_ns();
    uint64_t until = g->first_ns + READY_WAIT_MS * (uint64_t)SD_NS_PER_MS;
    if (g->end_ns && until > g->end_ns)
        until = g->end_ns;
    while (!g->started && g->arrived < g->expected && sd_mono_ns() < until) {
        struct timespec ts = {.tv_sec = (time_t)(until / SD_NS_PER_S), .tv_nsec = (long)(until % SD_NS_PER_S)};
        pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    g->started = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    return 0;
}

static const struct sd_fetch_hooks hooks_sync = {.socket = linger0_hook, .ready = ready_hook};
static const struct sd_fetch_hooks hooks_linger = {.socket = linger0_hook};

static void *flow_main(void *arg)
{
    struct job *j = arg;
    struct gate *g = j->gate;

    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    *j->rc = sd_fetch_run(j->o, j->r);
    pthread_mutex_lock(&g->lock);
    if (!j->reached)
        arrive(g); /* failed before it was ready: nobody waits for it */
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

static int fetch_many(struct sd_fetch_opts *o, struct sd_fetch_result *r, int *rc, int n, uint64_t span_ns,
                      int flags)
{
    pthread_t tid[SD_DETECT_MAX_PARALLEL];
    struct job jobs[SD_DETECT_MAX_PARALLEL];
    struct gate gate = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_condattr_t ca;
    bool made[SD_DETECT_MAX_PARALLEL] = {false};
    int ret = 0;

    if (n < 0 || n > SD_DETECT_MAX_PARALLEL)
        return SD_EINVAL;
    for (int i = 0; i < n; i++) {
        rc[i] = SD_ENOMEM; /* until its thread ran */
        memset(&r[i], 0, sizeof(r[i]));
    }
    /* The barrier's timed wait is on the monotonic clock, as every deadline here. */
    if (pthread_condattr_init(&ca) != 0)
        return SD_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int cr = pthread_cond_init(&gate.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (cr != 0)
        return SD_ENOMEM;
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct job){&o[i], &r[i], &rc[i], &gate, false};
        if (flags & (SYNC_START | LINGER0)) {
            o[i].hooks = flags & SYNC_START ? &hooks_sync : &hooks_linger;
            o[i].hook_arg = &jobs[i];
        }
        made[i] = pthread_create(&tid[i], NULL, flow_main, &jobs[i]) == 0;
        if (!made[i]) {
            rc[i] = SD_EIO;
            memset(&r[i], 0, sizeof(r[i]));
            snprintf(r[i].detail, sizeof(r[i].detail), "cannot make a thread");
            ret = SD_EIO;
        }
    }
    /* Every transfer ends at the same moment, however long its handshake took. */
    uint64_t end = span_ns ? sd_mono_ns() + span_ns : 0;
    for (int i = 0; i < n; i++)
        o[i].deadline_ns = end;
    pthread_mutex_lock(&gate.lock);
    for (int i = 0; i < n; i++)
        gate.expected += made[i];
    gate.end_ns = end;
    gate.open = true;
    pthread_cond_broadcast(&gate.cond);
    pthread_mutex_unlock(&gate.lock);
    for (int i = 0; i < n; i++) {
        if (made[i])
            pthread_join(tid[i], NULL);
    }
    pthread_mutex_destroy(&gate.lock);
    pthread_cond_destroy(&gate.cond);
    return ret;
}

int sd_detect_fetch_many(struct sd_fetch_opts *o, struct sd_fetch_result *r, int *rc, int n, uint64_t span_ns)
{
    return fetch_many(o, r, rc, n, span_ns, 0);
}

/* The request line the server gets for S seconds, as fetch.c writes it. */
static int request_line(uint8_t dir, uint64_t seconds_ns, char *buf, size_t len)
{
    unsigned secs = (unsigned)((seconds_ns + SD_NS_PER_S - 1) / SD_NS_PER_S) + 1;
    return snprintf(buf, len, "%s?seconds=%u\n", dir == SD_FETCH_UP ? "PUT /up" : "GET /down", secs);
}

/* Control C's first flight: the target's ClientHello and the request, inverted. */
static int inverted_first(const struct sd_detect_config *cfg, uint8_t dir, uint64_t secs_ns, uint8_t *out,
                          size_t cap)
{
    uint8_t hello[2048];
    char req[64];

    int n = sd_fetch_client_hello(cfg->name, hello, sizeof(hello));
    if (n < 0)
        return n;
    int rl = request_line(dir, secs_ns, req, sizeof(req));
    return sd_replay_build(hello, (size_t)n, req, (size_t)rl, out, cap);
}

static void base_opts(const struct sd_detect_config *cfg, const struct sd_detect_result *res, uint8_t dir,
                      struct sd_fetch_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->addr = cfg->addr;
    o->bind_addr = cfg->bind_addr;
    o->dir = dir;
    o->duration_ns = res->seconds_ns;
    o->bin_ns = res->bin_ns;
    o->connect_timeout_ns = CONNECT_TIMEOUT_S * (uint64_t)SD_NS_PER_S;
    o->handshake_timeout_ns = HANDSHAKE_TIMEOUT_S * (uint64_t)SD_NS_PER_S;
    /* Past the end: a freeze must show as a silence in the series, not end it. */
    o->idle_timeout_ns = res->seconds_ns + 2ull * SD_NS_PER_S;
    /* A cap keeps the controls from eating the CPU that a vantage point (or the
     * lab's userspace censor) needs: 200 Mbit/s still puts a 128 kbit/s policer
     * at a ratio of 0.0006, and a 10x loss throttle of a 20 Mbit/s flow well below 0.1. */
    uint64_t kbps = cfg->max_kbps ? cfg->max_kbps : SD_DETECT_DEFAULT_MAX_KBPS;
    o->max_rate = kbps == SD_DETECT_UNCAPPED ? 0 : kbps * 125;
}

/* Memory for all series: one block. */
static int alloc_series(struct sd_detect_result *res, uint32_t max_bins)
{
    size_t per = (size_t)max_bins * (sizeof(uint64_t) + sizeof(struct sd_fetch_tcp) + 3 * sizeof(uint32_t));
    uint8_t *m = calloc(2 * SD_DETECT_ROLES, per);

    if (!m)
        return SD_ENOMEM;
    res->storage = m;
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < SD_DETECT_ROLES; k++) {
            struct sd_detect_flow *f = &res->d[d].f[k];
            f->bins = (uint64_t *)m;
            m += (size_t)max_bins * sizeof(uint64_t);
            f->tcp = (struct sd_fetch_tcp *)m;
            m += (size_t)max_bins * sizeof(struct sd_fetch_tcp);
            f->rtt_us = (uint32_t *)m;
            m += (size_t)max_bins * sizeof(uint32_t);
            f->lost = (uint32_t *)m;
            m += (size_t)max_bins * sizeof(uint32_t);
            f->segs = (uint32_t *)m;
            m += (size_t)max_bins * sizeof(uint32_t);
        }
    }
    return 0;
}

/* The measurements of one direction into o[] (flows into f[]). Returns how many, or a negative SD_E*. */
static int setup_dir(const struct sd_detect_config *cfg, struct sd_detect_result *res, uint8_t dir,
                     uint32_t max_bins, struct sd_fetch_opts *o, struct sd_detect_flow **f, uint8_t first[FIRST_MAX])
{
    struct sd_detect_dir *d = &res->d[dir];
    int n = 0;

    d->measured = true;
    d->dir = dir;
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        if (k == SD_DETECT_C && cfg->no_inverted)
            continue;
        base_opts(cfg, res, dir, &o[n]);
        f[n] = &d->f[k];
        f[n]->used = true;
        o[n].bins = f[n]->bins;
        o[n].tcp_bins = f[n]->tcp;
        o[n].max_bins = max_bins;
        if (k == SD_DETECT_C) {
            int len = inverted_first(cfg, dir, res->seconds_ns, first, FIRST_MAX);
            if (len < 0)
                return len == SD_ECRYPTO ? SD_EINVAL : len;
            o[n].plain = true;
            o[n].port = cfg->plain_port ? cfg->plain_port : 80;
            o[n].first = first;
            o[n].first_len = (size_t)len;
        } else {
            o[n].port = cfg->tls_port ? cfg->tls_port : 443;
            o[n].sni = k == SD_DETECT_A ? res->name : res->control;
        }
        n++;
    }
    return n;
}

/* ---- judgement ---- */

static void add(struct sd_detect_dir *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends one reason to the evidence ("; "-separated; cut when full). */
static void add(struct sd_detect_dir *d, const char *fmt, ...)
{
    size_t used = strlen(d->evidence);
    va_list ap;

    if (used + 3 >= sizeof(d->evidence))
        return;
    if (used) {
        memcpy(d->evidence + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(d->evidence + used, sizeof(d->evidence) - used, fmt, ap);
    va_end(ap);
}

/* The path's RTT before any queue: the least of the flows' minimum RTTs and
 * TCP handshake times (a concurrent start can delay a handshake, not speed it). */
static uint32_t path_rtt_us(const struct sd_detect_dir *d)
{
    uint64_t best = UINT64_MAX;

    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        const struct sd_detect_flow *f = &d->f[k];
        if (!f->used)
            continue;
        if (f->r.tcp.min_rtt_us)
            best = SD_MIN(best, (uint64_t)f->r.tcp.min_rtt_us);
        if (f->r.connect_ns)
            best = SD_MIN(best, f->r.connect_ns / 1000);
    }
    return best == UINT64_MAX ? 0 : (uint32_t)SD_MIN(best, (uint64_t)UINT32_MAX);
}

/* The series view of a flow. */
static struct sd_series series_of(const struct sd_detect_flow *f, uint64_t bin_ns, uint64_t warmup_ns,
                                  uint32_t base_rtt_us)
{
    struct sd_series s = {
        .bytes = f->bins, .rtt_us = f->rtt_us, .lost = f->lost, .segs = f->segs, .n = f->n,
        .bin_ns = bin_ns, .warmup_ns = warmup_ns, .base_rtt_us = base_rtt_us ? base_rtt_us : 1,
        .lost_is_ooo = f->lost_is_ooo,
    };
    return s;
}

/* How a flow ended (step 1), and its features (step 2). */
static void classify(struct sd_detect_flow *f, uint8_t dir, uint64_t bin_ns, uint64_t warmup_ns, uint32_t base)
{
    const struct sd_fetch_result *r = &f->r;

    f->fail = SD_KIND_NONE;
    f->fail_bytes = 0;
    f->mech = SD_MECH_UNKNOWN;
    memset(&f->st, 0, sizeof(f->st));
    if (f->rc < 0) {
        f->fail = SD_KIND_ERROR;
        return;
    }
    if (r->stage == SD_FETCH_CONNECT) {
        f->fail = SD_KIND_CONNECT;
        return;
    }
    if (r->stage == SD_FETCH_HANDSHAKE) {
        f->fail = r->end == SD_FETCH_RST ? SD_KIND_RST : r->end == SD_FETCH_TIMEOUT ? SD_KIND_HS_TIMEOUT
                                                                                      : SD_KIND_ERROR;
        return;
    }
    struct sd_series s = series_of(f, bin_ns, warmup_ns, base);
    if (s.n > SD_DETECT_MAX_BINS)
        s.n = SD_DETECT_MAX_BINS;
    if (s.n) {
        double scratch[SD_STATS_MAX_WINDOWS + 2 * SD_DETECT_MAX_BINS];
        sd_stats_series(&s, scratch, &f->st);
    }
    f->mech = sd_stats_mechanism(&f->st);
    double transfer_s = (double)s.n * (double)bin_ns / 1e9;
    double trailing = transfer_s - f->st.last_byte_s;
    uint64_t tcp_bytes = dir == SD_FETCH_DOWN ? r->tcp.bytes_in : r->bytes;
    if (r->end == SD_FETCH_RST) {
        f->fail = SD_KIND_RST;
        f->fail_bytes = tcp_bytes ? tcp_bytes : r->bytes;
    } else if (r->bytes == 0 || r->end == SD_FETCH_TIMEOUT ||
               (r->end != SD_FETCH_EOF && trailing >= SD_MAX(FREEZE_MIN_S, FREEZE_MIN_SHARE * transfer_s))) {
        f->fail = SD_KIND_FREEZE;
        f->fail_bytes = tcp_bytes ? tcp_bytes : r->bytes;
    } else if (r->end == SD_FETCH_ERROR) {
        f->fail = SD_KIND_ERROR;
    }
}

/* The KS window: 250 ms, shortened (to 100 ms at least) so that a short
 * steady window still gives 36 samples; a test on a dozen samples could
 * never reach p < 1e-4, however far apart the flows. */
static uint32_t ks_window_ms(const struct sd_series *s)
{
    uint64_t first = SD_MIN(s->warmup_ns / s->bin_ns, (uint64_t)s->n / 2);
    uint64_t steady_ms = (s->n - first) * s->bin_ns / SD_NS_PER_MS;
    uint64_t w = steady_ms / 36;
    return (uint32_t)SD_MAX(SD_MIN(w, (uint64_t)SD_STATS_KS_WINDOW_MS), (uint64_t)100);
}

/* A / X with the KS test of A's windows against X's. */
static double compare(const struct sd_detect_flow *a, const struct sd_detect_flow *x, uint64_t bin_ns,
                      uint64_t warmup_ns, struct sd_ks *ks)
{
    static const size_t cap = 1024;
    double wa[1024], wx[1024], scratch[2048];
    struct sd_series sa = series_of(a, bin_ns, warmup_ns, 0), sx = series_of(x, bin_ns, warmup_ns, 0);
    uint32_t w = ks_window_ms(SD_MIN(sa.n, sx.n) == sa.n ? &sa : &sx);

    size_t na = sd_stats_windows(&sa, w, wa, cap);
    size_t nx = sd_stats_windows(&sx, w, wx, cap);
    if (sd_stats_ks(wa, na, wx, nx, scratch, ks) < 0)
        return -1;
    return x->st.kbps > 0 ? a->st.kbps / x->st.kbps : -1;
}

static bool flowing(const struct sd_detect_flow *f)
{
    return f->fail == SD_KIND_NONE && f->st.kbps > 0;
}

/* C refused at connect while a TLS flow connected: the server has no plain port. */
static bool c_unavailable(const struct sd_detect_dir *d, bool c_present)
{
    const struct sd_detect_flow *c = &d->f[SD_DETECT_C];
    if (!c_present)
        return true;
    bool tls_connected = d->f[SD_DETECT_A].fail != SD_KIND_CONNECT || d->f[SD_DETECT_B].fail != SD_KIND_CONNECT;
    return c->fail == SD_KIND_CONNECT && c->r.end == SD_FETCH_RST && tls_connected;
}

/* Payload bytes control |x| moved from the absolute time |from_ns| to its end. */
static uint64_t bytes_after(const struct sd_detect_flow *x, uint64_t from_ns, uint64_t bin_ns)
{
    uint64_t sum = 0, first = 0;

    if (from_ns > x->r.transfer_start_ns)
        first = (from_ns - x->r.transfer_start_ns) / bin_ns;
    for (uint64_t i = first; i < x->n; i++)
        sum += x->bins[i];
    return sum;
}

/*
 * Whether A's failure is the path's doing rather than a block: a long
 * silence at the end while the controls barely moved either (congestion,
 * a bloated queue), or a handshake timeout on a path where the controls'
 * handshakes were slow too. Such a failure is judged as a flowing A (or
 * inconclusive); the reason goes to the evidence.
 */
static bool failure_explained_by_path(struct sd_detect_dir *d, bool c_ok, uint64_t bin_ns)
{
    const struct sd_detect_flow *a = &d->f[SD_DETECT_A], *b = &d->f[SD_DETECT_B], *c = &d->f[SD_DETECT_C];
    bool b_flows = flowing(b), c_flows = c_ok && flowing(c);

    if (a->fail == SD_KIND_FREEZE && (b_flows || c_flows)) {
        uint64_t silent_from = a->r.transfer_start_ns + (uint64_t)(a->st.last_byte_s * 1e9);
        uint64_t moved = SD_MAX(b_flows ? bytes_after(b, silent_from, bin_ns) : 0,
                                c_flows ? bytes_after(c, silent_from, bin_ns) : 0);
        double need = SD_MAX(FREEZE_PATH_FACTOR * (double)a->r.bytes, (double)FREEZE_PATH_MIN_BYTES);
        if ((double)moved < need) {
            add(d, "A was silent from %.1f s on, but the controls moved only %llu bytes meanwhile: the path, "
                   "not a freeze", a->st.last_byte_s, (unsigned long long)moved);
            return true;
        }
    }
    if (a->fail == SD_KIND_CONNECT && b->r.stage != SD_FETCH_CONNECT && b->r.connect_ns >= QUICK_CONNECT_NS) {
        add(d, "A could not connect, and B needed %.1f s: the path is too slow to tell", (double)b->r.connect_ns / 1e9);
        return true;
    }
    if (a->fail == SD_KIND_HS_TIMEOUT) {
        bool b_quick = b->r.stage == SD_FETCH_TRANSFER &&
                       b->r.handshake_ns < HANDSHAKE_TIMEOUT_S * (uint64_t)SD_NS_PER_S / 3;
        bool c_fast = c_flows && c->st.kbps >= HS_PATH_MIN_KBPS;
        if (!b_quick && !c_fast) {
            add(d, "A's TLS handshake timed out, but B's %s and C %s: the path is too slow to tell",
                b->r.stage == SD_FETCH_TRANSFER ? "was slow too" : "failed too",
                c_flows ? "crawled" : "did not flow");
            return true;
        }
    }
    return false;
}

static void judge_blocked(struct sd_detect_dir *d, bool c_ok)
{
    const struct sd_detect_flow *a = &d->f[SD_DETECT_A], *b = &d->f[SD_DETECT_B], *c = &d->f[SD_DETECT_C];
    bool b_failed = b->fail != SD_KIND_NONE, c_failed = c_ok && c->fail != SD_KIND_NONE;

    d->verdict = SD_VERDICT_BLOCKED;
    d->kind = a->fail;
    d->scope = b_failed ? (c_ok && !c_failed ? SD_SCOPE_TLS : SD_SCOPE_ALL) : SD_SCOPE_NAME;
    if (a->fail == SD_KIND_CONNECT && b->fail == SD_KIND_CONNECT && (!c_ok || c->fail == SD_KIND_CONNECT)) {
        d->verdict = SD_VERDICT_INCONCLUSIVE;
        d->kind = SD_KIND_NONE;
        d->scope = SD_SCOPE_NONE;
        add(d, "no flow could connect: the server is unreachable (%s)", a->r.detail);
        return;
    }
    switch (a->fail) {
    case SD_KIND_FREEZE:
        add(d, "A stopped for good after %llu bytes (TCP payload; last byte at %.2f s, then %.1f s of silence)",
            (unsigned long long)a->fail_bytes, a->st.last_byte_s, a->st.longest_gap_s);
        break;
    case SD_KIND_RST:
        add(d, "A was reset during the %s after %llu bytes",
            a->r.stage == SD_FETCH_HANDSHAKE ? "TLS handshake" : "transfer", (unsigned long long)a->fail_bytes);
        break;
    case SD_KIND_HS_TIMEOUT:
        add(d, "A's TLS handshake got no answer within %d s", HANDSHAKE_TIMEOUT_S);
        break;
    case SD_KIND_CONNECT:
        add(d, "A's TCP connection failed (%s)", a->r.detail[0] ? a->r.detail : sd_fetch_end_name(a->r.end));
        break;
    default:
        add(d, "A failed: %s", a->r.detail[0] ? a->r.detail : sd_fetch_end_name(a->r.end));
        break;
    }
    if (b_failed)
        add(d, "control B failed too (%s)", sd_detect_kind_name(b->fail));
    else
        add(d, "control B ran at %.1f kbit/s", b->st.kbps);
    if (c_failed)
        add(d, "inverted control C failed too (%s)", sd_detect_kind_name(c->fail));
    else if (c_ok)
        add(d, "inverted control C ran at %.1f kbit/s", c->st.kbps);
    if (d->scope == SD_SCOPE_ALL)
        add(d, "every flow failed alike: the server's address or the path, not the name");
    else if (d->scope == SD_SCOPE_TLS)
        add(d, "both TLS flows failed, the inverted one did not: TLS to this server, whatever the name");
}

/* The L3 rate a policer sees for A's payload slope. */
static double l3_rate(const struct sd_detect_flow *a, bool tls, bool ipv6)
{
    double hdr = ipv6 ? 72.0 : 52.0;
    double mss = a->r.tcp.mss ? (double)a->r.tcp.mss : 1500.0 - hdr;
    double rate = a->st.slope_kbps * (mss + hdr) / mss;
    return tls ? rate * (1.0 + (double)TLS_RECORD_OVERHEAD / TLS_RECORD) : rate;
}

/* A throttle's kind from A's mechanism. A smooth plateau without drops is a
 * shaper's mark when no RTT could be seen (downloads); with RTT samples and
 * no queueing it stays "limited". */
static uint8_t throttle_kind(int mech, bool have_rtt)
{
    switch (mech) {
    case SD_MECH_POLICING: return SD_KIND_POLICING;
    case SD_MECH_SHAPING: return SD_KIND_SHAPING;
    case SD_MECH_NOISY:
    case SD_MECH_LOSS: return SD_KIND_LOSS;
    case SD_MECH_STEADY: return have_rtt ? SD_KIND_LIMITED : SD_KIND_SHAPING;
    default: return SD_KIND_LIMITED;
    }
}

static void describe_mechanism(struct sd_detect_dir *d, const struct sd_detect_flow *f, const char *who)
{
    const struct sd_series_stats *st = &f->st;

    char rtt[48] = "RTT not seen";
    if (st->rtt_samples)
        snprintf(rtt, sizeof(rtt), "RTT %.1f -> %.1f ms", st->rtt_base_ms, st->rtt_p50_ms);
    add(d, "%s: %s (window cv %.2f, %u silences >= %.0f ms covering %.1f s, %s", who,
        sd_stats_mechanism_name(f->mech), st->cv, st->silences, st->silence_min_s * 1000, st->silence_s, rtt);
    size_t used = strlen(d->evidence);
    if (st->loss_frac >= 0 && used + 2 < sizeof(d->evidence))
        snprintf(d->evidence + used, sizeof(d->evidence) - used, ", loss %.1f%%)", st->loss_frac * 100);
    else if (used + 2 < sizeof(d->evidence))
        snprintf(d->evidence + used, sizeof(d->evidence) - used, ")");
}

/* The throttled verdict: kind, rate, evidence. */
static void set_throttled(struct sd_detect_dir *d, uint8_t scope, bool ipv6)
{
    const struct sd_detect_flow *a = &d->f[SD_DETECT_A];

    d->verdict = SD_VERDICT_THROTTLED;
    d->scope = scope;
    d->kind = throttle_kind(a->mech, a->st.rtt_samples > 0);
    d->rate_estimate_kbps = l3_rate(a, true, ipv6);
    describe_mechanism(d, a, "A");
}

/* Steps 3 and 4 for a flowing A. */
static void judge_flowing(struct sd_detect_dir *d, bool c_ok, uint64_t bin_ns, uint64_t warmup_ns, bool ipv6)
{
    struct sd_detect_flow *a = &d->f[SD_DETECT_A], *b = &d->f[SD_DETECT_B], *c = &d->f[SD_DETECT_C];
    bool b_flows = flowing(b), c_flows = c_ok && flowing(c);
    struct sd_ks ks_b = {0}, ks_c = {0}, ks_bc = {0};
    double r_b = -1, r_c = -1, r_bc = -1;

    if (b_flows)
        r_b = compare(a, b, bin_ns, warmup_ns, &ks_b);
    if (c_flows)
        r_c = compare(a, c, bin_ns, warmup_ns, &ks_c);
    if (b_flows && c_flows)
        r_bc = compare(b, c, bin_ns, warmup_ns, &ks_bc);
    d->ratio_b = r_b;
    d->ratio_inverted = r_c;
    /* The reference is the slower control: A must be slower than both. */
    if (b_flows && (!c_flows || b->st.kbps <= c->st.kbps))
        d->control = SD_DETECT_B;
    else if (c_flows)
        d->control = SD_DETECT_C;
    if (d->control < 0) {
        add(d, "no control flowed (B: %s, C: %s): nothing to compare with", sd_detect_kind_name(b->fail) ?: "no data",
            c_ok ? sd_detect_kind_name(c->fail) ?: "no data" : "absent");
        return;
    }
    d->control_kbps = d->f[d->control].st.kbps;
    d->ratio = d->control == SD_DETECT_B ? r_b : r_c;
    d->ks = d->control == SD_DETECT_B ? ks_b : ks_c;
    if (b_flows)
        add(d, "A/B = %.4f (%.1f / %.1f kbit/s), KS D=%.2f p=%.1e", r_b, a->st.kbps, b->st.kbps, ks_b.d_lt, ks_b.p_lt);
    if (c_flows)
        add(d, "A/C = %.4f (C %.1f kbit/s), KS D=%.2f p=%.1e", r_c, c->st.kbps, ks_c.d_lt, ks_c.p_lt);
    bool sig = d->ks.p_lt < KS_P_MAX;
    /* A limiter must be visible: A's plateau, or controls fast enough that a
     * 10x gap is not one flow's bad luck in a shared, congested queue. */
    bool credible = (a->mech != SD_MECH_NOISY && a->mech != SD_MECH_UNKNOWN) || d->control_kbps >= FAST_PATH_KBPS;
    if (!credible && d->ratio >= 0 && d->ratio < GRAY_RATIO && sig) {
        d->verdict = SD_VERDICT_NOT_THROTTLED;
        add(d, "A is slower than the controls, but without a plateau on a slow path (%.0f kbit/s): "
               "congestion, no sign of a limiter", d->control_kbps);
        describe_mechanism(d, a, "A");
    } else if (d->ratio >= 0 && d->ratio < THROTTLE_RATIO && sig) {
        set_throttled(d, SD_SCOPE_NAME, ipv6);
        if (!b_flows)
            add(d, "control B failed (%s): judged against C alone", sd_detect_kind_name(b->fail) ?: "no data");
        else if (!c_flows)
            add(d, "judged against B alone");
    } else if (r_c >= 0 && r_c < THROTTLE_RATIO && ks_c.p_lt < KS_P_MAX && r_bc >= 0 && r_bc < THROTTLE_RATIO &&
               ks_bc.p_lt < KS_P_MAX && r_b >= GRAY_RATIO && a->mech != SD_MECH_NOISY && b->mech != SD_MECH_NOISY &&
               a->mech != SD_MECH_UNKNOWN && b->mech != SD_MECH_UNKNOWN) {
        /* A and B alike and steady, both far below C: TLS to this server is limited whatever the name. */
        set_throttled(d, SD_SCOPE_TLS, ipv6);
        add(d, "B (another name, same server) is as slow as A, C is not: TLS is limited whatever the name");
    } else if (d->ratio >= 0 && d->ratio < GRAY_RATIO && sig) {
        d->verdict = SD_VERDICT_INCONCLUSIVE;
        add(d, "A is slower than the slower control, but by less than %.0fx: the gray zone", 1.0 / THROTTLE_RATIO);
        describe_mechanism(d, a, "A");
    } else if (r_b >= 0 && r_b < THROTTLE_RATIO && ks_b.p_lt < KS_P_MAX && credible) {
        d->verdict = SD_VERDICT_INCONCLUSIVE;
        add(d, "A is far slower than B, but the inverted control C is slow too (%.1f kbit/s): "
               "the plain port may be limited as well", c->st.kbps);
        describe_mechanism(d, a, "A");
    } else {
        d->verdict = SD_VERDICT_NOT_THROTTLED;
    }
    const struct sd_detect_flow *ctl = &d->f[d->control];
    describe_mechanism(d, ctl, d->control == SD_DETECT_B ? "path (B)" : "path (C)");
}

void sd_detect_judge(struct sd_detect_dir *d, uint64_t bin_ns, uint64_t warmup_ns, bool ipv6)
{
    struct sd_detect_flow *a = &d->f[SD_DETECT_A], *b = &d->f[SD_DETECT_B], *c = &d->f[SD_DETECT_C];

    d->evidence[0] = '\0';
    d->verdict = SD_VERDICT_INCONCLUSIVE;
    d->kind = SD_KIND_NONE;
    d->scope = SD_SCOPE_NONE;
    d->control = -1;
    d->ratio = d->ratio_b = d->ratio_inverted = -1;
    d->control_kbps = 0;
    d->rate_estimate_kbps = -1;
    memset(&d->ks, 0, sizeof(d->ks));
    uint32_t base = path_rtt_us(d);
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        if (d->f[k].used)
            classify(&d->f[k], d->dir, bin_ns, warmup_ns, base);
    }
    bool c_ok = !c_unavailable(d, c->used);
    if (c->used && !c_ok)
        add(d, "no inverted control: the plain port refused");
    d->kbps = a->st.kbps;
    d->b_kbps = b->st.kbps;
    d->inverted_kbps = c_ok ? c->st.kbps : 0;
    if (a->fail != SD_KIND_NONE && failure_explained_by_path(d, c_ok, bin_ns)) {
        if (a->fail != SD_KIND_FREEZE)
            return; /* inconclusive, with the reason */
        a->fail = SD_KIND_NONE; /* a silence, judged as part of the series */
    }
    if (a->fail != SD_KIND_NONE)
        judge_blocked(d, c_ok);
    else
        judge_flowing(d, c_ok, bin_ns, warmup_ns, ipv6);
}

/* ---- the run ---- */

/*
 * Turns a flow's TCP_INFO samples into its series columns, and its length
 * into bins. A download's bytes become TCP's count of bytes received (the
 * TLS layer hands them over a whole record at a time, which would read as
 * silences at low rates); bins where no sample was taken get none.
 * Downloads carry no RTT: a receiver's estimate (tcpi_rcv_rtt) grows with
 * a policer's silences, so it cannot tell a queue from drops.
 */
static void prepare(struct sd_detect_flow *f, uint8_t dir, uint64_t bin_ns, uint32_t max_bins)
{
    uint64_t n = f->r.transfer_ns / bin_ns, prev = f->r.tcp_start.bytes_in;
    bool tcp_bytes = dir == SD_FETCH_DOWN && prev > 0;

    f->n = (uint32_t)SD_MIN(n, (uint64_t)max_bins);
    f->lost_is_ooo = dir == SD_FETCH_DOWN;
    for (uint32_t i = 0; i < f->n; i++) {
        const struct sd_fetch_tcp *t = &f->tcp[i];
        f->rtt_us[i] = dir == SD_FETCH_UP ? t->rtt_us : 0;
        f->lost[i] = dir == SD_FETCH_UP ? t->retrans : t->ooo;
        f->segs[i] = t->segs;
        if (!tcp_bytes)
            continue;
        if (t->bytes_in >= prev && t->bytes_in > 0) {
            f->bins[i] = t->bytes_in - prev;
            prev = t->bytes_in;
        } else {
            f->bins[i] = 0;
        }
    }
}

/*
 * One second of download and upload as control B, before the measurement
 * (the sender's metrics are the client's in an upload). Linux keeps
 * per-destination TCP metrics (RTT, variance) from earlier connections; on a
 * destination it never reached, a policed flow started cold in the lab fell
 * into retransmission-timeout backoff for the whole run (60-110 kbit/s
 * against a 128 kbit/s policer, no plateau), where the same flow after any
 * earlier connection of a second ran at the policer's rate. The measurement
 * should see the path, not the client's first contact with it.
 */
static void prime(const struct sd_detect_config *cfg, const struct sd_detect_result *res)
{
    struct sd_fetch_opts o[2];
    struct sd_fetch_result r[2];
    int rc[2];

    for (int dir = 0; dir < 2; dir++) {
        base_opts(cfg, res, (uint8_t)dir, &o[dir]);
        o[dir].port = cfg->tls_port ? cfg->tls_port : 443;
        o[dir].sni = res->control;
        o[dir].duration_ns = PRIME_MS * (uint64_t)SD_NS_PER_MS;
        o[dir].idle_timeout_ns = o[dir].duration_ns;
        o[dir].handshake_timeout_ns = o[dir].connect_timeout_ns = 2ull * SD_NS_PER_S;
    }
    /* Whatever happens: the measurement will see it too. */
    fetch_many(o, r, rc, 2, (PRIME_MS + 500) * (uint64_t)SD_NS_PER_MS, LINGER0);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SD_DETECT_NAME_MAX)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    }
    return true;
}

int sd_detect_run(const struct sd_detect_config *cfg, struct sd_detect_result *res)
{
    struct sd_fetch_opts o[2 * SD_DETECT_ROLES];
    struct sd_fetch_result r[2 * SD_DETECT_ROLES];
    struct sd_detect_flow *f[2 * SD_DETECT_ROLES];
    int rc[2 * SD_DETECT_ROLES];
    uint8_t first[2][FIRST_MAX];
    int n = 0;

    memset(res, 0, sizeof(*res));
    if (!cfg->addr || !cfg->name || !name_ok(cfg->name) || (cfg->control && !name_ok(cfg->control)))
        return SD_EINVAL;
    res->seconds_ns = cfg->seconds_ns ? cfg->seconds_ns : 12ull * SD_NS_PER_S;
    res->warmup_ns = cfg->warmup_ns ? cfg->warmup_ns : 3ull * SD_NS_PER_S;
    res->bin_ns = cfg->bin_ns ? cfg->bin_ns : 10ull * SD_NS_PER_MS;
    /* Long runs get wider bins so that a series fits SD_DETECT_MAX_BINS. */
    while (res->seconds_ns / res->bin_ns + 2 > SD_DETECT_MAX_BINS)
        res->bin_ns *= 2;
    res->ipv6 = strchr(cfg->addr, ':') != NULL;
    snprintf(res->name, sizeof(res->name), "%s", cfg->name);
    if (cfg->control)
        snprintf(res->control, sizeof(res->control), "%s", cfg->control);
    else if (sd_detect_control_name(cfg->name, cfg->seed, res->control, sizeof(res->control)) < 0)
        return SD_EINVAL;
    uint32_t max_bins = (uint32_t)(res->seconds_ns / res->bin_ns + 2);
    if (alloc_series(res, max_bins) < 0)
        return SD_ENOMEM;
    bool both = !cfg->down && !cfg->up;
    for (uint8_t dir = 0; dir < 2; dir++) {
        if (!both && !(dir == SD_FETCH_DOWN ? cfg->down : cfg->up))
            continue;
        int k = setup_dir(cfg, res, dir, max_bins, o + n, f + n, first[dir]);
        if (k < 0) {
            sd_detect_result_free(res);
            return k;
        }
        n += k;
    }
    if (!cfg->no_prime)
        prime(cfg, res);
    /* Both directions at once. One after the other would fit fewer seconds
     * into the budget, and on a bloated path the second phase would start
     * behind the first one's queue (seconds of it behind a 1 Mbit/s shaper
     * with GSO-sized packets): its connects would time out. Sharing the
     * path makes each direction's flows slower and noisier alike. */
    uint64_t t0 = sd_mono_ns();
    fetch_many(o, r, rc, n, res->seconds_ns + SETUP_ALLOWANCE_MS * (uint64_t)SD_NS_PER_MS, SYNC_START | LINGER0);
    res->duration_s = (double)(sd_mono_ns() - t0) / 1e9;
    for (int i = 0; i < n; i++) {
        f[i]->r = r[i];
        f[i]->rc = rc[i];
        if (rc[i] == SD_EINVAL) {
            sd_detect_result_free(res);
            return SD_EINVAL; /* options fetch refused (an address it cannot parse, an SNI OpenSSL rejects) */
        }
    }
    for (uint8_t dir = 0; dir < 2; dir++) {
        struct sd_detect_dir *d = &res->d[dir];
        if (!d->measured)
            continue;
        for (int k = 0; k < SD_DETECT_ROLES; k++)
            prepare(&d->f[k], dir, res->bin_ns, max_bins);
        sd_detect_judge(d, res->bin_ns, res->warmup_ns, res->ipv6);
    }
    return 0;
}

void sd_detect_result_free(struct sd_detect_result *res)
{
    free(res->storage);
    res->storage = NULL;
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < SD_DETECT_ROLES; k++) {
            struct sd_detect_flow *f = &res->d[d].f[k];
            f->bins = NULL;
            f->tcp = NULL;
            f->rtt_us = f->lost = f->segs = NULL;
        }
    }
}

const char *sd_detect_verdict_name(unsigned v)
{
    static const char *const names[] = {"not_throttled", "throttled", "blocked", "inconclusive"};
    return v < SD_COUNTOF(names) ? names[v] : "inconclusive";
}

const char *sd_detect_kind_name(unsigned k)
{
    static const char *const names[] = {NULL,      "policing",          "shaping", "loss",   "limited",
                                        "rst",     "handshake_timeout", "connect", "freeze", "error"};
    return k < SD_COUNTOF(names) ? names[k] : NULL;
}

const char *sd_detect_scope_name(unsigned s)
{
    static const char *const names[] = {NULL, "name", "tls", "all"};
    return s < SD_COUNTOF(names) ? names[s] : NULL;
}
