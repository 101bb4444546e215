/*
 * test_metrics.c - the Prometheus exposition of `slowdown run`: sample and
 * family lines byte for byte, label escaping, the whole rendering of a
 * snapshot (every family once, HELP and TYPE before its samples, every
 * sample line well formed), the kernel queue counters parsed from
 * /proc/net/netfilter/nfnetlink_queue text, address splitting, and the
 * listener answering real HTTP requests on the loopback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "central.h"
#include "inline.h"
#include "metrics.h"
#include "policy.h"

static void test_sample_lines(void **state)
{
    struct sd_prom b = {0};
    (void)state;

    sd_prom_family(&b, "x_total", "counter", "What x counts.");
    sd_prom_u64(&b, "x_total", NULL, 0);
    sd_prom_u64(&b, "x_total", (const char *const[]){"a", "1", "b", "two", NULL}, 18446744073709551615ULL);
    sd_prom_f64(&b, "y", NULL, 1.5);
    assert_false(b.oom);
    assert_string_equal(b.p, "# HELP x_total What x counts.\n# TYPE x_total counter\n"
                             "x_total 0\n"
                             "x_total{a=\"1\",b=\"two\"} 18446744073709551615\n"
                             "y 1.5\n");
    assert_int_equal(b.len, strlen(b.p));
    sd_prom_reset(&b);
    assert_int_equal(b.len, 0);
    /* Label values: backslash, double quote and line feed are escaped, nothing else. */
    sd_prom_u64(&b, "z", (const char *const[]){"rule", "a\\b\"c\nd{e}=,", NULL}, 7);
    assert_string_equal(b.p, "z{rule=\"a\\\\b\\\"c\\nd{e}=,\"} 7\n");
    sd_prom_free(&b);
    sd_prom_free(&b); /* twice is fine */
}

static void test_growth(void **state)
{
    struct sd_prom b = {0};
    (void)state;
    for (int i = 0; i < 5000; i++)
        sd_prom_u64(&b, "counter_with_a_long_name_total", (const char *const[]){"i", "x", NULL}, (uint64_t)i);
    assert_false(b.oom);
    assert_true(b.len > 5000 * 30);
    static const char last[] = "counter_with_a_long_name_total{i=\"x\"} 4999\n";
    assert_string_equal(b.p + b.len - strlen(last), last);
    sd_prom_free(&b);
}

static const char nfq_text[] = "    0  12345     3 2 65535    17   4 999 1\n"
                               "    1  12346     0 2 65535     0   0 5 1\n"
                               "    7  12347     9 2 65535     8   8 5 1\n"
                               "garbage line\n"
                               "    2  12348     1 2 65535   100   2 77 1";

static void test_parse_nfqueue(void **state)
{
    struct sd_queue_stats q[3];
    (void)state;

    assert_int_equal(sd_metrics_parse_nfqueue(nfq_text, nfq_text + strlen(nfq_text), 0, 3, q), 3);
    assert_int_equal(q[0].queue, 0);
    assert_int_equal(q[0].waiting, 3);
    assert_int_equal(q[0].dropped, 17);
    assert_int_equal(q[0].user_dropped, 4);
    assert_int_equal(q[1].dropped, 0);
    assert_int_equal(q[2].queue, 2); /* the last line has no newline */
    assert_int_equal(q[2].dropped, 100);
    assert_int_equal(q[2].user_dropped, 2);
    /* Queues not in the text read as zero. */
    assert_int_equal(sd_metrics_parse_nfqueue(nfq_text, nfq_text + strlen(nfq_text), 6, 2, q), 1);
    assert_int_equal(q[0].queue, 6);
    assert_int_equal(q[0].dropped, 0);
    assert_int_equal(q[1].queue, 7);
    assert_int_equal(q[1].waiting, 9);
    assert_int_equal(sd_metrics_parse_nfqueue("", "", 0, 1, q), 0);
}

static void test_split_addr(void **state)
{
    char host[64];
    uint16_t port = 0;
    (void)state;

    assert_int_equal(sd_metrics_split_addr("127.0.0.1:9469", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9469);
    assert_int_equal(sd_metrics_split_addr("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    static const char *const bad[] = {"127.0.0.1", ":9469", "127.0.0.1:", "::1:9469", "[::1]9469",
                                      "127.0.0.1:65536", "127.0.0.1:12x", "[::1:9469"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sd_metrics_split_addr(bad[i], host, sizeof(host), &port), SD_EINVAL);
    assert_int_equal(sd_metrics_split_addr("127.0.0.1:1", host, 5, &port), SD_EINVAL); /* host too long */
}

/* A snapshot like one of a censor running tw21-initial. */
static void snapshot(struct sd_metrics_in *m, struct sd_inline_stats *st, struct sd_inline_rule *rules,
                     struct sd_queue_stats *q, struct sd_central_status *src)
{
    memset(st, 0, sizeof(*st));
    st->nfq.packets = 1000;
    st->accepted = 900;
    st->dropped = 100;
    st->engine.names[0] = 3;
    st->engine.inspect_rule = 1;
    st->engine.inspect_none = 2;
    st->engine.flows_active = 3;
    st->engine.flow_capacity = 1 << 20;
    st->ct_marks = 3;
    st->settled_marks = 2;
    memset(rules, 0, 2 * sizeof(*rules));
    rules[0].st = (struct sd_rule_stats){.packets = 50, .bytes = 5000};
    snprintf(rules[1].name, sizeof(rules[1].name), "tw21");
    rules[1].action = SD_A_THROTTLE;
    rules[1].st = (struct sd_rule_stats){.packets = 950, .bytes = 1400000, .dropped = 100, .flows = 1};
    memset(q, 0, sizeof(*q));
    q->dropped = 5;
    memset(src, 0, sizeof(*src));
    src->url = "http://198.51.100.1/fleet.pol";
    src->fetch_ok = 2;
    src->fetch_errors = 1;
    src->last_success = 1700000000.25;
    *m = (struct sd_metrics_in){.st = st, .rules = rules, .n_rules = 2, .queues = q, .n_queues = 1,
                                .policy_name = "tw21-initial", .policy_generation = 2, .reloads_ok = 1,
                                .sources = src, .n_sources = 1, .start_time = 1700000000};
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

/* Checks the shape of every line and that each family's HELP and TYPE come once, before its samples. */
static void check_shape(const char *text)
{
    char families[128][80];
    int nf = 0;
    char line[512];
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        snprintf(line, sizeof(line), "%.*s", (int)(eol - p), p);
        p = eol + 1;
        char name[80];
        if (!strncmp(line, "# HELP ", 7)) {
            assert_int_equal(sscanf(line + 7, "%79s", name), 1);
            for (int i = 0; i < nf; i++)
                assert_string_not_equal(families[i], name);
            assert_true(nf < 128);
            snprintf(families[nf++], sizeof(families[0]), "%s", name);
            continue;
        }
        if (!strncmp(line, "# TYPE ", 7)) {
            char type[16];
            assert_int_equal(sscanf(line + 7, "%79s %15s", name, type), 2);
            assert_string_equal(name, families[nf - 1]);
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge"));
            continue;
        }
        /* name[{labels}] value, the name being the current family's */
        size_t k = strcspn(line, "{ ");
        assert_int_equal(k, strlen(families[nf - 1]));
        assert_memory_equal(line, families[nf - 1], k);
        const char *v = strrchr(line, ' ');
        assert_non_null(v);
        char *end;
        strtod(v + 1, &end);
        assert_int_equal(*end, 0);
        if (line[k] == '{')
            assert_int_equal(v[-1], '}');
    }
    assert_true(nf >= 30);
}

static void test_render(void **state)
{
    struct sd_metrics_in m;
    struct sd_inline_stats st;
    struct sd_inline_rule rules[2];
    struct sd_queue_stats q;
    struct sd_central_status src;
    struct sd_prom b = {0};
    (void)state;

    snapshot(&m, &st, rules, &q, &src);
    sd_metrics_render(&b, &m);
    assert_false(b.oom);
    check_shape(b.p);
    static const char *const want[] = {
        "# TYPE slowdown_rule_packets_total counter",
        "slowdown_rule_packets_total{rule=\"\",action=\"pass\"} 50",
        "slowdown_rule_packets_total{rule=\"tw21\",action=\"throttle\"} 950",
        "slowdown_rule_bytes_total{rule=\"tw21\",action=\"throttle\"} 1400000",
        "slowdown_rule_dropped_total{rule=\"tw21\",action=\"throttle\"} 100",
        "slowdown_rule_flows_total{rule=\"tw21\",action=\"throttle\"} 1",
        "slowdown_packets_total 1000",
        "slowdown_verdicts_total{verdict=\"drop\"} 100",
        "slowdown_names_parsed_total{kind=\"sni\"} 3",
        "slowdown_inspections_total{outcome=\"none\"} 2",
        "slowdown_flows_active 3",
        "# TYPE slowdown_flows_active gauge",
        "slowdown_flow_table_capacity 1048576",
        "slowdown_conntrack_marks_total{state=\"action\"} 1",
        "slowdown_conntrack_marks_total{state=\"settled\"} 2",
        "slowdown_queue_dropped_total{queue=\"0\"} 5",
        "slowdown_policy_info{name=\"tw21-initial\"} 1",
        "slowdown_policy_generation 2",
        "slowdown_policy_reloads_total{result=\"ok\"} 1",
        "slowdown_policy_source_up{url=\"http://198.51.100.1/fleet.pol\"} 0",
        "slowdown_policy_source_fetches_total{url=\"http://198.51.100.1/fleet.pol\",result=\"error\"} 1",
        "slowdown_policy_source_last_success_timestamp_seconds{url=\"http://198.51.100.1/fleet.pol\"} 1700000000.25",
        "slowdown_policy_stale 1",
        "slowdown_start_time_seconds 1700000000",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (!has_line(b.p, want[i]))
            fail_msg("missing line: %s", want[i]);
    }
    /* Flows are counted for rules that fire: none for the no-rule entry. */
    assert_null(strstr(b.p, "slowdown_rule_flows_total{rule=\"\""));

    /* The source answers again: not stale. No sources at all: not stale either. */
    src.up = true;
    sd_prom_reset(&b);
    sd_metrics_render(&b, &m);
    assert_true(has_line(b.p, "slowdown_policy_stale 0"));
    m.n_sources = 0;
    sd_prom_reset(&b);
    sd_metrics_render(&b, &m);
    assert_true(has_line(b.p, "slowdown_policy_stale 0"));
    assert_null(strstr(b.p, "slowdown_policy_source_up{"));
    check_shape(b.p);
    sd_prom_free(&b);
}

/* ---- the listener, over real sockets on the loopback ---- */

static void collect(void *arg, struct sd_prom *b)
{
    int *calls = arg;
    (*calls)++;
    sd_prom_family(b, "t_total", "counter", "Scrapes.");
    sd_prom_u64(b, "t_total", NULL, (uint64_t)*calls);
}

/* Sends |req| to 127.0.0.1:|port| and reads the whole answer into |buf|. */
static void http(uint16_t port, const char *req, char *buf, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = recv(fd, buf + n, cap - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
}

static void test_server(void **state)
{
    char err[256], buf[4096];
    int calls = 0;
    (void)state;

    assert_null(sd_metrics_server_start("127.0.0.1", collect, &calls, err, sizeof(err)));
    assert_non_null(strstr(err, "bad metrics address"));
    struct sd_metrics_server *s = sd_metrics_server_start("127.0.0.1:0", collect, &calls, err, sizeof(err));
    assert_non_null(s);
    uint16_t port = sd_metrics_server_port(s);
    assert_true(port > 0);

    http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(buf, "Content-Length: 57\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\n# HELP t_total Scrapes.\n# TYPE t_total counter\nt_total 1\n"));
    http(port, "GET /metrics HTTP/1.0\n\n", buf, sizeof(buf)); /* bare LFs, HTTP/1.0 */
    assert_non_null(strstr(buf, "t_total 2\n"));
    assert_int_equal(calls, 2);
    http(port, "HEAD /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "200 OK"));
    assert_null(strstr(buf, "t_total 3")); /* no body */
    http(port, "GET /other HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found"));
    http(port, "POST /metrics HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 405"));
    http(port, "GET /metrics", buf, sizeof(buf)); /* never finished: dropped after 2 s, no answer */
    assert_string_equal(buf, "");
    sd_metrics_server_stop(s);
    sd_metrics_server_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_lines), cmocka_unit_test(test_growth),  cmocka_unit_test(test_parse_nfqueue),
        cmocka_unit_test(test_split_addr),   cmocka_unit_test(test_render),  cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
