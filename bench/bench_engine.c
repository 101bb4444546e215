/*
 * bench_engine.c - the censor's offline throughput on one capture, against
 * the plain libpcap read loop on the same file, in the same run.
 *
 *   bench_engine [-P PRESET] [-r RUNS] [-m MAX_FLOWS] [--file-only | --mem-only] FILE
 *
 * Figures (each the best of RUNS, default 3; the file is in the page cache
 * after the first pass):
 *   libpcap   pcap_next_ex over the file, touching each packet: the floor.
 *   reader    the same with pcapfile.h, the reader 'slowdown pcap' uses for
 *             classic pcap files.
 *   file      pcapfile + sd_pkt_decode + sd_engine_packet, with the flow
 *             tracking 'slowdown pcap' uses (reports, names), one core: the
 *             product's path without the printing.
 *   file/libpcap  the same over libpcap (the path for pcapng and -f).
 *   mem       the capture read into memory first (I/O not measured), then
 *             decode + engine, tracking off (what an inline worker does).
 *   mem+track as mem, with tracking on.
 *   w2        two threads, each with its own engine, each over its own
 *             share of the packets, split by sd_engine_flow_hash (as a
 *             dispatcher or the NIC's RSS would split them) into two
 *             contiguous captures in memory. The scaling compares the
 *             same two shares run in sequence on one thread (two engines)
 *             and in parallel on two: the median over 9 pairs of runs, each
 *             pair close together in time so that both see the same
 *             neighbours (the lowest and highest are printed too).
 *             "best" is the fastest sequential run over the fastest parallel
 *             one: on a shared machine whose runs sometimes take several
 *             times as long (another guest on the host), the pair that
 *             both ran undisturbed.
 *   floor2    the same pairs for a loop that only reads the packets the way
 *             the engine's loop does (no engine): what the machine's memory
 *             lets two cores gain on these bytes at that moment.
 *
 * Each phase is timed twice: by the wall clock, and by the CPU time of the
 * thread doing the work (CLOCK_THREAD_CPUTIME_ID, user + system). On an idle
 * core they agree; on a shared machine the CPU time is the one that does not
 * count other jobs' time slices, so it is the default figure. The two-worker
 * scaling by CPU time is the sequential run's CPU time over the larger of the
 * two workers' CPU times: what the wall clock shows when both cores are free.
 *
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
#include "pcapfile.h"
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

/* A measured span: wall clock and the thread's CPU time, in ns. */
struct span {
    uint64_t wall, cpu;
};

struct job {
    _Alignas(64) const struct cap *c; /* one cache line each: the workers' jobs sit side by side */
    const struct sd_policy *pol;
    bool track, touch; /* touch: the reading floor, no engine (process_touch) */
    uint32_t max_flows;
    pthread_barrier_t *start;
    uint64_t w0, w1, cpu, drops;
};

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct span span_start(void)
{
    return (struct span){clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_THREAD_CPUTIME_ID)};
}

static struct span span_end(struct span s)
{
    return (struct span){clock_ns(CLOCK_MONOTONIC) - s.wall, clock_ns(CLOCK_THREAD_CPUTIME_ID) - s.cpu};
}

static void span_best(struct span *best, struct span s)
{
    best->wall = SD_MIN(best->wall, s.wall);
    best->cpu = SD_MIN(best->cpu, s.cpu);
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

static int run_libpcap(const char *path, struct span *t, uint64_t *packets)
{
    pcap_t *pc = open_file(path);
    if (!pc)
        return -1;
    struct pcap_pkthdr *h;
    const u_char *d;
    uint64_t acc = 0, n = 0;
    struct span s = span_start();
    while (pcap_next_ex(pc, &h, &d) == 1) {
        acc += h->caplen + ts_of(h) + (h->caplen ? d[0] + d[h->caplen - 1] : 0);
        n++;
    }
    *t = span_end(s);
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

/* pcapfile.h alone, touching each packet. */
static int run_reader(const char *path, struct span *t)
{
    struct sd_pcapfile *r;
    if (sd_pcapfile_open(&r, path) != 0)
        return -1;
    const uint8_t *d;
    uint32_t caplen;
    uint64_t ts, acc = 0;
    struct span s = span_start();
    while (sd_pcapfile_next(r, &d, &caplen, &ts) == 1)
        acc += caplen + ts + (caplen ? d[0] + d[caplen - 1] : 0);
    *t = span_end(s);
    sd_pcapfile_close(r);
    return acc == 42 ? 1 : 0;
}

static inline void one(struct sd_engine *e, int dlt, const uint8_t *d, uint32_t caplen, uint64_t ts, uint64_t *drops)
{
    struct sd_pkt pkt;
    struct sd_verdict v;
    if (sd_pkt_decode(&pkt, dlt, d, caplen) == 0) {
        sd_engine_packet(e, &pkt, ts, &v);
        *drops += v.kind != SD_V_PASS;
    }
}

/* reader + decode + engine with tracking, as 'slowdown pcap' runs them;
 * over libpcap when |use_libpcap|. */
static int run_file(const char *path, bool use_libpcap, const struct sd_policy *pol, uint32_t max_flows, struct span *t,
                    uint64_t *drops)
{
    struct sd_pcapfile *r = NULL;
    pcap_t *pc = NULL;
    if (use_libpcap ? !(pc = open_file(path)) : sd_pcapfile_open(&r, path) != 0)
        return -1;
    uint64_t sink = 0;
    struct sd_engine *e = engine(pol, true, max_flows, &sink);
    struct span s = span_start();
    if (pc) {
        int dlt = pcap_datalink(pc);
        struct pcap_pkthdr *h;
        const u_char *d;
        while (pcap_next_ex(pc, &h, &d) == 1)
            one(e, dlt, d, h->caplen, ts_of(h), drops);
    } else {
        int dlt = sd_pcapfile_dlt(r);
        const uint8_t *d;
        uint32_t caplen;
        uint64_t ts;
        while (sd_pcapfile_next(r, &d, &caplen, &ts) == 1)
            one(e, dlt, d, caplen, ts, drops);
    }
    *t = span_end(s);
    sd_engine_free(e);
    if (pc)
        pcap_close(pc);
    sd_pcapfile_close(r);
    return 0;
}

/* The timed loop (its own function, so callgrind can collect just this:
 * --toggle-collect=process). Packets are decoded AHEAD packets before
 * their turn and announced to the engine (sd_engine_prefetch), as
 * 'slowdown pcap' does; the frame bytes further ahead are prefetched, as a
 * reader handing over a batch would have them in cache. */
static __attribute__((noinline)) void process(struct job *j, struct sd_engine *e)
{
    enum { AHEAD = 4, RING = 8 };
    const struct cap *c = j->c;
    size_t n = c->n;
    uint64_t drops = 0; /* a local: the two workers' jobs share cache lines */
    struct sd_pkt pk[RING];
    bool ok[RING];
    for (size_t i = 0; i < n + AHEAD; i++) {
        if (i + 8 < n)
            __builtin_prefetch(c->data + c->r[i + 8].off);
        if (i < n) {
            ok[i % RING] = sd_pkt_decode(&pk[i % RING], c->dlt, c->data + c->r[i].off, c->r[i].len) == 0;
            if (ok[i % RING])
                sd_engine_prefetch(e, &pk[i % RING]);
        }
        if (i >= AHEAD && ok[(i - AHEAD) % RING]) {
            struct sd_verdict v;
            sd_engine_packet(e, &pk[(i - AHEAD) % RING], c->r[i - AHEAD].ts, &v);
            drops += v.kind != SD_V_PASS;
        }
    }
    j->drops = drops;
}

/* The floor for the scaling: the same packets read the way process() reads
 * them (the record, the frame's first bytes, the same prefetch), no engine.
 * Two of these in parallel show what the machine's memory gives two cores. */
static __attribute__((noinline)) void process_touch(struct job *j)
{
    enum { PASSES = 4 }; /* a single pass is too short to time against thread start-up */
    const struct cap *c = j->c;
    uint64_t acc = 0;
    for (int k = 0; k < PASSES; k++)
        for (size_t i = 0; i < c->n; i++) {
            if (i + 8 < c->n)
                __builtin_prefetch(c->data + c->r[i + 8].off);
            const uint8_t *d = c->data + c->r[i].off;
            acc += c->r[i].ts + c->r[i].len + d[0] + d[c->r[i].len > 40 ? 40 : 0];
        }
    j->drops = acc & 1;
}

static void *run_job(void *arg)
{
    struct job *j = arg;
    uint64_t sink = 0;
    struct sd_engine *e = j->touch ? NULL : engine(j->pol, j->track, j->max_flows, &sink);
    if (j->start)
        pthread_barrier_wait(j->start);
    j->w0 = clock_ns(CLOCK_MONOTONIC);
    uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (e)
        process(j, e);
    else
        process_touch(j);
    j->cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    j->w1 = clock_ns(CLOCK_MONOTONIC);
    sd_engine_free(e);
    return NULL;
}

/* ---- the capture in memory ---- */

/* Reads the capture into memory: into one struct cap, or, with |nw| 2,
 * into two, each packet going to worker sd_engine_flow_hash % 2 (as a
 * dispatcher or the NIC's RSS would send it), so that each worker reads a
 * contiguous stream of its own packets. */
static int load(const char *path, struct cap *c, int nw)
{
    struct stat sb;
    pcap_t *pc = open_file(path);
    if (!pc || stat(path, &sb) != 0)
        return -1;
    size_t cap_r[2] = {1 << 20, 1 << 20};
    for (int w = 0; w < nw; w++) {
        c[w] = (struct cap){.data = malloc((size_t)sb.st_size), .r = malloc(cap_r[w] * sizeof(*c[w].r)),
                            .dlt = pcap_datalink(pc)};
        if (!c[w].data || !c[w].r)
            return -1;
    }
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        struct sd_pkt pkt;
        int w = nw == 2 && sd_pkt_decode(&pkt, c->dlt, d, h->caplen) == 0 ? (int)(sd_engine_flow_hash(&pkt) & 1) : 0;
        struct cap *cw = &c[w];
        if (cw->n == cap_r[w]) {
            cap_r[w] *= 2;
            struct rec *nr = realloc(cw->r, cap_r[w] * sizeof(*cw->r));
            if (!nr)
                return -1;
            cw->r = nr;
        }
        if (cw->used + h->caplen > (size_t)sb.st_size)
            return -1;
        memcpy(cw->data + cw->used, d, h->caplen);
        cw->r[cw->n++] = (struct rec){ts_of(h), cw->used, h->caplen};
        cw->used += h->caplen;
    }
    pcap_close(pc);
    return 0;
}

static void unload(struct cap *c, int nw)
{
    for (int w = 0; w < nw; w++) {
        free(c[w].data);
        free(c[w].r);
    }
}

/* Best of |runs| runs of |nw| workers (1 or 2), worker w over c[w]: wall
 * time from the first start to the last end, and the largest worker CPU
 * time. */
static struct span run_workers(const struct cap *c, const struct sd_policy *pol, uint32_t max_flows, int nw, bool track,
                               int runs, uint64_t *drops, bool touch)
{
    struct span best = {UINT64_MAX, UINT64_MAX};
    for (int k = 0; k < runs; k++) {
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, (unsigned)nw);
        struct job j[2];
        pthread_t th[2];
        for (int w = 0; w < nw; w++) {
            j[w] = (struct job){.c = &c[w], .pol = pol, .track = track, .touch = touch, .max_flows = max_flows,
                                .start = &b};
            if (pthread_create(&th[w], NULL, run_job, &j[w]) != 0)
                exit(1);
        }
        uint64_t w0 = UINT64_MAX, w1 = 0, cpu = 0, d = 0;
        for (int w = 0; w < nw; w++) {
            pthread_join(th[w], NULL);
            w0 = SD_MIN(w0, j[w].w0);
            w1 = SD_MAX(w1, j[w].w1);
            cpu = SD_MAX(cpu, j[w].cpu);
            d += j[w].drops;
        }
        pthread_barrier_destroy(&b);
        span_best(&best, (struct span){w1 - w0, cpu});
        *drops = d;
    }
    return best;
}

/* Both shares on this one thread, one after the other, each with its own
 * engine: the same work as two workers, without the parallelism. With
 * |touch|, the reading floor instead of the engine. */
static struct span run_serial(const struct cap *c, const struct sd_policy *pol, uint32_t max_flows, bool touch)
{
    struct job j[2];
    struct sd_engine *e[2] = {NULL, NULL};
    uint64_t sink = 0;
    for (int w = 0; w < 2; w++) {
        j[w] = (struct job){.c = &c[w], .pol = pol, .max_flows = max_flows};
        if (!touch)
            e[w] = engine(pol, false, max_flows, &sink);
    }
    struct span t = span_start();
    for (int w = 0; w < 2; w++)
        if (touch)
            process_touch(&j[w]);
        else
            process(&j[w], e[w]);
    t = span_end(t);
    sd_engine_free(e[0]);
    sd_engine_free(e[1]);
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- report ---- */

struct figures {
    uint64_t packets, drops_file, drops_mem;
    struct span pcap, reader, file, filep, mem, trk, w2;
    double split, scale_cpu, scale_wall; /* medians of paired serial/parallel runs */
    double scale_lo, scale_hi;           /* the lowest and highest of those pairs (wall) */
    double floor_wall;                   /* the reading floor's scaling, paired the same way (wall) */
    double scale_best, floor_best;       /* best serial run over best parallel run (wall) */
    bool have_file, have_mem;
};

/* The in-memory figures: one worker without and with tracking, then two
 * workers, each over its own share of the packets. */
static int mem_figures(const char *path, const struct sd_policy *pol, uint32_t max_flows, int runs, struct figures *f)
{
    struct cap c[2] = {{0}};
    uint64_t d = 0;
    if (load(path, c, 1) != 0) {
        fprintf(stderr, "bench_engine: cannot load %s\n", path);
        return -1;
    }
    f->packets = c[0].n;
    f->mem = run_workers(c, pol, max_flows, 1, false, runs, &f->drops_mem, false);
    f->trk = run_workers(c, pol, max_flows, 1, true, runs, &d, false);
    unload(c, 1);
    if (load(path, c, 2) != 0) {
        fprintf(stderr, "bench_engine: cannot load %s\n", path);
        return -1;
    }
    /* Scaling: pairs of runs of the same two shares, in sequence on one
     * thread and in parallel on two, close together in time so both see the
     * same neighbours; the median ratio. Each engine pair is followed by a
     * pair of the reading floor (process_touch), whose ratio is what the
     * machine's memory lets two cores gain on these bytes at that moment. */
    enum { PAIRS = 9 };
    double rc[PAIRS], rw[PAIRS], rf[PAIRS];
    uint64_t best[4] = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX}; /* engine serial, parallel; floor */
    f->w2 = (struct span){UINT64_MAX, UINT64_MAX};
    for (int k = 0; k < PAIRS; k++) {
        struct span ser = run_serial(c, pol, max_flows, false),
                    par = run_workers(c, pol, max_flows, 2, false, 1, &d, false);
        rc[k] = (double)ser.cpu / (double)par.cpu;
        rw[k] = (double)ser.wall / (double)par.wall;
        span_best(&f->w2, par);
        struct span fs = run_serial(c, pol, max_flows, true), fp = run_workers(c, pol, max_flows, 2, false, 1, &d, true);
        rf[k] = (double)fs.wall / (double)fp.wall;
        uint64_t t[4] = {ser.wall, par.wall, fs.wall, fp.wall};
        for (int i = 0; i < 4; i++)
            best[i] = SD_MIN(best[i], t[i]);
        if (getenv("SD_BENCH_DEBUG"))
            fprintf(stderr, "pair %d: engine %.1f/%.1f ms, floor %.1f/%.1f ms\n", k, ser.wall / 1e6, par.wall / 1e6,
                    fs.wall / 1e6, fp.wall / 1e6);
    }
    f->scale_best = (double)best[0] / (double)best[1];
    f->floor_best = (double)best[2] / (double)best[3];
    qsort(rc, PAIRS, sizeof(rc[0]), cmp_double);
    qsort(rw, PAIRS, sizeof(rw[0]), cmp_double);
    qsort(rf, PAIRS, sizeof(rf[0]), cmp_double);
    f->scale_cpu = rc[PAIRS / 2];
    f->scale_wall = rw[PAIRS / 2];
    f->scale_lo = rw[0];
    f->scale_hi = rw[PAIRS - 1];
    f->floor_wall = rf[PAIRS / 2];
    f->split = (double)c[0].n / (double)(c[0].n + c[1].n);
    f->have_mem = true;
    unload(c, 2);
    return 0;
}

static double mpps(uint64_t packets, uint64_t ns)
{
    return ns ? (double)packets * 1e3 / (double)ns : 0;
}

static void row(const char *what, const struct figures *f, struct span s, const char *extra)
{
    double pk = (double)f->packets;
    printf("%-34s %8.3f Mpps %7.1f ns/pkt (cpu)  %8.3f Mpps (wall)  %s\n", what, mpps(f->packets, s.cpu),
           (double)s.cpu / pk, mpps(f->packets, s.wall), extra);
}

static void print_figures(const struct figures *f)
{
    char x[160];
    if (f->have_file) {
        row("libpcap read loop (floor)", f, f->pcap, "");
        row("pcapfile read loop", f, f->reader, "");
        snprintf(x, sizeof(x), "%llu dropped", (unsigned long long)f->drops_file);
        row("file: pcapfile+decode+engine+track", f, f->file, x);
        row("file: libpcap+decode+engine+track", f, f->filep, "");
    }
    if (f->have_mem) {
        snprintf(x, sizeof(x), "%llu dropped", (unsigned long long)f->drops_mem);
        row("mem: decode+engine", f, f->mem, x);
        row("mem: decode+engine+track", f, f->trk, "");
        snprintf(x, sizeof(x),
                 "scaling %.2fx cpu, %.2fx wall (%.2f-%.2f), best %.2fx; reading floor %.2fx, best %.2fx; split %.1f%%",
                 f->scale_cpu, f->scale_wall, f->scale_lo, f->scale_hi, f->scale_best, f->floor_wall, f->floor_best,
                 100 * f->split);
        row("mem: two workers", f, f->w2, x);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("key packets=%llu", (unsigned long long)f->packets);
    if (f->have_file)
        printf(" libpcap_mpps=%.4f reader_mpps=%.4f file_mpps=%.4f file_ns=%.1f filepcap_mpps=%.4f "
               "libpcap_wall_mpps=%.4f file_wall_mpps=%.4f",
               mpps(f->packets, f->pcap.cpu), mpps(f->packets, f->reader.cpu), mpps(f->packets, f->file.cpu),
               (double)f->file.cpu / (double)f->packets, mpps(f->packets, f->filep.cpu), mpps(f->packets, f->pcap.wall),
               mpps(f->packets, f->file.wall));
    if (f->have_mem)
        printf(" mem_mpps=%.4f mem_ns=%.1f memtrack_mpps=%.4f w2_mpps=%.4f scale2=%.3f scale2_wall=%.3f"
               " scale2_lo=%.3f scale2_hi=%.3f floor2_wall=%.3f scale2_best=%.3f floor2_best=%.3f",
               mpps(f->packets, f->mem.cpu), (double)f->mem.cpu / (double)f->packets, mpps(f->packets, f->trk.cpu),
               mpps(f->packets, f->w2.cpu), f->scale_cpu, f->scale_wall, f->scale_lo, f->scale_hi, f->floor_wall,
               f->scale_best, f->floor_best);
    printf(" rss_mb=%.1f\n", (double)ru.ru_maxrss / 1024.0);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file-only", no_argument, NULL, 'F'}, {"mem-only", no_argument, NULL, 'M'}, {NULL, 0, NULL, 0}};
    struct sd_clipolicy cp = {.preset = "tw21-exact"};
    int runs = 3, o;
    bool file = true, mem = true;
    uint32_t max_flows = 0;
    while ((o = getopt_long(argc, argv, "P:r:m:", opts, NULL)) != -1) {
        if (o == 'P')
            cp.preset = optarg;
        else if (o == 'r')
            runs = atoi(optarg) > 0 ? atoi(optarg) : 1;
        else if (o == 'm')
            max_flows = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 'F')
            mem = false;
        else if (o == 'M')
            file = false;
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
    const struct span none = {UINT64_MAX, UINT64_MAX};
    struct figures f = {.pcap = none, .reader = none, .file = none, .filep = none, .have_file = file};
    for (int k = 0; k < runs && file; k++) {
        struct span t[4];
        uint64_t d = 0;
        f.drops_file = 0;
        if (run_libpcap(path, &t[0], &f.packets) < 0 || run_reader(path, &t[1]) < 0 ||
            run_file(path, false, pol, max_flows, &t[2], &f.drops_file) < 0 ||
            run_file(path, true, pol, max_flows, &t[3], &d) < 0) {
            fprintf(stderr, "bench_engine: %s: cannot read (a classic pcap file is needed)\n", path);
            return 1;
        }
        span_best(&f.pcap, t[0]);
        span_best(&f.reader, t[1]);
        span_best(&f.file, t[2]);
        span_best(&f.filep, t[3]);
    }
    if (mem && mem_figures(path, pol, max_flows, runs, &f) != 0)
        return 1;
    print_figures(&f);
    sd_policy_free(pol);
    return 0;
}
