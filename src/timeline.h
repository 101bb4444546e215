/*
 * timeline.h - when each built-in preset was in force (spec section 2).
 * Times are UTC. Several presets can be in force at once (the Twitter block,
 * the QUIC rule and the YouTube policer ran side by side).
 */
#ifndef SD_TIMELINE_H
#define SD_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

struct sd_timeline_entry {
    const char *preset;
    const char *start, *end; /* ISO 8601 UTC, end NULL = still in force */
};

extern const struct sd_timeline_entry sd_timeline[];
extern const size_t sd_timeline_len;

/* Parses "2021-03-10", "2021-03-10T09:00Z", "2021-03-10T09:00:00Z" or with
 * a "+03:00" offset into seconds since the epoch. 0 or SD_EINVAL. */
int sd_time_parse(const char *s, int64_t *out);

/* Fills |out| (capacity |cap|) with the presets in force at |t|, oldest
 * start first. Returns how many. */
size_t sd_timeline_at(int64_t t, const char **out, size_t cap);

#endif
