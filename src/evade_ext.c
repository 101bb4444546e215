/*
 * evade_ext.c - the external adapter: someone else's client (curl through
 * ByeDPI, a zapret set-up, a script) run as a black box in place of a
 * built-in strategy, measured by the bytes it writes to stdout.
 *
 *   expand {placeholders} -> fork: own process group, stdout to a pipe,
 *   stderr kept (last line reported), /bin/sh -c CMD -> read the pipe into
 *   the goodput bins until the transfer time is over or the command exits
 *   -> SIGTERM (then SIGKILL) to the whole group
 *
 * The command runs in the caller's network namespace: the matrix and
 * `slowdown evade --lab` call this from a thread inside the lab's client
 * namespace, so a daemon the command starts (ciadpi, nfqws) lives there too
 * and dies with the group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "evade.h"
#include "mono.h"

enum { CMD_MAX = 4096, ERR_MAX = 160 };

static int put(char *out, size_t cap, size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (*n + k + 1 > cap)
        return SD_ERANGE;
    memcpy(out + *n, s, k);
    *n += k;
    out[*n] = '\0';
    return 0;
}

int sd_evade_expand(const char *tmpl, const struct sd_evade_target *t, char *out, size_t cap)
{
    uint16_t port = t->port ? t->port : 443;
    unsigned secs = t->duration_ns ? (unsigned)((t->duration_ns + SD_NS_PER_S - 1) / SD_NS_PER_S) : 0;
    char v[512];
    size_t n = 0;

    if (!cap)
        return SD_ERANGE;
    out[0] = '\0';
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        size_t k = close ? (size_t)(close - p - 1) : 0;
        v[0] = '\0';
        if (close && k == 4 && !strncmp(p + 1, "addr", 4))
            snprintf(v, sizeof(v), "%s", t->addr);
        else if (close && k == 4 && !strncmp(p + 1, "port", 4))
            snprintf(v, sizeof(v), "%u", port);
        else if (close && k == 3 && !strncmp(p + 1, "sni", 3))
            snprintf(v, sizeof(v), "%s", t->sni);
        else if (close && k == 7 && !strncmp(p + 1, "seconds", 7))
            snprintf(v, sizeof(v), "%u", secs);
        else if (close && k == 5 && !strncmp(p + 1, "bytes", 5))
            snprintf(v, sizeof(v), "%llu", (unsigned long long)t->bytes);
        else if (close && k == 3 && !strncmp(p + 1, "url", 3))
            snprintf(v, sizeof(v), "https://%s:%u/down?%s=%llu", t->sni, port, t->bytes ? "bytes" : "seconds",
                     t->bytes ? (unsigned long long)t->bytes : (unsigned long long)secs + 1);
        else if (close && k == 7 && !strncmp(p + 1, "resolve", 7))
            snprintf(v, sizeof(v), "%s:%u:%s", t->sni, port, t->addr);
        else
            close = NULL;
        if (close) {
            if (put(out, cap, &n, v) < 0)
                return SD_ERANGE;
            p = close + 1;
            continue;
        }
        char c[2] = {*p++, 0};
        if (put(out, cap, &n, c) < 0)
            return SD_ERANGE;
    }
    return (int)n;
}

static void stop_group(pid_t pid)
{
    int status;

    kill(-pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            kill(-pid, SIGKILL); /* whatever it left behind */
            return;
        }
        poll(NULL, 0, 10);
    }
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* Waits up to 2 s for |pid| to exit. */
static bool reaped(pid_t pid, int *status)
{
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, status, WNOHANG) == pid)
            return true;
        poll(NULL, 0, 10);
    }
    return false;
}

static pid_t spawn(const char *cmd, int out_fd, int err_fd)
{
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    int nul = open("/dev/null", O_RDONLY);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (nul >= 0)
        dup2(nul, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

/* Keeps the last non-empty line of what arrived on stderr. */
static void keep_line(char *last, const char *buf, size_t n)
{
    size_t end = n;
    while (end > 0 && (buf[end - 1] == '\n' || buf[end - 1] == '\r'))
        end--;
    if (!end)
        return;
    size_t start = end;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    snprintf(last, ERR_MAX, "%.*s", (int)(end - start), buf + start);
}

int sd_evade_run_external(const char *cmd, const struct sd_evade_target *t, struct sd_evade_result *r)
{
    char line[CMD_MAX], err[ERR_MAX] = "", buf[16384];
    uint64_t bin = t->bin_ns ? t->bin_ns : 100ull * SD_NS_PER_MS;
    uint64_t hs = t->handshake_timeout_ns ? t->handshake_timeout_ns : 10ull * SD_NS_PER_S;
    int po[2], pe[2], status = 0;
    bool exited = false;

    memset(r, 0, sizeof(*r));
    if (sd_evade_expand(cmd, t, line, sizeof(line)) < 0) {
        snprintf(r->note, sizeof(r->note), "command too long");
        return SD_EINVAL;
    }
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(r->note, sizeof(r->note), "pipe: %s", strerror(errno));
        return SD_EIO;
    }
    if (t->bins)
        memset(t->bins, 0, sizeof(t->bins[0]) * t->max_bins);
    r->f.start_ns = sd_mono_ns();
    pid_t pid = spawn(line, po[1], pe[1]);
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        snprintf(r->note, sizeof(r->note), "fork: %s", strerror(errno));
        return SD_EIO;
    }
    r->f.stage = SD_FETCH_TRANSFER;
    uint64_t t0 = r->f.start_ns, end = t0 + hs + (t->duration_ns ? t->duration_ns : 60ull * SD_NS_PER_S);
    uint64_t first_dl = t0 + hs;
    for (;;) {
        uint64_t now = sd_mono_ns();
        if (now >= end || (!r->f.bytes && now >= first_dl))
            break;
        if (r->f.bytes && t->duration_ns && now - (t0 + r->f.ttfb_ns) >= t->duration_ns)
            break; /* the transfer time, counted from the first byte, is over */
        struct pollfd p[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
        if (poll(p, 2, 50) <= 0)
            continue;
        if (p[1].revents & POLLIN) {
            ssize_t k = read(pe[0], buf, sizeof(buf));
            if (k > 0)
                keep_line(err, buf, (size_t)k);
        }
        if (!(p[0].revents & (POLLIN | POLLHUP)))
            continue;
        ssize_t k = read(po[0], buf, sizeof(buf));
        if (k <= 0) {
            exited = true;
            break;
        }
        now = sd_mono_ns();
        if (!r->f.bytes)
            r->f.ttfb_ns = now - t0;
        r->f.bytes += (uint64_t)k;
        uint64_t i = (now - t0 - r->f.ttfb_ns) / bin;
        if (t->bins && i < t->max_bins) {
            t->bins[i] += (uint64_t)k;
            if (i + 1 > r->f.n_bins)
                r->f.n_bins = (uint32_t)(i + 1);
        }
    }
    r->f.transfer_ns = sd_mono_ns() - t0 - r->f.ttfb_ns;
    if (exited && reaped(pid, &status)) {
        kill(-pid, SIGKILL); /* what it left behind */
    } else {
        stop_group(pid);
        status = 0;
        exited = false;
    }
    close(po[0]);
    close(pe[0]);
    bool ok = exited ? WIFEXITED(status) && WEXITSTATUS(status) == 0 : true;
    if (r->f.bytes && ok)
        r->f.end = SD_FETCH_DONE;
    else if (!r->f.bytes && !exited)
        r->f.end = SD_FETCH_TIMEOUT;
    else
        r->f.end = SD_FETCH_ERROR;
    if (exited && !ok)
        snprintf(r->f.detail, sizeof(r->f.detail), "exit %d%s%.100s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 err[0] ? ": " : "", err);
    r->applied = r->f.bytes > 0;
    snprintf(r->note, sizeof(r->note), "external: %.120s", line);
    r->kbps = sd_fetch_kbps(&r->f, t->bins, bin, t->skip_ns);
    r->tail_bytes = 0;
    uint64_t nb = t->duration_ns ? t->duration_ns / bin : r->f.n_bins;
    for (uint64_t i = nb / 2; t->bins && i < r->f.n_bins && i < t->max_bins; i++)
        r->tail_bytes += t->bins[i];
    if (!t->bins)
        r->tail_bytes = r->f.bytes;
    return 0;
}
