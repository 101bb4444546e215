/*
 * delayline.c - hold every queued packet for a fixed time, then accept it.
 *
 * NFQUEUE lets a verdict wait: the kernel keeps the packet and we keep only
 * its id, stamped with its release time, in a FIFO ring. Since every packet
 * gets the same delay, the ring is ordered by release time as well as by id,
 * so all packets due at once leave with one NFQNL_MSG_VERDICT_BATCH for the
 * newest of them. The payload is not copied (meta-only) and GSO packets stay
 * whole, so the line costs one message per packet and one verdict per
 * wake-up. The ring is as long as the kernel queue; the queue is fail-open,
 * so a flood beyond it is forwarded undelayed rather than dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "delayline.h"
#include "io_nfq.h"
#include "mono.h"

struct held {
    uint32_t id;
    uint64_t due;
};

struct ring {
    struct held *h;
    uint32_t cap, head, n;
};

/* Accepts every held packet due by |now|. */
static int release(struct sd_nfq *q, struct ring *r, uint64_t now)
{
    uint32_t k = 0, last = 0;

    while (k < r->n && r->h[(r->head + k) % r->cap].due <= now) {
        last = r->h[(r->head + k) % r->cap].id;
        k++;
    }
    if (k == 0)
        return 0;
    r->head = (r->head + k) % r->cap;
    r->n -= k;
    int rc = sd_nfq_verdict_batch(q, last, SD_NFQ_ACCEPT, k);
    return rc < 0 ? rc : sd_nfq_flush(q);
}

static int take(struct sd_nfq *q, struct ring *r, uint64_t delay)
{
    struct sd_nfq_pkt pkts[SD_NFQ_DEFAULT_BATCH];
    int n;

    while ((n = sd_nfq_recv(q, pkts, SD_COUNTOF(pkts))) > 0) {
        uint64_t due = sd_mono_ns() + delay;
        for (int i = 0; i < n; i++) {
            if (r->n == r->cap) { /* cannot happen with maxlen = cap; forward rather than lose */
                sd_nfq_verdict(q, pkts[i].id, SD_NFQ_ACCEPT, NULL, 0);
                continue;
            }
            r->h[(r->head + r->n) % r->cap] = (struct held){pkts[i].id, due};
            r->n++;
        }
        if (n < (int)SD_COUNTOF(pkts))
            break;
    }
    return n < 0 ? n : sd_nfq_flush(q);
}

int sd_delayline_run(const struct sd_delayline_config *c, int stop_fd, void (*on_ready)(void *), void *arg,
                     char *err, size_t errlen)
{
    uint32_t cap = c->maxlen ? c->maxlen : 65536;
    struct sd_nfq_config qc = {.queue = c->queue, .maxlen = cap, .meta_only = true, .gso = true, .rcvbuf = 32u << 20};
    struct ring r = {calloc(cap, sizeof(struct held)), cap, 0, 0};
    int rc = 0;

    if (!r.h) {
        snprintf(err, errlen, "out of memory");
        return SD_EIO;
    }
    struct sd_nfq *q = sd_nfq_open(&qc, err, errlen);
    if (!q) {
        free(r.h);
        return SD_EIO;
    }
    if (on_ready)
        on_ready(arg);
    for (;;) {
        struct pollfd p[2] = {{sd_nfq_fd(q), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        struct timespec ts, *tp = NULL;
        if (r.n) {
            uint64_t now = sd_mono_ns(), due = r.h[r.head].due;
            uint64_t left = due > now ? due - now : 0;
            ts.tv_sec = (time_t)(left / SD_NS_PER_S);
            ts.tv_nsec = (long)(left % SD_NS_PER_S);
            tp = &ts;
        }
        if (ppoll(p, 2, tp, NULL) < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            rc = SD_EIO;
            break;
        }
        if (p[1].revents)
            break;
        if ((rc = take(q, &r, c->delay_ns)) < 0 || (rc = release(q, &r, sd_mono_ns())) < 0) {
            snprintf(err, errlen, "NFQUEUE %u failed: %s", c->queue, strerror(errno));
            break;
        }
    }
    /* Held packets are accepted by the kernel when the queue goes away (fail-open on unbind). */
    release(q, &r, UINT64_MAX);
    sd_nfq_close(q);
    free(r.h);
    return rc;
}
