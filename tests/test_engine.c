/*
 * test_engine.c - what the engine reports for operations (issue 10): the
 * per-rule counters (packets, bytes, drops, flows) and their fate across a
 * policy swap, the inspection counters, the verdict flags a packet's flow
 * state gives, and the action_end event when a reload takes a flow's rule
 * away. Packets are built one by one and fed straight to the engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "gen.h"
#include "pkt.h"
#include "policy.h"
#include "tpolicy.h"

#define SEC 1000000000ULL

struct events {
    int n, types[64];
    char rule[64][32], reason[64][16];
};

static void on_event(void *arg, const struct sd_event *ev)
{
    struct events *e = arg;
    if (e->n == 64)
        return;
    e->types[e->n] = ev->type;
    snprintf(e->rule[e->n], sizeof(e->rule[0]), "%s", ev->rule ? ev->rule : "");
    snprintf(e->reason[e->n], sizeof(e->reason[0]), "%s", ev->reason ? ev->reason : "");
    e->n++;
}

/* One TCP connection between 10.0.0.2:|cport| and 203.0.113.5:443. */
struct conn {
    struct sd_engine *e;
    uint16_t cport;
    uint32_t cseq, sseq;
    uint64_t t;
};

/* Feeds one packet (|dir| 0: client to server) and returns its verdict. */
static struct sd_verdict feed(struct conn *c, int dir, uint8_t flags, const uint8_t *data, size_t len)
{
    uint8_t frame[2048];
    struct sd_gen_pkt spec = {.linktype = 1, .proto = 6, .tcp_flags = flags, .payload = data, .payload_len = len};
    spec.src = sd_gen_addr(dir ? "203.0.113.5" : "10.0.0.2");
    spec.dst = sd_gen_addr(dir ? "10.0.0.2" : "203.0.113.5");
    spec.sport = dir ? 443 : c->cport;
    spec.dport = dir ? c->cport : 443;
    spec.seq = dir ? c->sseq : c->cseq;
    spec.ack = dir ? c->cseq : c->sseq;
    size_t n = sd_gen_frame(frame, sizeof(frame), &spec);
    assert_true(n > 0);
    uint32_t adv = (uint32_t)len + ((flags & (SD_TCP_SYN | SD_TCP_FIN)) ? 1 : 0);
    if (dir)
        c->sseq += adv;
    else
        c->cseq += adv;
    struct sd_pkt pkt;
    assert_int_equal(sd_pkt_decode(&pkt, SD_DLT_EN10MB, frame, n), 0);
    struct sd_verdict v;
    c->t += SEC / 100;
    sd_engine_packet(c->e, &pkt, c->t, &v);
    return v;
}

/* Handshake, then a ClientHello for |sni|; returns the hello's verdict. */
static struct sd_verdict open_tls(struct conn *c, const char *sni)
{
    uint8_t hello[2048];
    struct sd_gen_hello h = {.sni = sni};
    size_t n = sd_gen_client_hello_record(hello, sizeof(hello), &h);
    assert_true(n > 0);
    struct sd_verdict v = feed(c, 0, SD_TCP_SYN, NULL, 0);
    assert_int_equal(v.flags, 0); /* being inspected: neither flag */
    feed(c, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
    feed(c, 0, SD_TCP_ACK, NULL, 0);
    return feed(c, 0, SD_TCP_ACK | SD_TCP_PSH, hello, n);
}

static const char pol1[] = "set inspect.extra 0\n"
                           "names bad blocked.test\n"
                           "names ok fine.test\n"
                           "rule allow when sni in ok then pass\n"
                           "rule t when sni in bad then drop\n";

static void test_rule_counters(void **state)
{
    struct sd_policy *p1 = tpolicy(pol1);
    struct events ev = {0};
    struct sd_engine_config cfg = {.max_flows = 64, .track = true, .on_event = on_event, .arg = &ev};
    struct sd_engine *e = sd_engine_new(p1, &cfg);
    struct sd_rule_stats rs[8];
    uint8_t data[1000];
    (void)state;
    memset(data, 'x', sizeof(data));
    assert_non_null(e);

    /* A blocked name: the rule fires on the hello; server data is dropped. */
    struct conn a = {.e = e, .cport = 40000, .cseq = 1000, .sseq = 5000, .t = 10 * SEC};
    struct sd_verdict v = open_tls(&a, "blocked.test");
    assert_true(v.flags & SD_VF_ACTION);
    for (int i = 0; i < 3; i++) {
        v = feed(&a, 1, SD_TCP_ACK | SD_TCP_PSH, data, sizeof(data));
        assert_int_equal(v.kind, SD_V_DROP);
        assert_int_equal(v.flags, SD_VF_ACTION | SD_VF_S2C); /* server to client */
    }
    /* Another name: inspection ends, nothing fires, the flow is settled. */
    struct conn b = {.e = e, .cport = 40001, .cseq = 7000, .sseq = 9000, .t = 11 * SEC};
    v = open_tls(&b, "other.test");
    assert_int_equal(v.kind, SD_V_PASS);
    assert_int_equal(v.flags, SD_VF_SETTLED);
    v = feed(&b, 1, SD_TCP_ACK, data, 500);
    assert_int_equal(v.flags, SD_VF_SETTLED | SD_VF_S2C);
    v = feed(&b, 0, SD_TCP_ACK, NULL, 0);
    assert_int_equal(v.flags, SD_VF_SETTLED); /* client to server */
    /* A pass rule fires too (a whitelist), and the flow settles under it. */
    struct conn c = {.e = e, .cport = 40002, .cseq = 100, .sseq = 200, .t = 12 * SEC};
    v = open_tls(&c, "fine.test");
    assert_int_equal(v.flags, SD_VF_SETTLED);

    assert_int_equal(sd_engine_rule_stats(e, rs, 8), 3);
    /* No rule: a's 3 handshake packets, b's 6 packets, c's 3 handshake packets. */
    assert_int_equal(rs[0].packets, 3 + 6 + 3);
    assert_int_equal(rs[0].dropped, 0);
    assert_int_equal(rs[0].flows, 0);
    assert_int_equal(rs[1].packets, 1); /* allow: c's hello */
    assert_int_equal(rs[1].flows, 1);
    assert_int_equal(rs[2].packets, 4); /* t: a's hello and the 3 data packets */
    assert_int_equal(rs[2].dropped, 4); /* SNI-IV drops from the trigger packet on: the hello too */
    assert_int_equal(rs[2].flows, 1);
    uint8_t hello[2048];
    struct sd_gen_hello h = {.sni = "blocked.test"};
    size_t hello_len = sd_gen_client_hello_record(hello, sizeof(hello), &h);
    assert_int_equal(rs[2].bytes, (20 + 20 + hello_len) + 3 * (20 + 20 + sizeof(data))); /* IP bytes */
    /* Fewer slots than rules: a prefix, and the full count. */
    memset(rs, 0xff, sizeof(rs));
    assert_int_equal(sd_engine_rule_stats(e, rs, 1), 3);
    assert_int_equal(rs[0].packets, 12);
    assert_int_equal(rs[1].packets, UINT64_MAX); /* untouched */

    struct sd_engine_stats st;
    sd_engine_get_stats(e, &st);
    assert_int_equal(st.names[0], 3);
    assert_int_equal(st.names[1] + st.names[2], 0);
    assert_int_equal(st.inspect_rule, 2);
    assert_int_equal(st.inspect_none, 1);
    assert_int_equal(st.flow_capacity, 64);

    /* A reload keeps "t" (same name, same action: counters and the flow stay) and drops "allow". */
    struct sd_policy *p2 = tpolicy("names bad blocked.test\nrule t when sni in bad then drop\n");
    sd_engine_set_policy(e, p2);
    assert_int_equal(sd_engine_rule_stats(e, rs, 8), 2);
    assert_int_equal(rs[0].packets, 12);
    assert_int_equal(rs[1].packets, 4);
    assert_int_equal(rs[1].flows, 1);
    v = feed(&a, 1, SD_TCP_ACK | SD_TCP_PSH, data, sizeof(data));
    assert_int_equal(v.kind, SD_V_DROP);
    for (int i = 0; i < ev.n; i++)
        assert_int_not_equal(ev.types[i], SD_EV_ACTION_END);

    /* A reload where "t" becomes a throttle: a new rule as far as counters go; a's action ends. */
    int before = ev.n;
    struct sd_policy *p3 = tpolicy("names bad blocked.test\nrule t when sni in bad then throttle\n");
    sd_engine_set_policy(e, p3);
    assert_int_equal(ev.n, before + 1);
    assert_int_equal(ev.types[before], SD_EV_ACTION_END);
    assert_string_equal(ev.rule[before], "t");
    assert_string_equal(ev.reason[before], "policy");
    assert_int_equal(sd_engine_rule_stats(e, rs, 8), 2);
    assert_int_equal(rs[1].packets, 0);
    assert_int_equal(rs[1].flows, 0);
    v = feed(&a, 1, SD_TCP_ACK | SD_TCP_PSH, data, sizeof(data));
    assert_int_equal(v.kind, SD_V_PASS); /* the flow lives on under no rule */
    assert_int_equal(v.flags, SD_VF_SETTLED | SD_VF_S2C);
    sd_engine_rule_stats(e, rs, 8);
    assert_int_equal(rs[0].packets, 13);

    sd_engine_free(e);
    sd_policy_free(p1);
    sd_policy_free(p2);
    sd_policy_free(p3);
}

/* B1 (2022): a SYN from outside makes a flow under an action ineligible: an action_end event. */
static void test_remote_syn_ends_action(void **state)
{
    struct sd_policy *p = tpolicy("set eligibility.remote-syn-unblocks on\nnames bad blocked.test\n"
                                 "rule t when sni in bad then drop\n");
    struct events ev = {0};
    struct sd_engine_config cfg = {.max_flows = 16, .track = true, .on_event = on_event, .arg = &ev};
    struct sd_engine *e = sd_engine_new(p, &cfg);
    (void)state;

    struct conn a = {.e = e, .cport = 40000, .cseq = 1000, .sseq = 5000, .t = SEC};
    assert_true(open_tls(&a, "blocked.test").flags & SD_VF_ACTION);
    int before = ev.n;
    feed(&a, 1, SD_TCP_SYN, NULL, 0);
    assert_int_equal(ev.n, before + 1);
    assert_int_equal(ev.types[before], SD_EV_ACTION_END);
    assert_string_equal(ev.reason[before], "remote_syn");
    assert_string_equal(ev.rule[before], "t");
    sd_engine_free(e);
    sd_policy_free(p);
}

/* The freeze (cdn25) lets the first n bytes of the server's stream through
 * and nothing after, by sequence number: a segment within them that comes
 * again after the freeze (lost beyond the censor and resent) still passes;
 * data beyond them, and once frozen the server's ACKs, are dropped. */
static void test_freeze_resend(void **state)
{
    (void)state;
    struct sd_policy *p = tpolicy("ips far 203.0.113.0/24\n"
                                  "rule f when server in far then freeze bytes=3000 dir=s2c\n");
    struct sd_engine_config cfg = {.max_flows = 64};
    struct sd_engine *e = sd_engine_new(p, &cfg);
    assert_non_null(e);
    uint8_t data[1000];
    memset(data, 'x', sizeof(data));
    struct conn c = {.e = e, .cport = 40010, .cseq = 1000, .sseq = 0xfffff000u, .t = 10 * SEC}; /* seq wraps inside */
    feed(&c, 0, SD_TCP_SYN, NULL, 0); /* the rule fires here: the server's address */
    assert_int_equal(feed(&c, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0).kind, SD_V_PASS);
    feed(&c, 0, SD_TCP_ACK, NULL, 0);
    uint32_t second = 0;
    for (int i = 0; i < 3; i++) { /* bytes 0-2999 */
        if (i == 1)
            second = c.sseq;
        assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_PASS);
    }
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_DROP); /* from byte 3000 */
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, NULL, 0).kind, SD_V_DROP);            /* frozen: ACKs too */
    uint32_t next = c.sseq;
    c.sseq = second; /* bytes 1000-1999 again */
    assert_int_equal(feed(&c, 1, SD_TCP_ACK | SD_TCP_PSH, data, sizeof(data)).kind, SD_V_PASS);
    c.sseq = next;
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_DROP);
    assert_int_equal(feed(&c, 0, SD_TCP_ACK, NULL, 0).kind, SD_V_PASS); /* the client's side is not frozen */
    sd_engine_free(e);
    sd_policy_free(p);
}

/* A flow under an L4 rule's action keeps being inspected, since an L7 rule
 * may still take over (here l4 fires at the SYN, t waits for the hello). It
 * reassembles a split ClientHello like any flow, while the action's state
 * (here the policer's credit), which shares the flow's union with the
 * reassembly slot and the ISN, waits in the slot and comes back after. (This
 * crashed the engine: the policer overwrote the slot number.) */
static void test_split_hello_under_action(void **state)
{
    (void)state;
    struct sd_policy *p = tpolicy("set inspect.tls hello\nset inspect.extra 15\nnames bad blocked.test\n"
                                  "rule t when sni in bad then drop\n"
                                  "rule l4 when tcp then throttle rate=8kbit burst=3000\n");
    struct sd_engine_config cfg = {.max_flows = 64};
    struct sd_engine *e = sd_engine_new(p, &cfg);
    assert_non_null(e);
    uint8_t bad[2048], fine[2048];
    struct sd_gen_hello hb = {.sni = "blocked.test"}, hf = {.sni = "fine.test"};
    size_t nb = sd_gen_client_hello_record(bad, sizeof(bad), &hb);
    size_t nf = sd_gen_client_hello_record(fine, sizeof(fine), &hf);
    assert_true(nb > 100 && nb < 1000 && nf > 100 && nf < 1000);

    /* Split, under l4's throttle: reassembled, and t takes over. */
    struct conn a = {.e = e, .cport = 40020, .cseq = 1000, .sseq = 5000, .t = SEC};
    assert_true(feed(&a, 0, SD_TCP_SYN, NULL, 0).flags & SD_VF_ACTION); /* l4 fires at once */
    feed(&a, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
    feed(&a, 0, SD_TCP_ACK, NULL, 0);
    assert_int_equal(feed(&a, 0, SD_TCP_ACK, bad, 60).kind, SD_V_PASS);
    assert_int_equal(feed(&a, 0, SD_TCP_ACK | SD_TCP_PSH, bad + 60, nb - 60).kind, SD_V_DROP);

    /* Split, a name no rule lists: l4's throttle goes on with its credit intact. 3000 bytes of
     * burst at 8 kbit/s: the hello (under 1000 bytes) passes, then 2 of 3 server segments of
     * 1400 (the credit is 3 s, a segment costs 1.4 s, 10 ms between packets). */
    struct conn c = {.e = e, .cport = 40022, .cseq = 7000, .sseq = 9000, .t = 3 * SEC};
    feed(&c, 0, SD_TCP_SYN, NULL, 0);
    feed(&c, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
    feed(&c, 0, SD_TCP_ACK, NULL, 0);
    assert_int_equal(feed(&c, 0, SD_TCP_ACK, fine, 60).kind, SD_V_PASS);
    struct sd_verdict v = feed(&c, 0, SD_TCP_ACK | SD_TCP_PSH, fine + 60, nf - 60);
    assert_int_equal(v.kind, SD_V_PASS);
    assert_true(v.flags & SD_VF_ACTION);
    uint8_t data[1400];
    memset(data, 'x', sizeof(data));
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_PASS);
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_PASS);
    assert_int_equal(feed(&c, 1, SD_TCP_ACK, data, sizeof(data)).kind, SD_V_DROP);

    /* Whole in one segment: t takes over as well. */
    struct conn b = {.e = e, .cport = 40021, .cseq = 1000, .sseq = 5000, .t = 5 * SEC};
    feed(&b, 0, SD_TCP_SYN, NULL, 0);
    feed(&b, 1, SD_TCP_SYN | SD_TCP_ACK, NULL, 0);
    feed(&b, 0, SD_TCP_ACK, NULL, 0);
    assert_int_equal(feed(&b, 0, SD_TCP_ACK | SD_TCP_PSH, bad, nb).kind, SD_V_DROP);
    sd_engine_free(e);
    sd_policy_free(p);
}

/* The periodic sweep (inline mode, once a second) finds every idle flow,
 * whichever slots they sit in: a full table, first slot to last. */
static void test_expire_full_table(void **state)
{
    (void)state;
    struct sd_policy *p = tpolicy("set inspect.extra 0\n");
    struct sd_engine_config cfg = {.max_flows = 64};
    struct sd_engine *e = sd_engine_new(p, &cfg);
    assert_non_null(e);
    struct sd_engine_stats st;
    unsigned n = 0;
    for (;; n++) { /* until the table evicts: then every slot is in use */
        struct conn c = {.e = e, .cport = (uint16_t)(20000 + n), .cseq = 1, .sseq = 1, .t = SEC + n};
        feed(&c, 0, SD_TCP_SYN, NULL, 0);
        sd_engine_get_stats(e, &st);
        if (st.flows_evicted)
            break;
        assert_true(n < 1000);
    }
    assert_int_equal(st.flows_active, n);
    sd_engine_expire(e, 100 * SEC);
    sd_engine_get_stats(e, &st);
    assert_int_equal(st.flows_active, 0);
    assert_int_equal(st.flows_expired, n);
    sd_engine_free(e);
    sd_policy_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_counters),
        cmocka_unit_test(test_remote_syn_ends_action),
        cmocka_unit_test(test_freeze_resend),
        cmocka_unit_test(test_split_hello_under_action),
        cmocka_unit_test(test_expire_full_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
