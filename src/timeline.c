/*
 * timeline.c - the shipped timeline of presets (spec section 2) and the
 * lookup behind --at. The periods repeat what each preset file states in its
 * `period` line; tests check that the two agree.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "sd.h"
#include "timeline.h"

const struct sd_timeline_entry sd_timeline[] = {
    {"tw21-initial", "2021-03-10T07:00Z", "2021-03-11T08:00Z"},
    {"tw21-tco-fixed", "2021-03-11T08:00Z", "2021-04-02T00:00Z"},
    {"tw21-exact", "2021-04-02T00:00Z", "2021-05-17T13:40Z"},
    {"tw21-mobile-only", "2021-05-17T13:40Z", "2022-02-26T00:00Z"},
    {"tw22-sni3", "2022-02-26T00:00Z", "2022-03-04T08:00Z"},
    {"tw22-block", "2022-03-04T08:00Z", NULL},
    {"quic22-v1", "2022-03-04T00:00Z", "2022-07-01T00:00Z"},
    {"quic22-initial", "2022-07-01T00:00Z", "2023-07-01T00:00Z"},
    {"quic23-sni", "2023-07-01T00:00Z", NULL},
    {"yt24-loss", "2024-07-12T06:00Z", "2024-07-31T21:00Z"},
    {"yt24-policer", "2024-07-31T21:00Z", "2024-09-30T00:00Z"},
    {"yt24-block", "2024-08-08T00:00Z", NULL},
    {"ech24", "2024-11-05T00:00Z", NULL},
    {"host25-udp", "2025-05-28T00:00Z", NULL},
    {"cdn25-16k", "2025-06-09T00:00Z", NULL},
};
const size_t sd_timeline_len = SD_COUNTOF(sd_timeline);

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    /* Howard Hinnant's algorithm: days since 1970-01-01 of a Gregorian date. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return SD_EINVAL;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int sd_time_parse(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' || digits(&s, 2, &d))
        return SD_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return SD_EINVAL;
    int64_t off = 0;
    if (*s == 'T' || *s == ' ') {
        s++;
        if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
            return SD_EINVAL;
        if (*s == ':') {
            s++;
            if (digits(&s, 2, &se))
                return SD_EINVAL;
        }
        if (h > 23 || mi > 59 || se > 60)
            return SD_EINVAL;
        if (*s == 'Z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, oh, om;
            if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om))
                return SD_EINVAL;
            off = sign * (oh * 3600 + om * 60);
        } else if (!strcmp(s, " MSK")) {
            s += 4;
            off = 3 * 3600;
        } else {
            return SD_EINVAL; /* a time needs a zone: Z, +HH:MM or MSK */
        }
    }
    if (*s)
        return SD_EINVAL;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    return 0;
}

size_t sd_timeline_at(int64_t t, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < sd_timeline_len && n < cap; i++) {
        int64_t s, e = INT64_MAX;
        if (sd_time_parse(sd_timeline[i].start, &s))
            continue;
        if (sd_timeline[i].end && sd_time_parse(sd_timeline[i].end, &e))
            continue;
        if (t >= s && t < e)
            out[n++] = sd_timeline[i].preset;
    }
    return n;
}
