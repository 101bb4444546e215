/*
 * labmgmt.c - the management network shared by several labs (labmgmt.h).
 *
 * Up:   mark dir -> `ip netns add` (inode recorded) -> bridge br0 with the
 *       centre's address -> [policy server: fork + setns + exec, ready file]
 * Join: claim host-N (O_EXCL) -> veth mgmt0 (censor) / m-<lab> (bridge port)
 *       -> address, links up
 * Down: signal what lives in the namespace -> `ip netns del` if the inode
 *       is ours -> mark dir removed
 *
 * The state file is two lines, "ino N" and "server_pid P", written before
 * each step that leaves something behind, so a set-up that dies half way
 * can still be taken down.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "labmgmt.h"
#include "mono.h"
#include "subproc.h"

enum { READY_WAIT_MS = 10000, STOP_WAIT_MS = 3000, FIRST_HOST = 2, LAST_HOST = 254 };

struct mgmt {
    char id[SD_LAB_ID_MAX];
    char ns[64], dir[PATH_MAX];
    ino_t ino;
    pid_t server_pid;
};

static void names(struct mgmt *m, const char *id)
{
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->ns, sizeof(m->ns), "sd-%s-mgmt", id);
    snprintf(m->dir, sizeof(m->dir), "%s/%s", SD_LAB_MGMT_DIR, id);
}

static ino_t ns_inode(const char *ns)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static int save(const struct mgmt *m)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/state", m->dir);
    snprintf(tmp, sizeof(tmp), "%s/state.tmp", m->dir);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return SD_EIO;
    fprintf(f, "ino %llu\nserver_pid %d\n", (unsigned long long)m->ino, (int)m->server_pid);
    return fclose(f) == 0 && rename(tmp, path) == 0 ? 0 : SD_EIO;
}

/* Loads the mark of |id|. 0 or SD_ENOENT. */
static int load(struct mgmt *m, const char *id)
{
    char path[PATH_MAX + 16], line[128];
    memset(m, 0, sizeof(*m));
    if (!sd_lab_id_ok(id))
        return SD_ENOENT;
    names(m, id);
    snprintf(path, sizeof(path), "%s/state", m->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        struct stat st;
        return stat(m->dir, &st) == 0 ? 0 : SD_ENOENT;
    }
    while (fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        unsigned long long v = strtoull(sp + 1, NULL, 10);
        if (!strcmp(line, "ino"))
            m->ino = (ino_t)v;
        else if (!strcmp(line, "server_pid"))
            m->server_pid = (pid_t)v;
    }
    fclose(f);
    return 0;
}

/* Runs a command; on failure writes it and its output to |err|. */
static int cmd(char *err, size_t errlen, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    int rc = sd_subproc_vcmd(err, errlen, arg0, ap);
    va_end(ap);
    return rc;
}

/* Starts the policy server in the namespace and waits until it listens. */
static int start_server(struct mgmt *m, const char *exe, const char *dir, char *err, size_t errlen)
{
    char nspath[PATH_MAX], log[PATH_MAX + 16], ready[PATH_MAX + 16], absdir[PATH_MAX];
    if (!realpath(dir, absdir)) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return SD_EINVAL;
    }
    snprintf(nspath, sizeof(nspath), "/var/run/netns/%s", m->ns);
    snprintf(log, sizeof(log), "%s/server.log", m->dir);
    snprintf(ready, sizeof(ready), "%s/server.ready", m->dir);
    int nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
        snprintf(err, errlen, "open %s: %s", nspath, strerror(errno));
        return SD_EIO;
    }
    pid_t pid = fork();
    if (pid == 0) {
        char *argv[] = {(char *)exe, "serve", "--files", absdir, "--listen", SD_LAB_MGMT_CENTRE, "--port", "80",
                        "--ready-file", ready, NULL};
        int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (lfd < 0 || nul < 0 || setsid() < 0 || setns(nsfd, CLONE_NEWNET) < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(lfd, 1);
        dup2(lfd, 2);
        execv(exe, argv);
        _exit(127);
    }
    close(nsfd);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return SD_EIO;
    }
    m->server_pid = pid;
    save(m);
    for (int waited = 0; waited < READY_WAIT_MS; waited += 10) {
        if (access(ready, F_OK) == 0)
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            snprintf(err, errlen, "the policy server exited during start-up (see %s)", log);
            return SD_EIO;
        }
        sd_sleep_ns(10 * SD_NS_PER_MS);
    }
    snprintf(err, errlen, "the policy server did not become ready");
    return SD_EIO;
}

static int build(struct mgmt *m, const struct sd_lab_mgmt_config *cfg, char *err, size_t errlen)
{
    char exe[PATH_MAX];
    int rc = cmd(err, errlen, "ip", "netns", "add", m->ns, (char *)NULL);
    m->ino = ns_inode(m->ns);
    save(m);
    if (rc)
        return rc;
    rc = cmd(err, errlen, "ip", "-n", m->ns, "link", "add", "br0", "type", "bridge", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", m->ns, "addr", "add", SD_LAB_MGMT_CENTRE "/24", "dev", "br0", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", m->ns, "link", "set", "lo", "up", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", m->ns, "link", "set", "br0", "up", (char *)NULL);
    if (rc || !cfg->serve_dir)
        return rc;
    if (cfg->exe)
        snprintf(exe, sizeof(exe), "%s", cfg->exe);
    else if (!realpath("/proc/self/exe", exe))
        return SD_EIO;
    return start_server(m, exe, cfg->serve_dir, err, errlen);
}

int sd_lab_mgmt_up(const struct sd_lab_mgmt_config *cfg, char *err, size_t errlen)
{
    struct mgmt m;
    memset(&m, 0, sizeof(m));
    err[0] = '\0';
    if (geteuid() != 0) {
        snprintf(err, errlen, "the lab needs root (network namespaces)");
        return SD_EPERM;
    }
    if (!sd_lab_id_ok(cfg->id)) {
        snprintf(err, errlen, "bad management network name '%s': 1-12 characters of a-z and 0-9", cfg->id);
        return SD_EINVAL;
    }
    names(&m, cfg->id);
    if (mkdir("/run/slowdown", 0755) < 0 && errno != EEXIST)
        return SD_EIO;
    if (mkdir(SD_LAB_MGMT_DIR, 0755) < 0 && errno != EEXIST)
        return SD_EIO;
    if (mkdir(m.dir, 0755) < 0) {
        snprintf(err, errlen, errno == EEXIST ? "management network '%s' exists already" : "cannot create %s",
                 errno == EEXIST ? cfg->id : m.dir);
        return errno == EEXIST ? SD_EEXIST : SD_EIO;
    }
    if (ns_inode(m.ns)) {
        rmdir(m.dir);
        snprintf(err, errlen, "namespace %s exists already and is not ours: left alone", m.ns);
        return SD_EEXIST;
    }
    int rc = build(&m, cfg, err, errlen);
    if (rc) {
        char ignored[256];
        sd_lab_mgmt_down(cfg->id, ignored, sizeof(ignored));
    }
    return rc;
}

int sd_lab_mgmt_down(const char *id, char *err, size_t errlen)
{
    struct mgmt m;
    int rc = 0;
    err[0] = '\0';
    if (load(&m, id) != 0) {
        snprintf(err, errlen, "no management network '%s': nothing touched", id);
        return SD_ENOENT;
    }
    if (!m.ino)
        m.ino = ns_inode(m.ns); /* a set-up that died before recording it */
    sd_subproc_stop_netns(&m.ino, 1, &m.server_pid, 1, STOP_WAIT_MS);
    ino_t now = ns_inode(m.ns);
    if (now && now != m.ino) {
        snprintf(err, errlen, "namespace %s is not the one this program created: left alone", m.ns);
        rc = SD_EIO;
    } else if (now && cmd(err, errlen, "ip", "netns", "del", m.ns, (char *)NULL) < 0) {
        rc = SD_EIO;
    }
    DIR *d = opendir(m.dir);
    struct dirent *de;
    char path[PATH_MAX + 300];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", m.dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(m.dir);
    return rc;
}

/* Claims the first free host number for |lab_id|; returns it, or SD_ERANGE. */
static int claim(const struct mgmt *m, const char *lab_id)
{
    char path[PATH_MAX + 16];
    for (int h = FIRST_HOST; h <= LAST_HOST; h++) {
        snprintf(path, sizeof(path), "%s/host-%d", m->dir, h);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            continue;
        ssize_t w = write(fd, lab_id, strlen(lab_id));
        close(fd);
        if (w == (ssize_t)strlen(lab_id))
            return h;
        unlink(path);
    }
    return SD_ERANGE;
}

int sd_lab_mgmt_attach(const char *id, const char *lab_id, const char *censor_ns, char *err, size_t errlen)
{
    struct mgmt m;
    char port[32], addr[32];
    if (load(&m, id) != 0 || !m.ino || ns_inode(m.ns) != m.ino) {
        snprintf(err, errlen, "no management network '%s' (slowdown lab mgmt up --name %s)", id, id);
        return SD_ENOENT;
    }
    int h = claim(&m, lab_id);
    if (h < 0) {
        snprintf(err, errlen, "management network '%s' is full", id);
        return h;
    }
    snprintf(port, sizeof(port), "m-%s", lab_id);
    snprintf(addr, sizeof(addr), "198.51.100.%d/24", h);
    int rc = cmd(err, errlen, "ip", "-n", censor_ns, "link", "add", "mgmt0", "type", "veth", "peer", "name", port,
                 "netns", m.ns, (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", censor_ns, "addr", "add", addr, "dev", "mgmt0", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", censor_ns, "link", "set", "mgmt0", "up", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", m.ns, "link", "set", port, "master", "br0", (char *)NULL);
    rc = rc ? rc : cmd(err, errlen, "ip", "-n", m.ns, "link", "set", port, "up", (char *)NULL);
    if (rc) {
        sd_lab_mgmt_detach(id, lab_id, h);
        return rc;
    }
    return h;
}

void sd_lab_mgmt_detach(const char *id, const char *lab_id, int host)
{
    char path[PATH_MAX + 64], who[SD_LAB_ID_MAX + 1] = {0};
    if (!sd_lab_id_ok(id) || host < FIRST_HOST || host > LAST_HOST)
        return;
    snprintf(path, sizeof(path), "%s/%s/host-%d", SD_LAB_MGMT_DIR, id, host);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t r = read(fd, who, sizeof(who) - 1);
    close(fd);
    if (r > 0 && strcmp(who, lab_id) == 0)
        unlink(path); /* only our own claim */
}

pid_t sd_lab_mgmt_server_pid(const char *id)
{
    struct mgmt m;
    if (load(&m, id) != 0 || m.server_pid <= 0 || kill(m.server_pid, 0) != 0)
        return 0;
    return m.server_pid;
}
