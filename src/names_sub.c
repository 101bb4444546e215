/*
 * names_sub.c - the substring index of the name matcher ("*t.co*"; names.c
 * has the rest). sd__names_sub_build() makes it when the set is compiled;
 * sd_names_lookup() runs sd__names_sub_positions() on the name's first
 * window between the suffix table's two steps, then sd__names_sub_scan(),
 * and compares what they queued with sub_resolve() (names_int.h) last.
 *
 * Substring keys are found by where they end. The name is folded into a
 * buffer (in windows of SUB_WIN positions, see sd__names_sub_scan()); at
 * each position:
 *
 *   name   w w w . e x a m p l e . c o m      <- positions, left to right
 *                          [ q8  ]           last 8 bytes: keys of 8 bytes or more
 *                              [q4 ]         last 4 bytes: keys of 4 to 7 bytes
 *                      [f4 ]                 first 4 bytes of a candidate
 *
 * q4[] and q8[] map the hash of the last 4 (or 8) bytes to a bit set of the
 * lengths of the keys ending with them (q8: bit j for 8 + j bytes, bit QLONG
 * for 8 + QLONG or more); a bit of q4 says whether q8 is worth reading. The
 * hash of the last bytes is taken once per position, and its high bits pick
 * the q4 or q8 entry. Each length in the set is a candidate, tested by a
 * pair filter: a key under 8 bytes is hashed whole (the 8 bytes that end at
 * the position, masked to its length: one load, one multiply), a longer one
 * from (first 4 bytes, last 8, length). Only a candidate passing
 * it is looked up in the table of keys and their tags, keyed by the same
 * hash, where the bytes are compared. Keys of 1 to 3 bytes are the low bytes
 * of the last 4: shorts[] maps the last 2 bytes to the lengths of such keys
 * that may end there (64 KB, read at every position), and they go through
 * the pair filter too. q4 and q8 take 2 to 4 and 4 to 8
 * bytes per key of their lengths, the filter 2 to 4 bytes per key, 3 bits in
 * one word (about 450 KB for 50 000 keywords), and the loads of successive
 * positions do not depend on each other. (A filter of one bit per key at 32
 * to 64 bits per key takes fewer instructions, but its 2-3% false positives
 * each read a random line of the 4 MB table: slower.) A position costs at
 * most one probe per length (up to 255), so a lookup is O(n).
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "names_int.h"

enum {
    QLONG = 15,     /* q8 bit for keys of 8 + QLONG bytes or more */
    Q4_LONGER = 16, /* q4 bit: some key of 8 bytes or more ends with these 4 */
};
/* sub_hash() in two steps, so that a lookup hashes each position's last 8
 * bytes once: their part (whose high bits also index q8; of the last 4,
 * q4), then each candidate's first 4 bytes and length. */
static inline uint64_t sub_last(const struct sd_names *s, uint64_t last)
{
    return (last ^ s->fseed) * 0xff51afd7ed558ccdULL;
}

static inline uint64_t sub_fin(uint64_t hl, uint32_t first, size_t len)
{
    uint64_t h = hl ^ ((uint64_t)first << 8 | len) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

/* The hash of a key of 8 bytes or more from its first 4 bytes, its last 8
 * and its length: it picks the filter bits and the slot (sub_hash7() for
 * shorter keys). */
static inline uint64_t sub_hash(const struct sd_names *s, uint32_t first, uint64_t last, size_t len)
{
    return sub_fin(sub_last(s, last), first, len);
}

/* The hash of a key of |len| < 8 bytes, |w| its bytes big-endian: what the
 * lookup gets by masking the 8 bytes that end where the key ends. */
static inline uint64_t sub_hash7(const struct sd_names *s, uint64_t w, size_t len)
{
    uint64_t h = (w ^ s->sublen7[len]) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 32);
}

/* The hash of a key of |len| bytes from its parts (sub_parts()): sub_hash7()
 * under 8 bytes, sub_hash() from 8. */
static inline uint64_t sub_key_hash(const struct sd_names *s, uint32_t first, uint64_t last, size_t len)
{
    return len < 8 ? sub_hash7(s, last, len) : sub_hash(s, first, last, len);
}

/* The words of key k/n, big-endian, as the lookup builds them: |first| its
 * first 4 bytes (all of a key under 4), |last| its last 8 (all of a key
 * under 8). */
static void sub_parts(const uint8_t *k, size_t n, uint32_t *first, uint64_t *last)
{
    uint64_t l = 0;
    for (size_t j = n > 8 ? n - 8 : 0; j < n; j++)
        l = l << 8 | k[j];
    uint32_t f = 0;
    for (size_t j = 0; j < 4 && j < n; j++)
        f = f << 8 | k[j];
    *first = n < 4 ? (uint32_t)l : f;
    *last = l;
}

/* Hash |g| picks 3 filter bits with bits 0-17 and their word with bits 18
 * and up, a slot with bits 40 and up: a false positive of the filter has no
 * reason to land on a run of full slots. */
static inline size_t sub_home(const struct subs *u, uint64_t g)
{
    return (size_t)(g >> 40) & u->smask;
}

/* The slot holding key fold(p[0..n)) with hash |g|, or NULL. */
const struct sslot *sd__names_sub_find(const struct sd_names *s, uint64_t g, const uint8_t *p, size_t n)
{
    const struct subs *u = &s->sub;
    uint32_t fp = (uint32_t)g;
    for (size_t i = sub_home(u, g);; i = (i + 1) & u->smask) {
        const struct sslot *sl = &u->slots[i];
        if (sl->len == 0)
            return NULL;
        if (sl->fp == fp && sl->len == n && key_eq(s, sl->key, SSLOT_INLINE, u->longkeys, p, n))
            return sl;
    }
}

/*
 * The scan runs in stages, so that its branches are few and do not depend
 * on the name's bytes: the window is folded into a buffer (after the 255
 * bytes before it, so no key is cut at a window's edge); a pass over its
 * positions reads shorts[] and q4[] and appends each position's candidate
 * lengths (up to 7, from a table by mask) to a list without a branch, and
 * notes the positions where q4 says longer keys may end; a second pass tests
 * each candidate against the pair filter, also without a branch; only those
 * that pass are queued, their slots prefetched, and compared in
 * sub_resolve() after the suffix table's candidates (sd_names_lookup()). A
 * branch per candidate and per length bit, taken or not as the name's bytes
 * decided, was the version before: on the synth-mix bench it ran 1,949
 * instructions and 28 mispredicted branches (callgrind's model) a lookup;
 * this one ran 2,357 and 15.7, and in runs alternating the two it took
 * 0.86x (lowest) and 0.97x (median) the time, 0.85-0.88x on names that
 * match nothing and 0.68x on names of 4 KB (bench/README.md). Since then the
 * name is folded once for both passes and short keys are hashed from one
 * 8-byte word: 2,083 instructions a lookup, but only 0.96-0.97x the time
 * (bench/pair_names.sh): what is left waits on memory more than on
 * instructions. The first window's positions and filter pass now run
 * between the suffix table's two steps (sd_names_lookup()), and the long
 * keys' q8 entries are fetched all at once: 2,210 instructions, 0.91-0.94x
 * the time of the step before.
 */

/* By length under 8: the mask that leaves a key that long alone in the 8
 * bytes that end where it ends. */
static const uint64_t sub_low[8] = {0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff,
                                    0xffffffffffffff};

/* Whether the pair filter may hold hash |g|. */
static inline bool sub_maybe(const struct sd_names *s, uint64_t g)
{
    uint64_t bits = filter_bits(g);
    return (s->sub.filter[(g >> 18) & s->sub.fmask] & bits) == bits;
}

/* Queues candidate name[end - len, end), hash |g|, past the filter: its slot
 * prefetched, compared with the next batch. One that would start before the
 * name (the first positions read the pad) is dropped here, rarely reached. */
static void sub_queue(const struct sd_names *s, const uint8_t *name, uint64_t g, size_t end, size_t len,
                      struct subprobes *sp)
{
    if (len > end)
        return;
    __builtin_prefetch(&s->sub.slots[sub_home(&s->sub, g)]);
    sp->p[sp->n++] = (struct subpass){g, (uint32_t)end, (uint32_t)len};
    if (sp->n == SUB_PASS)
        sub_resolve(s, name, sp);
}

/* The hash of the candidate of |len| < 8 bytes ending at position |e| of
 * the buffer |b|: the 8 bytes that end there, masked to the key's. */
static inline uint64_t sub_short_hash(const struct sd_names *s, const uint8_t *b, size_t e, size_t len)
{
    return sub_hash7(s, sd_rd64be(b + e - 8) & sub_low[len], len);
}

/* The first stages of the scan for the window of |win| positions after
 * |ctx| in the folded buffer |b|: the candidates of each position, then the
 * pair filter on those under 8 bytes. The lookup runs it for the first window
 * between the two steps of the suffix table. */
void sd__names_sub_positions(const struct sd_names *s, const uint8_t *b, size_t ctx, size_t win, struct subwin *w)
{
    const struct subs *u = &s->sub;
    const uint64_t step = 8 * 0x0001000100010001ULL;
    uint16_t *cand = w->cand, *longer = w->longer;
    size_t nc = 0, nl = 0;
    uint64_t at = (uint64_t)ctx * step;
    for (size_t e = ctx + 1; e <= ctx + win; e++) {
        uint32_t w4 = sd_rd32be(b + e - 4);
        uint64_t hl = sub_last(s, w4);
        unsigned q = u->q4[hl >> u->q4shift];
        unsigned m = (u->shorts[w4 & 0xffff] & 7) | (q & 15) << 3;
        at += step;
        uint64_t c0 = s->sublens[m][0] + at, c1 = s->sublens[m][1] + at;
        memcpy(cand + nc, &c0, sizeof(c0));
        memcpy(cand + nc + 4, &c1, sizeof(c1));
        nc += s->subcount[m];
        longer[nl] = (uint16_t)e;
        nl += (q / Q4_LONGER & 1) & (e >= 8);
    }
    w->nl = nl;
    /* Candidates of up to 7 bytes: the pair filter, no branch. */
    size_t np = 0;
    uint16_t *pass = w->pass;
    for (size_t i = 0; i < nc; i++) {
        size_t e = cand[i] >> 3, len = (cand[i] & 7) + 1;
        pass[np] = (uint16_t)i;
        np += sub_maybe(s, sub_short_hash(s, b, e, len));
    }
    w->np = np;
}

/* The substring keys in the name: candidates queued in |sp| (see above);
 * |w| holds the first window's sd__names_sub_positions(). */
__attribute__((noinline)) void sd__names_sub_scan(const struct sd_names *s, const uint8_t *name, size_t n, uint8_t *fb,
                                                  struct subwin *w, struct subprobes *sp)
{
    const struct subs *u = &s->sub;
    for (size_t base = 0; base < n; base += SUB_WIN) {
        /* fb[SUB_PAD + i] is name[base - ctx + i]; position e is the count
         * of bytes after the pad up to and including the last one read. */
        size_t ctx = SD_MIN(base, (size_t)SUB_CTX), win = SD_MIN(n - base, (size_t)SUB_WIN);
        size_t off = base - ctx; /* index in the name of fb[SUB_PAD] */
        const uint8_t *b = fb + SUB_PAD;
        if (base > 0) {
            fold_copy(s, fb + SUB_PAD, name + off, ctx + win);
            sd__names_sub_positions(s, b, ctx, win, w);
        }
        const uint16_t *cand = w->cand, *pass = w->pass, *longer = w->longer;
        for (size_t i = 0; i < w->np; i++) {
            /* pass[0..np) were all written by sd__names_sub_positions()
             * (each before np grew past it), which clang-analyzer does not
             * follow. */
            /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.ArraySubscript) */
            size_t e = cand[pass[i]] >> 3, len = (cand[pass[i]] & 7) + 1;
            sub_queue(s, name, sub_short_hash(s, b, e, len), off + e, len, sp);
        }
        /* Keys of 8 bytes or more, where q4 says some may end: the q8
         * entries of all those positions fetched first, then read. */
        uint64_t hls[SUB_WIN];
        for (size_t i = 0; i < w->nl; i++) {
            hls[i] = sub_last(s, sd_rd64be(b + longer[i] - 8));
            __builtin_prefetch(&u->q8[hls[i] >> u->q8shift]);
        }
        for (size_t i = 0; i < w->nl; i++) {
            size_t e = longer[i];
            uint64_t hl = hls[i];
            for (unsigned lm = u->q8[hl >> u->q8shift]; lm; lm &= lm - 1) {
                unsigned bit = (unsigned)__builtin_ctz(lm);
                size_t len = 8 + bit, hi = bit == QLONG ? SD_MIN(u->maxlen, e) : len;
                for (; len <= hi && len <= e; len++) {
                    uint64_t g = sub_fin(hl, sd_rd32be(b + e - len), len);
                    if (sub_maybe(s, g))
                        sub_queue(s, name, g, off + e, len, sp);
                }
            }
        }
    }
}

/* Adds key |k|/|n| (folded) with tag |tag|. */
static void sub_insert(struct sd_names *s, const uint8_t *k, size_t n, unsigned tag, size_t *longlen)
{
    if (n == 0) /* parse_pattern() lets no empty key through */
        return;
    struct subs *u = &s->sub;
    uint32_t first;
    uint64_t last;
    sub_parts(k, n, &first, &last);
    uint64_t g = sub_key_hash(s, first, last, n);
    u->filter[(g >> 18) & u->fmask] |= filter_bits(g);
    if (n < 4) {
        for (uint32_t hi = 0; hi < (n == 1 ? 256u : 1u); hi++) { /* each v whose last bytes are the key's */
            uint32_t v = (hi << 8 | first) & 0xffff;
            u->shorts[v] |= (uint8_t)(1u << (n - 1));
        }
    } else if (n < 8)
        u->q4[sub_last(s, (uint32_t)last) >> u->q4shift] |= (uint8_t)(1u << (n - 4));
    else {
        u->q4[sub_last(s, (uint32_t)last) >> u->q4shift] |= Q4_LONGER;
        u->q8[sub_last(s, last) >> u->q8shift] |= (uint16_t)(1u << SD_MIN(n - 8, (size_t)QLONG));
    }
    struct sslot *sl = (struct sslot *)sd__names_sub_find(s, g, k, n);
    if (!sl) {
        size_t i = sub_home(u, g);
        while (u->slots[i].len)
            i = (i + 1) & u->smask;
        sl = &u->slots[i];
        *sl = (struct sslot){.fp = (uint32_t)g, .len = (uint16_t)n};
        key_put(sl->key, SSLOT_INLINE, u->longkeys, longlen, k, n);
    }
    sl->tags |= (uint64_t)1 << tag;
}

int sd__names_sub_build(struct sd_names *s)
{
    struct subs *u = &s->sub;
    size_t nk = 0, n4 = 0, n8 = 0, longbytes = 0;
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind == K_SUBSTR) {
            size_t len = s->pats[i].len;
            nk++;
            n4 += len >= 4 && len < 8;
            n8 += len >= 8;
            longbytes += len > SSLOT_INLINE ? len : 0;
        }
    if (nk == 0)
        return 0;
    size_t q4n = pow2_at_least(2 * (n4 + n8), &u->q4shift), q8n = pow2_at_least(2 * n8, &u->q8shift);
    size_t fw = pow2_at_least(16 * nk, NULL) / 64, cap = pow2_at_least(2 * nk, NULL);
    if (!(u->shorts = sd__names_big_calloc(65536, 1))) /* read at every position, even when empty */
        return SD_ENOMEM;
    u->q4 = sd__names_big_calloc(q4n, sizeof(*u->q4));
    u->q8 = sd__names_big_calloc(q8n, sizeof(*u->q8));
    u->filter = sd__names_big_calloc(fw, sizeof(*u->filter));
    u->slots = sd__names_big_calloc(cap, sizeof(*u->slots));
    u->longkeys = malloc(longbytes ? longbytes : 1);
    if (!u->q4 || !u->q8 || !u->filter || !u->slots || !u->longkeys)
        return SD_ENOMEM;
    u->fmask = fw - 1;
    u->smask = cap - 1;
    size_t longlen = 0;
    for (size_t i = 0; i < s->npats; i++) {
        const struct pat *pt = &s->pats[i];
        if (pt->kind == K_SUBSTR) {
            sub_insert(s, s->arena + pt->off, pt->len, pt->tag, &longlen);
            u->maxlen = SD_MAX(u->maxlen, (size_t)pt->len);
        }
    }
    return 0;
}

int sd__names_sub_explain(const struct sd_names *s, const uint8_t *name, const uint8_t *fb, size_t n,
                          sd_names_pattern_fn fn, void *arg)
{
    size_t *seen = NULL; /* the slots reported, by index: a key found twice comes once */
    size_t nseen = 0, cap = 0;
    char pat[SD_NAME_MAX + 3];
    int rc = 0;
    for (size_t len = 1; len <= SD_MIN(n, s->sub.maxlen) && rc == 0; len++)
        for (size_t i = 0; i + len <= n; i++) {
            uint32_t first;
            uint64_t last;
            sub_parts(fb + i, len, &first, &last);
            uint64_t g = sub_key_hash(s, first, last, len);
            const struct sslot *sl = sd__names_sub_find(s, g, name + i, len);
            size_t j = 0, at = sl ? (size_t)(sl - s->sub.slots) : 0;
            while (sl && j < nseen && seen[j] != at)
                j++;
            if (!sl || j < nseen)
                continue;
            if (nseen == cap) {
                cap = cap ? 2 * cap : 16;
                size_t *ns = realloc(seen, cap * sizeof(*seen));
                if (!ns) {
                    rc = SD_ENOMEM;
                    break;
                }
                seen = ns;
            }
            seen[nseen++] = at;
            pat[0] = '*';
            memcpy(pat + 1, fb + i, len);
            pat[len + 1] = '*';
            fn(arg, pat, len + 2, sl->tags);
        }
    free(seen);
    return rc;
}
