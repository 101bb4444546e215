/*
 * cmd_run.c - `slowdown run`: the censor inline on live traffic.
 *
 *   options -> policy (preset/file/inside) -> [--print-rules: print, exit]
 *   -> remove stale rules of this queue -> drop capabilities (privs.h)
 *   -> start workers (queues bound)
 *   -> install rules -> ready -> signals: HUP reload, USR1 stats, INT/TERM stop
 *   -> remove rules (traffic flows unqueued) -> stop workers -> final stats
 *
 * Rules go in after the queues are bound and come out before they are
 * unbound, so no packet meets a queue nobody reads (and --queue-bypass
 * covers a crash). Signals are blocked in every thread and read from a
 * signalfd by the main thread, which is the only one that touches the
 * policy objects and the firewall.
 *
 * Operations: --events writes the decision log, --metrics
 * serves Prometheus metrics from a thread of its own, and policy sources
 * given as URLs are polled (central.h); a fetched change wakes the main
 * thread, which builds and swaps the policy exactly as SIGHUP does.
 * --install-rules and --remove-rules do only the firewall part, for a
 * service manager that runs the daemon itself with CAP_NET_ADMIN alone
 * (contrib/slowdown.service).
 */
#define _GNU_SOURCE
#include <cap-ng.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bpfpass.h"
#include "central.h"
#include "cli.h"
#include "clipolicy.h"
#include "cmdopt.h"
#include "eventlog.h"
#include "fwrules.h"
#include "inline.h"
#include "metrics.h"
#include "policy.h"
#include "privs.h"

enum {
    DEFAULT_QUEUE_PACKETS = 64,
    DEFAULT_CT_MARK = 0x40000000,
    DEFAULT_SETTLED_MARK = 0x20000000,
    DEFAULT_SET_TIMEOUT_S = 120,
    DEFAULT_SET_MAX = 1 << 20,
    DEFAULT_POLL_S = 30,
    FLUSH_MS = 1000, /* the event log reaches its file at least this often */
};

struct opts {
    struct sd_clipolicy cp;
    const char *ready_file, *events, *metrics, *cache_dir;
    bool print_rules, no_rules, install_rules, remove_rules;
    uint64_t stats_s, poll_s;
    uint32_t max_flows; /* over all workers (0: the engine's default per worker) */
    char ifbuf[256];
    char bpf_prog[SD_BPFPASS_PATH], bpf_map[SD_BPFPASS_PATH];
    struct sd_fw_config fw;
    struct sd_inline_config in;
};

/* What the main thread shares with the metrics thread. */
struct run {
    const struct opts *o;
    struct sd_inline *in;
    struct sd_central *central;
    struct sd_policy *pol;
    FILE *events;
    pthread_mutex_t lock;        /* guards the policy bookkeeping below */
    char policy_name[64];
    uint64_t generation, reloads_ok, reloads_failed;
    double loaded_at, start_time;
    /* the metrics thread's own buffers */
    struct sd_inline_rule rules[SD_INLINE_MAX_RULES];
    struct sd_queue_stats queues[SD_INLINE_MAX_WORKERS];
    struct sd_central_status sources[SD_CENTRAL_MAX_SOURCES];
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown run [OPTIONS]\n"
            "\n"
            "Runs the censor inline on this host's forwarded traffic (Linux NFQUEUE) until\n"
            "SIGINT or SIGTERM. SIGHUP reloads the policy; SIGUSR1 prints statistics.\n"
            "\n"
            "Options (without --preset, --policy or --at: preset observe):\n"
            "%s"
            "                     --policy, --preset and --at also take an http:// or https://\n"
            "                     URL: a policy text, a preset name or a time, polled with ETag\n"
            "  --policy-poll S    poll policy URLs every S seconds (default 30)\n"
            "  --policy-cache DIR keep the last good text of each URL in DIR, and start from it\n"
            "                     when the policy server cannot be reached\n"
            "  --queue N          first NFQUEUE number (default 0)\n"
            "  --workers W        queues and threads N..N+W-1 (default 1)\n"
            "  --balance HOW      several workers: addr (default: the kernel's hash of the\n"
            "                     address pair, so one host pair is one worker) or flow\n"
            "                     (the ports too, by a BPF match; needs --bypass conntrack)\n"
            "  --queue-packets N  queue the first N packets of each connection (default 64;\n"
            "                     0: every packet); flows under an action stay queued\n"
            "  --ct-mark BIT      conntrack mark bit for flows under an action (0x40000000)\n"
            "  --settle-mark BIT  conntrack mark bit for settled flows, no longer queued\n"
            "                     (0x20000000; 0: keep queueing the whole window)\n"
            "  --bypass HOW       how settled flows stop being queued: conntrack (default:\n"
            "                     conntrack marks), bpf (no connection tracking: an eBPF\n"
            "                     program in an iptables bpf match looks each packet's flow\n"
            "                     up in a map the daemon fills; the fastest path) or ipset\n"
            "                     (no connection tracking: kernel sets SLOWDOWN-N-v4/-v6 keyed\n"
            "                     client address, client port, server address)\n"
            "  --set-timeout S    bpf, ipset: seconds an idle settled flow stays bypassed (120)\n"
            "  --set-max N        bpf, ipset: most flows (1048576; bpf then forgets the idlest,\n"
            "                     ipset keeps further flows queued)\n"
            "  --hook H           forward (filter FORWARD, default) or prerouting (mangle\n"
            "                     PREROUTING: also sees packets whose TTL ends here)\n"
            "  --iface IF,...     only packets arriving on these interfaces\n"
            "  --print-rules      print the iptables commands and exit\n"
            "  --install-rules    install the rules and exit (a service's privileged step)\n"
            "  --remove-rules     remove the rules of this queue and exit\n"
            "  --no-rules         install no rules (you route packets to the queues)\n"
            "  --no-engine        accept every packet unseen (tests, benchmarks)\n"
            "  --max-flows N      flows tracked, over all workers (default 1048576 per worker);\n"
            "                     a full table evicts the least recently seen of 8 sampled\n"
            "                     flows, preferring flows under no action\n"
            "  --maxlen N         kernel queue length per queue (default 4096)\n"
            "  --rcvbuf BYTES     socket receive buffer per queue, k/m/g suffixes (16m): what\n"
            "                     waits for a worker must fit, or the kernel drops it\n"
            "  --fail-closed      drop packets when a queue is full (default: forward them\n"
            "                     uninspected)\n"
            "  --batch N          packets per receive (default 256)\n"
            "  --events FILE      write every decision as a JSON line (eve.json-shaped) to\n"
            "                     FILE (appended), or to stdout with -\n"
            "  --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics\n"
            "                     (e.g. 127.0.0.1:9469)\n"
            "  --stats S          print statistics every S seconds\n"
            "  --ready-file PATH  create PATH once the rules are in (for scripts)\n"
            "  -h, --help         this help\n",
            sd_clipolicy_help);
}

static int split_ifaces(struct opts *o, const char *list)
{
    snprintf(o->ifbuf, sizeof(o->ifbuf), "%s", list);
    o->fw.n_ifaces = 0;
    for (char *save = NULL, *t = strtok_r(o->ifbuf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->fw.n_ifaces == SD_FW_MAX_IFACES)
            return SD_ERANGE;
        o->fw.ifaces[o->fw.n_ifaces++] = t;
    }
    return o->fw.n_ifaces ? 0 : SD_EINVAL;
}

static int bad_value(const char *arg, const char *name)
{
    fprintf(stderr, "slowdown run: bad value '%s' for %s\n", arg, name);
    return -1;
}

static int parse_num(const char *arg, uint64_t max, uint64_t *v, const char *name)
{
    return sd_opt_u64(arg, max, 0, v) == 0 ? 0 : bad_value(arg, name);
}

/* Options that are not the policy's or the queues' numbers. Returns 0, 1 (not one of these) or -1 (bad). */
static int parse_ops(struct opts *o, int c, const char *arg)
{
    enum { O_EVENTS = 0x300, O_METRICS, O_POLL, O_CACHE, O_INSTALL, O_REMOVE };
    char host[64];
    uint16_t port;
    switch (c) {
    case O_EVENTS: o->events = arg; return 0;
    case O_METRICS:
        if (sd_metrics_split_addr(arg, host, sizeof(host), &port) < 0)
            return bad_value(arg, "--metrics (ADDR:PORT, e.g. 127.0.0.1:9469)");
        o->metrics = arg;
        return 0;
    case O_POLL:
        if (parse_num(arg, 86400, &o->poll_s, "--policy-poll") < 0 || (o->poll_s == 0 && bad_value(arg, "--policy-poll")))
            return -1;
        return 0;
    case O_CACHE: o->cache_dir = arg; return 0;
    case O_INSTALL: o->install_rules = true; return 0;
    case O_REMOVE: o->remove_rules = true; return 0;
    }
    return 1;
}

static int finish_opts(struct opts *o);

/* 0 to go on, else exit status + 1000. */
static int parse(int argc, char **argv, struct opts *o)
{
    /* 0x100-0x103 are the shared policy options (clipolicy.h); 0x300- parse_ops. */
    enum { O_QUEUE = 0x200, O_WORKERS, O_QP, O_MARK, O_HOOK, O_IFACE, O_PRINT, O_NORULES, O_NOENGINE, O_MAXLEN,
           O_BATCH, O_STATS, O_READY, O_FAILCLOSED, O_SETTLE, O_BYPASS, O_SETTIMEOUT, O_SETMAX, O_RCVBUF, O_BALANCE, O_MAXFLOWS };
    static const struct option lo[] = {
        SD_CLIPOLICY_OPTIONS,
        {"queue", 1, NULL, O_QUEUE},     {"workers", 1, NULL, O_WORKERS},    {"queue-packets", 1, NULL, O_QP},
        {"ct-mark", 1, NULL, O_MARK},    {"hook", 1, NULL, O_HOOK},          {"iface", 1, NULL, O_IFACE},
        {"print-rules", 0, NULL, O_PRINT}, {"no-rules", 0, NULL, O_NORULES}, {"no-engine", 0, NULL, O_NOENGINE},
        {"maxlen", 1, NULL, O_MAXLEN},   {"batch", 1, NULL, O_BATCH},        {"stats", 1, NULL, O_STATS},
        {"ready-file", 1, NULL, O_READY}, {"fail-closed", 0, NULL, O_FAILCLOSED},
        {"settle-mark", 1, NULL, O_SETTLE}, {"events", 1, NULL, 0x300},     {"metrics", 1, NULL, 0x301},
        {"policy-poll", 1, NULL, 0x302}, {"policy-cache", 1, NULL, 0x303},  {"install-rules", 0, NULL, 0x304},
        {"remove-rules", 0, NULL, 0x305}, {"bypass", 1, NULL, O_BYPASS},    {"set-timeout", 1, NULL, O_SETTIMEOUT},
        {"set-max", 1, NULL, O_SETMAX},  {"rcvbuf", 1, NULL, O_RCVBUF},      {"balance", 1, NULL, O_BALANCE},
        {"max-flows", 1, NULL, O_MAXFLOWS}, {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v = 0;
    int c, bad = 0;

    o->fw.queue_packets = DEFAULT_QUEUE_PACKETS;
    o->fw.ct_mark = DEFAULT_CT_MARK;
    o->fw.settled_mark = DEFAULT_SETTLED_MARK;
    o->fw.workers = 1;
    o->fw.set_timeout_s = DEFAULT_SET_TIMEOUT_S;
    o->fw.set_max = DEFAULT_SET_MAX;
    o->poll_s = DEFAULT_POLL_S;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 0x100: case 0x101: case 0x102: case 0x103:
            bad = sd_clipolicy_opt(&o->cp, "run", c, optarg) != 0;
            break;
        case O_QUEUE: bad = parse_num(optarg, 65535 - SD_INLINE_MAX_WORKERS, &v, "--queue"); o->fw.queue = (uint16_t)v; break;
        case O_WORKERS:
            bad = parse_num(optarg, SD_INLINE_MAX_WORKERS, &v, "--workers") || (v == 0 && bad_value(optarg, "--workers"));
            o->fw.workers = (uint16_t)v;
            break;
        case O_QP: bad = parse_num(optarg, 1000000, &v, "--queue-packets"); o->fw.queue_packets = (uint32_t)v; break;
        case O_MARK:
        case O_SETTLE:
            bad = parse_num(optarg, UINT32_MAX, &v, c == O_MARK ? "--ct-mark" : "--settle-mark") ||
                  (c == O_MARK && v == 0 && bad_value(optarg, "--ct-mark"));
            *(c == O_MARK ? &o->fw.ct_mark : &o->fw.settled_mark) = (uint32_t)v;
            break;
        case O_HOOK:
            if (!strcmp(optarg, "forward"))
                o->fw.hook = SD_FW_FORWARD;
            else if (!strcmp(optarg, "prerouting"))
                o->fw.hook = SD_FW_PREROUTING;
            else
                bad = bad_value(optarg, "--hook");
            break;
        case O_BYPASS:
            if (!strcmp(optarg, "conntrack"))
                o->fw.bypass = SD_BYPASS_CONNTRACK;
            else if (!strcmp(optarg, "ipset"))
                o->fw.bypass = SD_BYPASS_IPSET;
            else if (!strcmp(optarg, "bpf"))
                o->fw.bypass = SD_BYPASS_BPF;
            else
                bad = bad_value(optarg, "--bypass (conntrack, bpf or ipset)");
            break;
        case O_BALANCE:
            if (!strcmp(optarg, "addr") || !strcmp(optarg, "flow"))
                o->fw.balance_flow = optarg[0] == 'f';
            else
                bad = bad_value(optarg, "--balance (addr or flow)");
            break;
        case O_SETTIMEOUT:
            /* At least 2 s: the workers' cache of added flows is emptied every half timeout. */
            bad = parse_num(optarg, 2147483, &v, "--set-timeout") || (v < 2 && bad_value(optarg, "--set-timeout"));
            o->fw.set_timeout_s = (uint32_t)v;
            break;
        case O_SETMAX:
            bad = parse_num(optarg, 1u << 30, &v, "--set-max") || (v == 0 && bad_value(optarg, "--set-max"));
            o->fw.set_max = (uint32_t)v;
            break;
        case O_IFACE:
            if (split_ifaces(o, optarg) < 0)
                bad = bad_value(optarg, "--iface");
            break;
        case O_PRINT: o->print_rules = true; break;
        case O_NORULES: o->no_rules = true; break;
        case O_NOENGINE: o->in.no_engine = true; break;
        case O_FAILCLOSED: o->in.fail_closed = true; break;
        case O_MAXLEN: bad = parse_num(optarg, 1u << 20, &v, "--maxlen"); o->in.maxlen = (uint32_t)v; break;
        case O_BATCH: bad = parse_num(optarg, 256, &v, "--batch"); o->in.batch = (unsigned)v; break;
        case O_RCVBUF:
            bad = sd_opt_u64(optarg, 1u << 30, 1, &v) < 0 || v < 4096 ? bad_value(optarg, "--rcvbuf (4k to 1g)") : 0;
            o->in.rcvbuf = (uint32_t)v;
            break;
        case O_MAXFLOWS:
            bad = parse_num(optarg, 1u << 30, &v, "--max-flows") || (v == 0 && bad_value(optarg, "--max-flows"));
            o->max_flows = (uint32_t)v;
            break;
        case O_STATS: bad = parse_num(optarg, 86400, &o->stats_s, "--stats"); break;
        case O_READY: o->ready_file = optarg; break;
        case 'h': usage(stdout); return 1000 + SD_EXIT_OK;
        default:
            if (c >= 0x300 && c < 0x310) {
                bad = parse_ops(o, c, optarg) != 0;
                break;
            }
            fprintf(stderr, "slowdown run: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    if (bad)
        return 1000 + SD_EXIT_USAGE;
    if (optind < argc) {
        fprintf(stderr, "slowdown run: unexpected argument '%s'\n", argv[optind]);
        return 1000 + SD_EXIT_USAGE;
    }
    return finish_opts(o);
}

/* Checks that concern several options, derives the workers' settings. 0, or exit status + 1000. */
static int finish_opts(struct opts *o)
{
    if (o->fw.ct_mark & o->fw.settled_mark) {
        fprintf(stderr, "slowdown run: --ct-mark and --settle-mark must be different bits\n");
        return 1000 + SD_EXIT_USAGE;
    }
    if (o->install_rules + o->remove_rules + o->print_rules > 1) {
        fprintf(stderr, "slowdown run: --print-rules, --install-rules and --remove-rules exclude each other\n");
        return 1000 + SD_EXIT_USAGE;
    }
    if (o->fw.balance_flow && o->fw.bypass != SD_BYPASS_CONNTRACK) {
        fprintf(stderr, "slowdown run: --balance flow needs --bypass conntrack: a flow's queue is picked by its "
                        "ports, which every fragment has only once the kernel reassembles them, and it does so "
                        "only when it tracks connections\n");
        return 1000 + SD_EXIT_USAGE;
    }
    if (!o->fw.queue_packets)
        o->fw.settled_mark = 0; /* every packet is queued anyway: nothing to leave early */
    if (o->fw.bypass != SD_BYPASS_CONNTRACK) {
        o->fw.settled_mark = 0; /* no conntrack: no marks */
        o->fw.ct_mark = 0;
    }
    o->in.queue = o->fw.queue;
    o->in.workers = o->fw.workers;
    /* Each worker has its own table; the kernel spreads flows over them by hash, so each gets its
     * share, rounded up. */
    if (o->max_flows)
        o->in.max_flows = (uint32_t)(((uint64_t)o->max_flows + o->fw.workers - 1) / o->fw.workers);
    o->in.ct_mark = o->fw.queue_packets ? o->fw.ct_mark : 0; /* everything is queued anyway */
    o->in.settled_mark = o->fw.settled_mark;
    o->in.bypass = o->fw.bypass;
    o->in.set_timeout_s = o->fw.set_timeout_s;
    if (o->fw.bypass == SD_BYPASS_IPSET && o->fw.queue_packets) { /* with N = 0 every packet is queued */
        sd_fw_set_name(&o->fw, 4, o->in.sets[0], sizeof(o->in.sets[0]));
        sd_fw_set_name(&o->fw, 6, o->in.sets[1], sizeof(o->in.sets[1]));
    }
    /* The pins are named whatever the mode, so that removal finds those of an earlier bpf run. */
    if (sd_bpfpass_paths(o->fw.queue, o->bpf_prog, o->bpf_map) == 0) {
        o->fw.bpf_prog = o->bpf_prog;
        o->fw.bpf_map = o->bpf_map;
    }
    if (o->fw.bypass == SD_BYPASS_BPF && o->fw.queue_packets) {
        if (!o->fw.bpf_prog) {
            fprintf(stderr, "slowdown run: --bypass bpf: cannot name this network namespace\n");
            return 1000 + SD_EXIT_USAGE;
        }
        o->in.bpf_map = o->bpf_map;
    } else if (o->fw.bypass == SD_BYPASS_BPF) {
        o->in.bypass = SD_BYPASS_CONNTRACK; /* every packet queued: nothing to bypass */
    }
    return 0;
}

/* ---- policy ---- */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int central_text(void *arg, const char *url, const char **p, size_t *n)
{
    return sd_central_text(arg, url, p, n);
}

/* Builds the policy from the options (and the fetched texts); NULL with the error printed. */
static struct sd_policy *load_policy(const struct opts *o, struct sd_central *central)
{
    struct sd_clipolicy cp = o->cp;
    cp.url_text = central ? central_text : NULL;
    cp.url_arg = central;
    return sd_clipolicy_build(&cp, "run", "observe");
}

/* Builds a policy and settles the fate of the taken central texts with it. */
static struct sd_policy *load_and_settle(struct run *r)
{
    struct sd_policy *p = load_policy(r->o, r->central);
    if (r->central) {
        if (p)
            sd_central_commit(r->central);
        else
            sd_central_reject(r->central);
    }
    return p;
}

/* The policy sources that are URLs, into |cfg|. */
static void central_urls(const struct opts *o, struct sd_central_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 0; i < o->cp.n_files; i++)
        if (sd_central_is_url(o->cp.files[i]))
            cfg->urls[cfg->n++] = o->cp.files[i];
    if (sd_central_is_url(o->cp.preset))
        cfg->urls[cfg->n++] = o->cp.preset;
    if (sd_central_is_url(o->cp.at))
        cfg->urls[cfg->n++] = o->cp.at;
    cfg->interval_s = (uint32_t)o->poll_s;
    cfg->timeout_s = (uint32_t)SD_MAX(SD_MIN(o->poll_s, 10u), 2u);
    cfg->cache_dir = o->cache_dir;
}

static void note_policy(struct run *r, bool ok)
{
    pthread_mutex_lock(&r->lock);
    if (ok) {
        snprintf(r->policy_name, sizeof(r->policy_name), "%s", r->pol ? r->pol->name : "no engine");
        r->generation++;
        r->reloads_ok += r->generation > 1;
        r->loaded_at = wall_now();
    } else {
        r->reloads_failed++;
    }
    pthread_mutex_unlock(&r->lock);
}

/* SIGHUP or a central change: a new policy replaces the old one only if it builds. */
static void reload(struct run *r, const char *why)
{
    struct sd_policy *next = load_and_settle(r);

    if (!next) {
        fprintf(stderr, "slowdown run: reload (%s) failed; the previous policy stays in force\n", why);
        note_policy(r, false);
        return;
    }
    if (sd_inline_set_policy(r->in, next) < 0) {
        /* A worker did not confirm: both policies may be in use, keep both alive. */
        fprintf(stderr, "slowdown run: a worker did not take the new policy in time\n");
        note_policy(r, false);
        return;
    }
    sd_policy_free(r->pol);
    r->pol = next;
    note_policy(r, true);
    fprintf(stderr, "slowdown run: policy reloaded (%s; %s)\n", next->name, why);
}

/* ---- statistics and metrics ---- */

static void print_stats(const struct sd_inline_stats *s)
{
    fprintf(stderr,
            "slowdown run: packets %llu (receives %llu, verdict messages %llu, sends %llu, enobufs %llu, "
            "netlink errors %llu)\n"
            "slowdown run: accepted %llu dropped %llu replaced %llu held %llu released %llu; "
            "flows %llu (active %llu) triggers %llu; ct marks %llu (settled %llu, errors %llu); undecodable %llu; "
            "i/o errors %llu\n",
            (unsigned long long)s->nfq.packets, (unsigned long long)s->nfq.recv_calls,
            (unsigned long long)s->nfq.verdict_msgs, (unsigned long long)s->nfq.send_calls,
            (unsigned long long)s->nfq.enobufs, (unsigned long long)s->nfq.nl_errors,
            (unsigned long long)s->accepted, (unsigned long long)s->dropped, (unsigned long long)s->replaced,
            (unsigned long long)s->held, (unsigned long long)s->released, (unsigned long long)s->engine.flows_created,
            (unsigned long long)s->engine.flows_active, (unsigned long long)s->engine.triggers,
            (unsigned long long)s->ct_marks, (unsigned long long)s->settled_marks, (unsigned long long)s->ct_errors,
            (unsigned long long)s->decode_errors, (unsigned long long)s->io_errors);
}

/* The kernel's counters of our queues (this network namespace's). */
static size_t read_queues(const struct opts *o, struct sd_queue_stats *q)
{
    char buf[16384];
    FILE *f = fopen("/proc/net/netfilter/nfnetlink_queue", "r");
    size_t n = 0;
    if (f) {
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
    }
    sd_metrics_parse_nfqueue(buf, buf + n, o->fw.queue, o->fw.workers, q);
    return o->fw.workers;
}

/* The metrics thread's collect callback. */
static void collect(void *arg, struct sd_prom *b)
{
    struct run *r = arg;
    struct sd_inline_stats st;
    struct sd_metrics_in m = {.st = &st, .rules = r->rules, .queues = r->queues, .sources = r->sources,
                              .start_time = r->start_time};

    sd_inline_get_stats(r->in, &st);
    m.n_rules = sd_inline_get_rule_stats(r->in, r->rules, SD_COUNTOF(r->rules));
    m.n_queues = read_queues(r->o, r->queues);
    if (r->central)
        m.n_sources = SD_MIN(sd_central_status(r->central, r->sources, SD_COUNTOF(r->sources)),
                             SD_COUNTOF(r->sources));
    pthread_mutex_lock(&r->lock);
    char name[64];
    snprintf(name, sizeof(name), "%s", r->policy_name);
    m.policy_name = name;
    m.policy_generation = r->generation;
    m.policy_loaded_at = r->loaded_at;
    m.reloads_ok = r->reloads_ok;
    m.reloads_failed = r->reloads_failed;
    pthread_mutex_unlock(&r->lock);
    sd_metrics_render(b, &m);
}

/* ---- the main loop ---- */

/* Waits for signals (and central changes) until told to stop. */
static void serve_signals(struct run *r, int sfd)
{
    const struct opts *o = r->o;
    uint64_t next_stats = o->stats_s ? (uint64_t)time(NULL) + o->stats_s : 0;
    struct sd_inline_stats st;

    for (;;) {
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {r->central ? sd_central_fd(r->central) : -1, POLLIN, 0}};
        int rc = poll(p, 2, FLUSH_MS);
        if (r->events)
            fflush(r->events);
        if (next_stats && (uint64_t)time(NULL) >= next_stats) {
            sd_inline_get_stats(r->in, &st);
            print_stats(&st);
            next_stats += o->stats_s;
        }
        if (rc > 0 && (p[1].revents & POLLIN) && sd_central_take(r->central))
            reload(r, "the policy server has a new version");
        struct signalfd_siginfo si;
        if (rc <= 0 || !(p[0].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo == SIGHUP) {
            if (r->central)
                sd_central_take(r->central);
            reload(r, "SIGHUP");
        } else if (si.ssi_signo == SIGUSR1) {
            sd_inline_get_stats(r->in, &st);
            print_stats(&st);
        } else {
            return;
        }
    }
}

static int remove_stale(const struct opts *o, bool quiet)
{
    char err[400];
    int n = sd_fw_remove(&o->fw, err, sizeof(err));

    if (n < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        return -1;
    }
    if (n > 0 && !quiet)
        fprintf(stderr, "slowdown run: removed %d stale rules and chains of queue %u (an earlier run)\n", n,
                o->fw.queue);
    return 0;
}

/* Opens the event log, the central sources and the first policy. 0 or -1 (printed). */
static int prepare(struct run *r)
{
    const struct opts *o = r->o;
    struct sd_central_config cc;

    if (o->events) {
        r->events = strcmp(o->events, "-") ? fopen(o->events, "a") : stdout;
        if (!r->events) {
            fprintf(stderr, "slowdown run: cannot open %s: %m\n", o->events);
            return -1;
        }
    }
    central_urls(o, &cc);
    if (cc.n && !o->in.no_engine) {
        char err[512];
        r->central = sd_central_new(&cc, err, sizeof(err));
        if (!r->central || sd_central_fetch_now(r->central, err, sizeof(err)) < 0) {
            fprintf(stderr, "slowdown run: %s\n", err);
            return -1;
        }
        sd_central_take(r->central);
    }
    if (!o->in.no_engine && !(r->pol = load_and_settle(r)))
        return -1;
    note_policy(r, true);
    return 0;
}

/* Starts what runs beside the workers: metrics and the central poller. 0 or -1 (printed). */
static int start_ops(struct run *r, struct sd_metrics_server **ms)
{
    if (r->o->metrics) {
        char err[512];
        *ms = sd_metrics_server_start(r->o->metrics, collect, r, err, sizeof(err));
        if (!*ms) {
            fprintf(stderr, "slowdown run: %s\n", err);
            return -1;
        }
    }
    if (r->central && sd_central_start(r->central) < 0) {
        fprintf(stderr, "slowdown run: cannot start the policy poller\n");
        return -1;
    }
    return 0;
}

static void announce(const struct run *r)
{
    const struct opts *o = r->o;
    char queues[64];
    if (o->fw.workers > 1)
        snprintf(queues, sizeof(queues), "queues %u-%u by %s", o->fw.queue, o->fw.queue + o->fw.workers - 1u,
                 o->fw.balance_flow ? "flow" : "address pair");
    else
        snprintf(queues, sizeof(queues), "queue %u", o->fw.queue);
    fprintf(stderr, "slowdown run: %s on %s, %s, %s\n", r->pol ? r->pol->name : "no engine", queues,
            o->no_rules ? "no rules installed" : o->fw.hook ? "mangle PREROUTING" : "filter FORWARD",
            !o->fw.queue_packets                ? "every packet"
            : o->fw.bypass == SD_BYPASS_IPSET ? "each connection until it settles (ipset bypass, no conntrack)"
            : o->fw.bypass == SD_BYPASS_BPF   ? "each connection until it settles (bpf bypass, no conntrack)"
                                              : "first packets of each connection");
    if (o->ready_file) {
        FILE *f = fopen(o->ready_file, "w");
        if (f)
            fclose(f);
    }
}

/*
 * Gives up every capability the censor does not need any more, before the
 * first thread starts (capabilities are per thread: threads started later
 * inherit the reduced sets; see privs.h). Kept: CAP_NET_ADMIN (verdicts and
 * conntrack marks go through netlink sockets opened with it; iptables at
 * exit), CAP_NET_RAW (the workers' raw sockets are opened right after this,
 * and iptables-legacy needs it to remove the rules at exit), and
 * CAP_NET_BIND_SERVICE only while --metrics asks for a port below 1024.
 * Everything else goes from every set, the bounding set included, and
 * no_new_privs is set. A SIGHUP reload reads the policy files again with what
 * is left: a root uid without CAP_DAC_OVERRIDE, so files it owns, or files
 * readable by root as owner, group or other. The first policy is loaded and
 * stale rules removed before the drop: a bad policy must leave the firewall
 * untouched, and on a host where nothing used iptables yet, iptables-legacy
 * runs modprobe for ip_tables, which needs CAP_SYS_MODULE (the netfilter
 * modules of the rules themselves are loaded by the kernel on demand).
 */
#ifndef CAP_BPF
#define CAP_BPF 39 /* Linux 5.8 */
#endif

static int install_bpf(const struct opts *o);

static int drop_privileges(const struct opts *o)
{
    int keep[4], n = 0;
    char err[256], names[128];
    struct sd_privs_result res;

    keep[n++] = CAP_NET_ADMIN;
    if (o->in.bpf_map)
        keep[n++] = CAP_BPF; /* the workers' map updates, and iptables' --object-pinned */
    if (!o->in.no_engine || !o->no_rules)
        keep[n++] = CAP_NET_RAW;
    if (o->metrics) {
        char host[128];
        uint16_t port = 0;
        if (sd_metrics_split_addr(o->metrics, host, sizeof(host), &port) == 0 && port < 1024)
            keep[n++] = CAP_NET_BIND_SERVICE;
    }
    if (sd_privs_drop(keep, (size_t)n, o->no_rules ? 0 : SD_PRIVS_EXEC, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        return -1;
    }
    sd_privs_describe(&res, names, sizeof(names));
    fprintf(stderr, "slowdown run: capabilities dropped; kept %s%s, no_new_privs set\n", names,
            res.bounding ? " (bounding set too)" : " (bounding set unchanged: no CAP_SETPCAP)");
    return 0;
}

static int run(struct opts *o, struct sd_fw_plan *plan)
{
    char err[512];
    sigset_t set;
    struct run *r = calloc(1, sizeof(*r));
    struct sd_metrics_server *ms = NULL;
    int rc = SD_EXIT_ERR, sfd = -1;

    if (!r)
        return SD_EXIT_ERR;
    r->o = o;
    r->start_time = wall_now();
    pthread_mutex_init(&r->lock, NULL);
    sigemptyset(&set);
    for (int s = 0; s < 4; s++)
        sigaddset(&set, (int[]){SIGINT, SIGTERM, SIGHUP, SIGUSR1}[s]);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread starts: they inherit it */
    if (prepare(r) < 0)
        goto out;
    sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0 || (!o->no_rules && remove_stale(o, false) < 0))
        goto out;
    if (!o->no_rules && install_bpf(o) < 0)
        goto out;
    if (drop_privileges(o) < 0)
        goto out;
    if (r->events) {
        o->in.on_event = sd_eventlog_write;
        o->in.event_arg = r->events;
    }
    r->in = sd_inline_start(&o->in, r->pol, err, sizeof(err));
    if (!r->in) {
        fprintf(stderr, "slowdown run: %s\n", err);
        goto out;
    }
    bool up = start_ops(r, &ms) == 0;
    if (up && !o->no_rules && sd_fw_plan_apply(plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        up = false;
    }
    if (!up) {
        if (!o->no_rules)
            sd_fw_remove(&o->fw, err, sizeof(err));
        sd_central_free(r->central);
        r->central = NULL;
        sd_metrics_server_stop(ms);
        sd_inline_stop(r->in);
        goto out;
    }
    announce(r);
    serve_signals(r, sfd);
    if (!o->no_rules && sd_fw_remove(&o->fw, err, sizeof(err)) < 0)
        fprintf(stderr, "slowdown run: removing the rules: %s\n", err);
    sd_central_free(r->central); /* no reload can start now */
    r->central = NULL;
    sd_metrics_server_stop(ms);
    struct sd_inline_stats st;
    sd_inline_get_stats(r->in, &st);
    sd_inline_stop(r->in); /* the engines release their flows: the last events */
    print_stats(&st);
    rc = SD_EXIT_OK;
out:
    if (sfd >= 0)
        close(sfd);
    sd_central_free(r->central);
    sd_policy_free(r->pol);
    if (r->events && r->events != stdout)
        fclose(r->events);
    else if (r->events)
        fflush(stdout);
    pthread_mutex_destroy(&r->lock);
    free(r);
    return rc;
}

/* True when this process may use NFQUEUE and ctnetlink (CAP_NET_ADMIN is effective). */
static bool has_net_admin(void)
{
    if (capng_get_caps_process() != 0)
        return geteuid() == 0;
    return capng_have_capability(CAPNG_EFFECTIVE, CAP_NET_ADMIN);
}

/* --bypass bpf: loads and pins the program (before the privileges go: it needs CAP_SYS_ADMIN and
 * CAP_BPF). 0, or -1 with the reason printed. */
static int install_bpf(const struct opts *o)
{
    char err[256];
    if (!o->in.bpf_map)
        return 0;
    if (sd_bpfpass_install(o->bpf_prog, o->bpf_map, o->fw.set_max, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        return -1;
    }
    return 0;
}

/* --install-rules / --remove-rules: the firewall part alone. */
static int rules_only(const struct opts *o, const struct sd_fw_plan *plan)
{
    char err[512];
    if (remove_stale(o, o->remove_rules) < 0)
        return SD_EXIT_ERR;
    if (o->remove_rules)
        return SD_EXIT_OK;
    if (install_bpf(o) < 0)
        return SD_EXIT_ERR;
    if (sd_fw_plan_apply(plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        sd_fw_remove(&o->fw, err, sizeof(err));
        return SD_EXIT_ERR;
    }
    return SD_EXIT_OK;
}

int sd_run_main(int argc, char **argv)
{
    struct opts o;
    struct sd_fw_plan *plan = malloc(sizeof(*plan));
    int rc;

    memset(&o, 0, sizeof(o));
    if (!plan) {
        fprintf(stderr, "slowdown run: out of memory\n");
        return SD_EXIT_ERR;
    }
    rc = parse(argc, argv, &o);
    if (rc) {
        free(plan);
        return rc - 1000;
    }
    if (sd_fw_plan_install(&o.fw, plan) < 0) {
        fprintf(stderr, "slowdown run: bad --iface list\n");
        free(plan);
        return SD_EXIT_USAGE;
    }
    if (o.print_rules) {
        if (o.in.bpf_map)
            printf("# --bypass bpf: slowdown run (or --install-rules) loads and pins %s first\n", o.bpf_prog);
        sd_fw_plan_print(plan, stdout);
        free(plan);
        return SD_EXIT_OK;
    }
    if (o.install_rules || o.remove_rules) {
        rc = rules_only(&o, plan);
        free(plan);
        return rc;
    }
    if (!has_net_admin()) {
        fprintf(stderr, "slowdown run: needs CAP_NET_ADMIN (root, or a service's ambient capability) for NFQUEUE\n");
        free(plan);
        return SD_EXIT_ERR;
    }
    rc = run(&o, plan);
    free(plan);
    return rc;
}
