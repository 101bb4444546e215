/*
 * act.c - what a flow's action does to each packet.
 *
 * The policer (B8) is a token bucket per direction, as in the WireGuard
 * ratelimiter and ngtcp2_ratelim: tokens are nanoseconds of credit at the
 * configured rate, a packet of L bytes costs L * 8e9 / rate ns, the bucket
 * holds at most `burst` bytes worth, and a packet that finds too little
 * credit is dropped (policing) and costs nothing. Both directions refill
 * together, from one timestamp, whenever a packet of the flow is seen. Credit
 * is kept in 32 bits of nanoseconds, so a bucket holds at most 4.29 s of
 * credit; longer idle gaps are measured from the flow's last-seen time.
 *
 * The loss action (yt24-loss) uses the same bucket but drops at random: the
 * emptier the bucket, the likelier a drop, so the flow is steered towards the
 * target rate without the policer's bursts of consecutive losses.
 *
 * The blocking actions follow CP22's figure 6 (spec 4.1): SNI-I replaces
 * server packets with RST/ACKs, SNI-II lets n packets through and then drops
 * data, SNI-IV drops from the ClientHello on; freeze (cdn25) drops server
 * packets once n bytes came from the server.
 *
 * The mark action (spec 4.8) does nothing to the flow's packets: it marks
 * the flow's client for `seconds` after its last packet, and rules of other
 * flows test the mark ('marked NAME').
 */
#include <string.h>

#include "engine_int.h"
#include "hostmark.h"

#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif

enum { MAX_CREDIT_NS = 4000000000u };

static uint32_t burst_ns(const struct sd_action *a)
{
    uint64_t ns = (uint64_t)a->burst * 8000000000ULL / a->rate_bps;
    return ns > MAX_CREDIT_NS ? MAX_CREDIT_NS : (uint32_t)ns;
}

static const struct sd_action *flow_action(const struct sd_engine *e, const struct sd_flow *f)
{
    return &e->pol->rules[f->rule - 1].action;
}

static void mark_client(struct sd_engine *e, const struct sd_flow *f, const struct sd_action *a)
{
    int fam;
    const uint8_t *cli = sd__flow_client(f, &fam);
    sd_hostmark_set(e->marks, a->mark, fam, cli, e->now_ns + (uint64_t)a->seconds * 1000000000ULL);
}

void sd__act_start(struct sd_engine *e, struct sd_flow *f, const struct sd_action *a)
{
    sd__reasm_release(e, f);
    f->action = a->kind;
    f->u.tok[0] = f->u.tok[1] = 0;
    f->state &= (uint8_t)~SD_FS_ISN; /* u no longer holds the client's ISN */
    switch (a->kind) {
    case SD_A_THROTTLE:
    case SD_A_LOSS:
        f->u.tok[0] = f->u.tok[1] = burst_ns(a);
        f->t_us = (uint32_t)e->now_ns;
        break;
    case SD_A_DROP_AFTER:
        f->u.cnt[0] = a->n;
        break;
    case SD_A_MARK:
        mark_client(e, f, a);
        break;
    default:
        break;
    }
}

static void refill(struct sd_engine *e, struct sd_flow *f, const struct sd_action *a, uint32_t prev_ms)
{
    uint32_t now32 = (uint32_t)e->now_ns;
    uint32_t now_ms = (uint32_t)((e->now_ns - e->epoch_ns) / 1000000u);
    uint64_t elapsed = now_ms - prev_ms >= 4000 ? (uint64_t)(now_ms - prev_ms) * 1000000u : (uint32_t)(now32 - f->t_us);
    uint32_t cap = burst_ns(a), *tok = sd__act_state(e, f);
    for (int d = 0; d < 2; d++) {
        uint64_t t = tok[d] + elapsed;
        tok[d] = t > cap ? cap : (uint32_t)t;
    }
    f->t_us = now32;
}

static uint32_t counted_bytes(const struct sd_pkt *pkt, uint8_t count)
{
    switch (count) {
    case SD_COUNT_L4:
        return pkt->payload_len;
    case SD_COUNT_L2:
        return pkt->ip_len + pkt->l3_off;
    default:
        return pkt->ip_len;
    }
}

uint64_t sd__rnd(struct sd_engine *e)
{
    /* xorshift64*: cheap, and seeded from the engine key so runs repeat. */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static bool is_pure_ack(const struct sd_pkt *pkt)
{
    return pkt->proto == IPPROTO_TCP && pkt->payload_len == 0 &&
           !(pkt->tcp_flags & (SD_TCP_SYN | SD_TCP_FIN | SD_TCP_RST));
}

static bool is_data(const struct sd_pkt *pkt)
{
    return pkt->payload_len > 0;
}

/* The policer and the loss dropper. Returns true when the packet is dropped. */
static bool police(struct sd_engine *e, struct sd_flow *f, const struct sd_action *a, const struct sd_pkt *pkt, int dir)
{
    if (!a->police_acks && is_pure_ack(pkt))
        return false;
    uint64_t cost = (uint64_t)counted_bytes(pkt, a->count) * 8000000000ULL / a->rate_bps;
    uint32_t *st = sd__act_state(e, f), tok = st[dir];
    if (a->kind == SD_A_LOSS) {
        uint32_t cap = burst_ns(a);
        /* Drop probability grows with the square of the bucket's emptiness,
         * reaching 1/2 when it is empty. */
        uint64_t empty = cap ? ((uint64_t)(cap - SD_MIN(tok, cap)) << 16) / cap : 0; /* 0..65536 */
        uint64_t p = (empty * empty) >> 17;                                           /* 0..32768 of 65536 */
        if ((sd__rnd(e) & 0xffff) < p || cost > tok) {
            if (cost > tok && (sd__rnd(e) & 1))
                return false; /* over the target, yet let some through: randomness, not a wall */
            return true;
        }
    } else if (cost > tok) {
        return true;
    }
    st[dir] = cost > tok ? 0 : tok - (uint32_t)cost;
    return false;
}

/*
 * Whether the freeze drops |pkt| (of a direction it applies to). The first n
 * bytes of the stream pass and nothing after them. Over TCP in one direction
 * the bytes are told by sequence number (cnt[1]: the first data byte seen,
 * cnt[0]: FZ_*): a segment that starts within the first n bytes passes even
 * when it comes again, so a segment lost beyond the censor can be resent and
 * the freeze lands at n bytes of the stream, not short of it; once a segment
 * beyond them has come, every other packet is dropped (ACKs and FIN too). For
 * UDP, or both directions at once, the payload bytes are counted as they
 * come (cnt[1]), retransmissions included. |cnt| is the action's state
 * (sd__act_state).
 */
enum { FZ_NO_BASE, FZ_BASE, FZ_FROZEN };

static bool freeze_drops(uint32_t *cnt, const struct sd_action *a, const struct sd_pkt *pkt)
{
    if (pkt->proto != IPPROTO_TCP || a->dirs == SD_DIR_BOTH) {
        if (cnt[1] >= a->n)
            return true;
        uint64_t c = (uint64_t)cnt[1] + pkt->payload_len;
        cnt[1] = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
        return false;
    }
    if (cnt[0] == FZ_NO_BASE) {
        if (!is_data(pkt))
            return false;
        cnt[1] = pkt->seq;
        cnt[0] = FZ_BASE;
    }
    int32_t off = (int32_t)(pkt->seq - cnt[1]);
    if (is_data(pkt) && off < (int64_t)a->n)
        return false; /* within the first n bytes (or before the first seen: reordered) */
    if (!is_data(pkt) && cnt[0] != FZ_FROZEN)
        return false;
    cnt[0] = FZ_FROZEN;
    return true;
}

static void replace_rst(struct sd_engine *e, const struct sd_pkt *pkt, struct sd_verdict *v)
{
    int n = pkt->proto == IPPROTO_TCP ? sd_pkt_build_rst(e->out, sizeof(e->out), pkt) : -1;
    if (n > 0) {
        v->kind = SD_V_REPLACE;
        v->data = e->out;
        v->len = (size_t)n;
    } else {
        v->kind = SD_V_DROP;
    }
}

void sd__act(struct sd_engine *e, struct sd_flow *f, const struct sd_pkt *pkt, int dir, bool trigger_pkt,
             uint32_t prev_ms, struct sd_verdict *v)
{
    const struct sd_action *a = flow_action(e, f);
    bool applies = a->dirs & (1 << dir);
    switch (a->kind) {
    case SD_A_THROTTLE:
    case SD_A_LOSS:
        refill(e, f, a, prev_ms); /* every packet, so the 32-bit clock never wraps unseen */
        if (applies && police(e, f, a, pkt, dir))
            v->kind = SD_V_DROP;
        break;
    case SD_A_RST:
        if (dir == 1)
            replace_rst(e, pkt, v);
        break;
    case SD_A_DROP_AFTER: {
        uint32_t *left = sd__act_state(e, f); /* [0]: packets still let through */
        if (trigger_pkt)
            break;
        if (left[0] > 0) {
            left[0]--;
            break;
        }
        if (applies && (is_data(pkt) || !a->data_only))
            v->kind = SD_V_DROP;
        break;
    }
    case SD_A_DROP:
        if (applies && (is_data(pkt) || !a->data_only || pkt->proto != IPPROTO_TCP))
            v->kind = SD_V_DROP;
        break;
    case SD_A_FREEZE:
        if (!applies || !freeze_drops(sd__act_state(e, f), a, pkt))
            break;
        if (a->rst && !(f->state & SD_FS_RST_SENT)) {
            f->state |= SD_FS_RST_SENT;
            replace_rst(e, pkt, v);
        } else {
            v->kind = SD_V_DROP;
        }
        break;
    case SD_A_IPBLOCK:
        if (f->flags & SD_FF_OPEN_OUTSIDE) {
            /* The inside host is the server: its packets become RST/ACKs. */
            if (dir == 1)
                replace_rst(e, pkt, v);
        } else {
            v->kind = SD_V_DROP;
        }
        break;
    case SD_A_MARK:
        if (dir == 0)
            mark_client(e, f, a); /* the next send re-arms it (spec 4.8) */
        break;
    default:
        break;
    }
}
