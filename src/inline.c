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
 * Flows that trigger an action get a conntrack mark (ctnetlink, io_nfq.c) so
 * the rules keep queueing all their packets after the inspection window. The
 * engine tells no verdict-level "this flow is now under an action", so the
 * worker watches its trigger counter: a packet after which it grew belongs
 * to a flow that just triggered.
 *
 * Held IP fragments come back through on_release and leave through a raw
 * socket. (With conntrack loaded the kernel reassembles fragments before any
 * iptables hook, so in practice the engine sees whole packets.)
 *
 * Policy reload: the main thread publishes a policy and a generation number;
 * each worker swaps between two batches and acknowledges; the main thread
 * frees the old policy only once every worker has acknowledged.
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
#include <unistd.h>

#include "engine.h"
#include "inline.h"
#include "mono.h"
#include "pkt.h"

enum {
    POLL_MS = 100,                         /* longest sleep: policy switches and stop are seen this fast */
    PUBLISH_NS = 500 * SD_NS_PER_MS,       /* stats snapshot period */
    EXPIRE_NS = 1000 * SD_NS_PER_MS,       /* idle-flow sweep period */
    MAX_BATCH = 256,
};

struct worker {
    struct sd_inline *in;
    unsigned index;
    pthread_t tid;
    bool started;
    struct sd_nfq *q;
    struct sd_engine *e;
    int ct_fd, raw4, raw6;
    unsigned gen;                          /* policy generation in use */
    atomic_uint seen_gen;                  /* ... as acknowledged to the main thread */
    uint64_t last_triggers;
    struct sd_inline_stats st;             /* owned by the worker */
    pthread_mutex_t lock;                  /* guards snap */
    struct sd_inline_stats snap;
    struct sd_nfq_pkt pkts[MAX_BATCH];
};

struct sd_inline {
    struct sd_inline_config cfg;
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

/* Marks the conntrack entry of |pkt|'s flow (it just triggered). */
static void mark_flow(struct worker *w, const struct sd_pkt *pkt)
{
    if (!(pkt->flags & SD_PKT_L4) || (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP))
        return;
    struct sd_nfq_tuple t = {pkt->family, pkt->proto, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport};
    if (sd_nfq_ct_mark(w->ct_fd, &t, w->in->cfg.ct_mark, w->in->cfg.ct_mark) == 0)
        w->st.ct_marks++;
    else
        w->st.ct_errors++;
}

/* Runs one packet through the engine; |v| says what to do with it. */
static void decide(struct worker *w, const struct sd_nfq_pkt *p, uint64_t now, struct sd_verdict *v)
{
    struct sd_pkt pkt;

    v->kind = SD_V_PASS;
    if (!w->e || !p->data)
        return;
    if (sd_pkt_decode(&pkt, SD_DLT_RAW, p->data, p->len) < 0) {
        w->st.decode_errors++;
        return;
    }
    sd_engine_packet(w->e, &pkt, now, v);
    if (w->ct_fd >= 0) {
        struct sd_engine_stats es;
        sd_engine_get_stats(w->e, &es);
        if (es.triggers != w->last_triggers) {
            w->last_triggers = es.triggers;
            mark_flow(w, &pkt);
        }
    }
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
    sd_nfq_get_stats(w->q, &w->st.nfq);
    if (w->e)
        sd_engine_get_stats(w->e, &w->st.engine);
    if (w->ct_fd >= 0)
        w->st.ct_errors += sd_nfq_ct_drain(w->ct_fd);
    pthread_mutex_lock(&w->lock);
    w->snap = w->st;
    pthread_mutex_unlock(&w->lock);
}

static void switch_policy(struct worker *w)
{
    unsigned g = atomic_load(&w->in->gen);

    if (g == w->gen)
        return;
    if (w->e)
        sd_engine_set_policy(w->e, atomic_load(&w->in->policy));
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
        struct pollfd p[2] = {{sd_nfq_fd(w->q), POLLIN, 0}, {in->stop_fd, POLLIN, 0}};
        if (poll(p, 2, POLL_MS) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        switch_policy(w);
        for (;;) { /* drain what is waiting, a batch at a time */
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
            if ((unsigned)n < batch)
                break;
        }
        uint64_t now = sd_mono_ns();
        if (w->e && now - last_expire >= EXPIRE_NS) {
            sd_engine_expire(w->e, now);
            last_expire = now;
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
    w->ct_fd = w->raw4 = w->raw6 = -1;
    pthread_mutex_init(&w->lock, NULL);
    w->q = sd_nfq_open(&qc, err, errlen);
    if (!w->q)
        return SD_EIO;
    if (c->no_engine)
        return 0;
    struct sd_engine_config ec = {.max_flows = c->max_flows, .on_release = on_release, .arg = w};
    if (getrandom(ec.key, sizeof(ec.key), 0) != sizeof(ec.key))
        ec.key[0] = sd_mono_ns() | 1; /* never the 0,0 test key */
    w->e = sd_engine_new(pol, &ec);
    if (!w->e) {
        snprintf(err, errlen, "out of memory for the engine of queue %u", qc.queue);
        return SD_ENOMEM;
    }
    w->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    w->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (c->ct_mark && (w->ct_fd = sd_nfq_ct_open()) < 0) {
        snprintf(err, errlen, "cannot open a ctnetlink socket for conntrack marks");
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
    a->accepted += b->accepted;
    a->dropped += b->dropped;
    a->replaced += b->replaced;
    a->held += b->held;
    a->released += b->released;
    a->release_errors += b->release_errors;
    a->decode_errors += b->decode_errors;
    a->ct_marks += b->ct_marks;
    a->ct_errors += b->ct_errors;
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
