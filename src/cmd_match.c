/*
 * cmd_match.c - 'slowdown match [OPTIONS] [FILE...]': which names of a list
 * the policy's name sets hold, and which rules would act on a flow carrying
 * them. The question of 10 March 2021, when "*t.co*" throttled reddit.com
 * and microsoft.com: run a site list through a preset and see its
 * collateral.
 *
 * Names are read a line each (a CSV line "rank,name", as the Tranco list
 * has, gives the field after its last comma), in batches of BATCH for
 * sd_names_lookup_batch(). A rule is listed when its name conditions hold
 * for the name as the chosen field (--as: TLS or QUIC SNI, HTTP Host, DNS
 * query) and at least one of them names a set; its other conditions
 * (ports, addresses, protocol) are counted, not evaluated: a name alone
 * cannot tell them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clipolicy.h"
#include "json.h"
#include "names.h"
#include "policy.h"

enum { BATCH = 256 };

enum as { AS_SNI, AS_HOST, AS_DNS };

struct args {
    struct sd_clipolicy cp;
    enum as as;
    bool json, all;
};

/* A batch of names: their bytes in one buffer. */
struct batch {
    char *buf;
    size_t len, cap;
    size_t off[BATCH], n[BATCH];
    size_t count;
    const uint8_t *p[BATCH];
    uint64_t m[BATCH];
};

struct totals {
    unsigned long long names, matched, by_set[SD_POLICY_MAX_SETS];
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown match [OPTIONS] [FILE...]\n\n"
            "Reads server names, one a line, from each FILE ('-' or none: standard input) and prints\n"
            "those the policy's name sets match: the sets, and the rules that would act on a flow\n"
            "carrying the name. Empty lines and lines starting with '#' are skipped; a line with commas\n"
            "(Tranco's \"rank,name\") gives the field after the last one.\n\n"
            "Options:\n%s"
            "  --as FIELD         the name as sni (TLS or QUIC ClientHello, default), host (HTTP) or dns\n"
            "  --all              print the names that match nothing too\n"
            "  --json             one JSON line per name, then a summary line\n"
            "  -h, --help         this help\n\n"
            "Text output: NAME SETS RULES, tab-separated ('-' for none); a rule is written\n"
            "NAME:ACTION, with '+N' when it has N more conditions than the name (ports, addresses,\n"
            "protocol) that a flow must also meet. Without --preset or --policy: tw21-initial.\n"
            "A summary goes to standard error.\n",
            sd_clipolicy_help);
}

static int parse_args(struct args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        SD_CLIPOLICY_OPTIONS,
        {"as", required_argument, NULL, 'a'},
        {"all", no_argument, NULL, 'A'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            if (!strcmp(optarg, "sni"))
                a->as = AS_SNI;
            else if (!strcmp(optarg, "host"))
                a->as = AS_HOST;
            else if (!strcmp(optarg, "dns"))
                a->as = AS_DNS;
            else {
                fprintf(stderr, "slowdown match: --as: expected sni, host or dns, got '%s'\n", optarg);
                return SD_EXIT_USAGE;
            }
            break;
        case 'A':
            a->all = true;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            usage(stdout);
            return SD_EXIT_OK;
        case ':':
            fprintf(stderr, "slowdown match: option '%s' needs a value (try 'slowdown match --help')\n",
                    argv[optind - 1]);
            return SD_EXIT_USAGE;
        case '?':
            fprintf(stderr, "slowdown match: unknown option '%s' (try 'slowdown match --help')\n", argv[optind - 1]);
            return SD_EXIT_USAGE;
        default:
            if (sd_clipolicy_opt(&a->cp, "match", c, optarg))
                return SD_EXIT_USAGE;
            break;
        }
    }
    return -1;
}

/* Whether name condition |c| holds for a name with set mask |m| read as |as|;
 * -1 when |c| is not a name condition. */
static int name_cond(const struct sd_cond *c, uint64_t m, enum as as)
{
    bool in = m >> c->set & 1, r;
    switch (c->kind) {
    case SD_C_SNI:
        r = as == AS_SNI && in;
        break;
    case SD_C_HOST:
        r = as == AS_HOST && in;
        break;
    case SD_C_DNS:
        r = as == AS_DNS && in;
        break;
    case SD_C_NAME:
        r = in;
        break;
    default:
        return -1;
    }
    return r != c->negate;
}

/* Whether rule |r| acts on the name: its name conditions all hold, and one
 * that is not negated does. |*others| counts its other conditions. */
static bool rule_holds(const struct sd_rule *r, uint64_t m, enum as as, unsigned *others)
{
    bool named = false;
    *others = 0;
    for (unsigned i = 0; i < r->n_conds; i++) {
        int h = name_cond(&r->conds[i], m, as);
        if (h < 0)
            (*others)++;
        else if (!h)
            return false;
        else if (!r->conds[i].negate)
            named = true;
    }
    return named;
}

static void print_name(const struct sd_policy *p, const struct args *a, const uint8_t *name, size_t n, uint64_t m)
{
    FILE *o = stdout;
    unsigned printed = 0, others;
    if (a->json) {
        fputs("{\"type\":\"name\",\"name\":", o);
        sd_json_bytes(o, name, n);
        fputs(",\"sets\":[", o);
        for (unsigned s = 0; s < p->n_name_sets; s++)
            if (m >> s & 1) {
                fputs(printed++ ? "," : "", o);
                sd_json_str(o, p->name_sets[s]);
            }
        fputs("],\"rules\":[", o);
        printed = 0;
        for (unsigned i = 0; i < p->n_rules; i++)
            if (rule_holds(&p->rules[i], m, a->as, &others)) {
                fputs(printed++ ? ",{\"rule\":" : "{\"rule\":", o);
                sd_json_str(o, p->rules[i].name);
                fputs(",\"action\":", o);
                sd_json_str(o, sd_action_name(&p->rules[i].action));
                fprintf(o, ",\"other_conditions\":%u}", others);
            }
        fputs("]}\n", o);
        return;
    }
    fwrite(name, 1, n, o);
    fputc('\t', o);
    for (unsigned s = 0; s < p->n_name_sets; s++)
        if (m >> s & 1)
            fprintf(o, "%s%s", printed++ ? "," : "", p->name_sets[s]);
    fputs(printed ? "\t" : "-\t", o);
    printed = 0;
    for (unsigned i = 0; i < p->n_rules; i++)
        if (rule_holds(&p->rules[i], m, a->as, &others)) {
            fprintf(o, "%s%s:%s", printed++ ? "," : "", p->rules[i].name, sd_action_name(&p->rules[i].action));
            if (others)
                fprintf(o, "+%u", others);
        }
    fputs(printed ? "\n" : "-\n", o);
}

static void flush_batch(const struct sd_policy *p, const struct args *a, struct batch *b, struct totals *t)
{
    for (size_t i = 0; i < b->count; i++)
        b->p[i] = (const uint8_t *)b->buf + b->off[i];
    sd_names_lookup_batch(p->names, b->p, b->n, b->count, b->m);
    for (size_t i = 0; i < b->count; i++) {
        uint64_t m = b->m[i];
        t->names++;
        if (m) {
            t->matched++;
            for (unsigned s = 0; s < p->n_name_sets; s++)
                t->by_set[s] += m >> s & 1;
        }
        if (m || a->all)
            print_name(p, a, b->p[i], b->n[i], m);
    }
    b->count = 0;
    b->len = 0;
}

/* The name on a line: trimmed, after the last comma; NULL for a line to skip. */
static const char *line_name(char *line, size_t len, size_t *n)
{
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return NULL;
    for (size_t j = len; j > i; j--)
        if (line[j - 1] == ',') {
            i = j;
            break;
        }
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    *n = len - i;
    return *n ? line + i : NULL;
}

static int read_names(FILE *in, const char *path, const struct sd_policy *p, const struct args *a, struct batch *b,
                      struct totals *t)
{
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int rc = 0;
    errno = 0;
    while ((got = getline(&line, &lcap, in)) >= 0) {
        size_t n;
        const char *name = line_name(line, (size_t)got, &n);
        if (!name)
            continue;
        if (b->len + n > b->cap) {
            size_t cap = b->cap;
            while (cap < b->len + n)
                cap *= 2;
            char *nb = realloc(b->buf, cap);
            if (!nb) {
                fprintf(stderr, "slowdown match: out of memory\n");
                rc = SD_EXIT_ERR;
                break;
            }
            b->buf = nb;
            b->cap = cap;
        }
        memcpy(b->buf + b->len, name, n);
        b->off[b->count] = b->len;
        b->n[b->count++] = n;
        b->len += n;
        if (b->count == BATCH)
            flush_batch(p, a, b, t);
    }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "slowdown match: %s: %s\n", path, strerror(errno ? errno : EIO));
        rc = SD_EXIT_ERR;
    }
    free(line);
    if (rc == 0)
        flush_batch(p, a, b, t);
    return rc;
}

int sd_match_main(int argc, char **argv)
{
    struct args a = {.as = AS_SNI};
    int st = parse_args(&a, argc, argv);
    if (st >= 0)
        return st;
    struct sd_policy *pol = sd_clipolicy_build(&a.cp, "match", "tw21-initial");
    if (!pol)
        return SD_EXIT_ERR;
    struct batch *b = calloc(1, sizeof(*b));
    struct totals t = {0};
    if (b) {
        b->cap = 16384;
        b->buf = malloc(b->cap);
    }
    int rc = b && b->buf ? SD_EXIT_OK : SD_EXIT_ERR;
    if (rc != SD_EXIT_OK)
        fprintf(stderr, "slowdown match: out of memory\n");
    int nfiles = argc - optind;
    for (int i = 0; rc == SD_EXIT_OK && i < (nfiles ? nfiles : 1); i++) {
        const char *path = nfiles ? argv[optind + i] : "-";
        FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
        if (!in) {
            fprintf(stderr, "slowdown match: %s: %s\n", path, strerror(errno));
            rc = SD_EXIT_ERR;
            break;
        }
        rc = read_names(in, path, pol, &a, b, &t);
        if (in != stdin)
            fclose(in);
    }
    if (rc == SD_EXIT_OK) {
        if (a.json) {
            printf("{\"type\":\"summary\",\"names\":%llu,\"matched\":%llu,\"sets\":{", t.names, t.matched);
            for (unsigned s = 0; s < pol->n_name_sets; s++) {
                fputs(s ? "," : "", stdout);
                sd_json_str(stdout, pol->name_sets[s]);
                printf(":%llu", t.by_set[s]);
            }
            printf("}}\n");
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "slowdown match: cannot write the output\n");
            rc = SD_EXIT_ERR;
        } else {
            fprintf(stderr, "slowdown match: %llu names, %llu matched (%s%s)", t.names, t.matched,
                    a.cp.at ? "the presets in force at " : "", a.cp.at ? a.cp.at : pol->name);
            for (unsigned s = 0; s < pol->n_name_sets; s++)
                fprintf(stderr, "%s%s %llu", s ? ", " : "; by set: ", pol->name_sets[s], t.by_set[s]);
            fputc('\n', stderr);
        }
    }
    if (b)
        free(b->buf);
    free(b);
    sd_policy_free(pol);
    return rc;
}
