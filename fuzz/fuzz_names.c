/*
 * fuzz_names.c - the name matcher against a naive model.
 *
 * Input: byte 0 selects the options (low 2 bits); the rest is split at '\n'.
 * Every piece but the last is a pattern whose first byte is its tag (mod 64);
 * the last piece is the name. Each pattern's acceptance must agree with the
 * grammar in names.h; then the name, each pattern body and each body with a
 * byte before and after are looked up and compared with a naive matcher,
 * one at a time and all in one batch, and the patterns sd_names_explain()
 * reports must carry the answer's tags.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

enum { MAXP = 64 };

struct model {
    int kind; /* 0 exact, 1 suffix, 2 substring */
    const uint8_t *b;
    size_t n;
    unsigned tag;
};

static uint8_t fold(uint8_t c, bool on)
{
    return on && c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool eq(const uint8_t *a, const uint8_t *b, size_t n, bool f)
{
    for (size_t i = 0; i < n; i++)
        if (fold(a[i], f) != fold(b[i], f))
            return false;
    return true;
}

/* The grammar of names.h, written independently of names.c and names_sub.c. */
static bool model_parse(const uint8_t *p, size_t n, struct model *m)
{
    if (n == 0 || n > 255 || memchr(p, 0, n))
        return false;
    size_t lo = 0, hi = n;
    m->kind = 0;
    if (p[0] == '*') {
        lo = 1;
        m->kind = 1;
        if (n >= 2 && p[n - 1] == '*') {
            hi = n - 1;
            m->kind = 2;
        }
    }
    if (lo >= hi || memchr(p + lo, '*', hi - lo))
        return false;
    m->b = p + lo;
    m->n = hi - lo;
    return true;
}

static uint64_t model_lookup(const struct model *m, size_t nm, unsigned opts, const uint8_t *s, size_t n)
{
    bool f = opts & SD_NAMES_CASEFOLD;
    if ((opts & SD_NAMES_STRIP_DOT) && n && s[n - 1] == '.')
        n--;
    uint64_t r = 0;
    for (size_t i = 0; i < nm; i++) {
        bool hit = false;
        if (m[i].kind == 0)
            hit = n == m[i].n && eq(s, m[i].b, n, f);
        else if (m[i].kind == 1)
            hit = n >= m[i].n && eq(s + n - m[i].n, m[i].b, m[i].n, f);
        else
            for (size_t j = 0; !hit && j + m[i].n <= n; j++)
                hit = eq(s + j, m[i].b, m[i].n, f);
        r |= hit ? (uint64_t)1 << m[i].tag : 0;
    }
    return r;
}

static void union_tags(void *arg, const char *pattern, size_t n, uint64_t tags)
{
    (void)pattern;
    if (n == 0 || n > 257 || !tags)
        abort();
    *(uint64_t *)arg |= tags;
}

static void check(const struct sd_names *s, const struct model *m, size_t nm, unsigned opts, const uint8_t *p,
                  size_t n)
{
    uint64_t want = model_lookup(m, nm, opts, p, n), why = 0;
    if (sd_names_lookup(s, p, n) != want)
        abort();
    /* The patterns sd_names_explain() reports carry exactly the tags of the answer. */
    size_t len = n - ((opts & SD_NAMES_STRIP_DOT) && n && p[n - 1] == '.');
    int rc = sd_names_explain(s, p, n, union_tags, &why);
    if (len > SD_NAME_MAX ? rc != SD_ERANGE || why : rc != 0 || why != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned opts = data[0] & 3;
    struct sd_names *s = sd_names_new(opts);
    struct model m[MAXP];
    size_t nm = 0;
    const uint8_t *p = data + 1, *end = data + size;
    const uint8_t *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nm < MAXP) {
        if (nl > p) {
            unsigned tag = p[0] % 64;
            bool ok = model_parse(p + 1, (size_t)(nl - p - 1), &m[nm]);
            if ((sd_names_add(s, (const char *)p + 1, (size_t)(nl - p - 1), tag) == 0) != ok)
                abort();
            if (ok)
                m[nm++].tag = tag;
        }
        p = nl + 1;
    }
    if (sd_names_compile(s) != 0 || sd_names_count(s) != nm)
        abort();
    check(s, m, nm, opts, p, (size_t)(end - p));
    /* The same names in one batch (sd_names_lookup_batch()): the name, then
     * each body, the body between dots and after one. */
    static uint8_t bufs[MAXP][260];
    const uint8_t *bp[1 + 3 * MAXP];
    size_t bn[1 + 3 * MAXP], k = 0;
    uint64_t out[1 + 3 * MAXP];
    bp[k] = p;
    bn[k++] = (size_t)(end - p);
    for (size_t i = 0; i < nm; i++) {
        uint8_t *buf = bufs[i];
        check(s, m, nm, opts, m[i].b, m[i].n);
        buf[0] = '.';
        memcpy(buf + 1, m[i].b, m[i].n);
        buf[m[i].n + 1] = '.';
        check(s, m, nm, opts, buf, m[i].n + 2);
        check(s, m, nm, opts, buf, m[i].n + 1);
        bp[k] = m[i].b, bn[k++] = m[i].n;
        bp[k] = buf, bn[k++] = m[i].n + 2;
        bp[k] = buf, bn[k++] = m[i].n + 1;
    }
    sd_names_lookup_batch(s, bp, bn, k, out);
    for (size_t i = 0; i < k; i++)
        if (out[i] != model_lookup(m, nm, opts, bp[i], bn[i]))
            abort();
    sd_names_free(s);
    return 0;
}
