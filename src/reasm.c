/*
 * reasm.c - offset-based stream reassembly into a caller's buffer.
 *
 * State is the contiguous prefix [0, contig) plus up to SD_REASM_RANGES
 * disjoint, sorted ranges of bytes received beyond a hole. A new piece is
 * clipped to the cap, then only its bytes that no earlier piece covered are
 * copied ("first wins": a retransmission with different bytes cannot rewrite
 * what the inspector may already have read). Ranges that touch are merged, and
 * the first range is folded into the prefix once the hole before it fills.
 *
 *   0            contig      r[0].start  r[0].end     r[1].start ...
 *   |############|...hole....|###########|...hole.....|####
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "reasm.h"

void sd_reasm_init(struct sd_reasm *r, uint8_t *buf, uint32_t cap)
{
    memset(r, 0, sizeof(*r));
    r->data = buf;
    /* sd_reasm_add() returns the contiguous length as an int. */
    r->cap = cap > INT_MAX ? INT_MAX : cap;
}

/* Copies the bytes of [s, e) that are not yet present. Present means below
 * contig or inside one of the ranges. */
static void copy_new(struct sd_reasm *r, uint32_t s, uint32_t e, const uint8_t *src, uint64_t src_off)
{
    uint32_t cur = SD_MAX(s, r->contig);
    for (int i = 0; i <= r->n && cur < e; i++) {
        uint32_t hole_end = i < r->n ? SD_MIN(r->r[i].start, e) : e;
        if (i < r->n && r->r[i].end <= cur)
            continue;
        if (cur < hole_end)
            memcpy(r->data + cur, src + (cur - src_off), hole_end - cur);
        if (i < r->n)
            cur = SD_MAX(cur, r->r[i].end);
    }
}

int sd_reasm_add(struct sd_reasm *r, uint64_t off, const uint8_t *p, size_t n)
{
    if (n == 0 || off >= r->cap) {
        if (n && off >= r->cap)
            r->clipped = 1;
        return (int)r->contig;
    }
    /* off < cap here, so cap - off cannot wrap (off + n could). */
    bool clip = n > r->cap - off;
    uint32_t s = (uint32_t)off, e = clip ? r->cap : (uint32_t)(off + n);
    if (e <= r->contig) {
        r->clipped |= clip;
        return (int)r->contig;
    }

    uint32_t ns = SD_MAX(s, r->contig), ne = e;
    if (ns == r->contig) {
        /* The piece extends the prefix: grow it and absorb the ranges it reaches. */
        copy_new(r, s, e, p, off);
        r->clipped |= clip;
        r->contig = ne;
        int k = 0;
        while (k < r->n && r->r[k].start <= r->contig) {
            r->contig = SD_MAX(r->contig, r->r[k].end);
            k++;
        }
        memmove(&r->r[0], &r->r[k], (size_t)(r->n - k) * sizeof(r->r[0]));
        r->n = (uint8_t)(r->n - k);
        r->high = SD_MAX(r->high, r->contig);
        return (int)r->contig;
    }

    /* Beyond a hole: work out the merge first, so that a piece which would
     * need too many ranges changes nothing. */
    int first = 0;
    while (first < r->n && r->r[first].end < ns)
        first++;
    int last = first - 1;
    while (last + 1 < r->n && r->r[last + 1].start <= ne)
        last++;
    int merged = last - first + 1;
    if (merged == 0 && r->n == SD_REASM_RANGES)
        return SD_ENOMEM;

    copy_new(r, s, e, p, off);
    r->clipped |= clip;
    r->high = SD_MAX(r->high, e);
    if (merged > 0) {
        ns = SD_MIN(ns, r->r[first].start);
        ne = SD_MAX(ne, r->r[last].end);
        memmove(&r->r[first + 1], &r->r[last + 1], (size_t)(r->n - last - 1) * sizeof(r->r[0]));
        r->n = (uint8_t)(r->n - merged + 1);
    } else {
        memmove(&r->r[first + 1], &r->r[first], (size_t)(r->n - first) * sizeof(r->r[0]));
        r->n++;
    }
    r->r[first].start = ns;
    r->r[first].end = ne;
    return (int)r->contig;
}
