/*
 * names.h - matching server names against large rule sets, and IP addresses
 * against CIDR sets.
 *
 * A name set holds patterns of four kinds (spec B4, the 2021 rules):
 *   "t.co"         exact
 *   "*.twimg.com"  dot-boundary suffix: any name ending in ".twimg.com"
 *                  (the bare "twimg.com" does not match; add it separately)
 *   "*twitter.com" bare suffix, no label boundary: throttletwitter.com matches
 *   "*t.co*"       substring anywhere: reddit.com and microsoft.com match
 * Every pattern carries a tag, the number (0..63) of the named set it came
 * from; a lookup returns the bit mask of the tags of all patterns that match,
 * so one lookup answers for every set of a policy.
 *
 * Compiled sets are immutable and may be shared by threads. Lookups allocate
 * nothing.
 */
#ifndef SD_NAMES_H
#define SD_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum { SD_NAMES_MAX_TAGS = 64, SD_NAME_MAX = 255 };

/* Lookup options. */
enum sd_names_opt {
    SD_NAMES_CASEFOLD = 1 << 0,   /* compare ASCII case-insensitively (patterns are folded at add time) */
    SD_NAMES_STRIP_DOT = 1 << 1,  /* drop one trailing dot of the looked-up name */
};

struct sd_names;

/* Makes an empty set. |opts| are SD_NAMES_* applied to every lookup. NULL when out of memory. */
struct sd_names *sd_names_new(unsigned opts);
/* Frees; accepts NULL. */
void sd_names_free(struct sd_names *s);

/*
 * Adds one pattern (|n| bytes, syntax above) with tag |tag| (< 64). Returns 0,
 * SD_EINVAL for an empty or ill-formed pattern ("*", "**", a '*' in the middle,
 * longer than 255 bytes, a NUL byte), SD_ENOMEM. Must precede sd_names_compile.
 */
int sd_names_add(struct sd_names *s, const char *pattern, size_t n, unsigned tag);

/* Builds the lookup structures. Returns 0 or SD_ENOMEM. After it, the set is read-only. */
int sd_names_compile(struct sd_names *s);

/* Number of patterns added. */
size_t sd_names_count(const struct sd_names *s);

/* Returns the mask of tags whose patterns match |name| (|n| bytes, not
 * NUL-terminated; any bytes allowed). 0 when none. */
uint64_t sd_names_lookup(const struct sd_names *s, const uint8_t *name, size_t n);

/* sd_names_lookup() of each of |k| names (names[i], lens[i] bytes) into
 * out[i]. The same answers; for callers that have several names at once
 * (slowdown match), each lookup's cache misses overlap the next one's work. */
void sd_names_lookup_batch(const struct sd_names *s, const uint8_t *const *names, const size_t *lens, size_t k,
                           uint64_t *out);

/* A pattern that matches a name, as sd_names_explain() reports it: its
 * text as added (folded when the set folds case), and the tags it carries. */
typedef void (*sd_names_pattern_fn)(void *arg, const char *pattern, size_t n, uint64_t tags);

/*
 * Calls |fn| once for each pattern of the set that matches |name| (patterns
 * added with several tags come once, with all of them): why a lookup
 * answered what it did. Anchored patterns come first, shortest suffix first
 * (an exact pattern with the whole name), then substrings, shortest first. Slow (every suffix and substring of the name is
 * tried): for slowdown match, not for packets. Returns 0, SD_ERANGE for a
 * name longer than SD_NAME_MAX bytes (after the trailing dot the set strips),
 * or SD_ENOMEM.
 */
int sd_names_explain(const struct sd_names *s, const uint8_t *name, size_t n, sd_names_pattern_fn fn, void *arg);

/* ---- CIDR sets ---- */

struct sd_ipset;

struct sd_ipset *sd_ipset_new(void);
void sd_ipset_free(struct sd_ipset *s);
/* Adds a prefix: |family| 4 or 6, |addr| 4 or 16 bytes, |plen| <= 32/128, tag < 64. 0, SD_EINVAL, SD_ENOMEM. */
int sd_ipset_add(struct sd_ipset *s, int family, const uint8_t *addr, unsigned plen, unsigned tag);
/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address and adds it. 0 or SD_EINVAL/SD_ENOMEM. */
int sd_ipset_add_text(struct sd_ipset *s, const char *text, size_t n, unsigned tag);
int sd_ipset_compile(struct sd_ipset *s);
size_t sd_ipset_count(const struct sd_ipset *s);
/* Mask of tags of all prefixes containing the address. */
uint64_t sd_ipset_lookup(const struct sd_ipset *s, int family, const uint8_t *addr);

#endif
