/*
 * fwrules.h - the iptables-legacy / ip6tables-legacy rules that feed
 * `slowdown run`'s queues, as data: built into a plan (argv lists), printed
 * for users who manage their own firewall, applied, and removed again.
 *
 * Per family, in table T (filter for the FORWARD hook, mangle for
 * PREROUTING), one chain of our own, SLOWDOWN-<queue>, jumped to from the
 * hook's chain:
 *
 *   -A SLOWDOWN-q -m connmark --mark M/M -j NFQUEUE Q --queue-bypass
 *        flows under an action: every packet (the daemon sets M on them)
 *   -A SLOWDOWN-q -m connmark --mark S/S -j RETURN
 *        settled flows (inspection over, no action; the daemon sets S on
 *        them): none of their packets any more, however early they settled
 *   -A SLOWDOWN-q -m conntrack --ctstate INVALID,UNTRACKED -j NFQUEUE Q --queue-bypass
 *        packets conntrack cannot place (bad checksum, out of window): a box
 *        on the wire sees them too, and evasion tricks rely on them
 *   -A SLOWDOWN-q -p tcp -m connbytes --connbytes 0:N --connbytes-dir both
 *        --connbytes-mode packets -j NFQUEUE Q --queue-bypass   (and -p udp)
 *        the first N packets of every connection: what inspection needs
 *   -I HOOK 1 [-i IFACE] -j SLOWDOWN-q
 *
 * Q is --queue-num q, or --queue-balance q:q+W-1 for W workers (the kernel
 * hashes the address pair and protocol: both directions of a flow, and every
 * flow between two hosts, land in the same queue). With balance_flow, Q is
 * -j SLOWDOWN-q-lb instead, a chain that picks the queue per flow:
 *
 *   -A SLOWDOWN-q-lb -m bpf --bytecode "PROG(i)" -j NFQUEUE --queue-num q+i --queue-bypass
 *        for i = 0 .. W-2 (sd_fw_balance_prog), then
 *   -A SLOWDOWN-q-lb -j NFQUEUE --queue-num q+W-1 --queue-bypass
 *
 * The program needs the ports of every packet of a flow, so it needs the
 * kernel to reassemble IP fragments first, which it does once connection
 * tracking is on: balance_flow is for the conntrack bypass only, and with
 * N = 0 the INVALID,UNTRACKED rule is kept to turn tracking on. With N = 0 every TCP
 * and UDP packet is queued and the connmark rule is left out. Bulk traffic
 * of flows that passed inspection never leaves the kernel.
 *
 * Bypass by ipset (SD_BYPASS_IPSET), for paths that track no connections:
 * conntrack costs a bulk flow 15-20% of its forwarding on this VM, and every
 * rule above needs it. Instead, one set per family, filled by the daemon
 * with the flows that settled (client address, client port and protocol,
 * server address; elements time out):
 *
 *   ipset create SLOWDOWN-q-v4 hash:ip,port,ip family inet timeout T maxelem E -exist
 *   -A SLOWDOWN-q -p tcp --syn -j NFQUEUE Q --queue-bypass
 *        every new connection: the daemon deletes a stale element of its port
 *   -A SLOWDOWN-q -m set --match-set SLOWDOWN-q-v4 src,src,dst -j RETURN
 *   -A SLOWDOWN-q -m set --match-set SLOWDOWN-q-v4 dst,dst,src -j RETURN
 *        settled flows, client to server and back
 *   -A SLOWDOWN-q -p tcp -j NFQUEUE Q --queue-bypass   (and -p udp)
 *        everything else: flows being inspected, and flows under an action
 *
 * Bypass by eBPF (SD_BYPASS_BPF): one match in place of the SYN rule and the
 * two set rules, for both families, and no set:
 *
 *   -A SLOWDOWN-q -m bpf --object-pinned PROG -j RETURN
 *   -A SLOWDOWN-q -p tcp -j NFQUEUE Q --queue-bypass   (and -p udp)
 *
 * PROG (bpfpass.h) looks the packet's exact flow, in its own direction, up
 * in a map the daemon fills; it never matches a bare SYN.
 *
 * A flow stays queued until the engine settles it, whatever N is (it settles
 * within a few payload packets). Non-first IP fragments carry no ports, match
 * no element and are queued, as the engine needs them (without conntrack the
 * kernel does not reassemble).
 */
#ifndef SD_FWRULES_H
#define SD_FWRULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sd.h"

enum { SD_FW_FORWARD = 0, SD_FW_PREROUTING = 1 };

enum {
    SD_FW_MAX_IFACES = 8,
    SD_FW_MAX_RULES = 192, /* 2 families x (a queue rule per worker, up to 64, and the rest) */
    SD_FW_MAX_ARGS = 28,
    SD_FW_MAX_INSNS = 48,
};

struct sd_fw_config {
    uint16_t queue;           /* first queue number */
    uint16_t workers;         /* queues queue .. queue + workers - 1 (0 counts as 1) */
    uint32_t queue_packets;   /* connbytes window N; 0 queues every packet */
    uint32_t ct_mark;         /* conntrack mark bit(s) of flows under an action */
    uint32_t settled_mark;    /* conntrack mark bit(s) of settled flows (0: no such rule) */
    uint8_t hook;             /* SD_FW_FORWARD or SD_FW_PREROUTING */
    uint8_t bypass;           /* SD_BYPASS_CONNTRACK, _IPSET or _BPF (inline.h) */
    bool balance_flow;        /* several workers: pick the queue per flow (ports too), not per address pair */
    uint32_t set_timeout_s;   /* ipset: element timeout */
    uint32_t set_max;         /* ipset: most elements per set */
    const char *bpf_prog;     /* bpf: the pinned bypass program (bpfpass.h) */
    const char *bpf_map;      /* ... and its map (both removed by sd_fw_remove when set) */
    const char *ifaces[SD_FW_MAX_IFACES]; /* only packets coming in on these (none: all) */
    unsigned n_ifaces;
};

struct sd_fw_rule {
    char *argv[SD_FW_MAX_ARGS]; /* NULL-terminated, pointing into store */
    char store[1024];
};

struct sd_fw_plan {
    unsigned n;
    struct sd_fw_rule rules[SD_FW_MAX_RULES];
};

/* One classic BPF instruction (struct sock_filter's layout). */
struct sd_fw_insn {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};

/*
 * The classic BPF program of the per-flow balance (--balance flow): for a
 * packet from its network header (IPv4 when |family| is 4, else IPv6), true
 * (1) when its flow belongs to queue |i| of |w|. The hash is symmetric, so
 * both directions of a flow land in one queue: the XOR of the two addresses
 * (IPv6: their last 8 bytes) and, for TCP and UDP that are not IP fragments,
 * of the two ports, times a golden-ratio constant, shifted, modulo |w|. Fills
 * |out| (at least SD_FW_MAX_INSNS) and returns the instruction count.
 */
unsigned sd_fw_balance_prog(int family, unsigned w, unsigned i, struct sd_fw_insn *out);

/* The chain name for |c| ("SLOWDOWN-0") into |buf|. */
void sd_fw_chain_name(const struct sd_fw_config *c, char *buf, size_t len);

/* The ipset of |c|'s queue for |family| (4 or 6: "SLOWDOWN-0-v4") into |buf|. */
void sd_fw_set_name(const struct sd_fw_config *c, int family, char *buf, size_t len);

/* Fills |p| with the commands that install the rules of |c|, in order.
 * 0, or SD_ERANGE / SD_EINVAL (too many interfaces, bad interface name). */
int sd_fw_plan_install(const struct sd_fw_config *c, struct sd_fw_plan *p);

/* Writes the plan as shell lines to |out|, one command a line. */
void sd_fw_plan_print(const struct sd_fw_plan *p, FILE *out);

/* Runs the plan, stopping at the first failure. 0, or SD_EIO with the failed
 * command and its output in |err|. */
int sd_fw_plan_apply(const struct sd_fw_plan *p, char *err, size_t errlen);

/*
 * Removes every trace of the chain of |c|'s queue, whatever options the run
 * that installed it had: jumps to it from FORWARD (filter) and PREROUTING
 * (mangle), then the chain, for both families, then the queue's ipsets
 * (when the ipset tool is there) and bypass program pins. Safe to call when nothing is
 * installed. Returns how many rules and chains it removed, or SD_EIO when
 * the iptables tools cannot be run at all (|err|).
 */
int sd_fw_remove(const struct sd_fw_config *c, char *err, size_t errlen);

#endif
