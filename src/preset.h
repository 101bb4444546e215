/*
 * preset.h - the policy files shipped inside the binary (presets/NAME.pol,
 * embedded at build time by cmake/embed.cmake).
 */
#ifndef SD_PRESET_H
#define SD_PRESET_H

#include <stddef.h>

struct sd_preset_file {
    const char *name; /* file name without .pol, e.g. "tw21-exact" */
    const char *text; /* NUL-terminated policy text */
    size_t len;
};

/* Terminated by a row whose name is NULL. */
extern const struct sd_preset_file sd_preset_files[];

#endif
