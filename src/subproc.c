/*
 * subproc.c - run a helper program and capture its output.
 *
 * posix_spawnp() rather than fork(): the callers may be multi-threaded
 * (slowdown run removes its rules after its workers started), and spawn only
 * runs async-signal-safe steps in the child. Output is read through one pipe
 * shared by stdout and stderr; anything past the caller's buffer is drained
 * and dropped so the child never blocks on a full pipe.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mono.h"
#include "sd.h"
#include "subproc.h"

extern char **environ;

static size_t drain(int fd, char *out, size_t outlen)
{
    char sink[512];
    size_t n = 0;

    for (;;) {
        char *dst = sink;
        size_t room = sizeof(sink);
        if (out && n + 1 < outlen) {
            dst = out + n;
            room = outlen - 1 - n;
        }
        ssize_t r = read(fd, dst, room);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (dst != sink)
            n += (size_t)r;
    }
    return n;
}

int sd_subproc_run(char *const argv[], char *out, size_t outlen)
{
    posix_spawn_file_actions_t fa;
    int pfd[2];
    pid_t pid;
    int rc, status;

    if (out && outlen)
        out[0] = '\0';
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        if (out && outlen)
            snprintf(out, outlen, "pipe: %s", strerror(errno));
        return SD_EIO;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        if (out && outlen)
            snprintf(out, outlen, "%s: %s", argv[0], strerror(rc));
        return SD_EIO;
    }
    size_t n = drain(pfd[0], out, outlen);
    close(pfd[0]);
    if (out && outlen) {
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            n--;
        out[n] = '\0';
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return SD_EIO;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* Appends |c| at buf[*n] while room is left (the last byte kept for the NUL). */
static void put(char *buf, size_t len, size_t *n, char c)
{
    if (*n + 1 < len)
        buf[(*n)++] = c;
}

void sd_subproc_format(char *const argv[], char *buf, size_t len)
{
    size_t n = 0;

    if (len == 0)
        return;
    for (size_t i = 0; argv[i]; i++) {
        /* Quoted where a shell would split or expand it, so that a printed command can be pasted: in single
         * quotes, a single quote itself written '\'' (close, escaped quote, reopen). */
        const char *a = argv[i];
        bool q = !a[0] || a[strcspn(a, " \t\n\"'$`\\|&;<>()*?[]#~!{}")];
        if (i)
            put(buf, len, &n, ' ');
        if (q)
            put(buf, len, &n, '\'');
        for (; *a; a++) {
            if (*a == '\'') {
                put(buf, len, &n, '\'');
                put(buf, len, &n, '\\');
                put(buf, len, &n, '\'');
            }
            put(buf, len, &n, *a);
        }
        if (q)
            put(buf, len, &n, '\'');
    }
    buf[n] = '\0';
}

int sd_subproc_vcmd(char *err, size_t errlen, const char *arg0, va_list ap)
{
    enum { MAX_ARGS = 48 };
    char *argv[MAX_ARGS], out[400], line[600];
    int n = 0;
    argv[n++] = (char *)arg0;
    while (n < MAX_ARGS - 1 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    argv[n] = NULL;
    int rc = sd_subproc_run(argv, out, sizeof(out));
    if (rc == 0)
        return 0;
    sd_subproc_format(argv, line, sizeof(line));
    snprintf(err, errlen, "'%s' failed (%d): %s", line, rc, out[0] ? out : "no output");
    return SD_EIO;
}

bool sd_subproc_in_netns(pid_t pid, const ino_t *ino, size_t n)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof(path), "/proc/%ld/ns/net", (long)pid);
    if (stat(path, &st) < 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (ino[i] && st.st_ino == ino[i])
            return true;
    }
    return false;
}

int sd_subproc_signal_netns(const ino_t *ino, size_t n, int sig)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int count = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == getpid())
            continue;
        if (sd_subproc_in_netns((pid_t)pid, ino, n) && kill((pid_t)pid, sig) == 0)
            count++;
    }
    closedir(d);
    return count;
}

static void reap_children(const pid_t *reap, size_t nreap)
{
    for (size_t i = 0; i < nreap; i++) {
        if (reap[i] > 0)
            waitpid(reap[i], NULL, WNOHANG);
    }
}

void sd_subproc_stop_netns(const ino_t *ino, size_t n, const pid_t *reap, size_t nreap, int wait_ms)
{
    if (sd_subproc_signal_netns(ino, n, SIGTERM) > 0) {
        for (int waited = 0; waited < wait_ms; waited += 20) {
            reap_children(reap, nreap);
            if (sd_subproc_signal_netns(ino, n, 0) == 0)
                break;
            sd_sleep_ns(20 * SD_NS_PER_MS);
        }
        sd_subproc_signal_netns(ino, n, SIGKILL);
    }
    reap_children(reap, nreap);
}
