/*
 * cmd_match.c - 'slowdown match [OPTIONS] [FILE...]': which names of a list
 * the policy's name sets hold, and which rules would act on a flow carrying
 * them (match.h). The question of 10 March 2021, when "*t.co*" throttled
 * reddit.com and microsoft.com: run a site list through a preset and see its
 * collateral.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "clipolicy.h"
#include "json.h"
#include "match.h"
#include "policy.h"

struct args {
    struct sd_clipolicy cp;
    enum sd_match_as as;
    bool json, all;
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
            "Text output: NAME SETS RULES PATTERNS, tab-separated, lists comma-separated ('-' for none).\n"
            "A rule is written NAME:ACTION, with '+N' when it has N more conditions than the name\n"
            "(ports, addresses, protocol) that a flow must also meet. PATTERNS are those of the sets\n"
            "that match the name (for names up to 255 bytes). Without --preset, --policy or --at:\n"
            "tw21-initial.\n"
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
                a->as = SD_MATCH_SNI;
            else if (!strcmp(optarg, "host"))
                a->as = SD_MATCH_HOST;
            else if (!strcmp(optarg, "dns"))
                a->as = SD_MATCH_DNS;
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

/* Reads every file (none: standard input). 0 or SD_EXIT_ERR with a message. */
static int read_all(struct sd_matcher *m, int nfiles, char **files)
{
    for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
        const char *path = nfiles ? files[i] : "-";
        FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
        if (!in) {
            fprintf(stderr, "slowdown match: %s: %s\n", path, strerror(errno));
            return SD_EXIT_ERR;
        }
        int rc = sd_matcher_read(m, in);
        int err = errno;
        if (in != stdin)
            fclose(in);
        if (rc == SD_ENOMEM) {
            fprintf(stderr, "slowdown match: out of memory\n");
            return SD_EXIT_ERR;
        }
        if (rc != 0) {
            fprintf(stderr, "slowdown match: %s: %s\n", path, strerror(err));
            return SD_EXIT_ERR;
        }
    }
    return SD_EXIT_OK;
}

int sd_match_main(int argc, char **argv)
{
    struct args a = {.as = SD_MATCH_SNI};
    int st = parse_args(&a, argc, argv);
    if (st >= 0)
        return st;
    struct sd_policy *pol = sd_clipolicy_build(&a.cp, "match", "tw21-initial");
    if (!pol)
        return SD_EXIT_ERR;
    struct sd_matcher *m = sd_matcher_new(pol, a.as, a.json, a.all, stdout);
    int rc = SD_EXIT_ERR;
    if (!m)
        fprintf(stderr, "slowdown match: out of memory\n");
    else
        rc = read_all(m, argc - optind, argv + optind);
    if (rc == SD_EXIT_OK) {
        const struct sd_match_totals *t = sd_matcher_totals(m);
        if (a.json) {
            printf("{\"type\":\"summary\",\"names\":%llu,\"matched\":%llu,\"sets\":{", t->names, t->matched);
            for (unsigned s = 0; s < pol->n_name_sets; s++) {
                fputs(s ? "," : "", stdout);
                sd_json_str(stdout, pol->name_sets[s]);
                printf(":%llu", t->by_set[s]);
            }
            printf("}}\n");
        }
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "slowdown match: cannot write the output\n");
            rc = SD_EXIT_ERR;
        } else {
            fprintf(stderr, "slowdown match: %llu names, %llu matched (%s%s)", t->names, t->matched,
                    a.cp.at ? "the presets in force at " : "", a.cp.at ? a.cp.at : pol->name);
            for (unsigned s = 0; s < pol->n_name_sets; s++)
                fprintf(stderr, "%s%s %llu", s ? ", " : "; by set: ", pol->name_sets[s], t->by_set[s]);
            fputc('\n', stderr);
        }
    }
    sd_matcher_free(m);
    sd_policy_free(pol);
    return rc;
}
