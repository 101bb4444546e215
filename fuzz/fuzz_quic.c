/*
 * fuzz_quic.c - sd_quic_client_initials() on arbitrary UDP payloads.
 *
 * An input that starts with a long-header byte is the datagram itself (the
 * RFC 9001 and 9369 client Initials are seeds). Any other input is sealed
 * first: byte 0 picks the version and the rest become the plaintext frames of
 * a valid client Initial (tests/support/gen_quic.c, compiled in), so the
 * frame walker and the reassembler are reached past the AEAD, which random
 * bytes never pass.
 */
#include <stdlib.h>

#include "../tests/support/gen_quic.c"
#include "quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t fuzz_versions[] = {SD_QUIC_V1, SD_QUIC_V2, 0xff00001b, 0xff00001d, 0xff000022};
    static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    static struct sd_quic_ctx *ctx; /* made on the first call, kept */
    static uint8_t sealed[70000];
    uint8_t buf[1500]; /* small enough that long CRYPTO streams clip */
    struct sd_reasm r;
    struct sd_quic_info info;

    if (!ctx && !(ctx = sd_quic_ctx_new()))
        abort();
    if (size > 0 && !(data[0] & 0x80)) {
        uint32_t v = fuzz_versions[data[0] % (sizeof(fuzz_versions) / sizeof(fuzz_versions[0]))];
        size = sd_gen_quic_initial_frames(sealed, sizeof(sealed), v, dcid, sizeof(dcid), data[0], data + 1, size - 1, 0);
        if (size == 0)
            return 0;
        data = sealed;
    }
    sd_reasm_init(&r, buf, sizeof(buf));
    int rc = sd_quic_client_initials(ctx, data, data + size, &r, &info);
    if ((rc > 0 && info.initials != rc) || r.contig > r.high || r.high > sizeof(buf) || r.n > SD_REASM_RANGES)
        abort();
    return 0;
}
