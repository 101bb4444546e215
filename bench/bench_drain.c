/*
 * bench_drain.c - the inline censor's own capacity, with the lab's traffic
 * out of its way (bench/drain_bench.sh runs it; root).
 *
 *   bench_drain --lab ID --pid PID [-n PACKETS] [-r ROUNDS] [--skip N] PCAP
 *   bench_drain --count PCAP     (prints the capture's number of frames)
 *
 * On two CPUs the lab's client and server need about as much CPU per packet
 * as the censor, so live traffic cannot show what a second worker adds: the
 * generators take the second CPU. This separates the two in time. Each round:
 *   1. stop the censor (SIGSTOP on PID; its queues keep filling, the kernel
 *      holds the packets and their messages wait in the sockets);
 *   2. inject the capture's next PACKETS frames into the lab: client-to-server
 *      frames on the client's link, server-to-client frames on the server's,
 *      with the addresses moved into the lab's (a client to 192.0.2.128-254 or
 *      2001:db8:1::100-1ff by a hash of its address in the capture, a server
 *      to the lab's server) and the checksums made right again;
 *   3. wait until the kernel's queue counters stop moving, and check that
 *      every frame was queued and none was dropped;
 *   4. SIGCONT, and time how long the workers take to give every verdict: the
 *      queues' lengths in /proc/net/netfilter/nfnetlink_queue, read every
 *      0.5 ms (the verdict call also forwards the packet, as inline it would).
 * Only this poll runs beside the censor while it drains.
 *
 * Prints one line per round: packets per queue, drain time, packets/s, the
 * censor's CPU time during the drain (all its threads' schedstat), the
 * machine's busy CPU time meanwhile (/proc/stat, less this program's own) and
 * the time each queue took to empty. Exits 1 on a round whose frames were not
 * all queued, or were dropped (raise --maxlen and --rcvbuf of the censor).
 *
 * A client is an address inside 10/8, 100.64/10 or fd00::/8 (bench_mixgen's).
 * Frames longer than the lab's MTU (1500) are left out.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mono.h"
#include "pcapfile.h"
#include "pkt.h"

enum { MAXQ = 64, POLL_NS = 500000, ETH = 14 };

struct frame {
    uint32_t off, len;
    bool s2c; /* server to client: injected on the server's link */
};

static uint8_t *buf;
static size_t buf_len, buf_cap;
static struct frame *frames;
static size_t nframes, frames_cap;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_drain: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static uint32_t hash32(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static bool inside4(const uint8_t *a)
{
    return a[0] == 10 || (a[0] == 100 && (a[1] & 0xc0) == 64);
}

/* Moves the frame's addresses into the lab's and fixes the checksums. False: not a frame to inject
 * (not TCP or UDP over IP right after the Ethernet header, a fragment, cut short). */
static bool rewrite(uint8_t *f, size_t len, bool *s2c)
{
    static const uint8_t srv4[4] = {203, 0, 113, 2};
    static const uint8_t srv6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 2};
    struct sd_pkt pkt;
    if (sd_pkt_decode(&pkt, SD_DLT_EN10MB, f, len) < 0 || pkt.l3_off != ETH ||
        (pkt.flags & (SD_PKT_L4 | SD_PKT_FRAG | SD_PKT_TRUNCATED)) != SD_PKT_L4)
        return false;
    uint8_t *src = f + (pkt.saddr - f), *dst = f + (pkt.daddr - f); /* the views, writable */
    *s2c = pkt.family == 4 ? !inside4(src) : src[0] != 0xfd;
    uint8_t *cli = *s2c ? dst : src, *srv = *s2c ? src : dst;
    if (pkt.family == 4) {
        uint32_t h = hash32(cli, 4);
        memcpy(srv, srv4, 4);
        cli[0] = 192, cli[1] = 0, cli[2] = 2, cli[3] = (uint8_t)(128 + h % 127);
    } else {
        uint32_t h = hash32(cli, 16);
        memcpy(srv, srv6, 16);
        memcpy(cli, srv6, 16);
        cli[5] = 1, cli[14] = 1, cli[15] = (uint8_t)h;
    }
    return sd_pkt_fix_csums(f + ETH, len - ETH) == 0;
}

static void load(const char *path, size_t skip, size_t want)
{
    struct sd_pcapfile *r;
    if (sd_pcapfile_open(&r, path) != 0)
        die("cannot read %s as a classic pcap", path);
    if (sd_pcapfile_dlt(r) != 1)
        die("%s: not an Ethernet capture", path);
    const uint8_t *d;
    uint32_t caplen;
    uint64_t ts;
    size_t seen = 0;
    while (nframes < want && sd_pcapfile_next(r, &d, &caplen, &ts) == 1) {
        if (seen++ < skip || caplen < ETH || caplen > ETH + 1500) /* the lab's links' MTU */
            continue;
        if (buf_len + caplen > UINT32_MAX)
            break;
        if (buf_len + caplen > buf_cap) {
            buf_cap = (buf_cap ? buf_cap * 2 : 64u << 20);
            if (!(buf = realloc(buf, buf_cap)))
                die("out of memory");
        }
        if (nframes == frames_cap) {
            frames_cap = frames_cap ? frames_cap * 2 : 1u << 16;
            if (!(frames = realloc(frames, frames_cap * sizeof(*frames))))
                die("out of memory");
        }
        uint8_t *f = buf + buf_len;
        memcpy(f, d, caplen);
        bool s2c;
        if (!rewrite(f, caplen, &s2c))
            continue;
        frames[nframes++] = (struct frame){.off = (uint32_t)buf_len, .len = caplen, .s2c = s2c};
        buf_len += caplen;
    }
    sd_pcapfile_close(r);
    if (nframes < want)
        fprintf(stderr, "bench_drain: %s holds %zu usable frames after the first %zu, not %zu\n", path, nframes,
                skip, want);
}

/* The number of frames in the capture at |path|. */
static size_t count_frames(const char *path)
{
    struct sd_pcapfile *r;
    if (sd_pcapfile_open(&r, path) != 0)
        die("cannot read %s as a classic pcap", path);
    const uint8_t *d;
    uint32_t caplen;
    uint64_t ts;
    size_t n = 0;
    while (sd_pcapfile_next(r, &d, &caplen, &ts) == 1)
        n++;
    sd_pcapfile_close(r);
    return n;
}

static void enter_ns(const char *lab, const char *role)
{
    char path[256];
    snprintf(path, sizeof(path), "/var/run/netns/sd-%s-%s", lab, role);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
        die("cannot enter %s", path);
    close(fd);
}

static void hwaddr(const char *ifname, uint8_t mac[6])
{
    struct ifreq ifr = {0};
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    if (s < 0 || ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
        die("no link %s here", ifname);
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    close(s);
}

/* A packet socket on |ifname| of the current namespace, and that link's address. */
static int packet_socket(const char *ifname, uint8_t mac[6])
{
    int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    struct sockaddr_ll sl = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(ifname)};
    if (s < 0 || !sl.sll_ifindex || bind(s, (struct sockaddr *)&sl, sizeof(sl)) < 0)
        die("cannot open a packet socket on %s", ifname);
    hwaddr(ifname, mac);
    return s;
}

struct queues {
    int n;
    uint64_t total[MAXQ], seq[MAXQ], dropped; /* queued now; queued ever; dropped ever (full queue or socket) */
};

static void read_queues(int fd, struct queues *q)
{
    char b[8192];
    ssize_t n;
    if (lseek(fd, 0, SEEK_SET) < 0 || (n = read(fd, b, sizeof(b) - 1)) < 0)
        die("%s", "cannot read /proc/net/netfilter/nfnetlink_queue");
    b[n] = '\0';
    memset(q, 0, sizeof(*q));
    for (char *l = b; *l && q->n < MAXQ;) {
        unsigned long long f[9];
        if (sscanf(l, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
                   &f[7], &f[8]) == 9) {
            q->total[q->n] = f[2], q->seq[q->n] = f[7], q->dropped += f[5] + f[6];
            q->n++;
        }
        char *e = strchr(l, '\n');
        if (!e)
            break;
        l = e + 1;
    }
}

static uint64_t sum(const uint64_t *v, int n)
{
    uint64_t s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s;
}

/* The CPU time of all of PID's threads (schedstat, ns); with |stopped|, whether all are stopped. */
static uint64_t threads(pid_t pid, bool *stopped)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        die("no process %s", path);
    uint64_t ns = 0;
    bool all = true;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(line, sizeof(line), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(line, "r");
        unsigned long long run = 0;
        if (f && fscanf(f, "%llu", &run) == 1)
            ns += run;
        if (f)
            fclose(f);
        snprintf(line, sizeof(line), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        f = fopen(line, "r");
        if (f && fgets(line, sizeof(line), f)) {
            const char *p = strrchr(line, ')');
            all = all && p && (p[2] == 'T' || p[2] == 't');
        }
        if (f)
            fclose(f);
    }
    closedir(d);
    if (stopped)
        *stopped = all;
    return ns;
}

/* Busy time of all CPUs so far (ns): /proc/stat's first line, every field but idle and iowait, in
 * USER_HZ ticks. What the kernel does for a worker on the other CPU (deferred frees, RCU, softirqs
 * run by ksoftirqd) is in it, which the censor's threads' time leaves out. */
static uint64_t machine_busy_ns(void)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                     &v[5], &v[6], &v[7], &v[8], &v[9]) < 8)
        die("%s", "cannot read /proc/stat");
    fclose(f);
    uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]; /* user nice system irq softirq steal */
    return busy * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static uint64_t self_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"lab", 1, NULL, 'l'}, {"pid", 1, NULL, 'p'}, {"skip", 1, NULL, 's'},
                                       {"count", 0, NULL, 'c'}, {"help", 0, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *lab = NULL;
    pid_t pid = 0;
    size_t per = 50000, rounds = 5, skip = 0;
    bool count = false;
    for (int c; (c = getopt_long(argc, argv, "n:r:h", lo, NULL)) != -1;) {
        switch (c) {
        case 'c': count = true; break;
        case 'l': lab = optarg; break;
        case 'p': pid = (pid_t)atoi(optarg); break;
        case 's': skip = strtoul(optarg, NULL, 10); break;
        case 'n': per = strtoul(optarg, NULL, 10); break;
        case 'r': rounds = strtoul(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "Usage: bench_drain --lab ID --pid PID [-n PACKETS] [-r ROUNDS] [--skip N] PCAP\n"
                            "       bench_drain --count PCAP\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (count && optind == argc - 1) {
        printf("%zu\n", count_frames(argv[optind]));
        return 0;
    }
    if (!lab || pid <= 0 || optind != argc - 1 || !per || !rounds)
        die("%s", "needs --lab ID, --pid PID and one capture (--help)");
    load(argv[optind], skip, per * rounds);

    uint8_t cmac[6], smac[6], in0[6], out0[6];
    enter_ns(lab, "client");
    int cs = packet_socket("eth0", cmac);
    enter_ns(lab, "server");
    int ss = packet_socket("eth0", smac);
    enter_ns(lab, "censor");
    hwaddr("in0", in0);
    hwaddr("out0", out0);
    for (size_t i = 0; i < nframes; i++) {
        uint8_t *f = buf + frames[i].off;
        memcpy(f, frames[i].s2c ? out0 : in0, 6);
        memcpy(f + 6, frames[i].s2c ? smac : cmac, 6);
    }
    int qfd = open("/proc/net/netfilter/nfnetlink_queue", O_RDONLY | O_CLOEXEC);
    if (qfd < 0)
        die("%s", "no /proc/net/netfilter/nfnetlink_queue in the censor's namespace (no queue bound?)");

    int bad = 0;
    for (size_t r = 0, next = 0; r < rounds && next < nframes; r++) {
        struct queues q0, q1, q;
        bool stopped = false;
        kill(pid, SIGSTOP);
        for (int i = 0; i < 2000 && !stopped; i++, sd_sleep_ns(1000000))
            threads(pid, &stopped);
        if (!stopped)
            die("%s", "the censor did not stop");
        read_queues(qfd, &q0);
        size_t sent = 0, end = next + per < nframes ? next + per : nframes;
        for (; next < end; next++) {
            const struct frame *f = &frames[next];
            if (send(f->s2c ? ss : cs, buf + f->off, f->len, 0) == (ssize_t)f->len)
                sent++;

        }
        uint64_t last = 0;
        for (int stable = 0; stable < 40; sd_sleep_ns(POLL_NS)) { /* 20 ms without a change */
            read_queues(qfd, &q1);
            uint64_t s = sum(q1.seq, q1.n);
            stable = s == last ? stable + 1 : 0;
            last = s;
        }
        uint64_t queued = sum(q1.seq, q1.n) - sum(q0.seq, q0.n), drops = q1.dropped - q0.dropped;
        uint64_t cpu0 = threads(pid, NULL), m0 = machine_busy_ns(), self0 = self_cpu_ns();
        uint64_t t0 = sd_mono_ns(), empty[MAXQ] = {0};
        kill(pid, SIGCONT);
        for (int left = q1.n; left > 0;) {
            sd_sleep_ns(POLL_NS);
            read_queues(qfd, &q);
            uint64_t t = sd_mono_ns() - t0;
            left = 0;
            for (int i = 0; i < q.n; i++) {
                if (q.total[i] == 0 && !empty[i])
                    empty[i] = t;
                left += !empty[i];
            }
            if (t > 60000000000u)
                die("%s", "the queues did not empty in 60 s");
        }
        uint64_t t = 0;
        for (int i = 0; i < q1.n; i++)
            t = empty[i] > t ? empty[i] : t;
        uint64_t cpu = threads(pid, NULL) - cpu0, self = self_cpu_ns() - self0;
        uint64_t mach = machine_busy_ns() - m0;
        mach = mach > self ? mach - self : 0; /* this poller's own share left out */
        printf("round %zu  sent %zu  queued %llu (", r + 1, sent, (unsigned long long)queued);
        for (int i = 0; i < q1.n; i++)
            printf("%s%llu", i ? " " : "", (unsigned long long)(q1.total[i] - q0.total[i]));
        printf(")  dropped %llu  drain %.2f ms  %.0f packets/s  censor CPU %.2f ms  machine %.0f ms  emptied (ms):",
               (unsigned long long)drops, t / 1e6, t ? queued * 1e9 / (double)t : 0, cpu / 1e6, mach / 1e6);
        for (int i = 0; i < q1.n; i++)
            printf(" %.2f", empty[i] / 1e6);
        printf("\n");
        fflush(stdout);
        bad |= queued != sent || drops;
    }
    free(buf);
    free(frames);
    return bad;
}
