/*
 * bpfpass.c - load, pin, fill and remove the bypass program and its map
 * (see bpfpass.h), with libbpf. The program's object file is compiled from
 * bpf/bypass.bpf.c at build time and embedded (sd_bypass_bpf_obj).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/bypass_key.h"
#include "bpfpass.h"
#include "mono.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

extern const unsigned char sd_bypass_bpf_obj[];
extern const size_t sd_bypass_bpf_len;

int sd_bpfpass_paths(uint16_t queue, char prog[SD_BPFPASS_PATH], char map[SD_BPFPASS_PATH])
{
    struct stat st;

    if (stat("/proc/self/ns/net", &st) < 0)
        return SD_EIO;
    snprintf(prog, SD_BPFPASS_PATH, "%s/net-%llu-q-%u-prog", SD_BPFPASS_DIR, (unsigned long long)st.st_ino, queue);
    snprintf(map, SD_BPFPASS_PATH, "%s/net-%llu-q-%u-map", SD_BPFPASS_DIR, (unsigned long long)st.st_ino, queue);
    return 0;
}

/* A bpf filesystem at SD_BPFPASS_DIR: 0, or -errno. */
static int mount_dir(void)
{
    struct statfs fs;

    if (statfs(SD_BPFPASS_DIR, &fs) == 0 && (unsigned long)fs.f_type == BPF_FS_MAGIC)
        return 0;
    mkdir("/run/slowdown", 0755);
    if (mkdir(SD_BPFPASS_DIR, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (mount("bpf", SD_BPFPASS_DIR, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
        return -errno;
    return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    (void)level;
    (void)fmt;
    (void)ap;
    return 0;
}

int sd_bpfpass_install(const char *prog, const char *map, uint32_t max, char *err, size_t errlen)
{
    struct bpf_object *obj = NULL;
    int rc = mount_dir();

    if (rc < 0) {
        snprintf(err, errlen, "cannot mount a bpf filesystem at %s: %s", SD_BPFPASS_DIR, strerror(-rc));
        return SD_EIO;
    }
    sd_bpfpass_remove(prog, map);
    if (!getenv("SD_BPF_DEBUG"))
        libbpf_set_print(silent);
    struct bpf_object_open_opts oo = {.sz = sizeof(oo), .object_name = "sd_bypass"}; /* LIBBPF_OPTS, spelled out */
    obj = bpf_object__open_mem(sd_bypass_bpf_obj, sd_bypass_bpf_len, &oo);
    const char *step = "open";
    rc = obj ? 0 : -errno;
    struct bpf_map *m = obj ? bpf_object__find_map_by_name(obj, "sd_bypass_flows") : NULL;
    struct bpf_program *p = obj ? bpf_object__find_program_by_name(obj, "sd_bypass") : NULL;
    if (rc == 0 && (!m || !p))
        rc = -ENOENT;
    if (rc == 0 && (rc = bpf_map__set_max_entries(m, max)) == 0) {
        step = "load";
        rc = bpf_object__load(obj);
    }
    if (rc == 0) {
        step = "pin";
        rc = bpf_map__pin(m, map);
        rc = rc ? rc : bpf_program__pin(p, prog);
    }
    if (rc < 0) {
        snprintf(err, errlen, "the bypass program (--bypass bpf): %s failed: %s%s", step, strerror(-rc),
                 rc == -EPERM ? " (needs CAP_BPF and CAP_NET_ADMIN)" : "");
        sd_bpfpass_remove(prog, map);
    }
    bpf_object__close(obj); /* the pins hold program and map */
    return rc < 0 ? SD_EIO : 0;
}

int sd_bpfpass_remove(const char *prog, const char *map)
{
    return (unlink(prog) == 0) + (unlink(map) == 0);
}

int sd_bpfpass_remove_netns(unsigned long long netns_ino)
{
    char prefix[48], path[SD_BPFPASS_PATH + 256];
    int n = 0;
    DIR *d = opendir(SD_BPFPASS_DIR);

    if (!d)
        return 0;
    snprintf(prefix, sizeof(prefix), "net-%llu-q-", netns_ino);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", SD_BPFPASS_DIR, de->d_name);
        n += unlink(path) == 0;
    }
    closedir(d);
    return n;
}

int sd_bpfpass_open(const char *map)
{
    int fd = bpf_obj_get(map);
    return fd < 0 ? SD_EIO : fd;
}

/* The key of the direction from (a, pa) to (b, pb). */
static void make_key(struct sd_bypass_key *k, const struct sd_nfq_tuple *t, const uint8_t *a, const uint8_t *b,
                     uint16_t pa, uint16_t pb)
{
    size_t n = t->family == 4 ? 4 : 16;
    memset(k, 0, sizeof(*k));
    memcpy(k->src, a, n);
    memcpy(k->dst, b, n);
    k->sport = htons(pa);
    k->dport = htons(pb);
    k->proto = t->proto;
    k->family = t->family;
}

int sd_bpfpass_set(int fd, const struct sd_nfq_tuple *t, bool add, uint64_t now_ns, uint32_t timeout_s)
{
    struct sd_bypass_key k[2];

    if ((t->family != 4 && t->family != 6) || (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP))
        return SD_EINVAL;
    make_key(&k[0], t, t->saddr, t->daddr, t->sport, t->dport);
    make_key(&k[1], t, t->daddr, t->saddr, t->dport, t->sport);
    /* The value, bypass.bpf.c's struct seen: last seen (CLOCK_MONOTONIC, as bpf_ktime_get_ns()), timeout. */
    uint64_t v[2] = {now_ns, (uint64_t)timeout_s * SD_NS_PER_S};
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        int r = add ? bpf_map_update_elem(fd, &k[i], v, BPF_ANY) : bpf_map_delete_elem(fd, &k[i]);
        if (r < 0 && !(r == -ENOENT && !add))
            rc = SD_EIO;
    }
    return rc;
}
