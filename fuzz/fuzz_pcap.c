/*
 * fuzz_pcap.c - a capture FILE through libpcap and the whole engine, the
 * way `slowdown pcap` reads one: the input is the bytes of a pcap or pcapng
 * file, opened from memory (fmemopen + pcap_fopen_offline, nanosecond
 * precision), refused when its link type is not one the decoder knows, and
 * every record decoded and given to the engine at its capture time; the
 * frames the censor lets through are written out as with -o (to /dev/null),
 * and the flows are reported.
 *
 * Each input runs twice: under observe (what `slowdown pcap` does without
 * --preset) and under a policy picked by the input's length, so the whole
 * harness table is reached without spending input bytes on a selector that
 * would make the capture invalid.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool dlt_supported(int dlt)
{
    static const int ok[] = {SD_DLT_NULL, SD_DLT_EN10MB,     SD_DLT_RAW,  SD_DLT_RAW_BSD, SD_DLT_RAW_FILE,
                             SD_DLT_LOOP, SD_DLT_LINUX_SLL, SD_DLT_IPV4, SD_DLT_IPV6,    SD_DLT_LINUX_SLL2};
    for (size_t i = 0; i < SD_COUNTOF(ok); i++)
        if (ok[i] == dlt)
            return true;
    return false;
}

static void run(const uint8_t *data, size_t size, unsigned pol)
{
    char err[PCAP_ERRBUF_SIZE];
    FILE *f = fmemopen((void *)data, size, "rb");
    if (!f)
        return;
    pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) {
        fclose(f);
        return;
    }
    int dlt = pcap_datalink(pc);
    if (!dlt_supported(dlt)) {
        pcap_close(pc);
        return;
    }
    /* As cmd_pcap.c: raw IP read as DLT 14 is written as DLT_RAW. */
    int odlt = dlt == SD_DLT_RAW_BSD ? SD_DLT_RAW : dlt;
    pcap_t *dead = pcap_open_dead_with_tstamp_precision(odlt, 262144, PCAP_TSTAMP_PRECISION_MICRO);
    FILE *null = fopen("/dev/null", "wb");
    pcap_dumper_t *dump = dead && null ? pcap_dump_fopen(dead, null) : NULL;
    if (!dump)
        abort();
    struct sd_report *rep = sd_report_new();
    if (!rep)
        abort();
    struct sd_engine *e = sd_harness_engine(sd_harness_policy(pol), rep, true);
    struct pcap_pkthdr *h;
    const u_char *frame;
    while (pcap_next_ex(pc, &h, &frame) == 1) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        struct sd_pkt p;
        struct sd_verdict v = {.kind = SD_V_PASS};
        if (sd_pkt_decode(&p, dlt, frame, h->caplen) == 0) {
            sd_engine_packet(e, &p, ts, &v);
            sd_harness_check_verdict(&v);
        }
        if (v.kind == SD_V_PASS)
            pcap_dump((u_char *)dump, h, frame);
    }
    pcap_close(pc);
    pcap_dump_close(dump);
    pcap_close(dead);
    sd_harness_finish(e, rep, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    run(data, size, 1); /* observe */
    run(data, size, (unsigned)(size % SD_HARNESS_NPOL));
    return 0;
}
