/*
 * bench_names.c - the rule matcher at registry scale.
 *
 *   bench_names [domains.lst [ipsum.lst]]
 *
 * Sets measured:
 *   refilter   every line of domains_all.lst as "d" (tag 0) and "*.d" (tag 1)
 *   synth-mix  1M synthetic patterns: 40% exact, 40% "*.d", 15% "*d", 5% "*keyword*"
 *   synth-even 1M synthetic patterns, 25% of each kind (a stress case: real
 *              lists hold few substring rules, and every one costs)
 *   ipsum      the IPv4 CIDR list
 *   adversarial  synth-mix against names of 255 dots and of 4 KB
 * Names are generated from syllables and a weighted TLD list with a fixed
 * seed. Lookups mix listed names, subdomains of listed names and fresh names;
 * the fresh ones mostly match nothing. They are timed in batches of 1000, and
 * the columns are ns per lookup over the per-batch means: p50/p99 on the
 * thread's CPU clock (so a batch preempted on a shared machine is not charged
 * for time it did not run), p50_wall on CLOCK_MONOTONIC, and p50_miss (CPU)
 * over only the names that match nothing, the common case for a censor.
 * p50_batch (CPU) is the same names through sd_names_lookup_batch(), a
 * batch of 1000 a call, as `slowdown match` looks names up (its answers are
 * checked against the single lookups first).
 * "build" is adding plus compiling, on the thread's CPU clock like the
 * lookups (build_wall_ms in the key=value line is the wall clock); memory is the heap the set holds
 * afterwards (mallinfo2). The final line repeats the figures as key=value
 * pairs for scripts. SD_BENCH_NAMES_SETS (e.g. "synth-mix,refilter") limits
 * the run to the sets it names (for profiling one of them).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"
#include "names_sets.h"

enum { BATCH = 1000, PASSES = 5 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* ---- measuring ---- */

struct result {
    const char *key;
    size_t patterns;
    double build_ms, build_wall_ms, per_million_ms, mem_mb, p50, p99, p50_wall, p50_miss, p50_batch, mlps, hit_pct;
};

typedef uint64_t (*batch_fn)(const void *ctx, size_t lo, size_t hi);

/*
 * Times PASSES passes over |n| lookups in batches of BATCH. Each batch is
 * timed on the thread's CPU clock (p50, p99: a batch preempted on a busy
 * machine is not charged for the time it did not run) and on CLOCK_MONOTONIC
 * (p50_wall, which does include the interference).
 */
static void time_batches(batch_fn fn, const void *ctx, size_t n, struct result *r)
{
    size_t nb = n / BATCH, k = 0;
    double *cpu = malloc(PASSES * nb * sizeof(*cpu)), *wall = malloc(PASSES * nb * sizeof(*wall));
    uint64_t sink = fn(ctx, 0, n), total = 0; /* warm up */
    for (int pass = 0; pass < PASSES; pass++)
        for (size_t b = 0; b < nb; b++, k++) {
            uint64_t w0 = now_ns(), c0 = cpu_ns();
            sink ^= fn(ctx, b * BATCH, (b + 1) * BATCH);
            uint64_t c1 = cpu_ns(), w1 = now_ns();
            total += c1 - c0;
            cpu[k] = (double)(c1 - c0) / BATCH;
            wall[k] = (double)(w1 - w0) / BATCH;
        }
    qsort(cpu, k, sizeof(*cpu), cmp_double);
    qsort(wall, k, sizeof(*wall), cmp_double);
    r->p50 = cpu[k / 2];
    r->p99 = cpu[k * 99 / 100];
    r->p50_wall = wall[k / 2];
    r->mlps = (double)(k * BATCH) / ((double)total / 1e9) / 1e6;
    free(cpu);
    free(wall);
    if (sink == 42) /* keep the lookups */
        fputc(' ', stderr);
}

struct names_ctx {
    const struct sd_names *s;
    const struct strs *h;
};

static uint64_t names_batch(const void *ctx, size_t lo, size_t hi)
{
    const struct names_ctx *c = ctx;
    uint64_t m = 0;
    for (size_t i = lo; i < hi; i++)
        m ^= sd_names_lookup(c->s, (const uint8_t *)c->h->buf + c->h->off[i], c->h->len[i]);
    return m;
}

struct many_ctx {
    const struct sd_names *s;
    const uint8_t *const *p;
    const size_t *len;
    uint64_t *out;
};

static uint64_t names_many(const void *ctx, size_t lo, size_t hi)
{
    const struct many_ctx *c = ctx;
    uint64_t m = 0;
    sd_names_lookup_batch(c->s, c->p + lo, c->len + lo, hi - lo, c->out + lo);
    for (size_t i = lo; i < hi; i++)
        m ^= c->out[i];
    return m;
}

/* p50_batch: the names of |h| through sd_names_lookup_batch(), after
 * checking that it answers as sd_names_lookup() does. */
static void time_names_batch(const struct sd_names *s, const struct strs *h, struct result *r)
{
    const uint8_t **p = malloc(h->n * sizeof(*p));
    uint64_t *out = malloc(h->n * sizeof(*out));
    if (!p || !out) {
        fprintf(stderr, "bench_names: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < h->n; i++)
        p[i] = (const uint8_t *)h->buf + h->off[i];
    sd_names_lookup_batch(s, p, h->len, h->n, out);
    for (size_t i = 0; i < h->n; i++)
        if (out[i] != sd_names_lookup(s, p[i], h->len[i])) {
            fprintf(stderr, "bench_names: the batch answers %.*s differently\n", (int)h->len[i], (const char *)p[i]);
            exit(1);
        }
    struct many_ctx c = {s, p, h->len, out};
    struct result rb = *r;
    time_batches(names_many, &c, h->n, &rb);
    r->p50_batch = rb.p50;
    free(p);
    free(out);
}

/* Times all of |h|, then (p50_miss) only the names that match nothing: the
 * common case for a censor, where most traffic is not on any list. */
static void time_names(const struct sd_names *s, const struct strs *h, struct result *r)
{
    struct strs miss = {0};
    for (size_t i = 0; i < h->n; i++)
        if (sd_names_lookup(s, (const uint8_t *)h->buf + h->off[i], h->len[i]) == 0)
            strs_push(&miss, h->buf + h->off[i], h->len[i]);
    r->hit_pct = 100.0 * (double)(h->n - miss.n) / (double)h->n;
    struct names_ctx c = {s, h};
    time_batches(names_batch, &c, h->n, r);
    if (miss.n >= BATCH) {
        struct result rm = *r;
        c.h = &miss;
        time_batches(names_batch, &c, miss.n, &rm);
        r->p50_miss = rm.p50;
    }
    time_names_batch(s, h, r);
    strs_free(&miss);
}

static struct sd_names *build_names(const struct strs *pats, unsigned opts, struct result *r)
{
    size_t m0 = heap_used();
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    struct sd_names *s = sd_names_new(opts);
    for (size_t i = 0; i < pats->n; i++) {
        const char *p = pats->buf + pats->off[i];
        unsigned tag = pattern_tag(p, pats->len[i]);
        if (sd_names_add(s, p, pats->len[i], tag) != 0) {
            fprintf(stderr, "bench_names: bad pattern %.*s\n", (int)pats->len[i], p);
            exit(1);
        }
    }
    if (sd_names_compile(s) != 0) {
        fprintf(stderr, "bench_names: compile failed\n");
        exit(1);
    }
    r->build_ms = (double)(cpu_ns() - c0) / 1e6;
    r->build_wall_ms = (double)(now_ns() - t0) / 1e6;
    r->patterns = pats->n;
    r->per_million_ms = r->build_ms * 1e6 / (double)pats->n;
    r->mem_mb = (double)(heap_used() - m0) / (1 << 20);
    return s;
}

static void run_synth(const char *key, const int pct[3], struct result *r)
{
    struct strs pats = {0}, hosts = {0};
    gen_synth(&pats, &hosts, NSYNTH, pct);
    r->key = key;
    struct sd_names *s = build_names(&pats, SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT, r);
    time_names(s, &hosts, r);
    sd_names_free(s);
    strs_free(&pats);
    strs_free(&hosts);
}

static int run_refilter(const char *arg, struct result *r)
{
    FILE *f = open_list(arg, "domains_all.lst");
    if (!f)
        return -1;
    struct strs pats = {0}, hosts = {0};
    gen_refilter(f, &pats, &hosts);
    r->key = "refilter";
    struct sd_names *s = build_names(&pats, SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT, r);
    time_names(s, &hosts, r);
    sd_names_free(s);
    strs_free(&pats);
    strs_free(&hosts);
    return 0;
}

/* Adversarial names against synth-mix: 255 dots, and 4 KB of syllables and dots
 * (the automaton must read every byte; the suffix table stops at the longest key). */
static void run_adversarial(struct result *r)
{
    struct strs pats = {0}, hosts = {0};
    const int pct[3] = {40, 40, 15};
    gen_synth(&pats, &hosts, NSYNTH, pct);
    struct sd_names *s = build_names(&pats, SD_NAMES_CASEFOLD, r);
    strs_free(&hosts);
    uint64_t x = 7;
    char b[4096];
    for (size_t i = 0; i < 20 * BATCH; i++) {
        size_t n = 0;
        if (i % 2) {
            memset(b, '.', 255);
            n = 255;
        } else {
            while (n < sizeof(b) - 64) {
                n = syllables(&x, b, n, 1);
                b[n++] = '.';
            }
        }
        strs_push(&hosts, b, n);
    }
    r->key = "adversarial";
    time_names(s, &hosts, r);
    sd_names_free(s);
    strs_free(&pats);
    strs_free(&hosts);
}

struct ipset_ctx {
    const struct sd_ipset *s;
    const uint8_t (*addr)[4];
};

static uint64_t ipset_batch(const void *ctx, size_t lo, size_t hi)
{
    const struct ipset_ctx *c = ctx;
    uint64_t m = 0;
    for (size_t i = lo; i < hi; i++)
        m ^= sd_ipset_lookup(c->s, 4, c->addr[i]);
    return m;
}

static int run_ipsum(const char *arg, struct result *r)
{
    FILE *f = open_list(arg, "ipsum.lst");
    if (!f)
        return -1;
    struct strs lines = {0};
    char line[128];
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n)
            strs_push(&lines, line, n);
    }
    fclose(f);
    size_t m0 = heap_used();
    uint64_t t0 = now_ns(), c0 = cpu_ns();
    struct sd_ipset *s = sd_ipset_new();
    for (size_t i = 0; i < lines.n; i++)
        if (sd_ipset_add_text(s, lines.buf + lines.off[i], lines.len[i], (unsigned)(i % 4)) != 0) {
            fprintf(stderr, "bench_names: bad CIDR %.*s\n", (int)lines.len[i], lines.buf + lines.off[i]);
            exit(1);
        }
    if (sd_ipset_compile(s) != 0)
        exit(1);
    *r = (struct result){.key = "ipsum", .patterns = lines.n, .build_ms = (double)(cpu_ns() - c0) / 1e6,
                         .build_wall_ms = (double)(now_ns() - t0) / 1e6, .p50_miss = -1, .p50_batch = -1};
    r->per_million_ms = r->build_ms * 1e6 / (double)lines.n;
    r->mem_mb = (double)(heap_used() - m0) / (1 << 20);

    /* Half random addresses, half listed ones (first address of the prefix). */
    enum { NA = 200000 };
    uint8_t(*addr)[4] = malloc(NA * sizeof(*addr));
    uint64_t x = 99;
    size_t hits = 0;
    for (size_t i = 0; i < NA; i++) {
        unsigned a = (unsigned)rnd(&x), q[4];
        size_t j = (size_t)(rnd(&x) % lines.n);
        char text[64];
        snprintf(text, sizeof(text), "%.*s", (int)SD_MIN(lines.len[j], 63), lines.buf + lines.off[j]);
        if (i % 2 && sscanf(text, "%u.%u.%u.%u", &q[0], &q[1], &q[2], &q[3]) == 4)
            a = q[0] << 24 | q[1] << 16 | q[2] << 8 | q[3];
        addr[i][0] = (uint8_t)(a >> 24), addr[i][1] = (uint8_t)(a >> 16);
        addr[i][2] = (uint8_t)(a >> 8), addr[i][3] = (uint8_t)a;
        hits += sd_ipset_lookup(s, 4, addr[i]) != 0;
    }
    r->hit_pct = 100.0 * (double)hits / NA;
    struct ipset_ctx c = {s, (const uint8_t(*)[4])addr};
    time_batches(ipset_batch, &c, NA, r);
    free(addr);
    sd_ipset_free(s);
    strs_free(&lines);
    return 0;
}

static void print(const struct result *r, size_t n)
{
    printf("%-12s %9s %8s %7s %7s %8s %8s %8s %8s %9s %9s %5s\n", "set", "patterns", "build_ms", "ms/1M", "mem_MB",
           "p50_ns", "p99_ns", "p50_wall", "p50_miss", "p50_batch", "Mlookup/s", "hit%");
    for (size_t i = 0; i < n; i++) {
        char miss[16] = "-", many[16] = "-";
        if (r[i].p50_miss >= 0)
            snprintf(miss, sizeof(miss), "%.1f", r[i].p50_miss);
        if (r[i].p50_batch >= 0)
            snprintf(many, sizeof(many), "%.1f", r[i].p50_batch);
        printf("%-12s %9zu %8.1f %7.1f %7.1f %8.1f %8.1f %8.1f %8s %9s %9.2f %5.1f\n", r[i].key, r[i].patterns,
               r[i].build_ms, r[i].per_million_ms, r[i].mem_mb, r[i].p50, r[i].p99, r[i].p50_wall, miss, many,
               r[i].mlps, r[i].hit_pct);
    }
    for (size_t i = 0; i < n; i++)
        printf("%s%s_patterns=%zu %s_ms_per_1m=%.1f %s_mem_mb=%.1f %s_p50_ns=%.1f %s_p99_ns=%.1f %s_p50_wall_ns=%.1f "
               "%s_p50_miss_ns=%.1f %s_p50_batch_ns=%.1f %s_build_wall_ms=%.1f",
               i ? " " : "", r[i].key, r[i].patterns, r[i].key, r[i].per_million_ms, r[i].key, r[i].mem_mb, r[i].key,
               r[i].p50, r[i].key, r[i].p99, r[i].key, r[i].p50_wall, r[i].key, r[i].p50_miss, r[i].key,
               r[i].p50_batch, r[i].key, r[i].build_wall_ms);
    printf("\n");
}

/* Whether set |key| is to be run (SD_BENCH_NAMES_SETS unset: all of them). */
static int wanted(const char *key)
{
    const char *sets = getenv("SD_BENCH_NAMES_SETS");
    if (!sets || !*sets)
        return 1;
    size_t k = strlen(key);
    for (const char *p = sets; (p = strstr(p, key)) != NULL; p += k)
        if ((p == sets || p[-1] == ',') && (p[k] == '\0' || p[k] == ','))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    struct result r[6] = {0};
    size_t n = 0;
    if (wanted("refilter")) {
        if (run_refilter(argc > 1 ? argv[1] : NULL, &r[n]) == 0)
            n++;
        else
            fprintf(stderr, "bench_names: no domains list, skipping refilter\n");
    }
    const int mix[3] = {40, 40, 15}, even[3] = {25, 25, 25};
    if (wanted("synth-mix"))
        run_synth("synth-mix", mix, &r[n++]);
    if (wanted("synth-even"))
        run_synth("synth-even", even, &r[n++]);
    if (wanted("adversarial"))
        run_adversarial(&r[n++]);
    if (wanted("ipsum")) {
        if (run_ipsum(argc > 2 ? argv[2] : NULL, &r[n]) == 0)
            n++;
        else
            fprintf(stderr, "bench_names: no ipsum list, skipping ipsum\n");
    }
    print(r, n);
    return 0;
}
