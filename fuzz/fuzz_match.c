/*
 * fuzz_match.c - slowdown match's reading of name lists (match.h).
 *
 * Input: byte 0 picks the policy (low 2 bits), the field (next 2 bits: sni,
 * host, dns) and JSON (bit 4); the rest is the list, as a file. Every name
 * is printed (--all), and the output must hold exactly one line per name
 * counted, whatever bytes the names carry.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "policy.h"

static const char *const policies[][2] = {
    {"tw21-initial", NULL},
    {"quic23-sni", NULL},
    {"yt24-block", "ips yt24-cache 203.0.113.0/24\n"},
    {NULL, "names k twitter.com *.twitter.com *t.co* example.net\n"
           "names a *.ads.example *ads*\n"
           "ips lab 203.0.113.0/24\n"
           "rule d when dns in k then drop\n"
           "rule h when host in k and not name in a then rst\n"
           "rule s when sni in k and port 443 then throttle rate=64kbit\n"
           "rule n when name in a then drop\n"
           "rule c when server in lab and not sni in k then freeze bytes=100\n"},
};

static const struct sd_policy *policy(unsigned i)
{
    static struct sd_policy *cache[4]; /* built once per process */
    if (cache[i])
        return cache[i];
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    if (!b || (policies[i][0] && sd_policy_builder_preset(b, policies[i][0], &err) != 0) ||
        (policies[i][1] && sd_policy_builder_parse(b, "fuzz", policies[i][1], strlen(policies[i][1]), &err) != 0) ||
        !(cache[i] = sd_policy_builder_finish(b, &err)))
        abort();
    sd_policy_builder_free(b);
    return cache[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct sd_policy *p = policy(data[0] & 3);
    enum sd_match_as as = (enum sd_match_as)((data[0] >> 2 & 3) % 3);
    FILE *in = fmemopen((void *)(data + 1), size - 1, "r");
    char *out = NULL;
    size_t outlen = 0;
    FILE *o = open_memstream(&out, &outlen);
    if (size == 1) { /* fmemopen refuses an empty buffer */
        if (o)
            fclose(o);
        free(out);
        return 0;
    }
    if (!in || !o)
        abort();
    struct sd_matcher *m = sd_matcher_new(p, as, data[0] >> 4 & 1, true, o);
    if (!m || sd_matcher_read(m, in) != 0)
        abort();
    unsigned long long names = sd_matcher_totals(m)->names;
    sd_matcher_free(m);
    fclose(in);
    fclose(o);
    unsigned long long lines = 0;
    for (size_t i = 0; i < outlen; i++)
        lines += out[i] == '\n';
    if (lines != names || (outlen && out[outlen - 1] != '\n'))
        abort();
    free(out);
    return 0;
}
