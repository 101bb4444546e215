/*
 * fuzz_invert.c - sd_replay_parse() (the inverted first flight of the
 * detector's control C, replay.h) on arbitrary first reads of a plain
 * `slowdown serve` connection. A flight must be consumed within the input,
 * must start with the inverted record header, and must parse the same when
 * cut right after it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_serve_req a, b;
    int rc = sd_replay_parse(data, data + size, &a);

    if (rc == 0 || (rc < 0 && rc != SD_EAGAIN && rc != SD_EPROTO))
        abort();
    if (rc > 0 && ((size_t)rc > size || data[0] != 0xe9 || a.mode > SD_SERVE_ECHO))
        abort();
    if (rc > 0 && (size_t)rc < size) {
        int again = sd_replay_parse(data, data + rc, &b);
        if (again != rc || memcmp(&a, &b, sizeof(a)) != 0)
            abort();
    }
    return 0;
}
