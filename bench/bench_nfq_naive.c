/*
 * bench_nfq_naive.c - the baseline for bench/lab_bench.sh: the NFQUEUE loop
 * most tools write (CensorLab, python-netfilterqueue, nfqws): the classic
 * libnetfilter_queue API, one recv() per packet, one verdict message and
 * sendto() per packet, the same decoding and the same engine as
 * `slowdown run`. What it lacks is exactly what io_nfq.c/inline.c add:
 * recvmmsg batches, verdict batches and one send per batch.
 *
 *   bench_nfq_naive [--queue N] [--preset NAME] [--maxlen N] [--rcvbuf BYTES]
 *                                                   (root; until SIGINT/SIGTERM)
 *
 * --maxlen and --rcvbuf (defaults 4096 and 16 MB, slowdown run's) as in
 * slowdown run: drain_bench.sh fills the queue before the loop runs.
 * Prints the packets it handled on exit. Install the queueing rules first
 * (`slowdown run --print-rules --queue-packets 0`). Like `slowdown run
 * --fail-closed`, a full queue drops rather than bypasses the loop.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>

#include "clipolicy.h"
#include "engine.h"
#include "mono.h"
#include "pkt.h"

struct naive {
    struct sd_engine *e;
    uint64_t packets, dropped;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *arg)
{
    struct naive *n = arg;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    unsigned char *data;
    int len = nfq_get_payload(nfa, &data);
    struct sd_verdict v = {.kind = SD_V_PASS};
    struct sd_pkt pkt;

    (void)msg;
    if (!ph)
        return 0;
    if (len > 0 && sd_pkt_decode(&pkt, SD_DLT_RAW, data, (size_t)len) == 0)
        sd_engine_packet(n->e, &pkt, sd_mono_ns(), &v); /* a clock read per packet, as such loops do */
    n->packets++;
    uint32_t verdict = v.kind == SD_V_PASS ? NF_ACCEPT : NF_DROP;
    n->dropped += verdict == NF_DROP;
    if (v.kind == SD_V_REPLACE)
        return nfq_set_verdict(qh, ntohl(ph->packet_id), NF_ACCEPT, (uint32_t)v.len, v.data);
    return nfq_set_verdict(qh, ntohl(ph->packet_id), verdict, 0, NULL);
}

int main(int argc, char **argv)
{
    const char *preset = "tw21-initial";
    unsigned queue = 0, maxlen = 4096, rcvbuf = 16u << 20;
    struct naive n = {0};
    char buf[65536 + 1024] __attribute__((aligned(8)));

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--queue"))
            queue = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--preset"))
            preset = argv[i + 1];
        else if (!strcmp(argv[i], "--maxlen"))
            maxlen = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rcvbuf"))
            rcvbuf = (unsigned)strtoul(argv[i + 1], NULL, 10);
    }
    struct sd_clipolicy cp = {.preset = preset};
    struct sd_policy *pol = sd_clipolicy_build(&cp, "bench_nfq_naive", NULL);
    struct sd_engine_config ec = {.key = {1, 2}};
    n.e = pol ? sd_engine_new(pol, &ec) : NULL;
    struct nfq_handle *h = nfq_open();
    struct nfq_q_handle *qh = h ? nfq_create_queue(h, (uint16_t)queue, on_packet, &n) : NULL;
    if (!n.e || !qh || nfq_set_mode(qh, NFQNL_COPY_PACKET, 0xffff) < 0) {
        fprintf(stderr, "bench_nfq_naive: cannot set up (preset %s, queue %u): %s\n", preset, queue, strerror(errno));
        return 1;
    }
    /* The same kernel queue and socket buffer as slowdown run, and fail-closed
     * like the benchmark runs it: a full queue drops, so TCP slows down to
     * what the loop can take instead of bypassing it. */
    nfq_set_queue_maxlen(qh, maxlen);
    nfnl_rcvbufsiz(nfq_nfnlh(h), rcvbuf);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int fd = nfq_fd(h);
    fprintf(stderr, "bench_nfq_naive: queue %u, preset %s\n", queue, preset);
    while (!stop) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0)
            nfq_handle_packet(h, buf, (int)r);
        else if (r < 0 && errno != EINTR && errno != ENOBUFS)
            break;
    }
    nfq_destroy_queue(qh);
    nfq_close(h);
    printf("packets %llu dropped %llu\n", (unsigned long long)n.packets, (unsigned long long)n.dropped);
    sd_engine_free(n.e);
    sd_policy_free(pol);
    return 0;
}
