/*
 * ipset.c - IPv4 and IPv6 addresses against CIDR sets (declared in names.h).
 *
 * Compiling turns the prefixes of each family into elementary intervals: the
 * sorted start points where the set of containing prefixes changes, each with
 * the OR of their tags, so a lookup is "the last start <= address":
 *
 *   10.0.0.0/8 tag 1, 10.1.0.0/16 tag 2
 *   starts  0.0.0.0   10.0.0.0   10.1.0.0   10.2.0.0   11.0.0.0
 *   mask    0         {1}        {1,2}      {1}        0
 *
 * Prefixes nest or are disjoint, so an interval lies inside at most one prefix
 * per length and filling the masks costs O(intervals * 33) for IPv4 (129 for
 * IPv6), whatever the order of adding. Neighbours with equal masks merge.
 *
 * IPv4 lookups first read a 65,537-entry table indexed by the top 16 bits
 * (256 KB), which narrows the binary search to the starts inside that /16,
 * usually zero to two of them. IPv6 sets are searched directly.
 *
 * Text is parsed strictly: dotted quads of decimal octets without leading
 * zeros; RFC 4291 IPv6 text (one "::" at most, an optional dotted-quad tail);
 * an optional "/len" in decimal without leading zeros. No whitespace, zone
 * ids or octal. Host bits below the prefix length are accepted and cleared
 * ("192.0.2.1/24" adds 192.0.2.0/24), as ipset(8) and iptables do.
 *
 * The families are separate sets: ::ffff:192.0.2.1 is an IPv6 address and
 * matches only IPv6 prefixes. A lookup before compiling (or after a compile
 * that failed) answers 0.
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "names.h"

struct u128 {
    uint64_t hi, lo;
};

struct prefix {
    uint8_t family, plen, tag;
    uint8_t addr[16];
};

/* A prefix as an inclusive range. */
struct range {
    struct u128 start, end;
    uint64_t mask;
};

struct sd_ipset {
    bool compiled;
    bool broken; /* a compile ran out of memory: only sd_ipset_free remains */
    size_t count;
    struct prefix *pfx;
    size_t npfx, cap;

    uint32_t *v4start; /* n4 sorted starts, v4start[0] == 0 */
    uint64_t *v4mask;
    uint32_t *v4idx; /* 65537 entries: starts <= (k << 16) */
    size_t n4;

    struct u128 *v6start;
    uint64_t *v6mask;
    size_t n6;
};

static int u128_cmp(struct u128 a, struct u128 b)
{
    if (a.hi != b.hi)
        return a.hi < b.hi ? -1 : 1;
    return (a.lo > b.lo) - (a.lo < b.lo);
}

static struct u128 u128_from(const uint8_t *addr, int family)
{
    struct u128 v = {0, 0};
    if (family == 4)
        v.lo = sd_rd32be(addr);
    else {
        v.hi = (uint64_t)sd_rd32be(addr) << 32 | sd_rd32be(addr + 4);
        v.lo = (uint64_t)sd_rd32be(addr + 8) << 32 | sd_rd32be(addr + 12);
    }
    return v;
}

/* ---- adding ---- */

struct sd_ipset *sd_ipset_new(void)
{
    return calloc(1, sizeof(struct sd_ipset));
}

void sd_ipset_free(struct sd_ipset *s)
{
    if (!s)
        return;
    free(s->pfx);
    free(s->v4start);
    free(s->v4mask);
    free(s->v4idx);
    free(s->v6start);
    free(s->v6mask);
    free(s);
}

size_t sd_ipset_count(const struct sd_ipset *s)
{
    return s->count;
}

int sd_ipset_add(struct sd_ipset *s, int family, const uint8_t *addr, unsigned plen, unsigned tag)
{
    if (s->compiled || s->broken || tag >= SD_NAMES_MAX_TAGS || (family != 4 && family != 6))
        return SD_EINVAL;
    unsigned alen = family == 4 ? 4 : 16;
    if (plen > alen * 8)
        return SD_EINVAL;
    if (s->npfx == s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 64;
        struct prefix *np = realloc(s->pfx, nc * sizeof(*np));
        if (!np)
            return SD_ENOMEM;
        s->pfx = np;
        s->cap = nc;
    }
    struct prefix *p = &s->pfx[s->npfx++];
    *p = (struct prefix){.family = (uint8_t)family, .plen = (uint8_t)plen, .tag = (uint8_t)tag};
    for (unsigned i = 0; i < alen; i++) {
        unsigned keep = plen >= 8 * (i + 1) ? 8 : plen > 8 * i ? plen - 8 * i : 0;
        p->addr[i] = (uint8_t)(addr[i] & (0xff00u >> keep));
    }
    s->count++;
    return 0;
}

/* ---- text ---- */

/* Decimal without leading zeros, at most |max|. Returns the end or NULL. */
static const char *parse_dec(const char *p, const char *end, unsigned max, unsigned *v)
{
    if (p == end || *p < '0' || *p > '9' || (*p == '0' && end - p > 1 && p[1] >= '0' && p[1] <= '9'))
        return NULL;
    unsigned x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        x = x * 10 + (unsigned)(*p - '0');
        if (x > max)
            return NULL;
    }
    *v = x;
    return p;
}

/* Exactly a dotted quad over [p, end). */
static int parse_v4(const char *p, const char *end, uint8_t out[static 4])
{
    for (int i = 0; i < 4; i++) {
        unsigned v;
        if (i > 0) {
            if (p == end || *p != '.')
                return SD_EINVAL;
            p++;
        }
        if (!(p = parse_dec(p, end, 255, &v)))
            return SD_EINVAL;
        out[i] = (uint8_t)v;
    }
    return p == end ? 0 : SD_EINVAL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly an RFC 4291 address over [p, end). */
static int parse_v6(const char *p, const char *end, uint8_t out[static 16])
{
    uint16_t g[8];
    int ng = 0, gap = -1;
    if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
        gap = 0;
        p += 2;
    }
    while (p < end) {
        const char *tok = p;
        while (tok < end && *tok != ':' && *tok != '.')
            tok++;
        if (tok < end && *tok == '.') { /* dotted-quad tail: the last 32 bits */
            uint8_t q[4];
            if (ng > 6 || parse_v4(p, end, q) < 0)
                return SD_EINVAL;
            g[ng++] = sd_rd16be(q);
            g[ng++] = sd_rd16be(q + 2);
            break;
        }
        unsigned v = 0;
        int nd = 0;
        for (; p < end && hexval(*p) >= 0; p++, nd++)
            v = v << 4 | (unsigned)hexval(*p);
        if (nd == 0 || nd > 4 || ng == 8)
            return SD_EINVAL;
        g[ng++] = (uint16_t)v;
        if (p == end)
            break;
        if (*p != ':' || ++p == end)
            return SD_EINVAL;
        if (*p == ':') {
            if (gap >= 0)
                return SD_EINVAL;
            gap = ng;
            p++;
        }
    }
    if (gap < 0 ? ng != 8 : ng > 7)
        return SD_EINVAL;
    memset(out, 0, 16);
    for (int i = 0, o = 0; i < ng; i++, o++) {
        if (i == gap)
            o += 8 - ng; /* the groups "::" stands for stay zero */
        sd_put16be(out + 2 * o, g[i]);
    }
    return 0;
}

int sd_ipset_add_text(struct sd_ipset *s, const char *text, size_t n, unsigned tag)
{
    if (n == 0)
        return SD_EINVAL;
    const char *p = text, *end = text + n;
    const char *slash = memchr(p, '/', n);
    const char *aend = slash ? slash : end;
    bool v6 = memchr(p, ':', (size_t)(aend - p)) != NULL;
    uint8_t addr[16];
    unsigned plen = v6 ? 128 : 32;
    int rc = v6 ? parse_v6(p, aend, addr) : parse_v4(p, aend, addr);
    if (rc < 0)
        return rc;
    if (slash && parse_dec(slash + 1, end, plen, &plen) != end)
        return SD_EINVAL;
    return sd_ipset_add(s, v6 ? 6 : 4, addr, plen, tag);
}

/* ---- compiling ---- */

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    int c = u128_cmp(x->start, y->start);
    return c ? c : u128_cmp(y->end, x->end); /* wider first */
}

static int u128_qcmp(const void *a, const void *b)
{
    return u128_cmp(*(const struct u128 *)a, *(const struct u128 *)b);
}

static struct u128 u128_inc(struct u128 a)
{
    a.lo++;
    a.hi += a.lo == 0;
    return a;
}

/* Index of the first of |n| sorted |b| that is >= |x|. */
static size_t lower_bound(const struct u128 *b, size_t n, struct u128 x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (u128_cmp(b[mid], x) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * Turns the |nr| ranges of one family (|last| is its last address) into
 * elementary intervals: *starts (sorted, starting at 0) and *masks, *n of
 * each. Sorts and merges |r| in place. 0 or SD_ENOMEM.
 */
static int intervals(struct range *r, size_t nr, struct u128 last, struct u128 **starts, uint64_t **masks,
                     size_t *n)
{
    qsort(r, nr, sizeof(*r), range_cmp);
    size_t nu = 0; /* merge equal prefixes so that each address lies in <= 129 ranges */
    for (size_t i = 0; i < nr; i++) {
        if (nu && u128_cmp(r[nu - 1].start, r[i].start) == 0 && u128_cmp(r[nu - 1].end, r[i].end) == 0)
            r[nu - 1].mask |= r[i].mask;
        else
            r[nu++] = r[i];
    }
    struct u128 *b = malloc((2 * nu + 1) * sizeof(*b));
    uint64_t *m = NULL;
    if (!b)
        return SD_ENOMEM;
    size_t nb = 0;
    b[nb++] = (struct u128){0, 0};
    for (size_t i = 0; i < nu; i++) {
        b[nb++] = r[i].start;
        if (u128_cmp(r[i].end, last) < 0)
            b[nb++] = u128_inc(r[i].end);
    }
    qsort(b, nb, sizeof(*b), u128_qcmp);
    size_t k = 1;
    for (size_t i = 1; i < nb; i++)
        if (u128_cmp(b[i], b[k - 1]) != 0)
            b[k++] = b[i];
    nb = k;
    if (!(m = calloc(nb, sizeof(*m)))) {
        free(b);
        return SD_ENOMEM;
    }
    for (size_t i = 0; i < nu; i++) {
        size_t lo = lower_bound(b, nb, r[i].start);
        size_t hi = u128_cmp(r[i].end, last) < 0 ? lower_bound(b, nb, u128_inc(r[i].end)) : nb;
        for (size_t j = lo; j < hi; j++)
            m[j] |= r[i].mask;
    }
    k = 1;
    for (size_t i = 1; i < nb; i++)
        if (m[i] != m[k - 1]) {
            b[k] = b[i];
            m[k++] = m[i];
        }
    *starts = b;
    *masks = m;
    *n = k;
    return 0;
}

/* Collects the prefixes of |family| as ranges and builds their intervals
 * (*n is 0, and nothing is allocated, when the family has none). */
static int family_build(struct sd_ipset *s, int family, struct u128 **starts, uint64_t **masks, size_t *n)
{
    size_t nr = 0;
    *n = 0;
    for (size_t i = 0; i < s->npfx; i++)
        nr += s->pfx[i].family == family;
    if (nr == 0)
        return 0;
    struct range *r = malloc(nr * sizeof(*r));
    if (!r)
        return SD_ENOMEM;
    unsigned bits = family == 4 ? 32 : 128;
    struct u128 last = family == 4 ? (struct u128){0, UINT32_MAX} : (struct u128){UINT64_MAX, UINT64_MAX};
    size_t j = 0;
    for (size_t i = 0; i < s->npfx; i++) {
        const struct prefix *p = &s->pfx[i];
        if (p->family != family)
            continue;
        struct u128 a = u128_from(p->addr, family), e = a;
        unsigned host = bits - p->plen; /* host bits, all ones in the end address */
        if (host >= 64) {
            e.lo = UINT64_MAX;
            e.hi |= host >= 128 ? UINT64_MAX : (host == 64 ? 0 : UINT64_MAX >> (128 - host));
        } else if (host > 0) {
            e.lo |= UINT64_MAX >> (64 - host);
        }
        r[j++] = (struct range){a, e, (uint64_t)1 << p->tag};
    }
    int rc = intervals(r, nr, last, starts, masks, n);
    free(r);
    return rc;
}

static int v4_build(struct sd_ipset *s)
{
    struct u128 *st = NULL;
    int rc = family_build(s, 4, &st, &s->v4mask, &s->n4);
    if (rc < 0 || s->n4 == 0)
        return rc;
    s->v4start = malloc(s->n4 * sizeof(*s->v4start));
    s->v4idx = malloc(65537 * sizeof(*s->v4idx));
    if (!s->v4start || !s->v4idx) {
        free(st);
        return SD_ENOMEM;
    }
    for (size_t i = 0; i < s->n4; i++)
        s->v4start[i] = (uint32_t)st[i].lo;
    free(st);
    size_t j = 0;
    for (uint64_t k = 0; k <= 65536; k++) {
        while (j < s->n4 && s->v4start[j] < (k << 16))
            j++;
        s->v4idx[k] = (uint32_t)j;
    }
    return 0;
}

int sd_ipset_compile(struct sd_ipset *s)
{
    if (s->compiled)
        return 0;
    if (s->broken)
        return SD_ENOMEM;
    int rc = v4_build(s);
    if (rc == 0)
        rc = family_build(s, 6, &s->v6start, &s->v6mask, &s->n6);
    if (rc < 0) {
        s->broken = true; /* half-built: lookups keep answering 0 */
        return rc;
    }
    free(s->pfx);
    s->pfx = NULL;
    s->npfx = s->cap = 0;
    s->compiled = true;
    return 0;
}

/* ---- lookup ---- */

uint64_t sd_ipset_lookup(const struct sd_ipset *s, int family, const uint8_t *addr)
{
    if (!s->compiled)
        return 0;
    if (family == 4) {
        if (s->n4 == 0)
            return 0;
        uint32_t a = sd_rd32be(addr);
        uint32_t lo = s->v4idx[a >> 16], hi = s->v4idx[(a >> 16) + 1];
        while (lo < hi) { /* count the starts <= a in this /16 */
            uint32_t mid = lo + (hi - lo) / 2;
            if (s->v4start[mid] <= a)
                lo = mid + 1;
            else
                hi = mid;
        }
        return s->v4mask[lo - 1]; /* lo >= 1: v4start[0] == 0 */
    }
    if (family == 6 && s->n6) {
        struct u128 a = u128_from(addr, 6);
        size_t lo = 0, hi = s->n6;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (u128_cmp(s->v6start[mid], a) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return s->v6mask[lo - 1];
    }
    return 0;
}
