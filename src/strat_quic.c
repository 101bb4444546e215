/*
 * strat_quic.c - the QUIC strategies (for the quic22/quic23 presets): a
 * real, protected QUIC Initial carrying a ClientHello, sent as the strategy
 * says (as it is, smaller, under another version, after a junk datagram, in
 * IP fragments, with another name), then a bulk transfer over the same UDP
 * flow so that goodput can be measured.
 *
 * After the Initial this is not QUIC: no server handshake, no encryption.
 * The censors under test decide on the client's first datagrams (spec 4.3),
 * so what follows only has to be a UDP flow that needs the client's
 * packets to go on, as QUIC does:
 *
 *   client                                      server (responder)
 *   Initial (long header, CRYPTO(ClientHello)) ->
 *                                             <- "SDA"     session started
 *   "SDR" want=N (every few datagrams)         ->
 *                                             <- "SDD" seq, 1200 bytes, up to N
 *
 * Every datagram of the responder and the requests start with 0x40 (a
 * short-header first byte). The client keeps a window of 48 datagrams in
 * flight and asks again when nothing came for 50 ms, so a censor that drops
 * the client's packets stops the transfer, as it stops a QUIC connection.
 * The responder (sd_quicbulk_*) accepts any datagram with the long-header
 * bit as a session start and ignores anything else (a junk first datagram).
 *
 * The ClientHello is OpenSSL's TLS one (its handshake message, without the
 * record header): it lacks quic_transport_parameters, which the censors
 * here do not look at.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bytes.h"
#include "evade_int.h"
#include "evade_proxy.h"
#include "fetch.h"
#include "mono.h"
#include "pkt.h"
#include "quic.h"
#include "strat.h"
#include "tconn.h"
#include "waitfd.h"

enum {
    DGRAM = 1200,          /* responder's datagrams */
    WINDOW = 48,           /* datagrams asked for ahead of those received */
    BURST = 64,            /* most the responder sends per request */
    MAX_PEERS = 16,
    INITIAL_MAX = 1500,
    RETRY_MS = 500,        /* Initial resent this often until the responder answers */
    STALL_MS = 50,         /* ask again after this long without data */
};

static const uint8_t tag_ack[4] = {0x40, 'S', 'D', 'A'}, tag_req[4] = {0x40, 'S', 'D', 'R'},
                     tag_data[4] = {0x40, 'S', 'D', 'D'};

/* ---- the Initial (pure) ---- */

static int seal(const struct sd_quic_keys *k, uint64_t pn, const uint8_t *aad, size_t aad_len, uint8_t *pl,
                size_t n, uint8_t tag[16])
{
    uint8_t nonce[12];
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len, ok;

    memcpy(nonce, k->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(pn >> (8 * i));
    ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, k->key, nonce) == 1 &&
         EVP_EncryptUpdate(c, NULL, &len, aad, (int)aad_len) == 1 && EVP_EncryptUpdate(c, pl, &len, pl, (int)n) == 1 &&
         EVP_EncryptFinal_ex(c, pl + len, &len) == 1 && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : SD_ECRYPTO;
}

static int hp_mask(const uint8_t hp[16], const uint8_t *sample, uint8_t mask[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok;

    ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_ecb(), NULL, hp, NULL) == 1 && EVP_CIPHER_CTX_set_padding(c, 0) &&
         EVP_EncryptUpdate(c, mask, &len, sample, 16) == 1 && len == 16;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : SD_ECRYPTO;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    if (v < 64)
        return sd_put8(p, (uint8_t)v);
    if (v < 16384)
        return sd_put16be(p, (uint16_t)(0x4000 | v));
    return sd_put32be(p, (uint32_t)(0x80000000u | v));
}

int sd_strat_quic_initial(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len,
                          const uint8_t *ch, size_t ch_len, size_t pad_to)
{
    struct sd_quic_keys k;
    struct sd_quic_ctx *qc;
    uint8_t *p = out, mask[16];
    const uint64_t pn = 0;
    enum { PN_LEN = 2, TAG = 16 };

    if (dcid_len > SD_QUIC_CID_MAX || ch_len > 16000)
        return SD_EINVAL;
    size_t hdr = 1 + 4 + 1 + dcid_len + 1 + 8 + 1 + 2 + PN_LEN; /* 8-byte SCID, no token, 2-byte Length */
    size_t frame = 1 + 1 + 4 + ch_len;                             /* type, offset 0, 4-byte length max */
    size_t total = SD_MAX(hdr + frame + TAG, pad_to);
    if (total > cap || total > 16383 + hdr)
        return SD_ERANGE;
    if (!(qc = sd_quic_ctx_new()))
        return SD_ENOMEM;
    int rc = sd_quic_initial_keys(qc, version, dcid, dcid_len, false, &k);
    sd_quic_ctx_free(qc);
    if (rc < 0)
        return rc;
    p = sd_put8(p, 0xc0 | (PN_LEN - 1)); /* long header, fixed bit, Initial, 2-byte packet number */
    p = sd_put32be(p, version);
    p = sd_put8(p, (uint8_t)dcid_len);
    memcpy(p, dcid, dcid_len);
    p += dcid_len;
    p = sd_put8(p, 8);
    for (int i = 0; i < 8; i++)
        p = sd_put8(p, (uint8_t)(dcid_len ? dcid[i % dcid_len] ^ 0x5d : i)); /* SCID: anything */
    p = sd_put8(p, 0); /* no token */
    size_t pn_off = (size_t)(p - out) + 2;
    p = sd_put16be(p, (uint16_t)(0x4000 | (total - pn_off))); /* Length: pn, payload, tag */
    p = sd_put16be(p, (uint16_t)pn);
    uint8_t *pl = p;
    p = sd_put8(p, 0x06); /* CRYPTO */
    p = sd_put8(p, 0);    /* offset 0 */
    p = put_varint(p, ch_len);
    memcpy(p, ch, ch_len);
    p += ch_len;
    memset(p, 0, (size_t)(out + total - TAG - p)); /* PADDING frames */
    size_t pl_len = total - TAG - (size_t)(pl - out);
    if (seal(&k, pn, out, (size_t)(pl - out), pl, pl_len, out + total - TAG) < 0 ||
        hp_mask(k.hp, out + pn_off + 4, mask) < 0)
        return SD_ECRYPTO;
    out[0] ^= mask[0] & 0x0f;
    for (int i = 0; i < PN_LEN; i++)
        out[pn_off + (size_t)i] ^= mask[1 + i];
    return (int)total;
}

/* ---- the client ---- */

struct qclient {
    struct sd__evade_run *x;
    int fd;
    uint8_t initial[INITIAL_MAX];
    int initial_len;
    uint8_t buf[2048];
};

/* The Initial, built for the strategy: version, size, name. */
static int build_initial(struct qclient *q)
{
    const struct sd_evade_spec *s = q->x->spec;
    uint8_t rec[2048], dcid[8];
    int n = sd_fetch_client_hello(q->x->sni[0] ? q->x->sni : NULL, rec, sizeof(rec));

    if (n < 9)
        return SD_ECRYPTO;
    if (getrandom(dcid, sizeof(dcid), 0) != (ssize_t)sizeof(dcid))
        memset(dcid, 0x5d, sizeof(dcid));
    /* The handshake message: the record without its 5-byte header. */
    q->initial_len = sd_strat_quic_initial(q->initial, sizeof(q->initial), s->quic_version, dcid, sizeof(dcid),
                                           rec + 5, (size_t)n - 5, s->size);
    return q->initial_len < 0 ? q->initial_len : 0;
}

/* The Initial as two IPv4 fragments from a raw socket, with the UDP socket's own port. */
static int send_fragments(struct qclient *q)
{
    struct sockaddr_in me = {0}, to = {0};
    socklen_t len = sizeof(me);
    uint8_t pkt[INITIAL_MAX + 28], a[INITIAL_MAX + 28], b[INITIAL_MAX + 28];
    struct sd_pkt dp;
    int raw;

    if (getsockname(q->fd, (struct sockaddr *)&me, &len) < 0 || me.sin_family != AF_INET ||
        inet_pton(AF_INET, q->x->t->addr, &to.sin_addr) != 1) {
        sd__evade_note(q->x, "IP fragments: IPv4 only");
        return SD_ENOTSUP;
    }
    to.sin_family = AF_INET;
    to.sin_port = 0;
    size_t total = 28 + (size_t)q->initial_len;
    uint8_t *p = pkt;
    p = sd_put8(p, 0x45);
    p = sd_put8(p, 0);
    p = sd_put16be(p, (uint16_t)total);
    p = sd_put32be(p, 0); /* id (set per fragment), flags, offset */
    p = sd_put8(p, 64);
    p = sd_put8(p, 17);
    p = sd_put16be(p, 0);
    memcpy(p, &me.sin_addr, 4);
    memcpy(p + 4, &to.sin_addr, 4);
    p += 8;
    p = sd_put16be(p, ntohs(me.sin_port));
    p = sd_put16be(p, q->x->t->port ? q->x->t->port : 443);
    p = sd_put16be(p, (uint16_t)(8 + q->initial_len));
    p = sd_put16be(p, 0);
    memcpy(p, q->initial, (size_t)q->initial_len);
    if (sd_pkt_fix_csums(pkt, total) < 0 || sd_pkt_decode(&dp, SD_DLT_RAW, pkt, total) < 0)
        return SD_EPROTO;
    uint16_t id = (uint16_t)(ntohs(me.sin_port) | 1);
    size_t cut = 8 + 512; /* UDP header and the first 512 bytes of the Initial */
    int na = sd_strat_fragment(a, sizeof(a), &dp, 0, cut, id);
    int nb = sd_strat_fragment(b, sizeof(b), &dp, cut, total - 20, id);
    if (na < 0 || nb < 0)
        return SD_EPROTO;
    raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (raw < 0) {
        sd__evade_note(q->x, "raw socket: %s (IP fragments need root)", strerror(errno));
        return SD_EPERM;
    }
    int rc = sendto(raw, a, (size_t)na, 0, (struct sockaddr *)&to, sizeof(to)) == na &&
                     sendto(raw, b, (size_t)nb, 0, (struct sockaddr *)&to, sizeof(to)) == nb
                 ? 0
                 : SD_EIO;
    close(raw);
    q->x->r->forged += rc == 0 ? 2 : 0;
    return rc;
}

static int send_initial(struct qclient *q, bool first)
{
    const struct sd_evade_spec *s = q->x->spec;

    if (first && s->def->op == SD_EVADE_QUIC && s->size_junk) {
        uint8_t junk[1400];
        sd_strat_junk(junk, s->size_junk, (uint64_t)q->fd * 7919u);
        if (send(q->fd, junk, s->size_junk, 0) != (ssize_t)s->size_junk)
            return SD_EIO;
    }
    if (s->quic_frag)
        return send_fragments(q);
    return send(q->fd, q->initial, (size_t)q->initial_len, 0) == q->initial_len ? 0 : SD_EIO;
}

static int ask(struct qclient *q, uint32_t want)
{
    uint8_t req[8];
    memcpy(req, tag_req, 4);
    sd_put32be(req + 4, want);
    return send(q->fd, req, sizeof(req), 0) == (ssize_t)sizeof(req) ? 0 : SD_EIO;
}

/* Waits for the responder's "session started", resending the Initial. */
static int start(struct qclient *q, uint64_t deadline)
{
    uint64_t next = 0;
    bool first = true;

    for (;;) {
        uint64_t now = sd_mono_ns();
        if (now >= deadline)
            return SD_EAGAIN;
        if (now >= next) {
            int rc = send_initial(q, first);
            if (rc < 0)
                return rc;
            first = false;
            next = now + RETRY_MS * (uint64_t)SD_NS_PER_MS;
        }
        if (!sd_tconn_wait(q->fd, POLLIN, SD_MIN(next, deadline)))
            continue;
        ssize_t n = recv(q->fd, q->buf, sizeof(q->buf), 0);
        if (n >= 4 && !memcmp(q->buf, tag_ack, 4))
            return 0;
        if (n < 0 && errno == ECONNREFUSED)
            return SD_EIO;
    }
}

static void transfer(struct qclient *q, uint64_t t0, struct sd_evade_result *r)
{
    const struct sd_evade_target *t = q->x->t;
    uint64_t bin = t->bin_ns ? t->bin_ns : 100ull * SD_NS_PER_MS;
    uint64_t idle = t->idle_timeout_ns ? t->idle_timeout_ns : 10ull * SD_NS_PER_S;
    uint64_t end = t->duration_ns ? t0 + t->duration_ns : UINT64_MAX / 2, last = t0, asked_at = 0;
    uint32_t got = 0, asked = 0;

    for (;;) {
        uint64_t now = sd_mono_ns();
        if (now >= end || (t->bytes && r->f.bytes >= t->bytes)) {
            r->f.end = SD_FETCH_DONE;
            break;
        }
        if (now - last >= idle) {
            r->f.end = SD_FETCH_TIMEOUT;
            snprintf(r->f.detail, sizeof(r->f.detail), "no data within the idle timeout");
            break;
        }
        if (asked < got + WINDOW / 2 || now - asked_at >= STALL_MS * (uint64_t)SD_NS_PER_MS) {
            asked = got + WINDOW;
            asked_at = now;
            ask(q, asked);
        }
        if (!sd_tconn_wait(q->fd, POLLIN, SD_MIN(end, now + STALL_MS * (uint64_t)SD_NS_PER_MS)))
            continue;
        ssize_t n;
        while ((n = recv(q->fd, q->buf, sizeof(q->buf), MSG_DONTWAIT)) > 0) {
            if (n < 8 || memcmp(q->buf, tag_data, 4) != 0)
                continue;
            now = sd_mono_ns();
            uint32_t seq = sd_rd32be(q->buf + 4);
            if (seq > got)
                got = seq;
            if (!r->f.bytes)
                r->f.ttfb_ns = now - t0;
            r->f.bytes += (uint64_t)n;
            last = now;
            uint64_t i = (now - t0) / bin;
            if (t->bins && i < t->max_bins) {
                t->bins[i] += (uint64_t)n;
                if (i + 1 > r->f.n_bins)
                    r->f.n_bins = (uint32_t)(i + 1);
            }
        }
    }
    r->f.transfer_ns = sd_mono_ns() - t0;
}

int sd__evade_quic(struct sd__evade_run *x)
{
    const struct sd_evade_target *t = x->t;
    struct sd_evade_result *r = x->r;
    struct sockaddr_storage ss;
    socklen_t sl;
    struct qclient *q = calloc(1, sizeof(*q));
    int rc;

    if (!q)
        return SD_ENOMEM;
    q->x = x;
    r->f.start_ns = sd_mono_ns();
    if (t->bins)
        memset(t->bins, 0, sizeof(t->bins[0]) * t->max_bins);
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    uint16_t port = htons(t->port ? t->port : 443);
    if (inet_pton(AF_INET, t->addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = port;
        sl = sizeof(*s4);
    } else if (inet_pton(AF_INET6, t->addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = port;
        sl = sizeof(*s6);
    } else {
        free(q);
        return SD_EINVAL;
    }
    rc = build_initial(q);
    if (rc < 0) {
        sd__evade_note(x, "cannot build the Initial: %s", sd_strerror(rc));
        free(q);
        return rc;
    }
    q->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&ss, sl) < 0) {
        sd__evade_note(x, "UDP socket: %s", strerror(errno));
        if (q->fd >= 0)
            close(q->fd);
        free(q);
        return SD_EIO;
    }
    r->f.stage = SD_FETCH_HANDSHAKE;
    uint64_t hs = t->handshake_timeout_ns ? t->handshake_timeout_ns : 10ull * SD_NS_PER_S;
    rc = start(q, r->f.start_ns + hs);
    if (rc == 0) {
        r->applied = true;
        r->f.handshake_ns = sd_mono_ns() - r->f.start_ns;
        snprintf(r->f.tls_version, sizeof(r->f.tls_version), "QUIC");
        sd__evade_note(x, "Initial v%08x of %d B%s%s", x->spec->quic_version, q->initial_len,
                       x->spec->quic_frag ? " in 2 IP fragments" : "",
                       x->spec->size_junk ? ", after a junk datagram" : "");
        r->f.stage = SD_FETCH_TRANSFER;
        transfer(q, sd_mono_ns(), r);
    } else if (rc == SD_EAGAIN) {
        r->applied = true; /* it went out; nothing came back */
        r->f.end = SD_FETCH_TIMEOUT;
        snprintf(r->f.detail, sizeof(r->f.detail), "no answer to the Initial");
    } else {
        r->f.end = SD_FETCH_ERROR;
        snprintf(r->f.detail, sizeof(r->f.detail), "%s", rc == SD_EIO ? strerror(errno) : sd_strerror(rc));
        if (rc == SD_EPERM || rc == SD_ENOTSUP) {
            close(q->fd);
            free(q);
            return rc;
        }
    }
    close(q->fd);
    free(q);
    return 0;
}

/* ---- the responder ---- */

struct peer {
    struct sockaddr_storage addr;
    socklen_t len;
    uint32_t sent;
    uint64_t last_ns;
    bool used;
};

struct sd_quicbulk {
    int fd;
    uint16_t port;
    struct peer peers[MAX_PEERS];
    uint8_t buf[2048], out[DGRAM];
};

struct sd_quicbulk *sd_quicbulk_open(const char *addr, uint16_t port, char *err, size_t errlen)
{
    struct sd_quicbulk *b = calloc(1, sizeof(*b));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    socklen_t len = sizeof(a);

    if (!b || inet_pton(AF_INET, addr ? addr : "0.0.0.0", &a.sin_addr) != 1) {
        snprintf(err, errlen, b ? "bad address '%s' (IPv4)" : "out of memory", addr);
        free(b);
        return NULL;
    }
    b->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (b->fd < 0 || bind(b->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        snprintf(err, errlen, "cannot bind UDP %s port %u: %s", addr ? addr : "0.0.0.0", port, strerror(errno));
        if (b->fd >= 0)
            close(b->fd);
        free(b);
        return NULL;
    }
    getsockname(b->fd, (struct sockaddr *)&a, &len);
    b->port = ntohs(a.sin_port);
    return b;
}

uint16_t sd_quicbulk_port(const struct sd_quicbulk *b)
{
    return b->port;
}

static struct peer *find_peer(struct sd_quicbulk *b, const struct sockaddr_storage *a, socklen_t len, bool make,
                              uint64_t now)
{
    struct peer *oldest = &b->peers[0];

    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &b->peers[i];
        if (p->used && p->len == len && !memcmp(&p->addr, a, len))
            return p;
        if (!p->used || p->last_ns < oldest->last_ns)
            oldest = p;
    }
    if (!make)
        return NULL;
    memset(oldest, 0, sizeof(*oldest));
    oldest->used = true;
    oldest->addr = *a;
    oldest->len = len;
    oldest->last_ns = now;
    return oldest;
}

static void on_datagram(struct sd_quicbulk *b, size_t n, const struct sockaddr_storage *a, socklen_t len)
{
    uint64_t now = sd_mono_ns();

    if (n >= 1 && (b->buf[0] & 0x80)) { /* a long header: a session (re)starts */
        struct peer *p = find_peer(b, a, len, true, now);
        p->last_ns = now;
        sendto(b->fd, tag_ack, sizeof(tag_ack), 0, (const struct sockaddr *)a, len);
        return;
    }
    if (n < 8 || memcmp(b->buf, tag_req, 4) != 0)
        return; /* junk, or someone else's */
    struct peer *p = find_peer(b, a, len, false, now);
    if (!p)
        return;
    p->last_ns = now;
    uint32_t want = sd_rd32be(b->buf + 4), k = 0;
    memcpy(b->out, tag_data, 4);
    memset(b->out + 8, 'q', sizeof(b->out) - 8);
    while (p->sent < want && k++ < BURST) {
        sd_put32be(b->out + 4, ++p->sent);
        if (sendto(b->fd, b->out, sizeof(b->out), 0, (const struct sockaddr *)a, len) < 0)
            break;
    }
}

int sd_quicbulk_run(struct sd_quicbulk *b, int stop_fd)
{
    for (;;) {
        int w = sd_wait_in(b->fd, stop_fd, -1);
        if (w <= SD_WAIT_STOP)
            return w;
        for (int i = 0; i < 64; i++) {
            struct sockaddr_storage a;
            socklen_t len = sizeof(a);
            ssize_t n = recvfrom(b->fd, b->buf, sizeof(b->buf), 0, (struct sockaddr *)&a, &len);
            if (n < 0)
                break;
            on_datagram(b, (size_t)n, &a, len);
        }
    }
}

void sd_quicbulk_free(struct sd_quicbulk *b)
{
    if (!b)
        return;
    close(b->fd);
    free(b);
}
