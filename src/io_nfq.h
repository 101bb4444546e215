/*
 * io_nfq.h - the NFQUEUE backend: packets from one netfilter queue in
 * batches, verdicts back in batches.
 *
 * One struct sd_nfq is one bound queue on its own netlink socket, used by
 * one thread. The queue is configured fail-open (NFQA_CFG_F_FAIL_OPEN: when
 * it is full the kernel accepts instead of dropping; fail_closed turns that
 * off) with a bounded kernel queue length and a large socket receive buffer. Receiving takes every
 * packet waiting, up to a batch, in one recvmmsg(); verdicts are collected
 * in a send buffer and leave in one sendto() per batch (sd_nfq_flush), runs
 * of accepts as one NFQNL_MSG_VERDICT_BATCH.
 *
 * Packet views point into the receive buffers and stay valid until the next
 * sd_nfq_recv on the same queue.
 */
#ifndef SD_IO_NFQ_H
#define SD_IO_NFQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum {
    SD_NFQ_DROP = 0,   /* NF_DROP */
    SD_NFQ_ACCEPT = 1, /* NF_ACCEPT */
    SD_NFQ_DEFAULT_MAXLEN = 4096,
    SD_NFQ_DEFAULT_BATCH = 256,
};

struct sd_nfq_config {
    uint16_t queue;        /* queue number (per network namespace) */
    uint32_t copy_range;   /* bytes of each packet copied up (0: 65535) */
    uint32_t maxlen;       /* kernel queue length in packets; more are accepted unseen (0: 4096) */
    uint32_t rcvbuf;       /* socket receive buffer in bytes (0: 16 MiB) */
    unsigned batch;        /* packets per sd_nfq_recv at most (0: 256) */
    bool meta_only;        /* copy no payload at all (NFQNL_COPY_META) */
    bool gso;              /* take GSO packets whole instead of segmented (NFQA_CFG_F_GSO) */
    bool fail_closed;      /* a full queue drops packets instead of accepting them (no FAIL_OPEN) */
};

struct sd_nfq_pkt {
    uint32_t id;           /* packet id for the verdict */
    uint16_t hw_proto;     /* 0x0800 or 0x86dd (host order) */
    uint32_t mark;         /* skb mark (NFQA_MARK), 0 if none */
    const uint8_t *data;   /* L3 packet, the first |len| bytes of it; NULL with meta_only */
    uint32_t len;
    uint32_t orig_len;     /* full packet length (len unless truncated to copy_range) */
};

struct sd_nfq_stats {
    uint64_t packets;      /* packets received */
    uint64_t recv_calls;   /* recvmmsg calls that returned packets */
    uint64_t enobufs;      /* times the socket overflowed (packets lost to fail-open accept or drop) */
    uint64_t verdicts;     /* packets given a verdict (a batch verdict counts its packets if known) */
    uint64_t verdict_msgs; /* verdict messages sent */
    uint64_t send_calls;   /* sendto calls */
    uint64_t nl_errors;    /* error messages from the kernel (a verdict for an unknown id, ...) */
};

struct sd_nfq;

/*
 * Opens a netlink socket and binds queue |c->queue| with the settings of
 * |c|. Returns NULL with a one-line reason in |err| (queue in use by another
 * program, not permitted, ...).
 */
struct sd_nfq *sd_nfq_open(const struct sd_nfq_config *c, char *err, size_t errlen);

/* The socket, for poll(): readable when packets are waiting. */
int sd_nfq_fd(const struct sd_nfq *q);

/*
 * Receives the packets waiting, at most |max| (and at most the configured
 * batch), without blocking. Returns how many were stored in |pkts| (0 when
 * none are waiting), or SD_EIO when the socket failed. A receive buffer
 * overflow (ENOBUFS) is counted in the stats and is not an error.
 */
int sd_nfq_recv(struct sd_nfq *q, struct sd_nfq_pkt *pkts, unsigned max);

/*
 * Adds a verdict for packet |id| to the send buffer: SD_NFQ_ACCEPT or
 * SD_NFQ_DROP; with |payload| (|len| bytes, an L3 packet) the packet is
 * replaced by it (accept only). Flushes first if the buffer is full.
 * 0, SD_ERANGE (payload too large), SD_EIO (a flush failed).
 */
int sd_nfq_verdict(struct sd_nfq *q, uint32_t id, int verdict, const uint8_t *payload, size_t len);

/* Adds one verdict for every packet still queued whose id is <= |id|
 * (NFQNL_MSG_VERDICT_BATCH); |n| is how many packets that is, for the stats. */
int sd_nfq_verdict_batch(struct sd_nfq *q, uint32_t id, int verdict, unsigned n);

/* Sends the collected verdicts (one sendto). 0 or SD_EIO. */
int sd_nfq_flush(struct sd_nfq *q);

void sd_nfq_get_stats(const struct sd_nfq *q, struct sd_nfq_stats *st);

/* Accepts every packet still in the kernel queue, seen or not. 0 or SD_EIO. */
int sd_nfq_accept_all(struct sd_nfq *q);

/* Accepts what is still queued (sd_nfq_accept_all), unbinds the queue and
 * frees. Accepts NULL. (A process that dies without this loses the few
 * packets queued at that moment; later ones pass by --queue-bypass.) */
void sd_nfq_close(struct sd_nfq *q);

/* A connection, as conntrack knows it: either direction's tuple finds it. */
struct sd_nfq_tuple {
    uint8_t family;        /* 4 or 6 */
    uint8_t proto;         /* IPPROTO_TCP or IPPROTO_UDP */
    const uint8_t *saddr, *daddr; /* 4 or 16 bytes */
    uint16_t sport, dport;
};

/*
 * Sets the bits of |mask| in the conntrack mark of connection |t| to those
 * of |mark|, through ctnetlink (IPCTNL_MSG_CT_NEW on an existing entry),
 * without waiting for the answer (see sd_nfq_ct_drain). |fd| comes from
 * sd_nfq_ct_open. The kernel here cannot set a conntrack mark through the
 * queue verdict (no NFQA_CT support built in), hence this side channel.
 * 0, SD_EINVAL (bad family), SD_EIO.
 */
int sd_nfq_ct_mark(int fd, const struct sd_nfq_tuple *t, uint32_t mark, uint32_t mask);

/*
 * Adds (|add|) or deletes the element "client address, client port and
 * protocol, server address" of an ipset of type hash:ip,port,ip named |set|:
 * |t| is oriented client to server (saddr, sport the client's). An add
 * renews the timeout of an element that is there (|timeout_s| 0: the set's
 * default); a delete of one that is not is no error. Sent like
 * sd_nfq_ct_mark, on the same kind of socket, answers read by
 * sd_nfq_ct_drain. 0, SD_EINVAL (bad family, name too long), SD_EIO.
 */
int sd_nfq_set_entry(int fd, const char *set, const struct sd_nfq_tuple *t, bool add, uint32_t timeout_s);

/* A netlink socket for sd_nfq_ct_mark, or a negative SD_E*. Close it with close(). */
int sd_nfq_ct_open(void);

/* Reads (and discards) the answers waiting on a ctnetlink socket; returns how many were errors. */
unsigned sd_nfq_ct_drain(int fd);

#endif
