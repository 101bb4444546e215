/*
 * flow.h - the flow table: fixed capacity, keyed hashing, bounded memory.
 *
 * A flow is the symmetric 5-tuple of a TCP connection or UDP conversation.
 * Endpoints are stored in a canonical order (the lower address/port first) so
 * both directions find the same entry; `flags` remembers which endpoint is the
 * client. Each entry is 64 bytes (one cache line): the key, a hash-chain link,
 * the last-seen time and the engine's per-flow state. Anything bigger
 * (reassembly buffers, reports) lives outside, in pools indexed by the slot.
 *
 * The table never grows. When it is full, sd_flow_insert evicts: it samples
 * SD_FLOW_EVICT_SAMPLE random slots and removes the least recently
 * seen, preferring flows that carry no action (a flood of new flows then
 * pushes out other idle, unremarkable flows before it touches a throttled one).
 */
#ifndef SD_FLOW_H
#define SD_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum { SD_FLOW_EVICT_SAMPLE = 8, SD_FLOW_NONE = UINT32_MAX };

/* Bits of sd_flow.flags. */
enum sd_flow_flag {
    SD_FF_V6 = 1 << 0,          /* IPv6 endpoints */
    SD_FF_CLIENT_B = 1 << 1,    /* the client is endpoint b (else a) */
    SD_FF_OPEN_INSIDE = 1 << 2, /* opened by the inside (SYN or first UDP packet from inside) */
    SD_FF_OPEN_OUTSIDE = 1 << 3,/* opened by the outside */
    SD_FF_ELIGIBLE = 1 << 4,    /* triggers may fire (B1) */
    SD_FF_INSPECTING = 1 << 5,  /* inspection still running */
    SD_FF_SYN_ONLY = 1 << 6,    /* nothing but a SYN seen yet */
    SD_FF_REASM = 1 << 7,       /* u.r holds a reassembly slot */
};

struct sd_flow_key {
    uint8_t a[16], b[16]; /* IPv4 addresses in the first 4 bytes, rest zero */
    uint16_t pa, pb;
    uint8_t proto;
    uint8_t v6;
};

struct sd_flow {
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    uint32_t next;        /* hash chain: next slot, or SD_FLOW_NONE; free list link when unused */
    uint32_t last_ms;     /* last packet, ms since the table's epoch */
    uint32_t t_us;        /* policer refill time, us (wrapping) */
    union {
        uint32_t tok[2];  /* policer tokens per direction, us of credit */
        uint32_t cnt[2];  /* counters of the drop-after and freeze actions */
        struct {
            uint32_t slot; /* reassembly slot while inspecting with reassembly */
            uint32_t isn;  /* stream offset 0 = this sequence number */
        } r;
    } u;
    uint16_t rule;        /* rule index + 1 that fired; 0 none */
    uint8_t proto;
    uint8_t flags;        /* enum sd_flow_flag */
    uint8_t action;       /* enum sd_action_kind in force */
    uint8_t budget;       /* inspection: payload packets still to look at */
    uint8_t trigger;      /* enum sd_trigger */
    uint8_t state;        /* engine-private bits */
};

struct sd_flow_table;

/* Makes a table of |capacity| flows hashed with SipHash under |key|. NULL when out of memory. */
struct sd_flow_table *sd_flow_table_new(uint32_t capacity, const uint64_t key[2]);
void sd_flow_table_free(struct sd_flow_table *t);

/* Builds the canonical key of a packet's 5-tuple. |dir_out| is set to 0 when
 * (src, sport) is endpoint a, 1 when it is endpoint b. */
void sd_flow_key_make(struct sd_flow_key *k, int family, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                      uint16_t dport, uint8_t proto, int *dir_out);

/* Keyed hash of a canonical key (the same for both directions). */
uint64_t sd_flow_key_hash(const struct sd_flow_table *t, const struct sd_flow_key *k);

/* Finds the flow of |k| (hash |h|). Returns its slot or SD_FLOW_NONE. */
uint32_t sd_flow_lookup(const struct sd_flow_table *t, const struct sd_flow_key *k, uint64_t h);

/*
 * Inserts a zeroed flow for |k| (which must not be present). When the table
 * is full it first evicts one flow and reports its slot in *evicted (else
 * SD_FLOW_NONE); the caller must have finished with that flow in its
 * before_evict callback. Returns the new slot.
 */
uint32_t sd_flow_insert(struct sd_flow_table *t, const struct sd_flow_key *k, uint64_t h, uint32_t now_ms,
                        void (*before_evict)(void *arg, uint32_t slot), void *arg);

/* Removes the flow in |slot| and returns the slot to the free list. */
void sd_flow_remove(struct sd_flow_table *t, uint32_t slot);

/* The flow in |slot|. */
struct sd_flow *sd_flow_at(struct sd_flow_table *t, uint32_t slot);

/* Next slot in use at or after *hand (wrapping once), for sweeps: returns
 * SD_FLOW_NONE when |max_visit| slots were visited without finding one. */
uint32_t sd_flow_next_used(const struct sd_flow_table *t, uint32_t *hand, uint32_t max_visit);

/*
 * Prefetching, for a caller that knows which packets come next (no effect on
 * the table): sd_flow_prefetch starts fetching the bucket of hash |h| into
 * the cache; a little later, sd_flow_prefetch_first reads that bucket and
 * starts fetching its first flow, whose slot it returns (SD_FLOW_NONE for an
 * empty bucket).
 */
void sd_flow_prefetch(const struct sd_flow_table *t, uint64_t h);
uint32_t sd_flow_prefetch_first(const struct sd_flow_table *t, uint64_t h);

uint32_t sd_flow_capacity(const struct sd_flow_table *t);
uint32_t sd_flow_count(const struct sd_flow_table *t);

#endif
