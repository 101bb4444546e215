/*
 * clipolicy.h - the policy options every censor command shares:
 * --preset NAME, --policy FILE (repeatable; adds to the preset), --inside
 * CIDRS and --at TIME (the presets in force at that moment, from the
 * timeline). Collects them while options are parsed, then builds the policy.
 *
 * A command that polls a policy server (slowdown run, central.h) may give
 * --policy, --preset and --at as http:// or https:// URLs: the fetched text
 * is then a policy file's text, a preset's name or a time, and it is handed
 * in through url_text. Other commands leave url_text NULL and refuse URLs.
 */
#ifndef SD_CLIPOLICY_H
#define SD_CLIPOLICY_H

#include <stdbool.h>

#include "policy.h"

enum { SD_CLIPOLICY_MAX_FILES = 8 };

struct sd_clipolicy {
    const char *preset;
    const char *files[SD_CLIPOLICY_MAX_FILES];
    int n_files;
    const char *inside;
    const char *at;
    /* The fetched text of a URL source: 0 with |p|, |n| set, or an error. NULL: no URLs. */
    int (*url_text)(void *arg, const char *url, const char **p, size_t *n);
    void *url_arg;
};

/* The getopt_long entries, to be spliced into a command's table; their
 * values are 0x100 + k. */
#define SD_CLIPOLICY_OPTIONS                                                                                           \
    {"preset", required_argument, NULL, 0x100}, {"policy", required_argument, NULL, 0x101},                            \
        {"inside", required_argument, NULL, 0x102}, {"at", required_argument, NULL, 0x103}

/* Handles one option value |opt| (0x100..0x103): a time or a prefix list
 * must parse, and --preset and --at exclude each other. Returns 0, or 2
 * (usage) with a message on stderr. */
int sd_clipolicy_opt(struct sd_clipolicy *cp, const char *cmd, int opt, const char *arg);

/* Builds the policy: the preset (or the presets in force --at a time, or
 * |default_preset| when neither is given and no file is), then the files,
 * then --inside. On error prints "FILE:LINE:COL: message" (prefixed by
 * |cmd|) and returns NULL. */
struct sd_policy *sd_clipolicy_build(const struct sd_clipolicy *cp, const char *cmd, const char *default_preset);

/* Lines of the help text describing these options. */
extern const char sd_clipolicy_help[];

#endif
