/*
 * bypass.bpf.c - the kernel half of `slowdown run --bypass bpf`: an eBPF
 * program for iptables' bpf match (xt_bpf, program type socket filter) that
 * says whether a packet belongs to a flow the daemon settled, so that the
 * rules let it pass without queueing and without connection tracking.
 *
 * The daemon adds one element per direction of a flow when the flow settles
 * and deletes them when a bare SYN reuses the ports (bpfpass.c). The value is
 * the time the flow was last seen and its idle timeout; a hit renews the time
 * (at most once a second, to keep cores from writing one line), and an
 * element idle for longer than its timeout no longer matches: the flow's packets go back to the queue,
 * whose verdict adds it again. The map is an LRU hash, so it never holds
 * more than its max_entries: a full map forgets the flows idle longest.
 *
 * xt_bpf hands the program the packet from its network header. IP fragments
 * (other than whole packets) and packets that are not TCP or UDP never
 * match; IPv6 packets match only when TCP or UDP directly follows the fixed
 * header.
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
    __u8 h[44];

    /* One load for the usual packet: an IPv4 header of 20 bytes or the IPv6 one, then the ports. */
    if (bpf_skb_load_bytes(skb, 0, h, 24) < 0)
        return 0;
    if (h[0] == 0x45) {
        if ((h[6] & 0x3f) | h[7]) /* MF or an offset: a fragment */
            return 0;
        k.proto = h[9];
        __builtin_memcpy(k.src, h + 12, 4);
        __builtin_memcpy(k.dst, h + 16, 4);
        __builtin_memcpy(&k.sport, h + 20, 4); /* sport and dport, adjacent as on the wire */
        k.family = 4;
    } else if (h[0] >> 4 == 4) { /* IPv4 with options */
        if ((h[6] & 0x3f) | h[7])
            return 0;
        k.proto = h[9];
        __builtin_memcpy(k.src, h + 12, 4);
        __builtin_memcpy(k.dst, h + 16, 4);
        if (bpf_skb_load_bytes(skb, (__u32)(h[0] & 15) * 4, &k.sport, 4) < 0)
            return 0;
        k.family = 4;
    } else if (h[0] >> 4 == 6) {
        if (bpf_skb_load_bytes(skb, 0, h, 44) < 0)
            return 0;
        k.proto = h[6];
        __builtin_memcpy(k.src, h + 8, 16);
        __builtin_memcpy(k.dst, h + 24, 16);
        __builtin_memcpy(&k.sport, h + 40, 4);
        k.family = 6;
    } else {
        return 0;
    }
    if (k.proto != IPPROTO_TCP && k.proto != IPPROTO_UDP)
        return 0;
    struct seen *s = bpf_map_lookup_elem(&sd_bypass_flows, &k);
    if (!s)
        return 0;
    __u64 now = bpf_ktime_get_ns();
    if (now - s->last_ns > s->timeout_ns)
        return 0;
    if (now - s->last_ns > 1000000000ULL)
        s->last_ns = now;
    return 1;
}

char LICENSE[] SEC("license") = "GPL";
