/*
 * fuzz_pcapfile.c - the fast pcap reader against libpcap on the same bytes:
 * both must hand out the same records (bytes and times, read in batches of
 * varying size) and stop at the same record, and where the fast reader
 * reports an error, in libpcap's words.
 * Files the fast reader leaves to libpcap (SD_ENOTSUP) are skipped.
 */
#define _GNU_SOURCE
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pcapfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], err[PCAP_ERRBUF_SIZE];
    int fd = memfd_create("fuzz_pcapfile", 0);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct sd_pcapfile *r;
    pcap_t *pc = NULL;
    if (sd_pcapfile_open(&r, path) == 0) {
        pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
        if (!pc || pcap_datalink(pc) != sd_pcapfile_dlt(r))
            abort();
        /* Batches of 1 to 4 records (the size varies with the input). */
        struct sd_pcaprec recs[4];
        int k, batch = 0;
        while ((k = sd_pcapfile_next_batch(r, recs, 1 + (int)(size + (size_t)batch++) % 4)) > 0) {
            for (int i = 0; i < k; i++) {
                struct pcap_pkthdr *h;
                const u_char *d;
                if (pcap_next_ex(pc, &h, &d) != 1 || recs[i].caplen != h->caplen ||
                    memcmp(recs[i].data, d, h->caplen) != 0 ||
                    recs[i].ts_ns != (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec)
                    abort();
            }
        }
        struct pcap_pkthdr *h;
        const u_char *d;
        int a = pcap_next_ex(pc, &h, &d);
        if ((a == PCAP_ERROR) != (k < 0) || (a == 1))
            abort();
        if (k < 0 && strcmp(sd_pcapfile_error(r), pcap_geterr(pc)) != 0)
            abort();
        pcap_close(pc);
        sd_pcapfile_close(r);
    }
    close(fd);
    return 0;
}
