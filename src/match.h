/*
 * match.h - names of a list against a policy's name sets (slowdown match):
 * which sets hold each name, and which rules would act on a flow carrying
 * it. The command (cmd_match.c) parses options and opens files; this reads
 * the lines and writes the answers, so that a fuzz target drives it too.
 *
 * A line gives one name: trimmed of spaces, tabs and CR, and after its last
 * comma when it has one (Tranco's "rank,name"); empty lines and lines
 * starting with '#' are skipped. Names go to the matcher in batches
 * (sd_names_lookup_batch()). A rule is listed for a name when its name
 * conditions all hold for the name read as the chosen field and one that is
 * not negated does; its other conditions (ports, addresses, protocol) are
 * counted, not evaluated: a name alone cannot tell them. The patterns that
 * match come from sd_names_explain() (names up to 255 bytes).
 */
#ifndef SD_MATCH_H
#define SD_MATCH_H

#include <stdbool.h>
#include <stdio.h>

#include "policy.h"

enum sd_match_as { SD_MATCH_SNI, SD_MATCH_HOST, SD_MATCH_DNS };

struct sd_match_totals {
    unsigned long long names, matched, by_set[SD_POLICY_MAX_SETS];
};

struct sd_matcher;

/* A matcher writing to |out|: text lines "NAME\tSETS\tRULES\tPATTERNS", or with
 * |json| one JSON object per name; with |all| the names that match nothing
 * too. NULL when out of memory. */
struct sd_matcher *sd_matcher_new(const struct sd_policy *p, enum sd_match_as as, bool json, bool all, FILE *out);
void sd_matcher_free(struct sd_matcher *m);

/* Reads the names of |in| to its end and writes the answers. 0, or SD_EIO
 * (a read error: errno says which) or SD_ENOMEM. */
int sd_matcher_read(struct sd_matcher *m, FILE *in);

/* The counts so far. */
const struct sd_match_totals *sd_matcher_totals(const struct sd_matcher *m);

/* The name on a line of |len| bytes, or NULL for a line to skip; its length in |*n|. */
const char *sd_match_line_name(const char *line, size_t len, size_t *n);

#endif
