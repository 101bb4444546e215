/*
 * metrics.c - Prometheus text exposition and its HTTP listener (metrics.h).
 *
 * The format (text/plain; version=0.0.4) is lines of
 *
 *   # HELP name text
 *   # TYPE name counter|gauge
 *   name{label="value",...} 123
 *
 * with label values escaped (\\, \", \n). Counters end in _total. Each
 * family is written once with all its samples together, as the format asks.
 *
 * The listener is deliberately small: one thread, one connection at a time,
 * a request read within 2 s and at most 4 KiB, `Connection: close`. A
 * scrape every few seconds is its whole load; it binds to the address given
 * (loopback by default in the unit file), never to all addresses unasked.
 * What to answer is sd_metrics_route(), a function of the request head's
 * bytes alone, so that the fuzzer and the unit tests reach it without a
 * socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "central.h"
#include "inline.h"
#include "metrics.h"
#include "mono.h"
#include "policy.h"
#include "tconn.h"
#include "waitfd.h"

/* ---- the format ---- */

void sd_prom_reset(struct sd_prom *b)
{
    b->len = 0;
    b->oom = false;
    if (b->p)
        b->p[0] = '\0';
}

void sd_prom_free(struct sd_prom *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static bool grow(struct sd_prom *b, size_t need)
{
    if (b->len + need + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void sd_prom_printf(struct sd_prom *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom || !grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sd_prom_family(struct sd_prom *b, const char *name, const char *type, const char *help)
{
    sd_prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void escaped(struct sd_prom *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sd_prom_printf(b, "\\%c", *v);
        else if (*v == '\n')
            sd_prom_printf(b, "\\n");
        else
            sd_prom_printf(b, "%c", *v);
    }
}

static void sample_start(struct sd_prom *b, const char *name, const char *const *labels)
{
    sd_prom_printf(b, "%s", name);
    if (!labels || !labels[0])
        return;
    sd_prom_printf(b, "{");
    for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
        sd_prom_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
        escaped(b, labels[i + 1]);
        sd_prom_printf(b, "\"");
    }
    sd_prom_printf(b, "}");
}

void sd_prom_u64(struct sd_prom *b, const char *name, const char *const *labels, uint64_t v)
{
    sample_start(b, name, labels);
    sd_prom_printf(b, " %" PRIu64 "\n", v);
}

void sd_prom_f64(struct sd_prom *b, const char *name, const char *const *labels, double v)
{
    sample_start(b, name, labels);
    sd_prom_printf(b, " %.17g\n", v);
}

/* A family with one unlabelled sample. */
static void one(struct sd_prom *b, const char *name, const char *type, const char *help, uint64_t v)
{
    sd_prom_family(b, name, type, help);
    sd_prom_u64(b, name, NULL, v);
}

/* ---- /proc/net/netfilter/nfnetlink_queue ---- */

/* Reads up to |max| unsigned numbers separated by blanks from [p, end). Returns how many. */
static int numbers(const char *p, const char *end, unsigned long long *v, int max)
{
    int n = 0;
    while (n < max) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end || *p < '0' || *p > '9')
            break;
        unsigned long long x = 0;
        while (p < end && *p >= '0' && *p <= '9')
            x = x * 10 + (unsigned long long)(*p++ - '0');
        v[n++] = x;
    }
    return n;
}

size_t sd_metrics_parse_nfqueue(const char *p, const char *end, uint16_t first, size_t n, struct sd_queue_stats *out)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        out[i].queue = (uint16_t)(first + i);
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol ? eol : end;
        unsigned long long f[9];
        /* queue portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1 */
        if (numbers(p, le, f, 9) >= 7 && f[0] >= first && f[0] < (unsigned long long)first + n) {
            struct sd_queue_stats *q = &out[f[0] - first];
            q->waiting = (uint32_t)f[2];
            q->dropped = f[5];
            q->user_dropped = f[6];
            found++;
        }
        p = eol ? eol + 1 : end;
    }
    return found;
}

/* ---- the exposition of `slowdown run` ---- */

static void render_rules(struct sd_prom *b, const struct sd_metrics_in *in)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } fams[] = {
        {"slowdown_rule_packets_total", "Packets of flows under each rule (rule=\"\": under none).",
         offsetof(struct sd_rule_stats, packets)},
        {"slowdown_rule_bytes_total", "IP bytes of those packets.", offsetof(struct sd_rule_stats, bytes)},
        {"slowdown_rule_dropped_total", "Packets dropped (or replaced by an RST) under each rule.",
         offsetof(struct sd_rule_stats, dropped)},
        {"slowdown_rule_flows_total", "Flows each rule fired on.", offsetof(struct sd_rule_stats, flows)},
    };
    for (size_t f = 0; f < SD_COUNTOF(fams); f++) {
        sd_prom_family(b, fams[f].name, "counter", fams[f].help);
        for (size_t i = 0; i < in->n_rules; i++) {
            const struct sd_inline_rule *r = &in->rules[i];
            if (f == 3 && !r->name[0])
                continue; /* flows are counted per rule that fired */
            const char *labels[] = {"rule", r->name, "action", sd_action_kind_name(r->action), NULL};
            uint64_t v;
            memcpy(&v, (const uint8_t *)&r->st + fams[f].off, sizeof(v));
            sd_prom_u64(b, fams[f].name, labels, v);
        }
    }
}

static void render_queues(struct sd_prom *b, const struct sd_metrics_in *in)
{
    static const char *const names[] = {"slowdown_queue_dropped_total", "slowdown_queue_user_dropped_total",
                                        "slowdown_queue_waiting"};
    static const char *const helps[] = {
        "Packets the kernel could not queue because the queue was full (forwarded unseen when fail-open).",
        "Packets lost because the netlink socket was full.", "Packets waiting in the kernel queue now."};
    for (int k = 0; k < 3; k++) {
        sd_prom_family(b, names[k], k == 2 ? "gauge" : "counter", helps[k]);
        for (size_t i = 0; i < in->n_queues; i++) {
            const struct sd_queue_stats *q = &in->queues[i];
            char num[8];
            snprintf(num, sizeof(num), "%u", q->queue);
            const char *labels[] = {"queue", num, NULL};
            sd_prom_u64(b, names[k], labels, k == 0 ? q->dropped : k == 1 ? q->user_dropped : q->waiting);
        }
    }
}

static void render_engine(struct sd_prom *b, const struct sd_inline_stats *s)
{
    const struct sd_engine_stats *e = &s->engine;
    sd_prom_family(b, "slowdown_verdicts_total", "counter", "Queue verdicts, by what the engine decided.");
    static const char *const vk[] = {"accept", "drop", "replace", "hold"};
    const uint64_t vv[] = {s->accepted, s->dropped, s->replaced, s->held};
    for (int i = 0; i < 4; i++)
        sd_prom_u64(b, "slowdown_verdicts_total", (const char *const[]){"verdict", vk[i], NULL}, vv[i]);
    sd_prom_family(b, "slowdown_names_parsed_total", "counter", "Names found by inspection, by kind.");
    static const char *const nk[] = {"sni", "http_host", "dns_qname"};
    for (int i = 0; i < 3; i++)
        sd_prom_u64(b, "slowdown_names_parsed_total", (const char *const[]){"kind", nk[i], NULL}, e->names[i]);
    sd_prom_family(b, "slowdown_inspections_total", "counter",
                   "Inspections that ended, by outcome (rule: a rule fired; none: gave up or matched nothing).");
    sd_prom_u64(b, "slowdown_inspections_total", (const char *const[]){"outcome", "rule", NULL}, e->inspect_rule);
    sd_prom_u64(b, "slowdown_inspections_total", (const char *const[]){"outcome", "none", NULL}, e->inspect_none);
    one(b, "slowdown_triggers_total", "counter", "Flows put under an action.", e->triggers);
    one(b, "slowdown_reasm_exhausted_total", "counter", "Times no reassembly buffer was free.", e->reasm_exhausted);
    one(b, "slowdown_frag_exhausted_total", "counter", "Fragments not held for want of room.", e->frag_exhausted);
    one(b, "slowdown_flows_created_total", "counter", "Flows created.", e->flows_created);
    one(b, "slowdown_flows_active", "gauge", "Flows in the flow tables now.", e->flows_active);
    one(b, "slowdown_flow_table_capacity", "gauge", "Flow table slots, summed over the workers.", e->flow_capacity);
    one(b, "slowdown_flows_evicted_total", "counter", "Flows evicted from a full table.", e->flows_evicted);
    one(b, "slowdown_flows_expired_total", "counter", "Flows released after their idle timeout.", e->flows_expired);
}

static void render_io(struct sd_prom *b, const struct sd_inline_stats *s)
{
    one(b, "slowdown_packets_total", "counter", "Packets received from the queues.", s->nfq.packets);
    one(b, "slowdown_socket_overflows_total", "counter", "Receive buffer overflows of the queue sockets (ENOBUFS).",
        s->nfq.enobufs);
    one(b, "slowdown_released_total", "counter", "Held fragments sent on.", s->released);
    one(b, "slowdown_decode_errors_total", "counter", "Packets the decoder refused (accepted unseen).",
        s->decode_errors);
    one(b, "slowdown_io_errors_total", "counter", "Failed receives or verdict sends.", s->io_errors);
    sd_prom_family(b, "slowdown_conntrack_marks_total", "counter", "Conntrack marks set, by flow state.");
    sd_prom_u64(b, "slowdown_conntrack_marks_total", (const char *const[]){"state", "action", NULL},
                s->ct_marks - s->settled_marks);
    sd_prom_u64(b, "slowdown_conntrack_marks_total", (const char *const[]){"state", "settled", NULL},
                s->settled_marks);
    one(b, "slowdown_conntrack_mark_errors_total", "counter", "Conntrack marks the kernel refused.", s->ct_errors);
}

static void render_sources(struct sd_prom *b, const struct sd_metrics_in *in)
{
    bool stale = false;
    sd_prom_family(b, "slowdown_policy_source_up", "gauge",
                   "1 when the last fetch of a central policy source got an answer.");
    for (size_t i = 0; i < in->n_sources; i++) {
        sd_prom_u64(b, "slowdown_policy_source_up", (const char *const[]){"url", in->sources[i].url, NULL},
                    in->sources[i].up);
        stale |= !in->sources[i].up;
    }
    sd_prom_family(b, "slowdown_policy_source_fetches_total", "counter", "Fetches of each source, by result.");
    for (size_t i = 0; i < in->n_sources; i++) {
        const struct sd_central_status *c = &in->sources[i];
        static const char *const rk[] = {"ok", "not_modified", "error"};
        const uint64_t rv[] = {c->fetch_ok, c->fetch_not_modified, c->fetch_errors};
        for (int k = 0; k < 3; k++)
            sd_prom_u64(b, "slowdown_policy_source_fetches_total",
                        (const char *const[]){"url", c->url, "result", rk[k], NULL}, rv[k]);
    }
    sd_prom_family(b, "slowdown_policy_source_invalid_total", "counter",
                   "Fetched texts refused because the policy did not validate.");
    for (size_t i = 0; i < in->n_sources; i++)
        sd_prom_u64(b, "slowdown_policy_source_invalid_total",
                    (const char *const[]){"url", in->sources[i].url, NULL}, in->sources[i].invalid);
    sd_prom_family(b, "slowdown_policy_source_last_success_timestamp_seconds", "gauge",
                   "Unix time of the last answered fetch (0: never).");
    for (size_t i = 0; i < in->n_sources; i++)
        sd_prom_f64(b, "slowdown_policy_source_last_success_timestamp_seconds",
                    (const char *const[]){"url", in->sources[i].url, NULL}, in->sources[i].last_success);
    one(b, "slowdown_policy_stale", "gauge",
        "1 when a central source cannot be reached and the last good policy stays in force.", stale);
}

void sd_metrics_render(struct sd_prom *b, const struct sd_metrics_in *in)
{
    sd_prom_family(b, "slowdown_build_info", "gauge", "Version of the running censor.");
    sd_prom_u64(b, "slowdown_build_info", (const char *const[]){"version", SD_VERSION, NULL}, 1);
    sd_prom_family(b, "slowdown_start_time_seconds", "gauge", "Unix time the censor started.");
    sd_prom_f64(b, "slowdown_start_time_seconds", NULL, in->start_time);
    render_io(b, in->st);
    render_engine(b, in->st);
    render_rules(b, in);
    render_queues(b, in);
    sd_prom_family(b, "slowdown_policy_info", "gauge", "The policy in force.");
    sd_prom_u64(b, "slowdown_policy_info", (const char *const[]){"name", in->policy_name ? in->policy_name : "", NULL},
                1);
    one(b, "slowdown_policy_generation", "gauge", "1 at start, +1 for each policy put in force.",
        in->policy_generation);
    sd_prom_family(b, "slowdown_policy_loaded_timestamp_seconds", "gauge", "Unix time the policy was put in force.");
    sd_prom_f64(b, "slowdown_policy_loaded_timestamp_seconds", NULL, in->policy_loaded_at);
    sd_prom_family(b, "slowdown_policy_reloads_total", "counter", "New policies put in force, or refused.");
    sd_prom_u64(b, "slowdown_policy_reloads_total", (const char *const[]){"result", "ok", NULL}, in->reloads_ok);
    sd_prom_u64(b, "slowdown_policy_reloads_total", (const char *const[]){"result", "failed", NULL},
                in->reloads_failed);
    render_sources(b, in);
}

/* ---- the listener ---- */

enum { REQ_MAX = 4096, REQ_WAIT_MS = 2000 };

struct sd_metrics_server {
    int fd, stop_fd;
    uint16_t port;
    pthread_t tid;
    sd_metrics_collect_fn collect;
    void *arg;
    struct sd_prom body;
};

int sd_metrics_split_addr(const char *text, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon, *h = text;
    size_t hn;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':')
            return SD_EINVAL;
        h = text + 1;
        hn = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            return SD_EINVAL; /* an IPv6 address needs brackets */
        hn = (size_t)(colon - text);
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (hn == 0 || hn >= hostlen || !colon[1] || *end || errno || p > 65535)
        return SD_EINVAL;
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (uint16_t)p;
    return 0;
}

enum sd_metrics_route sd_metrics_route(const char *req, bool *head_only)
{
    const char *path = sd_tconn_get_path(req, head_only);
    if (!path)
        return SD_METRICS_BAD_METHOD;
    if (!strncmp(path, "/metrics ", 9) || !strncmp(path, "/metrics?", 9))
        return SD_METRICS_EXPOSITION;
    if (!strncmp(path, "/ ", 2))
        return SD_METRICS_INDEX;
    return SD_METRICS_NOT_FOUND;
}

static void answer(struct sd_metrics_server *s, int fd)
{
    char req[REQ_MAX], head[256];
    bool head_only;
    if (sd_tconn_read_head(fd, req, sizeof(req), sd_mono_ns() + (uint64_t)REQ_WAIT_MS * SD_NS_PER_MS) < 0)
        return;
    enum sd_metrics_route r = sd_metrics_route(req, &head_only);
    const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
    static const char index_page[] = "slowdown run: metrics at /metrics\n";
    static const char not_found[] = "not found\n";
    const char *body;
    size_t len;
    if (r == SD_METRICS_EXPOSITION) {
        sd_prom_reset(&s->body);
        s->collect(s->arg, &s->body);
        body = s->body.p ? s->body.p : "";
        len = s->body.len;
    } else if (r == SD_METRICS_INDEX) {
        type = "text/plain; charset=utf-8";
        body = index_page;
        len = sizeof(index_page) - 1;
    } else {
        status = r == SD_METRICS_NOT_FOUND ? "404 Not Found" : "405 Method Not Allowed";
        type = "text/plain; charset=utf-8";
        body = not_found;
        len = sizeof(not_found) - 1;
    }
    int hn = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n", status, type, len);
    struct sd_tconn c = {.fd = fd};
    uint64_t deadline = sd_mono_ns() + 10ULL * SD_NS_PER_S;
    if (sd_tconn_write_all(&c, (const uint8_t *)head, (size_t)hn, deadline) == 0 && !head_only)
        sd_tconn_write_all(&c, (const uint8_t *)body, len, deadline);
}

static void *serve_main(void *arg)
{
    struct sd_metrics_server *s = arg;
    for (;;) {
        int w = sd_wait_in(s->fd, s->stop_fd, -1);
        if (w <= SD_WAIT_STOP)
            break;
        if (w != SD_WAIT_READY)
            continue;
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            continue;
        answer(s, c);
        close(c);
    }
    return NULL;
}

static int listen_on(const char *addr, uint16_t *port_out, char *err, size_t errlen)
{
    char host[64];
    uint16_t port;
    struct sockaddr_storage ss;
    socklen_t sl;
    int one_ = 1;

    if (sd_metrics_split_addr(addr, host, sizeof(host), &port) < 0 || sd_tconn_sockaddr(host, port, &ss, &sl) < 0) {
        snprintf(err, errlen, "bad metrics address '%s' (use ADDR:PORT, e.g. 127.0.0.1:9469 or [::1]:9469)", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one_, sizeof(one_)) < 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

struct sd_metrics_server *sd_metrics_server_start(const char *addr, sd_metrics_collect_fn collect, void *arg,
                                                  char *err, size_t errlen)
{
    struct sd_metrics_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->collect = collect;
    s->arg = arg;
    s->stop_fd = -1;
    s->fd = listen_on(addr, &s->port, err, errlen);
    if (s->fd < 0) {
        free(s);
        return NULL;
    }
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (s->stop_fd < 0 || pthread_create(&s->tid, NULL, serve_main, s) != 0) {
        snprintf(err, errlen, "cannot start the metrics thread");
        if (s->stop_fd >= 0)
            close(s->stop_fd);
        close(s->fd);
        free(s);
        return NULL;
    }
    return s;
}

uint16_t sd_metrics_server_port(const struct sd_metrics_server *s)
{
    return s->port;
}

void sd_metrics_server_stop(struct sd_metrics_server *s)
{
    uint64_t one_ = 1;
    if (!s)
        return;
    ssize_t w = write(s->stop_fd, &one_, sizeof(one_));
    (void)w;
    pthread_join(s->tid, NULL);
    close(s->stop_fd);
    close(s->fd);
    sd_prom_free(&s->body);
    free(s);
}
