/*
 * eventlog.c - eve.json-shaped decision events (see eventlog.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "eventlog.h"
#include "json.h"
#include "report.h"

static void ts_iso(char *buf, size_t cap, uint64_t ns)
{
    time_t s = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%06u+0000", (unsigned)(ns % 1000000000u / 1000u));
}

static void addr(char *buf, size_t cap, int family, const uint8_t *a)
{
    char tmp[64];
    sd_report_endpoint(tmp, sizeof(tmp), family, a, 0);
    /* sd_report_endpoint writes "a.b.c.d:0" or "[v6]:0": keep the address. */
    char *colon = strrchr(tmp, ':');
    if (colon)
        *colon = 0;
    const char *s = tmp;
    size_t n = strlen(s);
    if (family == 6 && n >= 2) {
        s++;
        n -= 2;
    }
    snprintf(buf, cap, "%.*s", (int)n, s);
}

static void write_event(FILE *out, const struct sd_event *ev)
{
    const struct sd_flow_report *f = ev->flow;
    char ts[48], src[64], dst[64];
    static const char *const types[] = {"flow_start", "name", "alert", "flow", "action_end"};
    static const char *const name_types[] = {"tls", "http", "dns"};
    static const char *const ends[] = {"timeout", "evicted", "fin_rst", "shutdown"};
    ts_iso(ts, sizeof(ts), ev->ts_ns);
    addr(src, sizeof(src), f->family, f->caddr);
    addr(dst, sizeof(dst), f->family, f->saddr);
    const char *type = ev->type == SD_EV_NAME ? name_types[ev->name_kind % 3] : types[ev->type < SD_COUNTOF(types) ? ev->type : 0];
    fprintf(out,
            "{\"timestamp\":\"%s\",\"flow_id\":%" PRIu64 ",\"event_type\":\"%s\",\"src_ip\":\"%s\",\"src_port\":%u,"
            "\"dest_ip\":\"%s\",\"dest_port\":%u,\"proto\":\"%s\"",
            ts, f->seq, type, src, f->cport, dst, f->sport, f->proto == 6 ? "TCP" : "UDP");
    switch (ev->type) {
    case SD_EV_FLOW_OPEN: {
        static const char *const opened[] = {"unknown", "inside", "outside"};
        fprintf(out, ",\"flow_start\":{\"opened_by\":\"%s\"}", opened[f->opened_by % 3]);
        break;
    }
    case SD_EV_NAME: {
        static const char *const keys[] = {"sni", "hostname", "rrname"};
        fprintf(out, ",\"%s\":{\"%s\":", name_types[ev->name_kind % 3], keys[ev->name_kind % 3]);
        sd_json_bytes(out, ev->name.p, ev->name.n);
        fputc('}', out);
        break;
    }
    case SD_EV_RULE: {
        const char *trig = sd_trigger_name(f->trigger);
        fprintf(out, ",\"alert\":{\"action\":\"%s\",\"signature\":\"%s\",\"category\":\"%s\"}", ev->action, ev->rule,
                trig ? trig : "none");
        break;
    }
    case SD_EV_ACTION_END:
        fprintf(out, ",\"action_end\":{\"action\":\"%s\",\"signature\":\"%s\",\"reason\":\"%s\"}", ev->action,
                ev->rule, ev->reason);
        break;
    case SD_EV_RELEASE: {
        char start[48], end[48];
        ts_iso(start, sizeof(start), f->first_ns);
        ts_iso(end, sizeof(end), f->last_ns);
        fprintf(out,
                ",\"flow\":{\"pkts_toserver\":%" PRIu64 ",\"pkts_toclient\":%" PRIu64 ",\"bytes_toserver\":%" PRIu64
                ",\"bytes_toclient\":%" PRIu64 ",\"dropped_toserver\":%" PRIu64 ",\"dropped_toclient\":%" PRIu64
                ",\"start\":\"%s\",\"end\":\"%s\",\"reason\":\"%s\",\"action\":\"%s\",\"rule\":",
                f->packets[0], f->packets[1], f->bytes[0], f->bytes[1], f->dropped[0], f->dropped[1], start, end,
                ends[f->end % 4], f->action);
        if (f->rule)
            fprintf(out, "\"%s\"}", f->rule);
        else
            fputs("null}", out);
        break;
    }
    }
    fputs("}\n", out);
}

void sd_eventlog_write(void *arg, const struct sd_event *ev)
{
    FILE *out = arg;
    flockfile(out); /* one whole line at a time, whichever thread writes */
    write_event(out, ev);
    funlockfile(out);
}
