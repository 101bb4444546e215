/*
 * hostmark.c - per-client marks with an expiry (see hostmark.h).
 */
#include <stdlib.h>
#include <string.h>

#include "hostmark.h"
#include "siphash.h"

enum { WINDOW = 8 };

struct entry {
    uint64_t until_ns;   /* 0: free */
    uint8_t addr[16];
    uint8_t family, tag;
};

struct sd_hostmark {
    uint32_t mask;
    uint8_t key[SD_SIPHASH_KEY_LEN];
    struct entry e[];
};

struct sd_hostmark *sd_hostmark_new(uint32_t slots, const uint64_t key[2])
{
    uint32_t n = 8;
    while (n < slots && n < (1u << 30))
        n <<= 1;
    struct sd_hostmark *t = calloc(1, sizeof(*t) + (size_t)n * sizeof(struct entry));
    if (!t)
        return NULL;
    t->mask = n - 1;
    memcpy(t->key, &key[0], 8);
    memcpy(t->key + 8, &key[1], 8);
    return t;
}

void sd_hostmark_free(struct sd_hostmark *t)
{
    free(t);
}

static uint32_t home(const struct sd_hostmark *t, uint8_t tag, int family, const uint8_t *addr)
{
    uint8_t k[18];
    k[0] = tag;
    k[1] = (uint8_t)family;
    memcpy(k + 2, addr, 16);
    return (uint32_t)sd_siphash(t->key, k, family == 6 ? 18 : 6) & t->mask;
}

static bool same(const struct entry *x, uint8_t tag, int family, const uint8_t *addr)
{
    return x->tag == tag && x->family == family && !memcmp(x->addr, addr, family == 6 ? 16 : 4);
}

void sd_hostmark_set(struct sd_hostmark *t, uint8_t tag, int family, const uint8_t *addr, uint64_t until_ns)
{
    uint32_t h = home(t, tag, family, addr);
    struct entry *victim = NULL;
    for (uint32_t i = 0; i < WINDOW; i++) {
        struct entry *x = &t->e[(h + i) & t->mask];
        if (x->until_ns && same(x, tag, family, addr)) {
            if (until_ns > x->until_ns)
                x->until_ns = until_ns;
            return;
        }
        if (!victim || x->until_ns < victim->until_ns)
            victim = x; /* free (0) or expiring first */
    }
    /* A stale copy of this key further on cannot exist: lookups stop at the
     * first match, and set() always finds an existing one first. */
    memset(victim, 0, sizeof(*victim));
    victim->until_ns = until_ns;
    victim->tag = tag;
    victim->family = (uint8_t)family;
    memcpy(victim->addr, addr, family == 6 ? 16 : 4);
}

bool sd_hostmark_has(const struct sd_hostmark *t, uint8_t tag, int family, const uint8_t *addr, uint64_t now_ns)
{
    uint32_t h = home(t, tag, family, addr);
    for (uint32_t i = 0; i < WINDOW; i++) {
        const struct entry *x = &t->e[(h + i) & t->mask];
        if (x->until_ns && same(x, tag, family, addr))
            return x->until_ns > now_ns;
    }
    return false;
}

uint32_t sd_hostmark_count(const struct sd_hostmark *t, uint64_t now_ns)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i <= t->mask; i++)
        n += t->e[i].until_ns > now_ns;
    return n;
}
