/*
 * names.c - server names against large pattern sets.
 *
 * Two structures. The three anchored kinds share one hash table; substrings
 * get an Aho-Corasick automaton:
 *
 *   "t.co"          key "t.co"         probed with the whole name
 *   "*.twimg.com"   key ".twimg.com"   probed with each suffix that starts at a '.'
 *   "*twitter.com"  key "twitter.com"  probed with each suffix
 *   "*t.co*"        automaton          one pass over the name
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
 * prefetched, the automaton runs, and only then are they compared, so the
 * cache misses of a lookup overlap instead of queueing. A name of 255 dots
 * costs O(n), not O(n^2), and the walk stops once the suffix is longer than
 * the longest key. (Gathering all of a name's filter words and prefetching
 * them before testing any, with the automaton's steps interleaved, was tried:
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
 * The automaton is laid out breadth-first from the sorted substrings: the
 * children of state s are the consecutive states [st[s].child,
 * st[s+1].child), sorted by label, so a state needs no edge list: its
 * children's labels are one short run of a byte array. Labels are byte classes: bytes that occur in some
 * substring, numbered in byte order; class 0 for every other byte, which
 * resets the automaton at once. With SD_NAMES_CASEFOLD the class map sends
 * 'A'..'Z' to the classes of 'a'..'z'. The first states in breadth-first
 * order (the root and the shallow states where most steps land) get full
 * transition rows with failures resolved, up to a fixed budget; deeper states
 * find their child by the rank of its label in a 64-bit set of their
 * children's labels (one cache line per step; beyond 64 classes, a scan of
 * the labels) and follow failure links. Each state points to the union of the
 * tags of all substrings ending there or along its failure chain; a flag in
 * the state (and in the rows' entries) says whether that union is empty.
 *
 * Case folding is ASCII only, applied to patterns at add time and to names
 * while they are read, never into a copy, so names of any length are folded
 * over their whole length. Nothing is allocated per lookup. A lookup before
 * compiling (or after a compile that failed) answers 0. Compiling frees the
 * pattern list: the slots and the automaton keep all that lookups need.
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
    ROW_BUDGET = 256 * 1024, /* bytes of full automaton rows */
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

/* A state: 16 bytes, four to a cache line. With at most 64 classes, |cls|
 * has bit c set when a child has label c, and that child is |child| plus the
 * number of lower bits set: a step reads one line. Bit 0 (class 0 never
 * labels an edge) says that some substring ends here or along the failure
 * chain. */
struct tstate {
    uint32_t child; /* first child; the children end where st[s + 1].child starts */
    uint32_t fail;
    uint64_t cls;
};

enum { OUT_FLAG = 1u << 31 }; /* in rows[] entries: the next state has tags */

/* The automaton, split by how often each part is read: every step reads a
 * row or a state (and, beyond 64 classes, the labels of its children); the
 * tag masks only when a flag says there are some. */
struct trie {
    struct tstate *st; /* nstates + 1; the last is a sentinel closing the child ranges */
    uint8_t *label;    /* class of the edge into each state */
    uint32_t *out;     /* index into masks[] per state */
    uint32_t nstates;
    uint32_t nrows;  /* states [0, nrows) have full rows */
    uint32_t ncls;   /* classes, 0 included */
    uint32_t *rows;  /* rows[s * ncls + c]: the next state, failures resolved, | OUT_FLAG */
    uint64_t *masks; /* distinct tag unions; masks[0] == 0 */
    uint32_t nmasks;
};

struct sd_names {
    unsigned opts;
    bool compiled;
    bool broken; /* a compile ran out of memory: only sd_names_free remains */
    size_t count;
    uint8_t key[SD_SIPHASH_KEY_LEN];
    uint64_t fmul, fseed; /* filter hash */
    uint8_t fold[256];    /* byte -> byte as compared (identity or ASCII lower case) */
    uint8_t cls[256];     /* byte -> automaton class (folded), 0 when in no substring */
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

    struct trie ac;
};

static inline unsigned popcount64(uint64_t x)
{
#ifdef __POPCNT__
    return (unsigned)__builtin_popcountll(x);
#else /* the generic x86-64 target has no popcnt: not a libgcc call per step */
    x -= (x >> 1) & 0x5555555555555555ULL;
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (unsigned)((x * 0x0101010101010101ULL) >> 56);
#endif
}

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
    free(s->ac.st);
    free(s->ac.label);
    free(s->ac.out);
    free(s->ac.rows);
    free(s->ac.masks);
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

/* ---- the substring automaton ---- */

struct tkey {
    const uint8_t *p;
    uint32_t len;
    uint32_t tag;
};

static int tkey_cmp(const void *a, const void *b)
{
    const struct tkey *x = a, *y = b;
    int c = memcmp(x->p, y->p, SD_MIN(x->len, y->len));
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Distinct tag masks: an open-addressing map from mask to index (0 = free),
 * used while building; the masks themselves end up in t->masks. */
struct maskmap {
    uint32_t *slot;
    size_t mask;
};

static size_t maskmap_home(const struct maskmap *mm, uint64_t m)
{
    return (size_t)((m * 0x9e3779b97f4a7c15ULL) >> 32) & mm->mask;
}

static int maskmap_grow(struct maskmap *mm, const struct trie *t)
{
    size_t cap = mm->slot ? 2 * (mm->mask + 1) : 256;
    uint32_t *ns = calloc(cap, sizeof(*ns));
    if (!ns)
        return SD_ENOMEM;
    free(mm->slot);
    mm->slot = ns;
    mm->mask = cap - 1;
    for (uint32_t v = 1; v < t->nmasks; v++) {
        size_t i = maskmap_home(mm, t->masks[v]);
        while (mm->slot[i])
            i = (i + 1) & mm->mask;
        mm->slot[i] = v;
    }
    return 0;
}

/* Returns the index of mask |m| in t->masks, adding it when new, or SD_ENOMEM. */
static int64_t mask_index(struct maskmap *mm, struct trie *t, uint64_t m, size_t *cap)
{
    if (m == 0)
        return 0;
    size_t i = maskmap_home(mm, m);
    for (; mm->slot[i]; i = (i + 1) & mm->mask)
        if (t->masks[mm->slot[i]] == m)
            return mm->slot[i];
    if (grow((void **)&t->masks, cap, t->nmasks + 1, sizeof(uint64_t)) < 0)
        return SD_ENOMEM;
    uint32_t v = t->nmasks++;
    t->masks[v] = m;
    mm->slot[i] = v;
    if (2 * (size_t)t->nmasks > mm->mask && maskmap_grow(mm, t) < 0) /* keep it at most half full */
        return SD_ENOMEM;
    return v;
}

/* The child of state |s| with label |c|, or 0. */
static inline uint32_t child_of(const struct trie *t, uint32_t s, uint8_t c)
{
    if (t->ncls <= 64) { /* the children's labels as a bit set: the child is st[s].child + rank of c */
        uint64_t m = t->st[s].cls;
        if (!((m >> c) & 1))
            return 0;
        return t->st[s].child + popcount64(m & ((((uint64_t)1 << c) - 1) & ~(uint64_t)1));
    }
    uint32_t lo = t->st[s].child, hi = t->st[s + 1].child;
    while (hi - lo > 8) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->label[mid] <= c)
            lo = mid;
        else
            hi = mid;
    }
    for (; lo < hi; lo++)
        if (t->label[lo] == c)
            return lo;
    return 0;
}

/* The transition on class |c| (not 0) from |s|, following failure links
 * until a state with a row. */
static inline uint32_t ac_next(const struct trie *t, uint32_t s, uint8_t c)
{
    for (;;) {
        if (s < t->nrows)
            return t->rows[(size_t)s * t->ncls + c];
        uint32_t x = child_of(t, s, c);
        if (x)
            return x;
        s = t->st[s].fail;
    }
}

/* Build-time scratch per state: the key range below it, its depth, and the
 * tags of keys ending at it or along its failure chain. */
struct tbuild {
    uint32_t lo, hi, depth;
    uint64_t full;
};

/* Creates the children of state |s| from its key range, in label order, with
 * their failure links (every shallower state is complete by now). */
static uint32_t ac_expand(struct trie *t, struct tbuild *b, const struct tkey *k, const uint8_t *cls, uint32_t s,
                          uint32_t next)
{
    uint32_t lo = b[s].lo, hi = b[s].hi, d = b[s].depth;
    t->st[s].child = next;
    while (lo < hi) {
        uint8_t byte = k[lo].p[d];
        uint32_t e = lo + 1;
        while (e < hi && k[e].p[d] == byte)
            e++;
        uint32_t x = next++;
        t->label[x] = cls[byte];
        b[x] = (struct tbuild){.lo = lo, .hi = e, .depth = d + 1};
        while (b[x].lo < e && k[b[x].lo].len == d + 1) /* keys ending at x sort first */
            b[x].full |= (uint64_t)1 << k[b[x].lo++].tag;
        uint32_t f = s == 0 ? 0 : ac_next(t, t->st[s].fail, cls[byte]);
        t->st[x].fail = f;
        b[x].full |= b[f].full;
        lo = e;
    }
    for (uint32_t x = t->st[s].child; x < next && t->ncls <= 64; x++)
        t->st[s].cls |= (uint64_t)1 << t->label[x]; /* bit 0 is set later */
    /* Its row: children where they exist, the failure state's row elsewhere. */
    if (s < t->nrows) {
        uint32_t *row = t->rows + (size_t)s * t->ncls;
        for (uint32_t c = 1; c < t->ncls; c++)
            row[c] = s == 0 ? 0 : t->rows[(size_t)t->st[s].fail * t->ncls + c];
        for (uint32_t x = t->st[s].child; x < next; x++)
            row[t->label[x]] = x;
    }
    return next;
}

/* Builds the automaton from |nk| sorted keys of |total| bytes. */
static int ac_build(struct trie *t, const struct tkey *k, size_t nk, size_t total, const uint8_t *cls)
{
    int rc = SD_ENOMEM;
    size_t maxst = total + 2, mcap = 0;
    struct tbuild *b = big_calloc(maxst, sizeof(*b));
    struct maskmap mm = {0};
    t->st = big_calloc(maxst, sizeof(*t->st));
    t->label = big_calloc(maxst, 1);
    t->out = big_calloc(maxst, sizeof(*t->out));
    t->nrows = (uint32_t)SD_MIN(maxst - 1, SD_MAX((size_t)1, ROW_BUDGET / (t->ncls * sizeof(uint32_t))));
    t->rows = big_calloc((size_t)t->nrows * t->ncls, sizeof(uint32_t));
    if (total >= OUT_FLAG - 2) /* state numbers must leave the flag bit free */
        goto out;
    if (!b || !t->st || !t->label || !t->out || !t->rows ||
        grow((void **)&t->masks, &mcap, 1, sizeof(uint64_t)) < 0)
        goto out;
    t->masks[0] = 0;
    t->nmasks = 1;
    if (maskmap_grow(&mm, t) < 0)
        goto out;
    b[0] = (struct tbuild){.lo = 0, .hi = (uint32_t)nk};
    uint32_t next = 1;
    for (uint32_t s = 0; s < next; s++)
        next = ac_expand(t, b, k, cls, s, next);
    t->nstates = next;
    t->st[next].child = next; /* sentinel */
    for (uint32_t s = 1; s < next; s++) {
        int64_t idx = mask_index(&mm, t, b[s].full, &mcap);
        if (idx < 0)
            goto out;
        t->out[s] = (uint32_t)idx;
        if (idx)
            t->st[s].cls |= 1;
    }
    for (size_t i = 0; i < (size_t)t->nrows * t->ncls; i++) /* flag the rows' targets that have tags */
        t->rows[i] |= (uint32_t)(t->st[t->rows[i]].cls & 1) << 31;
    rc = 0;
out:
    free(b);
    free(mm.slot);
    return rc;
}

/* Numbers the bytes of substrings in byte order; folded upper case shares classes. */
static uint32_t classes_build(struct sd_names *s)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < s->npats; i++) {
        const struct pat *pt = &s->pats[i];
        if (pt->kind == K_SUBSTR)
            for (size_t j = 0; j < pt->len; j++)
                seen[s->arena[pt->off + j]] = true;
    }
    uint32_t next = 1;
    for (int c = 0; c < 256; c++)
        if (seen[c])
            s->cls[c] = (uint8_t)next++; /* at most 255: NUL never occurs in a body */
    for (int c = 0; c < 256; c++)
        s->cls[c] = s->cls[s->fold[c]];
    return next;
}

static int ac_from_patterns(struct sd_names *s)
{
    size_t nk = 0, total = 0;
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind == K_SUBSTR) {
            nk++;
            total += s->pats[i].len;
        }
    if (nk == 0)
        return 0;
    struct tkey *k = malloc(nk * sizeof(*k));
    if (!k)
        return SD_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind == K_SUBSTR)
            k[j++] = (struct tkey){s->arena + s->pats[i].off, s->pats[i].len, s->pats[i].tag};
    qsort(k, nk, sizeof(*k), tkey_cmp);
    s->ac.ncls = classes_build(s);
    int rc = ac_build(&s->ac, k, nk, total, s->cls);
    free(k);
    return rc;
}

/* The lookup's step: like ac_next, but returns the state | OUT_FLAG when it has tags. */
static inline uint32_t ac_step(const struct trie *t, uint32_t s, uint8_t c)
{
    for (;;) {
        if (s < t->nrows)
            return t->rows[(size_t)s * t->ncls + c];
        uint32_t x = child_of(t, s, c);
        if (x)
            return x | (uint32_t)(t->st[x].cls & 1) << 31;
        s = t->st[s].fail;
    }
}

/* One step of the automaton on byte |b| from state *st; returns the tags seen. */
static inline uint64_t ac_byte(const struct trie *t, const uint8_t *cls, uint8_t b, uint32_t *st)
{
    uint8_t c = cls[b];
    if (c == 0) {
        *st = 0;
        return 0;
    }
    uint32_t v = ac_step(t, *st, c);
    *st = v & ~(uint32_t)OUT_FLAG;
    return v & OUT_FLAG ? t->masks[t->out[*st]] : 0;
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
        rc = ac_from_patterns(s);
    if (rc < 0) {
        s->broken = true; /* half-built: lookups keep answering 0 */
        return rc;
    }
    free(s->arena); /* records and the automaton hold all that is needed */
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
    uint32_t st = 0;
    if (s->ac.st) /* while the probes' cache lines arrive */
        for (size_t i = 0; i < n; i++)
            m |= ac_byte(&s->ac, s->cls, name[i], &st);
    return m | table_resolve(s, name, n, pr.c, pr.n);
}
