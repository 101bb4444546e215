/*
 * fuzz_ipset.c - CIDR sets against a naive model.
 *
 * Input: lines; each line's first byte is a tag (mod 64), the rest CIDR text.
 * Acceptance must agree with inet_pton(3) (glibc's is strict: no leading
 * zeros in IPv4, RFC 4291 for IPv6) plus a decimal /len without leading
 * zeros; then the first and last address of every accepted prefix, their
 * neighbours, and addresses read from the input bytes are looked up and
 * compared with a containment loop over the accepted prefixes.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

enum { MAXP = 64 };

struct pfx {
    int family;
    uint8_t a[16];
    unsigned plen, tag;
};

static bool model_parse(const uint8_t *p, size_t n, struct pfx *x)
{
    char text[64];
    if (n == 0 || n >= sizeof(text) || memchr(p, 0, n))
        return false;
    memcpy(text, p, n);
    text[n] = 0;
    char *slash = strchr(text, '/');
    if (slash)
        *slash = 0;
    x->family = strchr(text, ':') ? 6 : 4;
    unsigned bits = x->family == 4 ? 32 : 128;
    if (inet_pton(x->family == 4 ? AF_INET : AF_INET6, text, x->a) != 1)
        return false;
    x->plen = bits;
    if (slash) {
        const char *d = slash + 1;
        size_t nd = strlen(d);
        if (nd == 0 || nd > 3 || strspn(d, "0123456789") != nd || (d[0] == '0' && nd > 1))
            return false;
        x->plen = (unsigned)atoi(d);
        if (x->plen > bits)
            return false;
    }
    return true;
}

static bool contains(const struct pfx *x, int family, const uint8_t *a)
{
    if (x->family != family)
        return false;
    for (unsigned i = 0; i < x->plen; i++)
        if (((x->a[i / 8] ^ a[i / 8]) >> (7 - i % 8)) & 1)
            return false;
    return true;
}

static void check(const struct sd_ipset *s, const struct pfx *m, size_t nm, int family, const uint8_t *a)
{
    uint64_t want = 0;
    for (size_t i = 0; i < nm; i++)
        want |= contains(&m[i], family, a) ? (uint64_t)1 << m[i].tag : 0;
    if (sd_ipset_lookup(s, family, a) != want)
        abort();
}

/* Checks the first (|last| false) or last address of |x| and its neighbours. */
static void check_edge(const struct sd_ipset *s, const struct pfx *m, size_t nm, const struct pfx *x, bool last)
{
    size_t n = x->family == 4 ? 4 : 16;
    uint8_t a[16];
    memcpy(a, x->a, sizeof(a));
    for (unsigned i = x->plen; i < 8 * n; i++)
        a[i / 8] = (uint8_t)(last ? a[i / 8] | 0x80 >> (i % 8) : a[i / 8] & ~(0x80 >> (i % 8)));
    check(s, m, nm, x->family, a);
    for (int step = -1; step <= 1; step += 2) {
        uint8_t b[16];
        memcpy(b, a, sizeof(b));
        for (size_t i = n; i-- > 0;) {
            b[i] = (uint8_t)(b[i] + step);
            if (b[i] != (step > 0 ? 0 : 0xff))
                break;
        }
        check(s, m, nm, x->family, b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_ipset *s = sd_ipset_new();
    struct pfx m[MAXP];
    size_t nm = 0;
    const uint8_t *p = data, *end = data + size, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL && nm < MAXP) {
        if (nl > p) {
            unsigned tag = p[0] % 64;
            bool ok = model_parse(p + 1, (size_t)(nl - p - 1), &m[nm]);
            if ((sd_ipset_add_text(s, (const char *)p + 1, (size_t)(nl - p - 1), tag) == 0) != ok)
                abort();
            if (ok)
                m[nm++].tag = tag;
        }
        p = nl + 1;
    }
    if (sd_ipset_compile(s) != 0 || sd_ipset_count(s) != nm)
        abort();
    for (size_t i = 0; i < nm; i++) {
        check_edge(s, m, nm, &m[i], false);
        check_edge(s, m, nm, &m[i], true);
    }
    for (; end - p >= 16; p += 16) {
        check(s, m, nm, 4, p);
        check(s, m, nm, 6, p);
    }
    sd_ipset_free(s);
    return 0;
}
