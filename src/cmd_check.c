/*
 * cmd_check.c - 'slowdown check FILE...': validates policy files.
 * Exit 0 when all are valid; 1 with FILE:LINE:COL: message otherwise.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "policy.h"

int sd_check_main(int argc, char **argv)
{
    const char *preset = NULL;
    int first = 1;
    for (; first < argc && argv[first][0] == '-' && argv[first][1]; first++) {
        if (!strcmp(argv[first], "-h") || !strcmp(argv[first], "--help")) {
            printf("Usage: slowdown check [--preset NAME] FILE...\n\n"
                   "Validates policy files. With --preset, each file is checked as an addition to that preset\n"
                   "(as 'slowdown pcap --preset NAME --policy FILE' would load it).\n"
                   "Exit status 0 when every file is valid; 1 with 'FILE:LINE:COL: message' otherwise.\n");
            return SD_EXIT_OK;
        }
        if (!strcmp(argv[first], "--preset")) {
            if (first + 1 >= argc) {
                fprintf(stderr, "slowdown check: option '--preset' needs a value (try --help)\n");
                return SD_EXIT_USAGE;
            }
            preset = argv[++first];
            continue;
        }
        fprintf(stderr, "slowdown check: unknown option '%s' (try --help)\n", argv[first]);
        return SD_EXIT_USAGE;
    }
    if (first >= argc) {
        fprintf(stderr, "slowdown check: no policy file given (usage: slowdown check [--preset NAME] FILE...)\n");
        return SD_EXIT_USAGE;
    }
    int rc = SD_EXIT_OK;
    for (int i = first; i < argc; i++) {
        struct sd_policy_error err;
        struct sd_policy_builder *b = sd_policy_builder_new();
        struct sd_policy *p = NULL;
        if (!b) {
            fprintf(stderr, "slowdown check: out of memory\n");
            return SD_EXIT_ERR;
        }
        if ((!preset || sd_policy_builder_preset(b, preset, &err) == 0) &&
            sd_policy_builder_file(b, argv[i], &err) == 0)
            p = sd_policy_builder_finish(b, &err);
        if (!p) {
            char msg[1024];
            sd_policy_error_format(&err, msg, sizeof(msg));
            fprintf(stderr, "%s\n", msg);
            rc = SD_EXIT_ERR;
        } else {
            printf("%s: ok (%u rules, %zu name patterns, %zu address prefixes)\n", argv[i], p->n_rules,
                   sd_names_count(p->names), sd_ipset_count(p->ips));
        }
        sd_policy_free(p);
        sd_policy_builder_free(b);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "slowdown check: cannot write the output\n");
        return SD_EXIT_ERR;
    }
    return rc;
}
