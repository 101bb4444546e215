/*
 * cmdopt.h - number and list parsing for the options of the live commands
 * (serve, run, lab, demo). Strict: the whole string must be used.
 */
#ifndef SD_CMDOPT_H
#define SD_CMDOPT_H

#include <stdint.h>

/* Parses a decimal (or 0x hexadecimal) integer no larger than |max|, with an
 * optional size suffix k, m or g (powers of 1024) when |suffix| is set.
 * 0 or SD_EINVAL. */
int sd_opt_u64(const char *s, uint64_t max, int suffix, uint64_t *out);

/* Parses a non-negative decimal number of seconds or milliseconds ("2.5").
 * Stores nanoseconds. 0 or SD_EINVAL. */
int sd_opt_seconds(const char *s, uint64_t *ns);

#endif
