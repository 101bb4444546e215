/*
 * cmd_detect.c - `slowdown detect`: the detector on the command line.
 *
 *   options -> [enter the lab's client namespace] -> per name:
 *   sd_detect_run (detect.c) -> readable report or JSON lines -> [SVG plot]
 *   -> [trigger localisation] -> [hop localisation]
 *
 * The verdicts come from detect.c; this file only turns them into text.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmdopt.h"
#include "detect.h"
#include "json.h"
#include "lab.h"
#include "locate.h"
#include "mono.h"
#include "svg.h"

enum { MAX_NAMES = 64 };

struct opts {
    struct sd_detect_config cfg;
    const char *lab, *svg;
    bool json, series, trigger;
    int hops;
    const char *names[MAX_NAMES];
    int n_names;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: slowdown detect [OPTIONS] --server ADDR NAME...\n"
            "       slowdown detect [OPTIONS] --lab ID NAME...\n"
            "\n"
            "Measures whether the path to a slowdown serve throttles or blocks NAME: three\n"
            "connections at once in each direction, A (TLS, SNI NAME), B (TLS, an innocuous\n"
            "name of the same length) and C (A's ClientHello and request, every byte\n"
            "inverted, on the plain port); the steady goodput after a warm-up is compared\n"
            "(ratio and KS test) and its shape tells policing from shaping and congestion.\n"
            "Verdicts: throttled, blocked, not_throttled, inconclusive (see slowdown-detect(1)).\n"
            "\n"
            "  --server ADDR      the slowdown serve (numeric IPv4 or IPv6)\n"
            "  --lab ID           measure from the client namespace of lab ID (server: the lab's)\n"
            "  --port N           its TLS port (default 443)\n"
            "  --plain-port N     its plain port, for control C (default 80)\n"
            "  --no-inverted      leave control C out\n"
            "  --control NAME     B's name (default: made up, same length and shape)\n"
            "  --seconds S        transfer length of each flow (default 12)\n"
            "  --warmup S         left out at the start: a burst allowance (default 3)\n"
            "  --down | --up      one direction only (default both)\n"
            "  --max-mbit N       cap every flow at N Mbit/s (default 200; 0: no cap)\n"
            "  --no-prime         no 1 s warm-up connection (as B) before measuring\n"
            "  --bind ADDR        source address\n"
            "  --seed N           letters of the made-up control\n"
            "  --json             one JSON line per name and direction\n"
            "  --series           with --json, the goodput series too (type \"series\")\n"
            "  --svg FILE         plot goodput over time for A, B, C (several names: FILE-NAME.svg)\n"
            "  --trigger          then find which bytes of the ClientHello the censor needs\n"
            "                     (probes on the plain port with parts inverted; ~10-30 s more)\n"
            "  --hops N           then find the censor's hop: the ClientHello injected with\n"
            "                     TTL 1..N on fresh connections (IPv4, root; ~2 s more)\n");
}

enum { O_SERVER = 256, O_LAB, O_PORT, O_PPORT, O_NOINV, O_CONTROL, O_SECONDS, O_WARMUP, O_DOWN, O_UP, O_BIND,
       O_SEED, O_JSON, O_SERIES, O_SVG, O_TRIGGER, O_HOPS, O_MAXMBIT, O_NOPRIME };

/* One option with its value |arg|. Returns NULL, or what was bad about it. */
static const char *option(int ch, const char *arg, struct opts *o)
{
    struct sd_detect_config *c = &o->cfg;
    uint64_t v;

    switch (ch) {
    case O_SERVER: c->addr = arg; break;
    case O_LAB: o->lab = arg; break;
    case O_PORT:
    case O_PPORT:
        if (sd_opt_u64(arg, 65535, 0, &v) < 0 || v == 0)
            return ch == O_PORT ? "--port" : "--plain-port";
        if (ch == O_PORT)
            c->tls_port = (uint16_t)v;
        else
            c->plain_port = (uint16_t)v;
        break;
    case O_NOINV: c->no_inverted = true; break;
    case O_CONTROL: c->control = arg; break;
    case O_SECONDS:
        if (sd_opt_seconds(arg, &c->seconds_ns) < 0 || c->seconds_ns < 2ull * SD_NS_PER_S ||
            c->seconds_ns > 300ull * SD_NS_PER_S)
            return "--seconds (2 to 300)";
        break;
    case O_WARMUP:
        if (sd_opt_seconds(arg, &c->warmup_ns) < 0 || c->warmup_ns > 60ull * SD_NS_PER_S)
            return "--warmup (0 to 60)";
        if (c->warmup_ns == 0)
            c->warmup_ns = 1; /* 0 means the default: 1 ns means none */
        break;
    case O_DOWN: c->down = true; break;
    case O_UP: c->up = true; break;
    case O_BIND: c->bind_addr = arg; break;
    case O_SEED:
        if (sd_opt_u64(arg, UINT64_MAX, 0, &c->seed) < 0)
            return "--seed";
        break;
    case O_JSON: o->json = true; break;
    case O_SERIES: o->series = true; break;
    case O_SVG: o->svg = arg; break;
    case O_TRIGGER: o->trigger = true; break;
    case O_HOPS:
        if (sd_opt_u64(arg, SD_LOCATE_TTL_MAX, 0, &v) < 0 || v == 0)
            return "--hops (1 to 32)";
        o->hops = (int)v;
        break;
    case O_NOPRIME: c->no_prime = true; break;
    case O_MAXMBIT:
        if (sd_opt_u64(arg, 1000000, 0, &v) < 0)
            return "--max-mbit (0 to 1000000)";
        c->max_kbps = v ? v * 1000 : SD_DETECT_UNCAPPED;
        break;
    }
    return NULL;
}

/* The options together: server, names, warm-up. 0 or 1000 + an exit status. */
static int check(struct opts *o)
{
    struct sd_detect_config *c = &o->cfg;
    uint8_t a[16];

    if (!o->n_names || (!c->addr && !o->lab)) {
        fprintf(stderr, "slowdown detect: needs --server ADDR (or --lab ID) and at least one NAME (see --help)\n");
        return 1000 + SD_EXIT_USAGE;
    }
    if (c->seconds_ns && c->warmup_ns > 1 && c->warmup_ns * 2 > c->seconds_ns) {
        fprintf(stderr, "slowdown detect: --warmup must be at most half of --seconds\n");
        return 1000 + SD_EXIT_USAGE;
    }
    if (o->lab && !c->addr)
        c->addr = SD_LAB_SERVER4;
    if (inet_pton(AF_INET, c->addr, a) != 1 && inet_pton(AF_INET6, c->addr, a) != 1) {
        fprintf(stderr, "slowdown detect: bad server address '%s' (a numeric IPv4 or IPv6 address)\n", c->addr);
        return 1000 + SD_EXIT_USAGE;
    }
    for (int i = 0; i < o->n_names; i++) {
        size_t n = strlen(o->names[i]);
        bool ok = n > 0 && n <= SD_DETECT_NAME_MAX;
        for (const char *p = o->names[i]; ok && *p; p++)
            ok = (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f;
        if (!ok) {
            fprintf(stderr, "slowdown detect: bad name '%s' (1 to %d printable characters)\n", o->names[i],
                    SD_DETECT_NAME_MAX);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"server", 1, NULL, O_SERVER},   {"lab", 1, NULL, O_LAB},         {"port", 1, NULL, O_PORT},
        {"plain-port", 1, NULL, O_PPORT}, {"no-inverted", 0, NULL, O_NOINV}, {"control", 1, NULL, O_CONTROL},
        {"seconds", 1, NULL, O_SECONDS}, {"warmup", 1, NULL, O_WARMUP},   {"down", 0, NULL, O_DOWN},
        {"up", 0, NULL, O_UP},           {"bind", 1, NULL, O_BIND},       {"seed", 1, NULL, O_SEED},
        {"json", 0, NULL, O_JSON},       {"series", 0, NULL, O_SERIES},   {"svg", 1, NULL, O_SVG},
        {"trigger", 0, NULL, O_TRIGGER}, {"hops", 1, NULL, O_HOPS},       {"max-mbit", 1, NULL, O_MAXMBIT},
        {"no-prime", 0, NULL, O_NOPRIME}, {"help", 0, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int ch;

    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1000 + SD_EXIT_OK;
        }
        if (ch < O_SERVER) {
            fprintf(stderr, "slowdown detect: unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
            return 1000 + SD_EXIT_USAGE;
        }
        const char *bad = option(ch, optarg, o);
        if (bad) {
            fprintf(stderr, "slowdown detect: bad value '%s' for %s\n", optarg, bad);
            return 1000 + SD_EXIT_USAGE;
        }
    }
    for (; optind < argc; optind++) {
        if (o->n_names == MAX_NAMES) {
            fprintf(stderr, "slowdown detect: at most %d names\n", MAX_NAMES);
            return 1000 + SD_EXIT_USAGE;
        }
        o->names[o->n_names++] = argv[optind];
    }
    return check(o);
}

/* ---- output ---- */

static void json_num(const char *key, double v, bool valid)
{
    if (valid && isfinite(v))
        printf(",\"%s\":%.6g", key, v);
    else
        printf(",\"%s\":null", key);
}

static void json_flow(const char *key, const struct sd_detect_flow *f)
{
    static const char *const stages[] = {"connect", "handshake", "transfer"};
    const char *fail = sd_detect_kind_name(f->fail);

    printf(",\"%s\":{\"kbps\":%.1f,\"bytes\":%llu,\"end\":\"%s\",\"stage\":\"%s\",\"failure\":", key, f->st.kbps,
           (unsigned long long)f->r.bytes, sd_fetch_end_name(f->r.end), stages[f->r.stage % 3]);
    if (fail)
        printf("\"%s\"", fail);
    else
        printf("null");
    printf(",\"connect_ms\":%.1f,\"handshake_ms\":%.1f", (double)f->r.connect_ns / 1e6, (double)f->r.handshake_ns / 1e6);
    printf(",\"mechanism\":\"%s\",\"cv\":%.3f,\"silences\":%u,\"silence_s\":%.2f,\"rtt_base_ms\":%.2f,"
           "\"rtt_ms\":%.2f",
           sd_stats_mechanism_name(f->mech), f->st.cv, f->st.silences, f->st.silence_s, f->st.rtt_base_ms,
           f->st.rtt_p50_ms);
    json_num("loss", f->st.loss_frac, f->st.loss_frac >= 0);
    printf("}");
}

static void print_json(const struct sd_detect_result *res, const struct sd_detect_dir *d)
{
    const struct sd_detect_flow *a = &d->f[SD_DETECT_A];
    bool thr = d->verdict == SD_VERDICT_THROTTLED;
    const char *kind = sd_detect_kind_name(d->kind), *scope = sd_detect_scope_name(d->scope);

    printf("{\"type\":\"measurement\",\"name\":");
    sd_json_str(stdout, res->name);
    printf(",\"direction\":\"%s\",\"kbps\":%.1f,\"control_kbps\":%.1f", d->dir == SD_FETCH_UP ? "up" : "down", d->kbps,
           d->control_kbps);
    json_num("ratio", d->ratio, d->ratio >= 0);
    printf(",\"verdict\":\"%s\"", sd_detect_verdict_name(d->verdict));
    json_num("rate_estimate_kbps", d->rate_estimate_kbps, thr);
    printf(",\"duration_s\":%.2f,\"kind\":", res->duration_s);
    if (kind)
        printf("\"%s\"", kind);
    else
        printf("null");
    printf(",\"scope\":");
    if (scope)
        printf("\"%s\"", scope);
    else
        printf("null");
    printf(",\"control\":");
    sd_json_str(stdout, res->control);
    json_num("inverted_kbps", d->inverted_kbps, d->f[SD_DETECT_C].used);
    json_num("ratio_inverted", d->ratio_inverted, d->ratio_inverted >= 0);
    json_num("ks_d", d->ks.d_lt, d->ratio >= 0);
    json_num("ks_p", d->ks.p_lt, d->ratio >= 0);
    if (d->verdict == SD_VERDICT_BLOCKED)
        printf(",\"blocked_after_bytes\":%llu", (unsigned long long)a->fail_bytes);
    json_flow("a", a);
    json_flow("b", &d->f[SD_DETECT_B]);
    if (d->f[SD_DETECT_C].used)
        json_flow("c", &d->f[SD_DETECT_C]);
    printf(",\"evidence\":");
    sd_json_str(stdout, d->evidence);
    printf("}\n");
}

/* Goodput per window of |ms| over the whole transfer, as a JSON array. */
static void json_series_of(const char *key, const struct sd_detect_flow *f, uint64_t bin_ns, uint32_t ms)
{
    uint64_t per = SD_MAX((uint64_t)ms * SD_NS_PER_MS / bin_ns, (uint64_t)1);

    printf(",\"%s\":[", key);
    for (uint64_t i = 0; i + per <= f->n; i += per) {
        uint64_t sum = 0;
        for (uint64_t j = i; j < i + per; j++)
            sum += f->bins[j];
        printf("%s%.1f", i ? "," : "", (double)sum * 8.0 / ((double)(per * bin_ns) / 1e9) / 1000.0);
    }
    printf("]");
}

static void print_series(const struct sd_detect_result *res, const struct sd_detect_dir *d)
{
    static const char *const keys[SD_DETECT_ROLES] = {"a", "b", "c"};

    printf("{\"type\":\"series\",\"name\":");
    sd_json_str(stdout, res->name);
    printf(",\"direction\":\"%s\",\"interval_s\":%.3f", d->dir == SD_FETCH_UP ? "up" : "down",
           SD_STATS_KS_WINDOW_MS / 1000.0);
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        if (d->f[k].used)
            json_series_of(keys[k], &d->f[k], res->bin_ns, SD_STATS_KS_WINDOW_MS);
    }
    printf("}\n");
}

static void print_flow_line(const char *role, const char *label, const struct sd_detect_flow *f)
{
    const char *fail = sd_detect_kind_name(f->fail);

    printf("  %s %-28s %14.1f kbit/s  %-9s %s", role, label, f->st.kbps, sd_stats_mechanism_name(f->mech),
           fail ? fail : sd_fetch_end_name(f->r.end));
    if (f->fail == SD_KIND_FREEZE || f->fail == SD_KIND_RST)
        printf(" after %llu bytes", (unsigned long long)f->fail_bytes);
    printf("\n");
}

static void print_report(const struct sd_detect_result *res, const struct sd_detect_dir *d)
{
    const char *kind = sd_detect_kind_name(d->kind), *scope = sd_detect_scope_name(d->scope);
    char verdict[32];

    snprintf(verdict, sizeof(verdict), "%s", sd_detect_verdict_name(d->verdict));
    for (char *p = verdict; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    printf("%-9s %s", d->dir == SD_FETCH_UP ? "upload" : "download", verdict);
    if (kind)
        printf(" (%s%s%s)", kind, scope ? ", scope " : "", scope ? scope : "");
    if (d->verdict == SD_VERDICT_THROTTLED)
        printf("  rate ~%.0f kbit/s (IP bytes)", d->rate_estimate_kbps);
    printf("\n");
    print_flow_line("A", res->name, &d->f[SD_DETECT_A]);
    print_flow_line("B", res->control, &d->f[SD_DETECT_B]);
    if (d->f[SD_DETECT_C].used)
        print_flow_line("C", "(A inverted, plain port)", &d->f[SD_DETECT_C]);
    printf("  evidence: %s\n", d->evidence);
}

static int write_svg(const struct opts *o, const struct sd_detect_result *res)
{
    char path[4096];

    if (o->n_names == 1) {
        snprintf(path, sizeof(path), "%s", o->svg);
    } else {
        const char *dot = strrchr(o->svg, '.');
        int stem = dot && !strchr(dot, '/') ? (int)(dot - o->svg) : (int)strlen(o->svg);
        snprintf(path, sizeof(path), "%.*s-%s%s", stem, o->svg, res->name, dot && !strchr(dot, '/') ? dot : ".svg");
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "slowdown detect: cannot write %s\n", path);
        return -1;
    }
    sd_svg_detect(f, res);
    if (fclose(f) != 0) {
        fprintf(stderr, "slowdown detect: cannot write %s\n", path);
        return -1;
    }
    if (!o->json)
        printf("plot: %s\n", path);
    return 0;
}

/* ---- localisation ---- */

/* The direction to localise in: a download that was throttled or blocked, else an upload. */
static const struct sd_detect_dir *found(const struct sd_detect_result *res)
{
    for (int dir = 0; dir < 2; dir++) {
        const struct sd_detect_dir *d = &res->d[dir];
        if (d->measured && (d->verdict == SD_VERDICT_THROTTLED || d->verdict == SD_VERDICT_BLOCKED))
            return d;
    }
    return NULL;
}

static void locate_config(const struct opts *o, const struct sd_detect_result *res, const struct sd_detect_dir *d,
                          struct sd_locate_config *lc)
{
    double fast = d->control_kbps > 0 ? d->control_kbps : SD_MAX(d->b_kbps, d->inverted_kbps);
    memset(lc, 0, sizeof(*lc));
    lc->addr = o->cfg.addr;
    lc->plain_port = o->cfg.plain_port;
    lc->bind_addr = o->cfg.bind_addr;
    lc->name = res->name;
    lc->window_ns = 1500ull * SD_NS_PER_MS;
    lc->threshold_bytes = sd_locate_threshold(lc->window_ns, d->kbps, fast > 0 ? fast : 1e6);
}

/* The fields a region overlaps, "a, b, c". */
static void region_fields(const struct sd_trigger_result *t, const struct sd_locate_region *r, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int f = 0; f < t->n_fields; f++) {
        const struct sd_hello_field *x = &t->fields[f];
        if (x->off + x->len <= r->off || x->off >= r->off + r->len)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", x->name);
        if (n < 0 || (size_t)n >= len - used)
            break;
        used += (size_t)n;
    }
}

/* The bytes of a region (as they are, not inverted): a name's characters as text, else hex. */
static void region_bytes(const struct sd_trigger_result *t, const struct sd_locate_region *r, char *buf, size_t len)
{
    bool text = r->len >= 2;
    for (int i = 0; i < r->len; i++) {
        uint8_t c = t->hello[r->off + i];
        text = text && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '-' || c == '_');
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->len && used + 4 < len; i++)
        used += (size_t)snprintf(buf + used, len - used, text ? "%c" : "%02x", t->hello[r->off + i]);
    if (used + 4 >= len && len > 4)
        memcpy(buf + len - 4, "...", 4);
}

static int do_trigger(const struct opts *o, const struct sd_detect_result *res, const struct sd_detect_dir *d)
{
    struct sd_locate_config lc;
    static struct sd_trigger_result t; /* 6 KB of hello and fields: off the stack */
    char fields[512], bytes[160];

    locate_config(o, res, d, &lc);
    if (!o->json)
        fprintf(stderr, "localising the trigger in %s's ClientHello ...\n", res->name);
    int rc = sd_locate_trigger(&lc, &t);
    if (rc < 0) {
        fprintf(stderr, "slowdown detect: trigger search: %s\n", sd_strerror(rc));
        return SD_EXIT_ERR;
    }
    if (o->json) {
        printf("{\"type\":\"trigger\",\"name\":");
        sd_json_str(stdout, res->name);
        printf(",\"hello_bytes\":%zu,\"baseline\":%s,\"inverted\":%s,\"probes\":%u,\"seconds\":%.1f,\"fields\":[",
               t.hello_len, t.baseline ? "true" : "false", t.inverted ? "true" : "false", t.probes, t.seconds);
        for (int f = 0, k = 0; f < t.n_fields; f++) {
            if (!t.field_matters[f])
                continue;
            printf("%s", k++ ? "," : "");
            sd_json_str(stdout, t.fields[f].name);
        }
        printf("],\"regions\":[");
        for (int i = 0; i < t.n_regions; i++) {
            region_fields(&t, &t.regions[i], fields, sizeof(fields));
            region_bytes(&t, &t.regions[i], bytes, sizeof(bytes));
            printf("%s{\"offset\":%u,\"length\":%u,\"resolved\":%s,\"fields\":", i ? "," : "", t.regions[i].off,
                   t.regions[i].len, t.regions[i].resolved ? "true" : "false");
            sd_json_str(stdout, fields);
            printf(",\"bytes\":");
            sd_json_str(stdout, bytes);
            printf("}");
        }
        printf("]}\n");
        return SD_EXIT_OK;
    }
    printf("trigger (%zu-byte ClientHello, %u probes, %.1f s):\n", t.hello_len, t.probes, t.seconds);
    if (!t.baseline) {
        printf("  the ClientHello sent on the plain port does not trigger: nothing to localise there\n");
        return SD_EXIT_OK;
    }
    if (t.inverted) {
        printf("  the inverted ClientHello triggers too: the trigger is not in its bytes\n");
        return SD_EXIT_OK;
    }
    printf("  inverting any of these bytes alone lifts the censor's action:\n");
    for (int i = 0; i < t.n_regions; i++) {
        region_fields(&t, &t.regions[i], fields, sizeof(fields));
        region_bytes(&t, &t.regions[i], bytes, sizeof(bytes));
        printf("  %5u +%-4u %-34s %s%s\n", t.regions[i].off, t.regions[i].len, bytes, fields,
               t.regions[i].resolved ? "" : " (not narrowed further: probe budget)");
    }
    return SD_EXIT_OK;
}

static int do_hops(const struct opts *o, const struct sd_detect_result *res, const struct sd_detect_dir *d)
{
    struct sd_locate_config lc;
    struct sd_hop_result h;

    locate_config(o, res, d, &lc);
    int rc = sd_locate_hop(&lc, o->hops, &h);
    if (rc < 0) {
        fprintf(stderr, "slowdown detect: hop search: %s\n",
                rc == SD_EPERM ? "needs root (raw socket, TCP_REPAIR)"
                : rc == SD_EINVAL ? "IPv4 servers only" : sd_strerror(rc));
        return SD_EXIT_ERR;
    }
    if (o->json) {
        printf("{\"type\":\"hops\",\"name\":");
        sd_json_str(stdout, res->name);
        printf(",\"hop\":");
        if (h.hop)
            printf("%d", h.hop);
        else
            printf("null");
        printf(",\"baseline\":%s,\"ttl\":[", h.baseline ? "true" : "false");
        for (int t = 1; t <= h.max_ttl; t++)
            printf("%s\"%s\"", t > 1 ? "," : "", !h.probed[t] ? "unknown" : h.triggered[t] ? "triggered" : "free");
        printf("],\"detail\":");
        sd_json_str(stdout, h.detail);
        printf("}\n");
        return SD_EXIT_OK;
    }
    printf("hops (ClientHello injected with TTL 1..%d):", h.max_ttl);
    for (int t = 1; t <= h.max_ttl; t++)
        printf(" %d:%s", t, !h.probed[t] ? "?" : h.triggered[t] ? "T" : "-");
    printf("\n");
    if (h.hop)
        printf("  the censor sits at hop %d (between hop %d and hop %d; TTL %d reaches it)\n", h.hop, h.hop - 1, h.hop,
               h.hop);
    else
        printf("  no hop located%s%s\n", h.detail[0] ? ": " : "", h.detail);
    if (!h.baseline)
        printf("  (the control connection without an injected hello was slow too: read with care)\n");
    return SD_EXIT_OK;
}

/* Measures one name and prints it. Returns an exit status. */
static int detect_one(const struct opts *o, const char *name)
{
    struct sd_detect_config cfg = o->cfg;
    struct sd_detect_result res;
    int rc = SD_EXIT_OK;

    cfg.name = name;
    if (!o->json)
        fprintf(stderr, "measuring %s against %s ...\n", name, cfg.addr);
    int x = sd_detect_run(&cfg, &res);
    if (x < 0) {
        fprintf(stderr, "slowdown detect: %s: %s\n", name, x == SD_EINVAL ? "bad name or address" : sd_strerror(x));
        return x == SD_EINVAL ? SD_EXIT_USAGE : SD_EXIT_ERR;
    }
    if (!o->json)
        printf("%s via %s: control %s, %.1f s\n", res.name, cfg.addr, res.control, res.duration_s);
    for (int dir = 0; dir < 2; dir++) {
        const struct sd_detect_dir *d = &res.d[dir];
        if (!d->measured)
            continue;
        if (o->json) {
            print_json(&res, d);
            if (o->series)
                print_series(&res, d);
        } else {
            print_report(&res, d);
        }
    }
    if (o->svg && write_svg(o, &res) < 0)
        rc = SD_EXIT_ERR;
    const struct sd_detect_dir *d = found(&res);
    if ((o->trigger || o->hops) && !d && !o->json)
        printf("nothing throttled or blocked: nothing to localise\n");
    if (o->trigger && d && do_trigger(o, &res, d) != SD_EXIT_OK)
        rc = SD_EXIT_ERR;
    if (o->hops && d && do_hops(o, &res, d) != SD_EXIT_OK)
        rc = SD_EXIT_ERR;
    fflush(stdout);
    sd_detect_result_free(&res);
    return rc;
}

int sd_detect_main(int argc, char **argv)
{
    struct opts o;
    int prev = -1, rc = SD_EXIT_OK;

    memset(&o, 0, sizeof(o));
    int x = parse(argc, argv, &o);
    if (x)
        return x - 1000;
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes with write(2) */
    if (o.lab && sd_lab_enter(o.lab, SD_LAB_CLIENT, &prev) < 0) {
        fprintf(stderr, "slowdown detect: cannot enter the client namespace of lab '%s' (root? lab up?)\n", o.lab);
        return SD_EXIT_ERR;
    }
    for (int i = 0; i < o.n_names; i++) {
        int r = detect_one(&o, o.names[i]);
        if (r != SD_EXIT_OK)
            rc = r;
    }
    if (prev >= 0)
        sd_lab_leave(prev);
    return rc;
}
