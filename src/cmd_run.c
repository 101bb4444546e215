/*
 * cmd_run.c - `slowdown run`: the censor inline on live traffic.
 *
 *   options -> policy (preset/file/inside) -> [--print-rules: print, exit]
 *   -> remove stale rules of this queue -> start workers (queues bound)
 *   -> install rules -> ready -> signals: HUP reload, USR1 stats, INT/TERM stop
 *   -> remove rules (traffic flows unqueued) -> stop workers -> final stats
 *
 * Rules go in after the queues are bound and come out before they are
 * unbound, so no packet meets a queue nobody reads (and --queue-bypass
 * covers a crash). Signals are blocked in every thread and read from a
 * signalfd by the main thread, which is the only one that touches the
 * policy objects and the firewall.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "clipolicy.h"
#include "cmdopt.h"
#include "fwrules.h"
#include "inline.h"
#include "policy.h"

enum { DEFAULT_QUEUE_PACKETS = 64, DEFAULT_CT_MARK = 0x40000000 };

struct opts {
    struct sd_clipolicy cp;
    const char *ready_file;
    bool print_rules, no_rules;
    uint64_t stats_s;
    char ifbuf[256];
    struct sd_fw_config fw;
    struct sd_inline_config in;
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
            "  --queue N          first NFQUEUE number (default 0)\n"
            "  --workers W        queues and threads N..N+W-1 (default 1)\n"
            "  --queue-packets N  queue the first N packets of each connection (default 64;\n"
            "                     0: every packet); flows under an action stay queued\n"
            "  --ct-mark BIT      conntrack mark bit for flows under an action (0x40000000)\n"
            "  --hook H           forward (filter FORWARD, default) or prerouting (mangle\n"
            "                     PREROUTING: also sees packets whose TTL ends here)\n"
            "  --iface IF,...     only packets arriving on these interfaces\n"
            "  --print-rules      print the iptables commands and exit\n"
            "  --no-rules         install no rules (you route packets to the queues)\n"
            "  --no-engine        accept every packet unseen (tests, benchmarks)\n"
            "  --maxlen N         kernel queue length per queue (default 4096)\n"
            "  --fail-closed      drop packets when a queue is full (default: forward them\n"
            "                     uninspected)\n"
            "  --batch N          packets per receive (default 256)\n"
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

/* 0 to go on, else exit status + 1000. */
static int parse(int argc, char **argv, struct opts *o)
{
    /* 0x100-0x103 are the shared policy options (clipolicy.h). */
    enum { O_QUEUE = 0x200, O_WORKERS, O_QP, O_MARK, O_HOOK, O_IFACE, O_PRINT, O_NORULES, O_NOENGINE, O_MAXLEN,
           O_BATCH, O_STATS, O_READY, O_FAILCLOSED };
    static const struct option lo[] = {
        SD_CLIPOLICY_OPTIONS,
        {"queue", 1, NULL, O_QUEUE},     {"workers", 1, NULL, O_WORKERS},    {"queue-packets", 1, NULL, O_QP},
        {"ct-mark", 1, NULL, O_MARK},    {"hook", 1, NULL, O_HOOK},          {"iface", 1, NULL, O_IFACE},
        {"print-rules", 0, NULL, O_PRINT}, {"no-rules", 0, NULL, O_NORULES}, {"no-engine", 0, NULL, O_NOENGINE},
        {"maxlen", 1, NULL, O_MAXLEN},   {"batch", 1, NULL, O_BATCH},        {"stats", 1, NULL, O_STATS},
        {"ready-file", 1, NULL, O_READY}, {"fail-closed", 0, NULL, O_FAILCLOSED}, {"help", 0, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v = 0;
    int c, bad = 0;

    o->fw.queue_packets = DEFAULT_QUEUE_PACKETS;
    o->fw.ct_mark = DEFAULT_CT_MARK;
    o->fw.workers = 1;
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
            bad = parse_num(optarg, UINT32_MAX, &v, "--ct-mark") || (v == 0 && bad_value(optarg, "--ct-mark"));
            o->fw.ct_mark = (uint32_t)v;
            break;
        case O_HOOK:
            if (!strcmp(optarg, "forward"))
                o->fw.hook = SD_FW_FORWARD;
            else if (!strcmp(optarg, "prerouting"))
                o->fw.hook = SD_FW_PREROUTING;
            else
                bad = bad_value(optarg, "--hook");
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
        case O_STATS: bad = parse_num(optarg, 86400, &o->stats_s, "--stats"); break;
        case O_READY: o->ready_file = optarg; break;
        case 'h': usage(stdout); return 1000 + SD_EXIT_OK;
        default:
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
    o->in.queue = o->fw.queue;
    o->in.workers = o->fw.workers;
    o->in.ct_mark = o->fw.queue_packets ? o->fw.ct_mark : 0; /* everything is queued anyway */
    return 0;
}

/* Builds the policy from the options; NULL with the error printed. */
static struct sd_policy *load_policy(const struct opts *o)
{
    return sd_clipolicy_build(&o->cp, "run", "observe");
}

static void print_stats(const struct sd_inline_stats *s)
{
    fprintf(stderr,
            "slowdown run: packets %llu (receives %llu, verdict messages %llu, sends %llu, enobufs %llu, "
            "netlink errors %llu)\n"
            "slowdown run: accepted %llu dropped %llu replaced %llu held %llu released %llu; "
            "flows %llu (active %llu) triggers %llu; ct marks %llu (errors %llu); undecodable %llu; "
            "i/o errors %llu\n",
            (unsigned long long)s->nfq.packets, (unsigned long long)s->nfq.recv_calls,
            (unsigned long long)s->nfq.verdict_msgs, (unsigned long long)s->nfq.send_calls,
            (unsigned long long)s->nfq.enobufs, (unsigned long long)s->nfq.nl_errors,
            (unsigned long long)s->accepted, (unsigned long long)s->dropped, (unsigned long long)s->replaced,
            (unsigned long long)s->held, (unsigned long long)s->released, (unsigned long long)s->engine.flows_created,
            (unsigned long long)s->engine.flows_active, (unsigned long long)s->engine.triggers,
            (unsigned long long)s->ct_marks, (unsigned long long)s->ct_errors, (unsigned long long)s->decode_errors,
            (unsigned long long)s->io_errors);
}

/* SIGHUP: a new policy replaces the old one only if it parses. */
static void reload(const struct opts *o, struct sd_inline *in, struct sd_policy **pol)
{
    struct sd_policy *next = load_policy(o);

    if (!next) {
        fprintf(stderr, "slowdown run: reload failed; the previous policy stays in force\n");
        return;
    }
    if (sd_inline_set_policy(in, next) < 0) {
        /* A worker did not confirm: both policies may be in use, keep both alive. */
        fprintf(stderr, "slowdown run: a worker did not take the new policy in time\n");
        return;
    }
    sd_policy_free(*pol);
    *pol = next;
    fprintf(stderr, "slowdown run: policy reloaded (%s)\n", next->name);
}

/* Waits for signals until told to stop. */
static void serve_signals(const struct opts *o, int sfd, struct sd_inline *in, struct sd_policy **pol)
{
    int timeout = o->stats_s ? (int)o->stats_s * 1000 : -1;
    struct sd_inline_stats st;

    for (;;) {
        struct pollfd p = {sfd, POLLIN, 0};
        int rc = poll(&p, 1, timeout);
        if (rc == 0) {
            sd_inline_get_stats(in, &st);
            print_stats(&st);
            continue;
        }
        struct signalfd_siginfo si;
        if (rc < 0 || read(sfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo == SIGHUP) {
            reload(o, in, pol);
        } else if (si.ssi_signo == SIGUSR1) {
            sd_inline_get_stats(in, &st);
            print_stats(&st);
        } else {
            return;
        }
    }
}

static int remove_stale(const struct opts *o)
{
    char err[400];
    int n = sd_fw_remove(&o->fw, err, sizeof(err));

    if (n < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        return -1;
    }
    if (n > 0)
        fprintf(stderr, "slowdown run: removed %d stale rules and chains of queue %u (an earlier run)\n", n,
                o->fw.queue);
    return 0;
}

static int run(struct opts *o, struct sd_fw_plan *plan)
{
    char err[512];
    sigset_t set;
    struct sd_policy *pol = o->in.no_engine ? NULL : load_policy(o);
    int rc = SD_EXIT_ERR;

    if (!o->in.no_engine && !pol)
        return SD_EXIT_ERR;
    sigemptyset(&set);
    for (int s = 0; s < 4; s++)
        sigaddset(&set, (int[]){SIGINT, SIGTERM, SIGHUP, SIGUSR1}[s]);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the workers start: they inherit it */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0 || (!o->no_rules && remove_stale(o) < 0))
        goto out;
    struct sd_inline *in = sd_inline_start(&o->in, pol, err, sizeof(err));
    if (!in) {
        fprintf(stderr, "slowdown run: %s\n", err);
        goto out;
    }
    if (!o->no_rules && sd_fw_plan_apply(plan, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown run: %s\n", err);
        sd_fw_remove(&o->fw, err, sizeof(err));
        sd_inline_stop(in);
        goto out;
    }
    char queues[32];
    if (o->fw.workers > 1)
        snprintf(queues, sizeof(queues), "queues %u-%u", o->fw.queue, o->fw.queue + o->fw.workers - 1u);
    else
        snprintf(queues, sizeof(queues), "queue %u", o->fw.queue);
    fprintf(stderr, "slowdown run: %s on %s, %s, %s\n", pol ? pol->name : "no engine", queues,
            o->no_rules ? "no rules installed" : o->fw.hook ? "mangle PREROUTING" : "filter FORWARD",
            o->fw.queue_packets ? "first packets of each connection" : "every packet");
    if (o->ready_file) {
        FILE *f = fopen(o->ready_file, "w");
        if (f)
            fclose(f);
    }
    serve_signals(o, sfd, in, &pol);
    if (!o->no_rules && sd_fw_remove(&o->fw, err, sizeof(err)) < 0)
        fprintf(stderr, "slowdown run: removing the rules: %s\n", err);
    struct sd_inline_stats st;
    sd_inline_get_stats(in, &st);
    sd_inline_stop(in);
    print_stats(&st);
    rc = SD_EXIT_OK;
out:
    if (sfd >= 0)
        close(sfd);
    sd_policy_free(pol);
    return rc;
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
        sd_fw_plan_print(plan, stdout);
        free(plan);
        return SD_EXIT_OK;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "slowdown run: needs root (CAP_NET_ADMIN for NFQUEUE and iptables)\n");
        free(plan);
        return SD_EXIT_ERR;
    }
    rc = run(&o, plan);
    free(plan);
    return rc;
}
