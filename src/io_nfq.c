/*
 * io_nfq.c - NFQUEUE through libmnl and libnetfilter_queue's message
 * builders (see io_nfq.h).
 *
 *   kernel queue --(one netlink message per packet)--> socket
 *   sd_nfq_recv:   recvmmsg(batch buffers, MSG_DONTWAIT)  -> parse each
 *                  message into a struct sd_nfq_pkt view (no copy)
 *   sd_nfq_verdict / _batch: append a verdict message to the send buffer
 *   sd_nfq_flush:  one sendto() for all of them
 *
 * Netlink carries several messages per datagram, so a batch of verdicts is
 * one system call; the kernel handles them in order, which is what makes a
 * batch verdict ("all ids up to N") safe after single verdicts for smaller
 * ids. Set-up messages are acknowledged and checked one by one, so the
 * common failure (queue already bound by another program: EBUSY) is
 * reported clearly. Memory is allocated once, at open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include "io_nfq.h"

enum {
    MSG_OVERHEAD = 1024,        /* netlink + nfqueue attributes around a packet */
    SEND_BUF = 256 * 1024,
    ACK_WAIT_MS = 2000,
};

struct sd_nfq {
    int fd;
    uint16_t queue;
    unsigned batch;
    size_t bufsize;
    uint32_t seq;
    uint8_t *rbuf;              /* batch receive buffers of bufsize each */
    struct mmsghdr *msgs;
    struct iovec *iov;
    uint32_t last_id;           /* newest packet id received */
    uint8_t *sbuf;              /* pending verdict messages */
    size_t slen;
    struct sd_nfq_stats st;
};

/* ---- set-up ---- */

static int send_msg(int fd, const struct nlmsghdr *nlh)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    ssize_t n = sendto(fd, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa));
    return n == (ssize_t)nlh->nlmsg_len ? 0 : -1;
}

/* Sends a request with NLM_F_ACK and waits for its answer: 0 or -errno. */
static int request(int fd, struct nlmsghdr *nlh, uint32_t seq)
{
    uint8_t buf[8192];

    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    if (send_msg(fd, nlh) < 0)
        return -errno;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, ACK_WAIT_MS) <= 0)
            return -ETIMEDOUT;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
            return errno == EINTR ? -EAGAIN : -errno;
        const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
        for (int len = (int)n; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq != seq)
                continue;
            const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
            return e->error;
        }
    }
}

static int configure(struct sd_nfq *q, const struct sd_nfq_config *c, char *err, size_t errlen)
{
    uint8_t buf[512];
    struct nlmsghdr *nlh;
    uint32_t range = c->copy_range ? c->copy_range : 65535;
    uint32_t flags = (c->fail_closed ? 0 : NFQA_CFG_F_FAIL_OPEN) | (c->gso ? NFQA_CFG_F_GSO : 0);
    uint32_t mask = NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO;
    int rc;

    nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, q->queue);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
    if ((rc = request(q->fd, nlh, ++q->seq)) < 0) {
        snprintf(err, errlen, "cannot bind NFQUEUE %u: %s%s", q->queue, strerror(-rc),
                 rc == -EBUSY ? " (another program holds this queue; pick another with --queue)" : "");
        return -1;
    }
    nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, q->queue);
    nfq_nlmsg_cfg_put_params(nlh, c->meta_only ? NFQNL_COPY_META : NFQNL_COPY_PACKET, (int)range);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, c->maxlen ? c->maxlen : SD_NFQ_DEFAULT_MAXLEN);
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));
    if ((rc = request(q->fd, nlh, ++q->seq)) < 0) {
        snprintf(err, errlen, "cannot configure NFQUEUE %u: %s", q->queue, strerror(-rc));
        return -1;
    }
    return 0;
}

struct sd_nfq *sd_nfq_open(const struct sd_nfq_config *c, char *err, size_t errlen)
{
    struct sd_nfq *q = calloc(1, sizeof(*q));
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int rcvbuf = (int)(c->rcvbuf ? c->rcvbuf : 16u << 20);

    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->queue = c->queue;
    q->batch = c->batch ? c->batch : SD_NFQ_DEFAULT_BATCH;
    /* Each buffer starts a netlink message: keep them 64-byte aligned. */
    q->bufsize = ((c->meta_only ? 0 : (c->copy_range ? c->copy_range : 65535)) + MSG_OVERHEAD + 63) & ~(size_t)63;
    q->rbuf = malloc(q->bufsize * q->batch);
    q->msgs = calloc(q->batch, sizeof(*q->msgs));
    q->iov = calloc(q->batch, sizeof(*q->iov));
    q->sbuf = malloc(SEND_BUF);
    q->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (!q->rbuf || !q->msgs || !q->iov || !q->sbuf) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (q->fd < 0 || bind(q->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "netlink socket: %s", strerror(errno));
        goto fail;
    }
    /* Beyond rmem_max when we may (root): bursts wait here instead of being lost. */
    if (setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        setsockopt(q->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (configure(q, c, err, errlen) < 0)
        goto fail;
    for (unsigned i = 0; i < q->batch; i++) {
        q->iov[i].iov_base = q->rbuf + i * q->bufsize;
        q->iov[i].iov_len = q->bufsize;
        q->msgs[i].msg_hdr.msg_iov = &q->iov[i];
        q->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return q;
fail:
    sd_nfq_close(q);
    return NULL;
}

int sd_nfq_fd(const struct sd_nfq *q)
{
    return q->fd;
}

/* ---- packets ---- */

/* One NFQNL_MSG_PACKET message into |p|. false if it is not a usable packet. */
static bool parse_packet(const struct nlmsghdr *h, struct sd_nfq_pkt *p)
{
    struct nlattr *a[NFQA_MAX + 1];

    memset(a, 0, sizeof(a));
    if (nfq_nlmsg_parse(h, a) < 0 || !a[NFQA_PACKET_HDR])
        return false;
    const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(a[NFQA_PACKET_HDR]);
    p->id = ntohl(ph->packet_id);
    p->hw_proto = ntohs(ph->hw_protocol);
    p->mark = a[NFQA_MARK] ? ntohl(mnl_attr_get_u32(a[NFQA_MARK])) : 0;
    if (a[NFQA_PAYLOAD]) {
        p->data = mnl_attr_get_payload(a[NFQA_PAYLOAD]);
        p->len = mnl_attr_get_payload_len(a[NFQA_PAYLOAD]);
    } else {
        p->data = NULL;
        p->len = 0;
    }
    p->orig_len = a[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(a[NFQA_CAP_LEN])) : p->len;
    return true;
}

int sd_nfq_recv(struct sd_nfq *q, struct sd_nfq_pkt *pkts, unsigned max)
{
    unsigned want = SD_MIN(max, q->batch), got = 0;

    if (want == 0)
        return 0;
    int n = recvmmsg(q->fd, q->msgs, want, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        if (errno == ENOBUFS) {
            q->st.enobufs++;
            return 0;
        }
        return SD_EIO;
    }
    for (int i = 0; i < n; i++) {
        const struct nlmsghdr *h = q->iov[i].iov_base;
        for (int len = (int)q->msgs[i].msg_len; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
                if (e->error)
                    q->st.nl_errors++;
                continue;
            }
            if ((h->nlmsg_type & 0xff) != NFQNL_MSG_PACKET || got >= want)
                continue;
            if (parse_packet(h, &pkts[got]))
                q->last_id = pkts[got++].id;
        }
    }
    if (got) {
        q->st.packets += got;
        q->st.recv_calls++;
    }
    return (int)got;
}

/* ---- verdicts ---- */

static struct nlmsghdr *reserve(struct sd_nfq *q, size_t need, int *rc)
{
    *rc = 0;
    if (q->slen + need > SEND_BUF && (*rc = sd_nfq_flush(q)) < 0)
        return NULL;
    return (struct nlmsghdr *)(q->sbuf + q->slen);
}

int sd_nfq_verdict(struct sd_nfq *q, uint32_t id, int verdict, const uint8_t *payload, size_t len)
{
    int rc;

    if (len > 65535 || MNL_ALIGN(len) + MSG_OVERHEAD > SEND_BUF)
        return SD_ERANGE;
    struct nlmsghdr *nlh = reserve(q, MNL_ALIGN(len) + 128, &rc);
    if (!nlh)
        return rc;
    nlh = nfq_nlmsg_put((char *)nlh, NFQNL_MSG_VERDICT, q->queue);
    nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
    if (payload)
        nfq_nlmsg_verdict_put_pkt(nlh, payload, (uint32_t)len);
    q->slen += MNL_ALIGN(nlh->nlmsg_len);
    q->st.verdicts++;
    q->st.verdict_msgs++;
    return 0;
}

int sd_nfq_verdict_batch(struct sd_nfq *q, uint32_t id, int verdict, unsigned n)
{
    int rc;
    struct nlmsghdr *nlh = reserve(q, 128, &rc);

    if (!nlh)
        return rc;
    nlh = nfq_nlmsg_put((char *)nlh, NFQNL_MSG_VERDICT_BATCH, q->queue);
    nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
    q->slen += MNL_ALIGN(nlh->nlmsg_len);
    q->st.verdicts += n;
    q->st.verdict_msgs++;
    return 0;
}

int sd_nfq_flush(struct sd_nfq *q)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};

    if (q->slen == 0)
        return 0;
    for (;;) {
        ssize_t n = sendto(q->fd, q->sbuf, q->slen, 0, (struct sockaddr *)&sa, sizeof(sa));
        if (n >= 0)
            break;
        if (errno == EINTR)
            continue;
        q->slen = 0;
        return SD_EIO;
    }
    q->st.send_calls++;
    q->slen = 0;
    return 0;
}

void sd_nfq_get_stats(const struct sd_nfq *q, struct sd_nfq_stats *st)
{
    *st = q->st;
}

int sd_nfq_accept_all(struct sd_nfq *q)
{
    /* Batch verdicts compare ids in serial arithmetic (nfq_id_after): this
     * covers every id up to 2^31 - 1 past the newest one seen. */
    int rc = sd_nfq_verdict_batch(q, q->last_id + 0x7fffffffu, SD_NFQ_ACCEPT, 0);
    return rc < 0 ? rc : sd_nfq_flush(q);
}

void sd_nfq_close(struct sd_nfq *q)
{
    if (!q)
        return;
    if (q->fd >= 0) {
        if (q->sbuf)
            sd_nfq_accept_all(q);
        uint8_t buf[256];
        struct nlmsghdr *nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, q->queue);
        nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
        send_msg(q->fd, nlh);
        close(q->fd);
    }
    free(q->rbuf);
    free(q->msgs);
    free(q->iov);
    free(q->sbuf);
    free(q);
}

/* ---- conntrack marks ---- */

int sd_nfq_ct_open(void)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);

    if (fd < 0)
        return SD_EIO;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return SD_EIO;
    }
    return fd;
}

/* The header of a request to a netfilter subsystem (|type|: subsystem << 8 | command) about family |family|
 * (4 or 6), in |buf|: acknowledged, and the answers, errors included, come back to sd_nfq_ct_drain. */
static struct nlmsghdr *nfnl_request(uint8_t *buf, uint16_t type, uint8_t family)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
    g->nfgen_family = family == 4 ? AF_INET : AF_INET6;
    g->version = NFNETLINK_V0;
    g->res_id = 0;
    return nlh;
}

int sd_nfq_ct_mark(int fd, const struct sd_nfq_tuple *t, uint32_t mark, uint32_t mask)
{
    uint8_t buf[256];
    struct nlattr *tuple, *ip, *proto;

    if (t->family != 4 && t->family != 6)
        return SD_EINVAL;
    struct nlmsghdr *nlh = nfnl_request(buf, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, t->family);
    /* Either direction's tuple finds the entry: the lookup hashes both. */
    tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
    ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
    if (t->family == 4) {
        mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, t->saddr);
        mnl_attr_put(nlh, CTA_IP_V4_DST, 4, t->daddr);
    } else {
        mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, t->saddr);
        mnl_attr_put(nlh, CTA_IP_V6_DST, 16, t->daddr);
    }
    mnl_attr_nest_end(nlh, ip);
    proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
    mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->proto);
    mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
    mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
    mnl_attr_nest_end(nlh, proto);
    mnl_attr_nest_end(nlh, tuple);
    /* new mark = (old & ~CTA_MARK_MASK) ^ CTA_MARK (ctnetlink_change_mark) */
    mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark & mask));
    mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
    return send_msg(fd, nlh) < 0 ? SD_EIO : 0;
}

/* An address attribute of ipset's: a nest holding IPV4 or IPV6 in network order. */
static void put_set_addr(struct nlmsghdr *nlh, uint16_t type, uint8_t family, const uint8_t *a)
{
    struct nlattr *n = mnl_attr_nest_start(nlh, type);
    if (family == 4)
        mnl_attr_put(nlh, IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, 4, a);
    else
        mnl_attr_put(nlh, IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER, 16, a);
    mnl_attr_nest_end(nlh, n);
}

int sd_nfq_set_entry(int fd, const char *set, const struct sd_nfq_tuple *t, bool add, uint32_t timeout_s)
{
    uint8_t buf[256];

    if ((t->family != 4 && t->family != 6) || strlen(set) >= IPSET_MAXNAMELEN)
        return SD_EINVAL;
    /* No NLM_F_EXCL: adding an element that is there renews its timeout, deleting one that is not is no
     * error (the kernel's IPSET_FLAG_EXIST). */
    struct nlmsghdr *nlh =
        nfnl_request(buf, (NFNL_SUBSYS_IPSET << 8) | (add ? IPSET_CMD_ADD : IPSET_CMD_DEL), t->family);
    mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL);
    mnl_attr_put_strz(nlh, IPSET_ATTR_SETNAME, set);
    struct nlattr *data = mnl_attr_nest_start(nlh, IPSET_ATTR_DATA);
    put_set_addr(nlh, IPSET_ATTR_IP, t->family, t->saddr);
    mnl_attr_put_u16(nlh, IPSET_ATTR_PORT | NLA_F_NET_BYTEORDER, htons(t->sport));
    mnl_attr_put_u8(nlh, IPSET_ATTR_PROTO, t->proto);
    put_set_addr(nlh, IPSET_ATTR_IP2, t->family, t->daddr);
    if (add && timeout_s)
        mnl_attr_put_u32(nlh, IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER, htonl(timeout_s));
    mnl_attr_nest_end(nlh, data);
    return send_msg(fd, nlh) < 0 ? SD_EIO : 0;
}

unsigned sd_nfq_ct_drain(int fd)
{
    uint8_t buf[4096];
    unsigned errors = 0;

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0)
            break;
        const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
        for (int len = (int)n; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_type == NLMSG_ERROR && ((const struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error)
                errors++;
        }
    }
    return errors;
}
