/*
 * names.c - server names against large pattern sets.
 *
 * Two structures. The three anchored kinds share one hash table; substrings
 * get an index by the bytes they end with (names_sub.c):
 *
 *   "t.co"          key "t.co"         probed with the whole name
 *   "*.twimg.com"   key ".twimg.com"   probed with each suffix that starts at a '.'
 *   "*twitter.com"  key "twitter.com"  probed with each suffix
 *   "*t.co*"        substring index    one pass over the name
 *
 * ("*.twimg.com" is exactly the bare suffix ".twimg.com"; it is filed as a
 * dot suffix only to be probed at dots alone.)
 *
 * The suffix table, read in one pass from the last byte of the name:
 *
 *   name   a . b . e x a m p l e . c o m      <- read this way
 *   probe    ^   ^               ^            dot suffixes (".com" ...)
 *                  ^ ^                        bare suffixes the tail index names
 *          ^                                  the whole name (exact)
 *
 * The pass gives every suffix its hash, the polynomial sum over (byte + 1) *
 * M^j (random M, j = 1 for the last byte) with the powers in a table, so a
 * step is one multiply and one add that do not wait on each other, and notes
 * the dots. The candidates are then: the whole name; the suffixes at dots,
 * where some dot-suffix key has that length; bare suffixes shorter than 8
 * bytes, where some key has that length; and for longer ones, the lengths
 * that a 16-bit entry of the tail index (one entry per bare-suffix key,
 * rounded up to a power of two), chosen by the hash of the name's last 8
 * bytes, gives: the lengths of the bare-suffix keys that end with the same 8
 * bytes (a bit for 8 to 22 bytes, one for longer). A name thus tests a
 * handful of suffixes, not one per byte. Each candidate is tested against a
 * blocked Bloom filter per kind (3 bits in one 64-bit word, 16 to 32 bits per
 * key: about 0.5% false positives, 2 to 4 MB per million keys), whose word
 * is prefetched when the suffix is hashed and read after half the substring
 * scan; its slot is then prefetched, the rest of the substrings looked for,
 * and only then is it compared, so the cache misses of a lookup overlap
 * instead of queueing. A name of 255 dots costs O(n), not O(n^2), and the pass stops
 * once the suffix is longer than the longest key. (SipHash of each suffix,
 * and a filter test at every length some bare-suffix key has, cost 1.8 times
 * the instructions: the previous version.)
 *
 * A slot is 32 bytes: 32 bits of a second mix of the hash, the index of the
 * key's tags (a triple of masks: exact, dot suffix, suffix) and the key
 * itself, inline up to 22 bytes, so a probe usually costs one cache line.
 * Equal fingerprints are confirmed by comparing the bytes, so answers are
 * exact whatever the hash; M only spreads the keys (the names an attacker
 * sends cannot lengthen the runs of slots, which the patterns alone decide).
 * Large arrays ask for transparent huge pages: random probes into tens of MB
 * otherwise pay a TLB miss on top of the cache miss.
 *
 * Substrings were an Aho-Corasick automaton until it grew to 195 000 states
 * for 50 000 keywords: a lookup then chased pointers through megabytes. The
 * index that replaced it keeps its hot part (about 420 KB for those keywords)
 * in L2 and reads no state that depends on the last.
 *
 * Case folding is ASCII only, applied to patterns at add time and to names
 * while they are read, never into a copy, so names of any length are folded
 * over their whole length. Nothing is allocated per lookup. A lookup before
 * compiling (or after a compile that failed) answers 0. Compiling frees the
 * pattern list: the two tables keep all that lookups need.
 *
 * This file has the suffix table, the API and the lookup that interleaves
 * the two; names_sub.c the substring index; names_int.h what they share.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "names_int.h"
#include "siphash.h"

enum { W_EXACT = 1 << K_EXACT, W_DSUFFIX = 1 << K_DSUFFIX, W_SUFFIX = 1 << K_SUFFIX };

enum {
    PROBE_BATCH = 8,         /* candidates finalised and prefetched before comparing */
    PREFETCH_AHEAD = 16,     /* keys hashed ahead of their insertion */
    TAIL = 8,                /* bare suffixes of at least this many bytes are indexed by their last TAIL */
    TAIL_LONGER = 15,        /* tail bit j < TAIL_LONGER: a key of TAIL + j bytes; this bit: longer */
    HUGE_MIN = 4 << 20,      /* arrays from this size ask for huge pages */
};

/*
 * A slot of the suffix table: 32 bytes, two per cache line, holding all a
 * probe needs for keys up to SLOT_INLINE bytes. A longer key keeps its first
 * SLOT_INLINE - 8 bytes here and the offset of the whole key in longkeys after
 * them (key_put()).
 */
enum { SLOT_INLINE = 22 };

struct slot {
    uint32_t fp;     /* the high half of the key's SipHash */
    uint32_t triple; /* index into triples */
    uint16_t len;    /* 0 for a free slot */
    uint8_t key[SLOT_INLINE];
};

/* ---- memory ---- */

void *sd__names_big_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t bytes = SD_MAX(n * size, (size_t)1);
    void *p = NULL;
    /* Cache-line alignment keeps a 32-byte slot inside one line. */
    if (posix_memalign(&p, bytes < HUGE_MIN ? 64 : 2u << 20, bytes) != 0)
        return NULL;
    if (bytes >= HUGE_MIN)
        madvise(p, bytes, MADV_HUGEPAGE); /* a hint; failure is harmless */
    memset(p, 0, bytes);
    return p;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *nb = realloc(*buf, nc * elem);
    if (!nb)
        return SD_ENOMEM;
    *buf = nb;
    *cap = nc;
    return 0;
}

/* ---- creation and adding ---- */

static void draw_key(uint8_t *key, size_t n)
{
    /* The key only spreads keys over slots: results never depend on it. If
     * the kernel has no entropy yet, fall back to the clock. */
    if (getrandom(key, n, GRND_NONBLOCK) == (ssize_t)n)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t a = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)key;
    for (size_t i = 0; i < n; i++) {
        a = a * 6364136223846793005ULL + 1442695040888963407ULL;
        key[i] = (uint8_t)(a >> 56);
    }
}

struct sd_names *sd_names_new(unsigned opts)
{
    struct sd_names *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->opts = opts;
    uint8_t r[16];
    draw_key(r, sizeof(r));
    s->fmul = sd_sip_rd64le(r) | 1;
    s->fseed = sd_sip_rd64le(r + 8);
    s->pw[0] = 1;
    for (int i = 1; i <= SD_NAME_MAX; i++)
        s->pw[i] = s->pw[i - 1] * s->fmul;
    for (int i = 0; i < 256; i++)
        s->fold[i] = (uint8_t)i;
    if (opts & SD_NAMES_CASEFOLD)
        for (int i = 'A'; i <= 'Z'; i++)
            s->fold[i] = (uint8_t)(i - 'A' + 'a');
    /* Bits 0-2 of a mask: lengths 1-3 (shorts[]); bits 3-6: lengths 4-7
     * (q4[]). A row lists length - 1 for each bit set, in 16-bit fields. */
    for (int i = 0; i < 8; i++)
        s->sublen7[i] = s->fseed ^ (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    for (unsigned m = 0; m < 128; m++)
        for (unsigned b = 0; b < 7; b++)
            if (m >> b & 1) {
                unsigned j = s->subcount[m]++;
                s->sublens[m][j / 4] |= (uint64_t)b << 16 * (j % 4);
            }
    return s;
}

void sd_names_free(struct sd_names *s)
{
    if (!s)
        return;
    free(s->arena);
    free(s->pats);
    free(s->slots);
    free(s->longkeys);
    free(s->triples);
    free(s->tail);
    for (int k = 0; k < 3; k++)
        free(s->filter[k]);
    free(s->sub.shorts);
    free(s->sub.q4);
    free(s->sub.q8);
    free(s->sub.filter);
    free(s->sub.slots);
    free(s->sub.longkeys);
    free(s);
}

size_t sd_names_count(const struct sd_names *s)
{
    return s->count;
}

/* Splits |p|/|n| into kind and body. SD_EINVAL for the ill-formed cases. */
static int parse_pattern(const uint8_t *p, size_t n, enum kind *kind, const uint8_t **body, size_t *blen)
{
    if (n == 0 || n > SD_NAME_MAX)
        return SD_EINVAL;
    const uint8_t *b = p, *e = p + n;
    *kind = K_EXACT;
    if (*b == '*') {
        b++;
        *kind = K_SUFFIX;
        if (e > b && e[-1] == '*') {
            e--;
            *kind = K_SUBSTR;
        }
    }
    if (b == e || memchr(b, '*', (size_t)(e - b)) || memchr(b, '\0', (size_t)(e - b)))
        return SD_EINVAL;
    if (*kind == K_SUFFIX && *b == '.')
        *kind = K_DSUFFIX;
    *body = b;
    *blen = (size_t)(e - b);
    return 0;
}

int sd_names_add(struct sd_names *s, const char *pattern, size_t n, unsigned tag)
{
    enum kind kind;
    const uint8_t *body;
    size_t blen;
    if (s->compiled || s->broken || tag >= SD_NAMES_MAX_TAGS)
        return SD_EINVAL;
    int rc = parse_pattern((const uint8_t *)pattern, n, &kind, &body, &blen);
    if (rc < 0)
        return rc;
    if (s->arena_len + blen > UINT32_MAX || s->npats >= UINT32_MAX)
        return SD_ENOMEM;
    if (grow((void **)&s->arena, &s->arena_cap, s->arena_len + blen, 1) < 0 ||
        grow((void **)&s->pats, &s->pats_cap, s->npats + 1, sizeof(struct pat)) < 0)
        return SD_ENOMEM;
    uint8_t *dst = s->arena + s->arena_len;
    for (size_t i = 0; i < blen; i++)
        dst[i] = s->fold[body[i]];
    s->pats[s->npats++] = (struct pat){(uint32_t)s->arena_len, (uint16_t)blen, (uint8_t)kind, (uint8_t)tag};
    s->arena_len += blen;
    s->count++;
    return 0;
}

/* ---- the suffix table ---- */

/* The anchored hash of a key: the polynomial sum over (byte + 1) * fmul^j,
 * j = 1 for the last byte. A lookup gets every suffix's hash in one pass of
 * additions, the powers being a table. */
static uint64_t key_fhash(const struct sd_names *s, const uint8_t *p, size_t n)
{
    uint64_t f = 0;
    for (size_t j = 1; j <= n; j++)
        f += (uint64_t)(p[n - j] + 1u) * s->pw[j];
    return f;
}

/* The filter hash |f| mixed; its bits choose a word and 3 bits in it. */
static inline uint64_t filter_mix(uint64_t f)
{
    return (f ^ (f >> 31)) * 0x9e3779b97f4a7c15ULL;
}

static inline size_t filter_word(const struct sd_names *s, int k, uint64_t g)
{
    return (size_t)(g >> 40) & s->fmask[k];
}

/* The table's hash of a key with filter hash |f|: the slot from its low bits,
 * the fingerprint from its high 32. */
static inline uint64_t slot_hash(uint64_t f)
{
    uint64_t h = (f ^ (f >> 32)) * 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 32);
}

/* The tail index's entry for the filter hash |f8| of a name's last 8 bytes. */
static inline size_t tail_index(const struct sd_names *s, uint64_t f8)
{
    return (size_t)(((f8 ^ (f8 >> 29)) * 0x94d049bb133111ebULL) >> s->tshift);
}

/* The slot whose key equals fold(p[0..n)) for slot hash |h|, or NULL. */
static const struct slot *table_find(const struct sd_names *s, uint64_t h, const uint8_t *p, size_t n)
{
    uint32_t fp = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & s->smask;; i = (i + 1) & s->smask) {
        const struct slot *sl = &s->slots[i];
        if (sl->len == 0)
            return NULL;
        if (sl->fp == fp && sl->len == n && key_eq(s, sl->key, SLOT_INLINE, s->longkeys, p, n))
            return sl;
    }
}

/* Adds (or finds) the slot for key |k|/|n| and returns its record number, kept
 * in the triple field until the triples are built. */
static uint32_t table_insert(struct sd_names *s, uint64_t h, const uint8_t *k, size_t n, size_t *longlen,
                             uint32_t *nrec)
{
    const struct slot *found = table_find(s, h, k, n);
    if (found)
        return found->triple;
    size_t i = (size_t)h & s->smask;
    while (s->slots[i].len)
        i = (i + 1) & s->smask;
    struct slot *sl = &s->slots[i];
    *sl = (struct slot){.fp = (uint32_t)(h >> 32), .triple = *nrec, .len = (uint16_t)n};
    key_put(sl->key, SLOT_INLINE, s->longkeys, longlen, k, n);
    return (*nrec)++;
}

/* Replaces record numbers in the slots by indexes into the distinct triples
 * (read in record order, so the masks are read sequentially). */
static int triples_build(struct sd_names *s, uint64_t (*tm)[3], uint32_t nrec)
{
    size_t cap = 16, nt = 0, tcap = 16;
    while (cap < 2 * (size_t)nrec)
        cap *= 2;
    uint32_t *map = sd__names_big_calloc(cap, sizeof(*map)); /* triple index + 1 */
    uint32_t *idx = sd__names_big_calloc(nrec, sizeof(*idx));
    s->triples = malloc(tcap * sizeof(*s->triples));
    int rc = SD_ENOMEM;
    if (!map || !idx || !s->triples)
        goto out;
    for (uint32_t r = 0; r < nrec; r++) {
        const uint64_t *t = tm[r];
        uint64_t hv = (t[0] * 0x9e3779b97f4a7c15ULL) ^ (t[1] * 0xc2b2ae3d27d4eb4fULL) ^ t[2];
        size_t i = (size_t)(hv ^ (hv >> 29)) & (cap - 1);
        while (map[i] && memcmp(s->triples[map[i] - 1], t, sizeof(*s->triples)) != 0)
            i = (i + 1) & (cap - 1);
        if (!map[i]) {
            if (grow((void **)&s->triples, &tcap, nt + 1, sizeof(*s->triples)) < 0)
                goto out;
            memcpy(s->triples[nt], t, sizeof(*s->triples));
            map[i] = (uint32_t)++nt;
        }
        idx[r] = map[i] - 1;
    }
    for (size_t sl = 0; sl <= s->smask; sl++)
        if (s->slots[sl].len)
            s->slots[sl].triple = idx[s->slots[sl].triple];
    rc = 0;
out:
    free(map);
    free(idx);
    return rc;
}

/* Allocates a filter per anchored kind, 16 to 32 bits per key of that kind. */
static int filters_alloc(struct sd_names *s, const size_t nk[3])
{
    for (int k = K_EXACT; k <= K_SUFFIX; k++) {
        size_t fw = 1;
        while (fw * 64 < 16 * nk[k])
            fw *= 2;
        s->fmask[k] = fw - 1;
        if (!(s->filter[k] = sd__names_big_calloc(fw, sizeof(uint64_t))))
            return SD_ENOMEM;
    }
    return 0;
}

static int table_build(struct sd_names *s)
{
    size_t nkeys = 0, longbytes = 0, nk[3] = {0};
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind != K_SUBSTR) {
            nkeys++;
            nk[s->pats[i].kind]++;
            longbytes += s->pats[i].len > SLOT_INLINE ? s->pats[i].len : 0;
        }
    if (nkeys == 0)
        return 0;
    size_t cap = 16;
    while (cap < nkeys + nkeys / 4) /* load factor at most 4/5 */
        cap *= 2;
    uint64_t (*tm)[3] = sd__names_big_calloc(nkeys, sizeof(*tm)); /* tags by record number */
    s->slots = sd__names_big_calloc(cap, sizeof(*s->slots));
    s->longkeys = malloc(longbytes ? longbytes : 1);
    size_t tn = pow2_at_least(nk[K_SUFFIX], &s->tshift);
    s->tail = sd__names_big_calloc(tn, sizeof(*s->tail));
    if (!tm || !s->slots || !s->longkeys || !s->tail || filters_alloc(s, nk) < 0) {
        free(tm);
        return SD_ENOMEM;
    }
    s->smask = cap - 1;
    size_t longlen = 0;
    uint32_t nrec = 0;
    uint64_t ahead[PREFETCH_AHEAD]; /* hashes of the next patterns, by index modulo PREFETCH_AHEAD */
    for (size_t i = 0; i < s->npats + PREFETCH_AHEAD; i++) {
        if (i >= PREFETCH_AHEAD && s->pats[i - PREFETCH_AHEAD].kind != K_SUBSTR) {
            const struct pat *pt = &s->pats[i - PREFETCH_AHEAD];
            const uint8_t *k = s->arena + pt->off;
            uint32_t r = table_insert(s, ahead[i % PREFETCH_AHEAD], k, pt->len, &longlen, &nrec);
            tm[r][pt->kind] |= (uint64_t)1 << pt->tag;
            s->lenkinds[pt->len] |= (uint8_t)(1u << pt->kind);
            s->maxlen = SD_MAX(s->maxlen, (size_t)pt->len);
            uint64_t g = filter_mix(key_fhash(s, k, pt->len));
            s->filter[pt->kind][filter_word(s, pt->kind, g)] |= filter_bits(g);
            if (pt->kind == K_SUFFIX && pt->len >= TAIL)
                s->tail[tail_index(s, key_fhash(s, k + pt->len - TAIL, TAIL))] |=
                    (uint16_t)(1u << SD_MIN((size_t)pt->len - TAIL, (size_t)TAIL_LONGER));
            else if (pt->kind == K_SUFFIX)
                s->sufshort |= (uint8_t)(1u << (pt->len - 1));
        }
        /* Hash ahead and prefetch the slot: inserts are random accesses. */
        if (i < s->npats && s->pats[i].kind != K_SUBSTR) {
            uint64_t h = slot_hash(key_fhash(s, s->arena + s->pats[i].off, s->pats[i].len));
            __builtin_prefetch(&s->slots[h & s->smask]);
            ahead[i % PREFETCH_AHEAD] = h;
        }
    }
    int rc = triples_build(s, tm, nrec);
    free(tm);
    return rc;
}

struct cand {
    uint64_t h;
    uint32_t len, want;
};

/* Compares the batched candidates (their slots already prefetched). */
static uint64_t table_resolve(const struct sd_names *s, const uint8_t *name, size_t n, const struct cand *c,
                              unsigned nc)
{
    uint64_t m = 0;
    for (unsigned i = 0; i < nc; i++) {
        const struct slot *sl = table_find(s, c[i].h, name + n - c[i].len, c[i].len);
        if (!sl)
            continue;
        const uint64_t *t = s->triples[sl->triple];
        m |= (c[i].want & W_EXACT ? t[K_EXACT] : 0) | (c[i].want & W_DSUFFIX ? t[K_DSUFFIX] : 0) |
             (c[i].want & W_SUFFIX ? t[K_SUFFIX] : 0);
    }
    return m;
}

/* The candidates of one lookup, their slots prefetched, not yet compared. */
struct probes {
    struct cand c[PROBE_BATCH];
    unsigned n;
    uint64_t m; /* tags of batches compared early (more than PROBE_BATCH candidates) */
};

/* The kinds among |want| whose filters may hold a key with filter hash |f|. */
static inline unsigned filter_pass(const struct sd_names *s, unsigned want, uint64_t f)
{
    uint64_t g = filter_mix(f), bits = filter_bits(g);
    unsigned pass = 0;
    for (int k = K_EXACT; k <= K_SUFFIX; k++)
        if ((want & (1u << k)) && (s->filter[k][filter_word(s, k, g)] & bits) == bits)
            pass |= 1u << k;
    return pass;
}

/* Queues the suffix of |len| bytes (filter hash |f|) for the kinds in |want|
 * that its filters let through, its slot prefetched. */
static inline void probe(const struct sd_names *s, const uint8_t *name, size_t n, uint64_t f, size_t len, unsigned want,
                         struct probes *pr)
{
    if (!(want = filter_pass(s, want, f)))
        return;
    uint64_t h = slot_hash(f);
    __builtin_prefetch(&s->slots[h & s->smask]);
    pr->c[pr->n++] = (struct cand){h, (uint32_t)len, want};
    if (pr->n == PROBE_BATCH) {
        pr->m |= table_resolve(s, name, n, pr->c, pr->n);
        pr->n = 0;
    }
}

/*
 * All anchored kinds (see the file comment), in two steps with the
 * substring scan's first between them (sd_names_lookup()). table_hash(): one
 * right-to-left pass over the folded name (|fend| is its end) hashes every
 * suffix up to the longest key and notes the dots, and the filter words of
 * the candidates known then (the whole name, the suffixes at dots, the short
 * bare-suffix lengths) and the tail index's entry are prefetched.
 * table_collect(): the candidates are tested against their filters (by then
 * in cache), the tail index adds the longer bare-suffix lengths, and the
 * slots of those that pass are prefetched; the caller compares them with
 * table_resolve() after the rest of the substring scan. (Testing the filters
 * straight after the hashing, as before, left their misses and the tail's on
 * the lookup's path: 0.94x the time without.)
 */
struct suffixes {
    uint64_t fs[SD_NAME_MAX + 1]; /* by length: the suffix's filter hash */
    uint8_t dots[SD_NAME_MAX + 1]; /* lengths of the suffixes that start with a dot */
    unsigned nd;
};

/* The filter word of kind |k| for filter hash |f|, fetched. */
static inline void filter_prefetch(const struct sd_names *s, int k, uint64_t f)
{
    __builtin_prefetch(&s->filter[k][filter_word(s, k, filter_mix(f))]);
}

static void table_hash(const struct sd_names *s, const uint8_t *name, size_t n, const uint8_t *fend,
                       struct suffixes *a)
{
    size_t lim = n < s->maxlen ? n : s->maxlen;
    uint64_t f = 0;
    const uint8_t *p = fend;
    unsigned nd = 0;
    for (size_t len = 1; len <= lim; len++) {
        uint8_t c = *--p;
        f += (uint64_t)(c + 1u) * s->pw[len];
        a->fs[len] = f;
        a->dots[nd] = (uint8_t)len; /* kept when c is a dot */
        nd += c == '.';
    }
    a->nd = nd;
    if (lim >= TAIL)
        __builtin_prefetch(&s->tail[tail_index(s, a->fs[TAIL])]);
    /* cppcheck-suppress knownConditionTrueFalse ; lim is n whenever n <= maxlen */
    if (lim == n) {
        filter_prefetch(s, K_EXACT, a->fs[n]);
        filter_prefetch(s, s->fold[name[0]] == '.' ? K_DSUFFIX : K_SUFFIX, a->fs[n]);
    }
    for (unsigned i = 0; i < nd; i++)
        filter_prefetch(s, K_DSUFFIX, a->fs[a->dots[i]]);
    for (unsigned m = s->sufshort & ((1u << SD_MIN(lim, (size_t)TAIL - 1)) - 1); m; m &= m - 1)
        filter_prefetch(s, K_SUFFIX, a->fs[1 + __builtin_ctz(m)]);
}

static void table_collect(const struct sd_names *s, const uint8_t *name, size_t n, const struct suffixes *a,
                          struct probes *pr)
{
    size_t lim = n < s->maxlen ? n : s->maxlen;
    const uint64_t *fs = a->fs;
    const uint8_t *dots = a->dots;
    unsigned nd = a->nd;
    /* cppcheck-suppress knownConditionTrueFalse ; lim is n whenever n <= maxlen */
    if (lim == n) { /* the whole name: exact, and the suffix kind its first byte allows */
        unsigned want = s->lenkinds[n] & (W_EXACT | (s->fold[name[0]] == '.' ? W_DSUFFIX : W_SUFFIX));
        if (want)
            probe(s, name, n, fs[n], n, want, pr);
    }
    for (unsigned i = 0; i < nd; i++)
        if (dots[i] < n && (s->lenkinds[dots[i]] & W_DSUFFIX))
            probe(s, name, n, fs[dots[i]], dots[i], W_DSUFFIX, pr);
    /* Bare suffixes: no key starts with a dot, so none at a dot is missed. */
    for (unsigned m = s->sufshort & ((1u << SD_MIN(lim, (size_t)TAIL - 1)) - 1); m; m &= m - 1) {
        size_t len = 1 + (unsigned)__builtin_ctz(m);
        if (len < n)
            probe(s, name, n, fs[len], len, W_SUFFIX, pr);
    }
    if (lim < TAIL)
        return;
    unsigned t = s->tail[tail_index(s, fs[TAIL])];
    for (unsigned m = t & ((1u << TAIL_LONGER) - 1); m; m &= m - 1) {
        size_t len = TAIL + (unsigned)__builtin_ctz(m);
        if (len <= lim && len < n)
            probe(s, name, n, fs[len], len, W_SUFFIX, pr);
    }
    if (t & (1u << TAIL_LONGER))
        for (size_t len = TAIL + TAIL_LONGER; len <= lim && len < n; len++)
            if (s->lenkinds[len] & W_SUFFIX)
                probe(s, name, n, fs[len], len, W_SUFFIX, pr);
}

/* ---- compiling and lookup ---- */

int sd_names_compile(struct sd_names *s)
{
    if (s->compiled)
        return 0;
    if (s->broken)
        return SD_ENOMEM;
    int rc = table_build(s);
    if (rc == 0)
        rc = sd__names_sub_build(s);
    if (rc < 0) {
        s->broken = true; /* half-built: lookups keep answering 0 */
        return rc;
    }
    free(s->arena); /* the tables hold all that is needed */
    free(s->pats);
    s->arena = NULL;
    s->pats = NULL;
    s->arena_len = s->arena_cap = s->npats = s->pats_cap = 0;
    s->compiled = true;
    return 0;
}

/* Reports KEY, or *KEY with |star|, through |fn| when |tags| is not empty. */
static void report(sd_names_pattern_fn fn, void *arg, bool star, const uint8_t *key, size_t n, uint64_t tags)
{
    char pat[SD_NAME_MAX + 3];
    if (!tags)
        return;
    pat[0] = '*';
    memcpy(pat + star, key, n);
    fn(arg, pat, star + n, tags);
}

int sd_names_explain(const struct sd_names *s, const uint8_t *name, size_t n, sd_names_pattern_fn fn, void *arg)
{
    if ((s->opts & SD_NAMES_STRIP_DOT) && n > 0 && name[n - 1] == '.')
        n--;
    if (n > SD_NAME_MAX)
        return SD_ERANGE;
    if (!s->compiled || n == 0)
        return 0;
    uint8_t fb[SD_NAME_MAX];
    for (size_t i = 0; i < n; i++)
        fb[i] = s->fold[name[i]];
    /* The anchored kinds, by the rules of table_collect(): the whole name for
     * exact keys; a dot suffix wherever the suffix starts with a dot (the
     * whole name included); a bare suffix at any length (no bare key starts
     * with a dot). */
    for (size_t len = 1; s->slots && len <= SD_MIN(n, s->maxlen); len++) {
        const uint8_t *k = fb + n - len;
        const struct slot *sl = table_find(s, slot_hash(key_fhash(s, k, len)), name + n - len, len);
        if (!sl)
            continue;
        const uint64_t *t = s->triples[sl->triple];
        report(fn, arg, false, k, len, len == n ? t[K_EXACT] : 0);
        report(fn, arg, true, k, len, k[0] == '.' ? t[K_DSUFFIX] : 0);
        report(fn, arg, true, k, len, t[K_SUFFIX]);
    }
    return s->sub.slots ? sd__names_sub_explain(s, name, fb, n, fn, arg) : 0;
}

/*
 * A lookup in two halves. lookup_begin() runs everything up to the
 * comparisons and leaves the candidates, their slots prefetched, in |q|;
 * lookup_end() compares them. One lookup runs the two back to back; a batch
 * (sd_names_lookup_batch()) runs the next two names' begins between them,
 * so the slots' lines arrive while those compute instead of while the
 * lookup waits.
 */
struct pending {
    const uint8_t *name;
    size_t n;
    struct probes pr;
    struct subprobes sp;
};

static void lookup_begin(const struct sd_names *s, const uint8_t *name, size_t n, struct pending *q)
{
    q->pr.n = 0;
    q->pr.m = 0;
    q->sp.n = 0;
    q->sp.m = 0;
    if ((s->opts & SD_NAMES_STRIP_DOT) && n > 0 && name[n - 1] == '.')
        n--;
    q->name = name;
    q->n = n;
    if (!s->compiled || n == 0)
        return;
    /* The name folded once, for both passes: fb[SUB_PAD..) holds its first
     * SUB_WIN bytes (sd__names_sub_scan()'s first window) and, when it is
     * no longer, its last bytes up to the longest key (table_collect()). */
    uint8_t fb[SUB_PAD + SUB_WIN + SUB_CTX];
    memset(fb, 0, SUB_PAD);
    fold_copy(s, fb + SUB_PAD, name, SD_MIN(n, (size_t)SUB_WIN));
    struct suffixes a;
    if (s->slots) {
        const uint8_t *fend = fb + SUB_PAD + n;
        if (n > SUB_WIN) {
            size_t lim = SD_MIN(n, s->maxlen);
            fold_copy(s, fb + SUB_PAD + SUB_WIN, name + n - lim, lim);
            fend = fb + SUB_PAD + SUB_WIN + lim;
        }
        table_hash(s, name, n, fend, &a);
    }
    /* Each step's loads arrive while the next one computes: the suffix
     * table's filters and tail entry during the substring scan's first
     * stages, its slots during the scan's last. */
    struct subwin w;
    if (s->sub.slots)
        sd__names_sub_positions(s, fb + SUB_PAD, 0, SD_MIN(n, (size_t)SUB_WIN), &w);
    if (s->slots)
        table_collect(s, name, n, &a, &q->pr);
    if (s->sub.slots)
        sd__names_sub_scan(s, name, n, fb, &w, &q->sp);
}

static uint64_t lookup_end(const struct sd_names *s, struct pending *q)
{
    uint64_t m = q->pr.m | table_resolve(s, q->name, q->n, q->pr.c, q->pr.n);
    if (q->sp.n)
        sub_resolve(s, q->name, &q->sp);
    return m | q->sp.m;
}

uint64_t sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    struct pending q;
    lookup_begin(s, name, n, &q);
    return lookup_end(s, &q);
}

void sd_names_lookup_batch(const struct sd_names *s, const uint8_t *const *names, const size_t *lens, size_t k,
                           uint64_t *out)
{
    /* D - 1 names begun ahead of the one compared: two gave 0.78-0.86x the single lookups' time, one 0.80-0.91x */
    enum { D = 3 };
    struct pending q[D];
    for (size_t i = 0; i < k; i++) {
        lookup_begin(s, names[i], lens[i], &q[i % D]);
        if (i >= D - 1)
            out[i - (D - 1)] = lookup_end(s, &q[(i - (D - 1)) % D]);
    }
    for (size_t i = k > D - 1 ? k - (D - 1) : 0; i < k; i++)
        out[i] = lookup_end(s, &q[i % D]);
}
