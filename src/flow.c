/*
 * flow.c - fixed-capacity flow table with chained buckets and sampled
 * eviction.
 *
 * Layout: an array of 64-byte struct sd_flow (the slots) and an array of
 * uint32_t bucket heads (a power of two, at least the capacity; each holds
 * its first slot plus one, so zeroed memory is a table of empty buckets). A
 * bucket is a singly linked chain through sd_flow.next; unused slots form a free list
 * through the same field and are marked by proto == 0 (only TCP and UDP flows
 * are ever stored). With one head per slot the mean chain is under one entry.
 * A bitmap of the slots in use (one bit per slot) lets the engine's sweep
 * skip empty slots without touching their cache lines: a sparse table of a
 * million slots otherwise costs a cache miss per slot visited.
 *
 * Hashing is SipHash-1-3 under a key chosen at start-up (random in production,
 * fixed in tests), so an attacker who picks 5-tuples cannot aim them at one
 * chain (Redis dict.c, WireGuard's ratelimiter).
 *
 * Hashing covers only the bytes that matter: an IPv4 key packs into two
 * 64-bit words (addresses, ports, protocol), so SipHash-1-3 (siphash.h) runs
 * 6 rounds instead of the 9 of the whole 40-byte struct; IPv6 keys hash all
 * of it.
 *
 * Memory is capacity * 64 + heads * 4 + capacity / 8 bytes, reserved at
 * creation: 10 million flows take 640 MB + 64 MB + 1.25 MB. The arrays are
 * zeroed pages the kernel maps on first use (2 MB pages where allowed), and the free list's never-used
 * tail is implicit, so a table only costs the memory of the slots it has
 * used so far, up to that bound.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "flow.h"
#include "siphash.h"

_Static_assert(sizeof(struct sd_flow) == 64, "struct sd_flow must stay one cache line");

struct sd_flow_table {
    struct sd_flow *slots;
    uint32_t *heads;     /* first slot of each chain, plus one: 0 is an empty chain */
    uint64_t *used;      /* bit s set: slot s holds a flow (proto != 0) */
    size_t slots_len, heads_len;
    uint32_t capacity;
    uint32_t mask;       /* heads - 1 */
    uint32_t count;
    uint32_t free_head;  /* released slots, most recent first */
    uint32_t fresh;      /* slots from here on were never used: the free list goes on with them, in order */
    uint64_t rng;        /* eviction sampling (xorshift64) */
    uint8_t key[SD_SIPHASH_KEY_LEN];
};

/* ---- keys ---- */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t be64(const uint8_t *p)
{
    return __builtin_bswap64(load64(p));
}

/* Endpoint order: address bytes as memcmp orders them, then the port.
 * Negative, zero or positive like memcmp. */
static inline int cmp_ep4(const uint8_t *x, uint16_t xp, const uint8_t *y, uint16_t yp)
{
    uint32_t a = __builtin_bswap32(load32(x)), b = __builtin_bswap32(load32(y));
    if (a != b)
        return a < b ? -1 : 1;
    return (int)xp - (int)yp;
}

static inline int cmp_ep6(const uint8_t *x, uint16_t xp, const uint8_t *y, uint16_t yp)
{
    uint64_t a = be64(x), b = be64(y);
    if (a == b)
        a = be64(x + 8), b = be64(y + 8);
    if (a != b)
        return a < b ? -1 : 1;
    return (int)xp - (int)yp;
}

void sd_flow_key_make(struct sd_flow_key *k, int family, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                      uint16_t dport, uint8_t proto, int *dir_out)
{
    memset(k, 0, sizeof(*k)); /* padding too: the key is hashed and compared as bytes */
    k->proto = proto;
    k->v6 = family == 6;
    int swap = family == 6 ? cmp_ep6(src, sport, dst, dport) > 0 : cmp_ep4(src, sport, dst, dport) > 0;
    const uint8_t *a = swap ? dst : src, *b = swap ? src : dst;
    k->pa = swap ? dport : sport;
    k->pb = swap ? sport : dport;
    if (family == 6) {
        memcpy(k->a, a, 16);
        memcpy(k->b, b, 16);
    } else {
        memcpy(k->a, a, 4);
        memcpy(k->b, b, 4);
    }
    *dir_out = swap;
}

uint64_t sd_flow_key_hash(const struct sd_flow_table *t, const struct sd_flow_key *k)
{
    if (!k->v6) { /* SipHash-1-3 of 16 bytes: addresses, ports, protocol */
        struct sd_sipstate s;
        sd_sip_init(&s, t->key);
        sd_sip_block(&s, (uint64_t)load32(k->a) | (uint64_t)load32(k->b) << 32, 1);
        sd_sip_block(&s, (uint64_t)k->pa | (uint64_t)k->pb << 16 | (uint64_t)k->proto << 32, 1);
        return sd_sip_final(&s, (uint64_t)16 << 56, 1, 3);
    }
    return sd_siphash(t->key, k, sizeof(*k));
}

static bool key_eq(const struct sd_flow *f, const struct sd_flow_key *k)
{
    uint64_t d = (load64(f->a) ^ load64(k->a)) | (load64(f->a + 8) ^ load64(k->a + 8)) |
                 (load64(f->b) ^ load64(k->b)) | (load64(f->b + 8) ^ load64(k->b + 8));
    return d == 0 && f->pa == k->pa && f->pb == k->pb && f->proto == k->proto && ((f->flags & SD_FF_V6) != 0) == k->v6;
}

/* ---- table ---- */

enum { HUGE_PAGE = 2u << 20 };

/*
 * Zeroed memory for the big arrays, mapped on first touch, on 2 MB pages
 * where the kernel allows it (MADV_HUGEPAGE): lookups land at random in
 * tens or hundreds of megabytes, and with 4 KB pages each one also misses
 * the TLB (a nested page walk under virtualisation). Sizes round up to 2 MB;
 * a table under 2 MB gets 4 KB pages (zeroing a whole 2 MB page for it made
 * half the time of a small engine's set-up).
 */
static void *big_alloc(size_t *len)
{
    if (*len < HUGE_PAGE) { /* a small table (tests, fuzzing, --max-flows in the thousands): 4 KB pages */
        size_t n = (*len + 4095) / 4096 * 4096;
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *len = n;
        return p;
    }
    size_t n = (*len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    uint8_t *p = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    size_t lead = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE; /* align to 2 MB, give back the rest */
    if (lead)
        munmap(p, lead);
    if (HUGE_PAGE - lead)
        munmap(p + lead + n, HUGE_PAGE - lead);
#ifdef MADV_HUGEPAGE
    madvise(p + lead, n, MADV_HUGEPAGE);
#endif
    *len = n;
    return p + lead;
}

static void big_free(void *p, size_t len)
{
    if (p)
        munmap(p, len);
}

struct sd_flow_table *sd_flow_table_new(uint32_t capacity, const uint64_t key[2])
{
    if (capacity == 0 || capacity > (1u << 30))
        return NULL;
    struct sd_flow_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    uint32_t heads = 1;
    while (heads < capacity)
        heads <<= 1;
    t->slots_len = (size_t)capacity * sizeof(*t->slots);
    t->heads_len = (size_t)heads * sizeof(*t->heads);
    t->slots = big_alloc(&t->slots_len);
    t->heads = big_alloc(&t->heads_len);
    t->used = calloc(((size_t)capacity + 63) / 64, sizeof(*t->used));
    if (!t->slots || !t->heads || !t->used) {
        sd_flow_table_free(t);
        return NULL;
    }
    t->capacity = capacity;
    t->mask = heads - 1;
    /* The free list starts as every slot in order; its never-used tail is
     * implicit (fresh), so creating a big table touches none of its pages. */
    t->free_head = SD_FLOW_NONE;
    t->fresh = 0;
    uint64_t k0 = key ? key[0] : 0, k1 = key ? key[1] : 0;
    memcpy(t->key, &k0, 8);
    memcpy(t->key + 8, &k1, 8);
    t->rng = (k0 ^ k1 ^ 0x9e3779b97f4a7c15ULL) | 1;
    return t;
}

void sd_flow_table_free(struct sd_flow_table *t)
{
    if (!t)
        return;
    big_free(t->slots, t->slots_len);
    big_free(t->heads, t->heads_len);
    free(t->used);
    free(t);
}

uint32_t sd_flow_lookup(const struct sd_flow_table *t, const struct sd_flow_key *k, uint64_t h)
{
    uint32_t i = t->heads[h & t->mask] - 1; /* SD_FLOW_NONE when empty */
    while (i != SD_FLOW_NONE) {
        const struct sd_flow *f = &t->slots[i];
        if (key_eq(f, k))
            return i;
        i = f->next;
    }
    return SD_FLOW_NONE;
}

static uint64_t slot_hash(const struct sd_flow_table *t, const struct sd_flow *f)
{
    struct sd_flow_key k;
    memset(&k, 0, sizeof(k));
    memcpy(k.a, f->a, 16);
    memcpy(k.b, f->b, 16);
    k.pa = f->pa;
    k.pb = f->pb;
    k.proto = f->proto;
    k.v6 = (f->flags & SD_FF_V6) != 0;
    return sd_flow_key_hash(t, &k);
}

void sd_flow_remove(struct sd_flow_table *t, uint32_t slot)
{
    struct sd_flow *f = &t->slots[slot];
    if (f->proto == 0)
        return;
    uint32_t *head = &t->heads[slot_hash(t, f) & t->mask];
    if (*head - 1 == slot) {
        *head = f->next + 1;
    } else {
        uint32_t i = *head - 1;
        while (i != SD_FLOW_NONE && t->slots[i].next != slot)
            i = t->slots[i].next;
        if (i != SD_FLOW_NONE)
            t->slots[i].next = f->next;
    }
    t->used[slot / 64] &= ~(1ULL << (slot % 64));
    memset(f, 0, sizeof(*f));
    f->next = t->free_head;
    t->free_head = slot;
    t->count--;
}

/* Picks a victim among SD_FLOW_EVICT_SAMPLE slots chosen at random (the
 * table is full, so every slot is in use): the least recently seen flow
 * without an action, or, if every sampled flow has one, the least recently
 * seen of them. Random rather than consecutive samples, because flows
 * created together sit in consecutive slots (Redis's approximated LRU). */
static uint32_t pick_victim(struct sd_flow_table *t, uint32_t now_ms)
{
    uint32_t best = SD_FLOW_NONE, best_act = SD_FLOW_NONE;
    uint32_t best_age = 0, best_act_age = 0;
    for (int i = 0; i < SD_FLOW_EVICT_SAMPLE; i++) {
        t->rng ^= t->rng << 13;
        t->rng ^= t->rng >> 7;
        t->rng ^= t->rng << 17;
        uint32_t s = (uint32_t)((t->rng >> 32) * t->capacity >> 32);
        const struct sd_flow *f = &t->slots[s];
        uint32_t age = now_ms - f->last_ms;
        if (f->action == 0) {
            if (best == SD_FLOW_NONE || age > best_age) {
                best = s;
                best_age = age;
            }
        } else if (best_act == SD_FLOW_NONE || age > best_act_age) {
            best_act = s;
            best_act_age = age;
        }
    }
    return best != SD_FLOW_NONE ? best : best_act;
}

uint32_t sd_flow_insert(struct sd_flow_table *t, const struct sd_flow_key *k, uint64_t h, uint32_t now_ms,
                        void (*before_evict)(void *arg, uint32_t slot), void *arg)
{
    if (t->free_head == SD_FLOW_NONE && t->fresh == t->capacity) {
        uint32_t victim = pick_victim(t, now_ms);
        if (before_evict)
            before_evict(arg, victim);
        sd_flow_remove(t, victim);
    }
    uint32_t slot = t->free_head != SD_FLOW_NONE ? t->free_head : t->fresh++;
    struct sd_flow *f = &t->slots[slot];
    if (slot == t->free_head)
        t->free_head = f->next;
    memset(f, 0, sizeof(*f));
    memcpy(f->a, k->a, 16);
    memcpy(f->b, k->b, 16);
    f->pa = k->pa;
    f->pb = k->pb;
    f->proto = k->proto;
    f->flags = k->v6 ? SD_FF_V6 : 0;
    f->last_ms = now_ms;
    uint32_t *head = &t->heads[h & t->mask];
    f->next = *head - 1;
    *head = slot + 1;
    if (f->proto != 0)
        t->used[slot / 64] |= 1ULL << (slot % 64);
    t->count++;
    return slot;
}

struct sd_flow *sd_flow_at(struct sd_flow_table *t, uint32_t slot)
{
    return &t->slots[slot];
}

/* Visits up to |max_visit| slots from *hand, as if one at a time (the hand
 * ends one past the slot found, or |max_visit| slots on), a bitmap word at a
 * time. */
uint32_t sd_flow_next_used(const struct sd_flow_table *t, uint32_t *hand, uint32_t max_visit)
{
    uint32_t s = *hand, left = max_visit;
    if (s % 64 + max_visit < 64 && s + max_visit < t->capacity) { /* the sweep's case: a few slots in one word */
        uint64_t m = (t->used[s / 64] >> (s % 64)) & ((1ULL << max_visit) - 1);
        s += m ? (uint32_t)__builtin_ctzll(m) : max_visit;
        *hand = m ? s + 1 : s;
        return m ? s : SD_FLOW_NONE;
    }
    while (left > 0) {
        uint32_t bit = s % 64, span = 64 - bit;
        span = SD_MIN(span, t->capacity - s);
        span = SD_MIN(span, left);
        uint64_t m = t->used[s / 64] >> bit;
        if (span < 64)
            m &= (1ULL << span) - 1;
        if (m) {
            s += (uint32_t)__builtin_ctzll(m);
            *hand = s + 1 < t->capacity ? s + 1 : 0;
            return s;
        }
        left -= span;
        s += span;
        if (s >= t->capacity)
            s = 0;
    }
    *hand = s;
    return SD_FLOW_NONE;
}

void sd_flow_prefetch(const struct sd_flow_table *t, uint64_t h)
{
    __builtin_prefetch(&t->heads[h & t->mask]);
}

uint32_t sd_flow_prefetch_first(const struct sd_flow_table *t, uint64_t h)
{
    uint32_t i = t->heads[h & t->mask] - 1;
    if (i != SD_FLOW_NONE)
        __builtin_prefetch(&t->slots[i]);
    return i;
}

uint32_t sd_flow_capacity(const struct sd_flow_table *t)
{
    return t->capacity;
}

uint32_t sd_flow_count(const struct sd_flow_table *t)
{
    return t->count;
}
