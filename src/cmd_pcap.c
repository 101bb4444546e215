/*
 * cmd_pcap.c - 'slowdown pcap': the censor over captured traffic.
 *
 * Reads pcap and pcapng files with libpcap (nanosecond timestamps where the
 * file has them; classic pcap without a filter goes through the faster
 * reader of pcapfile.h, which yields the same packets), feeds every packet
 * to one engine in file order with its capture time, writes what the
 * censor let through with -o, and prints the flows (a table, or the JSON
 * lines of the interface contract). Several files are one capture, read one
 * after the other.
 */
#include <errno.h>
#include <getopt.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "clipolicy.h"
#include "engine.h"
#include "eventlog.h"
#include "pcapfile.h"
#include "pkt.h"
#include "policy.h"
#include "report.h"

struct run {
    const char *cmd;
    pcap_dumper_t *dump;
    pcap_t *dead;
    int out_dlt;
    uint8_t link[128]; /* link header of the latest packet, for rewritten packets */
    size_t link_len;
    unsigned long long frames, undecoded;
    bool out_is_file; /* -o is a regular file: removed when the run fails */
};

static void usage(FILE *f, const char *cmd)
{
    fprintf(f,
            "Usage: slowdown %s [OPTIONS] FILE...\n\n"
            "Runs the censor over captured traffic (pcap or pcapng) and prints one line per flow.\n\n"
            "Options:\n%s"
            "  --json             one JSON line per flow, then a summary line\n"
            "  -o, --write FILE   write the packets the censor let through (pcap)\n"
            "  -f, --filter BPF   only packets matching this capture filter\n"
            "  --why              explain each flow: what was inspected, parsed and decided\n"
            "  --events FILE      every decision as an eve.json-shaped JSON line ('-': stdout)\n"
            "  --max-flows N      flow table capacity (default 1048576)\n"
            "  -h, --help         this help\n\n"
            "Without --preset or --policy the 'observe' preset is used (parse everything, act on nothing).\n",
            cmd, sd_clipolicy_help);
}

static bool dlt_supported(int dlt)
{
    switch (dlt) {
    case SD_DLT_NULL:
    case SD_DLT_EN10MB:
    case SD_DLT_RAW:
    case SD_DLT_RAW_BSD:
    case SD_DLT_RAW_FILE:
    case SD_DLT_LOOP:
    case SD_DLT_LINUX_SLL:
    case SD_DLT_IPV4:
    case SD_DLT_IPV6:
    case SD_DLT_LINUX_SLL2:
        return true;
    }
    return false;
}

/* libpcap's messages about a file often start with the file's name; the
 * command names it already. */
static const char *pcap_msg(const char *msg, const char *path)
{
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static void write_frame(struct run *r, uint64_t ts_ns, const uint8_t *data, size_t len)
{
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(ts_ns / 1000000000u);
    h.ts.tv_usec = (suseconds_t)((ts_ns % 1000000000u) / 1000u);
    h.caplen = h.len = (bpf_u_int32)len;
    pcap_dump((u_char *)r->dump, &h, data);
}

/* A rewritten or released L3 packet gets the link header of the packet it
 * came from. */
static void write_l3(struct run *r, uint64_t ts_ns, const uint8_t *l3, size_t len)
{
    uint8_t buf[65536 + 128];
    if (r->link_len + len > sizeof(buf))
        return;
    memcpy(buf, r->link, r->link_len);
    memcpy(buf + r->link_len, l3, len);
    write_frame(r, ts_ns, buf, r->link_len + len);
}

static void on_release(void *arg, const uint8_t *l3, size_t len, uint64_t ts_ns)
{
    struct run *r = ((void **)arg)[1];
    if (r->dump)
        write_l3(r, ts_ns, l3, len);
}

static void on_flow_end(void *arg, const struct sd_flow_report *fr)
{
    sd_report_add(((void **)arg)[0], fr);
}

static void on_event(void *arg, const struct sd_event *ev)
{
    FILE *f = ((void **)arg)[2];
    if (f)
        sd_eventlog_write(f, ev);
}

/* Opens the -o file on the first capture; later ones must share its link type. */
static int open_output(struct run *r, const char *path, int dlt, const char *out_path)
{
    if (out_path && !r->dump) {
        /* Raw IP read as DLT 14 (its value on some BSDs) has no savefile
         * link type of its own on this system: it is written as raw IP. */
        int odlt = dlt == SD_DLT_RAW_BSD ? SD_DLT_RAW : dlt;
        r->dead = pcap_open_dead_with_tstamp_precision(odlt, 262144, PCAP_TSTAMP_PRECISION_MICRO);
        r->dump = r->dead ? pcap_dump_open(r->dead, out_path) : NULL;
        if (!r->dump) {
            fprintf(stderr, "slowdown %s: %s: %s\n", r->cmd, out_path,
                    r->dead ? pcap_msg(pcap_geterr(r->dead), out_path) : "cannot open");
            return 1;
        }
        r->out_dlt = dlt;
        struct stat st;
        r->out_is_file = fstat(fileno(pcap_dump_file(r->dump)), &st) == 0 && S_ISREG(st.st_mode);
    } else if (r->dump && dlt != r->out_dlt) {
        fprintf(stderr, "slowdown %s: %s: link type %d differs from the first file's (%d); -o needs one link type\n",
                r->cmd, path, dlt, r->out_dlt);
        return 1;
    }
    return 0;
}

/* One captured frame through the censor (and to -o); |pkt| is its decoding,
 * or NULL when it did not decode. */
static void one_decoded(struct run *r, struct sd_engine *e, uint64_t ts, const uint8_t *data, uint32_t caplen,
                        const struct sd_pkt *pkt)
{
    struct sd_verdict v = {.kind = SD_V_PASS};
    r->frames++;
    if (pkt) {
        if (r->dump && pkt->l3_off <= sizeof(r->link)) {
            memcpy(r->link, data, pkt->l3_off);
            r->link_len = pkt->l3_off;
        }
        sd_engine_packet(e, pkt, ts, &v);
    } else {
        r->undecoded++;
    }
    if (!r->dump)
        return;
    if (v.kind == SD_V_PASS)
        write_frame(r, ts, data, caplen);
    else if (v.kind == SD_V_REPLACE)
        write_l3(r, ts, v.data, v.len);
}

static void one_frame(struct run *r, struct sd_engine *e, int dlt, uint64_t ts, const uint8_t *data, uint32_t caplen)
{
    struct sd_pkt pkt;
    one_decoded(r, e, ts, data, caplen, sd_pkt_decode(&pkt, dlt, data, caplen) == 0 ? &pkt : NULL);
}

/* Classic pcap without a filter: the fast reader (pcapfile.h), a batch of
 * records at a time, each packet announced to the engine a few packets
 * ahead (sd_engine_prefetch) so its flow is in the cache when its turn
 * comes. Returns -1 when the reader does not apply (pcapng, other link
 * types, cannot open: libpcap then reads the file and reports), else the
 * exit status of run_file. */
static int run_fast(struct run *r, struct sd_engine *e, const char *path, const char *out_path)
{
    enum { BATCH = 32, AHEAD = 4 };
    struct sd_pcapfile *f;
    if (sd_pcapfile_open(&f, path) != 0)
        return -1;
    int dlt = sd_pcapfile_dlt(f), n;
    if (open_output(r, path, dlt, out_path)) {
        sd_pcapfile_close(f);
        return 1;
    }
    struct sd_pcaprec rec[BATCH];
    struct sd_pkt pkt[BATCH];
    bool ok[BATCH];
    while ((n = sd_pcapfile_next_batch(f, rec, BATCH)) > 0) {
        for (int i = 0; i < n; i++) {
            ok[i] = sd_pkt_decode(&pkt[i], dlt, rec[i].data, rec[i].caplen) == 0;
            if (i < AHEAD && ok[i])
                sd_engine_prefetch(e, &pkt[i]);
        }
        for (int i = 0; i < n; i++) {
            if (i + AHEAD < n && ok[i + AHEAD])
                sd_engine_prefetch(e, &pkt[i + AHEAD]);
            one_decoded(r, e, rec[i].ts_ns, rec[i].data, rec[i].caplen, ok[i] ? &pkt[i] : NULL);
        }
    }
    if (n < 0)
        fprintf(stderr, "slowdown %s: %s: %s (after %llu packets)\n", r->cmd, path, sd_pcapfile_error(f), r->frames);
    sd_pcapfile_close(f);
    return n < 0;
}

static int run_file(struct run *r, struct sd_engine *e, const char *path, const char *filter, const char *out_path)
{
    int fast = filter ? -1 : run_fast(r, e, path, out_path);
    if (fast >= 0)
        return fast;
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) {
        fprintf(stderr, "slowdown %s: %s: %s\n", r->cmd, path, pcap_msg(err, path));
        return 1;
    }
    int dlt = pcap_datalink(pc);
    int rc = 0;
    if (!dlt_supported(dlt)) {
        const char *name = pcap_datalink_val_to_name(dlt);
        fprintf(stderr, "slowdown %s: %s: unsupported link type %d (%s)\n", r->cmd, path, dlt, name ? name : "unknown");
        pcap_close(pc);
        return 1;
    }
    if (filter) {
        struct bpf_program prog;
        if (pcap_compile(pc, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(pc, &prog) != 0) {
            fprintf(stderr, "slowdown %s: filter '%s': %s\n", r->cmd, filter, pcap_geterr(pc));
            pcap_close(pc);
            return 2;
        }
        pcap_freecode(&prog);
    }
    if (open_output(r, path, dlt, out_path)) {
        pcap_close(pc);
        return 1;
    }

    struct pcap_pkthdr *h;
    const u_char *data;
    int nx;
    while ((nx = pcap_next_ex(pc, &h, &data)) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec; /* nano precision */
        one_frame(r, e, dlt, ts, data, h->caplen);
    }
    if (nx == PCAP_ERROR) {
        fprintf(stderr, "slowdown %s: %s: %s (after %llu packets)\n", r->cmd, path, pcap_geterr(pc), r->frames);
        rc = 1;
    }
    pcap_close(pc);
    return rc;
}

int sd_pcap_cmd(int argc, char **argv, const char *cmd, bool why_default);

/* What the command line asked for. */
struct args {
    struct sd_clipolicy cp;
    bool json, why;
    const char *out, *filter, *events;
    unsigned long max_flows;
};

/* Parses the options. Returns -1 to go on, or the exit status (help, or a
 * usage error reported in one line). */
static int parse_args(struct args *a, int argc, char **argv, const char *cmd)
{
    static const struct option opts[] = {
        SD_CLIPOLICY_OPTIONS,
        {"json", no_argument, NULL, 'j'},
        {"write", required_argument, NULL, 'o'},
        {"filter", required_argument, NULL, 'f'},
        {"why", no_argument, NULL, 'w'},
        {"events", required_argument, NULL, 'e'},
        {"max-flows", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    opterr = 0; /* errors are reported here, in one line */
    while ((c = getopt_long(argc, argv, ":ho:f:", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            a->json = true;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'f':
            a->filter = optarg;
            break;
        case 'w':
            a->why = true;
            break;
        case 'e':
            a->events = optarg;
            break;
        case 'm': {
            char *end;
            a->max_flows = strtoul(optarg, &end, 10);
            if (*end || a->max_flows == 0 || a->max_flows > (1ul << 30) || optarg[0] == '-') {
                fprintf(stderr, "slowdown %s: --max-flows: expected 1 to 1073741824, got '%s'\n", cmd, optarg);
                return SD_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            usage(stdout, cmd);
            return SD_EXIT_OK;
        case ':':
            fprintf(stderr, "slowdown %s: option '%s' needs a value (try 'slowdown %s --help')\n", cmd,
                    argv[optind - 1], cmd);
            return SD_EXIT_USAGE;
        case '?':
            fprintf(stderr, "slowdown %s: unknown option '%s' (try 'slowdown %s --help')\n", cmd, argv[optind - 1],
                    cmd);
            return SD_EXIT_USAGE;
        default:
            if (sd_clipolicy_opt(&a->cp, cmd, c, optarg))
                return SD_EXIT_USAGE;
            break;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "slowdown %s: no capture file given (try 'slowdown %s --help')\n", cmd, cmd);
        return SD_EXIT_USAGE;
    }
    /* Writing over an input would destroy it before it is read. */
    struct stat so, si;
    if (a->out && stat(a->out, &so) == 0) {
        for (int i = optind; i < argc; i++) {
            if (stat(argv[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
                fprintf(stderr, "slowdown %s: -o %s: that is an input file\n", cmd, a->out);
                return SD_EXIT_USAGE;
            }
        }
    }
    return -1;
}

/* Closes the -o file. A run that failed (|rc| != 0) leaves no partial
 * output behind -- when the output is a regular file: never a device or a
 * FIFO (-o /dev/stdout). A write error is a failure too. Returns the new rc. */
static int close_output(struct run *r, const char *cmd, const char *path, int rc)
{
    if (r->dump) {
        if (rc == 0 && (pcap_dump_flush(r->dump) != 0 || ferror(pcap_dump_file(r->dump)))) {
            fprintf(stderr, "slowdown %s: %s: write error\n", cmd, path);
            rc = 1;
        }
        pcap_dump_close(r->dump);
        if (rc != 0 && r->out_is_file)
            remove(path);
    }
    if (r->dead)
        pcap_close(r->dead);
    return rc;
}

int sd_pcap_cmd(int argc, char **argv, const char *cmd, bool why_default)
{
    struct args a = {.why = why_default};
    int st = parse_args(&a, argc, argv, cmd);
    if (st >= 0)
        return st;
    struct sd_policy *pol = sd_clipolicy_build(&a.cp, cmd, "observe");
    if (!pol)
        return SD_EXIT_ERR;
    struct sd_report *rep = sd_report_new();
    struct run r = {.cmd = cmd};
    FILE *events = NULL;
    if (a.events) {
        events = strcmp(a.events, "-") ? fopen(a.events, "w") : stdout;
        if (!events) {
            fprintf(stderr, "slowdown %s: --events %s: %s\n", cmd, a.events, strerror(errno));
            sd_report_free(rep);
            sd_policy_free(pol);
            return SD_EXIT_ERR;
        }
    }
    void *cb[3] = {rep, &r, events};
    struct sd_engine_config cfg = {
        .max_flows = (uint32_t)a.max_flows,
        .track = true,
        .explain = a.why,
        .on_flow_end = on_flow_end,
        .on_release = on_release,
        .on_event = events ? on_event : NULL,
        .arg = cb,
    };
    struct sd_engine *e = rep ? sd_engine_new(pol, &cfg) : NULL;
    if (!e) {
        fprintf(stderr, "slowdown %s: out of memory (try a smaller --max-flows)\n", cmd);
        sd_report_free(rep);
        sd_policy_free(pol);
        return SD_EXIT_ERR;
    }
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++)
        rc = run_file(&r, e, argv[i], a.filter, a.out);
    sd_engine_free(e); /* reports the flows still open */
    /* After an error the flows read so far are still printed (a capture cut
     * short is common), but not an empty table for a file never read. */
    if (rc == 0 || (rc == 1 && r.frames > 0)) {
        if (a.json)
            sd_report_print_json(rep, stdout);
        else
            sd_report_print_table(rep, stdout, a.why);
    }
    rc = close_output(&r, cmd, a.out, rc);
    if (events && events != stdout && fclose(events) != 0) {
        fprintf(stderr, "slowdown %s: --events %s: write error\n", cmd, a.events);
        rc = 1;
    }
    sd_report_free(rep);
    sd_policy_free(pol);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "slowdown %s: cannot write the output\n", cmd);
        return SD_EXIT_ERR;
    }
    return rc == 0 ? SD_EXIT_OK : rc == 2 ? SD_EXIT_USAGE : SD_EXIT_ERR;
}

int sd_pcap_main(int argc, char **argv)
{
    return sd_pcap_cmd(argc, argv, "pcap", false);
}
