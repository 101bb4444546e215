/*
 * pair_names.c - two builds of the matcher in one process, their batches in turn.
 *
 *   pair_names [ROUNDS [synth-mix | synth-even | refilter]]
 *
 * Built by pair_names.sh, which compiles the second version (names.c, and
 * names_sub.c since the split) with its external symbols renamed B_*. The
 * two sets are built from the same patterns (names_sets.h, as bench_names
 * builds them); every name is looked up in both first (the answers must
 * agree), then batches of BATCH lookups alternate between them, the order
 * flipped each time, each timed on the thread's CPU clock. This host's speed
 * drifts by tens of per cent over minutes (bench/README.md), so runs of two
 * binaries minutes apart cannot see a change of a few per cent; a batch and
 * its pair, run milliseconds apart, can. Prints the median of each and the
 * quartiles of the per-pair ratio B/A.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "names_sets.h"

enum { BATCH = 1000, PER_ROUND = 20 };

struct sd_names *B_sd_names_new(unsigned opts);
int B_sd_names_add(struct sd_names *s, const char *pattern, size_t n, unsigned tag);
int B_sd_names_compile(struct sd_names *s);
uint64_t B_sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n);
void B_sd_names_free(struct sd_names *s);

struct impl {
    struct sd_names *(*make)(unsigned opts);
    int (*add)(struct sd_names *s, const char *pattern, size_t n, unsigned tag);
    int (*compile)(struct sd_names *s);
    uint64_t (*lookup)(const struct sd_names *s, const uint8_t *name, size_t n);
    void (*free)(struct sd_names *s);
};

static const struct impl impl_a = {sd_names_new, sd_names_add, sd_names_compile, sd_names_lookup, sd_names_free};
static const struct impl impl_b = {B_sd_names_new, B_sd_names_add, B_sd_names_compile, B_sd_names_lookup, B_sd_names_free};

/* The set of |pats| with bench_names' tags, or exits. */
static struct sd_names *build(const struct impl *im, const struct strs *pats)
{
    struct sd_names *s = im->make(SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT);
    for (size_t i = 0; s && i < pats->n; i++) {
        const char *p = pats->buf + pats->off[i];
        unsigned tag = pattern_tag(p, pats->len[i]);
        if (im->add(s, p, pats->len[i], tag) != 0) {
            fprintf(stderr, "pair_names: bad pattern %.*s\n", (int)pats->len[i], p);
            exit(1);
        }
    }
    if (!s || im->compile(s) != 0) {
        fprintf(stderr, "pair_names: out of memory\n");
        exit(1);
    }
    return s;
}

/* ns per lookup over the batch of BATCH names from |lo|. */
static double run(const struct impl *im, const struct sd_names *s, const struct strs *h, size_t lo, uint64_t *sink)
{
    uint64_t c0 = cpu_ns(), m = 0;
    for (size_t i = lo; i < lo + BATCH; i++)
        m ^= im->lookup(s, (const uint8_t *)h->buf + h->off[i], h->len[i]);
    *sink ^= m;
    return (double)(cpu_ns() - c0) / BATCH;
}

int main(int argc, char **argv)
{
    static const int mix[3] = {40, 40, 15}, even[3] = {25, 25, 25};
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    const char *set = argc > 2 ? argv[2] : "synth-mix";
    if (rounds < 1 || (strcmp(set, "synth-mix") && strcmp(set, "synth-even") && strcmp(set, "refilter"))) {
        fprintf(stderr, "usage: pair_names [ROUNDS [synth-mix | synth-even | refilter]]\n");
        return 2;
    }
    struct strs pats = {0}, hosts = {0};
    if (!strcmp(set, "refilter")) {
        FILE *f = open_list(NULL, "domains_all.lst");
        if (!f) {
            fprintf(stderr, "pair_names: domains_all.lst not found (../shared/data/refilter)\n");
            return 2;
        }
        gen_refilter(f, &pats, &hosts);
    } else {
        gen_synth(&pats, &hosts, NSYNTH, !strcmp(set, "synth-even") ? even : mix);
    }
    if (hosts.n < BATCH) {
        fprintf(stderr, "pair_names: fewer than %d names to look up\n", BATCH);
        return 2;
    }
    struct sd_names *a = build(&impl_a, &pats), *b = build(&impl_b, &pats);
    size_t bad = 0;
    for (size_t i = 0; i < hosts.n; i++) {
        const uint8_t *p = (const uint8_t *)hosts.buf + hosts.off[i];
        bad += impl_a.lookup(a, p, hosts.len[i]) != impl_b.lookup(b, p, hosts.len[i]);
    }
    size_t nb = hosts.n / BATCH, total = (size_t)rounds * PER_ROUND, k = 0;
    double *ta = malloc(total * sizeof(double)), *tb = malloc(total * sizeof(double)), *ratio = malloc(total * sizeof(double));
    if (!ta || !tb || !ratio) {
        fprintf(stderr, "pair_names: out of memory\n");
        return 1;
    }
    uint64_t sink = 0;
    for (; k < total; k++) {
        size_t lo = (k % nb) * BATCH;
        if (k & 1) {
            tb[k] = run(&impl_b, b, &hosts, lo, &sink);
            ta[k] = run(&impl_a, a, &hosts, lo, &sink);
        } else {
            ta[k] = run(&impl_a, a, &hosts, lo, &sink);
            tb[k] = run(&impl_b, b, &hosts, lo, &sink);
        }
        ratio[k] = tb[k] / ta[k];
    }
    qsort(ta, k, sizeof(double), cmp_double);
    qsort(tb, k, sizeof(double), cmp_double);
    qsort(ratio, k, sizeof(double), cmp_double);
    printf("%s: %zu batch pairs  A p50 %.0f ns  B p50 %.0f ns  B/A by pair: p25 %.3f p50 %.3f p75 %.3f\n", set, k, ta[k / 2],
           tb[k / 2], ratio[k / 4], ratio[k / 2], ratio[3 * k / 4]);
    impl_a.free(a);
    impl_b.free(b);
    strs_free(&pats);
    strs_free(&hosts);
    free(ta);
    free(tb);
    free(ratio);
    if (bad)
        fprintf(stderr, "pair_names: %zu names answered differently (checksum %llx)\n", bad, (unsigned long long)sink);
    return bad ? 1 : 0;
}
