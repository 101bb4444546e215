/*
 * cmdopt.c - strict number parsing for command-line options (cmdopt.h).
 * strtoull alone accepts "-1", " 5" and "5x"; these helpers do not.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "cmdopt.h"
#include "sd.h"

int sd_opt_u64(const char *s, uint64_t max, int suffix, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || *s < '0' || *s > '9')
        return SD_EINVAL;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno)
        return SD_EINVAL;
    if (suffix && *end) {
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        default: return SD_EINVAL;
        }
        end++;
    }
    if (*end || v > (max >> shift))
        return SD_EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int sd_opt_seconds(const char *s, uint64_t *ns)
{
    char *end;
    double v;

    if (!s || ((*s < '0' || *s > '9') && *s != '.'))
        return SD_EINVAL;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < 0 || v > 1e7)
        return SD_EINVAL;
    *ns = (uint64_t)(v * 1e9);
    return 0;
}
