/*
 * pcapfile.h - a fast reader for classic pcap files.
 *
 * libpcap reads a savefile through stdio, one fread per header and one per
 * packet, each copied through a 4 KB stdio buffer: on a virtual machine the
 * system calls and the double copy cost more than the censor itself. This
 * reader fills a large buffer with read() and hands out each record in place.
 * It handles classic pcap only (both byte orders, micro- and nanosecond
 * magic); anything else (pcapng) is left to libpcap, which the caller falls
 * back to on SD_ENOTSUP.
 */
#ifndef SD_PCAPFILE_H
#define SD_PCAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_pcapfile;

/*
 * Opens |path| and reads its file header. Returns 0 with *out set;
 * SD_ENOTSUP when the file is not a classic pcap (pcapng, or unknown magic:
 * use libpcap); SD_EIO when it cannot be opened or read (errno set);
 * SD_EPROTO when the header is cut short; SD_ENOMEM.
 */
int sd_pcapfile_open(struct sd_pcapfile **out, const char *path);

/* Link type of the file, as a DLT_* value (pcap_datalink's numbering). */
int sd_pcapfile_dlt(const struct sd_pcapfile *r);

/*
 * The next record: its bytes (*data, *caplen), valid until the next call,
 * and its time in nanoseconds since the epoch. Returns 1, 0 at the end of
 * the file, SD_EPROTO for a truncated or corrupt record (caplen above 256 KB),
 * SD_EIO on a read error.
 */
int sd_pcapfile_next(struct sd_pcapfile *r, const uint8_t **data, uint32_t *caplen, uint64_t *ts_ns);

/* One record: its bytes and its time in nanoseconds since the epoch. */
struct sd_pcaprec {
    const uint8_t *data;
    uint32_t caplen;
    uint64_t ts_ns;
};

/*
 * Up to |max| next records at once, all valid until the next call of either
 * function (so a caller can look ahead within the batch). Returns how many
 * (> 0), 0 at the end of the file, or the errors of sd_pcapfile_next when
 * the first record fails; a record that fails after others ends the batch
 * and is reported by the next call.
 */
int sd_pcapfile_next_batch(struct sd_pcapfile *r, struct sd_pcaprec *recs, int max);

/* After an error of sd_pcapfile_next(_batch): what went wrong, in libpcap's words
 * ("truncated dump file; tried to read 54 captured bytes, only got 47"). */
const char *sd_pcapfile_error(const struct sd_pcapfile *r);

/* Closes; accepts NULL. */
void sd_pcapfile_close(struct sd_pcapfile *r);

#endif
