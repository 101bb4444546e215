/*
 * clipolicy.c - building a policy from the command line's --preset,
 * --policy, --inside and --at.
 *
 * Exit statuses follow cli.h: a value that cannot be parsed (a time, a
 * prefix) and options that exclude each other are usage errors (2), caught
 * while the options are read; a preset that does not exist, a policy file
 * that cannot be read or is invalid, a time at which no preset was in force
 * are input errors (1), found when the policy is built.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "central.h"
#include "clipolicy.h"
#include "names.h"
#include "timeline.h"

/* True when |cidrs| is a comma-separated list of valid prefixes; says which
 * one is not otherwise. */
static bool inside_valid(const char *cmd, const char *cidrs)
{
    struct sd_ipset *s = sd_ipset_new();
    bool ok = s != NULL;
    for (const char *p = cidrs; ok;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || sd_ipset_add_text(s, p, n, 0) != 0) {
            fprintf(stderr, "slowdown %s: --inside: invalid address or prefix '%.*s'\n", cmd, (int)n, p);
            ok = false;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    sd_ipset_free(s);
    return ok;
}

const char sd_clipolicy_help[] =
    "  --preset NAME      built-in policy (see 'slowdown presets')\n"
    "  --policy FILE      policy file; with --preset it adds to the preset (repeatable)\n"
    "  --inside CIDRS     subscriber side of the censor, comma-separated\n"
    "                     (default 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7)\n"
    "  --at TIME          the presets in force at TIME (UTC, e.g. 2021-03-10T09:00Z)\n";

int sd_clipolicy_opt(struct sd_clipolicy *cp, const char *cmd, int opt, const char *arg)
{
    int64_t t;
    switch (opt) {
    case 0x100:
        if (cp->at) {
            fprintf(stderr, "slowdown %s: --preset and --at exclude each other\n", cmd);
            return 2;
        }
        cp->preset = arg;
        return 0;
    case 0x101:
        if (cp->n_files == SD_CLIPOLICY_MAX_FILES) {
            fprintf(stderr, "slowdown %s: at most %d --policy files\n", cmd, SD_CLIPOLICY_MAX_FILES);
            return 2;
        }
        cp->files[cp->n_files++] = arg;
        return 0;
    case 0x102:
        if (!inside_valid(cmd, arg))
            return 2;
        cp->inside = arg;
        return 0;
    case 0x103:
        if (cp->preset) {
            fprintf(stderr, "slowdown %s: --preset and --at exclude each other\n", cmd);
            return 2;
        }
        if (!sd_central_is_url(arg) && sd_time_parse(arg, &t)) {
            fprintf(stderr, "slowdown %s: --at: invalid time '%s' (use e.g. 2021-03-10T09:00Z)\n", cmd, arg);
            return 2;
        }
        cp->at = arg;
        return 0;
    }
    return 2;
}

/* The fetched text of URL |url| into |p|, |n|; false with the error printed. */
static bool url_text(const struct sd_clipolicy *cp, const char *cmd, const char *url, const char **p, size_t *n)
{
    if (!cp->url_text) {
        fprintf(stderr, "slowdown %s: %s: policy URLs are for slowdown run (fetch it, then give the file)\n", cmd,
                url);
        return false;
    }
    if (cp->url_text(cp->url_arg, url, p, n) != 0) {
        fprintf(stderr, "slowdown %s: %s: no text fetched\n", cmd, url);
        return false;
    }
    return true;
}

/* The value of --preset or --at: itself, or the first word of its URL's text (into |buf|). NULL on error. */
static const char *word_of(const struct sd_clipolicy *cp, const char *cmd, const char *v, char *buf, size_t cap)
{
    const char *p;
    size_t n;
    if (!sd_central_is_url(v))
        return v;
    if (!url_text(cp, cmd, v, &p, &n))
        return NULL;
    if (sd_central_first_word(p, n, buf, cap) != 0) {
        fprintf(stderr, "slowdown %s: %s: expected one word (a preset name or a time), found none\n", cmd, v);
        return NULL;
    }
    return buf;
}

static struct sd_policy *report(struct sd_policy_builder *b, const char *cmd, const struct sd_policy_error *err)
{
    char msg[1024];
    sd_policy_error_format(err, msg, sizeof(msg));
    fprintf(stderr, "slowdown %s: %s\n", cmd, msg);
    sd_policy_builder_free(b);
    return NULL;
}

struct sd_policy *sd_clipolicy_build(const struct sd_clipolicy *cp, const char *cmd, const char *default_preset)
{
    struct sd_policy_error err;
    if (cp->preset && cp->at) {
        fprintf(stderr, "slowdown %s: --preset and --at exclude each other\n", cmd);
        return NULL;
    }
    struct sd_policy_builder *b = sd_policy_builder_new();
    if (!b) {
        fprintf(stderr, "slowdown %s: out of memory\n", cmd);
        return NULL;
    }
    char word[128];
    if (cp->at) {
        int64_t t;
        const char *at = word_of(cp, cmd, cp->at, word, sizeof(word));
        if (!at || sd_time_parse(at, &t)) {
            if (at)
                fprintf(stderr, "slowdown %s: --at: invalid time '%s'%s%s (use e.g. 2021-03-10T09:00Z)\n", cmd, at,
                        at == cp->at ? "" : " from ", at == cp->at ? "" : cp->at);
            sd_policy_builder_free(b);
            return NULL;
        }
        const char *names[32];
        size_t n = sd_timeline_at(t, names, SD_COUNTOF(names));
        if (n == 0) {
            fprintf(stderr, "slowdown %s: --at %s: no preset of the timeline was in force then (it starts "
                            "2021-03-10T07:00Z)\n", cmd, at);
            sd_policy_builder_free(b);
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (sd_policy_builder_preset(b, names[i], &err))
                return report(b, cmd, &err);
    } else if (cp->preset || (!cp->n_files && default_preset)) {
        const char *preset = cp->preset ? word_of(cp, cmd, cp->preset, word, sizeof(word)) : default_preset;
        if (!preset) {
            sd_policy_builder_free(b);
            return NULL;
        }
        if (sd_policy_builder_preset(b, preset, &err))
            return report(b, cmd, &err);
    }
    for (int i = 0; i < cp->n_files; i++) {
        const char *f = cp->files[i], *p;
        size_t n;
        if (sd_central_is_url(f)) {
            if (!url_text(cp, cmd, f, &p, &n)) {
                sd_policy_builder_free(b);
                return NULL;
            }
            if (sd_policy_builder_parse(b, f, p, n, &err))
                return report(b, cmd, &err);
        } else if (sd_policy_builder_file(b, f, &err)) {
            return report(b, cmd, &err);
        }
    }
    if (cp->inside && sd_policy_builder_inside(b, cp->inside, &err))
        return report(b, cmd, &err);
    struct sd_policy *p = sd_policy_builder_finish(b, &err);
    if (!p)
        return report(b, cmd, &err);
    if (!p->name[0] && cp->n_files) {
        /* No `preset` line: name it after its (last) file or URL. */
        const char *f = cp->files[cp->n_files - 1], *slash = strrchr(f, '/');
        snprintf(p->name, sizeof(p->name), "%s", slash && slash[1] ? slash + 1 : f);
    }
    sd_policy_builder_free(b);
    return p;
}
