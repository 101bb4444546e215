/*
 * flow.c - fixed-capacity flow table with chained buckets and sampled
 * eviction.
 *
 * Layout: an array of 64-byte struct sd_flow (the slots) and an array of
 * uint32_t bucket heads (a power of two, at least the capacity). A bucket is a
 * singly linked chain through sd_flow.next; removed slots form a free list
 * through the same field, slots never used yet are taken in order after it,
 * and unused slots are marked by proto == 0 (only TCP and UDP flows are ever
 * stored). With one head per slot the mean chain is under one entry.
 *
 * Hashing is SipHash-1-3 under a key chosen at start-up (random in production,
 * fixed in tests), so an attacker who picks 5-tuples cannot aim them at one
 * chain (Redis dict.c, WireGuard's ratelimiter).
 *
 * Memory is capacity * 64 + heads * 4 bytes, fixed at creation: 10 million
 * flows take 640 MB + 64 MB of address space, touched as flows fill it.
 */
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "siphash.h"

_Static_assert(sizeof(struct sd_flow) == 64, "struct sd_flow must stay one cache line");

struct sd_flow_table {
    struct sd_flow *slots;
    uint32_t *heads;
    uint32_t capacity;
    uint32_t mask;       /* heads - 1 */
    uint32_t count;
    uint32_t free_head;  /* slots freed by remove; then slots from `fresh` on */
    uint32_t fresh;      /* slots [fresh, capacity) were never used */
    uint64_t rng;        /* eviction sampling (xorshift64) */
    uint8_t key[SD_SIPHASH_KEY_LEN];
};

/* ---- keys ---- */

static int cmp_ep(const uint8_t *x, uint16_t xp, const uint8_t *y, uint16_t yp, size_t alen)
{
    int c = memcmp(x, y, alen);
    if (c)
        return c;
    return (int)xp - (int)yp;
}

void sd_flow_key_make(struct sd_flow_key *k, int family, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                      uint16_t dport, uint8_t proto, int *dir_out)
{
    size_t alen = family == 6 ? 16 : 4;
    memset(k, 0, sizeof(*k));
    k->proto = proto;
    k->v6 = family == 6;
    if (cmp_ep(src, sport, dst, dport, alen) <= 0) {
        memcpy(k->a, src, alen);
        memcpy(k->b, dst, alen);
        k->pa = sport;
        k->pb = dport;
        *dir_out = 0;
    } else {
        memcpy(k->a, dst, alen);
        memcpy(k->b, src, alen);
        k->pa = dport;
        k->pb = sport;
        *dir_out = 1;
    }
}

uint64_t sd_flow_key_hash(const struct sd_flow_table *t, const struct sd_flow_key *k)
{
    return sd_siphash(t->key, k, sizeof(*k));
}

static bool key_eq(const struct sd_flow *f, const struct sd_flow_key *k)
{
    return f->pa == k->pa && f->pb == k->pb && f->proto == k->proto && ((f->flags & SD_FF_V6) != 0) == k->v6 &&
           memcmp(f->a, k->a, 16) == 0 && memcmp(f->b, k->b, 16) == 0;
}

/* ---- table ---- */

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
    t->slots = calloc(capacity, sizeof(*t->slots));
    t->heads = malloc((size_t)heads * sizeof(*t->heads));
    if (!t->slots || !t->heads) {
        sd_flow_table_free(t);
        return NULL;
    }
    memset(t->heads, 0xff, (size_t)heads * sizeof(*t->heads));
    t->capacity = capacity;
    t->mask = heads - 1;
    /* Slots are handed out in order from `fresh` before the free list is
     * built, so a big table costs nothing until flows fill it (calloc's
     * pages stay untouched). */
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
    free(t->slots);
    free(t->heads);
    free(t);
}

uint32_t sd_flow_lookup(const struct sd_flow_table *t, const struct sd_flow_key *k, uint64_t h)
{
    uint32_t i = t->heads[h & t->mask];
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
    uint32_t *link = &t->heads[slot_hash(t, f) & t->mask];
    while (*link != SD_FLOW_NONE && *link != slot)
        link = &t->slots[*link].next;
    if (*link == slot)
        *link = f->next;
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
    uint32_t slot;
    if (t->free_head != SD_FLOW_NONE) {
        slot = t->free_head;
        t->free_head = t->slots[slot].next;
    } else {
        slot = t->fresh++;
    }
    struct sd_flow *f = &t->slots[slot];
    memset(f, 0, sizeof(*f));
    memcpy(f->a, k->a, 16);
    memcpy(f->b, k->b, 16);
    f->pa = k->pa;
    f->pb = k->pb;
    f->proto = k->proto;
    f->flags = k->v6 ? SD_FF_V6 : 0;
    f->last_ms = now_ms;
    uint32_t *head = &t->heads[h & t->mask];
    f->next = *head;
    *head = slot;
    t->count++;
    return slot;
}

struct sd_flow *sd_flow_at(struct sd_flow_table *t, uint32_t slot)
{
    return &t->slots[slot];
}

uint32_t sd_flow_next_used(const struct sd_flow_table *t, uint32_t *hand, uint32_t max_visit)
{
    for (uint32_t i = 0; i < max_visit; i++) {
        uint32_t s = *hand;
        *hand = s + 1 < t->capacity ? s + 1 : 0;
        if (t->slots[s].proto != 0)
            return s;
    }
    return SD_FLOW_NONE;
}

uint32_t sd_flow_capacity(const struct sd_flow_table *t)
{
    return t->capacity;
}

uint32_t sd_flow_count(const struct sd_flow_table *t)
{
    return t->count;
}
