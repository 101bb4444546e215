/*
 * subproc.h - run a helper program (ip, tc, iptables-legacy) and keep what it
 * said, so that a failure can be reported with the tool's own words; find and
 * signal the processes of a network namespace (a lab's, the management one).
 */
#ifndef SD_SUBPROC_H
#define SD_SUBPROC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Runs argv[0] (looked up in PATH) with |argv| (NULL-terminated), stdin from
 * /dev/null, and waits for it. Its stdout and stderr are captured together:
 * the first |outlen| - 1 bytes go to |out| (NUL-terminated, trailing newline
 * removed; |out| may be NULL). Returns the exit status (0-255), 128 + signal
 * number when the child was killed, or SD_EIO when it could not be started
 * (|out| then holds the reason).
 */
int sd_subproc_run(char *const argv[], char *out, size_t outlen);

/* Writes |argv| as one space-separated line into |buf| (truncated to |len|). */
void sd_subproc_format(char *const argv[], char *buf, size_t len);

/*
 * Runs |arg0| with the arguments that follow it up to a NULL (at most 47) by
 * sd_subproc_run. Returns 0, or SD_EIO with "'COMMAND' failed (STATUS):
 * OUTPUT" written to |err| (truncated to |errlen|).
 */
int sd_subproc_vcmd(char *err, size_t errlen, const char *arg0, va_list ap);

/* Whether process |pid| lives in one of the |n| network namespaces whose
 * inode numbers are in |ino| (zeros are skipped). */
bool sd_subproc_in_netns(pid_t pid, const ino_t *ino, size_t n);

/*
 * Sends |sig| (0: none, only counting) to every process but this one and
 * init whose network namespace has one of the |n| inode numbers in |ino|
 * (zeros are skipped). Returns how many were signalled.
 */
int sd_subproc_signal_netns(const ino_t *ino, size_t n, int sig);

/*
 * Stops every process in those namespaces: SIGTERM, then up to |wait_ms| for
 * them to go (looked at every 20 ms, reaping meanwhile the |nreap| children
 * in |reap|; pids <= 0 are skipped), then SIGKILL to any left, and a last
 * reap.
 */
void sd_subproc_stop_netns(const ino_t *ino, size_t n, const pid_t *reap, size_t nreap, int wait_ms);

#endif
