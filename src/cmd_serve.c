/*
 * cmd_serve.c - `slowdown serve`: the measurement server on the command
 * line. Options become a struct sd_serve_config (serve.h); SIGINT and
 * SIGTERM arrive through a signalfd that sd_serve_run polls; each finished
 * connection is one line on stderr.
 *
 * With --files DIR it is the lab's policy server instead (filesrv.h): the
 * files of DIR over plain HTTP, with ETags.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "filesrv.h"
#include "privs.h"
#include "serve.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown serve [OPTIONS]\n"
            "\n"
            "Measurement server: TLS (any SNI, a throw-away certificate) and plain TCP.\n"
            "Each connection sends bulk data, sinks, or echoes, as its request line asks:\n"
            "  GET /down?bytes=N&seconds=S   PUT /up?bytes=N   POST /echo   (HTTP/1.x form too)\n"
            "\n"
            "Options:\n"
            "  --listen ADDR       address to listen on (default :: = IPv6 and IPv4)\n"
            "  --port N            TLS port, or the plain port with --plain (default 443;\n"
            "                      0 picks a free port, see --ready-file)\n"
            "  --plain-port N      also accept plain TCP on port N\n"
            "  --tls | --plain     TLS on --port (default), or plain TCP only\n"
            "  --mode M            send, sink or echo: what a connection without a request\n"
            "                      line gets (default send)\n"
            "  --bytes N           at most N bytes per request and direction (k/m/g suffix;\n"
            "                      default 1g)\n"
            "  --seconds S         at most S seconds per connection (default 60)\n"
            "  --max-conns N       connections at once; more are closed (default 64)\n"
            "  --hello-first SNI   plain connections: send a TLS ClientHello for SNI first\n"
            "  --ready-file PATH   once listening, write \"tls PORT\" and \"plain PORT\" lines\n"
            "                      to PATH (for scripts)\n"
            "  --quiet             no line per connection\n"
            "  --files DIR         be a policy server instead: GET /NAME answers the file\n"
            "                      DIR/NAME over plain HTTP on --port (default 80), with an\n"
            "                      ETag (If-None-Match gets 304 Not Modified)\n"
            "  -h, --help          this help\n");
}

struct opts {
    struct sd_serve_config cfg;
    bool plain, quiet;
    uint64_t port, plain_port;
    bool has_plain_port, has_port;
    const char *ready_file, *files;
};

static void on_conn(void *arg, const struct sd_serve_report *r)
{
    (void)arg;
    fprintf(stderr, "serve: %s %s%s%s %s%s in=%llu out=%llu %.2fs %s\n", r->peer, r->tls ? "tls" : "plain",
            r->sni ? " sni=" : "", r->sni ? r->sni : "", sd_serve_mode_name(r->mode), r->request ? "" : " (default)",
            (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out, (double)r->duration_ns / 1e9,
            r->end);
}

static int parse_mode(const char *s, uint8_t *mode)
{
    static const char *const names[] = {"send", "sink", "echo"};
    for (unsigned i = 0; i < SD_COUNTOF(names); i++) {
        if (!strcmp(s, names[i])) {
            *mode = (uint8_t)i;
            return 0;
        }
    }
    return SD_EINVAL;
}

/* Returns 0, or an exit code (usage error, or 0 for --help) plus 1000. */
static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_LISTEN = 256, O_PORT, O_PLAIN_PORT, O_TLS, O_PLAIN, O_MODE, O_BYTES, O_SECONDS, O_MAXC, O_HELLO,
           O_READY, O_QUIET, O_FILES };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},   {"port", required_argument, NULL, O_PORT},
        {"plain-port", required_argument, NULL, O_PLAIN_PORT}, {"tls", no_argument, NULL, O_TLS},
        {"plain", no_argument, NULL, O_PLAIN},           {"mode", required_argument, NULL, O_MODE},
        {"bytes", required_argument, NULL, O_BYTES},     {"seconds", required_argument, NULL, O_SECONDS},
        {"max-conns", required_argument, NULL, O_MAXC},  {"hello-first", required_argument, NULL, O_HELLO},
        {"ready-file", required_argument, NULL, O_READY}, {"quiet", no_argument, NULL, O_QUIET},
        {"files", required_argument, NULL, O_FILES},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    int c;

    o->port = 443;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case O_LISTEN: o->cfg.listen = optarg; break;
        case O_PORT: if (sd_opt_u64(optarg, 65535, 0, &o->port) < 0) bad = "--port"; o->has_port = true; break;
        case O_FILES: o->files = optarg; break;
        case O_PLAIN_PORT:
            if (sd_opt_u64(optarg, 65535, 0, &o->plain_port) < 0)
                bad = "--plain-port";
            o->has_plain_port = true;
            break;
        case O_TLS: o->plain = false; break;
        case O_PLAIN: o->plain = true; break;
        case O_MODE: if (parse_mode(optarg, &o->cfg.mode) < 0) bad = "--mode"; break;
        case O_BYTES: if (sd_opt_u64(optarg, UINT64_MAX >> 1, 1, &o->cfg.max_bytes) < 0 || !o->cfg.max_bytes) bad = "--bytes"; break;
        case O_SECONDS:
            if (sd_opt_u64(optarg, 86400, 0, &v) < 0 || !v)
                bad = "--seconds";
            o->cfg.max_seconds = (uint32_t)v;
            break;
        case O_MAXC:
            if (sd_opt_u64(optarg, 100000, 0, &v) < 0 || !v)
                bad = "--max-conns";
            o->cfg.max_conns = (uint32_t)v;
            break;
        case O_HELLO: o->cfg.hello_first = optarg; break;
        case O_READY: o->ready_file = optarg; break;
        case O_QUIET: o->quiet = true; break;
        case 'h': usage(stdout); return 1000 + SD_EXIT_OK;
        default:
            fprintf(stderr, "slowdown serve: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 1000 + SD_EXIT_USAGE;
        }
        if (bad) {
            fprintf(stderr, "slowdown serve: bad value '%s' for %s\n", optarg, bad);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "slowdown serve: unexpected argument '%s'\n", argv[optind]);
        return 1000 + SD_EXIT_USAGE;
    }
    if (o->plain && o->has_plain_port) {
        fprintf(stderr, "slowdown serve: --plain-port goes with --tls (with --plain, use --port)\n");
        return 1000 + SD_EXIT_USAGE;
    }
    o->cfg.tls = !o->plain;
    o->cfg.plain = o->plain || o->has_plain_port;
    o->cfg.tls_port = (uint16_t)o->port;
    o->cfg.plain_port = (uint16_t)(o->plain ? o->port : o->plain_port);
    return 0;
}

static int write_ready(const char *path, const struct sd_serve *s)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "tls %u\nplain %u\n", sd_serve_port(s, true), sd_serve_port(s, false));
    return fclose(f);
}

/*
 * Once the listeners are bound the server needs no privilege at all (it
 * connects nowhere and runs nothing): every capability goes, from every set,
 * and no_new_privs is set, before the connection threads start.
 */
static int drop_privileges(void)
{
    char err[256];
    struct sd_privs_result res;
    if (sd_privs_drop(NULL, 0, 0, &res, err, sizeof(err)) < 0) {
        fprintf(stderr, "slowdown serve: %s\n", err);
        return -1;
    }
    return 0;
}

/* --files: the policy server. */
static int files_main(const struct opts *o, int sfd)
{
    char err[256];
    struct sd_filesrv *s = sd_filesrv_open(o->cfg.listen, (uint16_t)(o->has_port ? o->port : 80), o->files, err,
                                           sizeof(err));
    if (!s) {
        fprintf(stderr, "slowdown serve: %s\n", err);
        return SD_EXIT_ERR;
    }
    if (drop_privileges() < 0) {
        sd_filesrv_free(s);
        return SD_EXIT_ERR;
    }
    fprintf(stderr, "slowdown serve: files of %s on %s port %u\n", o->files, o->cfg.listen ? o->cfg.listen : "::",
            sd_filesrv_port(s));
    int rc = SD_EXIT_OK;
    FILE *f = o->ready_file ? fopen(o->ready_file, "w") : NULL;
    if (f)
        fprintf(f, "tls 0\nplain %u\n", sd_filesrv_port(s));
    if (o->ready_file && (!f || fclose(f) != 0)) {
        fprintf(stderr, "slowdown serve: cannot write %s\n", o->ready_file);
        rc = SD_EXIT_ERR;
    } else if (sd_filesrv_run(s, sfd) < 0) {
        rc = SD_EXIT_ERR;
    }
    sd_filesrv_free(s);
    return rc;
}

int sd_serve_main(int argc, char **argv)
{
    struct opts o;
    sigset_t set;
    char err[256];
    int rc;

    memset(&o, 0, sizeof(o));
    rc = parse(argc, argv, &o);
    if (rc)
        return rc - 1000;
    if (!o.quiet)
        o.cfg.on_conn = on_conn;
    /* OpenSSL writes to sockets with write(2): a closed peer must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before any thread: they inherit it */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    if (sfd < 0) {
        perror("slowdown serve: signalfd");
        return SD_EXIT_ERR;
    }
    if (o.files) {
        rc = files_main(&o, sfd);
        close(sfd);
        return rc;
    }
    struct sd_serve *s = sd_serve_open(&o.cfg, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "slowdown serve: %s\n", err);
        close(sfd);
        return SD_EXIT_ERR;
    }
    if (drop_privileges() < 0) {
        sd_serve_free(s);
        close(sfd);
        return SD_EXIT_ERR;
    }
    fprintf(stderr, "slowdown serve: listening on %s", o.cfg.listen ? o.cfg.listen : "::");
    if (o.cfg.tls)
        fprintf(stderr, ", TLS port %u", sd_serve_port(s, true));
    if (o.cfg.plain)
        fprintf(stderr, ", plain port %u", sd_serve_port(s, false));
    fprintf(stderr, "\n");
    if (o.ready_file && write_ready(o.ready_file, s) < 0) {
        fprintf(stderr, "slowdown serve: cannot write %s\n", o.ready_file);
        rc = SD_EXIT_ERR;
    } else {
        rc = sd_serve_run(s, sfd) < 0 ? SD_EXIT_ERR : SD_EXIT_OK;
    }
    sd_serve_free(s);
    close(sfd);
    return rc;
}
