/*
 * bench_mixgen.c - writes a realistic traffic mix as a pcap, for the
 * benchmarks (bench/run.sh).
 *
 *   bench_mixgen -o FILE [-p PACKETS] [-f FLOWS] [-s SEED] [-r FLOWS_PER_S] [--big]
 *
 * The mix, by flows (spec of the benchmark, issue 8):
 *   56%    short TLS over TCP/443: handshake, a ClientHello (20% of them
 *          post-quantum sized, spanning two segments) naming a server drawn
 *          from a list (4% of names are throttled ones: twitter.com,
 *          abs.twimg.com, t.co, ...), the server's flight, a request of 0.5-4
 *          KB and a response of 1-30 KB in MSS segments, ACKs every second
 *          segment, FIN both ways;
 *   0.6%   bulk TLS transfers of megabytes (one in eight to video.twimg.com),
 *          paced at 10-80 Mbit/s; their size is what brings the file to the
 *          requested packet count;
 *   14%    QUIC over UDP/443: a client Initial carrying a ClientHello
 *          (gen_quic.h), long-header replies, then short-header datagrams;
 *   29.4%  DNS over UDP/53: one query, one answer.
 * 15% of flows are IPv6. Clients sit in the default inside networks
 * (10/8, 100.64/10, fd00::/8), servers outside. Flows arrive as a Poisson
 * process (-r, default 5000 per second); round-trip times are 5-150 ms.
 *
 * Every decision comes from a per-flow random stream seeded by (seed, flow
 * number), so the file is a pure function of the flags. Flows are scripted
 * one at a time as they start (a list of events with times relative to the
 * flow's start) and merged through a heap on absolute time, so memory holds
 * only the flows in progress and the file is in time order. A first pass
 * scripts every non-bulk flow without writing, to size the bulk transfers.
 *
 * --big is the "450 thousand flows" capture: -f 450000 -p 6000000, with
 * shorter responses (TLS 1-6 KB, QUIC 3-12 KB) so the file stays a few GB.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "gen.h"
#include "gen_quic.h"
#include "pkt.h"

enum {
    MSS = 1460,  /* over IPv4; MSS6 over IPv6: both fill a 1514-byte Ethernet frame */
    MSS6 = 1440,
    FRAME_MAX = 2048,
    RND_BYTES = 1 << 16,
    NCLIENTS = 49999,
    HELLO_MAX = 4096,
    QUIC_HELLO_FIT = 1452 - 64, /* a hello this long still fits one Initial over IPv6 (header, CRYPTO frame, tag) */
    TCP = 6,
    UDP = 17,
};

enum kind { K_CTRL, K_BLOB, K_BLOB2, K_TLS, K_QLONG, K_QSHORT };
enum ftype { F_TLS, F_BULK, F_QUIC, F_DNS };

static const uint64_t EPOCH_NS = 1618056000ull * 1000000000ull; /* 2021-04-10 12:00 UTC */

struct ev {
    uint64_t t;        /* ns after the flow's start */
    uint32_t len;      /* payload bytes */
    uint32_t arg;      /* K_BLOB: offset; K_TLS: bytes left in the flight, this segment included */
    uint8_t dir, flags, kind, rtype;
};

struct script {
    struct ev *v;
    size_t n, cap;
    uint64_t t;        /* time of the next event pushed */
    size_t mss;        /* TCP segment size: MSS or MSS6 */
};

struct rng {
    uint64_t s;
};

struct gflow {
    uint64_t idx, start;
    int type;
    bool throttled;
    struct script sc;
    size_t at;
    struct sd_gen_pkt tmpl;   /* c2s addresses and ports */
    uint32_t seq[2];
    uint16_t ipid[2];
    uint32_t rec_pos[2], rec_total[2];
    uint8_t cid[2][8];        /* QUIC connection ids: [0] the server's, [1] the client's */
    uint8_t *blob, *blob2;    /* hello record / QUIC Initial / DNS query; DNS answer */
    size_t blob_len, blob2_len;
    uint32_t rnd_off;
};

struct ctx {
    uint64_t seed, flows, packets, rate;
    uint64_t bulk_bytes;
    bool light;        /* --big: shorter responses (1-6 KB TLS, 2-12 KB QUIC) */
    uint8_t rnd[RND_BYTES + FRAME_MAX];
    struct sd_gen_pcap *w;
    struct gflow **heap;
    size_t nheap;
    uint64_t written, bytes, last_ts, by_type[4], pk_type[4], throttled;
};

/* ---- randomness ---- */

static uint64_t rnext(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rrange(struct rng *r, uint64_t lo, uint64_t hi) /* [lo, hi] */
{
    return lo + rnext(r) % (hi - lo + 1);
}

/* Log-uniform in [lo, hi]: many small values, a few large ones. */
static uint64_t rlog(struct rng *r, uint64_t lo, uint64_t hi)
{
    double u = (double)(rnext(r) >> 11) / 9007199254740992.0;
    return (uint64_t)((double)lo * pow((double)hi / (double)lo, u));
}

/* ---- names and addresses ---- */

static const char *const throttled_names[] = {"twitter.com", "abs.twimg.com", "pbs.twimg.com", "api.twitter.com",
                                              "t.co", "mobile.twitter.com", "video.twimg.com"};

static const char *const head_names[] = {
    "www.google.com", "google.com", "www.youtube.com", "i.ytimg.com", "yt3.ggpht.com", "fonts.gstatic.com",
    "www.gstatic.com", "apis.google.com", "play.googleapis.com", "mail.google.com", "vk.com", "sun9-1.userapi.com",
    "yandex.ru", "mc.yandex.ru", "an.yandex.ru", "yastatic.net", "mail.ru", "ok.ru", "www.facebook.com",
    "static.xx.fbcdn.net", "graph.instagram.com", "scontent.cdninstagram.com", "web.whatsapp.com", "telegram.org",
    "ru.wikipedia.org", "upload.wikimedia.org", "github.com", "avatars.githubusercontent.com", "www.microsoft.com",
    "login.microsoftonline.com", "outlook.office365.com", "www.apple.com", "gateway.icloud.com", "www.amazon.com",
    "cdn.jsdelivr.net", "cdnjs.cloudflare.com", "www.reddit.com", "www.netflix.com", "discord.com",
    "open.spotify.com", "www.tiktok.com", "sentry.io", "www.avito.ru", "www.ozon.ru", "www.wildberries.ru",
    "www.gosuslugi.ru", "online.sberbank.ru", "twimg.com", "throttletwitter.com", "microsoft.com"};

static const char *const syllables[] = {"ka", "ro", "mi", "net", "tel", "po", "lis", "dat", "ver", "sa",
                                        "zo", "bit", "lu", "cor", "fi", "nex", "ta", "vo", "gra", "mo"};
static const char *const tlds[] = {"com", "ru", "net", "org", "io", "de", "info", "su"};

/* Writes a server name for a flow into |out| (256 bytes). */
static void pick_name(struct rng *r, char *out, bool bulk, bool *throttled)
{
    uint64_t u = rnext(r) % 1000;
    *throttled = false;
    if (bulk) {
        if (u < 125) {
            snprintf(out, 256, "video.twimg.com");
            *throttled = true;
        } else {
            snprintf(out, 256, "rr%u---sn-%s%s.googlevideo.com", (unsigned)rrange(r, 1, 9),
                     syllables[rnext(r) % 20], syllables[rnext(r) % 20]);
        }
    } else if (u < 40) {
        snprintf(out, 256, "%s", throttled_names[rnext(r) % (SD_COUNTOF(throttled_names) - 1)]);
        *throttled = true;
    } else if (u < 640) {
        uint64_t k = rnext(r) % SD_COUNTOF(head_names);
        k = k * k / SD_COUNTOF(head_names); /* skewed towards the top of the list */
        snprintf(out, 256, "%s", head_names[k]);
    } else {
        snprintf(out, 256, "%s%s%s%u.%s", u & 1 ? "cdn." : "", syllables[rnext(r) % 20], syllables[rnext(r) % 20],
                 (unsigned)(rnext(r) % 500), tlds[rnext(r) % SD_COUNTOF(tlds)]);
    }
}

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

/* The server address of a name: Twitter's names in Twitter's networks,
 * others spread over a few large providers' prefixes. */
static void server_addr(struct sd_gen_addr *a, const char *name, bool throttled, int family)
{
    static const uint8_t v4[][2] = {{104, 16}, {142, 250}, {151, 101}, {87, 250}, {95, 213}, {31, 13}, {185, 199}};
    uint32_t h = fnv(name);
    memset(a, 0, sizeof(*a));
    a->family = family;
    if (family == 4) {
        a->a[0] = throttled ? 104 : v4[h % SD_COUNTOF(v4)][0];
        a->a[1] = throttled ? 244 : v4[h % SD_COUNTOF(v4)][1];
        a->a[2] = throttled ? 42 : (uint8_t)(h >> 8);
        a->a[3] = (uint8_t)(h >> 16) | 1;
    } else {
        static const uint8_t p[4] = {0x2a, 0x00, 0x14, 0x50};
        memcpy(a->a, p, 4);
        if (throttled)
            a->a[1] = 0x04, a->a[2] = 0x9f, a->a[3] = 0x80;
        sd_put32be(a->a + 12, h);
    }
}

static void client_addr(struct sd_gen_addr *a, uint64_t ci, int family)
{
    memset(a, 0, sizeof(*a));
    a->family = family;
    if (family == 6) {
        a->a[0] = 0xfd;
        a->a[1] = 0x5d;
        sd_put32be(a->a + 12, (uint32_t)ci + 1);
    } else if (ci % 3 == 0) {
        uint32_t v = (uint32_t)(ci / 3) + 1; /* 100.64.0.0/10 */
        a->a[0] = 100, a->a[1] = (uint8_t)(64 + (v >> 16)), a->a[2] = (uint8_t)(v >> 8), a->a[3] = (uint8_t)v;
    } else {
        uint32_t v = (uint32_t)ci + 1;
        a->a[0] = 10, a->a[1] = (uint8_t)(1 + (v >> 16)), a->a[2] = (uint8_t)(v >> 8), a->a[3] = (uint8_t)v;
    }
}

/* ---- scripts ---- */

static void push(struct script *s, int dir, uint8_t flags, uint8_t kind, uint32_t len, uint32_t arg, uint8_t rtype)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 32;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v) {
            fprintf(stderr, "bench_mixgen: out of memory\n");
            exit(1);
        }
    }
    s->v[s->n++] = (struct ev){s->t, len, arg, (uint8_t)dir, flags, kind, rtype};
}

static uint64_t wire_ns(size_t ip_bytes, uint64_t rate_bps)
{
    return (uint64_t)ip_bytes * 8000000000ull / rate_bps;
}

/* |total| bytes in direction |dir| as MSS segments paced at |rate_bps|, the
 * peer ACKing every second segment and the last. */
static void xfer(struct script *s, int dir, uint8_t kind, uint8_t rtype, size_t total, uint64_t rate_bps, bool tcp)
{
    size_t seg = tcp ? s->mss : 1350;
    for (size_t off = 0, i = 0; off < total; i++) {
        size_t len = SD_MIN(seg, total - off);
        push(s, dir, SD_TCP_PSH | SD_TCP_ACK, kind, (uint32_t)len, kind == K_TLS ? (uint32_t)(total - off) : (uint32_t)off,
             rtype);
        uint64_t gap = wire_ns(len + 60, rate_bps);
        off += len;
        if (i % 2 == 1 || off == total) {
            uint64_t t = s->t;
            s->t += SD_MIN(50000u, gap / 2);
            if (tcp)
                push(s, !dir, SD_TCP_ACK, K_CTRL, 0, 0, 0);
            else
                push(s, !dir, 0, K_QSHORT, (uint32_t)rrange(&(struct rng){t ^ off}, 40, 60), 0, 0);
            s->t = t;
        }
        s->t += gap;
    }
}

static void tcp_open(struct script *s, uint64_t rtt)
{
    push(s, 0, SD_TCP_SYN, K_CTRL, 0, 0, 0);
    s->t += rtt / 2;
    push(s, 1, SD_TCP_SYN | SD_TCP_ACK, K_CTRL, 0, 0, 0);
    s->t += rtt / 2;
    push(s, 0, SD_TCP_ACK, K_CTRL, 0, 0, 0);
    s->t += 20000;
}

static void tcp_close(struct script *s, uint64_t rtt)
{
    push(s, 0, SD_TCP_FIN | SD_TCP_ACK, K_CTRL, 0, 0, 0);
    s->t += rtt / 2;
    push(s, 1, SD_TCP_FIN | SD_TCP_ACK, K_CTRL, 0, 0, 0);
    s->t += rtt / 2;
    push(s, 0, SD_TCP_ACK, K_CTRL, 0, 0, 0);
}

/* A TLS connection: handshake, hello, server flight, request, response. */
static void script_tls(struct gflow *f, struct rng *r, uint64_t down, uint64_t rate)
{
    struct script *s = &f->sc;
    uint64_t rtt = rlog(r, 5000000, 150000000);
    uint64_t up = rlog(r, 500, 4000);
    tcp_open(s, rtt);
    for (size_t off = 0; off < f->blob_len; off += s->mss)
        push(s, 0, SD_TCP_PSH | SD_TCP_ACK, K_BLOB, (uint32_t)SD_MIN(s->mss, f->blob_len - off), (uint32_t)off, 0);
    s->t += rtt / 2;
    push(s, 1, SD_TCP_ACK, K_CTRL, 0, 0, 0);
    s->t += rrange(r, 100000, 2000000);
    xfer(s, 1, K_TLS, 22, 127, rate, true); /* ServerHello */
    xfer(s, 1, K_TLS, 23, rrange(r, 2500, 5000), rate, true);
    s->t += rtt / 2;
    xfer(s, 0, K_TLS, 23, up, rate, true);
    s->t += rtt / 2 + rlog(r, 1000000, 50000000);
    xfer(s, 1, K_TLS, 23, down, rate, true);
    s->t += rlog(r, 10000000, 5000000000ull);
    tcp_close(s, rtt);
}

static void script_quic(struct gflow *f, struct rng *r, uint64_t down_max)
{
    struct script *s = &f->sc;
    uint64_t rtt = rlog(r, 5000000, 150000000), rate = rlog(r, 5000000, 100000000);
    push(s, 0, 0, K_BLOB, (uint32_t)f->blob_len, 0, 0);
    s->t += rtt / 2 + rrange(r, 100000, 1000000);
    push(s, 1, 0, K_QLONG, 1200, 0, 0);
    s->t += wire_ns(1228, rate);
    push(s, 1, 0, K_QLONG, (uint32_t)rrange(r, 900, 1200), 0, 0);
    s->t += rtt / 2;
    push(s, 0, 0, K_QLONG, 1200, 0, 0);
    s->t += 30000;
    push(s, 0, 0, K_QSHORT, (uint32_t)rrange(r, 60, 400), 0, 0);
    s->t += rtt / 2 + rlog(r, 1000000, 50000000);
    xfer(s, 1, K_QSHORT, 0, rlog(r, 3000, down_max), rate, false);
}

static void script_dns(struct gflow *f, struct rng *r)
{
    struct script *s = &f->sc;
    push(s, 0, 0, K_BLOB, (uint32_t)f->blob_len, 0, 0);
    s->t += rlog(r, 2000000, 60000000);
    push(s, 1, 0, K_BLOB2, (uint32_t)f->blob2_len, 0, 0);
}

/* ---- payloads ---- */

static size_t dns_name(uint8_t *p, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (uint8_t)l;
        memcpy(p + n, name, l);
        n += l;
        name += l + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

static void make_dns(struct gflow *f, struct rng *r, const char *name, int family)
{
    uint8_t q[300];
    uint16_t id = (uint16_t)rnext(r);
    sd_put16be(q, id);
    sd_put16be(q + 2, 0x0100);
    sd_put16be(q + 4, 1);
    memset(q + 6, 0, 6);
    size_t n = 12 + dns_name(q + 12, name);
    sd_put16be(q + n, family == 6 ? 28 : 1);
    sd_put16be(q + n + 2, 1);
    n += 4;
    f->blob = malloc(n);
    f->blob2 = malloc(n + 28);
    if (!f->blob || !f->blob2)
        exit(1);
    memcpy(f->blob, q, n);
    f->blob_len = n;
    memcpy(f->blob2, q, n);
    sd_put16be(f->blob2 + 2, 0x8180);
    sd_put16be(f->blob2 + 6, 1);
    uint8_t *a = f->blob2 + n;
    sd_put16be(a, 0xc00c);
    sd_put16be(a + 2, family == 6 ? 28 : 1);
    sd_put16be(a + 4, 1);
    sd_put32be(a + 6, 300);
    sd_put16be(a + 10, family == 6 ? 16 : 4);
    for (int i = 0; i < 16; i++)
        a[12 + i] = (uint8_t)rnext(r);
    f->blob2_len = n + 12 + (family == 6 ? 16 : 4);
}

static void make_hello(struct gflow *f, struct rng *r, const char *name, bool quic)
{
    uint8_t buf[HELLO_MAX];
    struct sd_gen_hello h = {.sni = name, .alpn = {quic ? "h3" : "h2", quic ? NULL : "http/1.1"}};
    if (rnext(r) % 5 == 0)
        h.key_share_extra = 1120; /* X25519MLKEM768: the hello no longer fits one segment */
    else if (!quic)
        h.padding = (size_t)rrange(r, 20, 200);
    size_t n = quic ? sd_gen_client_hello(buf, sizeof(buf), &h) : sd_gen_client_hello_record(buf, sizeof(buf), &h);
    /* The script sends a QUIC hello in one Initial, which must fit a 1500-byte link over IPv6 too (1452 bytes
     * of UDP payload); a hello too long for that (a long name beside the post-quantum share: real clients
     * split it over two Initials) leaves the share out. */
    if (quic && n > QUIC_HELLO_FIT) {
        h.key_share_extra = 0;
        n = sd_gen_client_hello(buf, sizeof(buf), &h);
    }
    f->blob = malloc(n);
    if (!n || !f->blob) {
        fprintf(stderr, "bench_mixgen: cannot build a ClientHello for %s\n", name);
        exit(1);
    }
    memcpy(f->blob, buf, n);
    f->blob_len = n;
}

static void make_initial(struct gflow *f)
{
    uint8_t pkt[1500];
    size_t n = sd_gen_quic_initial(pkt, sizeof(pkt), 1, f->cid[0], 8, 0, f->blob, f->blob_len, 0, 1250);
    free(f->blob);
    f->blob = malloc(n);
    if (!n || !f->blob) {
        fprintf(stderr, "bench_mixgen: cannot build a QUIC Initial\n");
        exit(1);
    }
    memcpy(f->blob, pkt, n);
    f->blob_len = n;
}

/* ---- flows ---- */

static int flow_type(struct rng *r)
{
    uint64_t u = rnext(r) % 10000;
    return u < 60 ? F_BULK : u < 5660 ? F_TLS : u < 7060 ? F_QUIC : F_DNS;
}

/*
 * Scripts flow |i|. With |full|, also builds what only writing needs (the
 * QUIC Initial, encrypted). Bulk flows carry |bulk| bytes.
 */
static void flow_make(struct gflow *f, const struct ctx *c, uint64_t i, bool full)
{
    static const char *const resolvers[2][3] = {{"77.88.8.8", "8.8.8.8", "1.1.1.1"},
                                                {"2a02:6b8::feed:ff", "2001:4860:4860::8888", "2606:4700::1111"}};
    struct rng r = {c->seed * 0x100000001b3ull ^ (i + 1) * 0x9e3779b97f4a7c15ull};
    char name[256];
    memset(f, 0, sizeof(*f));
    f->idx = i;
    f->type = flow_type(&r);
    int family = rnext(&r) % 100 < 15 ? 6 : 4;
    f->sc.mss = family == 6 ? MSS6 : MSS;
    uint64_t ci = i % NCLIENTS;
    pick_name(&r, name, f->type == F_BULK, &f->throttled);
    f->tmpl.linktype = 1;
    f->tmpl.proto = f->type == F_QUIC || f->type == F_DNS ? UDP : TCP;
    client_addr(&f->tmpl.src, ci, family);
    if (f->type == F_DNS)
        f->tmpl.dst = sd_gen_addr(resolvers[family == 6][rnext(&r) % 3]);
    else
        server_addr(&f->tmpl.dst, name, f->throttled, family);
    f->tmpl.sport = (uint16_t)(1024 + (i / NCLIENTS + ci * 13) % 64000);
    f->tmpl.dport = f->type == F_DNS ? 53 : 443;
    f->tmpl.ttl = (uint8_t)(f->tmpl.proto == TCP ? 64 : 128);
    f->seq[0] = (uint32_t)rnext(&r);
    f->seq[1] = (uint32_t)rnext(&r);
    f->ipid[0] = (uint16_t)rnext(&r);
    f->ipid[1] = (uint16_t)rnext(&r);
    f->rnd_off = (uint32_t)(rnext(&r) % RND_BYTES);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 8; j++)
            f->cid[k][j] = (uint8_t)rnext(&r);
    switch (f->type) {
    case F_TLS:
        make_hello(f, &r, name, false);
        script_tls(f, &r, rlog(&r, 1000, c->light ? 6000 : 30000), rlog(&r, 10000000, 200000000));
        break;
    case F_BULK:
        make_hello(f, &r, name, false);
        script_tls(f, &r, c->bulk_bytes, rlog(&r, 10000000, 80000000));
        break;
    case F_QUIC:
        make_hello(f, &r, name, true);
        if (full)
            make_initial(f);
        script_quic(f, &r, c->light ? 12000 : 100000);
        break;
    default:
        make_dns(f, &r, name, family);
        script_dns(f, &r);
        break;
    }
}

static void flow_free(struct gflow *f)
{
    free(f->sc.v);
    free(f->blob);
    free(f->blob2);
    free(f);
}

/* Fills |len| bytes of a TLS record stream in |dir|: random bodies, and a
 * record header wherever a record starts (records of up to 16 KB, the first
 * of a type-22 flight a handshake record). */
static void fill_tls(struct gflow *f, int dir, uint8_t *p, size_t len, size_t left, uint8_t rtype)
{
    size_t i = 0;
    while (i < len) {
        if (f->rec_pos[dir] == f->rec_total[dir]) {
            f->rec_total[dir] = (uint32_t)SD_MIN(16389, left - i);
            f->rec_pos[dir] = 0;
        }
        uint32_t pos = f->rec_pos[dir], body = f->rec_total[dir] - 5;
        if (pos < 5 && f->rec_total[dir] > 5) {
            uint8_t hdr[5] = {rtype, 3, 3, (uint8_t)(body >> 8), (uint8_t)body};
            p[i++] = hdr[pos];
            f->rec_pos[dir]++;
            continue;
        }
        size_t k = SD_MIN(len - i, (size_t)(f->rec_total[dir] - pos));
        i += k;
        f->rec_pos[dir] += (uint32_t)k;
    }
}

/* Builds and writes the next event of |f|. */
static void emit(struct ctx *c, struct gflow *f)
{
    const struct ev *e = &f->sc.v[f->at++];
    uint8_t frame[FRAME_MAX], *pl = c->rnd + (f->rnd_off + (uint32_t)f->at * 4099u) % RND_BYTES;
    uint8_t buf[FRAME_MAX];
    struct sd_gen_pkt s = f->tmpl;
    int dir = e->dir;
    if (dir) {
        s.src = f->tmpl.dst, s.dst = f->tmpl.src;
        s.sport = f->tmpl.dport, s.dport = f->tmpl.sport;
    }
    s.payload_len = e->len;
    s.payload = pl;
    switch (e->kind) {
    case K_BLOB:
        s.payload = f->blob + e->arg;
        break;
    case K_BLOB2:
        s.payload = f->blob2;
        break;
    case K_TLS:
        memcpy(buf, pl, e->len);
        fill_tls(f, dir, buf, e->len, e->arg, e->rtype);
        s.payload = buf;
        break;
    case K_QLONG:
        memcpy(buf, pl, e->len);
        buf[0] = (uint8_t)(0xc0 | (buf[0] & 0x33));
        sd_put32be(buf + 1, 1);
        buf[5] = 8;
        memcpy(buf + 6, f->cid[dir], 8);
        buf[14] = 8;
        memcpy(buf + 15, f->cid[!dir], 8);
        s.payload = buf;
        break;
    case K_QSHORT:
        memcpy(buf, pl, e->len);
        buf[0] = (uint8_t)(0x40 | (buf[0] & 0x3f));
        memcpy(buf + 1, f->cid[dir], 8);
        s.payload = buf;
        break;
    default:
        break;
    }
    s.tcp_flags = e->flags;
    s.ip_id = f->ipid[dir]++;
    if (s.proto == TCP) {
        s.seq = f->seq[dir];
        s.ack = (e->flags & SD_TCP_ACK) ? f->seq[!dir] : 0;
        s.win = 64240;
        f->seq[dir] += e->len + ((e->flags & (SD_TCP_SYN | SD_TCP_FIN)) ? 1 : 0);
    }
    size_t n = sd_gen_frame(frame, sizeof(frame), &s);
    uint64_t ts = EPOCH_NS + f->start + e->t;
    if (!n || sd_gen_pcap_write(c->w, ts, frame, n) < 0) {
        fprintf(stderr, "bench_mixgen: cannot build or write a frame\n");
        exit(1);
    }
    c->written++;
    c->bytes += n;
    c->pk_type[f->type]++;
    c->last_ts = ts;
}

/* ---- heap of flows in progress, on the time of their next event ---- */

static bool before(const struct gflow *a, const struct gflow *b)
{
    uint64_t ta = a->start + a->sc.v[a->at].t, tb = b->start + b->sc.v[b->at].t;
    return ta < tb || (ta == tb && a->idx < b->idx);
}

static void heap_push(struct ctx *c, struct gflow *f)
{
    size_t i = c->nheap++;
    while (i > 0 && before(f, c->heap[(i - 1) / 2])) {
        c->heap[i] = c->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->heap[i] = f;
}

static struct gflow *heap_pop(struct ctx *c)
{
    struct gflow *top = c->heap[0], *last = c->heap[--c->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const struct gflow *best = last;
        if (l < c->nheap && before(c->heap[l], best))
            m = l, best = c->heap[l];
        if (l + 1 < c->nheap && before(c->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (c->nheap)
        c->heap[i] = last;
    return top;
}

/* ---- passes ---- */

/* Sizes the bulk transfers so the file holds about c->packets packets. */
static void size_bulk(struct ctx *c)
{
    uint64_t other = 0, nbulk = 0;
    for (uint64_t i = 0; i < c->flows; i++) {
        struct gflow *f = calloc(1, sizeof(*f));
        if (!f)
            exit(1);
        flow_make(f, c, i, false);
        if (f->type == F_BULK)
            nbulk++;
        else
            other += f->sc.n;
        flow_free(f);
    }
    uint64_t budget = c->packets > other ? c->packets - other : 0;
    uint64_t per = nbulk ? budget / nbulk : 0;
    per = per > 30 ? per - 30 : 0;            /* handshake, hello, request */
    c->bulk_bytes = SD_MAX(per * 2 / 3 * MSS, 200000ull); /* two data segments per ACK */
}

static int write_mix(struct ctx *c, const char *path)
{
    c->w = sd_gen_pcap_open(path, 1);
    c->heap = calloc(c->flows + 1, sizeof(*c->heap));
    if (!c->w || !c->heap) {
        fprintf(stderr, "bench_mixgen: %s: cannot open\n", path);
        return 1;
    }
    struct rng arrivals = {c->seed ^ 0xa55a5aa5ull};
    uint64_t next = 0, start = 0;
    while (next < c->flows || c->nheap) {
        bool take = next < c->flows;
        if (take && c->nheap) {
            const struct gflow *t = c->heap[0];
            take = start <= t->start + t->sc.v[t->at].t;
        }
        if (take) {
            struct gflow *f = malloc(sizeof(*f));
            if (!f)
                exit(1);
            flow_make(f, c, next++, true);
            f->start = start;
            c->by_type[f->type]++;
            c->throttled += f->throttled;
            heap_push(c, f);
            double u = ((double)(rnext(&arrivals) >> 11) + 1.0) / 9007199254740993.0;
            start += (uint64_t)(-log(u) * 1e9 / (double)c->rate);
            continue;
        }
        struct gflow *f = heap_pop(c);
        emit(c, f);
        if (f->at < f->sc.n)
            heap_push(c, f);
        else
            flow_free(f);
    }
    free(c->heap);
    return sd_gen_pcap_close(c->w) == 0 ? 0 : 1;
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: bench_mixgen -o FILE [-p PACKETS] [-f FLOWS] [-s SEED] [-r FLOWS_PER_S] [--big]\n"
                 "  -p  packets, about (default 2000000; bulk transfers are sized to reach it)\n"
                 "  -f  flows (default 50000)\n"
                 "  -s  seed (default 1)\n"
                 "  -r  new flows per second (default 5000)\n"
                 "  --big  the 450 thousand flows capture: -f 450000 -p 6000000, shorter responses\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"big", no_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'}, {0}};
    struct ctx *c = calloc(1, sizeof(*c));
    const char *out = NULL;
    int o;
    if (!c)
        return 1;
    c->seed = 1, c->flows = 50000, c->packets = 2000000, c->rate = 5000;
    while ((o = getopt_long(argc, argv, "o:p:f:s:r:h", opts, NULL)) != -1) {
        switch (o) {
        case 'o': out = optarg; break;
        case 'p': c->packets = strtoull(optarg, NULL, 10); break;
        case 'f': c->flows = strtoull(optarg, NULL, 10); break;
        case 's': c->seed = strtoull(optarg, NULL, 10); break;
        case 'r': c->rate = strtoull(optarg, NULL, 10); break;
        case 'b': c->flows = 450000, c->packets = 6000000, c->light = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!out || !c->flows || !c->rate) {
        usage(stderr);
        return 2;
    }
    struct rng r = {c->seed};
    for (size_t i = 0; i < sizeof(c->rnd); i++)
        c->rnd[i] = (uint8_t)rnext(&r);
    size_bulk(c);
    int rc = write_mix(c, out);
    printf("mixgen: %s: %llu packets, %llu flows (tls %llu, bulk %llu of %llu bytes, quic %llu, dns %llu; %llu to "
           "throttled names), %.1f MB, %.1f s; packets tls %llu bulk %llu quic %llu dns %llu\n",
           out, (unsigned long long)c->written, (unsigned long long)c->flows, (unsigned long long)c->by_type[F_TLS],
           (unsigned long long)c->by_type[F_BULK], (unsigned long long)c->bulk_bytes,
           (unsigned long long)c->by_type[F_QUIC], (unsigned long long)c->by_type[F_DNS],
           (unsigned long long)c->throttled, (double)c->bytes / 1e6, (double)(c->last_ts - EPOCH_NS) / 1e9,
           (unsigned long long)c->pk_type[F_TLS], (unsigned long long)c->pk_type[F_BULK],
           (unsigned long long)c->pk_type[F_QUIC], (unsigned long long)c->pk_type[F_DNS]);
    free(c);
    return rc;
}
