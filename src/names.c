/*
 * names.c - server names against large pattern sets.
 *
 * Two structures. The three anchored kinds share one hash table; substrings
 * get an index by the bytes they end with (see "substrings" below):
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
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "bytes.h"
#include "names.h"
#include "siphash.h"

enum kind { K_EXACT, K_DSUFFIX, K_SUFFIX, K_SUBSTR };
enum { W_EXACT = 1 << K_EXACT, W_DSUFFIX = 1 << K_DSUFFIX, W_SUFFIX = 1 << K_SUFFIX };

enum {
    PROBE_BATCH = 8,         /* candidates finalised and prefetched before comparing */
    PREFETCH_AHEAD = 16,     /* keys hashed ahead of their insertion */
    TAIL = 8,                /* bare suffixes of at least this many bytes are indexed by their last TAIL */
    TAIL_LONGER = 15,        /* tail bit j < TAIL_LONGER: a key of TAIL + j bytes; this bit: longer */
    HUGE_MIN = 4 << 20,      /* arrays from this size ask for huge pages */
};

struct pat {
    uint32_t off; /* body in the arena */
    uint16_t len;
    uint8_t kind;
    uint8_t tag;
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

/* The substring index (see "substrings" below). */
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
    uint64_t sublens[128][2]; /* substring candidate lengths by mask (sub_scan()) */
    uint64_t sublen7[8];      /* by length under 8: mixed into the hash of a key that short (sub_hash7()) */
    uint8_t subcount[128];

    struct subs sub;
};

/* ---- memory ---- */

static void *big_calloc(size_t n, size_t size)
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

/* The smallest power of two of at least |n| (and 64), and the shift that
 * takes a 64-bit hash to an index below it. */
static size_t pow2_at_least(size_t n, unsigned *shift)
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

static inline uint64_t filter_bits(uint64_t g)
{
    return (uint64_t)1 << (g & 63) | (uint64_t)1 << ((g >> 6) & 63) | (uint64_t)1 << ((g >> 12) & 63);
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

/*
 * Keys in slots (both tables): up to |inl| bytes inline; a longer key keeps
 * its first inl - 8 bytes there, then the offset of the whole key in
 * |longkeys|.
 */
static void key_put(uint8_t *key, size_t inl, uint8_t *longkeys, size_t *longlen, const uint8_t *k, size_t n)
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
    uint32_t *map = big_calloc(cap, sizeof(*map)); /* triple index + 1 */
    uint32_t *idx = big_calloc(nrec, sizeof(*idx));
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
        if (!(s->filter[k] = big_calloc(fw, sizeof(uint64_t))))
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
    uint64_t (*tm)[3] = big_calloc(nkeys, sizeof(*tm)); /* tags by record number */
    s->slots = big_calloc(cap, sizeof(*s->slots));
    s->longkeys = malloc(longbytes ? longbytes : 1);
    size_t tn = pow2_at_least(nk[K_SUFFIX], &s->tshift);
    s->tail = big_calloc(tn, sizeof(*s->tail));
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

/* ---- substrings ---- */

/*
 * Substring keys are found by where they end. The name is folded into a
 * buffer (in windows of SUB_WIN positions, see sub_scan()); at each position:
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
enum {
    QLONG = 15,     /* q8 bit for keys of 8 + QLONG bytes or more */
    Q4_LONGER = 16, /* q4 bit: some key of 8 bytes or more ends with these 4 */
    SSLOT_INLINE = 18,
};

/* A slot of the substring table: 32 bytes, like struct slot, with the tags in
 * place of a triple. A longer key keeps its first SSLOT_INLINE - 8 bytes and
 * the offset of the whole key in longkeys (key_put()). */
struct sslot {
    uint64_t tags;
    uint32_t fp;
    uint16_t len; /* 0 for a free slot */
    uint8_t key[SSLOT_INLINE];
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
static const struct sslot *sub_find(const struct sd_names *s, uint64_t g, const uint8_t *p, size_t n)
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

/* By length under 8: the mask that leaves a key that long alone in the 8
 * bytes that end where it ends. */
static const uint64_t sub_low[8] = {0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffff, 0xffffffffffff,
                                    0xffffffffffffff};

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

static void sub_resolve(const struct sd_names *s, const uint8_t *name, struct subprobes *sp)
{
    for (unsigned i = 0; i < sp->n; i++) {
        const struct subpass *c = &sp->p[i];
        const struct sslot *sl = sub_find(s, c->g, name + c->end - c->len, c->len);
        if (sl)
            sp->m |= sl->tags;
    }
    sp->n = 0;
}

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

/* A window's candidates under 8 bytes, tested (pass[0..np)), and the
 * positions where longer keys may end: sub_positions() fills it. */
struct subwin {
    uint16_t cand[SUB_WIN * 7 + 8]; /* position << 3 | (length - 1) */
    uint16_t pass[SUB_WIN * 7 + 1]; /* indexes into cand[] */
    uint16_t longer[SUB_WIN + 1];   /* positions where keys of 8 bytes or more may end */
    size_t np, nl;
};

/* The first stages of the scan for the window of |win| positions after
 * |ctx| in the folded buffer |b|: the candidates of each position, then the
 * pair filter on those under 8 bytes. The lookup runs it for the first window
 * between the two steps of the suffix table. */
static void sub_positions(const struct sd_names *s, const uint8_t *b, size_t ctx, size_t win, struct subwin *w)
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
 * |w| holds the first window's sub_positions(). */
static __attribute__((noinline)) void sub_scan(const struct sd_names *s, const uint8_t *name, size_t n, uint8_t *fb,
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
            sub_positions(s, b, ctx, win, w);
        }
        const uint16_t *cand = w->cand, *pass = w->pass, *longer = w->longer;
        for (size_t i = 0; i < w->np; i++) {
            /* pass[0..np) were all written by sub_positions() (each before
             * np grew past it), which clang-analyzer does not follow. */
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
    uint64_t g = n < 8 ? sub_hash7(s, last, n) : sub_hash(s, first, last, n);
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
    struct sslot *sl = (struct sslot *)sub_find(s, g, k, n);
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

static int sub_build(struct sd_names *s)
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
    if (!(u->shorts = big_calloc(65536, 1))) /* read at every position, even when empty */
        return SD_ENOMEM;
    u->q4 = big_calloc(q4n, sizeof(*u->q4));
    u->q8 = big_calloc(q8n, sizeof(*u->q8));
    u->filter = big_calloc(fw, sizeof(*u->filter));
    u->slots = big_calloc(cap, sizeof(*u->slots));
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

/* ---- compiling and lookup ---- */

int sd_names_compile(struct sd_names *s)
{
    if (s->compiled)
        return 0;
    if (s->broken)
        return SD_ENOMEM;
    int rc = table_build(s);
    if (rc == 0)
        rc = sub_build(s);
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

uint64_t sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    if (!s->compiled)
        return 0;
    if ((s->opts & SD_NAMES_STRIP_DOT) && n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0)
        return 0;
    /* The name folded once, for both passes: fb[SUB_PAD..) holds its first
     * SUB_WIN bytes (sub_scan()'s first window) and, when it is no longer,
     * its last bytes up to the longest key (table_collect()). */
    uint8_t fb[SUB_PAD + SUB_WIN + SUB_CTX];
    memset(fb, 0, SUB_PAD);
    fold_copy(s, fb + SUB_PAD, name, SD_MIN(n, (size_t)SUB_WIN));
    struct probes pr;
    pr.n = 0;
    pr.m = 0;
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
        sub_positions(s, fb + SUB_PAD, 0, SD_MIN(n, (size_t)SUB_WIN), &w);
    if (s->slots)
        table_collect(s, name, n, &a, &pr);
    struct subprobes sp;
    sp.n = 0;
    sp.m = 0;
    if (s->sub.slots)
        sub_scan(s, name, n, fb, &w, &sp);
    uint64_t m = pr.m | table_resolve(s, name, n, pr.c, pr.n);
    if (sp.n)
        sub_resolve(s, name, &sp);
    return m | sp.m;
}
