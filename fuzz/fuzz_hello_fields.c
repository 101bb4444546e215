/*
 * fuzz_hello_fields.c - sd_hello_fields() (locate.h) on arbitrary records.
 * On success the fields must tile the input exactly, in order, without an
 * empty field; on failure nothing may be claimed.
 */
#include <stdint.h>
#include <stdlib.h>

#include "locate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_hello_field f[SD_HELLO_FIELDS_MAX];
    int n = sd_hello_fields(data, data + size, f, SD_HELLO_FIELDS_MAX);

    if (n == 0 || (n < 0 && n != SD_EPROTO && n != SD_ERANGE))
        abort();
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (f[i].off != at || f[i].len == 0 || !f[i].name[0])
            abort();
        at += f[i].len;
    }
    if (n > 0 && at != size)
        abort();
    return 0;
}
