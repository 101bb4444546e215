/*
 * lab.c - build, enter and remove the client/censor/server lab (see lab.h).
 *
 * Set-up is a straight list of steps, each one command or system call whose
 * failure stops the list and is reported in the command's own words:
 *
 *   mark dir -> 3 x `ip netns add` (inodes recorded) -> 2 veth pairs ->
 *   addresses, links, routes -> forwarding on in the censor -> [HTB] ->
 *   serve (server) -> [delay line + its mangle rules] -> run (censor)
 *
 * The state file is rewritten after every step that leaves something
 * behind, so that sd_lab_down can always undo a set-up that stopped half
 * way, even one whose process was killed. Tear-down never trusts a name
 * alone: a namespace is deleted only if its inode is the one recorded when
 * this lab created it, and processes are stopped only if they live in one
 * of those namespaces.
 *
 * The daemons are started with fork + setns + exec (posix_spawn cannot
 * setns), detached in their own session, output to a log in the mark dir.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bpfpass.h"
#include "central.h"
#include "lab.h"
#include "labmgmt.h"
#include "mono.h"
#include "subproc.h"

enum { MAX_ARGS = 48, READY_WAIT_MS = 15000, STOP_WAIT_MS = 3000 };

static const char *const role_names[] = {"client", "censor", "server"};

/* strlcpy: copies what fits, always terminated. */
static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

struct setup {
    const struct sd_lab_config *cfg;
    struct sd_lab_info info;
    ino_t ino[3];
    bool pending[3];            /* `ip netns add` under way: its inode is not known yet */
    char dir[128];              /* SD_LAB_DIR/<id> */
    char *err;
    size_t errlen;
};

/* ---- names and files ---- */

bool sd_lab_id_ok(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n >= SD_LAB_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')))
            return false;
    }
    return true;
}

void sd_lab_ns_name(const char *id, int role, char *buf, size_t len)
{
    snprintf(buf, len, "sd-%s-%s", id, role_names[role]);
}

const char *sd_lab_role_name(int role)
{
    return role >= 0 && role < 3 ? role_names[role] : "?";
}

int sd_lab_role_parse(const char *name)
{
    for (int i = 0; i < 3; i++) {
        if (!strcmp(name, role_names[i]))
            return i;
    }
    return -1;
}

static void ns_path(const char *id, int role, char *buf, size_t len)
{
    char name[64];
    sd_lab_ns_name(id, role, name, sizeof(name));
    snprintf(buf, len, "/var/run/netns/%s", name);
}

static ino_t ns_inode(const char *id, int role)
{
    char path[PATH_MAX];
    struct stat st;

    ns_path(id, role, path, sizeof(path));
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_state(const struct setup *s)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    const struct sd_lab_info *i = &s->info;

    snprintf(path, sizeof(path), "%s/state", s->dir);
    snprintf(tmp, sizeof(tmp), "%s/state.tmp", s->dir);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return SD_EIO;
    fprintf(f, "id %s\ncomplete %d\npreset %s\npolicy %s\nrtt_ms %u\nshape_kbit %u\nno_censor %d\n", i->id,
            i->complete, i->preset, i->policy, i->rtt_ms, i->shape_kbit, i->no_censor);
    for (int r = 0; r < 3; r++)
        fprintf(f, "ino_%s %llu\npending_%s %d\n", role_names[r], (unsigned long long)s->ino[r], role_names[r],
                s->pending[r]);
    fprintf(f, "censor_pid %d\nserver_pid %d\ndelay_pid %d\n", (int)i->censor_pid, (int)i->server_pid,
            (int)i->delay_pid);
    if (i->mgmt[0])
        fprintf(f, "mgmt %s\nmgmt_host %d\n", i->mgmt, i->mgmt_host);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        return SD_EIO;
    return 0;
}

static void read_kv(struct setup *s, const char *key, const char *val)
{
    struct sd_lab_info *i = &s->info;
    long v = strtol(val, NULL, 10);

    if (!strcmp(key, "id"))
        snprintf(i->id, sizeof(i->id), "%s", val);
    else if (!strcmp(key, "complete"))
        i->complete = v != 0;
    else if (!strcmp(key, "preset"))
        snprintf(i->preset, sizeof(i->preset), "%s", val);
    else if (!strcmp(key, "policy"))
        snprintf(i->policy, sizeof(i->policy), "%s", val);
    else if (!strcmp(key, "rtt_ms"))
        i->rtt_ms = (uint32_t)v;
    else if (!strcmp(key, "shape_kbit"))
        i->shape_kbit = (uint32_t)v;
    else if (!strcmp(key, "no_censor"))
        i->no_censor = v != 0;
    else if (!strcmp(key, "censor_pid"))
        i->censor_pid = (pid_t)v;
    else if (!strcmp(key, "server_pid"))
        i->server_pid = (pid_t)v;
    else if (!strcmp(key, "delay_pid"))
        i->delay_pid = (pid_t)v;
    else if (!strcmp(key, "mgmt") && sd_lab_id_ok(val))
        snprintf(i->mgmt, sizeof(i->mgmt), "%s", val);
    else if (!strcmp(key, "mgmt_host"))
        i->mgmt_host = (int)v;
    for (int r = 0; r < 3; r++) {
        char k[32], p[32];
        snprintf(k, sizeof(k), "ino_%s", role_names[r]);
        snprintf(p, sizeof(p), "pending_%s", role_names[r]);
        if (!strcmp(key, k))
            s->ino[r] = (ino_t)strtoull(val, NULL, 10);
        else if (!strcmp(key, p))
            s->pending[r] = v != 0;
    }
}

/* Loads the mark of lab |id| into |s|. 0, SD_ENOENT (no mark) or SD_EIO. */
static int load_state(const char *id, struct setup *s)
{
    char path[PATH_MAX + 8], line[512];

    memset(s, 0, sizeof(*s));
    if (!sd_lab_id_ok(id))
        return SD_ENOENT;
    snprintf(s->dir, sizeof(s->dir), "%s/%s", SD_LAB_DIR, id);
    snprintf(s->info.id, sizeof(s->info.id), "%s", id);
    snprintf(path, sizeof(path), "%s/state", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        struct stat st;
        /* A mark dir without a state file: set-up died before writing it. */
        return stat(s->dir, &st) == 0 ? 0 : SD_ENOENT;
    }
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            read_kv(s, line, sp + 1);
        }
    }
    fclose(f);
    return 0;
}

/* ---- commands ---- */

static int fail(struct setup *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct setup *s, int rc, const char *fmt, ...)
{
    va_list ap;
    if (s->err[0])
        return rc; /* keep the first failure */
    va_start(ap, fmt);
    vsnprintf(s->err, s->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* Runs a command given as NULL-terminated arguments; a failure goes to s->err. */
static int cmd(struct setup *s, const char *arg0, ...)
{
    char msg[1100];
    va_list ap;
    va_start(ap, arg0);
    int rc = sd_subproc_vcmd(msg, sizeof(msg), arg0, ap);
    va_end(ap);
    return rc ? fail(s, rc, "%s", msg) : 0;
}

/* Writes |value| to /proc/sys/|key| inside the namespace of |role|. */
static int ns_sysctl(struct setup *s, int role, const char *key, const char *value)
{
    char path[PATH_MAX];
    int status;

    ns_path(s->info.id, role, path, sizeof(path));
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return fail(s, SD_EIO, "open %s: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        char p[256];
        snprintf(p, sizeof(p), "/proc/sys/%s", key);
        if (setns(nsfd, CLONE_NEWNET) < 0)
            _exit(1);
        int fd = open(p, O_WRONLY);
        if (fd < 0 || write(fd, value, strlen(value)) < 0)
            _exit(2);
        _exit(0);
    }
    close(nsfd);
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(s, SD_EIO, "cannot set %s=%s in the %s namespace", key, value, role_names[role]);
    return 0;
}

/* ---- network ---- */

static int make_namespaces(struct setup *s)
{
    char name[64];

    for (int r = 0; r < 3; r++) {
        sd_lab_ns_name(s->info.id, r, name, sizeof(name));
        if (ns_inode(s->info.id, r))
            return fail(s, SD_EEXIST, "namespace %s exists already and is not this lab's: left alone", name);
        /* Recorded first, so that a set-up killed right after `ip netns add` can still be undone. */
        s->pending[r] = true;
        write_state(s);
        int rc = cmd(s, "ip", "netns", "add", name, NULL);
        s->ino[r] = ns_inode(s->info.id, r);
        s->pending[r] = false;
        write_state(s);
        if (rc < 0)
            return rc;
        if (!s->ino[r])
            return fail(s, SD_EIO, "namespace %s was not created", name);
    }
    return 0;
}

static int make_links(struct setup *s)
{
    char c[64], x[64], v[64];
    int rc;

    sd_lab_ns_name(s->info.id, SD_LAB_CLIENT, c, sizeof(c));
    sd_lab_ns_name(s->info.id, SD_LAB_CENSOR, x, sizeof(x));
    sd_lab_ns_name(s->info.id, SD_LAB_SERVER, v, sizeof(v));
    rc = cmd(s, "ip", "-n", x, "link", "add", "in0", "type", "veth", "peer", "name", "eth0", "netns", c, NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", x, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", v, NULL);
    /* Addresses: IPv6 without duplicate address detection, so they work at once. */
    rc = rc ? rc : cmd(s, "ip", "-n", c, "addr", "add", "192.0.2.2/24", "dev", "eth0", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", c, "addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", x, "addr", "add", "192.0.2.1/24", "dev", "in0", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", x, "addr", "add", "2001:db8:1::1/64", "dev", "in0", "nodad", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", x, "addr", "add", "203.0.113.1/24", "dev", "out0", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", x, "addr", "add", "2001:db8:2::1/64", "dev", "out0", "nodad", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", v, "addr", "add", "203.0.113.2/24", "dev", "eth0", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", v, "addr", "add", "2001:db8:2::2/64", "dev", "eth0", "nodad", NULL);
    rc = rc ? rc : ns_sysctl(s, SD_LAB_CENSOR, "net/ipv4/ip_forward", "1");
    rc = rc ? rc : ns_sysctl(s, SD_LAB_CENSOR, "net/ipv6/conf/all/forwarding", "1");
    const char *up[][2] = {{c, "lo"}, {c, "eth0"}, {x, "lo"}, {x, "in0"}, {x, "out0"}, {v, "lo"}, {v, "eth0"}};
    for (size_t i = 0; i < SD_COUNTOF(up) && !rc; i++)
        rc = cmd(s, "ip", "-n", up[i][0], "link", "set", up[i][1], "up", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", c, "route", "add", "default", "via", "192.0.2.1", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", c, "-6", "route", "add", "default", "via", "2001:db8:1::1", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", v, "route", "add", "default", "via", "203.0.113.1", NULL);
    rc = rc ? rc : cmd(s, "ip", "-n", v, "-6", "route", "add", "default", "via", "2001:db8:2::1", NULL);
    return rc;
}

/* HTB at both egresses of the censor: the same rate in both directions. */
static int make_shaper(struct setup *s)
{
    char x[64], rate[32];
    int rc = 0;

    sd_lab_ns_name(s->info.id, SD_LAB_CENSOR, x, sizeof(x));
    snprintf(rate, sizeof(rate), "%ukbit", s->info.shape_kbit);
    static const char *const devs[] = {"in0", "out0"};
    for (size_t i = 0; i < SD_COUNTOF(devs) && !rc; i++) {
        const char *d = devs[i];
        rc = cmd(s, "tc", "-n", x, "qdisc", "add", "dev", d, "root", "handle", "1:", "htb", "default", "1", NULL);
        rc = rc ? rc : cmd(s, "tc", "-n", x, "class", "add", "dev", d, "parent", "1:", "classid", "1:1", "htb",
                           "rate", rate, "ceil", rate, NULL);
        /* A short queue, as a shaper in a network would have (not 1000 packets of bufferbloat). */
        rc = rc ? rc : cmd(s, "tc", "-n", x, "qdisc", "add", "dev", d, "parent", "1:1", "handle", "10:", "pfifo",
                           "limit", "64", NULL);
    }
    return rc;
}

/* ---- daemons ---- */

static pid_t start_daemon(struct setup *s, int role, char *const argv[], const char *name)
{
    char path[PATH_MAX], log[PATH_MAX + 16];

    ns_path(s->info.id, role, path, sizeof(path));
    snprintf(log, sizeof(log), "%s/%s.log", s->dir, name);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0)
        return fail(s, SD_EIO, "open %s: %s", path, strerror(errno));
    pid_t pid = fork();
    if (pid == 0) {
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL); /* the caller may block INT/TERM while the lab is up */
        if (lfd < 0 || nul < 0 || setsid() < 0 || setns(nsfd, CLONE_NEWNET) < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        execv(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(nsfd);
    if (pid < 0)
        return fail(s, SD_EIO, "fork: %s", strerror(errno));
    return pid;
}

/* The last line of a daemon's log, for error messages. */
static void log_tail(const struct setup *s, const char *name, char *buf, size_t len)
{
    char path[PATH_MAX + 16], line[400];

    buf[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s.log", s->dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0])
            copy_str(buf, len, line);
    }
    fclose(f);
}

/* Waits for |name|.ready to appear, or the daemon to die. */
static int wait_ready(struct setup *s, pid_t pid, const char *name)
{
    char path[PATH_MAX + 16], tail[300];
    int status;

    snprintf(path, sizeof(path), "%s/%s.ready", s->dir, name);
    for (int waited = 0; waited < READY_WAIT_MS; waited += 10) {
        if (access(path, F_OK) == 0)
            return 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            log_tail(s, name, tail, sizeof(tail));
            return fail(s, SD_EIO, "the %s exited during start-up: %s", name, tail[0] ? tail : "(no output)");
        }
        sd_sleep_ns(10 * SD_NS_PER_MS);
    }
    return fail(s, SD_EIO, "the %s did not become ready within %d s", name, READY_WAIT_MS / 1000);
}

/* Starts a daemon, records its pid in |slot| (and the state file), waits until it is ready. */
static int launch(struct setup *s, int role, char *const argv[], const char *name, pid_t *slot)
{
    pid_t pid = start_daemon(s, role, argv, name);

    if (pid < 0)
        return pid;
    *slot = pid;
    write_state(s);
    return wait_ready(s, pid, name);
}

/* argv = exe, then the NULL-terminated |fixed|, then the caller's |extra|. */
static void build_argv(char **argv, const char *exe, char *const *fixed, char *const *extra)
{
    int n = 0;
    argv[n++] = (char *)exe;
    for (; fixed && *fixed && n < MAX_ARGS - 1; fixed++)
        argv[n++] = *fixed;
    for (; extra && *extra && n < MAX_ARGS - 1; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
}

static int start_server(struct setup *s, const char *exe)
{
    char ready[PATH_MAX + 16], *argv[MAX_ARGS];

    snprintf(ready, sizeof(ready), "%s/server.ready", s->dir);
    /* 16 GiB per request: a 10 Gbit/s control must not hit the cap within a few seconds. */
    char *fixed[] = {"serve", "--port", "443", "--plain-port", "80", "--bytes", "16g", "--ready-file", ready, NULL};
    build_argv(argv, exe, fixed, s->cfg->serve_args);
    return launch(s, SD_LAB_SERVER, argv, "server", &s->info.server_pid);
}

/* The delay line holds every packet leaving the censor for rtt/2 (mangle
 * POSTROUTING, after the censor's own hook), so both directions add rtt/2. */
static int start_delay(struct setup *s, const char *exe)
{
    char ready[PATH_MAX + 16], us[32], q[16], x[64], *argv[MAX_ARGS];
    int rc = 0;

    snprintf(ready, sizeof(ready), "%s/delay.ready", s->dir);
    snprintf(us, sizeof(us), "%llu", (unsigned long long)s->info.rtt_ms * 500);
    snprintf(q, sizeof(q), "%d", SD_LAB_DELAY_QUEUE);
    char *fixed[] = {"lab", "delay-line", "--queue", q, "--delay-us", us, "--ready-file", ready, NULL};
    build_argv(argv, exe, fixed, NULL);
    rc = launch(s, SD_LAB_CENSOR, argv, "delay", &s->info.delay_pid);
    sd_lab_ns_name(s->info.id, SD_LAB_CENSOR, x, sizeof(x));
    static const char *const tools[] = {"iptables-legacy", "ip6tables-legacy"};
    static const char *const devs[] = {"in0", "out0"};
    for (size_t t = 0; t < 2 && !rc; t++) {
        for (size_t d = 0; d < 2 && !rc; d++)
            rc = cmd(s, "ip", "netns", "exec", x, tools[t], "-w", "-t", "mangle", "-A", "POSTROUTING", "-o", devs[d],
                     "-j", "NFQUEUE", "--queue-num", q, "--queue-bypass", NULL);
    }
    return rc;
}

static int start_censor(struct setup *s, const char *exe)
{
    char ready[PATH_MAX + 16], *argv[MAX_ARGS], *fixed[16];
    int n = 0;

    snprintf(ready, sizeof(ready), "%s/censor.ready", s->dir);
    fixed[n++] = "run";
    fixed[n++] = "--inside";
    fixed[n++] = SD_LAB_INSIDE;
    /* PREROUTING, not FORWARD: like a box on the wire, the censor sees packets whose TTL ends at this hop. */
    fixed[n++] = "--hook";
    fixed[n++] = "prerouting";
    /* The transit links only: not its own loopback, nor the management link. */
    fixed[n++] = "--iface";
    fixed[n++] = "in0,out0";
    fixed[n++] = "--ready-file";
    fixed[n++] = ready;
    if (s->info.preset[0]) {
        fixed[n++] = "--preset";
        fixed[n++] = s->info.preset;
    }
    if (s->info.policy[0]) {
        fixed[n++] = "--policy";
        fixed[n++] = s->info.policy;
    }
    fixed[n] = NULL;
    build_argv(argv, exe, fixed, s->cfg->run_args);
    return launch(s, SD_LAB_CENSOR, argv, "censor", &s->info.censor_pid);
}

/* ---- up ---- */

static int make_id(struct setup *s)
{
    const struct sd_lab_config *cfg = s->cfg;

    if (mkdir_p(SD_LAB_DIR) < 0)
        return fail(s, errno == EACCES || errno == EPERM ? SD_EPERM : SD_EIO, "cannot create %s: %s", SD_LAB_DIR,
                    strerror(errno));
    for (int tries = 0; tries < 8; tries++) {
        if (cfg->id[0]) {
            snprintf(s->info.id, sizeof(s->info.id), "%s", cfg->id);
        } else {
            uint8_t r[3] = {0};
            if (getrandom(r, sizeof(r), 0) < 0)
                r[0] = (uint8_t)getpid();
            snprintf(s->info.id, sizeof(s->info.id), "%02x%02x%02x", r[0], r[1], r[2]);
        }
        snprintf(s->dir, sizeof(s->dir), "%s/%s", SD_LAB_DIR, s->info.id);
        if (mkdir(s->dir, 0755) == 0)
            return 0;
        if (errno != EEXIST)
            return fail(s, SD_EIO, "cannot create %s: %s", s->dir, strerror(errno));
        if (cfg->id[0])
            return fail(s, SD_EEXIST, "lab '%s' exists already (slowdown lab down %s)", cfg->id, cfg->id);
    }
    return fail(s, SD_EEXIST, "no free lab id");
}

/* Plugs the censor into the management network. */
static int join_mgmt(struct setup *s)
{
    char x[64];
    sd_lab_ns_name(s->info.id, SD_LAB_CENSOR, x, sizeof(x));
    snprintf(s->info.mgmt, sizeof(s->info.mgmt), "%s", s->cfg->mgmt);
    int h = sd_lab_mgmt_attach(s->cfg->mgmt, s->info.id, x, s->err, s->errlen);
    if (h < 0) {
        s->info.mgmt[0] = '\0';
        return h;
    }
    s->info.mgmt_host = h;
    return write_state(s);
}

static int up_steps(struct setup *s, const char *exe)
{
    int rc = make_namespaces(s);
    rc = rc ? rc : make_links(s);
    if (!rc && s->cfg->mgmt)
        rc = join_mgmt(s);
    if (!rc && s->info.shape_kbit)
        rc = make_shaper(s);
    rc = rc ? rc : start_server(s, exe);
    if (!rc && s->info.rtt_ms)
        rc = start_delay(s, exe);
    if (!rc && !s->info.no_censor)
        rc = start_censor(s, exe);
    return rc;
}

int sd_lab_up(const struct sd_lab_config *cfg, char id_out[SD_LAB_ID_MAX], char *err, size_t errlen)
{
    struct setup s;
    char exe[PATH_MAX];
    int rc;

    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    s.err = err;
    s.errlen = errlen;
    err[0] = '\0';
    if (geteuid() != 0)
        return fail(&s, SD_EPERM, "the lab needs root (network namespaces)");
    if (cfg->id[0] && !sd_lab_id_ok(cfg->id))
        return fail(&s, SD_EINVAL, "bad lab id '%s': 1-12 characters of a-z and 0-9", cfg->id);
    if (cfg->mgmt && !sd_lab_id_ok(cfg->mgmt))
        return fail(&s, SD_EINVAL, "bad management network name '%s'", cfg->mgmt);
    if (sd_central_is_url(cfg->policy))
        snprintf(s.info.policy, sizeof(s.info.policy), "%s", cfg->policy);
    else if (cfg->policy && !realpath(cfg->policy, s.info.policy))
        return fail(&s, SD_EINVAL, "cannot read policy %s: %s", cfg->policy, strerror(errno));
    if (cfg->exe)
        snprintf(exe, sizeof(exe), "%s", cfg->exe);
    else if (!realpath("/proc/self/exe", exe))
        return fail(&s, SD_EIO, "cannot find this program: %s", strerror(errno));
    if (cfg->preset || !cfg->policy)
        snprintf(s.info.preset, sizeof(s.info.preset), "%s", cfg->preset ? cfg->preset : "tw21-initial");
    s.info.rtt_ms = cfg->rtt_ms;
    s.info.shape_kbit = cfg->shape_kbit;
    s.info.no_censor = cfg->no_censor;
    rc = make_id(&s);
    if (rc)
        return rc;
    write_state(&s);
    rc = up_steps(&s, exe);
    if (rc) {
        char ignored[256];
        sd_lab_down(s.info.id, ignored, sizeof(ignored));
        return rc;
    }
    s.info.complete = true;
    if (write_state(&s) < 0) {
        char ignored[256];
        sd_lab_down(s.info.id, ignored, sizeof(ignored));
        return fail(&s, SD_EIO, "cannot write %s/state", s.dir);
    }
    snprintf(id_out, SD_LAB_ID_MAX, "%s", s.info.id);
    return 0;
}

/* ---- down ---- */

static void stop_processes(struct setup *s)
{
    pid_t ours[] = {s->info.censor_pid, s->info.delay_pid, s->info.server_pid}; /* reaped when we are their parent */

    sd_subproc_stop_netns(s->ino, SD_COUNTOF(s->ino), ours, SD_COUNTOF(ours), STOP_WAIT_MS);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);

    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[PATH_MAX + 256];
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

int sd_lab_down(const char *id, char *err, size_t errlen)
{
    struct setup s;
    char name[64];
    int rc = load_state(id, &s);

    err[0] = '\0';
    if (rc == SD_ENOENT) {
        snprintf(err, errlen, "no lab '%s' (nothing under %s/%s): nothing touched", id, SD_LAB_DIR, id);
        return rc;
    }
    s.err = err;
    s.errlen = errlen;
    for (int r = 0; r < 3; r++) {
        if (!s.ino[r] && s.pending[r])
            s.ino[r] = ns_inode(id, r); /* created by a set-up that died before recording it */
    }
    stop_processes(&s);
    if (s.ino[SD_LAB_CENSOR]) /* a censor killed before its clean-up leaves its --bypass bpf pins */
        sd_bpfpass_remove_netns((unsigned long long)s.ino[SD_LAB_CENSOR]);
    for (int r = 0; r < 3; r++) {
        sd_lab_ns_name(id, r, name, sizeof(name));
        ino_t now = ns_inode(id, r);
        if (!now)
            continue;
        if (now != s.ino[r]) {
            rc = fail(&s, SD_EIO, "namespace %s is not the one this lab created: left alone", name);
            continue;
        }
        if (cmd(&s, "ip", "netns", "del", name, NULL) < 0)
            rc = SD_EIO;
    }
    if (s.info.mgmt[0])
        sd_lab_mgmt_detach(s.info.mgmt, id, s.info.mgmt_host);
    remove_dir(s.dir);
    return rc;
}

/* ---- info, list, enter ---- */

static bool alive_in(pid_t pid, const ino_t ino[3])
{
    return pid > 0 && kill(pid, 0) == 0 && sd_subproc_in_netns(pid, ino, 3);
}

int sd_lab_info(const char *id, struct sd_lab_info *info)
{
    struct setup s;
    int rc = load_state(id, &s);

    if (rc)
        return rc;
    *info = s.info;
    info->censor_alive = alive_in(s.info.censor_pid, s.ino);
    info->server_alive = alive_in(s.info.server_pid, s.ino);
    return 0;
}

int sd_lab_list(char ids[][SD_LAB_ID_MAX], int max)
{
    DIR *d = opendir(SD_LAB_DIR);
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (!sd_lab_id_ok(de->d_name))
            continue;
        if (n < max)
            copy_str(ids[n], SD_LAB_ID_MAX, de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

int sd_lab_enter(const char *id, int role, int *prev_fd)
{
    struct setup s;
    char path[PATH_MAX];

    if (role < 0 || role > 2 || load_state(id, &s) != 0)
        return SD_ENOENT;
    ns_path(id, role, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SD_ENOENT;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_ino != s.ino[role]) {
        close(fd);
        return SD_ENOENT;
    }
    if (prev_fd) {
        *prev_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (*prev_fd < 0) {
            close(fd);
            return SD_EIO;
        }
    }
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    if (rc < 0) {
        if (prev_fd)
            close(*prev_fd);
        return SD_EIO;
    }
    return 0;
}

int sd_lab_leave(int prev_fd)
{
    int rc = setns(prev_fd, CLONE_NEWNET);
    close(prev_fd);
    return rc < 0 ? SD_EIO : 0;
}
