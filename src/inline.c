/*
 * inline.c - worker threads between NFQUEUE and the engine (see inline.h).
 *
 * One worker, one queue, one engine. Its loop:
 *
 *   poll(queue, stop) -> now = CLOCK_MONOTONIC (once per batch)
 *     -> recvmmsg up to a batch -> per packet: decode, sd_engine_packet
 *     -> verdicts: a run of PASS becomes one batch accept; DROP and HOLD a
 *        drop; REPLACE an accept carrying the engine's packet instead
 *     -> one sendto() for the whole batch
 *
 * Batch verdicts are safe because every packet of a batch is decided before
 * the next receive, so "all ids up to N" covers only packets we have seen
 * -- and any packet whose message was lost to a receive-buffer overflow,
 * which is then forwarded rather than left stuck in the kernel.
 *
 * Flows under an action get a conntrack mark (ctnetlink, io_nfq.c) so the
 * rules keep queueing all their packets after the inspection window; flows
 * that settled (inspection over, no action) get another, so the rules stop
 * queueing them at once and their bulk stays in the kernel. The verdict's
 * flags (SD_VF_ACTION, SD_VF_SETTLED) say which state a packet's flow is in;
 * a small direct-mapped cache of flow hashes remembers which state each flow
 * was last marked with, so a flow is marked once per state change, not once
 * per packet. (Two flows in one slot cost one more mark each; a flow is
 * wrongly taken as marked only when another one shares the 30 hash bits an
 * entry keeps.) A bare SYN is never marked: its conntrack entry is not
 * confirmed yet. Neither is a UDP flow's on its first datagram, which may be
 * the one that triggers (DNS, QUIC), so a UDP flow under an action is marked
 * twice: on the trigger and on the next packet.
 *
 * With --bypass ipset there is no conntrack at all (it costs a bulk flow
 * 15-20% of its forwarding on this VM): a flow that settles is added to a
 * kernel set (hash:ip,port,ip: client address, client port and protocol,
 * server address, with a timeout), and the rules let both directions of its
 * elements pass without queueing (fwrules.h). The same cache keeps the adds
 * to one per flow; it is emptied every half timeout, so a flow still seen in
 * the queue after that (its element timed out while it was idle) is added
 * again. Every bare SYN is queued and deletes its element: the client port
 * may be taken again, to the same server address, by a connection that must
 * be inspected. So does a verdict under an action, for the rare new flow
 * that shares an element with a settled one (another server port).
 *
 * --bypass bpf works the same way with the map of a pinned eBPF program
 * that iptables runs on every packet (bpfpass.h): two elements per flow, one
 * per direction, with the exact ports, so none of the ipset's limits apply.
 *
 * Held IP fragments come back through on_release and leave through a raw
 * socket. (With conntrack loaded the kernel reassembles fragments before any
 * iptables hook, so in practice the engine sees whole packets.)
 *
 * Policy reload: the main thread publishes a policy and a generation number;
 * each worker swaps between two batches and acknowledges; the main thread
 * frees the old policy only once every worker has acknowledged.
 *
 * Each worker thread is named sd-queue-N (its queue), so its CPU time can be
 * read from /proc/PID/task/TID/stat (bench/lab_bench.sh does).
 *
 * Statistics and per-rule counters are published by each worker every 0.5 s
 * (even while its queue never runs dry: a drain lasts at most POLL_MS) into
 * a snapshot under its own lock; readers (the main thread, the metrics
 * listener) only ever read snapshots. Per-rule snapshots carry the rule names
 * copied, so a reader never touches a policy that may be freed meanwhile.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bpfpass.h"
#include "engine.h"
#include "inline.h"
#include "mono.h"
#include "pkt.h"
#include "waitfd.h"

enum {
    POLL_MS = 100,                         /* longest sleep: policy switches and stop are seen this fast */
    PUBLISH_NS = 500 * SD_NS_PER_MS,       /* stats snapshot period */
    EXPIRE_NS = 1000 * SD_NS_PER_MS,       /* idle-flow sweep period */
    MAX_BATCH = 256,
    MARK_CACHE = 4096,                     /* flows remembered as marked, per worker */
    MARK_ACTION = 1, MARK_SETTLED = 2,     /* the state in the low bits of a cache entry */
    MARK_ACTION_ONCE = 3,                  /* UDP: marked under an action once, mark once more */
};

struct worker {
    struct sd_inline *in;
    unsigned index;
    pthread_t tid;
    bool started;
    struct sd_nfq *q;
    struct sd_engine *e;
    int ct_fd, raw4, raw6;                 /* ct_fd: ctnetlink (marks, set elements) or the bpf bypass map */
    unsigned gen;                          /* policy generation in use */
    const struct sd_policy *pol;           /* ... and its policy */
    atomic_uint seen_gen;                  /* ... as acknowledged to the main thread */
    struct sd_inline_stats st;             /* owned by the worker */
    uint32_t marked[MARK_CACHE];           /* flow hash with its low 2 bits replaced by MARK_* */
    uint64_t marked_since;                 /* bpf and ipset bypasses: when the cache was last emptied */
    pthread_mutex_t lock;                  /* guards snap, snap_rules, snap_n */
    struct sd_inline_stats snap;
    unsigned snap_n;
    struct sd_inline_rule snap_rules[SD_INLINE_MAX_RULES];
    struct sd_rule_stats rst[SD_INLINE_MAX_RULES]; /* publish()'s scratch */
    struct sd_nfq_pkt pkts[MAX_BATCH];
};

struct sd_inline {
    struct sd_inline_config cfg;
    int64_t wall_offset;                   /* CLOCK_REALTIME - CLOCK_MONOTONIC at start, for events */
    int stop_fd;                           /* eventfd: readable when the workers must stop */
    _Atomic(const struct sd_policy *) policy;
    atomic_uint gen;
    unsigned n;
    struct worker *w;
};

/* ---- verdicts ---- */

static void on_release(void *arg, const uint8_t *l3, size_t len, uint64_t ts_ns)
{
    struct worker *w = arg;
    struct sockaddr_storage ss;
    socklen_t slen;

    (void)ts_ns;
    memset(&ss, 0, sizeof(ss));
    if (len >= 20 && l3[0] >> 4 == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, l3 + 16, 4);
        slen = sizeof(*s4);
    } else if (len >= 40 && l3[0] >> 4 == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, l3 + 24, 16);
        slen = sizeof(*s6);
    } else {
        w->st.release_errors++;
        return;
    }
    int fd = ss.ss_family == AF_INET ? w->raw4 : w->raw6;
    if (fd >= 0 && sendto(fd, l3, len, 0, (struct sockaddr *)&ss, slen) == (ssize_t)len)
        w->st.released++;
    else
        w->st.release_errors++;
}

/* The event log, with engine (monotonic) times turned into wall-clock times. */
static void on_event(void *arg, const struct sd_event *ev)
{
    struct worker *w = arg;
    const struct sd_inline *in = w->in;
    struct sd_flow_report r = *ev->flow;
    struct sd_event e = *ev;

    r.first_ns = (uint64_t)((int64_t)r.first_ns + in->wall_offset);
    r.last_ns = (uint64_t)((int64_t)r.last_ns + in->wall_offset);
    e.ts_ns = (uint64_t)((int64_t)e.ts_ns + in->wall_offset);
    e.flow = &r;
    in->cfg.on_event(in->cfg.event_arg, &e);
}

/* Sets the conntrack mark of |pkt|'s flow to |state| (MARK_ACTION or MARK_SETTLED) unless the cache says
 * it has it already. */
static void mark_flow(struct worker *w, const struct sd_pkt *pkt, uint32_t state)
{
    const struct sd_inline_config *c = &w->in->cfg;
    uint32_t bits = state == MARK_ACTION ? c->ct_mark : c->settled_mark;

    if (!bits || !(pkt->flags & SD_PKT_L4) || (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP))
        return;
    if (pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (SD_TCP_SYN | SD_TCP_ACK)) == SD_TCP_SYN)
        return; /* unconfirmed conntrack entry: the next packet marks it */
    uint32_t h = sd_engine_flow_hash(pkt) & ~3u;
    uint32_t *slot = &w->marked[(h >> 2) % MARK_CACHE];
    if (*slot == (h | state))
        return;
    bool again = state == MARK_ACTION && pkt->proto == IPPROTO_UDP && *slot != (h | MARK_ACTION_ONCE);
    *slot = h | (again ? MARK_ACTION_ONCE : state);
    /* One state at a time: an action flow that settles (its rule left with a reload) loses the action bit. */
    struct sd_nfq_tuple t = {pkt->family, pkt->proto, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport};
    if (sd_nfq_ct_mark(w->ct_fd, &t, bits, c->ct_mark | c->settled_mark) == 0) {
        w->st.ct_marks++;
        w->st.settled_marks += state == MARK_SETTLED;
    } else {
        w->st.ct_errors++;
    }
}

/* The ipset and bpf bypasses: adds a settled flow's element(s), deletes them on a bare SYN or when the
 * flow is under an action. |vf| are the verdict's flags, |now| the batch's time. */
static void bypass_flow(struct worker *w, const struct sd_pkt *pkt, uint8_t vf, uint64_t now)
{
    const struct sd_inline_config *c = &w->in->cfg;

    if (!(pkt->flags & SD_PKT_L4) || (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP))
        return;
    bool syn = pkt->proto == IPPROTO_TCP && (pkt->tcp_flags & (SD_TCP_SYN | SD_TCP_ACK)) == SD_TCP_SYN;
    uint32_t state = (vf & SD_VF_ACTION) ? MARK_ACTION : (vf & SD_VF_SETTLED) ? MARK_SETTLED : 0;
    if (!syn && !state)
        return;
    uint32_t h = sd_engine_flow_hash(pkt) & ~3u;
    uint32_t *slot = &w->marked[(h >> 2) % MARK_CACHE];
    if (!syn && *slot == (h | state))
        return;
    *slot = syn ? 0 : h | state; /* a SYN forgets the flow: it is a new one */
    bool s2c = (vf & SD_VF_S2C) != 0;
    /* Client to server (the set's element has no server port; the map's two have both). */
    struct sd_nfq_tuple t = {pkt->family, pkt->proto, s2c ? pkt->daddr : pkt->saddr,
                             s2c ? pkt->saddr : pkt->daddr, s2c ? pkt->dport : pkt->sport,
                             s2c ? pkt->sport : pkt->dport};
    bool add = !syn && state == MARK_SETTLED;
    int rc = c->bypass == SD_BYPASS_BPF
                 ? sd_bpfpass_set(w->ct_fd, &t, add, now, c->set_timeout_s)
                 : sd_nfq_set_entry(w->ct_fd, c->sets[pkt->family == 6], &t, add, c->set_timeout_s);
    if (rc == 0) {
        w->st.ct_marks++;
        w->st.settled_marks += add;
    } else {
        w->st.ct_errors++;
    }
}

/* Runs one packet through the engine; |v| says what to do with it. */
static void decide(struct worker *w, const struct sd_nfq_pkt *p, uint64_t now, struct sd_verdict *v)
{
    struct sd_pkt pkt;

    v->kind = SD_V_PASS;
    v->flags = 0;
    if (!w->e || !p->data)
        return;
    if (sd_pkt_decode(&pkt, SD_DLT_RAW, p->data, p->len) < 0) {
        w->st.decode_errors++;
        return;
    }
    sd_engine_packet(w->e, &pkt, now, v);
    if (w->ct_fd < 0)
        return;
    if (w->in->cfg.bypass != SD_BYPASS_CONNTRACK)
        bypass_flow(w, &pkt, v->flags, now);
    else if (v->flags & (SD_VF_ACTION | SD_VF_SETTLED))
        mark_flow(w, &pkt, (v->flags & SD_VF_ACTION) ? MARK_ACTION : MARK_SETTLED);
}

/* Decides a received batch and queues its verdicts; accepts go out in runs. */
static int handle_batch(struct worker *w, int n, uint64_t now)
{
    uint32_t run_last = 0;
    unsigned run_n = 0;
    int rc = 0;

    for (int i = 0; i < n && rc == 0; i++) {
        const struct sd_nfq_pkt *p = &w->pkts[i];
        struct sd_verdict v;
        decide(w, p, now, &v);
        if (v.kind == SD_V_PASS) {
            run_last = p->id;
            run_n++;
            w->st.accepted++;
            continue;
        }
        if (run_n) { /* the accepts before this packet: their verdict must go first */
            rc = sd_nfq_verdict_batch(w->q, run_last, SD_NFQ_ACCEPT, run_n);
            run_n = 0;
        }
        if (rc)
            break;
        switch (v.kind) {
        case SD_V_REPLACE:
            rc = sd_nfq_verdict(w->q, p->id, SD_NFQ_ACCEPT, v.data, v.len);
            w->st.replaced++;
            break;
        case SD_V_HOLD:
            rc = sd_nfq_verdict(w->q, p->id, SD_NFQ_DROP, NULL, 0);
            w->st.held++;
            break;
        default:
            rc = sd_nfq_verdict(w->q, p->id, SD_NFQ_DROP, NULL, 0);
            w->st.dropped++;
            break;
        }
    }
    if (rc == 0 && run_n)
        rc = sd_nfq_verdict_batch(w->q, run_last, SD_NFQ_ACCEPT, run_n);
    return rc ? rc : sd_nfq_flush(w->q);
}

/* ---- the worker loop ---- */

static void publish(struct worker *w)
{
    size_t n = 0;

    sd_nfq_get_stats(w->q, &w->st.nfq);
    if (w->e) {
        sd_engine_get_stats(w->e, &w->st.engine);
        n = SD_MIN(sd_engine_rule_stats(w->e, w->rst, SD_INLINE_MAX_RULES), (size_t)SD_INLINE_MAX_RULES);
    }
    if (w->ct_fd >= 0 && w->in->cfg.bypass != SD_BYPASS_BPF)
        w->st.ct_errors += sd_nfq_ct_drain(w->ct_fd);
    pthread_mutex_lock(&w->lock);
    w->snap = w->st;
    for (size_t i = 0; i < n; i++) {
        struct sd_inline_rule *r = &w->snap_rules[i];
        const struct sd_rule *pr = i ? &w->pol->rules[i - 1] : NULL;
        snprintf(r->name, sizeof(r->name), "%s", pr ? pr->name : "");
        r->action = pr ? pr->action.kind : SD_A_PASS;
        r->st = w->rst[i];
    }
    w->snap_n = (unsigned)n;
    pthread_mutex_unlock(&w->lock);
}

static void switch_policy(struct worker *w)
{
    unsigned g = atomic_load(&w->in->gen);

    if (g == w->gen)
        return;
    w->pol = atomic_load(&w->in->policy);
    if (w->e) {
        sd_engine_set_policy(w->e, w->pol);
        publish(w); /* counters under the new rule names at once */
    }
    w->gen = g;
    atomic_store(&w->seen_gen, g);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sd_inline *in = w->in;
    uint64_t last_pub = 0, last_expire = 0;
    unsigned batch = SD_MIN(in->cfg.batch ? in->cfg.batch : SD_NFQ_DEFAULT_BATCH, (unsigned)MAX_BATCH);

    for (;;) {
        if (sd_wait_in(sd_nfq_fd(w->q), in->stop_fd, POLL_MS) <= SD_WAIT_STOP)
            break;
        switch_policy(w);
        /* Drain what is waiting, a batch at a time, but for at most POLL_MS:
         * a queue that never runs dry (a flood, or a worker starved of CPU)
         * must not hold back the snapshots, the idle sweep, a policy switch
         * or stop, which all happen between two drains. */
        uint64_t drain_end = sd_mono_ns() + (uint64_t)POLL_MS * SD_NS_PER_MS;
        for (;;) {
            int n = sd_nfq_recv(w->q, w->pkts, batch);
            if (n < 0) {
                w->st.io_errors++;
                poll(NULL, 0, 10); /* a broken socket must not spin */
            }
            if (n <= 0)
                break;
            uint64_t now = sd_mono_ns();
            if (handle_batch(w, n, now) < 0)
                w->st.io_errors++;
            if ((unsigned)n < batch || now >= drain_end)
                break;
        }
        uint64_t now = sd_mono_ns();
        if (w->e && now - last_expire >= EXPIRE_NS) {
            sd_engine_expire(w->e, now);
            last_expire = now;
        }
        if (in->cfg.bypass != SD_BYPASS_CONNTRACK &&
            now - w->marked_since >= (uint64_t)in->cfg.set_timeout_s * SD_NS_PER_S / 2) {
            memset(w->marked, 0, sizeof(w->marked)); /* elements may have timed out: add them again */
            w->marked_since = now;
        }
        if (now - last_pub >= PUBLISH_NS) {
            publish(w);
            last_pub = now;
        }
    }
    publish(w);
    return NULL;
}

/* ---- start, reload, stop ---- */

static int worker_open(struct sd_inline *in, struct worker *w, const struct sd_policy *pol, char *err,
                       size_t errlen)
{
    const struct sd_inline_config *c = &in->cfg;
    struct sd_nfq_config qc = {.queue = (uint16_t)(c->queue + w->index), .copy_range = c->copy_range,
                               .maxlen = c->maxlen, .rcvbuf = c->rcvbuf, .batch = c->batch,
                               .fail_closed = c->fail_closed};

    w->in = in;
    w->pol = pol;
    w->ct_fd = w->raw4 = w->raw6 = -1;
    pthread_mutex_init(&w->lock, NULL);
    w->q = sd_nfq_open(&qc, err, errlen);
    if (!w->q)
        return SD_EIO;
    if (c->no_engine)
        return 0;
    struct sd_engine_config ec = {.max_flows = c->max_flows, .on_release = on_release, .arg = w,
                                  .track = c->on_event != NULL, .on_event = c->on_event ? on_event : NULL};
    if (getrandom(ec.key, sizeof(ec.key), 0) != sizeof(ec.key))
        ec.key[0] = sd_mono_ns() | 1; /* never the 0,0 test key */
    w->e = sd_engine_new(pol, &ec);
    if (!w->e) {
        snprintf(err, errlen, "out of memory for the engine of queue %u", qc.queue);
        return SD_ENOMEM;
    }
    w->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    w->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (c->bypass == SD_BYPASS_BPF) {
        if (c->bpf_map && (w->ct_fd = sd_bpfpass_open(c->bpf_map)) < 0) {
            snprintf(err, errlen, "cannot open the bypass map %s: not pinned (run without --no-rules, or "
                     "--install-rules first), or no CAP_BPF", c->bpf_map);
            return SD_EIO;
        }
        return 0;
    }
    bool marks = c->bypass == SD_BYPASS_IPSET ? c->sets[0][0] != '\0' : (c->ct_mark || c->settled_mark);
    if (marks && (w->ct_fd = sd_nfq_ct_open()) < 0) {
        snprintf(err, errlen, "cannot open a netfilter netlink socket for conntrack marks or set elements");
        return SD_EIO;
    }
    return 0;
}

struct sd_inline *sd_inline_start(const struct sd_inline_config *c, const struct sd_policy *pol, char *err,
                                  size_t errlen)
{
    struct sd_inline *in = calloc(1, sizeof(*in));
    unsigned n = c->workers ? c->workers : 1;

    if (!in || n > SD_INLINE_MAX_WORKERS || !(in->w = calloc(n, sizeof(*in->w)))) {
        snprintf(err, errlen, in ? "bad number of workers" : "out of memory");
        free(in);
        return NULL;
    }
    in->cfg = *c;
    in->n = n;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    in->wall_offset = (int64_t)((uint64_t)rt.tv_sec * SD_NS_PER_S + (uint64_t)rt.tv_nsec) - (int64_t)sd_mono_ns();
    atomic_store(&in->policy, pol);
    in->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (in->stop_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        sd_inline_stop(in);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        in->w[i].index = i;
        if (worker_open(in, &in->w[i], pol, err, errlen) < 0) {
            sd_inline_stop(in);
            return NULL;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (pthread_create(&in->w[i].tid, NULL, worker_main, &in->w[i]) != 0) {
            snprintf(err, errlen, "cannot start worker %u", i);
            sd_inline_stop(in);
            return NULL;
        }
        in->w[i].started = true;
        /* "sd-queue-N" in /proc/PID/task/TID/comm and top -H: per-queue CPU time can be told apart. */
        char name[16];
        snprintf(name, sizeof(name), "sd-queue-%u", (unsigned)(c->queue + i) % 100000u);
        pthread_setname_np(in->w[i].tid, name);
    }
    return in;
}

int sd_inline_set_policy(struct sd_inline *in, const struct sd_policy *pol)
{
    atomic_store(&in->policy, pol);
    unsigned g = atomic_fetch_add(&in->gen, 1) + 1;

    for (int waited = 0; waited < 5000; waited += 10) {
        unsigned done = 0;
        for (unsigned i = 0; i < in->n; i++)
            done += atomic_load(&in->w[i].seen_gen) == g;
        if (done == in->n)
            return 0;
        poll(NULL, 0, 10);
    }
    return SD_EIO;
}

static void add_stats(struct sd_inline_stats *a, const struct sd_inline_stats *b)
{
    a->nfq.packets += b->nfq.packets;
    a->nfq.recv_calls += b->nfq.recv_calls;
    a->nfq.enobufs += b->nfq.enobufs;
    a->nfq.verdicts += b->nfq.verdicts;
    a->nfq.verdict_msgs += b->nfq.verdict_msgs;
    a->nfq.send_calls += b->nfq.send_calls;
    a->nfq.nl_errors += b->nfq.nl_errors;
    a->engine.packets += b->engine.packets;
    a->engine.dropped += b->engine.dropped;
    a->engine.replaced += b->engine.replaced;
    a->engine.held += b->engine.held;
    a->engine.flows_created += b->engine.flows_created;
    a->engine.flows_active += b->engine.flows_active;
    a->engine.flows_evicted += b->engine.flows_evicted;
    a->engine.flows_expired += b->engine.flows_expired;
    a->engine.triggers += b->engine.triggers;
    a->engine.reasm_exhausted += b->engine.reasm_exhausted;
    a->engine.frag_exhausted += b->engine.frag_exhausted;
    for (int i = 0; i < 3; i++)
        a->engine.names[i] += b->engine.names[i];
    a->engine.inspect_rule += b->engine.inspect_rule;
    a->engine.inspect_none += b->engine.inspect_none;
    a->engine.flow_capacity += b->engine.flow_capacity;
    a->accepted += b->accepted;
    a->dropped += b->dropped;
    a->replaced += b->replaced;
    a->held += b->held;
    a->released += b->released;
    a->release_errors += b->release_errors;
    a->decode_errors += b->decode_errors;
    a->ct_marks += b->ct_marks;
    a->ct_errors += b->ct_errors;
    a->settled_marks += b->settled_marks;
    a->io_errors += b->io_errors;
}

void sd_inline_get_stats(struct sd_inline *in, struct sd_inline_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (unsigned i = 0; i < in->n; i++) {
        struct worker *w = &in->w[i];
        if (!w->q)
            continue;
        pthread_mutex_lock(&w->lock);
        add_stats(st, &w->snap);
        pthread_mutex_unlock(&w->lock);
    }
}

/* Adds |r| to the entry of the same name and action in |out| (n entries so far), or appends it. */
static size_t add_rule(struct sd_inline_rule *out, size_t n, size_t max, const struct sd_inline_rule *r)
{
    size_t i = 0;
    while (i < n && !(out[i].action == r->action && strcmp(out[i].name, r->name) == 0))
        i++;
    if (i == n) {
        if (n == max)
            return n;
        out[n] = *r;
        memset(&out[n].st, 0, sizeof(out[n].st));
        n++;
    }
    out[i].st.packets += r->st.packets;
    out[i].st.bytes += r->st.bytes;
    out[i].st.dropped += r->st.dropped;
    out[i].st.flows += r->st.flows;
    return n;
}

size_t sd_inline_get_rule_stats(struct sd_inline *in, struct sd_inline_rule *out, size_t max)
{
    size_t n = 0;

    if (max == 0)
        return 0;
    memset(&out[0], 0, sizeof(out[0])); /* the no-rule entry is always first */
    n = 1;
    for (unsigned i = 0; i < in->n; i++) {
        struct worker *w = &in->w[i];
        if (!w->q)
            continue;
        pthread_mutex_lock(&w->lock);
        for (unsigned k = 0; k < w->snap_n; k++)
            n = add_rule(out, n, max, &w->snap_rules[k]);
        pthread_mutex_unlock(&w->lock);
    }
    return n;
}

void sd_inline_stop(struct sd_inline *in)
{
    uint64_t one = 1;

    if (!in)
        return;
    if (in->stop_fd > 0) {
        ssize_t wr = write(in->stop_fd, &one, sizeof(one)); /* cannot fail below the eventfd maximum */
        (void)wr;
    }
    for (unsigned i = 0; in->w && i < in->n; i++) {
        if (in->w[i].started)
            pthread_join(in->w[i].tid, NULL);
    }
    for (unsigned i = 0; in->w && i < in->n; i++) {
        struct worker *w = &in->w[i];
        sd_nfq_close(w->q);
        sd_engine_free(w->e);
        if (w->ct_fd >= 0)
            close(w->ct_fd);
        if (w->raw4 >= 0)
            close(w->raw4);
        if (w->raw6 >= 0)
            close(w->raw6);
        if (w->q || w->e)
            pthread_mutex_destroy(&w->lock);
    }
    if (in->stop_fd > 0)
        close(in->stop_fd);
    free(in->w);
    free(in);
}
