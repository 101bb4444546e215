/*
 * cmd_evade.c - `slowdown evade`: one fetch from a slowdown serve through
 * one circumvention strategy (evade.h), or through an external client
 * command; `--list` prints the catalogue; `--proxy-server` runs the test
 * proxy of the proxy strategies.
 *
 * With --lab ID the fetch runs in the lab's client namespace against its
 * server, and a proxy strategy gets a proxy in the lab's server namespace
 * for the duration of the run; without it, the caller is where it runs
 * (e.g. `slowdown lab exec ID client -- slowdown evade ...`).
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
#include "evade.h"
#include "evade_proxy.h"
#include "json.h"
#include "lab.h"
#include "mono.h"

enum { PROXY_PORT = 8080, MAX_BINS = 6000 };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown evade --strategy NAME[:ARGS] [OPTIONS]\n"
            "       slowdown evade --exec 'COMMAND' [OPTIONS]\n"
            "       slowdown evade --list\n"
            "       slowdown evade --proxy-server [ADDR:]PORT\n"
            "\n"
            "Fetches from a slowdown serve through one circumvention strategy (a TLS\n"
            "handshake with the name under test, then a download) and prints the goodput\n"
            "and how it ended. Forging strategies need root (a client-side NFQUEUE).\n"
            "\n"
            "Options:\n"
            "  --strategy S        NAME or NAME:ARGS (see --list)\n"
            "  --exec CMD          run CMD (sh -c) as the client instead; it must write the body\n"
            "                      to stdout. Placeholders: {addr} {port} {sni} {seconds}\n"
            "                      {bytes} {url} {resolve}\n"
            "  --lab ID            run in lab ID's client namespace against its server\n"
            "  --addr ADDR         server address (default %s)\n"
            "  --port N            server TLS port (default 443)\n"
            "  --sni NAME          the name under test (default twitter.com)\n"
            "  --fake-sni NAME     name of fake hellos (default www.example.com)\n"
            "  --proxy ADDR:PORT   proxy of the proxy strategies (with --lab: one is started\n"
            "                      on the lab's server, port %d)\n"
            "  --seconds S         download time (default 3)\n"
            "  --bytes N           download N bytes instead (k/m/g suffix)\n"
            "  --skip S            leave the first S seconds out of kbps (default 0.5)\n"
            "  --queue N           client NFQUEUE number for forging (default 3000 + port %% 4096)\n"
            "  --json              one JSON line\n"
            "  -h, --help          this help\n",
            SD_LAB_SERVER4, PROXY_PORT);
}

static void list(void)
{
    size_t n;
    const struct sd_evade_def *c = sd_evade_catalogue(&n);

    for (size_t i = 0; i < n; i++) {
        printf("%s%s%s%s%s%s\n", c[i].name, c[i].args[0] ? ":" : "", c[i].args,
               c[i].needs & SD_EVADE_NEED_FORGE   ? "   [root: forged packets]"
               : c[i].needs & SD_EVADE_NEED_PROXY ? "   [needs a proxy]"
                                                  : "",
               c[i].needs & SD_EVADE_NEED_UDP ? "   [QUIC: UDP responder]" : "",
               c[i].needs & SD_EVADE_NEED_ROOT ? " [root: raw socket]" : "");
        if (c[i].syntax[0])
            printf("    arguments: %s\n", c[i].syntax);
        /* wrap the paragraph at ~76 columns */
        const char *w = c[i].wire;
        while (*w) {
            size_t take = strlen(w);
            if (take > 74) {
                take = 74;
                while (take > 0 && w[take] != ' ')
                    take--;
                if (take == 0)
                    take = 74;
            }
            printf("    %.*s\n", (int)take, w);
            w += take;
            while (*w == ' ')
                w++;
        }
    }
}

static int proxy_server(const char *arg)
{
    char addr[64] = "0.0.0.0", err[200];
    const char *colon = strrchr(arg, ':');
    uint64_t port;
    sigset_t set;

    if (colon) {
        snprintf(addr, sizeof(addr), "%.*s", (int)(colon - arg), arg);
        arg = colon + 1;
    }
    if (sd_opt_u64(arg, 65535, 0, &port) < 0 || !port) {
        fprintf(stderr, "slowdown evade: bad --proxy-server port '%s'\n", arg);
        return SD_EXIT_USAGE;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    struct sd_proxy *px = sd_proxy_open(addr, (uint16_t)port, err, sizeof(err));
    if (!px || sfd < 0) {
        fprintf(stderr, "slowdown evade: %s\n", px ? "signalfd failed" : err);
        sd_proxy_free(px);
        return SD_EXIT_ERR;
    }
    fprintf(stderr, "slowdown evade: proxy (HTTP CONNECT, SOCKS5) on %s port %u, to this host only\n", addr,
            (unsigned)port);
    int rc = sd_proxy_run(px, sfd);
    sd_proxy_free(px);
    close(sfd);
    return rc < 0 ? SD_EXIT_ERR : SD_EXIT_OK;
}

struct opts {
    struct sd_evade_spec spec;
    struct sd_evade_target t;
    const char *strategy, *exec, *lab, *proxy;
    char proxy_addr[64];
    bool json;
};

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_STRAT = 256, O_EXEC, O_LAB, O_ADDR, O_PORT, O_SNI, O_FAKE, O_PROXY, O_SECS, O_BYTES, O_SKIP, O_QUEUE,
           O_JSON, O_LIST, O_PSERVER };
    static const struct option lo[] = {
        {"strategy", 1, NULL, O_STRAT}, {"exec", 1, NULL, O_EXEC},     {"lab", 1, NULL, O_LAB},
        {"addr", 1, NULL, O_ADDR},      {"port", 1, NULL, O_PORT},     {"sni", 1, NULL, O_SNI},
        {"fake-sni", 1, NULL, O_FAKE},  {"proxy", 1, NULL, O_PROXY},   {"seconds", 1, NULL, O_SECS},
        {"bytes", 1, NULL, O_BYTES},    {"skip", 1, NULL, O_SKIP},     {"queue", 1, NULL, O_QUEUE},
        {"json", 0, NULL, O_JSON},      {"list", 0, NULL, O_LIST},     {"proxy-server", 1, NULL, O_PSERVER},
        {"help", 0, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    uint64_t v = 0;
    int c;

    o->t.addr = SD_LAB_SERVER4;
    o->t.sni = "twitter.com";
    o->t.duration_ns = 3ull * SD_NS_PER_S;
    o->t.skip_ns = SD_NS_PER_S / 2;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_STRAT: o->strategy = optarg; break;
        case O_EXEC: o->exec = optarg; break;
        case O_LAB: o->lab = optarg; break;
        case O_ADDR: o->t.addr = optarg; break;
        case O_PORT: bad = sd_opt_u64(optarg, 65535, 0, &v) < 0 || !v; o->t.port = (uint16_t)v; break;
        case O_SNI: o->t.sni = optarg; break;
        case O_FAKE: o->t.fake_sni = optarg; break;
        case O_PROXY: o->proxy = optarg; break;
        case O_SECS: bad = sd_opt_seconds(optarg, &o->t.duration_ns) < 0 || !o->t.duration_ns; break;
        case O_BYTES: bad = sd_opt_u64(optarg, UINT64_MAX >> 2, 1, &o->t.bytes) < 0 || !o->t.bytes; break;
        case O_SKIP: bad = sd_opt_seconds(optarg, &o->t.skip_ns) < 0; break;
        case O_QUEUE: bad = sd_opt_u64(optarg, 65535, 0, &v) < 0; o->t.queue = (uint16_t)v; break;
        case O_JSON: o->json = true; break;
        case O_LIST: list(); return 1000 + SD_EXIT_OK;
        case O_PSERVER: return 1000 + proxy_server(optarg);
        case 'h': usage(stdout); return 1000 + SD_EXIT_OK;
        default:
            fprintf(stderr, "slowdown evade: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return 1000 + SD_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "slowdown evade: bad value '%s' for %s\n", optarg, argv[optind - 2]);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    if (o->t.bytes && o->t.duration_ns == 3ull * SD_NS_PER_S)
        o->t.duration_ns = 0;
    if (optind < argc || !!o->strategy == !!o->exec) {
        fprintf(stderr, "slowdown evade: give --strategy or --exec (one of them)\n");
        return 1000 + SD_EXIT_USAGE;
    }
    return 0;
}

static void report(const struct opts *o, const struct sd_evade_result *r)
{
    static const char *const stages[] = {"connect", "handshake", "transfer"};
    const char *name = o->exec ? "external" : o->spec.text;

    if (o->json) {
        printf("{\"type\":\"evade\",\"strategy\":");
        sd_json_str(stdout, name);
        printf(",\"sni\":");
        sd_json_str(stdout, o->t.sni);
        printf(",\"applied\":%s,\"end\":\"%s\",\"stage\":\"%s\",\"kbps\":%.1f,\"bytes\":%llu,\"forged\":%u,"
               "\"handshake_ms\":%.3f,\"duration_s\":%.3f,\"note\":",
               r->applied ? "true" : "false", sd_fetch_end_name(r->f.end), stages[r->f.stage % 3], r->kbps,
               (unsigned long long)r->f.bytes, r->forged, (double)r->f.handshake_ns / 1e6,
               (double)r->f.transfer_ns / 1e9);
        sd_json_str(stdout, r->note);
        printf(",\"detail\":");
        sd_json_str(stdout, r->f.detail);
        printf("}\n");
        return;
    }
    printf("%s: %s at %s, %.1f kbit/s, %llu bytes in %.2f s%s\n", name, sd_fetch_end_name(r->f.end),
           stages[r->f.stage % 3], r->kbps, (unsigned long long)r->f.bytes, (double)r->f.transfer_ns / 1e9,
           r->applied ? "" : " (the strategy did not apply)");
    if (r->note[0])
        printf("  %s\n", r->note);
    if (r->f.detail[0] && r->f.end != SD_FETCH_DONE)
        printf("  %s\n", r->f.detail);
}

int sd_evade_main(int argc, char **argv)
{
    struct opts o;
    struct sd_evade_result r;
    struct sd_proxy_thread pt = {0}, ut = {0};
    char err[200];
    uint64_t *bins = calloc(MAX_BINS, sizeof(*bins));
    int rc;

    memset(&o, 0, sizeof(o));
    rc = parse(argc, argv, &o);
    if (rc || !bins) {
        free(bins);
        return rc ? rc - 1000 : SD_EXIT_ERR;
    }
    o.t.bins = bins;
    o.t.max_bins = MAX_BINS;
    signal(SIGPIPE, SIG_IGN);
    if (o.strategy && sd_evade_parse(o.strategy, &o.spec, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown evade: %s\n", err);
        free(bins);
        return SD_EXIT_USAGE;
    }
    if (o.proxy) {
        const char *colon = strrchr(o.proxy, ':');
        uint64_t v;
        if (!colon || sd_opt_u64(colon + 1, 65535, 0, &v) < 0 || !v) {
            fprintf(stderr, "slowdown evade: bad --proxy '%s' (ADDR:PORT)\n", o.proxy);
            free(bins);
            return SD_EXIT_USAGE;
        }
        snprintf(o.proxy_addr, sizeof(o.proxy_addr), "%.*s", (int)(colon - o.proxy), o.proxy);
        o.t.proxy_addr = o.proxy_addr;
        o.t.proxy_port = (uint16_t)v;
    }
    if (o.lab && !o.proxy && o.strategy && o.spec.def->op == SD_EVADE_PROXY) {
        if (sd_proxy_thread_start(&pt, o.lab, SD_LAB_SERVER4, PROXY_PORT) < 0) {
            fprintf(stderr, "slowdown evade: proxy: %s\n", pt.err);
            free(bins);
            return SD_EXIT_ERR;
        }
        o.t.proxy_addr = SD_LAB_SERVER4;
        o.t.proxy_port = PROXY_PORT;
    }
    if (o.lab && o.strategy && (o.spec.def->needs & SD_EVADE_NEED_UDP) &&
        sd_quicbulk_thread_start(&ut, o.lab, SD_LAB_SERVER4, o.t.port ? o.t.port : SD_LAB_TLS_PORT) < 0) {
        fprintf(stderr, "slowdown evade: UDP responder: %s\n", ut.err);
        sd_proxy_thread_stop(&pt);
        free(bins);
        return SD_EXIT_ERR;
    }
    if (o.lab && sd_lab_enter(o.lab, SD_LAB_CLIENT, NULL) < 0) {
        fprintf(stderr, "slowdown evade: no lab '%s' (or not root)\n", o.lab);
        sd_proxy_thread_stop(&pt);
        sd_proxy_thread_stop(&ut);
        free(bins);
        return SD_EXIT_ERR;
    }
    rc = o.exec ? sd_evade_run_external(o.exec, &o.t, &r) : sd_evade_run(&o.spec, &o.t, &r);
    sd_proxy_thread_stop(&pt);
    sd_proxy_thread_stop(&ut);
    if (rc < 0) {
        fprintf(stderr, "slowdown evade: %s\n", r.note[0] ? r.note : sd_strerror(rc));
        free(bins);
        return rc == SD_EINVAL ? SD_EXIT_USAGE : SD_EXIT_ERR;
    }
    report(&o, &r);
    free(bins);
    return SD_EXIT_OK;
}
