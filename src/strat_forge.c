/*
 * strat_forge.c - the strategies that need forged packets: junk or a fake
 * hello before the real one, a RST or FIN after it, the hello's segments
 * reordered, or its IP packet fragmented.
 *
 * The real ClientHello must go out with the right sequence numbers, which
 * only the kernel knows. So the kernel sends it, and a client-side NFQUEUE
 * holds it on its way out:
 *
 *   iptables-legacy -t mangle -I OUTPUT -p tcp -d SERVER --dport P --sport S
 *       -m mark ! --mark 0x5d0 -m length --length 81:65535
 *       -j NFQUEUE --queue-num Q --queue-bypass
 *
 * (one connection; packets over 80 bytes, i.e. with payload: a pure ACK has
 * at most 80 bytes of IPv4 and TCP headers; the raw socket marks its own
 * packets 0x5d0 so they are not queued again). The queue is bound before
 * connect. The BIO write of the first flight (strat_tls.c) lands here: the
 * bytes are written to the socket, which puts the segment in our queue
 * synchronously; it is read back, the forgery is built from its real
 * headers, and the verdict (accept, or drop when forged pieces replace it)
 * is given. Then the queue is closed: with no one bound, --queue-bypass
 * lets later packets of the connection through untouched, and the rule is
 * deleted when the run ends.
 *
 * Order on the wire is order of sending: forged packets sent from the raw
 * socket before the verdict leave before the real segment; a teardown is
 * sent after the verdict has been flushed (the kernel reinjects the segment
 * during that call). IPv4 only: the lab's first router is the censor, so a
 * TTL of 1 is seen by the censor and dies there.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "evade_int.h"
#include "fetch.h"
#include "io_nfq.h"
#include "mono.h"
#include "pkt.h"
#include "strat.h"
#include "subproc.h"

enum {
    FORGE_MARK = 0x5d0,
    QUEUE_BASE = 3000,
    QUEUE_SPAN = 4096,
    PKT_MAX = 4096,
    FAKE_MAX = 2048,
    IPV4_HDR = 20,
};

struct sd__forge {
    struct sd_nfq *q;
    int raw;
    uint16_t queue;
    bool rule_in;
    char dst[INET_ADDRSTRLEN], dport[8], sport[8], qnum[8];
    struct sockaddr_in to;
    uint8_t pkt[2][PKT_MAX];  /* packets being built */
    uint8_t fake[FAKE_MAX];   /* the fake hello */
};

/* ---- packet builders (pure) ---- */

static int check_v4_tcp(const struct sd_pkt *pkt)
{
    if (pkt->family != 4 || pkt->proto != 6 || !(pkt->flags & SD_PKT_L4))
        return SD_ENOTSUP;
    if (pkt->l4_off - pkt->l3_off != IPV4_HDR)
        return SD_ENOTSUP; /* IPv4 options: not ours to copy */
    return 0;
}

int sd_strat_segment(uint8_t *out, size_t cap, const struct sd_pkt *pkt, uint32_t seq_off, const uint8_t *payload,
                     size_t n, const struct sd_strat_tweak *tw)
{
    int rc = check_v4_tcp(pkt);
    if (rc < 0)
        return rc;
    size_t hl = pkt->tcp_hlen, total = IPV4_HDR + hl + n;
    if (total > cap || total > 65535)
        return SD_ERANGE;
    memcpy(out, pkt->frame + pkt->l3_off, IPV4_HDR);
    memcpy(out + IPV4_HDR, pkt->frame + pkt->l4_off, hl);
    if (n)
        memcpy(out + IPV4_HDR + hl, payload, n);
    sd_put16be(out + 2, (uint16_t)total);
    if (tw->ip_id)
        sd_put16be(out + 4, tw->ip_id);
    if (tw->ttl)
        out[8] = tw->ttl;
    uint8_t *tcp = out + IPV4_HDR;
    sd_put32be(tcp + 4, pkt->seq + seq_off);
    if (tw->flags)
        tcp[13] = tw->flags;
    if (sd_pkt_fix_csums(out, total) < 0)
        return SD_ENOTSUP;
    if (tw->badsum)
        sd_put16be(tcp + 16, (uint16_t)(sd_rd16be(tcp + 16) ^ 0x5d5d));
    return (int)total;
}

/* The transport checksum |pkt| should carry, whatever its field says:
 * |ck| is the field's offset in the transport header. */
static uint16_t l4_csum(const struct sd_pkt *pkt, size_t l4len, size_t ck)
{
    const uint8_t *l4 = pkt->frame + pkt->l4_off;
    uint8_t ph[12];

    memcpy(ph, pkt->saddr, 4);
    memcpy(ph + 4, pkt->daddr, 4);
    ph[8] = 0;
    ph[9] = pkt->proto;
    sd_put16be(ph + 10, (uint16_t)l4len);
    uint32_t s = sd_csum_add(0, ph, sizeof(ph));
    s = sd_csum_add(s, l4, ck); /* everything but the checksum field */
    s = sd_csum_add(s, l4 + ck + 2, l4len - ck - 2);
    uint16_t c = sd_csum_fold(s);
    return c == 0 && pkt->proto == 17 ? 0xffff : c;
}

int sd_strat_fragment(uint8_t *out, size_t cap, const struct sd_pkt *pkt, size_t from, size_t to, uint16_t ip_id)
{
    if (pkt->family != 4 || (pkt->proto != 6 && pkt->proto != 17) || !(pkt->flags & SD_PKT_L4) ||
        pkt->l4_off - pkt->l3_off != IPV4_HDR)
        return SD_ENOTSUP;
    size_t hl = pkt->proto == 6 ? pkt->tcp_hlen : 8, ck = pkt->proto == 6 ? 16 : 6;
    size_t l4len = hl + pkt->payload_len;
    if (from % 8 || from >= to || to > l4len || (pkt->flags & (SD_PKT_TRUNCATED | SD_PKT_FRAG)))
        return SD_EINVAL;
    size_t total = IPV4_HDR + (to - from);
    if (total > cap)
        return SD_ERANGE;
    memcpy(out, pkt->frame + pkt->l3_off, IPV4_HDR);
    sd_put16be(out + 2, (uint16_t)total);
    sd_put16be(out + 4, ip_id);
    sd_put16be(out + 6, (uint16_t)((to < l4len ? 0x2000 : 0) | (from / 8))); /* MF, offset; DF cleared */
    memcpy(out + IPV4_HDR, pkt->frame + pkt->l4_off + from, to - from);
    if (from < ck + 2 && to > ck) { /* the checksum field is in this fragment: make it right */
        uint16_t c = l4_csum(pkt, l4len, ck);
        const uint8_t cb[2] = {(uint8_t)(c >> 8), (uint8_t)c};
        for (size_t i = ck; i < ck + 2; i++)
            if (i >= from && i < to)
                out[IPV4_HDR + i - from] = cb[i - ck];
    }
    sd_put16be(out + 10, 0);
    sd_put16be(out + 10, sd_csum_fold(sd_csum_add(0, out, IPV4_HDR)));
    return (int)total;
}

void sd_strat_junk(uint8_t *out, size_t n, uint64_t seed)
{
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[i] = (uint8_t)(x >> 32);
    }
    if (n)
        out[0] = 0;
}

/* ---- the queue ---- */

static void rule_argv(struct sd__forge *f, const char *op, char **argv)
{
    char *a[] = {"iptables-legacy", "-w", "-t", "mangle", (char *)op, "OUTPUT", "-p", "tcp", "-d", f->dst,
                 "--dport", f->dport, "--sport", f->sport, "-m", "mark", "!", "--mark", "0x5d0", "-m", "length",
                 "--length", "81:65535", "-j", "NFQUEUE", "--queue-num", f->qnum, "--queue-bypass", NULL};
    memcpy(argv, a, sizeof(a));
}

enum { RULE_ARGS = 29 };

int sd__forge_open(struct sd__evade_run *x)
{
    struct sd__forge *f = calloc(1, sizeof(*f));
    char err[200], out[300], *argv[RULE_ARGS];
    int one = FORGE_MARK;

    if (!f)
        return SD_ENOMEM;
    f->raw = -1;
    x->forge = f;
    if (inet_pton(AF_INET, x->t->addr, &f->to.sin_addr) != 1) {
        sd__evade_note(x, "forged packets are IPv4 only (server %s)", x->t->addr);
        return SD_ENOTSUP;
    }
    f->to.sin_family = AF_INET;
    snprintf(f->dst, sizeof(f->dst), "%s", x->t->addr);
    snprintf(f->dport, sizeof(f->dport), "%u", (unsigned)(x->t->port ? x->t->port : 443));
    snprintf(f->sport, sizeof(f->sport), "%u", x->sport);
    f->raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (f->raw < 0 || setsockopt(f->raw, SOL_SOCKET, SO_MARK, &one, sizeof(one)) < 0) {
        sd__evade_note(x, "raw socket: %s (forging needs root)", strerror(errno));
        return errno == EPERM || errno == EACCES ? SD_EPERM : SD_EIO;
    }
    for (int i = 0; i < 8 && !f->q; i++) {
        struct sd_nfq_config c = {0};
        c.queue = (uint16_t)((x->t->queue ? x->t->queue : QUEUE_BASE + x->sport % QUEUE_SPAN) + i);
        c.maxlen = 64;
        c.batch = 16;
        c.rcvbuf = 1 << 20;
        f->q = sd_nfq_open(&c, err, sizeof(err));
        f->queue = c.queue;
    }
    if (!f->q) {
        sd__evade_note(x, "client queue: %s", err);
        return SD_EIO;
    }
    snprintf(f->qnum, sizeof(f->qnum), "%u", f->queue);
    rule_argv(f, "-I", argv);
    int rc = sd_subproc_run(argv, out, sizeof(out));
    if (rc != 0) {
        sd__evade_note(x, "iptables-legacy (mangle OUTPUT) failed: %s", out[0] ? out : "no output");
        return SD_EIO;
    }
    f->rule_in = true;
    return 0;
}

void sd__forge_close(struct sd__forge *f)
{
    if (!f)
        return;
    if (f->rule_in) {
        char *argv[RULE_ARGS];
        rule_argv(f, "-D", argv);
        sd_subproc_run(argv, NULL, 0);
    }
    sd_nfq_close(f->q);
    if (f->raw >= 0)
        close(f->raw);
    free(f);
}

static int send_raw(struct sd__evade_run *x, const uint8_t *p, int n)
{
    if (n < 0) {
        sd__evade_note(x, "cannot build the packet: %s", sd_strerror(n));
        return n;
    }
    if (sendto(x->forge->raw, p, (size_t)n, 0, (const struct sockaddr *)&x->forge->to, sizeof(x->forge->to)) != n) {
        sd__evade_note(x, "raw send: %s", strerror(errno));
        return SD_EIO;
    }
    x->r->forged++;
    return 0;
}

static struct sd_strat_tweak fooling(const struct sd_evade_spec *s)
{
    struct sd_strat_tweak tw = {0};
    tw.ttl = s->badsum ? 0 : s->ttl;
    tw.badsum = s->badsum;
    return tw;
}

static const char *fooled(const struct sd_evade_spec *s, char *buf, size_t len)
{
    if (s->badsum)
        snprintf(buf, len, "bad checksum");
    else
        snprintf(buf, len, "TTL %u", s->ttl);
    return buf;
}

/* Forgeries sent before the real segment, which then passes. */
static int before(struct sd__evade_run *x, const struct sd_pkt *pkt)
{
    const struct sd_evade_spec *s = x->spec;
    struct sd__forge *f = x->forge;
    struct sd_strat_tweak tw = fooling(s);
    char how[24];
    int n;

    if (s->def->op == SD_EVADE_JUNK) {
        sd_strat_junk(f->fake, SD_MIN(s->size, (uint32_t)FAKE_MAX), pkt->seq ^ ((uint64_t)pkt->sport << 32));
        n = sd_strat_segment(f->pkt[0], PKT_MAX, pkt, 0, f->fake, SD_MIN(s->size, (uint32_t)FAKE_MAX), &tw);
        sd__evade_note(x, "junk of %u B, %s, before the hello", s->size, fooled(s, how, sizeof(how)));
    } else {
        const char *name = s->name[0] ? s->name : x->t->fake_sni ? x->t->fake_sni : "www.example.com";
        int len = sd_fetch_client_hello(name, f->fake, sizeof(f->fake));
        if (len < 0) {
            sd__evade_note(x, "cannot make a fake hello for '%s'", name);
            return len;
        }
        n = sd_strat_segment(f->pkt[0], PKT_MAX, pkt, 0, f->fake, (size_t)len, &tw);
        sd__evade_note(x, "fake hello for %s (%d B), %s, before the real one", name, len, fooled(s, how, sizeof(how)));
    }
    return send_raw(x, f->pkt[0], n);
}

/* The real segment replaced by two pieces: reordered segments, or fragments. */
static int replace(struct sd__evade_run *x, const struct sd_pkt *pkt, const uint8_t *flight, size_t flen)
{
    struct sd__forge *f = x->forge;
    struct sd_evade_marks m;
    struct sd_strat_tweak keep = {0};
    const uint8_t *pl = pkt->frame + pkt->payload_off;
    size_t len = pkt->payload_len, at;
    int a, b;

    sd_evade_marks(flight, flen, &m);
    m.len = len; /* the segment may hold only the start of the flight */
    at = sd_evade_resolve(&x->spec->pos[0], &m);
    if (x->spec->def->op == SD_EVADE_DISORDER) {
        b = sd_strat_segment(f->pkt[1], PKT_MAX, pkt, (uint32_t)at, pl + at, len - at, &keep);
        a = sd_strat_segment(f->pkt[0], PKT_MAX, pkt, 0, pl, at, &keep);
        sd__evade_note(x, "segments [%zu,%zu) then [0,%zu)", at, len, at);
    } else {
        uint16_t id = 0;
        size_t cut = ((size_t)pkt->tcp_hlen + at) & ~(size_t)7;
        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id) || id == 0)
            id = (uint16_t)(pkt->seq | 1);
        a = sd_strat_fragment(f->pkt[0], PKT_MAX, pkt, 0, cut, id);
        b = sd_strat_fragment(f->pkt[1], PKT_MAX, pkt, cut, (size_t)pkt->tcp_hlen + len, id);
        sd__evade_note(x, "IP fragments of %zu and %zu TCP bytes", cut, (size_t)pkt->tcp_hlen + len - cut);
    }
    if (x->spec->def->op == SD_EVADE_DISORDER) {
        int rc = send_raw(x, f->pkt[1], b);
        return rc < 0 ? rc : send_raw(x, f->pkt[0], a);
    }
    int rc = send_raw(x, f->pkt[0], a);
    return rc < 0 ? rc : send_raw(x, f->pkt[1], b);
}

enum { VERDICT_GIVEN = 2 };

/* Acts on the queued first data segment. Returns the verdict to give
 * (SD_NFQ_ACCEPT, SD_NFQ_DROP, or VERDICT_GIVEN when it was given here);
 * a failure goes to |*err|, and the real segment is then let through. */
static int forge_segment(struct sd__evade_run *x, const struct sd_pkt *pkt, const uint8_t *flight, size_t flen,
                         uint32_t id, int *err)
{
    const struct sd_evade_spec *s = x->spec;

    switch (s->def->op) {
    case SD_EVADE_JUNK:
    case SD_EVADE_FAKE:
        *err = before(x, pkt);
        return SD_NFQ_ACCEPT;
    case SD_EVADE_DISORDER:
    case SD_EVADE_IPFRAG:
        *err = replace(x, pkt, flight, flen);
        return *err < 0 ? SD_NFQ_ACCEPT : SD_NFQ_DROP;
    case SD_EVADE_TEARDOWN: {
        struct sd_strat_tweak tw = fooling(s);
        char how[24];
        tw.flags = s->tcp_flags;
        if (sd_nfq_verdict(x->forge->q, id, SD_NFQ_ACCEPT, NULL, 0) < 0 || sd_nfq_flush(x->forge->q) < 0) {
            *err = SD_EIO;
            return VERDICT_GIVEN;
        }
        int n = sd_strat_segment(x->forge->pkt[0], PKT_MAX, pkt, pkt->payload_len, NULL, 0, &tw);
        sd__evade_note(x, "%s after the hello, %s", s->tcp_flags & SD_TCP_RST ? "RST/ACK" : "FIN/ACK",
                       fooled(s, how, sizeof(how)));
        *err = send_raw(x, x->forge->pkt[0], n);
        return VERDICT_GIVEN;
    }
    default:
        return SD_NFQ_ACCEPT;
    }
}

int sd__forge_first(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline)
{
    struct sd__forge *f = x->forge;
    struct sd_nfq_pkt qp[16];
    bool done = false;
    int rc = 0;

    if (!f) {
        sd__evade_note(x, "no client queue");
        return SD_EIO;
    }
    rc = sd__evade_send_all(x->fd, p, n, 0, deadline);
    if (rc < 0) {
        sd__evade_note(x, "cannot write the hello");
        return rc;
    }
    /* The segment is queued during the write; wait a little for stragglers
     * (a hello longer than one segment), then let the queue go. */
    uint64_t until = sd_mono_ns() + SD_NS_PER_S;
    while (sd_mono_ns() < until) {
        struct pollfd pf = {sd_nfq_fd(f->q), POLLIN, 0};
        if (poll(&pf, 1, done ? 20 : 200) <= 0) {
            if (done)
                break;
            continue;
        }
        int k = sd_nfq_recv(f->q, qp, SD_COUNTOF(qp));
        for (int i = 0; i < k; i++) {
            struct sd_pkt pkt;
            int v = SD_NFQ_ACCEPT;
            if (!done && sd_pkt_decode(&pkt, SD_DLT_RAW, qp[i].data, qp[i].len) == 0 && pkt.payload_len > 0) {
                done = true;
                v = forge_segment(x, &pkt, p, n, qp[i].id, &rc);
            }
            if (v != VERDICT_GIVEN)
                sd_nfq_verdict(f->q, qp[i].id, v, NULL, 0);
        }
        sd_nfq_flush(f->q);
    }
    sd_nfq_close(f->q); /* unbound: --queue-bypass passes the rest */
    f->q = NULL;
    if (!done) {
        sd__evade_note(x, "the hello never reached the client queue %u", f->queue);
        return SD_EIO;
    }
    if (rc == 0)
        x->r->applied = true;
    return rc;
}
