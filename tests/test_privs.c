/*
 * test_privs.c - sd_privs_drop() (privs.c): in a forked child (the drop is
 * for good), the sets in /proc/self/status are exactly what was kept, a
 * thread started afterwards has the same, a program run afterwards gets the
 * kept capabilities and no more, no_new_privs is set, and without
 * CAP_SETPCAP the bounding set is left alone and said so, and a non-root uid
 * asking for SD_PRIVS_EXEC passes its kept ambient capabilities to what it
 * runs (and nothing without the flag). Needs root (skipped
 * otherwise): only root has capabilities to drop.
 */
#define _GNU_SOURCE
#include <cap-ng.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "privs.h"

static const uint64_t KEPT = (1ull << CAP_NET_ADMIN) | (1ull << CAP_NET_RAW);

struct sets {
    uint64_t inh, prm, eff, bnd, amb;
    int nnp;
};

/* Parses the Cap* and NoNewPrivs lines of a status file's text. */
static void parse_sets(const char *text, struct sets *s)
{
    static const char *const keys[] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"};
    uint64_t *vals[] = {&s->inh, &s->prm, &s->eff, &s->bnd, &s->amb};
    memset(s, 0, sizeof(*s));
    s->nnp = -1;
    for (size_t k = 0; k < 5; k++) {
        const char *p = strstr(text, keys[k]);
        *vals[k] = p ? strtoull(p + strlen(keys[k]), NULL, 16) : ~0ull;
    }
    const char *p = strstr(text, "NoNewPrivs:");
    if (p)
        s->nnp = atoi(p + strlen("NoNewPrivs:"));
}

static int read_sets(const char *path, struct sets *s)
{
    char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    parse_sets(buf, s);
    return 0;
}

/* 0 when |s| holds exactly the kept capabilities (bounding too when |bnd|) and no_new_privs. */
static int check(const struct sets *s, bool bnd)
{
    if (s->eff != KEPT)
        return 10;
    if (s->prm != KEPT)
        return 11;
    if (s->inh || s->amb)
        return 12;
    if (bnd && s->bnd != KEPT)
        return 13;
    if (s->nnp != 1)
        return 14;
    return 0;
}

static void *thread_main(void *arg)
{
    char path[64];
    struct sets s;
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", gettid());
    *(int *)arg = read_sets(path, &s) < 0 ? 20 : check(&s, true);
    return NULL;
}

/* What a program run after the drop has: its /proc/self/status, through a pipe. */
static int exec_sets(struct sets *s)
{
    int fd[2];
    char buf[8192];
    size_t n = 0;

    if (pipe(fd) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        execl("/bin/cat", "cat", "/proc/self/status", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    for (ssize_t r; n < sizeof(buf) - 1 && (r = read(fd[0], buf + n, sizeof(buf) - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd[0]);
    buf[n] = '\0';
    int st;
    waitpid(pid, &st, 0);
    parse_sets(buf, s);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int child_drop(void)
{
    static const int keep[] = {CAP_NET_ADMIN, CAP_NET_RAW};
    struct sd_privs_result res;
    struct sets s;
    char err[256];
    int trc = -1;
    pthread_t t;

    if (sd_privs_drop(keep, 2, 0, &res, err, sizeof(err)) != 0)
        return 1;
    if (res.n_kept != 2 || !res.bounding)
        return 2;
    sd_privs_describe(&res, err, sizeof(err));
    if (strcmp(err, "cap_net_admin,cap_net_raw") != 0)
        return 3;
    if (read_sets("/proc/self/status", &s) < 0)
        return 4;
    int rc = check(&s, true);
    if (rc)
        return rc;
    if (pthread_create(&t, NULL, thread_main, &trc) != 0 || pthread_join(t, NULL) != 0)
        return 5;
    if (trc)
        return 100 + trc;
    /* A root program run now (iptables at exit, say) gets the bounding set: the kept ones. */
    if (exec_sets(&s) < 0)
        return 6;
    rc = check(&s, true);
    return rc ? 200 + rc : 0;
}

static int child_no_setpcap(void)
{
    static const int keep[] = {CAP_NET_ADMIN, CAP_NET_RAW};
    struct sd_privs_result res;
    struct sets before, after;
    char err[256];

    /* As under a service manager that gave no CAP_SETPCAP. */
    capng_get_caps_process();
    capng_update(CAPNG_DROP, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SETPCAP);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0 || read_sets("/proc/self/status", &before) < 0)
        return 1;
    if (sd_privs_drop(keep, 2, 0, &res, err, sizeof(err)) != 0 || res.bounding)
        return 2;
    if (read_sets("/proc/self/status", &after) < 0)
        return 3;
    if (after.bnd != before.bnd)
        return 4;
    return check(&after, false);
}

/* A non-root uid that must run a program with the kept capabilities (SD_PRIVS_EXEC): they stay ambient. */
static int child_exec_nonroot(void)
{
    static const int keep[] = {CAP_NET_ADMIN, CAP_NET_RAW};
    struct sd_privs_result res;
    struct sets s;
    char err[256];

    /* As a service manager would start it: uid 65534 with those two ambient (and CAP_SETPCAP, to see the bounding cut). */
    capng_get_caps_process();
    capng_updatev(CAPNG_ADD, CAPNG_INHERITABLE, CAP_NET_ADMIN, CAP_NET_RAW, -1);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0 || prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
        return 1;
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
        return 2;
    capng_get_caps_process();
    capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE, CAP_NET_ADMIN, CAP_NET_RAW, CAP_SETPCAP, -1);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0)
        return 3;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0 ||
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
        return 4;

    if (sd_privs_drop(keep, 2, SD_PRIVS_EXEC, &res, err, sizeof(err)) != 0 || res.n_kept != 2 || !res.bounding)
        return 5;
    if (read_sets("/proc/self/status", &s) < 0)
        return 6;
    if (s.eff != KEPT || s.prm != KEPT || s.bnd != KEPT || s.amb != KEPT || s.nnp != 1)
        return 7;
    if (exec_sets(&s) < 0)
        return 8;
    if (s.eff != KEPT || s.prm != KEPT || s.amb != KEPT || s.nnp != 1)
        return 9;

    /* Without SD_PRIVS_EXEC the ambient set goes: a program run now gets nothing. */
    if (sd_privs_drop(keep, 2, 0, &res, err, sizeof(err)) != 0 || exec_sets(&s) < 0)
        return 10;
    return s.eff == 0 && s.prm == 0 && s.amb == 0 ? 0 : 11;
}

static int in_child(int (*fn)(void))
{
    int st;
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn());
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

static void test_drop(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(in_child(child_drop), 0);
}

static void test_no_setpcap(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(in_child(child_no_setpcap), 0);
}

static void test_exec_nonroot(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    assert_int_equal(in_child(child_exec_nonroot), 0);
}

static void test_parse_sets(void **state)
{
    struct sets s;
    (void)state;
    parse_sets("Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\n"
               "CapBnd:\t0000000000003000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n",
               &s);
    assert_int_equal(check(&s, true), 0);
    s.bnd = ~0ull;
    assert_int_equal(check(&s, true), 13);
    assert_int_equal(check(&s, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sets),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_no_setpcap),
        cmocka_unit_test(test_exec_nonroot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
