/*
 * json.c - JSON string output (see json.h).
 */
#include <string.h>

#include "json.h"

void sd_json_bytes(FILE *f, const void *p, size_t n)
{
    const unsigned char *s = p;
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void sd_json_str(FILE *f, const char *s)
{
    if (!s)
        fputs("null", f);
    else
        sd_json_bytes(f, s, strlen(s));
}
