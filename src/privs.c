/*
 * privs.c - giving up capabilities (privs.h), with libcap-ng.
 *
 *   read the thread's sets -> which of |keep| are held, CAP_SETPCAP?
 *   -> build the new state: effective = permitted = kept, inheritable and
 *      ambient empty (or the kept ambient ones, for exec as non-root),
 *      bounding = kept when it may be changed
 *   -> apply -> no_new_privs -> read the sets back and check them
 *
 * The check afterwards is deliberate: a drop that silently did less than it
 * says is worse than none, so any capability left over is an error.
 */
#include "privs.h"

#include <cap-ng.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "sd.h"

static bool kept(const struct sd_privs_result *res, int cap)
{
    for (int i = 0; i < res->n_kept; i++)
        if (res->kept[i] == cap)
            return true;
    return false;
}

/* The highest capability number of the running kernel (it may know more than our headers). */
static int last_cap(void)
{
    char buf[16] = "";
    FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    char *end;
    long v = strtol(buf, &end, 10);
    return end != buf && v >= 0 && v < 64 ? (int)v : 40;
}

/* 0 when the thread's sets are what |res| says, else SD_EPERM naming the first capability left over. */
static int verify(const struct sd_privs_result *res, bool ambient_ok, char *err, size_t errlen)
{
    static const struct {
        capng_type_t type;
        const char *name;
    } sets[] = {{CAPNG_EFFECTIVE, "effective"},
                {CAPNG_PERMITTED, "permitted"},
                {CAPNG_INHERITABLE, "inheritable"},
                {CAPNG_AMBIENT, "ambient"},
                {CAPNG_BOUNDING_SET, "bounding"}};

    if (capng_get_caps_process() != 0) {
        snprintf(err, errlen, "cannot read back this process's capabilities");
        return SD_EPERM;
    }
    for (int cap = 0, last = last_cap(); cap <= last; cap++) {
        for (size_t s = 0; s < SD_COUNTOF(sets); s++) {
            bool may = kept(res, cap);
            if (sets[s].type == CAPNG_INHERITABLE || sets[s].type == CAPNG_AMBIENT)
                may = may && ambient_ok;
            if (sets[s].type == CAPNG_BOUNDING_SET && !res->bounding)
                continue;
            if (!may && capng_have_capability(sets[s].type, (unsigned)cap)) {
                const char *name = capng_capability_to_name((unsigned)cap);
                snprintf(err, errlen, "capability %s is still in the %s set after dropping", name ? name : "?",
                         sets[s].name);
                return SD_EPERM;
            }
        }
    }
    return 0;
}

int sd_privs_drop(const int *keep, size_t n, unsigned flags, struct sd_privs_result *res, char *err,
                  size_t errlen)
{
    bool ambient[SD_PRIVS_MAX_KEEP] = {false};
    bool exec_ambient = (flags & SD_PRIVS_EXEC) && geteuid() != 0;

    memset(res, 0, sizeof(*res));
    if (n > SD_PRIVS_MAX_KEEP) {
        snprintf(err, errlen, "too many capabilities to keep");
        return SD_EINVAL;
    }
    if (capng_get_caps_process() != 0) {
        snprintf(err, errlen, "cannot read this process's capabilities");
        return SD_EPERM;
    }
    res->bounding = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
    for (size_t i = 0; i < n; i++) {
        if (!capng_have_capability(CAPNG_PERMITTED, (unsigned)keep[i]))
            continue;
        ambient[res->n_kept] = exec_ambient && capng_have_capability(CAPNG_AMBIENT, (unsigned)keep[i]);
        res->kept[res->n_kept++] = keep[i];
    }

    capng_clear(CAPNG_SELECT_ALL);
    for (int i = 0; i < res->n_kept; i++) {
        unsigned c = (unsigned)res->kept[i];
        int rc = capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, c);
        if (rc == 0 && ambient[i])
            rc = capng_update(CAPNG_ADD, CAPNG_INHERITABLE | CAPNG_AMBIENT, c);
        if (rc != 0) {
            snprintf(err, errlen, "cannot keep capability %d", res->kept[i]);
            return SD_EPERM;
        }
    }
    /* Without CAP_SETPCAP the bounding set cannot shrink (a service manager may have cut it already). */
    int rc = capng_apply(res->bounding ? CAPNG_SELECT_ALL : CAPNG_SELECT_CAPS | CAPNG_SELECT_AMBIENT);
    if (rc != 0) {
        snprintf(err, errlen, "cannot drop capabilities (libcap-ng capng_apply: %d)", rc);
        return SD_EPERM;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot set no_new_privs: %m");
        return SD_EPERM;
    }
    return verify(res, exec_ambient, err, errlen);
}

void sd_privs_describe(const struct sd_privs_result *res, char *buf, size_t len)
{
    size_t at = 0;

    snprintf(buf, len, "none");
    for (int i = 0; i < res->n_kept && at < len; i++) {
        const char *name = capng_capability_to_name((unsigned)res->kept[i]);
        int w = snprintf(buf + at, len - at, "%scap_%s", i ? "," : "", name ? name : "?");
        if (w < 0)
            break;
        at += (size_t)w;
    }
}
