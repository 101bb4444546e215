/*
 * main.c - the command table. Usage is printed from the table (WireGuard's
 * wg.c); each row's function is in cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sd.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"demo", sd_demo_main, "Run the censor in a network lab and measure a few names through it"},
    {"pcap", sd_pcap_main, "Run the censor over captured traffic (pcap/pcapng)"},
    {"run", sd_run_main, "Run the censor inline on live traffic (NFQUEUE)"},
    {"lab", sd_lab_main, "Create, use and remove a client/censor/server network lab"},
    {"serve", sd_serve_main, "Measurement server: TLS and plain TCP, sends or sinks bulk data"},
    {"detect", sd_detect_main, "Measure whether a path throttles or blocks a name"},
    {"evade", sd_evade_main, "Fetch from a slowdown serve through one circumvention strategy"},
    {"matrix", sd_matrix_main, "Run strategies x presets in the lab and print the outcome table"},
    {"presets", sd_presets_main, "List the built-in presets"},
    {"check", sd_check_main, "Validate a policy file"},
    {"match", sd_match_main, "Which names of a list a policy matches, and the rules that act on them"},
    {"explain", sd_explain_main, "Tell, for each flow of a capture, why the censor acted as it did"},
};

static void usage(FILE *f, const char *prog)
{
    fprintf(f, "Usage: %s <command> [options]\n\n", prog);
    fprintf(f, "slowdown emulates SNI-triggered throttling and blocking middleboxes (TSPU).\n\n");
    fprintf(f, "Commands:\n");
    for (size_t i = 0; i < SD_COUNTOF(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun '%s <command> --help' for the options of a command.\n", prog);
}

int main(int argc, char **argv)
{
    const char *prog = "slowdown";

    if (argc < 2) {
        usage(stderr, prog);
        return SD_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) {
        printf("slowdown %s\n", SD_VERSION);
        return SD_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout, prog);
        return SD_EXIT_OK;
    }
    for (size_t i = 0; i < SD_COUNTOF(commands); i++) {
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
    usage(stderr, prog);
    return SD_EXIT_USAGE;
}
