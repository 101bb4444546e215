/*
 * names_sets.h - the rule sets and names bench_names and pair_names measure
 * (see bench_names.c for what each set is). Everything is static: each
 * bench includes it once.
 */
#ifndef SD_BENCH_NAMES_SETS_H
#define SD_BENCH_NAMES_SETS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NLOOK = 200000, NSYNTH = 1000000 };

struct strs { /* a list of byte strings in one buffer */
    char *buf;
    size_t *off, *len;
    size_t n, cap, blen, bcap;
};

static void strs_push(struct strs *l, const char *p, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->off = realloc(l->off, l->cap * sizeof(*l->off));
        l->len = realloc(l->len, l->cap * sizeof(*l->len));
    }
    while (l->blen + n > l->bcap) {
        l->bcap = l->bcap ? 2 * l->bcap : 65536;
        l->buf = realloc(l->buf, l->bcap);
    }
    if (!l->off || !l->len || !l->buf) {
        fprintf(stderr, "bench_names: out of memory\n");
        exit(1);
    }
    memcpy(l->buf + l->blen, p, n);
    l->off[l->n] = l->blen;
    l->len[l->n++] = n;
    l->blen += n;
}

static void strs_free(struct strs *l)
{
    free(l->buf);
    free(l->off);
    free(l->len);
    memset(l, 0, sizeof(*l));
}

static uint64_t rnd(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *const onset[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v",
                                    "z", "st", "tr", "ch", "sh", "pl", "gr", ""};
static const char *const vowel[] = {"a", "e", "i", "o", "u", "y", "ia", "ou", "ee"};
static const char *const coda[] = {"", "", "", "n", "r", "s", "t", "x", "m"};
static const char *const tld[] = {"com", "com", "com", "com", "ru", "ru", "ru", "net", "org", "io", "info", "xyz",
                                  "su", "de", "co.uk", "xn--p1ai", "online", "site", "me", "tv"};
static const char *const sub[] = {"www", "cdn", "api", "m", "static", "img", "mail", "video", "abs", "pbs"};

#define PICK(a, x) ((a)[rnd(x) % (sizeof(a) / sizeof((a)[0]))])

static size_t put(char *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    memcpy(p + n, s, k);
    return n + k;
}

static size_t syllables(uint64_t *x, char *p, size_t n, int count)
{
    for (int i = 0; i < count; i++) {
        n = put(p, n, PICK(onset, x));
        n = put(p, n, PICK(vowel, x));
        n = put(p, n, PICK(coda, x));
    }
    return n;
}

/* A registrable name: label.tld of at least |minsyl| syllables, now and then
 * with digits or a hyphen. */
static size_t gen_domain(uint64_t *x, char *p, int minsyl)
{
    size_t n = syllables(x, p, 0, minsyl + (int)(rnd(x) % 3));
    uint64_t r = rnd(x) % 16;
    if (r == 0)
        n += (size_t)sprintf(p + n, "%u", (unsigned)(rnd(x) % 1000));
    else if (r == 1) {
        p[n++] = '-';
        n = syllables(x, p, n, 1 + (int)(rnd(x) % 2));
    }
    p[n++] = '.';
    return put(p, n, PICK(tld, x));
}

/* A fresh host name: 0-2 sub-labels over a registrable name. */
static size_t gen_host(uint64_t *x, char *p)
{
    size_t n = 0;
    for (int k = (int)(rnd(x) % 3); k > 0; k--) {
        n = rnd(x) % 2 ? put(p, n, PICK(sub, x)) : syllables(x, p, n, 1 + (int)(rnd(x) % 2));
        p[n++] = '.';
    }
    return n + gen_domain(x, p + n, 1);
}

/*
 * Makes |total| patterns: exact, "*.d", "*d" in the given percentages, the rest
 * substrings of 2-3 syllables or "<syllable>.<tld start>" ("*t.co*"-like).
 * |hosts| receives lookups: listed names, subdomains and fresh names.
 */
static void gen_synth(struct strs *pats, struct strs *hosts, size_t total, const int pct[3])
{
    uint64_t x = 0x5eedULL;
    char b[600];
    for (size_t i = 0; i < total; i++) {
        uint64_t r = rnd(&x) % 100;
        size_t n;
        if (r < (uint64_t)pct[0]) {
            n = gen_host(&x, b);
        } else if (r < (uint64_t)(pct[0] + pct[1])) {
            b[0] = '*', b[1] = '.';
            n = 2 + gen_domain(&x, b + 2, 1);
        } else if (r < (uint64_t)(pct[0] + pct[1] + pct[2])) {
            b[0] = '*'; /* long enough to be specific, like "*twitter.com" */
            n = 1 + gen_domain(&x, b + 1, 3);
        } else { /* a keyword, now and then across a dot like "*t.co*" */
            b[0] = '*';
            n = syllables(&x, b, 1, 2 + (int)(rnd(&x) % 2));
            if (rnd(&x) % 32 == 0) {
                n = syllables(&x, b, 1, 1 + (int)(rnd(&x) % 2));
                b[n++] = '.';
                const char *t = PICK(tld, &x);
                b[n++] = t[0];
                b[n++] = t[1];
            }
            b[n++] = '*';
        }
        strs_push(pats, b, n);
    }
    for (size_t i = 0; i < NLOOK; i++) {
        const size_t k = (size_t)(rnd(&x) % pats->n);
        const char *p = pats->buf + pats->off[k];
        size_t pl = pats->len[k], n = 0;
        uint64_t r = rnd(&x) % 4;
        if (r == 0 && p[0] != '*') { /* a listed name */
            memcpy(b, p, pl);
            n = pl;
        } else if (r == 1 && p[0] == '*' && p[pl - 1] != '*') { /* under a suffix rule */
            n = syllables(&x, b, 0, 1 + (int)(rnd(&x) % 2));
            memcpy(b + n, p + 1, pl - 1);
            n += pl - 1;
        } else {
            n = gen_host(&x, b);
        }
        strs_push(hosts, b, n);
    }
}

/* The tag the benches give pattern |p|/|n|: 0 exact, 1 "*.d", 2 "*d", 3 "*k*". */
static unsigned pattern_tag(const char *p, size_t n)
{
    return p[0] != '*' ? 0 : p[1] == '.' ? 1 : p[n - 1] != '*' ? 2 : 3;
}

/* The Re:filter sets from domains_all.lst (|f|, closed here): every line as
 * "d" and "*.d", and NLOOK names to look up, a quarter listed, a quarter
 * below a listed one, half fresh. */
static void gen_refilter(FILE *f, struct strs *pats, struct strs *hosts)
{
    char line[600], b[700];
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0)
            continue;
        strs_push(pats, line, n);
        b[0] = '*', b[1] = '.';
        memcpy(b + 2, line, n);
        strs_push(pats, b, n + 2);
    }
    fclose(f);
    if (pats->n == 0)
        return;
    uint64_t x = 0xfeedULL;
    for (size_t i = 0; i < NLOOK; i++) { /* a quarter listed, a quarter below, half fresh */
        uint64_t k = rnd(&x) % 4;
        size_t j = (size_t)(rnd(&x) % (pats->n / 2)) * 2, n;
        if (k == 0) {
            n = pats->len[j];
            memcpy(b, pats->buf + pats->off[j], n);
        } else if (k == 1) {
            n = put(b, 0, PICK(sub, &x));
            b[n++] = '.';
            memcpy(b + n, pats->buf + pats->off[j], pats->len[j]);
            n += pats->len[j];
        } else {
            n = gen_host(&x, b);
        }
        strs_push(hosts, b, n);
    }
}

/* Opens |arg|, else ../shared/data/refilter/|file| beside the source tree (or
 * beside the directory holding git worktrees). */
static FILE *open_list(const char *arg, const char *file)
{
    if (arg)
        return fopen(arg, "r");
    const char *up[] = {"..", "../.."};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/shared/data/refilter/%s", SD_SOURCE_DIR, up[i], file);
        FILE *f = fopen(path, "r");
        if (f)
            return f;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs lookups [lo, hi) of some set; returns the OR of the answers. */

#endif
