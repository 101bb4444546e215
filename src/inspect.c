/*
 * inspect.c - what a flow's payload says, under the policy's inspection model.
 *
 * TCP (spec B3, B5, B6, B7):
 *   - strict (2021): each inspected segment is parsed on its own as a TLS
 *     record holding a whole ClientHello (tls.h sd_tls_strict);
 *   - records (2024): the TLS records inside one segment are reassembled;
 *   - stream (2026, observe): the client's byte stream is reassembled in and
 *     out of order up to a byte cap, and parsed as it grows. The server's
 *     direction is still inspected per segment (records).
 * The first payload packet is inspected. If it is recognised -- a ClientHello
 * that no rule fires on, another TLS record, an HTTP request, a SOCKS
 * greeting, or an unrecognised packet shorter than the give-up size -- the
 * flow enters keep-looking mode and inspect.extra more payload packets are
 * inspected. An unrecognised packet of giveup bytes or more ends inspection.
 * Pure ACKs are not inspected and do not count.
 *
 * UDP: DNS queries (port 53) give a name; QUIC on port 443 is checked against
 * the header rule and, in decrypt mode, its client Initials are decrypted and
 * their CRYPTO frames reassembled across datagrams until the ClientHello is
 * complete. The first datagram decides whether a UDP flow is QUIC at all
 * (quic22: a non-QUIC first packet leaves the flow unchecked).
 */
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "dns.h"
#include "engine_int.h"
#include "http.h"
#include "quic.h"
#include "tls.h"

#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif

static const char *const dirname[2] = {"c2s", "s2c"};

/* ---- reassembly slots ---- */

static struct sd_reasm *reasm_get(struct sd_engine *e, struct sd_flow *f)
{
    if (f->flags & SD_FF_REASM)
        return &e->rslots[f->u.r.slot].r;
    if (e->rfree == SD_FLOW_NONE) {
        e->st.reasm_exhausted++;
        return NULL;
    }
    uint32_t s = e->rfree;
    struct sd_reasm_slot *rs = &e->rslots[s];
    e->rfree = rs->next_free;
    struct sd_reasm *r = &rs->r;
    sd_reasm_init(r, r->data, r->cap);
    rs->has_saved = f->action != SD_A_PASS; /* the union holds the action's state: it waits in the slot */
    if (rs->has_saved)
        memcpy(rs->saved, f->u.tok, sizeof(rs->saved));
    f->u.r.slot = s;
    f->flags |= SD_FF_REASM;
    return r;
}

void sd__reasm_release(struct sd_engine *e, struct sd_flow *f)
{
    if (!(f->flags & SD_FF_REASM))
        return;
    uint32_t s = f->u.r.slot;
    struct sd_reasm_slot *rs = &e->rslots[s];
    rs->next_free = e->rfree;
    e->rfree = s;
    f->flags &= (uint8_t)~SD_FF_REASM;
    if (rs->has_saved) { /* the action's state comes back; the union no longer holds the ISN */
        memcpy(f->u.tok, rs->saved, sizeof(rs->saved));
        f->state &= (uint8_t)~SD_FS_ISN;
        rs->has_saved = false;
    } else {
        f->u.r.slot = SD_FLOW_NONE;
    }
}

/* ---- facts ---- */

static void hello_facts(struct sd_engine *e, uint32_t slot, const struct sd_tls_hello *h, bool quic,
                        struct sd_facts *fa)
{
    fa->hello = true;
    fa->quic = quic;
    fa->ech = h->has_ech;
    if (h->sni.p) {
        fa->sni = h->sni;
        sd__set_name(e, slot, SD_NAME_SNI, h->sni);
    }
    sd__trace(e, slot, "%s ClientHello: sni=%s%.*s%s%s (%u record%s)", quic ? "QUIC" : "TLS", h->sni.p ? "'" : "",
              h->sni.p ? (int)SD_MIN(h->sni.n, 255) : 4, h->sni.p ? (const char *)h->sni.p : "none",
              h->sni.p ? "'" : "", h->has_ech ? " ech" : "", h->records, h->records == 1 ? "" : "s");
}

/* Non-TLS payload: HTTP, SOCKS, DNS over TCP, or unrecognised. Returns 1 for
 * recognised (keep looking), 0 for unrecognised. */
static int other_tcp(struct sd_engine *e, uint32_t slot, const struct sd_flow *f, const uint8_t *p, size_t n,
                     struct sd_facts *fa)
{
    const struct sd_inspect *in = &e->pol->inspect;
    const uint8_t *end = p + n;
    if (in->http && sd_http_looks_like_request(p, end)) {
        struct sd_http_req req;
        int rc = sd_http_parse_request(p, end, &req);
        if ((rc > 0 || rc == SD_EAGAIN) && req.host.p) {
            fa->host = req.host;
            sd__set_name(e, slot, SD_NAME_HOST, req.host);
        }
        sd__trace(e, slot, "HTTP %s request%s%.*s", req.is_connect ? "CONNECT" : "", req.host.p ? ", host " : "",
                  req.host.p ? (int)SD_MIN(req.host.n, 255) : 0, req.host.p ? (const char *)req.host.p : "");
        return 1;
    }
    struct sd_iov sh = {0};
    enum sd_socks_kind sk = sd_socks_parse(p, end, &sh);
    if (sk != SD_SOCKS_NONE) {
        sd__trace(e, slot, "SOCKS%d greeting", (int)sk);
        return 1;
    }
    bool cb = f->flags & SD_FF_CLIENT_B;
    uint16_t sport = cb ? f->pa : f->pb;
    if (in->dns && sport == 53) {
        struct sd_dns_query q;
        if (sd_dns_parse_query_tcp(p, end, &q) > 0) {
            fa->qname = (struct sd_iov){(const uint8_t *)q.name, q.name_len};
            sd__set_name(e, slot, SD_NAME_QNAME, fa->qname);
            sd__trace(e, slot, "DNS query %s", q.name);
            /* The view points into q, which dies here: evaluation copies
             * nothing, so keep the name in the engine's scratch. */
            memcpy(e->scratch, q.name, q.name_len);
            fa->qname.p = e->scratch;
            return 1;
        }
    }
    return 0;
}

/* Keep-looking bookkeeping: the first recognised packet switches the flow to
 * keep-looking with the extra budget; each later one spends one. Returns
 * true when the budget is spent. */
static bool spend(struct sd_engine *e, uint32_t slot, struct sd_flow *f)
{
    if (!(f->state & SD_FS_KEEP)) {
        f->state |= SD_FS_KEEP;
        f->budget = e->pol->inspect.extra_packets;
        if (f->budget)
            sd__trace(e, slot, "keep looking: %u more payload packets (B6)", f->budget);
    } else if (f->budget) {
        f->budget--;
    }
    return f->budget == 0;
}

static bool inspect_tcp(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_pkt *pkt, int dir,
                        struct sd_facts *fa)
{
    const struct sd_inspect *in = &e->pol->inspect;
    const uint8_t *p = pkt->frame + pkt->payload_off;
    size_t n = pkt->payload_len;
    struct sd_tls_hello h;
    int rc;

    bool hello_mode = in->tls_mode == SD_TLS_HELLO;
    bool gather = in->tls_mode == SD_TLS_STREAM ||
                  (hello_mode && ((f->flags & SD_FF_REASM) || (n >= 5 && p[0] == SD_TLS_CT_HANDSHAKE && p[1] == 3)));
    if (gather && dir == 0 && !(f->state & SD_FS_KEEP)) {
        struct sd_reasm *r = reasm_get(e, f);
        if (r && hello_mode && (f->state & SD_FS_ISN) && r->contig && (int32_t)(pkt->seq - f->u.r.isn) != (int32_t)r->contig) {
            /* The hello reassembler follows the stream in order only. */
            sd__trace(e, slot, "%s %zu B: out of order, the ClientHello is not reassembled", dirname[dir], n);
            sd__reasm_release(e, f);
            return spend(e, slot, f);
        }
        if (r && hello_mode && !r->contig)
            f->state &= (uint8_t)~SD_FS_ISN; /* the hello starts here, whatever the SYN said */
        if (r) {
            if (!(f->state & SD_FS_ISN)) {
                f->u.r.isn = pkt->seq;
                f->state |= SD_FS_ISN;
            }
            int32_t off = (int32_t)(pkt->seq - f->u.r.isn);
            if (off < 0) {
                size_t skip = (size_t)(-(int64_t)off);
                if (skip >= n)
                    return false;
                p += skip;
                n -= skip;
                off = 0;
            }
            uint32_t had = r->contig;
            uint8_t was_clipped = r->clipped;
            sd_reasm_add(r, (uint64_t)off, p, n);
            if (r->contig == had && r->clipped == was_clipped)
                return false; /* no new byte in order (a retransmission, a piece past a hole): the
                                 parse would repeat the last one, so a storm of such segments costs
                                 neither parsing nor trace */
            const uint8_t *s = r->data, *se = r->data + r->contig;
            rc = r->contig ? sd_tls_stream(s, se, e->scratch, 65536, &h) : SD_EAGAIN;
            if (rc > 0) {
                hello_facts(e, slot, &h, false, fa);
                sd__reasm_release(e, f);
                return spend(e, slot, f);
            }
            if (rc == SD_EAGAIN && !r->clipped) {
                sd__trace(e, slot, "%s %zu B: stream has %u bytes, waiting for more", dirname[dir], n, r->contig);
                return false;
            }
            if (rc == SD_EPROTO && r->contig) {
                uint32_t have = r->contig;
                int known = other_tcp(e, slot, f, s, have, fa);
                if (fa->host.p) {
                    /* The view points into the slot: keep a copy. */
                    memcpy(e->scratch, fa->host.p, fa->host.n);
                    fa->host.p = e->scratch;
                }
                sd__reasm_release(e, f);
                if (!known && have >= in->giveup_bytes) {
                    sd__trace(e, slot, "gave up: %u unrecognised stream bytes (B6)", have);
                    return true;
                }
                return spend(e, slot, f);
            }
            sd__trace(e, slot, "%s stream: TLS but no ClientHello (%s)", dirname[dir], sd_strerror(rc));
            sd__reasm_release(e, f);
            return spend(e, slot, f);
        }
        /* No reassembly slot free: inspect this segment alone. */
    }

    if (in->tls_mode == SD_TLS_STRICT) {
        rc = sd_tls_strict(p, p + n, &h);
    } else {
        rc = sd_tls_stream(p, p + n, e->scratch, 65536, &h);
        if (rc == SD_EAGAIN || rc == SD_ERANGE)
            rc = SD_ENOENT;
    }
    if (rc > 0) {
        hello_facts(e, slot, &h, false, fa);
        return spend(e, slot, f);
    }
    if (rc == SD_ENOENT) {
        if (h.record_len)
            sd__trace(e, slot, "%s %zu B: TLS record (type %u, length %u, handshake length %u) but no complete "
                      "ClientHello in it (B3)", dirname[dir], n, p[0], h.record_len, h.hs_len);
        else
            sd__trace(e, slot, "%s %zu B: TLS record, not a ClientHello", dirname[dir], n);
        return spend(e, slot, f);
    }
    if (other_tcp(e, slot, f, p, n, fa))
        return spend(e, slot, f);
    if (n >= in->giveup_bytes) {
        sd__trace(e, slot, "%s %zu B: unrecognised, >= %u bytes: inspection gives up (B6)", dirname[dir], n,
                  in->giveup_bytes);
        return true;
    }
    sd__trace(e, slot, "%s %zu B: unrecognised, < %u bytes", dirname[dir], n, in->giveup_bytes);
    return spend(e, slot, f);
}

static bool quic_version_ok(const struct sd_inspect *in, uint32_t v)
{
    if (!in->quic_versions[0])
        return sd_quic_version_known(v);
    for (size_t i = 0; i < SD_COUNTOF(in->quic_versions) && in->quic_versions[i]; i++)
        if (in->quic_versions[i] == v)
            return true;
    return false;
}

static bool inspect_quic(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const uint8_t *p, size_t n,
                         struct sd_facts *fa)
{
    const struct sd_inspect *in = &e->pol->inspect;
    bool first = !(f->state & SD_FS_QUIC);
    bool longh = n >= 5 && (p[0] & 0x80);
    uint32_t ver = longh ? sd_rd32be(p + 1) : 0;
    if (f->state & SD_FS_LATE) {
        /* Past the header rule by a fake first datagram: an Initial that
         * matches it arms the deferred cut (NTC-1823 #40, #41). */
        if (!longh || !quic_version_ok(in, ver) || n < in->quic_min_len)
            return false;
        f->state |= SD_FS_LATE_ARMED;
        f->budget = in->quic_late_cut;
        sd__trace(e, slot, "QUIC long header, version %08x, %zu B after a fake first datagram: cut after %u server "
                  "datagrams (quic.late-cut)", ver, n, in->quic_late_cut);
        return false;
    }
    if (first) {
        if (!longh || !sd_quic_version_known(ver)) {
            if (in->quic_late_cut && n <= in->quic_late_phase) {
                f->state |= SD_FS_LATE;
                sd__trace(e, slot, "first datagram of %zu B is not a QUIC long header (<= %u B): later Initials "
                          "watched (quic.late-cut)", n, in->quic_late_phase);
                return false;
            }
            sd__trace(e, slot, "first datagram of %zu B is not a QUIC long header: flow unchecked", n);
            return true;
        }
        f->state |= SD_FS_QUIC;
        f->budget = in->quic_packets ? in->quic_packets : 1;
        fa->quic_hdr = quic_version_ok(in, ver) && n >= in->quic_min_len;
        sd__trace(e, slot, "QUIC long header, version %08x, %zu B%s", ver, n,
                  fa->quic_hdr ? ": header rule matches" : "");
    }
    if (in->quic_mode != SD_QUIC_DECRYPT)
        return true;
    struct sd_reasm *r = reasm_get(e, f);
    if (!r)
        return true;
    struct sd_quic_info info;
    int rc = sd_quic_client_initials(e->quic, p, p + n, r, &info);
    if (rc > 0 && r->contig) {
        struct sd_tls_hello h;
        int hr = sd_tls_client_hello(r->data, r->data + r->contig, &h);
        if (hr > 0) {
            hello_facts(e, slot, &h, true, fa);
            if (!h.sni.p && in->quic_fail_block)
                fa->quic_fail = true;
            return true;
        }
        if (hr == SD_EAGAIN && --f->budget > 0) {
            sd__trace(e, slot, "QUIC CRYPTO stream has %u bytes, waiting for more", r->contig);
            return false;
        }
    } else if (rc > 0 && --f->budget > 0) {
        return false;
    }
    sd__trace(e, slot, "QUIC Initial not decoded (%s)", rc < 0 ? sd_strerror(rc) : "incomplete ClientHello");
    fa->quic_fail = in->quic_fail_block;
    return true;
}

static bool inspect_udp(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_pkt *pkt, int dir,
                        struct sd_facts *fa)
{
    const struct sd_inspect *in = &e->pol->inspect;
    const uint8_t *p = pkt->frame + pkt->payload_off;
    size_t n = pkt->payload_len;
    bool cb = f->flags & SD_FF_CLIENT_B;
    uint16_t sport = cb ? f->pa : f->pb;
    if (dir != 0) {
        /* Only the client's datagrams say anything, except that the server's
         * count down a deferred QUIC cut. */
        if ((f->state & SD_FS_LATE_ARMED) && --f->budget == 0) {
            sd__trace(e, slot, "server datagram %u after the Initial: deferred cut (quic.late-cut)",
                      in->quic_late_cut);
            fa->quic_hdr = true;
            return true;
        }
        return false;
    }
    if (in->dns && sport == 53) {
        struct sd_dns_query q;
        if (sd_dns_parse_query(p, p + n, &q) > 0) {
            memcpy(e->scratch, q.name, q.name_len);
            fa->qname = (struct sd_iov){e->scratch, q.name_len};
            sd__set_name(e, slot, SD_NAME_QNAME, fa->qname);
            sd__trace(e, slot, "DNS query %s", q.name);
        }
        return true;
    }
    if (in->quic_mode != SD_QUIC_OFF && (!in->quic_port443 || sport == 443))
        return inspect_quic(e, slot, f, p, n, fa);
    return true;
}

bool sd__inspect(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_pkt *pkt, int dir,
                 struct sd_facts *fa)
{
    if (pkt->proto == IPPROTO_TCP)
        return inspect_tcp(e, slot, f, pkt, dir, fa);
    return inspect_udp(e, slot, f, pkt, dir, fa);
}
