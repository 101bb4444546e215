/*
 * bench_engine.c - the censor's offline throughput on one capture, against
 * the plain libpcap read loop on the same file, in the same run.
 *
 *   bench_engine [-P PRESET] [-r RUNS] [-m MAX_FLOWS] [--file-only | --mem-only] FILE
 *
 * Figures (each the best of RUNS, default 3; the file is in the page cache
 * after the first pass):
 *   libpcap   pcap_next_ex over the file, touching each packet: the floor.
 *   file      the same loop plus sd_pkt_decode and sd_engine_packet, with the
 *             flow tracking 'slowdown pcap' uses (reports, names), one core.
 *   mem       the capture read into memory first (I/O not measured), then
 *             decode + engine, tracking off (what an inline worker does).
 *   mem+track as mem, with tracking on.
 *   w1, w2    one worker thread over every packet, then two threads, each
 *             with its own engine, over the packets pre-partitioned in memory
 *             by sd_engine_flow_hash (as a dispatcher or the NIC's RSS would
 *             split them): the scaling is w2 / w1.
 * Peak RSS is getrusage's ru_maxrss (it includes the capture held in memory).
 * The last line repeats the figures as key=value pairs for bench/run.sh.
 */
#include <getopt.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "clipolicy.h"
#include "engine.h"
#include "pkt.h"
#include "policy.h"

struct rec {
    uint64_t ts, off;
    uint32_t len;
};

struct cap {
    uint8_t *data;
    size_t used;
    struct rec *r;
    size_t n;
    int dlt;
};

struct job {
    const struct cap *c;
    const uint32_t *idx;   /* NULL: every packet */
    size_t n;
    const struct sd_policy *pol;
    bool track;
    uint32_t max_flows;
    pthread_barrier_t *start;
    uint64_t t0, t1, drops, flows;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static pcap_t *open_file(const char *path)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc)
        fprintf(stderr, "bench_engine: %s: %s\n", path, err);
    return pc;
}

static uint64_t ts_of(const struct pcap_pkthdr *h)
{
    return (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec; /* nano precision */
}

/* ---- the floor: libpcap alone ---- */

static int run_libpcap(const char *path, uint64_t *ns, uint64_t *packets)
{
    pcap_t *pc = open_file(path);
    if (!pc)
        return -1;
    struct pcap_pkthdr *h;
    const u_char *d;
    uint64_t acc = 0, n = 0, t0 = now_ns();
    while (pcap_next_ex(pc, &h, &d) == 1) {
        acc += h->caplen + ts_of(h) + (h->caplen ? d[0] + d[h->caplen - 1] : 0);
        n++;
    }
    *ns = now_ns() - t0;
    *packets = n;
    pcap_close(pc);
    return acc == 42 ? 1 : 0; /* keeps the loop's reads */
}

/* ---- the engine ---- */

static void on_flow_end(void *arg, const struct sd_flow_report *r)
{
    (*(uint64_t *)arg) += r->packets[0] + (r->sni.p != NULL);
}

static struct sd_engine *engine(const struct sd_policy *pol, bool track, uint32_t max_flows, uint64_t *sink)
{
    struct sd_engine_config cfg = {.max_flows = max_flows, .track = track, .arg = sink};
    if (track)
        cfg.on_flow_end = on_flow_end;
    struct sd_engine *e = sd_engine_new(pol, &cfg);
    if (!e) {
        fprintf(stderr, "bench_engine: out of memory\n");
        exit(1);
    }
    return e;
}

/* libpcap + decode + engine, as 'slowdown pcap' runs them. */
static int run_file(const char *path, const struct sd_policy *pol, uint32_t max_flows, uint64_t *ns, uint64_t *drops)
{
    pcap_t *pc = open_file(path);
    if (!pc)
        return -1;
    uint64_t sink = 0;
    struct sd_engine *e = engine(pol, true, max_flows, &sink);
    int dlt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *d;
    uint64_t t0 = now_ns();
    while (pcap_next_ex(pc, &h, &d) == 1) {
        struct sd_pkt pkt;
        struct sd_verdict v;
        if (sd_pkt_decode(&pkt, dlt, d, h->caplen) == 0) {
            sd_engine_packet(e, &pkt, ts_of(h), &v);
            *drops += v.kind != SD_V_PASS;
        }
    }
    *ns = now_ns() - t0;
    sd_engine_free(e);
    pcap_close(pc);
    return 0;
}

/* The timed loop (its own function, so callgrind can collect just this:
 * --toggle-collect=process). The next packets' headers are prefetched, as a
 * reader handing over a batch would have them in cache. */
static __attribute__((noinline)) void process(struct job *j, struct sd_engine *e)
{
    const struct cap *c = j->c;
    for (size_t i = 0; i < j->n; i++) {
        if (i + 4 < j->n)
            __builtin_prefetch(c->data + c->r[j->idx ? j->idx[i + 4] : i + 4].off);
        const struct rec *r = &c->r[j->idx ? j->idx[i] : i];
        struct sd_pkt pkt;
        struct sd_verdict v;
        if (sd_pkt_decode(&pkt, c->dlt, c->data + r->off, r->len) == 0) {
            sd_engine_packet(e, &pkt, r->ts, &v);
            j->drops += v.kind != SD_V_PASS;
        }
    }
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    uint64_t sink = 0;
    struct sd_engine *e = engine(j->pol, j->track, j->max_flows, &sink);
    if (j->start)
        pthread_barrier_wait(j->start);
    j->t0 = now_ns();
    process(j, e);
    j->t1 = now_ns();
    struct sd_engine_stats st;
    sd_engine_get_stats(e, &st);
    j->flows = st.flows_created;
    sd_engine_free(e);
    return NULL;
}

/* ---- the capture in memory ---- */

static int load(const char *path, struct cap *c)
{
    struct stat sb;
    pcap_t *pc = open_file(path);
    if (!pc || stat(path, &sb) != 0)
        return -1;
    size_t cap_r = 1 << 20;
    c->data = malloc((size_t)sb.st_size);
    c->r = malloc(cap_r * sizeof(*c->r));
    c->dlt = pcap_datalink(pc);
    struct pcap_pkthdr *h;
    const u_char *d;
    while (c->data && c->r && pcap_next_ex(pc, &h, &d) == 1) {
        if (c->n == cap_r) {
            cap_r *= 2;
            struct rec *nr = realloc(c->r, cap_r * sizeof(*c->r));
            if (!nr)
                break;
            c->r = nr;
        }
        if (c->used + h->caplen > (size_t)sb.st_size)
            break;
        memcpy(c->data + c->used, d, h->caplen);
        c->r[c->n++] = (struct rec){ts_of(h), c->used, h->caplen};
        c->used += h->caplen;
    }
    pcap_close(pc);
    return c->data && c->r ? 0 : -1;
}

/* Splits the packets between two workers by flow hash. */
static void partition(const struct cap *c, uint32_t *idx[2], size_t n[2])
{
    for (int w = 0; w < 2; w++) {
        idx[w] = malloc(c->n * sizeof(uint32_t));
        n[w] = 0;
        if (!idx[w])
            exit(1);
    }
    for (size_t i = 0; i < c->n; i++) {
        struct sd_pkt pkt;
        uint32_t h = sd_pkt_decode(&pkt, c->dlt, c->data + c->r[i].off, c->r[i].len) == 0 ? sd_engine_flow_hash(&pkt) : 0;
        int w = (int)(h & 1);
        idx[w][n[w]++] = (uint32_t)i;
    }
}

/* Best wall time of |runs| runs of |nw| workers (1 or 2). */
static uint64_t run_workers(const struct cap *c, const struct sd_policy *pol, uint32_t max_flows, int nw, bool track,
                            uint32_t *idx[2], const size_t n[2], int runs, uint64_t *drops)
{
    uint64_t best = UINT64_MAX;
    for (int k = 0; k < runs; k++) {
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, (unsigned)nw);
        struct job j[2];
        pthread_t th[2];
        for (int w = 0; w < nw; w++) {
            j[w] = (struct job){.c = c, .idx = nw == 2 ? idx[w] : NULL, .n = nw == 2 ? n[w] : c->n, .pol = pol,
                                .track = track, .max_flows = max_flows, .start = &b};
            if (pthread_create(&th[w], NULL, run_job, &j[w]) != 0)
                exit(1);
        }
        uint64_t t0 = UINT64_MAX, t1 = 0, d = 0;
        for (int w = 0; w < nw; w++) {
            pthread_join(th[w], NULL);
            t0 = SD_MIN(t0, j[w].t0);
            t1 = SD_MAX(t1, j[w].t1);
            d += j[w].drops;
        }
        pthread_barrier_destroy(&b);
        best = SD_MIN(best, t1 - t0);
        *drops = d;
    }
    return best;
}

static double mpps(uint64_t packets, uint64_t ns)
{
    return ns ? (double)packets * 1e3 / (double)ns : 0;
}

struct figures {
    uint64_t packets, t_pcap, t_file, drops_file;
    uint64_t t_mem, t_trk, t_w2, drops_mem;
    double split;
    bool mem;
};

/* The in-memory figures: one worker without and with tracking, two workers. */
static int mem_figures(const char *path, const struct sd_policy *pol, uint32_t max_flows, int runs, struct figures *f)
{
    struct cap c = {0};
    if (load(path, &c) != 0) {
        fprintf(stderr, "bench_engine: cannot load %s\n", path);
        return -1;
    }
    uint32_t *idx[2];
    size_t n[2];
    uint64_t d = 0;
    partition(&c, idx, n);
    f->t_mem = run_workers(&c, pol, max_flows, 1, false, idx, n, runs, &f->drops_mem);
    f->t_trk = run_workers(&c, pol, max_flows, 1, true, idx, n, runs, &d);
    f->t_w2 = run_workers(&c, pol, max_flows, 2, false, idx, n, runs, &d);
    f->split = (double)n[0] / (double)c.n;
    f->packets = c.n;
    f->mem = true;
    free(idx[0]);
    free(idx[1]);
    free(c.data);
    free(c.r);
    return 0;
}

static void print_figures(const struct figures *f)
{
    double pk = (double)f->packets;
    printf("%-34s %8.3f Mpps %8.1f ns/packet\n", "libpcap read loop (floor)", mpps(f->packets, f->t_pcap),
           (double)f->t_pcap / pk);
    printf("%-34s %8.3f Mpps %8.1f ns/packet  %llu dropped\n", "file: libpcap+decode+engine+track",
           mpps(f->packets, f->t_file), (double)f->t_file / pk, (unsigned long long)f->drops_file);
    if (f->mem) {
        printf("%-34s %8.3f Mpps %8.1f ns/packet  %llu dropped\n", "mem: decode+engine", mpps(f->packets, f->t_mem),
               (double)f->t_mem / pk, (unsigned long long)f->drops_mem);
        printf("%-34s %8.3f Mpps %8.1f ns/packet\n", "mem: decode+engine+track", mpps(f->packets, f->t_trk),
               (double)f->t_trk / pk);
        printf("%-34s %8.3f Mpps  scaling %.2fx (split %.1f%% / %.1f%%)\n", "mem: two workers",
               mpps(f->packets, f->t_w2), (double)f->t_mem / (double)f->t_w2, 100 * f->split, 100 * (1 - f->split));
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("key packets=%llu libpcap_mpps=%.4f file_mpps=%.4f file_ns=%.1f", (unsigned long long)f->packets,
           mpps(f->packets, f->t_pcap), mpps(f->packets, f->t_file), (double)f->t_file / pk);
    if (f->mem)
        printf(" mem_mpps=%.4f mem_ns=%.1f memtrack_mpps=%.4f w2_mpps=%.4f scale2=%.3f", mpps(f->packets, f->t_mem),
               (double)f->t_mem / pk, mpps(f->packets, f->t_trk), mpps(f->packets, f->t_w2),
               (double)f->t_mem / (double)f->t_w2);
    printf(" rss_mb=%.1f\n", (double)ru.ru_maxrss / 1024.0);
}

int main(int argc, char **argv)
{
    struct sd_clipolicy cp = {.preset = "tw21-exact"};
    int runs = 3, o;
    bool file_only = false, mem_only = false;
    uint32_t max_flows = 0;
    static const struct option opts[] = {{"file-only", no_argument, NULL, 'F'}, {"mem-only", no_argument, NULL, 'M'}, {0}};
    while ((o = getopt_long(argc, argv, "P:r:m:", opts, NULL)) != -1) {
        if (o == 'P')
            cp.preset = optarg;
        else if (o == 'r')
            runs = atoi(optarg) > 0 ? atoi(optarg) : 1;
        else if (o == 'm')
            max_flows = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 'F')
            file_only = true;
        else if (o == 'M')
            mem_only = true;
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "Usage: bench_engine [-P PRESET] [-r RUNS] [-m MAX_FLOWS] [--file-only | --mem-only] FILE\n");
        return 2;
    }
    const char *path = argv[optind];
    struct sd_policy *pol = sd_clipolicy_build(&cp, "bench_engine", "tw21-exact");
    if (!pol)
        return 1;
    struct figures f = {.t_pcap = UINT64_MAX, .t_file = UINT64_MAX};
    for (int k = 0; k < runs && !mem_only; k++) {
        uint64_t t, t2;
        f.drops_file = 0;
        if (run_libpcap(path, &t, &f.packets) < 0 || run_file(path, pol, max_flows, &t2, &f.drops_file) < 0)
            return 1;
        f.t_pcap = SD_MIN(f.t_pcap, t);
        f.t_file = SD_MIN(f.t_file, t2);
    }
    if (!file_only && mem_figures(path, pol, max_flows, runs, &f) != 0)
        return 1;
    if (mem_only)
        f.t_pcap = f.t_file = 0;
    print_figures(&f);
    sd_policy_free(pol);
    return 0;
}
