/*
 * report.c - per-flow reports: collected as the engine releases flows (in
 * any order), printed sorted by first packet, as JSON lines or a table.
 *
 * Each report is copied into one heap block (fixed part, then the names and
 * the explain trace), so the engine's views can die after the callback.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "report.h"

struct entry {
    struct sd_flow_report r;
    char rule[40];
    char action[12];
    /* names and trace follow */
};

struct sd_report {
    struct entry **v;
    size_t n, cap;
};

struct sd_report *sd_report_new(void)
{
    return calloc(1, sizeof(struct sd_report));
}

void sd_report_free(struct sd_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    free(r);
}

void sd_report_add(void *arg, const struct sd_flow_report *fr)
{
    struct sd_report *r = arg;
    size_t why = fr->why ? strlen(fr->why) + 1 : 0;
    size_t extra = fr->sni.n + fr->http_host.n + fr->dns_qname.n + 3 + why;
    struct entry *e = malloc(sizeof(*e) + extra);
    if (!e)
        return;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        /* An array of pointers: the element size is a pointer's. */
        struct entry **nv = realloc(r->v, cap * sizeof(*nv)); /* NOLINT(bugprone-sizeof-expression) */
        if (!nv) {
            free(e);
            return;
        }
        r->v = nv;
        r->cap = cap;
    }
    e->r = *fr;
    snprintf(e->rule, sizeof(e->rule), "%s", fr->rule ? fr->rule : "");
    snprintf(e->action, sizeof(e->action), "%s", fr->action ? fr->action : "pass");
    e->r.rule = fr->rule ? e->rule : NULL;
    e->r.action = e->action;
    char *p = (char *)(e + 1);
    struct sd_iov *dst[3] = {&e->r.sni, &e->r.http_host, &e->r.dns_qname};
    const struct sd_iov *src[3] = {&fr->sni, &fr->http_host, &fr->dns_qname};
    for (int i = 0; i < 3; i++) {
        if (src[i]->p) {
            memcpy(p, src[i]->p, src[i]->n);
            p[src[i]->n] = 0;
            *dst[i] = (struct sd_iov){(const uint8_t *)p, src[i]->n};
            p += src[i]->n + 1;
        }
    }
    if (why) {
        memcpy(p, fr->why, why);
        e->r.why = p;
    }
    r->v[r->n++] = e;
}

static int by_seq(const void *a, const void *b)
{
    const struct entry *x = *(struct entry *const *)a, *y = *(struct entry *const *)b;
    return x->r.seq < y->r.seq ? -1 : x->r.seq > y->r.seq;
}

void sd_report_endpoint(char *buf, size_t cap, int family, const uint8_t *addr, uint16_t port)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, a, sizeof(a));
    if (family == 6)
        snprintf(buf, cap, "[%s]:%u", a, port);
    else
        snprintf(buf, cap, "%s:%u", a, port);
}

/* JSON string: the name byte for byte, with control bytes, quotes,
 * backslashes and non-ASCII bytes escaped (\u00XX keeps the value exact). */
static void json_str(FILE *out, const struct sd_iov *v)
{
    if (v->p)
        sd_json_bytes(out, v->p, v->n);
    else
        fputs("null", out);
}

void sd_report_json_flow(FILE *out, const struct sd_flow_report *r)
{
    static const char *const opened[] = {"unknown", "inside", "outside"};
    char c[64], s[64];
    sd_report_endpoint(c, sizeof(c), r->family, r->caddr, r->cport);
    sd_report_endpoint(s, sizeof(s), r->family, r->saddr, r->sport);
    const char *trig = sd_trigger_name(r->trigger);
    fprintf(out, "{\"type\":\"flow\",\"proto\":\"%s\",\"client\":\"%s\",\"server\":\"%s\",\"opened_by\":\"%s\",",
            r->proto == 6 ? "tcp" : "udp", c, s, opened[r->opened_by < 3 ? r->opened_by : 0]);
    fputs("\"sni\":", out);
    json_str(out, &r->sni);
    fputs(",\"http_host\":", out);
    json_str(out, &r->http_host);
    fputs(",\"dns_qname\":", out);
    json_str(out, &r->dns_qname);
    fputs(",\"trigger\":", out);
    if (trig)
        fprintf(out, "\"%s\"", trig);
    else
        fputs("null", out);
    fputs(",\"rule\":", out);
    if (r->rule)
        fprintf(out, "\"%s\"", r->rule);
    else
        fputs("null", out);
    fprintf(out,
            ",\"action\":\"%s\",\"packets\":{\"c2s\":%llu,\"s2c\":%llu},\"bytes\":{\"c2s\":%llu,\"s2c\":%llu},"
            "\"dropped\":{\"c2s\":%llu,\"s2c\":%llu}}",
            r->action, (unsigned long long)r->packets[0], (unsigned long long)r->packets[1],
            (unsigned long long)r->bytes[0], (unsigned long long)r->bytes[1], (unsigned long long)r->dropped[0],
            (unsigned long long)r->dropped[1]);
}

struct totals {
    unsigned long long flows, packets, dropped, throttled, blocked, frozen;
};

static void sum(struct sd_report *r, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < r->n; i++) {
        const struct sd_flow_report *f = &r->v[i]->r;
        t->flows++;
        t->packets += f->packets[0] + f->packets[1];
        t->dropped += f->dropped[0] + f->dropped[1];
        if (!strcmp(f->action, "throttle"))
            t->throttled++;
        else if (!strcmp(f->action, "block"))
            t->blocked++;
        else if (!strcmp(f->action, "freeze"))
            t->frozen++;
    }
}

/* Sorts the flows by first packet. qsort is not called on an empty report:
 * its array is then NULL, which qsort's contract forbids even for 0 items. */
static void sort(struct sd_report *r)
{
    if (r->n > 1)
        qsort(r->v, r->n, sizeof(*r->v), by_seq); /* NOLINT(bugprone-sizeof-expression): pointers */
}

void sd_report_print_json(struct sd_report *r, FILE *out)
{
    sort(r);
    for (size_t i = 0; i < r->n; i++) {
        sd_report_json_flow(out, &r->v[i]->r);
        fputc('\n', out);
    }
    struct totals t;
    sum(r, &t);
    fprintf(out,
            "{\"type\":\"summary\",\"flows\":%llu,\"packets\":%llu,\"dropped\":%llu,\"throttled\":%llu,"
            "\"blocked\":%llu,\"frozen\":%llu}\n",
            t.flows, t.packets, t.dropped, t.throttled, t.blocked, t.frozen);
}

static void name_cell(char *buf, size_t cap, const struct sd_flow_report *f)
{
    const struct sd_iov *v = f->sni.p ? &f->sni : f->http_host.p ? &f->http_host : f->dns_qname.p ? &f->dns_qname : NULL;
    if (!v) {
        snprintf(buf, cap, "-");
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < v->n && j + 5 < cap; i++) {
        unsigned char c = v->p[i];
        if (c < 0x20 || c >= 0x7f)
            j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", c);
        else
            buf[j++] = (char)c;
    }
    buf[j] = 0;
}

void sd_report_print_table(struct sd_report *r, FILE *out, bool why)
{
    sort(r);
    fprintf(out, "%-4s %-5s %-26s %-26s %-8s %-28s %-10s %-9s %15s %13s\n", "#", "proto", "client", "server", "opened",
            "name", "rule", "action", "packets c2s/s2c", "dropped");
    for (size_t i = 0; i < r->n; i++) {
        const struct sd_flow_report *f = &r->v[i]->r;
        static const char *const opened[] = {"unknown", "inside", "outside"};
        char c[64], s[64], name[300], pk[40], dr[40];
        sd_report_endpoint(c, sizeof(c), f->family, f->caddr, f->cport);
        sd_report_endpoint(s, sizeof(s), f->family, f->saddr, f->sport);
        name_cell(name, sizeof(name), f);
        snprintf(pk, sizeof(pk), "%llu/%llu", (unsigned long long)f->packets[0], (unsigned long long)f->packets[1]);
        snprintf(dr, sizeof(dr), "%llu/%llu", (unsigned long long)f->dropped[0], (unsigned long long)f->dropped[1]);
        fprintf(out, "%-4zu %-5s %-26s %-26s %-8s %-28s %-10s %-9s %15s %13s\n", i + 1, f->proto == 6 ? "tcp" : "udp",
                c, s, opened[f->opened_by < 3 ? f->opened_by : 0], name, f->rule ? f->rule : "-", f->action, pk, dr);
        if (why && f->why)
            fputs(f->why, out);
    }
    struct totals t;
    sum(r, &t);
    fprintf(out, "\n%llu flows, %llu packets, %llu dropped; %llu throttled, %llu blocked, %llu frozen\n", t.flows,
            t.packets, t.dropped, t.throttled, t.blocked, t.frozen);
}
