/*
 * cmd_lab.c - `slowdown lab up|down|list|exec` (and the internal
 * `lab delay-line` the lab starts for --rtt). The work is in lab.c; this
 * file turns options into a struct sd_lab_config and results into lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "delayline.h"
#include "fetch.h"
#include "json.h"
#include "lab.h"
#include "labmgmt.h"
#include "mono.h"

enum { MAX_EXTRA = 16 };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown lab up [OPTIONS]\n"
            "       slowdown lab exec ID client|censor|server -- COMMAND [ARGS...]\n"
            "       slowdown lab down ID|--all\n"
            "       slowdown lab list\n"
            "       slowdown lab fetch [OPTIONS] ADDR   (one measurement; see --help)\n"
            "       slowdown lab mgmt up --name M [--serve DIR] | mgmt down M\n"
            "\n"
            "A client / censor / server network in three network namespaces (root only):\n"
            "  client 192.0.2.2, 2001:db8:1::2  ->  censor (router, slowdown run)  ->\n"
            "  server 203.0.113.2, 2001:db8:2::2 (slowdown serve: TLS 443, plain 80)\n"
            "\n"
            "Options of 'up':\n"
            "  --name ID          lab id, 1-12 of a-z0-9 (default: made up); printed on stdout\n"
            "  --preset NAME      censor preset (default tw21-initial)\n"
            "  --policy FILE      censor policy file (with --preset: added to it), or a URL\n"
            "  --mgmt M           plug the censor into management network M (mgmt0,\n"
            "                     198.51.100.N), where the policy server %s is\n"
            "  --no-censor        the censor only routes\n"
            "  --rtt MS           add MS milliseconds of round-trip time (a delay line)\n"
            "  --shape-kbit N     shape both directions to N kbit/s (HTB)\n"
            "  --run-arg ARG      pass ARG to slowdown run (repeatable)\n"
            "  --serve-arg ARG    pass ARG to slowdown serve (repeatable)\n"
            "  --quiet            print only the id\n"
            "\n"
            "exec runs COMMAND in a namespace with SD_LAB_ID, SD_LAB_SERVER4, SD_LAB_SERVER6,\n"
            "SD_LAB_CLIENT4 and SD_LAB_CLIENT6 set. Logs: %s/ID/*.log\n"
            "\n"
            "mgmt up makes a management network (namespace sd-M-mgmt, bridge with %s/24)\n"
            "shared by the censors of the labs that join it; --serve DIR serves the files of\n"
            "DIR there on port 80 with ETags (slowdown serve --files), for policy URLs like\n"
            "http://%s/NAME. mgmt down M stops it: the centre becomes unreachable.\n",
            SD_LAB_MGMT_CENTRE, SD_LAB_DIR, SD_LAB_MGMT_CENTRE, SD_LAB_MGMT_CENTRE);
}

static void print_summary(const char *id)
{
    struct sd_lab_info info;
    const char *censor = "no censor";

    if (sd_lab_info(id, &info) < 0)
        return;
    if (!info.no_censor)
        censor = info.preset[0] ? info.preset : info.policy;
    fprintf(stderr,
            "lab %s: client sd-%s-client (%s, %s) -> censor sd-%s-censor (%s) -> server sd-%s-server "
            "(%s, %s; TLS %d, plain %d)\n",
            id, id, SD_LAB_CLIENT4, SD_LAB_CLIENT6, id, censor, id, SD_LAB_SERVER4, SD_LAB_SERVER6, SD_LAB_TLS_PORT,
            SD_LAB_PLAIN_PORT);
    if (info.rtt_ms || info.shape_kbit)
        fprintf(stderr, "lab %s: rtt +%u ms, shaping %u kbit/s\n", id, info.rtt_ms, info.shape_kbit);
    fprintf(stderr, "  slowdown lab exec %s client -- COMMAND ...    slowdown lab down %s\n", id, id);
}

static int up_main(int argc, char **argv)
{
    enum { O_NAME = 256, O_PRESET, O_POLICY, O_NOCENSOR, O_RTT, O_SHAPE, O_RUNARG, O_SERVEARG, O_QUIET, O_MGMT };
    static const struct option lo[] = {
        {"name", 1, NULL, O_NAME},         {"preset", 1, NULL, O_PRESET},     {"policy", 1, NULL, O_POLICY},
        {"no-censor", 0, NULL, O_NOCENSOR}, {"rtt", 1, NULL, O_RTT},          {"shape-kbit", 1, NULL, O_SHAPE},
        {"run-arg", 1, NULL, O_RUNARG},    {"serve-arg", 1, NULL, O_SERVEARG}, {"quiet", 0, NULL, O_QUIET},
        {"mgmt", 1, NULL, O_MGMT},         {"help", 0, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    struct sd_lab_config cfg;
    char *run_args[MAX_EXTRA + 1] = {NULL}, *serve_args[MAX_EXTRA + 1] = {NULL};
    int n_run = 0, n_serve = 0, c;
    bool quiet = false;
    uint64_t v;

    memset(&cfg, 0, sizeof(cfg));
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_NAME:
            if (!sd_lab_id_ok(optarg))
                bad = "--name (1-12 characters of a-z and 0-9)";
            else
                snprintf(cfg.id, sizeof(cfg.id), "%s", optarg);
            break;
        case O_PRESET: cfg.preset = optarg; break;
        case O_POLICY: cfg.policy = optarg; break;
        case O_NOCENSOR: cfg.no_censor = true; break;
        case O_MGMT:
            if (!sd_lab_id_ok(optarg))
                bad = "--mgmt (1-12 characters of a-z and 0-9)";
            cfg.mgmt = optarg;
            break;
        case O_RTT:
            if (sd_opt_u64(optarg, 10000, 0, &v) < 0)
                bad = "--rtt";
            cfg.rtt_ms = (uint32_t)v;
            break;
        case O_SHAPE:
            if (sd_opt_u64(optarg, 100000000, 0, &v) < 0 || v < 8)
                bad = "--shape-kbit";
            cfg.shape_kbit = (uint32_t)v;
            break;
        case O_RUNARG:
        case O_SERVEARG:
            if ((c == O_RUNARG ? n_run : n_serve) == MAX_EXTRA)
                bad = "--run-arg/--serve-arg (too many)";
            else if (c == O_RUNARG)
                run_args[n_run++] = optarg;
            else
                serve_args[n_serve++] = optarg;
            break;
        case O_QUIET: quiet = true; break;
        case 'h': usage(stdout); return SD_EXIT_OK;
        default:
            fprintf(stderr, "slowdown lab up: unknown or incomplete option '%s'\n", argv[optind - 1]);
            return SD_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "slowdown lab up: bad value '%s' for %s\n", optarg, bad);
            return SD_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "slowdown lab up: unexpected argument '%s'\n", argv[optind]);
        return SD_EXIT_USAGE;
    }
    cfg.run_args = run_args;
    cfg.serve_args = serve_args;
    char id[SD_LAB_ID_MAX], err[600];
    int rc = sd_lab_up(&cfg, id, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "slowdown lab up: %s\n", err);
        return rc == SD_EINVAL ? SD_EXIT_USAGE : SD_EXIT_ERR;
    }
    printf("%s\n", id);
    if (!quiet)
        print_summary(id);
    return SD_EXIT_OK;
}

static int down_main(int argc, char **argv)
{
    char err[600], ids[256][SD_LAB_ID_MAX];
    int rc = SD_EXIT_OK;

    if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr, "Usage: slowdown lab down ID|--all\n");
        return argc == 2 ? SD_EXIT_OK : SD_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--all") != 0) {
        if (sd_lab_down(argv[1], err, sizeof(err)) < 0) {
            fprintf(stderr, "slowdown lab down: %s\n", err);
            return SD_EXIT_ERR;
        }
        return SD_EXIT_OK;
    }
    int n = sd_lab_list(ids, (int)SD_COUNTOF(ids));
    for (int i = 0; i < n && i < (int)SD_COUNTOF(ids); i++) {
        if (sd_lab_down(ids[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "slowdown lab down %s: %s\n", ids[i], err);
            rc = SD_EXIT_ERR;
        }
    }
    return rc;
}

static int list_main(void)
{
    char ids[256][SD_LAB_ID_MAX];
    int n = sd_lab_list(ids, (int)SD_COUNTOF(ids));

    printf("%-12s %-8s %-16s %-9s %-9s %s\n", "ID", "STATE", "CENSOR", "RTT", "SHAPE", "PROCESSES");
    for (int i = 0; i < n && i < (int)SD_COUNTOF(ids); i++) {
        struct sd_lab_info in;
        char rtt[16], shape[24];
        if (sd_lab_info(ids[i], &in) < 0)
            continue;
        snprintf(rtt, sizeof(rtt), "%ums", in.rtt_ms);
        snprintf(shape, sizeof(shape), in.shape_kbit ? "%ukbit" : "-", in.shape_kbit);
        printf("%-12s %-8s %-16s %-9s %-9s censor %s, server %s\n", in.id, in.complete ? "up" : "partial",
               in.no_censor ? "(none)" : in.preset[0] ? in.preset : "policy", rtt, shape,
               in.no_censor ? "-" : in.censor_alive ? "running" : "DEAD", in.server_alive ? "running" : "DEAD");
    }
    return SD_EXIT_OK;
}

static int exec_main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "Usage: slowdown lab exec ID client|censor|server -- COMMAND [ARGS...]\n");
        return SD_EXIT_USAGE;
    }
    int role = sd_lab_role_parse(argv[2]);
    if (role < 0) {
        fprintf(stderr, "slowdown lab exec: no role '%s' (client, censor or server)\n", argv[2]);
        return SD_EXIT_USAGE;
    }
    if (sd_lab_enter(argv[1], role, NULL) < 0) {
        fprintf(stderr, "slowdown lab exec: no lab '%s' (or its %s namespace is gone)\n", argv[1], argv[2]);
        return SD_EXIT_ERR;
    }
    setenv("SD_LAB_ID", argv[1], 1);
    setenv("SD_LAB_SERVER4", SD_LAB_SERVER4, 1);
    setenv("SD_LAB_SERVER6", SD_LAB_SERVER6, 1);
    setenv("SD_LAB_CLIENT4", SD_LAB_CLIENT4, 1);
    setenv("SD_LAB_CLIENT6", SD_LAB_CLIENT6, 1);
    execvp(argv[4], argv + 4);
    fprintf(stderr, "slowdown lab exec: %s: %s\n", argv[4], strerror(errno));
    return 127;
}

static void fetch_usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown lab fetch [OPTIONS] ADDR\n"
            "\n"
            "One measurement against a slowdown serve at ADDR (IPv4 or IPv6): a real TLS\n"
            "handshake with the SNI given, then a download (or upload); prints one JSON line.\n"
            "Run it in the lab with: slowdown lab exec ID client -- slowdown lab fetch ...\n"
            "\n"
            "  --sni NAME          server_name to send (default: none)\n"
            "  --plain             plain TCP instead of TLS\n"
            "  --port N            server port (default 443, or 80 with --plain)\n"
            "  --seconds S         transfer for S seconds (default 3 when no --bytes)\n"
            "  --bytes N           transfer N bytes (k/m/g suffix)\n"
            "  --up                upload instead of download\n"
            "  --hello SNI         plain: send a ClientHello for SNI as the first payload\n"
            "  --invert            with --hello: every byte of it inverted (the control of XUE21)\n"
            "  --tls12             at most TLS 1.2\n"
            "  --bind ADDR         source address\n"
            "  --src-port N        source port\n"
            "  --skip S            leave the first S seconds out of kbps (default 1)\n");
}

struct fetch_opts {
    struct sd_fetch_opts o;
    uint64_t skip_ns, v;
    uint8_t hello[2048];
    const char *hello_sni;
    bool invert;
};

static int fetch_parse(int argc, char **argv, struct fetch_opts *f)
{
    enum { O_SNI = 256, O_PLAIN, O_PORT, O_SECONDS, O_BYTES, O_UP, O_HELLO, O_INVERT, O_TLS12, O_BIND, O_SPORT,
           O_SKIP };
    static const struct option lo[] = {
        {"sni", 1, NULL, O_SNI},       {"plain", 0, NULL, O_PLAIN}, {"port", 1, NULL, O_PORT},
        {"seconds", 1, NULL, O_SECONDS}, {"bytes", 1, NULL, O_BYTES}, {"up", 0, NULL, O_UP},
        {"hello", 1, NULL, O_HELLO},   {"invert", 0, NULL, O_INVERT}, {"tls12", 0, NULL, O_TLS12},
        {"bind", 1, NULL, O_BIND},     {"src-port", 1, NULL, O_SPORT}, {"skip", 1, NULL, O_SKIP},
        {"help", 0, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    bool bad = false, port_set = false;
    int c;

    f->skip_ns = SD_NS_PER_S;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_SNI: f->o.sni = optarg; break;
        case O_PLAIN: f->o.plain = true; break;
        case O_PORT: bad = sd_opt_u64(optarg, 65535, 0, &f->v) < 0 || !f->v; f->o.port = (uint16_t)f->v; port_set = true; break;
        case O_SECONDS: bad = sd_opt_seconds(optarg, &f->o.duration_ns) < 0; break;
        case O_BYTES: bad = sd_opt_u64(optarg, UINT64_MAX >> 1, 1, &f->o.bytes) < 0; break;
        case O_UP: f->o.dir = SD_FETCH_UP; break;
        case O_HELLO: f->hello_sni = optarg; break;
        case O_INVERT: f->invert = true; break;
        case O_TLS12: f->o.tls_max_version = 0x0303; break; /* TLS1_2_VERSION */
        case O_BIND: f->o.bind_addr = optarg; break;
        case O_SPORT: bad = sd_opt_u64(optarg, 65535, 0, &f->v) < 0; f->o.src_port = (uint16_t)f->v; break;
        case O_SKIP: bad = sd_opt_seconds(optarg, &f->skip_ns) < 0; break;
        case 'h': fetch_usage(stdout); return 1000 + SD_EXIT_OK;
        default: bad = true; break;
        }
    }
    if (bad || optind != argc - 1 || (f->hello_sni && !f->o.plain) || (f->invert && !f->hello_sni)) {
        fprintf(stderr, "slowdown lab fetch: bad options (--hello needs --plain, --invert needs --hello)\n");
        fetch_usage(stderr);
        return 1000 + SD_EXIT_USAGE;
    }
    f->o.addr = argv[optind];
    if (!port_set)
        f->o.port = f->o.plain ? SD_LAB_PLAIN_PORT : SD_LAB_TLS_PORT;
    if (!f->o.bytes && !f->o.duration_ns)
        f->o.duration_ns = 3ull * SD_NS_PER_S;
    if (f->hello_sni) {
        int n = sd_fetch_client_hello(f->hello_sni, f->hello, sizeof(f->hello));
        if (n < 0) {
            fprintf(stderr, "slowdown lab fetch: cannot make a ClientHello for '%s'\n", f->hello_sni);
            return 1000 + SD_EXIT_ERR;
        }
        for (int i = 0; f->invert && i < n; i++)
            f->hello[i] = (uint8_t)~f->hello[i];
        f->o.first = f->hello;
        f->o.first_len = (size_t)n;
    }
    return 0;
}

static int fetch_main(int argc, char **argv)
{
    static const char *const stages[] = {"connect", "handshake", "transfer"};
    struct fetch_opts f;
    struct sd_fetch_result r;
    uint64_t bins[1200];

    memset(&f, 0, sizeof(f));
    int rc = fetch_parse(argc, argv, &f);
    if (rc)
        return rc - 1000;
    f.o.bins = bins;
    f.o.max_bins = (uint32_t)SD_COUNTOF(bins);
    signal(SIGPIPE, SIG_IGN);
    if (sd_fetch_run(&f.o, &r) < 0) {
        fprintf(stderr, "slowdown lab fetch: %s\n", r.detail[0] ? r.detail : "bad options");
        return SD_EXIT_ERR;
    }
    printf("{\"type\":\"fetch\",\"addr\":");
    sd_json_str(stdout, f.o.addr);
    printf(",\"port\":%u,\"sni\":", f.o.port);
    sd_json_str(stdout, f.o.sni);
    printf(",\"direction\":\"%s\",\"kbps\":%.1f,\"bytes\":%llu,\"end\":\"%s\",\"stage\":\"%s\","
           "\"connect_ms\":%.3f,\"handshake_ms\":%.3f,\"ttfb_ms\":%.3f,\"duration_s\":%.3f,\"tls\":\"%s\"}\n",
           f.o.dir == SD_FETCH_UP ? "up" : "down", sd_fetch_kbps(&r, bins, 0, f.skip_ns),
           (unsigned long long)r.bytes, sd_fetch_end_name(r.end), stages[r.stage], (double)r.connect_ns / 1e6,
           (double)r.handshake_ns / 1e6, (double)r.ttfb_ns / 1e6, (double)r.transfer_ns / 1e9, r.tls_version);
    if (r.detail[0] && r.end != SD_FETCH_DONE)
        fprintf(stderr, "slowdown lab fetch: %s: %s\n", sd_fetch_end_name(r.end), r.detail);
    return SD_EXIT_OK;
}

static void touch(void *arg)
{
    FILE *f = arg ? fopen(arg, "w") : NULL;
    if (f)
        fclose(f);
}

/* Internal: the delay line the lab starts in the censor for --rtt. */
static int delay_main(int argc, char **argv)
{
    struct sd_delayline_config c = {0};
    const char *ready = NULL;
    uint64_t v;
    sigset_t set;
    char err[300];

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--queue") && sd_opt_u64(argv[i + 1], 65535, 0, &v) == 0)
            c.queue = (uint16_t)v;
        else if (!strcmp(argv[i], "--delay-us") && sd_opt_u64(argv[i + 1], 10000000, 0, &v) == 0)
            c.delay_ns = v * 1000;
        else if (!strcmp(argv[i], "--ready-file"))
            ready = argv[i + 1];
        else {
            fprintf(stderr, "Usage: slowdown lab delay-line --queue N --delay-us US [--ready-file PATH]\n");
            return SD_EXIT_USAGE;
        }
    }
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("slowdown lab delay-line: signalfd");
        return SD_EXIT_ERR;
    }
    int rc = sd_delayline_run(&c, sfd, touch, (void *)ready, err, sizeof(err));
    close(sfd);
    if (rc < 0) {
        fprintf(stderr, "slowdown lab delay-line: %s\n", err);
        return SD_EXIT_ERR;
    }
    return SD_EXIT_OK;
}

/* lab mgmt up --name M [--serve DIR] | lab mgmt down M */
static int mgmt_main(int argc, char **argv)
{
    struct sd_lab_mgmt_config cfg;
    char err[600];
    memset(&cfg, 0, sizeof(cfg));
    if (argc == 3 && !strcmp(argv[1], "down")) {
        if (sd_lab_mgmt_down(argv[2], err, sizeof(err)) < 0) {
            fprintf(stderr, "slowdown lab mgmt down: %s\n", err);
            return SD_EXIT_ERR;
        }
        return SD_EXIT_OK;
    }
    bool ok = argc >= 2 && !strcmp(argv[1], "up");
    for (int i = 2; ok && i < argc; i += 2) {
        if (i + 1 < argc && !strcmp(argv[i], "--name") && sd_lab_id_ok(argv[i + 1]))
            snprintf(cfg.id, sizeof(cfg.id), "%s", argv[i + 1]);
        else if (i + 1 < argc && !strcmp(argv[i], "--serve"))
            cfg.serve_dir = argv[i + 1];
        else
            ok = false;
    }
    if (!ok || !cfg.id[0]) {
        fprintf(stderr, "Usage: slowdown lab mgmt up --name M [--serve DIR]\n       slowdown lab mgmt down M\n");
        return SD_EXIT_USAGE;
    }
    int rc = sd_lab_mgmt_up(&cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "slowdown lab mgmt up: %s\n", err);
        return rc == SD_EINVAL ? SD_EXIT_USAGE : SD_EXIT_ERR;
    }
    fprintf(stderr, "management network %s: sd-%s-mgmt, centre %s%s\n", cfg.id, cfg.id, SD_LAB_MGMT_CENTRE,
            cfg.serve_dir ? " (policy server on port 80)" : "");
    return SD_EXIT_OK;
}

int sd_lab_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SD_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        usage(stdout);
        return SD_EXIT_OK;
    }
    if (!strcmp(sub, "fetch"))
        return fetch_main(argc - 1, argv + 1); /* no root needed */
    if (geteuid() != 0 && strcmp(sub, "list") != 0) {
        fprintf(stderr, "slowdown lab: needs root (network namespaces, iptables)\n");
        return SD_EXIT_ERR;
    }
    if (!strcmp(sub, "up"))
        return up_main(argc - 1, argv + 1);
    if (!strcmp(sub, "down"))
        return down_main(argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return list_main();
    if (!strcmp(sub, "exec"))
        return exec_main(argc - 1, argv + 1);
    if (!strcmp(sub, "delay-line"))
        return delay_main(argc - 1, argv + 1);
    if (!strcmp(sub, "mgmt"))
        return mgmt_main(argc - 1, argv + 1);
    fprintf(stderr, "slowdown lab: unknown subcommand '%s' (up, down, list, exec, fetch)\n", sub);
    usage(stderr);
    return SD_EXIT_USAGE;
}
