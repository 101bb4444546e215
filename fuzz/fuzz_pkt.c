/*
 * fuzz_pkt.c - sd_pkt_decode() on arbitrary frames. The first byte picks the
 * link type; the rest is the frame. Successful decodes must keep every view
 * inside the frame, and the checksum, fix-up and RST paths run on them too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int dlts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    struct sd_pkt p;
    uint8_t out[128], copy[2048];
    if (size < 1)
        return 0;
    const uint8_t *f = data + 1;
    size_t n = size - 1;
    if (sd_pkt_decode(&p, dlts[data[0] % SD_COUNTOF(dlts)], f, n) != 0)
        return 0;
    if (p.payload_off + (size_t)p.payload_len > n || p.l4_off > p.payload_off || p.l3_off > p.l4_off || p.saddr < f ||
        p.daddr + (p.family == 4 ? 4 : 16) > f + n)
        abort();
    (void)sd_pkt_l4_csum_ok(&p);
    (void)sd_pkt_build_rst(out, sizeof(out), &p);
    if (n - p.l3_off <= sizeof(copy)) {
        memcpy(copy, f + p.l3_off, n - p.l3_off);
        if (sd_pkt_fix_csums(copy, n - p.l3_off) == 0 && sd_pkt_decode(&p, SD_DLT_RAW, copy, n - p.l3_off) == 0 &&
            !sd_pkt_l4_csum_ok(&p) && (p.proto == 6 || p.proto == 17))
            abort(); /* a fixed packet must verify */
    }
    return 0;
}
