/*
 * fuzz_serve_req.c - sd_serve_parse_req() on arbitrary first reads of a
 * `slowdown serve` connection. A request must be consumed within the input;
 * a complete request must still parse the same when more bytes follow it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_serve_req a, b;
    int rc = sd_serve_parse_req(data, data + size, &a);

    if (rc > 0 && (size_t)rc > size)
        abort();
    if (rc == 0 || (rc < 0 && rc != SD_EAGAIN && rc != SD_EPROTO))
        abort();
    if (rc > 0 && a.mode > SD_SERVE_ECHO)
        abort();
    if (rc > 0 && size > 0 && (size_t)rc < size) {
        /* Bytes after a request are data, never part of it. */
        int again = sd_serve_parse_req(data, data + rc, &b);
        if (again != rc || memcmp(&a, &b, sizeof(a)) != 0)
            abort();
    }
    return 0;
}
