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
 *          ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^ ^      bare suffixes, where some key
 *          ^                                  has that length; exact
 *
 * Each suffix carries two hashes, both extended by one byte per step: a
 * polynomial hash (h = (h + byte) * M, random M) that indexes a blocked Bloom
 * filter per kind (3 bits in one 64-bit word, 16 to 32 bits per key: about
 * 0.5% false positives, 2 to 4 MB per million keys, mostly in cache), and
 * SipHash-1-3 of the suffix reversed, under a random key, whose state after
 * each full word is shared by all longer suffixes. Only suffixes that pass a
 * 256-entry table (length -> kinds with keys that long) and their kinds'
 * filters are finalised (one block, three rounds) and probed. Their slots are
 * prefetched, the substrings are looked for, and only then are they compared, so the
 * cache misses of a lookup overlap instead of queueing. A name of 255 dots
 * costs O(n), not O(n^2), and the walk stops once the suffix is longer than
 * the longest key. (Gathering all of a name's filter words and prefetching
 * them before testing any, with an automaton's steps interleaved, was tried:
 * 5-7% faster on 1 M synthetic patterns, 8% slower on the Re:filter list.)
 *
 * A slot is 32 bytes: 32 bits of the SipHash, the index of the key's tags
 * (a triple of masks: exact, dot suffix, suffix) and the key itself, inline
 * up to 22 bytes, so a probe usually costs one cache line. Equal
 * fingerprints are confirmed by comparing the bytes, so answers are exact
 * whatever the hash.
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

#include "names.h"
#include "siphash.h"

enum kind { K_EXACT, K_DSUFFIX, K_SUFFIX, K_SUBSTR };
enum { W_EXACT = 1 << K_EXACT, W_DSUFFIX = 1 << K_DSUFFIX, W_SUFFIX = 1 << K_SUFFIX };

enum {
    PROBE_BATCH = 8,         /* candidates finalised and prefetched before comparing */
    PREFETCH_AHEAD = 16,     /* keys hashed ahead of their insertion */
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
 * SLOT_PREFIX bytes here and the offset of the whole key in longkeys after them.
 */
enum { SLOT_INLINE = 22, SLOT_PREFIX = 14 };

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
    uint64_t *filter; /* pair filter: one bit per key */
    size_t fmask;
    struct sslot *slots;
    size_t smask;
    uint8_t *longkeys; /* keys longer than SSLOT_INLINE */
    size_t maxlen;
    uint64_t *shorts; /* keys of 1 to 3 bytes: 4 bits per value of the last 2 bytes */
};

struct sd_names {
    unsigned opts;
    bool compiled;
    bool broken; /* a compile ran out of memory: only sd_names_free remains */
    size_t count;
    uint8_t key[SD_SIPHASH_KEY_LEN];
    uint64_t fmul, fseed; /* filter hash */
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
    uint8_t r[SD_SIPHASH_KEY_LEN + 16];
    draw_key(r, sizeof(r));
    memcpy(s->key, r, SD_SIPHASH_KEY_LEN);
    s->fmul = sd_sip_rd64le(r + SD_SIPHASH_KEY_LEN) | 1;
    s->fseed = sd_sip_rd64le(r + SD_SIPHASH_KEY_LEN + 8);
    for (int i = 0; i < 256; i++)
        s->fold[i] = (uint8_t)i;
    if (opts & SD_NAMES_CASEFOLD)
        for (int i = 'A'; i <= 'Z'; i++)
            s->fold[i] = (uint8_t)(i - 'A' + 'a');
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

/* The SipHash of a key: SipHash-1-3 of its bytes, last byte first. */
static uint64_t key_hash(const struct sd_names *s, const uint8_t *p, size_t n)
{
    struct sd_sipstate st;
    sd_sip_init(&st, s->key);
    uint64_t w = 0;
    unsigned j = 0;
    for (size_t i = n; i-- > 0;) {
        w |= (uint64_t)p[i] << (8 * j);
        if (++j == 8) {
            sd_sip_block(&st, w, 1);
            w = 0;
            j = 0;
        }
    }
    return sd_sip_final(&st, w | (uint64_t)n << 56, 1, 3);
}

/* The filter hash of a key, extended the way a lookup extends it. */
static uint64_t key_fhash(const struct sd_names *s, const uint8_t *p, size_t n)
{
    uint64_t f = s->fseed;
    for (size_t i = n; i-- > 0;)
        f = (f + p[i]) * s->fmul;
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

/* The slot whose key equals fold(p[0..n)) for SipHash |h|, or NULL. */
static const struct slot *table_find(const struct sd_names *s, uint64_t h, const uint8_t *p, size_t n)
{
    uint32_t fp = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & s->smask;; i = (i + 1) & s->smask) {
        const struct slot *sl = &s->slots[i];
        if (sl->len == 0)
            return NULL;
        if (sl->fp != fp || sl->len != n)
            continue;
        const uint8_t *k = sl->key;
        size_t j = 0, inl = n <= SLOT_INLINE ? n : SLOT_PREFIX;
        while (j < inl && k[j] == s->fold[p[j]])
            j++;
        if (j < inl)
            continue;
        if (n > SLOT_INLINE) {
            uint64_t off;
            memcpy(&off, sl->key + SLOT_PREFIX, sizeof(off));
            k = s->longkeys + off;
            while (j < n && k[j] == s->fold[p[j]])
                j++;
        }
        if (j == n)
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
    if (n <= SLOT_INLINE) {
        memcpy(sl->key, k, n);
    } else {
        uint64_t off = *longlen;
        memcpy(sl->key, k, SLOT_PREFIX);
        memcpy(sl->key + SLOT_PREFIX, &off, sizeof(off));
        memcpy(s->longkeys + off, k, n);
        *longlen += n;
    }
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
    if (!tm || !s->slots || !s->longkeys || filters_alloc(s, nk) < 0) {
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
        }
        /* Hash ahead and prefetch the slot: inserts are random accesses. */
        if (i < s->npats && s->pats[i].kind != K_SUBSTR) {
            uint64_t h = key_hash(s, s->arena + s->pats[i].off, s->pats[i].len);
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

/*
 * All anchored kinds in one right-to-left pass (see the file comment): finds
 * the suffixes worth probing and prefetches their slots. The caller compares
 * them with table_resolve() after other work, so the cache misses overlap it.
 */
static void table_collect(const struct sd_names *s, const uint8_t *name, size_t n, struct probes *pr)
{
    size_t stop = n > s->maxlen ? n - s->maxlen : 0;
    struct sd_sipstate st;
    sd_sip_init(&st, s->key);
    uint64_t w = 0, f = s->fseed;
    unsigned j = 0;
    for (size_t i = n; i-- > stop;) {
        uint8_t b = s->fold[name[i]];
        size_t len = n - i;
        w |= (uint64_t)b << (8 * j);
        if (++j == 8) {
            sd_sip_block(&st, w, 1);
            w = 0;
            j = 0;
        }
        f = (f + b) * s->fmul;
        unsigned want = s->lenkinds[len] & (W_SUFFIX | (b == '.' ? W_DSUFFIX : 0) | (i == 0 ? W_EXACT : 0));
        if (!want || !(want = filter_pass(s, want, f)))
            continue;
        struct sd_sipstate fin = st;
        uint64_t h = sd_sip_final(&fin, w | (uint64_t)len << 56, 1, 3);
        __builtin_prefetch(&s->slots[h & s->smask]);
        pr->c[pr->n++] = (struct cand){h, (uint32_t)len, want};
        if (pr->n == PROBE_BATCH) {
            pr->m |= table_resolve(s, name, n, pr->c, pr->n);
            pr->n = 0;
        }
    }
}

/* ---- substrings ---- */

/*
 * Substring keys are found by where they end. The name is read once, left to
 * right, keeping its last 8 bytes (folded) in a word; at each position:
 *
 *   name   w w w . e x a m p l e . c o m      <- read this way
 *                          [ q8  ]           last 8 bytes: keys of 8 bytes or more
 *                              [q4 ]         last 4 bytes: keys of 4 to 7 bytes
 *                      [f4 ]                 first 4 bytes of a candidate (a ring
 *                                            of the last 256 positions' words)
 *
 * q4[] and q8[] map the hash of the last 4 (or 8) bytes to a bit set of the
 * lengths of the keys ending with them (q8: bit j for 8 + j bytes, bit QLONG for
 * 8 + QLONG or more); a bit of q4 says whether q8 is worth reading. Each length in the set is a candidate, tested by one bit
 * of a pair filter hashed from (first 4 bytes, last 4 or 8 bytes, length): for
 * a key of up to 12 bytes that is the whole key. Only a candidate passing it
 * is looked up in the table of keys and their tags, keyed by the same hash,
 * where the bytes are compared. Keys of 1 to 3 bytes are the low bytes of the
 * word: shorts[] maps the last 2 bytes to the lengths of such keys that may
 * end there (32 KB, made only when such keys exist), and a 3-byte candidate
 * goes through the pair filter. q4 and q8 take 2 to 4 and 4 to 8
 * bytes per key of their lengths, the filter 2 to 4 bytes per key, 3 bits in
 * one word (about 420 KB for 50 000 keywords), and the loads of successive
 * positions do not depend on each other. A position costs at most one probe
 * per length (up to 255), so a lookup is O(n).
 */
enum {
    QLONG = 15,     /* q8 bit for keys of 8 + QLONG bytes or more */
    Q4_LONGER = 16, /* q4 bit: some key of 8 bytes or more ends with these 4 */
    SSLOT_INLINE = 18,
    SSLOT_PREFIX = 10,
};

/* A slot of the substring table: 32 bytes, like struct slot, with the tags in
 * place of a triple. A longer key keeps its first SSLOT_PREFIX bytes and the
 * offset of the whole key in longkeys. */
struct sslot {
    uint64_t tags;
    uint32_t fp;
    uint16_t len; /* 0 for a free slot */
    uint8_t key[SSLOT_INLINE];
};

static inline size_t qgram_index(uint64_t w, unsigned shift)
{
    return (size_t)((w * 0x9e3779b97f4a7c15ULL) >> shift);
}

/* The hash of a key from its first 4 bytes, its last 4 (under 8 bytes) or 8
 * bytes and its length: it picks the filter bit and the slot. */
static inline uint64_t sub_hash(const struct sd_names *s, uint32_t first, uint64_t last, size_t len)
{
    uint64_t h = (last ^ s->fseed) * 0xff51afd7ed558ccdULL;
    h ^= ((uint64_t)first << 8 | len) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 32;
    h *= s->fmul;
    return h ^ (h >> 29);
}

/* The words sub_hash() takes, for key k/n: big-endian, as the lookup builds them. */
static void sub_parts(const uint8_t *k, size_t n, uint32_t *first, uint64_t *last)
{
    uint64_t l = 0;
    for (size_t j = n > 8 ? n - 8 : 0; j < n; j++)
        l = l << 8 | k[j];
    uint32_t f = 0;
    for (size_t j = 0; j < 4 && j < n; j++)
        f = f << 8 | k[j];
    *first = n < 4 ? (uint32_t)l : f;
    *last = n < 8 ? (uint32_t)l : l;
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
        if (sl->fp != fp || sl->len != n)
            continue;
        const uint8_t *k = sl->key;
        size_t j = 0, inl = n <= SSLOT_INLINE ? n : SSLOT_PREFIX;
        while (j < inl && k[j] == s->fold[p[j]])
            j++;
        if (j < inl)
            continue;
        if (n > SSLOT_INLINE) {
            uint64_t off;
            memcpy(&off, sl->key + SSLOT_PREFIX, sizeof(off));
            k = u->longkeys + off;
            while (j < n && k[j] == s->fold[p[j]])
                j++;
        }
        if (j == n)
            return sl;
    }
}

/* Whether the pair filter may hold hash |g|. */
static inline bool sub_maybe(const struct subs *u, uint64_t g)
{
    uint64_t bits = filter_bits(g);
    return (u->filter[(g >> 18) & u->fmask] & bits) == bits;
}

/* The tags of the candidate p[0..n) with hash |g|, or 0. */
static __attribute__((noinline)) uint64_t sub_tags(const struct sd_names *s, uint64_t g, const uint8_t *p, size_t n)
{
    const struct sslot *sl = sub_find(s, g, p, n);
    return sl ? sl->tags : 0;
}

/* The tags of the candidate p[0..n) with hash |g|, or 0: the filter inline,
 * the table (rarely reached) out of line. */
static inline uint64_t sub_probe(const struct sd_names *s, uint64_t g, const uint8_t *p, size_t n)
{
    return sub_maybe(&s->sub, g) ? sub_tags(s, g, p, n) : 0;
}

/* The lengths (bit n - 1 for n bytes) of the keys shorter than 4 bytes that
 * may end with the 2 bytes |v|: exact for 1 and 2 bytes, for 3 bytes a hint. */
static inline unsigned short_lens(const struct subs *u, uint32_t v)
{
    return (unsigned)(u->shorts[v >> 4] >> ((v & 15) * 4)) & 7;
}

/* The tags of all substring keys in the name. Out of line: lists without
 * substrings (the Re:filter list) keep the suffix walk's loop as compact as
 * before (3-5% on its lookups in paired runs). */
static __attribute__((noinline)) uint64_t sub_scan(const struct sd_names *s, const uint8_t *name, size_t n)
{
    const struct subs *u = &s->sub;
    uint32_t ring[256]; /* ring[e & 255]: the 4 bytes ending at position e */
    uint64_t m = 0, w = 0;
    unsigned lm;
    for (size_t e = 1; e <= n; e++) {
        w = w << 8 | s->fold[name[e - 1]];
        uint32_t w4 = (uint32_t)w;
        ring[e & 255] = w4;
        if (u->shorts && (lm = short_lens(u, w4 & 0xffff)) != 0)
            for (; lm; lm &= lm - 1) {
                size_t len = 1 + (unsigned)__builtin_ctz(lm);
                uint32_t k = w4 & (uint32_t)(((uint64_t)1 << (8 * len)) - 1);
                if (len <= e)
                    m |= sub_probe(s, sub_hash(s, k, k, len), name + e - len, len);
            }
        if (e < 4)
            continue;
        unsigned q = u->q4[qgram_index(w4, u->q4shift)];
        for (lm = q & 15; lm; lm &= lm - 1) {
            size_t len = 4 + (unsigned)__builtin_ctz(lm);
            if (len <= e)
                m |= sub_probe(s, sub_hash(s, ring[(e - len + 4) & 255], w4, len), name + e - len, len);
        }
        if (e < 8 || !(q & Q4_LONGER))
            continue;
        lm = u->q8[qgram_index(w, u->q8shift)];
        for (; lm; lm &= lm - 1) {
            unsigned bit = (unsigned)__builtin_ctz(lm);
            size_t len = 8 + bit, hi = bit == QLONG ? SD_MIN(u->maxlen, e) : len;
            for (; len <= hi && len <= e; len++)
                m |= sub_probe(s, sub_hash(s, ring[(e - len + 4) & 255], w, len), name + e - len, len);
        }
    }
    return m;
}

/* Adds key |k|/|n| (folded) with tag |tag|. */
static void sub_insert(struct sd_names *s, const uint8_t *k, size_t n, unsigned tag, size_t *longlen)
{
    struct subs *u = &s->sub;
    uint32_t first;
    uint64_t last;
    sub_parts(k, n, &first, &last);
    uint64_t g = sub_hash(s, first, last, n);
    u->filter[(g >> 18) & u->fmask] |= filter_bits(g);
    if (n < 4) {
        for (uint32_t hi = 0; hi < (n == 1 ? 256u : 1u); hi++) { /* each v whose last bytes are the key's */
            uint32_t v = (hi << 8 | first) & 0xffff;
            u->shorts[v >> 4] |= (uint64_t)1 << ((v & 15) * 4 + n - 1);
        }
    } else if (n < 8)
        u->q4[qgram_index(last, u->q4shift)] |= (uint8_t)(1u << (n - 4));
    else {
        u->q4[qgram_index((uint32_t)last, u->q4shift)] |= Q4_LONGER;
        u->q8[qgram_index(last, u->q8shift)] |= (uint16_t)(1u << SD_MIN(n - 8, (size_t)QLONG));
    }
    struct sslot *sl = (struct sslot *)sub_find(s, g, k, n);
    if (!sl) {
        size_t i = sub_home(u, g);
        while (u->slots[i].len)
            i = (i + 1) & u->smask;
        sl = &u->slots[i];
        *sl = (struct sslot){.fp = (uint32_t)g, .len = (uint16_t)n};
        if (n <= SSLOT_INLINE) {
            memcpy(sl->key, k, n);
        } else {
            uint64_t off = *longlen;
            memcpy(sl->key, k, SSLOT_PREFIX);
            memcpy(sl->key + SSLOT_PREFIX, &off, sizeof(off));
            memcpy(u->longkeys + off, k, n);
            *longlen += n;
        }
    }
    sl->tags |= (uint64_t)1 << tag;
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

static int sub_build(struct sd_names *s)
{
    struct subs *u = &s->sub;
    size_t nk = 0, nshort = 0, n4 = 0, n8 = 0, longbytes = 0;
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind == K_SUBSTR) {
            size_t len = s->pats[i].len;
            nk++;
            nshort += len < 4;
            n4 += len >= 4 && len < 8;
            n8 += len >= 8;
            longbytes += len > SSLOT_INLINE ? len : 0;
        }
    if (nk == 0)
        return 0;
    size_t q4n = pow2_at_least(2 * (n4 + n8), &u->q4shift), q8n = pow2_at_least(2 * n8, &u->q8shift);
    size_t fw = pow2_at_least(16 * nk, NULL) / 64, cap = pow2_at_least(2 * nk, NULL);
    if (nshort && !(u->shorts = big_calloc(65536 * 4 / 64, sizeof(uint64_t))))
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
    struct probes pr;
    pr.n = 0;
    pr.m = 0;
    if (s->slots)
        table_collect(s, name, n, &pr);
    uint64_t m = pr.m;
    if (s->sub.slots) /* while the probes' cache lines arrive */
        m |= sub_scan(s, name, n);
    return m | table_resolve(s, name, n, pr.c, pr.n);
}
