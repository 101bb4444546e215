/*
 * hostmark.h - host-level state of the censor: marks set on a client address
 * for a while (spec 4.8: any UDP packet to some hosting ranges switched on a
 * 10-minute block of another provider for that client, re-armed by the next
 * UDP send). Unlike everything else in the engine, this state is kept per
 * client, not per flow.
 *
 * A fixed-size table of (mark tag, address) -> expiry, keyed by SipHash under
 * the engine's key, open addressing over a window of 8 slots. Memory is fixed
 * at creation: when the window is full, the entry that expires first is
 * replaced (a flood of marked clients forgets the oldest marks first, and
 * never grows the table).
 */
#ifndef SD_HOSTMARK_H
#define SD_HOSTMARK_H

#include <stdbool.h>
#include <stdint.h>

struct sd_hostmark;

/* A table of |slots| entries (rounded up to a power of two, at least 8). NULL when out of memory. */
struct sd_hostmark *sd_hostmark_new(uint32_t slots, const uint64_t key[2]);
void sd_hostmark_free(struct sd_hostmark *t);

/* Marks |addr| (|family| 4 or 6; 16 bytes, IPv4 in the first 4) with |tag|
 * until |until_ns|, or later if it is marked until later already. */
void sd_hostmark_set(struct sd_hostmark *t, uint8_t tag, int family, const uint8_t *addr, uint64_t until_ns);

/* Whether |addr| carries |tag| at |now_ns|. */
bool sd_hostmark_has(const struct sd_hostmark *t, uint8_t tag, int family, const uint8_t *addr, uint64_t now_ns);

/* Live entries at |now_ns| (for metrics and tests; walks the table). */
uint32_t sd_hostmark_count(const struct sd_hostmark *t, uint64_t now_ns);

#endif
