/*
 * cmd_demo.c - `slowdown demo`: the whole tool in one command.
 *
 *   lab up (preset tw21-initial) -> this thread enters the client namespace
 *   -> the detector per name against the lab's `slowdown serve` (detect.c:
 *      the name's TLS download beside an innocuous name's and an inverted
 *      replay, at once) -> back to our namespace -> lab down -> table / JSON
 *
 * The verdicts are the detector's (ratio to the slower control < 0.1 and a
 * KS test, see slowdown-detect(1)). Without root there is no lab: the
 * offline demo (demo_offline.c) runs instead, on generated traffic.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "demo.h"
#include "detect.h"
#include "lab.h"
#include "mono.h"

enum { N_NAMES = 5 };

static const char *const names[N_NAMES] = {"twitter.com", "abs.twimg.com", "reddit.com", "microsoft.com",
                                           "example.org"};

struct measurement {
    bool ok;          /* the detector ran */
    uint8_t verdict, kind;
    double kbps, control_kbps, ratio, rate_kbps, duration_s;
    char end[16];
};

struct demo {
    bool json;
    const char *preset;
    uint64_t seconds_ns;
    char lab[SD_LAB_ID_MAX];
    struct measurement m[N_NAMES];
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown demo [--json] [--seconds S] [--preset NAME]\n"
            "\n"
            "Builds the network lab (root), runs the censor with preset tw21-initial between a\n"
            "client and a server, runs the detector (slowdown detect) on the downloads of\n"
            "twitter.com, abs.twimg.com, reddit.com, microsoft.com and example.org, prints\n"
            "goodput and verdicts, and removes the lab. Without root: the offline demo.\n"
            "\n"
            "  --json         one JSON line per name (type \"measurement\")\n"
            "  --seconds S    length of each download (default 6, at least 2; a quarter is warm-up)\n"
            "  --preset NAME  another censor preset\n");
}

/* Measures one name with the detector; the thread is in the client namespace. */
static void measure(struct demo *d, int i)
{
    struct sd_detect_config cfg = {
        .addr = SD_LAB_SERVER4, .tls_port = SD_LAB_TLS_PORT, .plain_port = SD_LAB_PLAIN_PORT, .name = names[i],
        .down = true, .seconds_ns = d->seconds_ns, .warmup_ns = d->seconds_ns / 4,
    };
    struct sd_detect_result res;
    struct measurement *m = &d->m[i];

    if (!d->json)
        fprintf(stderr, "measuring %s ...\n", names[i]);
    if (sd_detect_run(&cfg, &res) < 0) {
        fprintf(stderr, "slowdown demo: %s: the detector could not run\n", names[i]);
        return;
    }
    const struct sd_detect_dir *r = &res.d[SD_FETCH_DOWN];
    *m = (struct measurement){
        .ok = true, .verdict = r->verdict, .kind = r->kind, .kbps = r->kbps, .control_kbps = r->control_kbps,
        .ratio = r->ratio, .rate_kbps = r->rate_estimate_kbps, .duration_s = res.duration_s,
    };
    snprintf(m->end, sizeof(m->end), "%s", sd_fetch_end_name(r->f[SD_DETECT_A].r.end));
    sd_detect_result_free(&res);
}

static void print_results(const struct demo *d)
{
    if (!d->json) {
        printf("%-15s %16s %16s %10s  %s\n", "name", "goodput kbit/s", "control kbit/s", "ratio", "verdict");
    }
    for (int i = 0; i < N_NAMES; i++) {
        const struct measurement *m = &d->m[i];
        const char *v = m->ok ? sd_detect_verdict_name(m->verdict) : "inconclusive";
        const char *kind = m->ok ? sd_detect_kind_name(m->kind) : NULL;
        if (d->json) {
            printf("{\"type\":\"measurement\",\"mode\":\"lab\",\"preset\":\"%s\",\"name\":\"%s\",\"direction\":\"down\","
                   "\"kbps\":%.1f,\"control_kbps\":%.1f,",
                   d->preset, names[i], m->kbps, m->control_kbps);
            if (m->ratio >= 0)
                printf("\"ratio\":%.5f,", m->ratio);
            else
                printf("\"ratio\":null,");
            printf("\"verdict\":\"%s\",", v);
            if (m->verdict == SD_VERDICT_THROTTLED)
                printf("\"rate_estimate_kbps\":%.1f,", m->rate_kbps);
            else
                printf("\"rate_estimate_kbps\":null,");
            printf("\"duration_s\":%.2f,\"kind\":", m->duration_s);
            if (kind)
                printf("\"%s\"", kind);
            else
                printf("null");
            printf(",\"end\":\"%s\"}\n", m->end[0] ? m->end : "error");
        } else {
            printf("%-15s %16.1f %16.1f %10.5f  %s", names[i], m->kbps, m->control_kbps, m->ratio >= 0 ? m->ratio : 0,
                   v);
            if (m->verdict == SD_VERDICT_THROTTLED)
                printf(" (%s, ~%.0f kbit/s)", kind ? kind : "?", m->rate_kbps);
            else if (kind)
                printf(" (%s)", kind);
            printf("\n");
        }
    }
    if (!d->json)
        printf("\n(censor: preset %s in the lab; control: an innocuous name of the same length and the\n"
               " inverted replay, measured at the same time; throttled = ratio < 0.1 and KS p < 1e-4)\n",
               d->preset);
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
    d.seconds_ns = 6ull * SD_NS_PER_S;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'j') {
            d.json = true;
        } else if (c == 'p') {
            d.preset = optarg;
        } else if (c == 's') {
            if (sd_opt_seconds(optarg, &d.seconds_ns) < 0 || d.seconds_ns < 2ull * SD_NS_PER_S ||
                d.seconds_ns > 100ull * SD_NS_PER_S) {
                fprintf(stderr, "slowdown demo: bad value '%s' for --seconds (2 to 100)\n", optarg);
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
