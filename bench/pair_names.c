/*
 * pair_names.c - two builds of names.c in one process, their batches in turn.
 *
 * Built by pair_names.sh, which compiles the second names.c with its public
 * symbols renamed B_*. The two sets are built from the same patterns; every
 * name is looked up in both first (the answers must agree), then batches of
 * BATCH lookups alternate between them, the order flipped each time, each
 * timed on the thread's CPU clock. This host's speed drifts by tens of per
 * cent over minutes (bench/README.md), so runs of two binaries minutes apart
 * cannot see a change of a few per cent; a batch and its pair, run
 * milliseconds apart, can. Prints the median of each and the quartiles of
 * the per-pair ratio B/A.
 *
 *   pair_names [ROUNDS [synth-mix | synth-even | refilter]]
 */
#include <stdio.h>
/* The generators and timers of bench_names.c, without its main(). */
#define main bench_names_main
#include "bench_names.c"
#undef main

struct sd_names *B_sd_names_new(unsigned opts);
int B_sd_names_add(struct sd_names *s, const char *pattern, size_t n, unsigned tag);
int B_sd_names_compile(struct sd_names *s);
uint64_t B_sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n);

typedef uint64_t (*look_fn)(const struct sd_names *, const uint8_t *, size_t);

/* ns per lookup over the batch of BATCH names from |lo|. */
static double run(look_fn f, const struct sd_names *s, const struct strs *h, size_t lo, uint64_t *sink)
{
    uint64_t c0 = cpu_ns(), m = 0;
    for (size_t i = lo; i < lo + BATCH; i++)
        m ^= f(s, (const uint8_t *)h->buf + h->off[i], h->len[i]);
    *sink ^= m;
    return (double)(cpu_ns() - c0) / BATCH;
}

int main(int argc, char **argv)
{
    int mix[3] = {40, 40, 15}, even[3] = {25, 25, 25};
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    const char *set = argc > 2 ? argv[2] : "synth-mix";
    const int *pct = !strcmp(set, "synth-even") ? even : mix;
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
        char line[600], b[700];
        while (fgets(line, sizeof(line), f)) {
            size_t n = strcspn(line, "\r\n");
            if (n == 0)
                continue;
            strs_push(&pats, line, n);
            b[0] = '*', b[1] = '.';
            memcpy(b + 2, line, n);
            strs_push(&pats, b, n + 2);
        }
        fclose(f);
        uint64_t x = 0xfeedULL;
        for (size_t i = 0; i < NLOOK; i++) {
            uint64_t k = rnd(&x) % 4;
            size_t j = (size_t)(rnd(&x) % (pats.n / 2)) * 2, n;
            if (k == 0) {
                n = pats.len[j];
                memcpy(b, pats.buf + pats.off[j], n);
            } else if (k == 1) {
                n = put(b, 0, PICK(sub, &x));
                b[n++] = '.';
                memcpy(b + n, pats.buf + pats.off[j], pats.len[j]);
                n += pats.len[j];
            } else {
                n = gen_host(&x, b);
            }
            strs_push(&hosts, b, n);
        }
    } else
        gen_synth(&pats, &hosts, NSYNTH, pct);
    struct result r;
    struct sd_names *a = build_names(&pats, SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT, &r);
    struct sd_names *b = B_sd_names_new(SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT);
    for (size_t i = 0; i < pats.n; i++) {
        const char *p = pats.buf + pats.off[i];
        unsigned tag = p[0] != '*' ? 0 : p[1] == '.' ? 1 : p[pats.len[i] - 1] != '*' ? 2 : 3;
        B_sd_names_add(b, p, pats.len[i], tag);
    }
    B_sd_names_compile(b);
    uint64_t sink = 0;
    size_t bad = 0;
    for (size_t i = 0; i < hosts.n; i++)
        bad += sd_names_lookup(a, (const uint8_t *)hosts.buf + hosts.off[i], hosts.len[i]) !=
               B_sd_names_lookup(b, (const uint8_t *)hosts.buf + hosts.off[i], hosts.len[i]);
    size_t nb = hosts.n / BATCH, per = 20, k = 0;
    double *ta = malloc(sizeof(double) * rounds * per), *tb = malloc(sizeof(double) * rounds * per);
    double *ratio = malloc(sizeof(double) * rounds * per);
    if (!ta || !tb || !ratio) {
        fprintf(stderr, "pair_names: out of memory\n");
        return 1;
    }
    for (int rd = 0; rd < rounds; rd++)
        for (size_t j = 0; j < per; j++, k++) {
            size_t lo = ((rd * per + j) % nb) * BATCH;
            if (k & 1) {
                tb[k] = run(B_sd_names_lookup, b, &hosts, lo, &sink);
                ta[k] = run(sd_names_lookup, a, &hosts, lo, &sink);
            } else {
                ta[k] = run(sd_names_lookup, a, &hosts, lo, &sink);
                tb[k] = run(B_sd_names_lookup, b, &hosts, lo, &sink);
            }
            ratio[k] = tb[k] / ta[k];
        }
    qsort(ta, k, sizeof(double), cmp_double);
    qsort(tb, k, sizeof(double), cmp_double);
    qsort(ratio, k, sizeof(double), cmp_double);
    printf("%s: %zu batch pairs  A p50 %.0f ns  B p50 %.0f ns  B/A by pair: p25 %.3f p50 %.3f p75 %.3f\n", set, k, ta[k / 2],
           tb[k / 2], ratio[k / 4], ratio[k / 2], ratio[3 * k / 4]);
    if (bad)
        fprintf(stderr, "pair_names: %zu names answered differently (checksum %llx)\n", bad, (unsigned long long)sink);
    return bad ? 1 : 0;
}
