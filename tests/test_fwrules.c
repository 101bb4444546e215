/*
 * test_fwrules.c - the queueing rules of `slowdown run` as data: the exact
 * commands for the default set-up, for several workers and interfaces, for
 * "every packet" mode, and the refusals (bad interface names, too many).
 * Nothing is installed: applying and removing is what the lab tests do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "fwrules.h"
#include "gen.h"
#include "inline.h"
#include "pkt.h"
#include "subproc.h"

static struct sd_fw_plan plan;

static const char *line(unsigned i)
{
    static char buf[1400];
    assert_true(i < plan.n);
    sd_subproc_format(plan.rules[i].argv, buf, sizeof(buf));
    return buf;
}

static void test_default(void **state)
{
    struct sd_fw_config c = {.queue = 0, .workers = 1, .queue_packets = 64, .ct_mark = 0x40000000};
    (void)state;

    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 12);
    assert_string_equal(line(0), "iptables-legacy -w -t filter -N SLOWDOWN-0");
    assert_string_equal(line(1), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m connmark --mark 0x40000000/0x40000000 "
                                 "-j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(2), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m conntrack --ctstate INVALID,UNTRACKED "
                                 "-j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(3), "iptables-legacy -w -t filter -A SLOWDOWN-0 -p tcp -m connbytes --connbytes 0:64 "
                                 "--connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(4), "iptables-legacy -w -t filter -A SLOWDOWN-0 -p udp -m connbytes --connbytes 0:64 "
                                 "--connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(5), "iptables-legacy -w -t filter -I FORWARD 1 -j SLOWDOWN-0");
    assert_string_equal(line(6), "ip6tables-legacy -w -t filter -N SLOWDOWN-0");
    assert_string_equal(line(11), "ip6tables-legacy -w -t filter -I FORWARD 1 -j SLOWDOWN-0");
    /* argv is NULL-terminated and usable as is. */
    assert_string_equal(plan.rules[5].argv[0], "iptables-legacy");
    assert_null(plan.rules[5].argv[9]);
}

static void test_workers_ifaces_prerouting(void **state)
{
    struct sd_fw_config c = {.queue = 10, .workers = 4, .queue_packets = 30, .ct_mark = 0x100,
                             .hook = SD_FW_PREROUTING, .ifaces = {"in0", "eth1.20"}, .n_ifaces = 2};
    char name[32];
    (void)state;

    sd_fw_chain_name(&c, name, sizeof(name));
    assert_string_equal(name, "SLOWDOWN-10");
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 14);
    assert_string_equal(line(1), "iptables-legacy -w -t mangle -A SLOWDOWN-10 -m connmark --mark 0x100/0x100 "
                                 "-j NFQUEUE --queue-balance 10:13 --queue-bypass");
    assert_string_equal(line(3), "iptables-legacy -w -t mangle -A SLOWDOWN-10 -p tcp -m connbytes --connbytes 0:30 "
                                 "--connbytes-dir both --connbytes-mode packets -j NFQUEUE --queue-balance 10:13 "
                                 "--queue-bypass");
    assert_string_equal(line(5), "iptables-legacy -w -t mangle -I PREROUTING 1 -i in0 -j SLOWDOWN-10");
    assert_string_equal(line(6), "iptables-legacy -w -t mangle -I PREROUTING 1 -i eth1.20 -j SLOWDOWN-10");
    assert_string_equal(line(13), "ip6tables-legacy -w -t mangle -I PREROUTING 1 -i eth1.20 -j SLOWDOWN-10");
}

static void test_settled_mark(void **state)
{
    struct sd_fw_config c = {.queue = 0, .workers = 1, .queue_packets = 64, .ct_mark = 0x40000000,
                             .settled_mark = 0x20000000};
    (void)state;

    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 14);
    /* After the action rule (a flow under an action stays queued even if both bits were set), before
     * the INVALID and window rules. */
    assert_string_equal(line(1), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m connmark --mark 0x40000000/0x40000000 "
                                 "-j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(2), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m connmark --mark 0x20000000/0x20000000 "
                                 "-j RETURN");
    assert_string_equal(line(3), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m conntrack --ctstate INVALID,UNTRACKED "
                                 "-j NFQUEUE --queue-num 0 --queue-bypass");
    assert_string_equal(line(9), "ip6tables-legacy -w -t filter -A SLOWDOWN-0 -m connmark --mark 0x20000000/0x20000000 "
                                 "-j RETURN");
    /* Every-packet mode has no window to leave early: no RETURN rule. */
    c.queue_packets = 0;
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    for (unsigned i = 0; i < plan.n; i++)
        assert_null(strstr(line(i), "RETURN"));
}

static void test_every_packet(void **state)
{
    struct sd_fw_config c = {.queue = 3, .workers = 1, .queue_packets = 0, .ct_mark = 0x40000000};
    (void)state;

    /* No window: every TCP and UDP packet, and no connmark rule (nothing to keep). */
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 8);
    assert_string_equal(line(1), "iptables-legacy -w -t filter -A SLOWDOWN-3 -p tcp -j NFQUEUE --queue-num 3 "
                                 "--queue-bypass");
    assert_string_equal(line(2), "iptables-legacy -w -t filter -A SLOWDOWN-3 -p udp -j NFQUEUE --queue-num 3 "
                                 "--queue-bypass");
    for (unsigned i = 0; i < plan.n; i++)
        assert_null(strstr(line(i), "connmark"));
}

static void test_bypass_ipset(void **state)
{
    struct sd_fw_config c = {.queue = 2, .workers = 1, .queue_packets = 64, .bypass = SD_BYPASS_IPSET,
                             .set_timeout_s = 90, .set_max = 5000, .hook = SD_FW_PREROUTING};
    char name[32];
    (void)state;

    sd_fw_set_name(&c, 6, name, sizeof(name));
    assert_string_equal(name, "SLOWDOWN-2-v6");
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 2 + 2 * 7);
    /* The sets first, then per family: SYNs queued, the set's elements in both directions pass, the rest
     * queued. Nothing needs conntrack. */
    assert_string_equal(line(0), "ipset create SLOWDOWN-2-v4 hash:ip,port,ip family inet timeout 90 maxelem 5000 -exist");
    assert_string_equal(line(1), "ipset create SLOWDOWN-2-v6 hash:ip,port,ip family inet6 timeout 90 maxelem 5000 -exist");
    assert_string_equal(line(3), "iptables-legacy -w -t mangle -A SLOWDOWN-2 -p tcp --syn -j NFQUEUE --queue-num 2 "
                                 "--queue-bypass");
    assert_string_equal(line(4), "iptables-legacy -w -t mangle -A SLOWDOWN-2 -m set --match-set SLOWDOWN-2-v4 "
                                 "src,src,dst -j RETURN");
    assert_string_equal(line(5), "iptables-legacy -w -t mangle -A SLOWDOWN-2 -m set --match-set SLOWDOWN-2-v4 "
                                 "dst,dst,src -j RETURN");
    assert_string_equal(line(6), "iptables-legacy -w -t mangle -A SLOWDOWN-2 -p tcp -j NFQUEUE --queue-num 2 "
                                 "--queue-bypass");
    assert_string_equal(line(7), "iptables-legacy -w -t mangle -A SLOWDOWN-2 -p udp -j NFQUEUE --queue-num 2 "
                                 "--queue-bypass");
    assert_string_equal(line(11), "ip6tables-legacy -w -t mangle -A SLOWDOWN-2 -m set --match-set SLOWDOWN-2-v6 "
                                  "src,src,dst -j RETURN");
    for (unsigned i = 0; i < plan.n; i++) {
        assert_null(strstr(line(i), "conn"));
        assert_null(strstr(line(i), "ctstate"));
    }
    /* Every packet queued: no set is needed. */
    c.queue_packets = 0;
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 8);
    for (unsigned i = 0; i < plan.n; i++)
        assert_null(strstr(line(i), "set"));
}

static void test_bypass_bpf(void **state)
{
    struct sd_fw_config c = {.queue = 0, .workers = 2, .queue_packets = 64, .bypass = SD_BYPASS_BPF,
                             .bpf_prog = "/run/slowdown/bpf/net-1-q-0-prog", .bpf_map = "/run/slowdown/bpf/net-1-q-0-map"};
    (void)state;

    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_int_equal(plan.n, 2 * 5);
    /* The program leaves bare SYNs to the queue itself: no SYN rule. */
    assert_string_equal(line(1), "iptables-legacy -w -t filter -A SLOWDOWN-0 -m bpf --object-pinned "
                                 "/run/slowdown/bpf/net-1-q-0-prog -j RETURN");
    assert_string_equal(line(2), "iptables-legacy -w -t filter -A SLOWDOWN-0 -p tcp -j NFQUEUE --queue-balance 0:1 "
                                 "--queue-bypass");
    assert_string_equal(line(3), "iptables-legacy -w -t filter -A SLOWDOWN-0 -p udp -j NFQUEUE --queue-balance 0:1 "
                                 "--queue-bypass");
    /* One program for both families. */
    assert_string_equal(line(6), "ip6tables-legacy -w -t filter -A SLOWDOWN-0 -m bpf --object-pinned "
                                 "/run/slowdown/bpf/net-1-q-0-prog -j RETURN");
    for (unsigned i = 0; i < plan.n; i++) {
        assert_null(strstr(line(i), "conn"));
        assert_null(strstr(line(i), "ipset"));
    }
    /* No program path: refused rather than a rule that cannot load. */
    c.bpf_prog = NULL;
    assert_int_equal(sd_fw_plan_install(&c, &plan), SD_EINVAL);
}

static void test_refusals(void **state)
{
    struct sd_fw_config c = {.workers = 1, .queue_packets = 64, .ct_mark = 1, .n_ifaces = 1};
    (void)state;

    static const char *const bad[] = {"", "eth0;reboot", "a b", "waytoolonginterface0", "in0\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.ifaces[0] = bad[i];
        assert_int_equal(sd_fw_plan_install(&c, &plan), SD_EINVAL);
    }
    c.ifaces[0] = "veth-x_1";
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    c.n_ifaces = SD_FW_MAX_IFACES + 1;
    assert_int_equal(sd_fw_plan_install(&c, &plan), SD_EINVAL);
    c.n_ifaces = 0;
    c.hook = 2;
    assert_int_equal(sd_fw_plan_install(&c, &plan), SD_EINVAL);
}

static void test_print(void **state)
{
    struct sd_fw_config c = {.workers = 1, .queue_packets = 64, .ct_mark = 0x40000000};
    char buf[4096] = "";
    (void)state;

    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    assert_non_null(f);
    sd_fw_plan_print(&plan, f);
    fclose(f);
    size_t lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, plan.n);
    assert_non_null(strstr(buf, "\nip6tables-legacy -w -t filter -I FORWARD 1 -j SLOWDOWN-0\n"));
    assert_true(strncmp(buf, "iptables-legacy -w -t filter -N SLOWDOWN-0\n", 43) == 0);
}

/* A printed command can be pasted into a shell: arguments a shell would
 * split or expand are single-quoted, a single quote inside written '\'',
 * an empty argument ''; the output is cut to the buffer and NUL-terminated. */
static void test_format_quoting(void **state)
{
    char *const argv[] = {"iptables", "--comment", "it's a rule", "", "a b", "$x", "plain", NULL};
    char buf[128];
    (void)state;

    sd_subproc_format(argv, buf, sizeof(buf));
    assert_string_equal(buf, "iptables --comment 'it'\\''s a rule' '' 'a b' '$x' plain");
    /* The shell reads back the same arguments. */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "set -- %s; printf '%%s|' \"$@\"", buf);
    char *const sh[] = {"sh", "-c", cmd, NULL};
    char out[200];
    assert_int_equal(sd_subproc_run(sh, out, sizeof(out)), 0);
    assert_string_equal(out, "iptables|--comment|it's a rule||a b|$x|plain|");
    char small[12];
    sd_subproc_format(argv, small, sizeof(small));
    assert_string_equal(small, "iptables --");
}

/* Per-flow balance: a chain of its own that picks the queue, and every queueing rule jumps to it. */
static void test_balance_flow(void **state)
{
    struct sd_fw_config c = {.queue = 4, .workers = 3, .queue_packets = 0, .balance_flow = true};
    (void)state;

    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_string_equal(line(0), "iptables-legacy -w -t filter -N SLOWDOWN-4-lb");
    assert_non_null(strstr(line(1), "-A SLOWDOWN-4-lb -m bpf --bytecode '"));
    assert_non_null(strstr(line(1), "' -j NFQUEUE --queue-num 4 --queue-bypass"));
    assert_non_null(strstr(line(2), "' -j NFQUEUE --queue-num 5 --queue-bypass"));
    assert_string_equal(line(3), "iptables-legacy -w -t filter -A SLOWDOWN-4-lb -j NFQUEUE --queue-num 6 --queue-bypass");
    assert_string_equal(line(4), "iptables-legacy -w -t filter -N SLOWDOWN-4");
    /* Every packet queued: a conntrack rule all the same, so that the kernel reassembles fragments. */
    assert_string_equal(line(5), "iptables-legacy -w -t filter -A SLOWDOWN-4 -m conntrack --ctstate INVALID,UNTRACKED "
                                 "-j SLOWDOWN-4-lb");
    assert_string_equal(line(6), "iptables-legacy -w -t filter -A SLOWDOWN-4 -p tcp -j SLOWDOWN-4-lb");
    for (unsigned i = 0; i < plan.n; i++)
        assert_null(strstr(line(i), "--queue-balance"));
    /* One worker: nothing to balance. */
    c.workers = 1;
    assert_int_equal(sd_fw_plan_install(&c, &plan), 0);
    assert_null(strstr(line(0), "-lb"));
    /* Without conntrack the kernel does not reassemble: refused. */
    c.workers = 2;
    c.bypass = SD_BYPASS_IPSET;
    assert_int_equal(sd_fw_plan_install(&c, &plan), SD_EINVAL);
}

/* The queue |frame| (raw IP, |len| bytes) goes to under the balance programs for |w| queues;
 * -1 when no program or more than one says yes. Run by libpcap's BPF interpreter. */
static int queue_of(int family, unsigned w, const uint8_t *frame, size_t len)
{
    int q = -1;
    for (unsigned i = 0; i < w; i++) {
        struct sd_fw_insn in[SD_FW_MAX_INSNS];
        struct bpf_insn b[SD_FW_MAX_INSNS];
        unsigned n = sd_fw_balance_prog(family, w, i, in);
        assert_true(n > 0 && n <= SD_FW_MAX_INSNS);
        for (unsigned k = 0; k < n; k++)
            b[k] = (struct bpf_insn){.code = in[k].code, .jt = in[k].jt, .jf = in[k].jf, .k = in[k].k};
        struct bpf_program prog = {.bf_len = n, .bf_insns = b};
        assert_true(bpf_validate(prog.bf_insns, (int)prog.bf_len));
        if (bpf_filter(b, frame, (unsigned)len, (unsigned)len)) {
            if (q >= 0)
                return -1;
            q = (int)i;
        }
    }
    return q;
}

/* The programs on real packets: each picks exactly one queue, the same both ways and for every
 * fragment of a datagram, and the flows between two hosts spread over the queues. */
static void test_balance_prog(void **state)
{
    (void)state;
    static const char *const addrs[2][2] = {{"192.0.2.2", "203.0.113.2"}, {"2001:db8:1::2", "2001:db8:2::2"}};
    uint8_t f[600], pay[400];
    memset(pay, 'p', sizeof(pay));
    for (int fam = 0; fam < 2; fam++) {
        for (unsigned w = 2; w <= 4; w++) {
            unsigned count[4] = {0};
            for (unsigned flow = 0; flow < 2000; flow++) {
                int q[2];
                for (int dir = 0; dir < 2; dir++) {
                    struct sd_gen_pkt s = {.linktype = 101, .proto = flow % 3 ? 6 : 17, .tcp_flags = SD_TCP_ACK,
                                           .payload = pay, .payload_len = 40,
                                           .ipv4_opts_len = fam == 0 && flow % 5 == 0 ? 8 : 0};
                    uint16_t cport = (uint16_t)(32768 + flow * 7), sport = flow % 2 ? 443 : 8443;
                    s.src = sd_gen_addr(addrs[fam][dir]);
                    s.dst = sd_gen_addr(addrs[fam][!dir]);
                    s.sport = dir ? sport : cport;
                    s.dport = dir ? cport : sport;
                    size_t n = sd_gen_frame(f, sizeof(f), &s);
                    assert_true(n > 0);
                    q[dir] = queue_of(fam ? 6 : 4, w, f, n);
                }
                assert_true(q[0] >= 0);
                assert_int_equal(q[0], q[1]);
                count[q[0]]++;
            }
            for (unsigned i = 0; i < w; i++) /* one host pair: the address balance puts them all in one queue */
                assert_true(count[i] > 2000 / w * 8 / 10 && count[i] < 2000 / w * 12 / 10);
        }
    }
    /* IPv4 fragments: the first has the ports, the others not; all go by the addresses alone. */
    struct sd_gen_pkt s = {.linktype = 101, .proto = 17, .sport = 40000, .dport = 443, .payload = pay,
                           .payload_len = sizeof(pay)};
    s.src = sd_gen_addr("192.0.2.2");
    s.dst = sd_gen_addr("203.0.113.2");
    size_t n = sd_gen_frame(f, sizeof(f), &s);
    uint8_t frag[4][600], *out[4] = {frag[0], frag[1], frag[2], frag[3]};
    size_t flen[4];
    int k = sd_gen_fragment(f, n, 101, 128, out, flen, sizeof(frag[0]), 4);
    assert_int_equal(k, 4);
    for (int i = 1; i < k; i++)
        assert_int_equal(queue_of(4, 2, frag[i], flen[i]), queue_of(4, 2, frag[0], flen[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),      cmocka_unit_test(test_workers_ifaces_prerouting),
        cmocka_unit_test(test_settled_mark), cmocka_unit_test(test_bypass_ipset),
        cmocka_unit_test(test_bypass_bpf),
        cmocka_unit_test(test_every_packet), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_print), cmocka_unit_test(test_format_quoting),
        cmocka_unit_test(test_balance_flow), cmocka_unit_test(test_balance_prog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
