/*
 * json.h - JSON string output shared by every command that prints JSON lines
 * (the contract of interface.md): bytes outside printable ASCII are written
 * as \u00XX, so names parsed from hostile traffic come out as they were read.
 */
#ifndef SD_JSON_H
#define SD_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes the |n| bytes at |p| as a JSON string. */
void sd_json_bytes(FILE *f, const void *p, size_t n);

/* Writes |s| as a JSON string, or null when |s| is NULL. */
void sd_json_str(FILE *f, const char *s);

#endif
