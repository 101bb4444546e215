/*
 * cmd_matrix.c - `slowdown matrix`: options into a struct sd_matrix_config,
 * the run (matrix.c), then the table, JSON lines, SVG and HTML
 * (matrix_out.c). SIGINT/SIGTERM stop it after the runs under way; what
 * ran is still printed and the labs are taken down.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "matrix.h"
#include "mono.h"

static const char *const default_presets[] = {"tw21-initial", "tw21-tco-fixed", "tw21-exact", "tw21-mobile-only",
                                              "tw22-sni3",    "tw22-block",     "quic22-v1",  "quic22-initial"};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown matrix [OPTIONS]\n"
            "\n"
            "Runs every strategy (slowdown evade --list) against every preset in network labs,\n"
            "several at once, and scores each cell against a no-censor control of the same\n"
            "strategy: evades, throttled, blocked, broken. Needs root.\n"
            "\n"
            "Options:\n"
            "  --preset P[,P...]     presets (repeatable; default: tw21-initial, tw21-tco-fixed,\n"
            "                        tw21-exact, tw21-mobile-only, tw22-sni3, tw22-block,\n"
            "                        quic22-v1, quic22-initial); TCP strategies run against\n"
            "                        presets with TCP rules, QUIC ones against QUIC presets\n"
            "  --strategy S          one strategy, NAME or NAME:ARGS (repeatable; default: all)\n"
            "  --strategies 'S S'    several, separated by spaces\n"
            "  --external NAME=CMD   an external client as one more strategy (see slowdown evade\n"
            "                        --exec for CMD's placeholders)\n"
            "  --parallel N          labs at once (default 3)\n"
            "  --seconds S           download time per run (default 2.5)\n"
            "  --skip S              leave the first S seconds out of goodput (default 0.5)\n"
            "  --shape-kbit N        lab link rate, both ways (default 20000)\n"
            "  --sni NAME            the name under test (default twitter.com)\n"
            "  --evade-at R          goodput ratio from which a cell evades (default 0.5)\n"
            "  --idle-timeout S      the censor's timeout.action for the idle strategy (default 2)\n"
            "  --json                JSON lines instead of the table\n"
            "  --json-out FILE       also write the JSON lines to FILE\n"
            "  --svg FILE            write the matrix as SVG\n"
            "  --html FILE           write an HTML page (the SVG and the strategies)\n"
            "  --quiet               no progress lines on stderr\n"
            "  -h, --help            this help\n");
}

struct opts {
    struct sd_matrix_config cfg;
    const char *svg, *html, *json_out;
    bool json, quiet;
    char presets[512];
    size_t presets_len;
};

static int add_strategy(struct sd_matrix_config *cfg, const char *text)
{
    char err[200];

    if (cfg->n_strategies == SD_MATRIX_MAX_STRATEGIES) {
        fprintf(stderr, "slowdown matrix: too many strategies (at most %d)\n", SD_MATRIX_MAX_STRATEGIES);
        return -1;
    }
    struct sd_matrix_strategy *s = &cfg->strategies[cfg->n_strategies];
    if (sd_evade_parse(text, &s->spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown matrix: %s\n", err);
        return -1;
    }
    memcpy(s->name, s->spec.text, sizeof(s->name)); /* same size, NUL-terminated */
    cfg->n_strategies++;
    return 0;
}

static int add_external(struct sd_matrix_config *cfg, char *arg)
{
    char *eq = strchr(arg, '=');

    if (!eq || eq == arg || !eq[1] || cfg->n_strategies == SD_MATRIX_MAX_STRATEGIES) {
        fprintf(stderr, "slowdown matrix: bad --external '%s' (NAME=COMMAND)\n", arg);
        return -1;
    }
    struct sd_matrix_strategy *s = &cfg->strategies[cfg->n_strategies++];
    snprintf(s->name, sizeof(s->name), "%.*s", (int)(eq - arg), arg);
    s->external = eq + 1;
    return 0;
}

static int add_presets(struct opts *o, const char *list)
{
    size_t n = strlen(list);

    if (o->presets_len + n + 1 > sizeof(o->presets))
        return -1;
    char *copy = o->presets + o->presets_len;
    memcpy(copy, list, n + 1);
    o->presets_len += n + 1;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->cfg.n_presets == SD_MATRIX_MAX_PRESETS)
            return -1;
        o->cfg.presets[o->cfg.n_presets++] = t;
    }
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_PRESET = 256, O_STRAT, O_STRATS, O_EXT, O_PAR, O_SECS, O_SKIP, O_SHAPE, O_SNI, O_AT, O_IDLE, O_JSON,
           O_SVG, O_HTML, O_QUIET, O_JSONOUT };
    static const struct option lo[] = {
        {"preset", 1, NULL, O_PRESET},  {"strategy", 1, NULL, O_STRAT}, {"strategies", 1, NULL, O_STRATS},
        {"external", 1, NULL, O_EXT},   {"parallel", 1, NULL, O_PAR},   {"seconds", 1, NULL, O_SECS},
        {"skip", 1, NULL, O_SKIP},      {"shape-kbit", 1, NULL, O_SHAPE}, {"sni", 1, NULL, O_SNI},
        {"evade-at", 1, NULL, O_AT},    {"idle-timeout", 1, NULL, O_IDLE}, {"json", 0, NULL, O_JSON},
        {"svg", 1, NULL, O_SVG},        {"html", 1, NULL, O_HTML},      {"quiet", 0, NULL, O_QUIET},
        {"json-out", 1, NULL, O_JSONOUT},
        {"help", 0, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_PRESET: bad = add_presets(o, optarg) < 0; break;
        case O_STRAT:
            if (add_strategy(&o->cfg, optarg) < 0)
                return 1000 + SD_EXIT_USAGE;
            break;
        case O_STRATS:
            for (char *save = NULL, *t = strtok_r(optarg, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
                if (add_strategy(&o->cfg, t) < 0)
                    return 1000 + SD_EXIT_USAGE;
            break;
        case O_EXT:
            if (add_external(&o->cfg, optarg) < 0)
                return 1000 + SD_EXIT_USAGE;
            break;
        case O_PAR: bad = sd_opt_u64(optarg, SD_MATRIX_MAX_PARALLEL, 0, &v) < 0 || !v; o->cfg.parallel = (unsigned)v; break;
        case O_SECS: bad = sd_opt_seconds(optarg, &o->cfg.duration_ns) < 0 || o->cfg.duration_ns < SD_NS_PER_S / 2 ||
                           o->cfg.duration_ns > 60ull * SD_NS_PER_S; break;
        case O_SKIP: bad = sd_opt_seconds(optarg, &o->cfg.skip_ns) < 0; o->cfg.skip_set = true; break;
        case O_SHAPE: bad = sd_opt_u64(optarg, 10000000, 0, &v) < 0 || v < 1000; o->cfg.shape_kbit = (uint32_t)v; break;
        case O_SNI: o->cfg.sni = optarg; break;
        case O_AT: {
            char *end;
            o->cfg.evade_at = strtod(optarg, &end);
            bad = *end || !(o->cfg.evade_at > 0 && o->cfg.evade_at <= 1);
            break;
        }
        case O_IDLE: bad = sd_opt_u64(optarg, 60, 0, &v) < 0 || !v; o->cfg.idle_timeout_s = (uint32_t)v; break;
        case O_JSON: o->json = true; break;
        case O_SVG: o->svg = optarg; break;
        case O_HTML: o->html = optarg; break;
        case O_JSONOUT: o->json_out = optarg; break;
        case O_QUIET: o->quiet = true; break;
        case 'h': usage(stdout); return 1000 + SD_EXIT_OK;
        default:
            fprintf(stderr, "slowdown matrix: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 1000 + SD_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "slowdown matrix: bad value '%s' for %s\n", optarg, argv[optind - 2]);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "slowdown matrix: unexpected argument '%s'\n", argv[optind]);
        return 1000 + SD_EXIT_USAGE;
    }
    if (!o->cfg.n_presets)
        for (size_t i = 0; i < SD_COUNTOF(default_presets); i++)
            o->cfg.presets[o->cfg.n_presets++] = default_presets[i];
    if (!o->cfg.n_strategies) {
        size_t n;
        const struct sd_evade_def *cat = sd_evade_catalogue(&n);
        for (size_t i = 0; i < n; i++)
            if (add_strategy(&o->cfg, cat[i].name) < 0)
                return 1000 + SD_EXIT_ERR;
    }
    return 0;
}

static int write_file(const char *path, const struct opts *o, const struct sd_matrix_result *res,
                      void (*fn)(FILE *, const struct sd_matrix_config *, const struct sd_matrix_result *))
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "slowdown matrix: cannot write %s\n", path);
        return -1;
    }
    fn(f, &o->cfg, res);
    return fclose(f) == 0 ? 0 : -1;
}

int sd_matrix_main(int argc, char **argv)
{
    struct opts *o = calloc(1, sizeof(*o));
    struct sd_matrix_result res;
    char err[300];
    sigset_t set;
    int rc;

    if (!o)
        return SD_EXIT_ERR;
    rc = parse(argc, argv, o);
    if (rc) {
        free(o);
        return rc - 1000;
    }
    /* Blocked here, before the workers start, so that they inherit it. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    o->cfg.stop_fd = signalfd(-1, &set, SFD_CLOEXEC);
    o->cfg.progress = o->quiet ? NULL : stderr;
    rc = sd_matrix_run(&o->cfg, &res, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "slowdown matrix: %s\n", err);
        if (o->cfg.stop_fd >= 0)
            close(o->cfg.stop_fd);
        free(o);
        return rc == SD_EINVAL ? SD_EXIT_USAGE : SD_EXIT_ERR;
    }
    if (o->json)
        sd_matrix_print_json(stdout, &o->cfg, &res);
    else
        sd_matrix_print_table(stdout, &o->cfg, &res);
    int out = res.stopped ? SD_EXIT_ERR : SD_EXIT_OK;
    if ((o->svg && write_file(o->svg, o, &res, sd_matrix_write_svg) < 0) ||
        (o->html && write_file(o->html, o, &res, sd_matrix_write_html) < 0) ||
        (o->json_out && write_file(o->json_out, o, &res, sd_matrix_print_json) < 0))
        out = SD_EXIT_ERR;
    sd_matrix_result_free(&res);
    if (o->cfg.stop_fd >= 0)
        close(o->cfg.stop_fd);
    free(o);
    return out;
}
