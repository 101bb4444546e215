/*
 * bench_flow.c - the flow table's memory and speed at scale, and its bound
 * under a flood of new flows.
 *
 *   bench_flow [-n FLOWS] [-c FLOOD_CAPACITY] [-x FLOOD_FACTOR]
 *
 * 1. State per flow: sizeof(struct sd_flow), without reassembly buffers
 *    (those live in the engine's fixed pool, one per flow still inspecting).
 * 2. A table of capacity N (default 10 million) filled with N distinct IPv4
 *    flows: resident memory before and after (/proc/self/statm), and the
 *    cost of an insert and of a lookup in random order (key build + SipHash
 *    + chain walk), by the thread's CPU time.
 * 3. A flood: a table of capacity C (default 1 million, the engine's
 *    default) is filled, 1% of its flows are given an action, then X*C
 *    (default 10x) new flows arrive. Resident memory must not grow, the
 *    count must stay at C, every insert past C must evict one flow, and the
 *    eviction policy (sampled LRU, flows without an action first; flow.h)
 *    should spare the flows under an action.
 * 4. The same flood through the engine (tw21-exact), as SYNs of new 5-tuples,
 *    with the engine's flow cap at C: its RSS growth and eviction count.
 * The last line repeats the figures as key=value pairs for bench/run.sh.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clipolicy.h"
#include "engine.h"
#include "flow.h"
#include "pkt.h"
#include "policy.h"

static const uint64_t key[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set size now, in bytes. */
static double rss_bytes(void)
{
    long pages = 0, size = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &pages) != 2)
            pages = 0;
        fclose(f);
    }
    return (double)pages * (double)sysconf(_SC_PAGESIZE);
}

/* Flow i: a client in 10/8 (or 100.64/10) with an ephemeral port, a
 * server among 65536 addresses on 443; distinct for every i < 2^32. */
static void addrs(uint32_t i, uint8_t c[4], uint8_t s[4], uint16_t *cport)
{
    uint32_t x = i * 2654435761u; /* a bijection: spreads neighbours */
    c[0] = (x & 1) ? 10 : 100;
    c[1] = (uint8_t)((x & 1) ? x >> 25 : 64 + (x >> 26));
    c[2] = (uint8_t)(x >> 17);
    c[3] = (uint8_t)(x >> 9);
    s[0] = 198, s[1] = 18, s[2] = (uint8_t)(i >> 8), s[3] = (uint8_t)i;
    *cport = (uint16_t)(1024 + ((x >> 1) & 0xff));
}

static void mk(struct sd_flow_key *k, uint32_t i)
{
    uint8_t c[4], s[4];
    uint16_t cp;
    int dir;
    addrs(i, c, s, &cp);
    sd_flow_key_make(k, 4, c, s, cp, 443, 6, &dir);
}

struct big {
    double rss_before, rss_after, insert_ns, lookup_ns;
    uint32_t n, found;
};

static int big_table(uint32_t n, struct big *b)
{
    b->n = n;
    b->rss_before = rss_bytes();
    struct sd_flow_table *t = sd_flow_table_new(n, key);
    if (!t)
        return -1;
    struct sd_flow_key k;
    uint64_t t0 = cpu_ns();
    for (uint32_t i = 0; i < n; i++) {
        mk(&k, i);
        sd_flow_insert(t, &k, sd_flow_key_hash(t, &k), i / 1000, NULL, NULL);
    }
    uint64_t t1 = cpu_ns();
    b->rss_after = rss_bytes();
    uint32_t step = 2654435761u % n | 1, j = 0;
    while (n % step == 0 || step % 2 == 0 || (step % 5 == 0 && n % 5 == 0))
        step += 2; /* coprime with n: a random-looking full permutation */
    for (uint32_t i = 0; i < n; i++) {
        j = (uint32_t)(((uint64_t)j + step) % n);
        mk(&k, j);
        b->found += sd_flow_lookup(t, &k, sd_flow_key_hash(t, &k)) != SD_FLOW_NONE;
    }
    uint64_t t2 = cpu_ns();
    b->insert_ns = (double)(t1 - t0) / n;
    b->lookup_ns = (double)(t2 - t1) / n;
    sd_flow_table_free(t);
    return 0;
}

struct flood {
    uint32_t cap, count, action_total, action_kept;
    uint64_t inserted, evicted;
    double rss_full, rss_after, insert_ns;
};

static void count_evict(void *arg, uint32_t slot)
{
    (void)slot;
    (*(uint64_t *)arg)++;
}

static int flood_table(uint32_t cap, uint32_t factor, struct flood *fl)
{
    struct sd_flow_table *t = sd_flow_table_new(cap, key);
    if (!t)
        return -1;
    struct sd_flow_key k;
    fl->cap = cap;
    for (uint32_t i = 0; i < cap; i++) {
        mk(&k, i);
        uint32_t s = sd_flow_insert(t, &k, sd_flow_key_hash(t, &k), 0, NULL, NULL);
        if (i % 100 == 0) {
            sd_flow_at(t, s)->action = 1; /* a throttled flow */
            fl->action_total++;
        }
    }
    fl->rss_full = rss_bytes();
    uint64_t n = (uint64_t)cap * factor, t0 = cpu_ns();
    for (uint64_t i = 0; i < n; i++) {
        mk(&k, (uint32_t)(cap + i));
        sd_flow_insert(t, &k, sd_flow_key_hash(t, &k), (uint32_t)(1 + i / 1000), count_evict, &fl->evicted);
    }
    fl->insert_ns = (double)(cpu_ns() - t0) / (double)n;
    fl->inserted = n;
    fl->rss_after = rss_bytes();
    fl->count = sd_flow_count(t);
    for (uint32_t i = 0; i < cap; i += 100) {
        mk(&k, i);
        fl->action_kept += sd_flow_lookup(t, &k, sd_flow_key_hash(t, &k)) != SD_FLOW_NONE;
    }
    sd_flow_table_free(t);
    return 0;
}

struct eflood {
    uint64_t packets, evicted, active;
    double rss_full, rss_after, ns;
};

/* New 5-tuples as SYNs through the engine, its cap at |cap|. */
static int flood_engine(uint32_t cap, uint32_t factor, struct eflood *ef)
{
    struct sd_clipolicy cp = {.preset = "tw21-exact"};
    struct sd_policy *pol = sd_clipolicy_build(&cp, "bench_flow", "tw21-exact");
    struct sd_engine_config cfg = {.max_flows = cap};
    struct sd_engine *e = pol ? sd_engine_new(pol, &cfg) : NULL;
    if (!e)
        return -1;
    uint64_t n = (uint64_t)cap * (factor + 1), t0 = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t c[4], s[4];
        struct sd_pkt pkt = {.flags = SD_PKT_L4, .family = 4, .proto = 6, .ttl = 64, .ip_len = 60, .dport = 443,
                             .tcp_flags = SD_TCP_SYN, .tcp_hlen = 40, .seq = (uint32_t)i, .saddr = c, .daddr = s};
        addrs((uint32_t)i, c, s, &pkt.sport);
        struct sd_verdict v;
        if (i == cap) {
            ef->rss_full = rss_bytes();
            t0 = cpu_ns();
        }
        sd_engine_packet(e, &pkt, 1618056000000000000ull + i * 1000, &v); /* 1 million SYNs a second */
    }
    ef->ns = (double)(cpu_ns() - t0) / (double)(n - cap);
    ef->rss_after = rss_bytes();
    ef->packets = n;
    struct sd_engine_stats st;
    sd_engine_get_stats(e, &st);
    ef->evicted = st.flows_evicted;
    ef->active = st.flows_active;
    sd_engine_free(e);
    sd_policy_free(pol);
    return 0;
}

int main(int argc, char **argv)
{
    uint32_t n = 10000000, cap = 1u << 20, factor = 10;
    int o;
    while ((o = getopt(argc, argv, "n:c:x:")) != -1) {
        if (o == 'n')
            n = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 'c')
            cap = (uint32_t)strtoul(optarg, NULL, 10);
        else if (o == 'x')
            factor = (uint32_t)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    const double MB = 1048576.0;
    struct big b = {0};
    struct flood fl = {0};
    struct eflood ef = {0};
    if (!n || !cap || big_table(n, &b) || flood_table(cap, factor, &fl) || flood_engine(cap, factor, &ef)) {
        fprintf(stderr, "bench_flow: out of memory\n");
        return 1;
    }
    printf("state per flow: %zu bytes (struct sd_flow; reassembly buffers live in a fixed pool)\n",
           sizeof(struct sd_flow));
    printf("%u flows: RSS %.1f MB -> %.1f MB (+%.1f MB, %.1f bytes/flow); insert %.1f ns, lookup %.1f ns "
           "(random order, %u found)\n",
           b.n, b.rss_before / MB, b.rss_after / MB, (b.rss_after - b.rss_before) / MB,
           (b.rss_after - b.rss_before) / b.n, b.insert_ns, b.lookup_ns, b.found);
    printf("flood of %llu new flows into a full table of %u: count %u, %llu evicted, RSS %.1f -> %.1f MB, "
           "%.1f ns/insert; flows under an action kept: %u of %u\n",
           (unsigned long long)fl.inserted, fl.cap, fl.count, (unsigned long long)fl.evicted, fl.rss_full / MB,
           fl.rss_after / MB, fl.insert_ns, fl.action_kept, fl.action_total);
    printf("engine flood: %llu SYNs of new flows, cap %u: %llu active, %llu evicted, RSS %.1f -> %.1f MB, "
           "%.1f ns/packet\n",
           (unsigned long long)ef.packets, cap, (unsigned long long)ef.active, (unsigned long long)ef.evicted,
           ef.rss_full / MB, ef.rss_after / MB, ef.ns);
    printf("key flow_bytes=%zu big_flows=%u big_mb=%.1f big_bytes_per_flow=%.1f insert_ns=%.1f lookup_ns=%.1f "
           "big_found=%u flood_cap=%u flood_inserted=%llu flood_count=%u flood_evicted=%llu flood_growth_mb=%.1f "
           "flood_action_kept=%u flood_action_total=%u eflood_packets=%llu eflood_active=%llu eflood_evicted=%llu "
           "eflood_growth_mb=%.1f eflood_ns=%.1f\n",
           sizeof(struct sd_flow), b.n, (b.rss_after - b.rss_before) / MB, (b.rss_after - b.rss_before) / b.n,
           b.insert_ns, b.lookup_ns, b.found, fl.cap, (unsigned long long)fl.inserted, fl.count,
           (unsigned long long)fl.evicted, (fl.rss_after - fl.rss_full) / MB, fl.action_kept, fl.action_total,
           (unsigned long long)ef.packets, (unsigned long long)ef.active, (unsigned long long)ef.evicted,
           (ef.rss_after - ef.rss_full) / MB, ef.ns);
    return 0;
}
