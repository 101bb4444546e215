/*
 * bypass.bpf.c - the kernel half of `slowdown run --bypass bpf`: an eBPF
 * program for iptables' bpf match (xt_bpf, program type socket filter) that
 * says whether a packet belongs to a flow the daemon settled, so that the
 * rules let it pass without queueing and without connection tracking.
 *
 * The daemon adds one element per direction of a flow when the flow settles
 * and deletes them when a bare SYN reuses the ports (bpfpass.c); the program
 * never matches a bare SYN, so every new connection reaches the daemon. The
 * value is the time the flow was last seen and its idle timeout. For UDP a
 * hit renews the time (at most once a second, to keep cores from writing one
 * line), and an element idle for longer than its timeout no longer matches:
 * the flow's packets go back to the queue, whose verdict adds it again. TCP
 * needs no clock: a new connection on the same ports starts with a SYN, which
 * deletes its elements. The map is an LRU hash, so it never holds more than
 * its max_entries: a full map forgets the flows idle longest.
 *
 * xt_bpf hands the program the packet from its network header. IP fragments
 * (other than whole packets), IPv4 packets with options and packets that are
 * not TCP or UDP never match; IPv6 packets match only when TCP or UDP directly
 * follows the fixed header.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "bypass_key.h"

struct seen {
    __u64 last_ns;    /* CLOCK_MONOTONIC, as bpf_ktime_get_ns() */
    __u64 timeout_ns; /* idle time after which the element no longer matches */
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 1 << 20); /* set by the daemon before loading */
    __type(key, struct sd_bypass_key);
    __type(value, struct seen);
} sd_bypass_flows SEC(".maps");

SEC("socket")
int sd_bypass(struct __sk_buff *skb)
{
    struct sd_bypass_key k = {};
    __u8 h[54]; /* an IPv6 header and a TCP header up to its flags */
    __u32 n = skb->len < sizeof(h) ? skb->len : sizeof(h), l4;

    /* One load for the usual packet: the IP header, the ports and TCP's flags. */
    if (n < 24 || bpf_skb_load_bytes(skb, 0, h, n) < 0)
        return 0;
    if (h[0] == 0x45) {
        if ((h[6] & 0x3f) | h[7]) /* MF or an offset: a fragment */
            return 0;
        k.proto = h[9];
        __builtin_memcpy(k.src, h + 12, 4);
        __builtin_memcpy(k.dst, h + 16, 4);
        l4 = 20;
        k.family = 4;
    } else if (h[0] >> 4 == 6 && n >= 44) {
        k.proto = h[6];
        __builtin_memcpy(k.src, h + 8, 16);
        __builtin_memcpy(k.dst, h + 24, 16);
        l4 = 40;
        k.family = 6;
    } else {
        return 0; /* IPv4 with options: rare, queued */
    }
    if (k.proto == IPPROTO_TCP) {
        /* A bare SYN (SYN without ACK, RST or FIN, as iptables' --syn) goes to the queue even when its
         * ports are in the map: a new connection that the daemon must see. */
        if (n < l4 + 14 || (h[l4 + 13] & 0x17) == 0x02)
            return 0;
    } else if (k.proto != IPPROTO_UDP) {
        return 0;
    }
    __builtin_memcpy(&k.sport, h + l4, 4); /* sport and dport, adjacent as on the wire */
    struct seen *s = bpf_map_lookup_elem(&sd_bypass_flows, &k);
    if (!s)
        return 0;
    /* TCP elements need no clock: a new connection on the same ports starts with a SYN, which deletes
     * them. UDP has no such start: an element idle for its timeout no longer matches. */
    if (k.proto == IPPROTO_TCP)
        return 1;
    __u64 now = bpf_ktime_get_ns();
    if (now - s->last_ns > s->timeout_ns)
        return 0;
    if (now - s->last_ns > 1000000000ULL)
        s->last_ns = now;
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
