/*
 * cmd_presets.c - 'slowdown presets': the built-in presets with their period,
 * summary and sources, read from each preset file's own header lines.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "policy.h"
#include "preset.h"
#include "timeline.h"

/* The exit status once everything is printed: 1 when stdout failed. */
static int flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "slowdown presets: cannot write the output\n");
        return SD_EXIT_ERR;
    }
    return SD_EXIT_OK;
}

int sd_presets_main(int argc, char **argv)
{
    bool json = false, show = false;
    const char *which = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--show")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "slowdown presets: option '--show' needs a value (try --help)\n");
                return SD_EXIT_USAGE;
            }
            show = true;
            which = argv[++i];
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("Usage: slowdown presets [--json] [--show NAME]\n\n"
                   "Lists the built-in presets: name, period in force (UTC), summary, sources.\n"
                   "  --json       one JSON object per preset\n"
                   "  --show NAME  print the preset's policy file (its header documents the choices)\n");
            return SD_EXIT_OK;
        } else {
            fprintf(stderr, "slowdown presets: unknown option '%s' (try --help)\n", argv[i]);
            return SD_EXIT_USAGE;
        }
    }
    if (show) {
        for (const struct sd_preset_file *f = sd_preset_files; f->name; f++) {
            if (!strcmp(f->name, which)) {
                fwrite(f->text, 1, f->len, stdout);
                return flush_stdout();
            }
        }
        fprintf(stderr, "slowdown presets: %s: unknown preset (run 'slowdown presets' for the list)\n", which);
        return SD_EXIT_ERR;
    }
    if (!json)
        printf("%-17s %-37s %s\n", "preset", "period (UTC)", "summary");
    /* observe first, then the timeline's order, then anything else. */
    const struct sd_preset_file *order[64];
    size_t n = 0;
    for (size_t k = 0; k <= sd_timeline_len + 1; k++) {
        for (const struct sd_preset_file *f = sd_preset_files; f->name && n < SD_COUNTOF(order); f++) {
            bool in_tl = false;
            for (size_t j = 0; j < sd_timeline_len; j++)
                in_tl |= !strcmp(sd_timeline[j].preset, f->name);
            bool take = k == 0 ? !strcmp(f->name, "observe")
                        : k <= sd_timeline_len ? !strcmp(f->name, sd_timeline[k - 1].preset)
                                               : !in_tl && strcmp(f->name, "observe") != 0;
            if (take)
                order[n++] = f;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct sd_preset_file *f = order[i];
        struct sd_policy_builder *b = sd_policy_builder_new();
        struct sd_policy_error err;
        struct sd_policy *p = NULL;
        if (b && sd_policy_builder_preset(b, f->name, &err) == 0)
            p = sd_policy_builder_finish(b, &err);
        if (!p) {
            char msg[512];
            sd_policy_error_format(&err, msg, sizeof(msg));
            fprintf(stderr, "slowdown presets: %s\n", msg);
            sd_policy_builder_free(b);
            return SD_EXIT_ERR;
        }
        if (json)
            printf("{\"name\":\"%s\",\"period\":\"%s\",\"summary\":\"%s\",\"sources\":\"%s\"}\n", f->name, p->period,
                   p->summary, p->sources);
        else
            printf("%-17s %-37s %s\n%-17s %-37s sources: %s\n", f->name, p->period, p->summary, "", "", p->sources);
        sd_policy_free(p);
        sd_policy_builder_free(b);
    }
    return flush_stdout();
}
