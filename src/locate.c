/*
 * locate.c - trigger and hop localisation (see locate.h).
 *
 * Byte search, in rounds of parallel probes:
 *
 *   round 0   the hello as is (must trigger), wholly inverted (must not),
 *             and each field inverted on its own
 *   round k   each region known to matter, if longer than a byte, is
 *             halved and both halves are probed
 *
 * A region matters when inverting it lifts the trigger. If neither half of
 * a region matters alone, the region is kept whole (the censor needs it as
 * a unit, e.g. a length whose two bytes both break the walk only together).
 * When the budget runs out, the regions still to halve are reported
 * unresolved. Inversion rather than zeroing or random bytes: it is the
 * transformation of control C, so "matters" means "C's treatment of these
 * bytes alone is enough".
 *
 * Hop search: on an established plain connection, TCP_REPAIR reads the next
 * sequence numbers without sending anything; a raw socket then sends the
 * ClientHello as the connection's first payload with IP TTL k, correct
 * checksums and those sequence numbers, so a box at hop <= k sees a real
 * hello where it expects one, and the hello dies at hop k. Only then is the
 * request line written through the socket. A hello that reaches the server
 * breaks that connection (the server acknowledges bytes our stack never
 * sent, which it drops): such a probe gets no byte and no reset, and is
 * reported as "reached the server", not as triggered.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/tcp.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <unistd.h>

#include "bytes.h"
#include "detect.h"
#include "fetch.h"
#include "locate.h"
#include "mono.h"

/* ---- the fields of a ClientHello ---- */

struct labeler {
    struct sd_hello_field *out;
    size_t cap, n;
    const uint8_t *base;
};

static int field(struct labeler *l, const uint8_t *p, size_t len, const char *name)
{
    if (len == 0)
        return 0;
    if (l->n == l->cap)
        return SD_ERANGE;
    struct sd_hello_field *f = &l->out[l->n++];
    f->off = (uint16_t)(p - l->base);
    f->len = (uint16_t)len;
    snprintf(f->name, sizeof(f->name), "%s", name);
    return 0;
}

static const char *ext_name(unsigned type)
{
    switch (type) {
    case 0: return "server_name";
    case 10: return "supported_groups";
    case 11: return "ec_point_formats";
    case 13: return "signature_algorithms";
    case 16: return "alpn";
    case 21: return "padding";
    case 22: return "encrypt_then_mac";
    case 23: return "extended_master_secret";
    case 35: return "session_ticket";
    case 43: return "supported_versions";
    case 45: return "psk_key_exchange_modes";
    case 51: return "key_share";
    case 0xfe0d: return "encrypted_client_hello";
    default: return "other";
    }
}

/* A length-prefixed vector: its length field and its body as two fields. */
static int vector(struct labeler *l, const uint8_t **p, const uint8_t *end, size_t lenlen, const char *name)
{
    char buf[56];

    if ((size_t)(end - *p) < lenlen)
        return SD_EPROTO;
    size_t n = lenlen == 1 ? (*p)[0] : sd_rd16be(*p);
    if ((size_t)(end - *p) - lenlen < n)
        return SD_EPROTO;
    snprintf(buf, sizeof(buf), "%s length", name);
    int rc = field(l, *p, lenlen, buf);
    rc = rc ? rc : field(l, *p + lenlen, n, name);
    *p += lenlen + n;
    return rc;
}

/* server_name data: list length, then one entry (type, length, host) and whatever follows. */
static int server_name(struct labeler *l, const uint8_t *p, const uint8_t *end)
{
    if (end - p < 5)
        return field(l, p, (size_t)(end - p), "server_name data");
    size_t host = sd_rd16be(p + 3);
    if ((size_t)(end - p) - 5 < host)
        return SD_EPROTO;
    int rc = field(l, p, 2, "server_name list length");
    rc = rc ? rc : field(l, p + 2, 1, "server_name type");
    rc = rc ? rc : field(l, p + 3, 2, "server_name length");
    rc = rc ? rc : field(l, p + 5, host, "server_name host");
    rc = rc ? rc : field(l, p + 5 + host, (size_t)(end - p) - 5 - host, "server_name rest");
    return rc;
}

static int extensions(struct labeler *l, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (end - p < 4)
            return SD_EPROTO;
        unsigned type = sd_rd16be(p);
        size_t len = sd_rd16be(p + 2);
        if ((size_t)(end - p) - 4 < len)
            return SD_EPROTO;
        char name[56];
        snprintf(name, sizeof(name), "ext 0x%04x (%s) header", type, ext_name(type));
        int rc = field(l, p, 4, name);
        if (rc)
            return rc;
        snprintf(name, sizeof(name), "ext 0x%04x (%s) data", type, ext_name(type));
        rc = type == 0 ? server_name(l, p + 4, p + 4 + len) : field(l, p + 4, len, name);
        if (rc)
            return rc;
        p += 4 + len;
    }
    return 0;
}

int sd_hello_fields(const uint8_t *p, const uint8_t *end, struct sd_hello_field *out, size_t cap)
{
    struct labeler l = {out, cap, 0, p};
    int rc;

    if (end - p < 5 + 4 + 2 + 32 || p[0] != 0x16 || p[5] != 1)
        return SD_EPROTO;
    size_t rec = sd_rd16be(p + 3);
    uint32_t hs;
    sd_get24be(&hs, p + 6);
    if ((size_t)(end - p) != 5 + rec || rec < 4 + (size_t)hs || hs < 2 + 32)
        return SD_EPROTO;
    const uint8_t *q = p + 9, *hend = p + 9 + hs;
    rc = field(&l, p, 1, "record type");
    rc = rc ? rc : field(&l, p + 1, 2, "record version");
    rc = rc ? rc : field(&l, p + 3, 2, "record length");
    rc = rc ? rc : field(&l, p + 5, 1, "handshake type");
    rc = rc ? rc : field(&l, p + 6, 3, "handshake length");
    rc = rc ? rc : field(&l, q, 2, "client version");
    rc = rc ? rc : field(&l, q + 2, 32, "random");
    q += 34;
    rc = rc ? rc : vector(&l, &q, hend, 1, "session id");
    rc = rc ? rc : vector(&l, &q, hend, 2, "cipher suites");
    rc = rc ? rc : vector(&l, &q, hend, 1, "compression");
    if (!rc && q < hend) {
        if (hend - q < 2 || (size_t)(hend - q) - 2 != sd_rd16be(q))
            return SD_EPROTO;
        rc = field(&l, q, 2, "extensions length");
        rc = rc ? rc : extensions(&l, q + 2, hend);
    }
    rc = rc ? rc : field(&l, hend, (size_t)(end - hend), "after the handshake");
    return rc ? rc : (int)l.n;
}

uint64_t sd_locate_threshold(uint64_t window_ns, double slow_kbps, double fast_kbps)
{
    double slow = slow_kbps > 16 ? slow_kbps : 16, fast = fast_kbps > slow ? fast_kbps : slow * 100;
    double kbps = sqrt(slow * fast);
    double bytes = kbps * 1000 / 8 * ((double)window_ns / 1e9) + 65536;
    return bytes > 8e6 ? 8000000u : (uint64_t)bytes;
}

/* ---- the byte search ---- */

struct probe {
    uint16_t off, len;   /* inverted region; len 0: none; off 0 len hello_len: all */
    int field;           /* the field it came from, -1 for the baseline and the whole */
    bool triggered;
};

static void defaults(const struct sd_locate_config *cfg, uint64_t *window, uint32_t *budget, uint32_t *par)
{
    *window = cfg->window_ns ? cfg->window_ns : 1500ull * SD_NS_PER_MS;
    *budget = cfg->max_probes ? cfg->max_probes : 128;
    *par = cfg->parallel ? SD_MIN(cfg->parallel, (uint32_t)SD_DETECT_MAX_PARALLEL) : 16;
}

/* Runs probes[0..n) in batches of |par|; sets each one's triggered. */
static void run_probes(const struct sd_locate_config *cfg, const struct sd_trigger_result *res, struct probe *pr,
                       int n, uint32_t par, uint64_t window, uint8_t (*masked)[SD_HELLO_MAX])
{
    struct sd_fetch_opts o[SD_DETECT_MAX_PARALLEL];
    struct sd_fetch_result r[SD_DETECT_MAX_PARALLEL];
    int rc[SD_DETECT_MAX_PARALLEL];

    for (int at = 0; at < n; at += (int)par) {
        int k = SD_MIN(n - at, (int)par);
        for (int i = 0; i < k; i++) {
            const struct probe *p = &pr[at + i];
            size_t len = res->hello_len;
            memcpy(masked[i], res->hello, len);
            for (size_t b = p->off; b < (size_t)p->off + p->len; b++)
                masked[i][b] = (uint8_t)~masked[i][b];
            /* A record header inverted as control C's is: the server then expects C's
             * inverted request after the record, and waits a second for it unless told. */
            if (masked[i][0] == 0xe9 && masked[i][1] == 0xfc) {
                static const char req[] = "GET /down\n";
                for (size_t b = 0; b + 1 < sizeof(req) && len < SD_HELLO_MAX; b++)
                    masked[i][len++] = (uint8_t)~(uint8_t)req[b];
            }
            o[i] = (struct sd_fetch_opts){
                .addr = cfg->addr, .port = cfg->plain_port ? cfg->plain_port : 80, .bind_addr = cfg->bind_addr,
                .plain = true, .first = masked[i], .first_len = len, .dir = SD_FETCH_DOWN,
                .bytes = cfg->threshold_bytes, .duration_ns = window,
                .connect_timeout_ns = 3ull * SD_NS_PER_S, .idle_timeout_ns = window + SD_NS_PER_S,
            };
        }
        sd_detect_fetch_many(o, r, rc, k, 0);
        for (int i = 0; i < k; i++)
            pr[at + i].triggered = rc[i] == 0 && r[i].bytes < cfg->threshold_bytes;
    }
}

/* The field holding byte |off|, -1 if none. */
static int field_of(const struct sd_trigger_result *res, uint16_t off)
{
    for (int f = 0; f < res->n_fields; f++) {
        if (off >= res->fields[f].off && off < res->fields[f].off + res->fields[f].len)
            return f;
    }
    return -1;
}

/* Adds [off, off + len) to the result's regions, merging it with the last
 * one when adjacent, equally resolved and inside the same field. */
static void add_region(struct sd_trigger_result *res, uint16_t off, uint16_t len, bool resolved)
{
    struct sd_locate_region *last = res->n_regions ? &res->regions[res->n_regions - 1] : NULL;

    if (last && last->off + last->len == off && last->resolved == resolved &&
        field_of(res, last->off) == field_of(res, off) && field_of(res, (uint16_t)(off + len - 1)) == field_of(res, off)) {
        last->len = (uint16_t)(last->len + len);
        return;
    }
    if (res->n_regions < SD_LOCATE_REGIONS_MAX)
        res->regions[res->n_regions++] = (struct sd_locate_region){off, len, resolved};
}

/* Leaves in offset order (regions are found out of order across rounds). */
struct leaf {
    uint16_t off, len;
    bool resolved;
};

/* The search's state, on the heap: probes of a round, regions to halve,
 * leaves found, masked hellos. */
struct work {
    const struct sd_locate_config *cfg;
    uint64_t window;
    uint32_t budget, par;
    struct probe pr[SD_HELLO_FIELDS_MAX + 2 + 2 * SD_LOCATE_REGIONS_MAX];
    struct leaf pend[SD_LOCATE_REGIONS_MAX], next[SD_LOCATE_REGIONS_MAX], leaves[SD_HELLO_MAX];
    int n_pend, n_leaves;
    uint8_t masked[SD_DETECT_MAX_PARALLEL][SD_HELLO_MAX];
};

static void finish(struct sd_trigger_result *res, struct leaf *lv, int n)
{
    for (int i = 1; i < n; i++) {
        struct leaf v = lv[i];
        int j = i;
        for (; j > 0 && lv[j - 1].off > v.off; j--)
            lv[j] = lv[j - 1];
        lv[j] = v;
    }
    for (int i = 0; i < n; i++)
        add_region(res, lv[i].off, lv[i].len, lv[i].resolved);
}

/* Round 0: the hello as is, wholly inverted, and each field alone. */
static void first_round(struct work *w, struct sd_trigger_result *res)
{
    struct probe *pr = w->pr;
    int n = 0;

    pr[n++] = (struct probe){0, 0, -1, false};
    pr[n++] = (struct probe){0, (uint16_t)res->hello_len, -1, false};
    for (int f = 0; f < res->n_fields; f++)
        pr[n++] = (struct probe){res->fields[f].off, res->fields[f].len, f, false};
    run_probes(w->cfg, res, pr, n, w->par, w->window, w->masked);
    res->probes = (uint32_t)n;
    res->baseline = pr[0].triggered;
    res->inverted = pr[1].triggered;
    if (!res->baseline || res->inverted)
        return;
    for (int i = 2; i < n; i++) {
        res->field_matters[pr[i].field] = !pr[i].triggered;
        if (pr[i].triggered)
            continue;
        struct leaf l = {pr[i].off, pr[i].len, true};
        if (pr[i].len == 1)
            w->leaves[w->n_leaves++] = l;
        else if (w->n_pend < SD_LOCATE_REGIONS_MAX)
            w->pend[w->n_pend++] = l;
    }
}

/* One round of halving the regions that matter; false when the budget allows none. */
static bool halve_round(struct work *w, struct sd_trigger_result *res)
{
    struct probe *pr = w->pr;
    int n_next = 0, m = 0, take = 0;

    while (take < w->n_pend && res->probes + 2 * ((uint32_t)take + 1) <= w->budget)
        take++;
    for (int i = 0; i < take; i++) {
        uint16_t h = (uint16_t)(w->pend[i].len / 2);
        pr[m++] = (struct probe){w->pend[i].off, h, i, false};
        pr[m++] = (struct probe){(uint16_t)(w->pend[i].off + h), (uint16_t)(w->pend[i].len - h), i, false};
    }
    for (int i = take; i < w->n_pend; i++) {
        w->pend[i].resolved = false; /* out of budget */
        w->leaves[w->n_leaves++] = w->pend[i];
    }
    if (take == 0)
        return false;
    run_probes(w->cfg, res, pr, m, w->par, w->window, w->masked);
    res->probes += (uint32_t)m;
    for (int i = 0; i < take; i++) {
        struct probe *a = &pr[2 * i], *b = &pr[2 * i + 1];
        if (a->triggered && b->triggered) {
            w->leaves[w->n_leaves++] = w->pend[i]; /* needed as a whole */
            continue;
        }
        for (struct probe *p = a; p <= b; p++) {
            if (p->triggered)
                continue;
            struct leaf l = {p->off, p->len, true};
            if (p->len == 1 || n_next == SD_LOCATE_REGIONS_MAX)
                w->leaves[w->n_leaves++] = l;
            else
                w->next[n_next++] = l;
        }
    }
    memcpy(w->pend, w->next, sizeof(w->next[0]) * (size_t)n_next);
    w->n_pend = n_next;
    return true;
}

int sd_locate_trigger(const struct sd_locate_config *cfg, struct sd_trigger_result *res)
{
    struct work *w;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (!cfg->addr || !cfg->name || !cfg->threshold_bytes)
        return SD_EINVAL;
    if (!(w = calloc(1, sizeof(*w))))
        return SD_ENOMEM;
    w->cfg = cfg;
    defaults(cfg, &w->window, &w->budget, &w->par);
    uint64_t t0 = sd_mono_ns();
    int len = sd_fetch_client_hello(cfg->name, res->hello, sizeof(res->hello));
    if (len < 0) {
        rc = SD_EINVAL;
        goto out;
    }
    res->hello_len = (size_t)len;
    res->n_fields = sd_hello_fields(res->hello, res->hello + len, res->fields, SD_HELLO_FIELDS_MAX);
    if (res->n_fields < 0) {
        rc = SD_EPROTO;
        goto out;
    }
    first_round(w, res);
    if (!res->baseline || res->inverted)
        goto out;
    while (w->n_pend > 0 && halve_round(w, res))
        ;
    finish(res, w->leaves, w->n_leaves);
out:
    res->seconds = (double)(sd_mono_ns() - t0) / 1e9;
    free(w);
    return rc;
}

/* ---- the hop search ---- */

struct hop_job {
    const struct sd_locate_config *cfg;
    const uint8_t *hello;
    size_t hello_len;
    int ttl;                 /* 0: the control, nothing injected */
    bool rst, ok;            /* reset seen; the probe ran */
    uint64_t window;
    uint64_t bytes;          /* received */
    char err[96];
};

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += sd_rd16be(p + i);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

/* An IPv4 packet carrying |payload| on the connection src -> dst at seq/ack, TTL |ttl|. Returns its length. */
static size_t build_segment(uint8_t *out, const struct sockaddr_in *src, const struct sockaddr_in *dst, uint32_t seq,
                            uint32_t ack, int ttl, const uint8_t *payload, size_t n)
{
    uint8_t *ip = out, *tcp = out + 20;
    uint16_t id;
    size_t total = 20 + 20 + n;

    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
        id = (uint16_t)sd_mono_ns();
    memset(out, 0, 40);
    ip[0] = 0x45;
    ip[2] = (uint8_t)(total >> 8);
    ip[3] = (uint8_t)total;
    ip[4] = (uint8_t)(id >> 8);
    ip[5] = (uint8_t)id;
    ip[6] = 0x40; /* DF */
    ip[8] = (uint8_t)ttl;
    ip[9] = IPPROTO_TCP;
    memcpy(ip + 12, &src->sin_addr, 4);
    memcpy(ip + 16, &dst->sin_addr, 4);
    memcpy(tcp, &src->sin_port, 2);
    memcpy(tcp + 2, &dst->sin_port, 2);
    for (int i = 0; i < 4; i++) {
        tcp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        tcp[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; /* PSH ACK */
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    memcpy(tcp + 20, payload, n);
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = (uint8_t)((20 + n) >> 8);
    pseudo[11] = (uint8_t)(20 + n);
    uint16_t c = csum_fold(csum_add(csum_add(0, pseudo, 12), tcp, 20 + n));
    tcp[16] = (uint8_t)(c >> 8);
    tcp[17] = (uint8_t)c;
    return total;
}

/* Reads the next sequence numbers of an idle connection (TCP_REPAIR), leaving it as it was. */
static int next_seqs(int fd, uint32_t *snd, uint32_t *rcv)
{
    int on = TCP_REPAIR_ON, off = TCP_REPAIR_OFF_NO_WP, q;
    socklen_t len = sizeof(*snd);

    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
        return -1;
    q = TCP_SEND_QUEUE;
    int rc = setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
    rc = rc ? rc : getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, snd, &len);
    q = TCP_RECV_QUEUE;
    rc = rc ? rc : setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
    len = sizeof(*rcv);
    rc = rc ? rc : getsockopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, rcv, &len);
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
        return -1;
    return rc;
}

static int connect_wait(int fd, const struct sockaddr_in *dst, uint64_t timeout_ns)
{
    if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == 0)
        return 0;
    if (errno != EINPROGRESS)
        return -1;
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, (int)(timeout_ns / SD_NS_PER_MS)) != 1)
        return -1;
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    return err ? -1 : 0;
}

/* Downloads on |fd| until the window ends or the threshold is reached. */
static void hop_download(struct hop_job *j, int fd)
{
    uint8_t buf[16384];
    uint64_t end = sd_mono_ns() + j->window;

    for (;;) {
        uint64_t now = sd_mono_ns();
        if (now >= end || j->bytes >= j->cfg->threshold_bytes)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, (int)((end - now) / SD_NS_PER_MS) + 1) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            j->bytes += (uint64_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            j->rst = n < 0 && errno == ECONNRESET;
            break;
        }
    }
    j->ok = true;
}

static void *hop_main(void *arg)
{
    struct hop_job *j = arg;
    struct sockaddr_in dst = {.sin_family = AF_INET}, src;
    socklen_t slen = sizeof(src);
    char req[96];
    uint32_t snd = 0, rcv = 0;
    int raw = -1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    dst.sin_port = htons(j->cfg->plain_port ? j->cfg->plain_port : 80);
    inet_pton(AF_INET, j->cfg->addr, &dst.sin_addr);
    if (fd < 0 || connect_wait(fd, &dst, 3ull * SD_NS_PER_S) < 0 || getsockname(fd, (struct sockaddr *)&src, &slen) < 0) {
        snprintf(j->err, sizeof(j->err), "connect: %s", strerror(errno));
        goto out;
    }
    if (j->ttl > 0) {
        uint8_t pkt[40 + SD_HELLO_MAX];
        if (next_seqs(fd, &snd, &rcv) < 0) {
            snprintf(j->err, sizeof(j->err), "TCP_REPAIR: %s", strerror(errno));
            goto out;
        }
        raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
        size_t n = build_segment(pkt, &src, &dst, snd, rcv, j->ttl, j->hello, j->hello_len);
        if (raw < 0 || sendto(raw, pkt, n, 0, (const struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)n) {
            snprintf(j->err, sizeof(j->err), "raw socket: %s", strerror(errno));
            goto out;
        }
        poll(NULL, 0, 20); /* the hello leads on the wire */
    }
    int rl = snprintf(req, sizeof(req), "GET /down?bytes=%llu&seconds=%u\n",
                      (unsigned long long)j->cfg->threshold_bytes, (unsigned)(j->window / SD_NS_PER_S) + 2);
    if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl) {
        snprintf(j->err, sizeof(j->err), "send: %s", strerror(errno));
        goto out;
    }
    hop_download(j, fd);
out:
    if (raw >= 0)
        close(raw);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int sd_locate_hop(const struct sd_locate_config *cfg, int max_ttl, struct sd_hop_result *res)
{
    struct hop_job jobs[SD_LOCATE_TTL_MAX + 1];
    pthread_t tid[SD_LOCATE_TTL_MAX + 1];
    bool made[SD_LOCATE_TTL_MAX + 1] = {false};
    uint8_t hello[SD_HELLO_MAX];
    struct in_addr a4;

    memset(res, 0, sizeof(*res));
    if (!cfg->addr || !cfg->name || !cfg->threshold_bytes || max_ttl < 1 || max_ttl > SD_LOCATE_TTL_MAX ||
        inet_pton(AF_INET, cfg->addr, &a4) != 1)
        return SD_EINVAL;
    if (geteuid() != 0)
        return SD_EPERM;
    int len = sd_fetch_client_hello(cfg->name, hello, sizeof(hello));
    if (len < 0)
        return SD_EINVAL;
    res->max_ttl = max_ttl;
    for (int t = 0; t <= max_ttl; t++) {
        jobs[t] = (struct hop_job){.cfg = cfg, .hello = hello, .hello_len = (size_t)len, .ttl = t,
                                   .window = cfg->window_ns ? cfg->window_ns : 1500ull * SD_NS_PER_MS};
        made[t] = pthread_create(&tid[t], NULL, hop_main, &jobs[t]) == 0;
    }
    for (int t = 0; t <= max_ttl; t++) {
        if (made[t])
            pthread_join(tid[t], NULL);
    }
    res->baseline = jobs[0].ok && jobs[0].bytes >= cfg->threshold_bytes;
    if (!jobs[0].ok)
        snprintf(res->detail, sizeof(res->detail), "control connection: %s", jobs[0].err);
    for (int t = 1; t <= max_ttl; t++) {
        struct hop_job *j = &jobs[t];
        /* No byte and no reset: the hello reached the server and broke the connection. */
        res->probed[t] = j->ok && (j->bytes > 0 || j->rst);
        res->triggered[t] = res->probed[t] && j->bytes < cfg->threshold_bytes;
        if (!j->ok && !res->detail[0])
            snprintf(res->detail, sizeof(res->detail), "TTL %d: %s", t, j->err);
    }
    /* The box is at the least TTL from which every probed TTL triggers. */
    for (int t = max_ttl; t >= 1; t--) {
        if (!res->probed[t])
            continue;
        if (!res->triggered[t])
            break;
        res->hop = t;
    }
    return 0;
}
