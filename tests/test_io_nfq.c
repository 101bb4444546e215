/*
 * test_io_nfq.c - the NFQUEUE backend's messages, without a queue: packet
 * messages as the kernel writes them parsed into views, verdict messages
 * (single, with a replacement packet, batch) laid out as the kernel reads
 * them, the delay line's release of due packets as one batch verdict, and a
 * conntrack mark request that ctnetlink accepts as well-formed (root only:
 * it must answer "no such connection", not "invalid").
 *
 * The static helpers are reached by including the sources (house style 13).
 */
#include "../src/io_nfq.c"
#include "../src/delayline.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A queue object with a real (unbound-queue) netlink socket and no binding. */
static struct sd_nfq *fake_queue(uint16_t queue)
{
    struct sd_nfq *q = calloc(1, sizeof(*q));
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    assert_non_null(q);
    q->queue = queue;
    q->sbuf = malloc(SEND_BUF);
    q->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    assert_true(q->fd >= 0);
    assert_int_equal(bind(q->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return q;
}

static void free_queue(struct sd_nfq *q)
{
    close(q->fd);
    free(q->sbuf);
    free(q);
}

static void test_parse_packet(void **state)
{
    uint8_t buf[512] __attribute__((aligned(8)));
    uint8_t pkt[60];
    (void)state;

    for (size_t i = 0; i < sizeof(pkt); i++)
        pkt[i] = (uint8_t)i;
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
    struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
    g->nfgen_family = AF_INET;
    g->res_id = htons(4);
    struct nfqnl_msg_packet_hdr ph = {.packet_id = htonl(77), .hw_protocol = htons(0x86dd), .hook = 0};
    mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
    mnl_attr_put_u32(nlh, NFQA_MARK, htonl(0x40000001));
    mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(pkt), pkt);
    mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl(1500));

    struct sd_nfq_pkt p;
    assert_true(parse_packet(nlh, &p));
    assert_int_equal(p.id, 77);
    assert_int_equal(p.hw_proto, 0x86dd);
    assert_int_equal(p.mark, 0x40000001);
    assert_int_equal(p.len, sizeof(pkt));
    assert_memory_equal(p.data, pkt, sizeof(pkt));
    assert_true(p.data > buf && p.data + p.len <= buf + nlh->nlmsg_len); /* a view, not a copy */
    assert_int_equal(p.orig_len, 1500);

    /* Without a packet header it is not a packet; without a payload, a meta-only one. */
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
    mnl_nlmsg_put_extra_header(nlh, sizeof(struct nfgenmsg));
    mnl_attr_put_u32(nlh, NFQA_MARK, htonl(1));
    assert_false(parse_packet(nlh, &p));
    mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
    assert_true(parse_packet(nlh, &p));
    assert_null(p.data);
    assert_int_equal(p.len, 0);
    assert_int_equal(p.orig_len, 0);
}

/* The verdict header of message |nlh| (and its payload attribute, if any). */
static const struct nfqnl_msg_verdict_hdr *verdict_of(const struct nlmsghdr *nlh, struct nlattr **payload)
{
    struct nlattr *a[NFQA_MAX + 1];
    memset(a, 0, sizeof(a));
    assert_true(nfq_nlmsg_parse(nlh, a) >= 0);
    assert_non_null(a[NFQA_VERDICT_HDR]);
    *payload = a[NFQA_PAYLOAD];
    return mnl_attr_get_payload(a[NFQA_VERDICT_HDR]);
}

static void test_verdicts(void **state)
{
    struct sd_nfq *q = fake_queue(5);
    uint8_t rst[40] = {0x45};
    struct nlattr *pl;
    (void)state;

    assert_int_equal(sd_nfq_verdict(q, 3, SD_NFQ_DROP, NULL, 0), 0);
    assert_int_equal(sd_nfq_verdict_batch(q, 9, SD_NFQ_ACCEPT, 4), 0);
    assert_int_equal(sd_nfq_verdict(q, 10, SD_NFQ_ACCEPT, rst, sizeof(rst)), 0);
    assert_int_equal(sd_nfq_verdict(q, 11, SD_NFQ_ACCEPT, rst, 70000), SD_ERANGE);

    const struct nlmsghdr *h = (const struct nlmsghdr *)q->sbuf;
    int len = (int)q->slen;
    static const struct {
        uint8_t type;
        uint32_t id, verdict;
        bool payload;
    } want[] = {{NFQNL_MSG_VERDICT, 3, NF_DROP, false}, {NFQNL_MSG_VERDICT_BATCH, 9, NF_ACCEPT, false},
                {NFQNL_MSG_VERDICT, 10, NF_ACCEPT, true}};
    int n = 0;
    for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len), n++) {
        assert_true(n < 3);
        assert_int_equal(h->nlmsg_type, (NFNL_SUBSYS_QUEUE << 8) | want[n].type);
        const struct nfgenmsg *g = mnl_nlmsg_get_payload(h);
        assert_int_equal(ntohs(g->res_id), 5);
        const struct nfqnl_msg_verdict_hdr *v = verdict_of(h, &pl);
        assert_int_equal(ntohl(v->id), want[n].id);
        assert_int_equal(ntohl(v->verdict), want[n].verdict);
        assert_int_equal(pl != NULL, want[n].payload);
        if (pl) {
            assert_int_equal(mnl_attr_get_payload_len(pl), sizeof(rst));
            assert_memory_equal(mnl_attr_get_payload(pl), rst, sizeof(rst));
        }
    }
    assert_int_equal(n, 3);
    assert_int_equal(len, 0);
    assert_int_equal(q->st.verdicts, 6);
    assert_int_equal(q->st.verdict_msgs, 3);
    /* One datagram for the three (the kernel answers with an error message: no queue 5 here). */
    assert_int_equal(sd_nfq_flush(q), 0);
    assert_int_equal(q->slen, 0);
    assert_int_equal(q->st.send_calls, 1);
    free_queue(q);
}

static void test_accept_all_covers_unseen_ids(void **state)
{
    struct sd_nfq *q = fake_queue(1);
    struct nlattr *pl;
    (void)state;

    /* The batch id is 2^31 - 1 past the newest id seen, wrapping like the kernel's nfq_id_after. */
    q->last_id = 0xfffffff0u;
    assert_int_equal(sd_nfq_accept_all(q), 0);
    const struct nfqnl_msg_verdict_hdr *v = verdict_of((const struct nlmsghdr *)q->sbuf, &pl);
    assert_int_equal(ntohl(v->id), 0x7fffffefu);
    assert_int_equal(ntohl(v->verdict), NF_ACCEPT);
    assert_int_equal(q->st.send_calls, 1);
    free_queue(q);
}

static void test_delay_release(void **state)
{
    struct sd_nfq *q = fake_queue(100);
    struct held h[8];
    struct ring r = {h, 8, 6, 0};
    struct nlattr *pl;
    (void)state;

    /* Five packets held, ids 21..25, due at 10..50, stored across the ring's end. */
    for (uint32_t i = 0; i < 5; i++) {
        r.h[(r.head + r.n) % r.cap] = (struct held){21 + i, 10 + 10 * (uint64_t)i};
        r.n++;
    }
    assert_int_equal(release(q, &r, 5), 0); /* nothing due */
    assert_int_equal(q->st.verdict_msgs, 0);
    assert_int_equal(release(q, &r, 35), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.head, 1);
    assert_int_equal(q->st.verdict_msgs, 1);
    assert_int_equal(q->st.verdicts, 3);
    const struct nfqnl_msg_verdict_hdr *v = verdict_of((const struct nlmsghdr *)q->sbuf, &pl);
    assert_int_equal(ntohl(v->id), 23);
    assert_int_equal(((const struct nlmsghdr *)q->sbuf)->nlmsg_type, (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT_BATCH);
    assert_int_equal(release(q, &r, UINT64_MAX), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(ntohl(verdict_of((const struct nlmsghdr *)q->sbuf, &pl)->id), 25);
    free_queue(q);
}

static void test_ct_mark_message(void **state)
{
    static const uint8_t a4[4] = {192, 0, 2, 77}, b4[4] = {198, 51, 100, 1};
    uint8_t buf[4096];
    (void)state;

    int fd = sd_nfq_ct_open();
    assert_true(fd >= 0);
    struct sd_nfq_tuple t = {4, IPPROTO_TCP, a4, b4, 40000, 443};
    assert_int_equal(sd_nfq_ct_mark(fd, &t, 0x40000000, 0x40000000), 0);
    t.family = 5;
    assert_int_equal(sd_nfq_ct_mark(fd, &t, 1, 1), SD_EINVAL);
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    assert_true(n > 0);
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
    assert_int_equal(h->nlmsg_type, NLMSG_ERROR);
    int err = ((const struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error;
    if (geteuid() == 0)
        assert_int_equal(err, -ENOENT); /* well-formed; there is no such connection */
    else
        assert_true(err == -EPERM || err == -ENOENT);
    assert_int_equal(sd_nfq_ct_drain(fd), 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_packet),  cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_accept_all_covers_unseen_ids), cmocka_unit_test(test_delay_release),
        cmocka_unit_test(test_ct_mark_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
