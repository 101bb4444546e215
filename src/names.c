/*
 * names.c - server names against large pattern sets.
 *
 * The four pattern kinds go to three structures, each picked so that a lookup
 * reads the name once per structure and touches few cache lines:
 *
 *   "t.co", "*.twimg.com"  -> one open-addressing hash table, keyed by the
 *                             body ("t.co", ".twimg.com"); exact and
 *                             dot-suffix tags kept apart in each slot.
 *   "*twitter.com"         -> a trie of the reversed bodies, walked from the
 *                             last byte of the name until it falls off.
 *   "*t.co*"               -> an Aho-Corasick automaton, one pass over the name.
 *
 * A bare suffix whose body starts with '.' ("*.twimg.com") means exactly the
 * dot-boundary suffix, so every suffix pattern with a leading dot is a hash
 * key; the rest go to the suffix trie.
 *
 * Hashing every label suffix in one pass. The hash of a key is SipHash-1-3 of
 * its bytes in reverse order, under a random key drawn at creation. Reading a
 * name from its last byte to its first, the hash state after k full words is
 * shared by every suffix longer than 8k bytes, so at each '.' the suffix hash
 * costs one final block and three rounds on a copy of the state: all probes of
 * "a.b.example.com" take one pass, and a name of 255 dots costs O(n), not
 * O(n^2). Probes are skipped for lengths no key has (two 256-bit maps), and
 * the walk stops once the suffix is longer than the longest key, so names of
 * any length are handled without a buffer. A slot stores the full 64-bit hash;
 * equal hashes are confirmed by comparing the bytes, so the result is exact.
 *
 * Tries. Both tries are laid out in breadth-first order from the sorted keys:
 * the children of state s are the consecutive states [st[s].child,
 * st[s+1].child), sorted by label, so a state needs no edge list of its own and
 * scanning the labels of the children loads the child it finds. Labels are
 * byte classes: the bytes that occur in some trie key, numbered in byte order
 * (so byte order = class order), class 0 for all others. A class-0 byte can
 * never continue a match, which resets the automaton in one step; with
 * SD_NAMES_CASEFOLD the class map sends 'A'..'Z' to the classes of 'a'..'z', so
 * the tries fold case for free. The root's children are found through a
 * direct 256-entry table. Each state carries an index into a small table of
 * distinct tag masks: for the automaton the union of the outputs along its
 * failure chain (computed once, so a lookup ORs one mask per byte); for the
 * suffix trie the tags of the keys ending there.
 *
 * Case folding is ASCII only ('A'..'Z'), applied to patterns at add time and to
 * names while they are read (through a table), never into a copy: long names
 * are folded and matched over their whole length.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "names.h"
#include "siphash.h"

enum kind { K_EXACT, K_DSUFFIX, K_SUFFIX, K_SUBSTR };

struct pat {
    uint32_t off; /* body in the arena */
    uint16_t len;
    uint8_t kind;
    uint8_t tag;
};

/* Hash slot: 32 bytes, two per cache line. len == 0 marks a free slot. */
struct hslot {
    uint64_t h;
    uint64_t exact; /* tags of exact patterns equal to the key */
    uint64_t dsuf;  /* tags of "*<key>" patterns (key starts with '.') */
    uint32_t off;   /* key bytes in the arena */
    uint32_t len;
};

struct tstate {
    uint32_t child; /* first child; the children end where st[s + 1].child starts */
    uint32_t fail;  /* automaton failure link (0 in the suffix trie) */
    uint32_t out;   /* index into masks[], 0 for none */
    uint8_t label;  /* class of the edge into this state */
    uint8_t pad[3];
};

struct trie {
    struct tstate *st; /* nstates + 1; the last is a sentinel closing the child ranges */
    uint32_t nstates;
    uint64_t *masks;
    uint32_t nmasks;
    uint32_t root[256]; /* root's child by class, 0 for none */
};

struct sd_names {
    unsigned opts;
    bool compiled;
    size_t count;
    uint8_t key[SD_SIPHASH_KEY_LEN];
    uint8_t fold[256]; /* byte -> byte as compared (identity or ASCII lower case) */
    uint8_t cls[256];  /* byte -> trie label class (folded), 0 when in no trie key */

    uint8_t *arena;
    size_t arena_len, arena_cap;
    struct pat *pats;
    size_t npats, pats_cap;

    struct hslot *slots;
    size_t hmask;      /* slot count - 1; no table when slots == NULL */
    size_t hmaxlen;    /* longest hash key */
    uint64_t exact_lens[4], dsuf_lens[4];

    struct trie suf; /* reversed bare-suffix bodies */
    struct trie ac;  /* substring bodies */
    bool has_suf, has_ac;
};

static inline bool bit_get(const uint64_t *m, size_t i)
{
    return (m[i >> 6] >> (i & 63)) & 1;
}

static inline void bit_set(uint64_t *m, size_t i)
{
    m[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* ---- creation and adding ---- */

static void draw_key(uint8_t key[static SD_SIPHASH_KEY_LEN])
{
    /* The key only spreads keys over slots: results never depend on it. If
     * the kernel has no entropy yet, fall back to the clock. */
    if (getrandom(key, SD_SIPHASH_KEY_LEN, GRND_NONBLOCK) == SD_SIPHASH_KEY_LEN)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t a = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec, b = (uint64_t)(uintptr_t)key;
    for (int i = 0; i < 8; i++) {
        key[i] = (uint8_t)(a >> (8 * i));
        key[8 + i] = (uint8_t)(b >> (8 * i));
    }
}

struct sd_names *sd_names_new(unsigned opts)
{
    struct sd_names *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->opts = opts;
    draw_key(s->key);
    for (int i = 0; i < 256; i++)
        s->fold[i] = (uint8_t)i;
    if (opts & SD_NAMES_CASEFOLD)
        for (int i = 'A'; i <= 'Z'; i++)
            s->fold[i] = (uint8_t)(i - 'A' + 'a');
    return s;
}

static void trie_free(struct trie *t)
{
    free(t->st);
    free(t->masks);
}

void sd_names_free(struct sd_names *s)
{
    if (!s)
        return;
    free(s->arena);
    free(s->pats);
    free(s->slots);
    trie_free(&s->suf);
    trie_free(&s->ac);
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

int sd_names_add(struct sd_names *s, const char *pattern, size_t n, unsigned tag)
{
    enum kind kind;
    const uint8_t *body;
    size_t blen;
    if (s->compiled || tag >= SD_NAMES_MAX_TAGS)
        return SD_EINVAL;
    int rc = parse_pattern((const uint8_t *)pattern, n, &kind, &body, &blen);
    if (rc < 0)
        return rc;
    if (s->arena_len + blen > UINT32_MAX)
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

/* ---- hash table ---- */

/* The hash of a key: SipHash-1-3 of its bytes, last byte first. */
static uint64_t rhash(const uint8_t key[static SD_SIPHASH_KEY_LEN], const uint8_t *p, size_t n)
{
    struct sd_sipstate st;
    sd_sip_init(&st, key);
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

/* Finds the slot of the key whose bytes equal fold[p[0..n)], or NULL. */
static const struct hslot *hfind(const struct sd_names *s, uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = (size_t)h & s->hmask;; i = (i + 1) & s->hmask) {
        const struct hslot *sl = &s->slots[i];
        if (sl->len == 0)
            return NULL;
        if (sl->h != h || sl->len != n)
            continue;
        const uint8_t *k = s->arena + sl->off;
        size_t j = 0;
        while (j < n && k[j] == s->fold[p[j]])
            j++;
        if (j == n)
            return sl;
    }
}

static int hash_build(struct sd_names *s, size_t nkeys)
{
    if (nkeys == 0)
        return 0;
    size_t cap = 16;
    while (cap < 2 * nkeys) /* load factor at most 1/2 */
        cap *= 2;
    s->slots = calloc(cap, sizeof(*s->slots));
    if (!s->slots)
        return SD_ENOMEM;
    s->hmask = cap - 1;
    for (size_t i = 0; i < s->npats; i++) {
        const struct pat *pt = &s->pats[i];
        if (pt->kind != K_EXACT && pt->kind != K_DSUFFIX)
            continue;
        const uint8_t *k = s->arena + pt->off;
        uint64_t h = rhash(s->key, k, pt->len);
        struct hslot *sl = (struct hslot *)hfind(s, h, k, pt->len);
        if (!sl) {
            size_t j = (size_t)h & s->hmask;
            while (s->slots[j].len)
                j = (j + 1) & s->hmask;
            sl = &s->slots[j];
            *sl = (struct hslot){.h = h, .off = pt->off, .len = pt->len};
        }
        uint64_t bit = (uint64_t)1 << pt->tag;
        if (pt->kind == K_EXACT) {
            sl->exact |= bit;
            bit_set(s->exact_lens, pt->len);
        } else {
            sl->dsuf |= bit;
            bit_set(s->dsuf_lens, pt->len);
        }
        s->hmaxlen = SD_MAX(s->hmaxlen, (size_t)pt->len);
    }
    return 0;
}

/*
 * Probes the whole name (exact keys) and every suffix starting at a '.'
 * (dot-suffix keys) in one right-to-left pass; see the file comment.
 */
static uint64_t hash_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    size_t stop = n > s->hmaxlen ? n - s->hmaxlen : 0;
    struct sd_sipstate st;
    sd_sip_init(&st, s->key);
    uint64_t w = 0, m = 0;
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
        bool want_d = b == '.' && bit_get(s->dsuf_lens, len);
        bool want_e = i == 0 && bit_get(s->exact_lens, len);
        if (!want_d && !want_e)
            continue;
        struct sd_sipstate fin = st;
        const struct hslot *sl = hfind(s, sd_sip_final(&fin, w | (uint64_t)len << 56, 1, 3), name + i, len);
        if (sl)
            m |= (want_d ? sl->dsuf : 0) | (want_e ? sl->exact : 0);
    }
    return m;
}

/* ---- tries ---- */

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

/* The child of state |s| (not the root) with label |c|, or 0. */
static inline uint32_t child_of(const struct tstate *st, uint32_t s, uint8_t c)
{
    uint32_t lo = st[s].child, hi = st[s + 1].child;
    while (hi - lo > 8) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st[mid].label <= c)
            lo = mid;
        else
            hi = mid;
    }
    for (; lo < hi; lo++)
        if (st[lo].label == c)
            return lo;
    return 0;
}

/* Automaton transition on class |c| from |s|, following failure links. */
static inline uint32_t ac_next(const struct trie *t, uint32_t s, uint8_t c)
{
    for (;;) {
        if (s == 0)
            return t->root[c];
        uint32_t x = child_of(t->st, s, c);
        if (x)
            return x;
        s = t->st[s].fail;
    }
}

/* Build-time scratch per state: the key range below it and its depth. */
struct tbuild {
    uint32_t lo, hi, depth;
    uint64_t full; /* own tags, or with the failure chain's for the automaton */
};

/* Creates the children of state |s| from its key range, in label order. */
static uint32_t trie_expand(struct trie *t, struct tbuild *b, const struct tkey *k, const uint8_t *cls,
                            uint32_t s, uint32_t next, bool ac)
{
    uint32_t lo = b[s].lo, hi = b[s].hi, d = b[s].depth;
    t->st[s].child = next;
    while (lo < hi) {
        uint8_t byte = k[lo].p[d];
        uint32_t e = lo + 1;
        while (e < hi && k[e].p[d] == byte)
            e++;
        uint32_t x = next++;
        t->st[x] = (struct tstate){.label = cls[byte]};
        b[x] = (struct tbuild){.lo = lo, .hi = e, .depth = d + 1};
        /* Keys that end at x sort first in its range. */
        while (b[x].lo < e && k[b[x].lo].len == d + 1)
            b[x].full |= (uint64_t)1 << k[b[x].lo++].tag;
        if (s == 0)
            t->root[cls[byte]] = x;
        if (ac) {
            /* Longest proper suffix of x's path that is a trie path: every
             * state shallower than x is complete by now (breadth-first). */
            uint32_t f = 0;
            if (s != 0)
                f = ac_next(t, t->st[s].fail, cls[byte]);
            t->st[x].fail = f;
            b[x].full |= b[f].full;
        }
        lo = e;
    }
    return next;
}

/* Builds |t| from |nk| sorted keys |k|; |ac| adds failure links and output unions. */
static int trie_build(struct trie *t, struct tkey *k, size_t nk, size_t total, const uint8_t *cls, bool ac)
{
    int rc = SD_ENOMEM;
    size_t maxst = total + 2, mcap = 0;
    struct tbuild *b = calloc(maxst, sizeof(*b));
    struct maskmap mm = {0};
    t->st = calloc(maxst, sizeof(*t->st));
    if (!b || !t->st || grow((void **)&t->masks, &mcap, 1, sizeof(uint64_t)) < 0)
        goto out;
    t->masks[0] = 0;
    t->nmasks = 1;
    if (maskmap_grow(&mm, t) < 0)
        goto out;
    b[0] = (struct tbuild){.lo = 0, .hi = (uint32_t)nk};
    uint32_t next = 1;
    for (uint32_t s = 0; s < next; s++)
        next = trie_expand(t, b, k, cls, s, next, ac);
    t->nstates = next;
    t->st[next].child = next; /* sentinel */
    for (uint32_t s = 1; s < next; s++) {
        int64_t idx = mask_index(&mm, t, b[s].full, &mcap);
        if (idx < 0)
            goto out;
        t->st[s].out = (uint32_t)idx;
    }
    struct tstate *shrunk = realloc(t->st, (next + 1) * sizeof(*t->st));
    if (shrunk)
        t->st = shrunk;
    rc = 0;
out:
    free(b);
    free(mm.slot);
    return rc;
}

/* Collects the bodies of kind |kind| as trie keys (reversed for suffixes) and builds. */
static int trie_from(struct sd_names *s, struct trie *t, enum kind kind)
{
    size_t nk = 0, total = 0;
    for (size_t i = 0; i < s->npats; i++)
        if (s->pats[i].kind == kind) {
            nk++;
            total += s->pats[i].len;
        }
    if (nk == 0)
        return 0;
    int rc = SD_ENOMEM;
    struct tkey *k = malloc(nk * sizeof(*k));
    uint8_t *rev = kind == K_SUFFIX ? malloc(total) : NULL;
    if (!k || (kind == K_SUFFIX && !rev))
        goto out;
    size_t j = 0, r = 0;
    for (size_t i = 0; i < s->npats; i++) {
        const struct pat *pt = &s->pats[i];
        if (pt->kind != kind)
            continue;
        const uint8_t *p = s->arena + pt->off;
        if (rev) {
            for (size_t x = 0; x < pt->len; x++)
                rev[r + x] = p[pt->len - 1 - x];
            p = rev + r;
            r += pt->len;
        }
        k[j++] = (struct tkey){p, pt->len, pt->tag};
    }
    qsort(k, nk, sizeof(*k), tkey_cmp);
    rc = trie_build(t, k, nk, total, s->cls, kind == K_SUBSTR);
out:
    free(k);
    free(rev);
    return rc;
}

/* Numbers the bytes of trie keys in byte order; folded upper case shares classes. */
static void classes_build(struct sd_names *s)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < s->npats; i++) {
        const struct pat *pt = &s->pats[i];
        if (pt->kind == K_SUFFIX || pt->kind == K_SUBSTR)
            for (size_t j = 0; j < pt->len; j++)
                seen[s->arena[pt->off + j]] = true;
    }
    uint8_t next = 1;
    for (int c = 0; c < 256; c++)
        if (seen[c])
            s->cls[c] = next++; /* at most 255: NUL never occurs in a body */
    for (int c = 0; c < 256; c++)
        s->cls[c] = s->cls[s->fold[c]];
}

int sd_names_compile(struct sd_names *s)
{
    if (s->compiled)
        return 0;
    size_t nhash = 0;
    for (size_t i = 0; i < s->npats; i++) {
        enum kind k = s->pats[i].kind;
        nhash += k == K_EXACT || k == K_DSUFFIX;
        s->has_suf |= k == K_SUFFIX;
        s->has_ac |= k == K_SUBSTR;
    }
    classes_build(s);
    int rc = hash_build(s, nhash);
    if (rc == 0)
        rc = trie_from(s, &s->suf, K_SUFFIX);
    if (rc == 0)
        rc = trie_from(s, &s->ac, K_SUBSTR);
    if (rc < 0)
        return rc;
    free(s->pats); /* the arena stays: hash keys point into it */
    s->pats = NULL;
    s->npats = s->pats_cap = 0;
    s->compiled = true;
    return 0;
}

/* ---- lookup ---- */

static uint64_t suffix_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    const struct trie *t = &s->suf;
    uint64_t m = 0;
    uint32_t st = 0;
    for (size_t i = n; i-- > 0;) {
        uint8_t c = s->cls[name[i]];
        if (c == 0)
            break;
        st = st == 0 ? t->root[c] : child_of(t->st, st, c);
        if (st == 0)
            break;
        m |= t->masks[t->st[st].out];
    }
    return m;
}

static uint64_t substring_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    const struct trie *t = &s->ac;
    uint64_t m = 0;
    uint32_t st = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s->cls[name[i]];
        st = c == 0 ? 0 : ac_next(t, st, c);
        m |= t->masks[t->st[st].out];
    }
    return m;
}

uint64_t sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n)
{
    if (!s->compiled)
        return 0;
    if ((s->opts & SD_NAMES_STRIP_DOT) && n > 0 && name[n - 1] == '.')
        n--;
    if (n == 0)
        return 0;
    uint64_t m = 0;
    if (s->slots)
        m |= hash_lookup(s, name, n);
    if (s->has_suf)
        m |= suffix_lookup(s, name, n);
    if (s->has_ac)
        m |= substring_lookup(s, name, n);
    return m;
}
