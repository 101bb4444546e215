/*
 * names_int.h - the name matcher's internal structures, shared by names.c
 * (the anchored table, the API, the lookup) and names_sub.c (the substring
 * index). Not part of the matcher's API.
 *
 * The lookup interleaves the two passes (sd_names_lookup()), so the small
 * helpers both files inline on its path (fold_copy(), key_eq(),
 * sub_resolve()) are here as static inline. What crosses the files as a
 * call was a call in the single file too: sd__names_sub_positions() and
 * sd__names_sub_scan() once per lookup, sd__names_sub_find() per substring
 * candidate that passed the filter.
 */
#ifndef SD_NAMES_INT_H
#define SD_NAMES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "names.h"

enum kind { K_EXACT, K_DSUFFIX, K_SUFFIX, K_SUBSTR };

struct pat {
    uint32_t off; /* body in the arena */
    uint16_t len;
    uint8_t kind;
    uint8_t tag;
};

enum { SSLOT_INLINE = 18 };

/* A slot of the substring table: 32 bytes, like struct slot, with the tags in
 * place of a triple. A longer key keeps its first SSLOT_INLINE - 8 bytes and
 * the offset of the whole key in longkeys (key_put()). */
struct sslot {
    uint64_t tags;
    uint32_t fp;
    uint16_t len; /* 0 for a free slot */
    uint8_t key[SSLOT_INLINE];
};

/* The substring index (names_sub.c). */
struct subs {
    uint8_t *q4;   /* hash of the last 4 bytes -> lengths 4 to 7 of keys ending with them, Q4_LONGER */
    uint16_t *q8;  /* hash of the last 8 bytes -> lengths from 8 of keys ending with them */
    unsigned q4shift, q8shift;
    uint64_t *filter; /* pair filter: 3 bits per key in one word, 16 to 32 bits per key */
    size_t fmask;
    struct sslot *slots;
    size_t smask;
    uint8_t *longkeys; /* keys longer than SSLOT_INLINE */
    size_t maxlen;
    uint8_t *shorts; /* keys of 1 to 3 bytes: lengths by the value of the last 2 bytes */
};

struct slot; /* a slot of the suffix table (names.c) */

struct sd_names {
    unsigned opts;
    bool compiled;
    bool broken; /* a compile ran out of memory: only sd_names_free remains */
    size_t count;
    uint64_t fmul, fseed; /* substring hash; fmul is also the anchored hash's point */
    uint64_t pw[SD_NAME_MAX + 1]; /* fmul to the power i */
    uint8_t fold[256];    /* byte -> byte as compared (identity or ASCII lower case) */
    uint8_t lenkinds[256];/* length -> W_* of the keys that long */

    uint8_t *arena; /* patterns, until compiled */
    size_t arena_len, arena_cap;
    struct pat *pats;
    size_t npats, pats_cap;

    struct slot *slots;
    size_t smask;
    uint8_t *longkeys; /* keys longer than SLOT_INLINE */
    uint64_t (*triples)[3]; /* tags by kind: exact, dot suffix, suffix */
    uint64_t *filter[3]; /* one per anchored kind, indexed by enum kind */
    size_t fmask[3];
    size_t maxlen;   /* longest key */
    uint16_t *tail;  /* bare suffixes: hash of their last TAIL bytes -> lengths (see table_collect) */
    unsigned tshift;
    uint8_t sufshort; /* bit n - 1: a bare suffix key of n < TAIL bytes exists */
    uint64_t sublens[128][2]; /* substring candidate lengths by mask (sd__names_sub_positions()) */
    uint64_t sublen7[8];      /* by length under 8: mixed into the hash of a key that short (sub_hash7()) */
    uint8_t subcount[128];

    struct subs sub;
};

enum {
    SUB_WIN = 256,  /* positions per window */
    SUB_CTX = 255,  /* bytes kept before a window: the longest key, less one */
    SUB_PAD = 8,    /* zero bytes before the name, read by the first positions' loads */
    SUB_PASS = 16,  /* candidates past the filter, compared in a batch */
};

struct subpass {
    uint64_t g;
    uint32_t end; /* in the name */
    uint32_t len;
};

struct subprobes {
    struct subpass p[SUB_PASS];
    unsigned n;
    uint64_t m; /* tags of batches compared early */
};

/* A window's candidates under 8 bytes, tested (pass[0..np)), and the
 * positions where longer keys may end: sd__names_sub_positions() fills it. */
struct subwin {
    uint16_t cand[SUB_WIN * 7 + 8]; /* position << 3 | (length - 1) */
    uint16_t pass[SUB_WIN * 7 + 1]; /* indexes into cand[] */
    uint16_t longer[SUB_WIN + 1];   /* positions where keys of 8 bytes or more may end */
    size_t np, nl;
};

/* ---- memory (names.c) ---- */

/* |n| * |size| zeroed bytes, cache-line aligned (huge pages asked for from
 * HUGE_MIN); free() frees them. NULL when out of memory. */
void *sd__names_big_calloc(size_t n, size_t size);

/* The smallest power of two of at least |n| (and 64), and the shift that
 * takes a 64-bit hash to an index below it. */
static inline size_t pow2_at_least(size_t n, unsigned *shift)
{
    size_t p = 64;
    unsigned sh = 64 - 6;
    while (p < n) {
        p *= 2;
        sh--;
    }
    if (shift)
        *shift = sh;
    return p;
}

/* ---- shared by both tables ---- */

static inline uint64_t filter_bits(uint64_t g)
{
    return (uint64_t)1 << (g & 63) | (uint64_t)1 << ((g >> 6) & 63) | (uint64_t)1 << ((g >> 12) & 63);
}

/*
 * Keys in slots (both tables): up to |inl| bytes inline; a longer key keeps
 * its first inl - 8 bytes there, then the offset of the whole key in
 * |longkeys|.
 */
static inline void key_put(uint8_t *key, size_t inl, uint8_t *longkeys, size_t *longlen, const uint8_t *k, size_t n)
{
    if (n <= inl) {
        memcpy(key, k, n);
        return;
    }
    uint64_t off = *longlen;
    memcpy(key, k, inl - sizeof(off));
    memcpy(key + inl - sizeof(off), &off, sizeof(off));
    memcpy(longkeys + off, k, n);
    *longlen += n;
}

/* Whether the key stored by key_put() (|n| bytes long) equals fold(p[0..n)). */
static inline bool key_eq(const struct sd_names *s, const uint8_t *key, size_t inl, const uint8_t *longkeys,
                          const uint8_t *p, size_t n)
{
    const uint8_t *k = key;
    size_t j = 0, in = n <= inl ? n : inl - sizeof(uint64_t);
    while (j < in && k[j] == s->fold[p[j]])
        j++;
    if (j < in)
        return false;
    if (n > inl) {
        uint64_t off;
        memcpy(&off, key + in, sizeof(off));
        k = longkeys + off;
        while (j < n && k[j] == s->fold[p[j]])
            j++;
    }
    return j == n;
}

/* dst[0..n) = fold(src[0..n)), 8 bytes at a time. */
static inline void fold_copy(const struct sd_names *s, uint8_t *dst, const uint8_t *src, size_t n)
{
    if (!(s->opts & SD_NAMES_CASEFOLD)) {
        memcpy(dst, src, n);
        return;
    }
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, low;
        memcpy(&x, src + i, 8);
        low = x & ~high;
        /* high bit of a byte: at least 'A', not above 'Z', and ASCII */
        uint64_t upper = (low + (0x80 - 'A') * ones) & ~(low + (0x80 - 'Z' - 1) * ones) & ~x & high;
        x |= upper >> 2; /* 0x80 >> 2 is 0x20 */
        memcpy(dst + i, &x, 8);
    }
    for (; i < n; i++)
        dst[i] = s->fold[src[i]];
}

/* ---- the substring index (names_sub.c) ---- */

/* Builds the index from the K_SUBSTR patterns: 0 or SD_ENOMEM (then
 * half-built; sd_names_free() frees what there is). */
int sd__names_sub_build(struct sd_names *s);
/* The slot holding key fold(p[0..n)) with hash |g|, or NULL. */
const struct sslot *sd__names_sub_find(const struct sd_names *s, uint64_t g, const uint8_t *p, size_t n);
/* The scan's first stages over one window (the lookup runs them on the first). */
void sd__names_sub_positions(const struct sd_names *s, const uint8_t *b, size_t ctx, size_t win, struct subwin *w);
/* sd_names_explain() for the substring index: each key found in the name
 * (|fb| its folded copy) is reported once, through |fn|, as "*KEY*".
 * 0 or SD_ENOMEM. */
int sd__names_sub_explain(const struct sd_names *s, const uint8_t *name, const uint8_t *fb, size_t n,
                          sd_names_pattern_fn fn, void *arg);
/* The substring keys in the name, queued in |sp| for sub_resolve(). */
void sd__names_sub_scan(const struct sd_names *s, const uint8_t *name, size_t n, uint8_t *fb, struct subwin *w,
                        struct subprobes *sp);

/* Compares the queued candidates (their slots prefetched when queued) and
 * adds the tags of those found to sp->m. */
static inline void sub_resolve(const struct sd_names *s, const uint8_t *name, struct subprobes *sp)
{
    for (unsigned i = 0; i < sp->n; i++) {
        const struct subpass *c = &sp->p[i];
        const struct sslot *sl = sd__names_sub_find(s, c->g, name + c->end - c->len, c->len);
        if (sl)
            sp->m |= sl->tags;
    }
    sp->n = 0;
}

#endif
