/*
 * cmd_demo.c - `slowdown demo`: the whole tool in one command.
 *
 *   lab up (preset tw21-initial) -> this thread enters the client namespace
 *   -> one real TLS download per name from the lab's `slowdown serve`, the
 *      name in the SNI -> back to our namespace -> lab down -> table / JSON
 *
 * The verdict is the simple rule of the spec's 2021 data (section 3.2):
 * throttled when the goodput is below 0.15 of the example.org control and
 * below 250 kbit/s; `slowdown detect` does this with proper statistics.
 * Without root there is no lab: the offline demo (demo_offline.c) runs
 * instead, on generated traffic.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "demo.h"
#include "fetch.h"
#include "lab.h"
#include "mono.h"

enum { N_NAMES = 5, CONTROL = N_NAMES - 1, MAX_BINS = 1200 };

static const char *const names[N_NAMES] = {"twitter.com", "abs.twimg.com", "reddit.com", "microsoft.com",
                                           "example.org"};

struct measurement {
    struct sd_fetch_result r;
    double kbps;
    bool ok;          /* data flowed */
};

struct demo {
    bool json;
    const char *preset;
    uint64_t seconds_ns;
    char lab[SD_LAB_ID_MAX];
    struct measurement m[N_NAMES];
    uint64_t bins[MAX_BINS];
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown demo [--json] [--seconds S] [--preset NAME]\n"
            "\n"
            "Builds the network lab (root), runs the censor with preset tw21-initial between a\n"
            "client and a server, downloads over real TLS with the SNI of twitter.com,\n"
            "abs.twimg.com, reddit.com, microsoft.com and example.org (the control), prints\n"
            "goodput and verdicts, and removes the lab. Without root: the offline demo.\n"
            "\n"
            "  --json         one JSON line per name (type \"measurement\")\n"
            "  --seconds S    length of each download (default 5)\n"
            "  --preset NAME  another censor preset\n");
}

/* Measures one name; the thread is in the client namespace. */
static void measure(struct demo *d, int i)
{
    struct sd_fetch_opts o = {
        .addr = SD_LAB_SERVER4, .port = SD_LAB_TLS_PORT, .sni = names[i], .dir = SD_FETCH_DOWN,
        .duration_ns = d->seconds_ns, .bins = d->bins, .max_bins = MAX_BINS,
        .idle_timeout_ns = d->seconds_ns + 2ull * SD_NS_PER_S,
    };
    struct measurement *m = &d->m[i];

    if (!d->json)
        fprintf(stderr, "measuring %s ...\n", names[i]);
    if (sd_fetch_run(&o, &m->r) < 0) {
        fprintf(stderr, "slowdown demo: %s: %s\n", names[i], m->r.detail);
        return;
    }
    /* Leave out the first second: a policer's bucket lets a burst through. */
    m->kbps = sd_fetch_kbps(&m->r, d->bins, 100ull * SD_NS_PER_MS, 1ull * SD_NS_PER_S);
    m->ok = m->r.bytes > 0 && m->r.stage == SD_FETCH_TRANSFER;
}

static const char *verdict(const struct demo *d, int i, double *ratio)
{
    const struct measurement *m = &d->m[i], *c = &d->m[CONTROL];

    *ratio = c->ok && c->kbps > 0 ? m->kbps / c->kbps : 0;
    if (!c->ok)
        return "inconclusive";
    if (!m->ok)
        return "blocked";
    return *ratio < 0.15 && m->kbps < 250 ? "throttled" : "not_throttled";
}

static void print_results(const struct demo *d)
{
    if (!d->json) {
        printf("%-15s %16s %16s %10s  %s\n", "name", "goodput kbit/s", "control kbit/s", "ratio", "verdict");
    }
    for (int i = 0; i < N_NAMES; i++) {
        const struct measurement *m = &d->m[i];
        double ratio;
        const char *v = verdict(d, i, &ratio);
        if (d->json) {
            printf("{\"type\":\"measurement\",\"mode\":\"lab\",\"preset\":\"%s\",\"name\":\"%s\",\"direction\":\"down\","
                   "\"kbps\":%.1f,\"control_kbps\":%.1f,\"ratio\":%.5f,\"verdict\":\"%s\",",
                   d->preset, names[i], m->kbps, d->m[CONTROL].kbps, ratio, v);
            if (!strcmp(v, "throttled"))
                printf("\"rate_estimate_kbps\":%.1f,", m->kbps);
            else
                printf("\"rate_estimate_kbps\":null,");
            printf("\"duration_s\":%.2f,\"end\":\"%s\"}\n", (double)m->r.transfer_ns / 1e9,
                   sd_fetch_end_name(m->r.end));
        } else {
            printf("%-15s %16.1f %16.1f %10.5f  %s\n", names[i], m->kbps, d->m[CONTROL].kbps, ratio, v);
        }
    }
    if (!d->json)
        printf("\n(censor: preset %s in the lab; throttled = ratio < 0.15 and < 250 kbit/s)\n", d->preset);
}

/* Lab up, measurements, lab down. Returns an exit status. */
static int run_lab(struct demo *d)
{
    struct sd_lab_config cfg = {.preset = d->preset};
    char err[600];
    int prev = -1, rc = SD_EXIT_OK;

    if (sd_lab_up(&cfg, d->lab, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown demo: cannot build the lab: %s\n", err);
        return -1;
    }
    if (!d->json)
        fprintf(stderr, "lab %s up: client %s -> censor (%s) -> server %s\n", d->lab, SD_LAB_CLIENT4, d->preset,
                SD_LAB_SERVER4);
    if (sd_lab_enter(d->lab, SD_LAB_CLIENT, &prev) < 0) {
        fprintf(stderr, "slowdown demo: cannot enter the client namespace\n");
        rc = SD_EXIT_ERR;
    } else {
        for (int i = 0; i < N_NAMES; i++)
            measure(d, i);
        if (sd_lab_leave(prev) < 0) {
            fprintf(stderr, "slowdown demo: cannot leave the client namespace\n");
            rc = SD_EXIT_ERR;
        }
    }
    if (sd_lab_down(d->lab, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown demo: removing lab %s: %s\n", d->lab, err);
        rc = SD_EXIT_ERR;
    }
    if (rc == SD_EXIT_OK)
        print_results(d);
    return rc;
}

int sd_demo_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", 0, NULL, 'j'}, {"seconds", 1, NULL, 's'}, {"preset", 1, NULL, 'p'}, {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct demo d;
    int c;

    memset(&d, 0, sizeof(d));
    d.preset = "tw21-initial";
    d.seconds_ns = 5ull * SD_NS_PER_S;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'j') {
            d.json = true;
        } else if (c == 'p') {
            d.preset = optarg;
        } else if (c == 's') {
            if (sd_opt_seconds(optarg, &d.seconds_ns) < 0 || d.seconds_ns < SD_NS_PER_S / 2 ||
                d.seconds_ns > 100ull * SD_NS_PER_S) {
                fprintf(stderr, "slowdown demo: bad value '%s' for --seconds (0.5 to 100)\n", optarg);
                return SD_EXIT_USAGE;
            }
        } else if (c == 'h') {
            usage(stdout);
            return SD_EXIT_OK;
        } else {
            fprintf(stderr, "slowdown demo: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return SD_EXIT_USAGE;
        }
    }
    if (geteuid() != 0) {
        fprintf(stderr, "slowdown demo: not root, so no network lab; running the offline demo on generated "
                        "traffic instead\n");
        return sd_demo_offline(argc, argv); /* demo_offline.c */
    }
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2) */
    /* Ctrl-C waits until the lab is down (at most one download), then ends us. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, &old);
    int rc = run_lab(&d);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        fprintf(stderr, "slowdown demo: running the offline demo instead\n");
        return sd_demo_offline(argc, argv);
    }
    return rc;
}
