/*
 * test_policy.c - the policy language: statements, errors with their
 * FILE:LINE:COL, accumulation and overrides, and every shipped preset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "names.h"
#include "policy.h"
#include "preset.h"
#include "timeline.h"

static struct sd_policy *build(const char *text, struct sd_policy_error *err)
{
    struct sd_policy_builder *b = sd_policy_builder_new();
    assert_non_null(b);
    struct sd_policy *p = NULL;
    if (sd_policy_builder_parse(b, "t.pol", text, strlen(text), err) == 0)
        p = sd_policy_builder_finish(b, err);
    sd_policy_builder_free(b);
    return p;
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *needle)
{
    struct sd_policy_error err;
    struct sd_policy *p = build(text, &err);
    if (p) {
        sd_policy_free(p);
        fail_msg("accepted: %s", text);
    }
    char msg[600];
    sd_policy_error_format(&err, msg, sizeof(msg));
    if (err.line != line || err.col != col || !strstr(err.msg, needle))
        fail_msg("for %s\n got: %s\n want %u:%u containing '%s'", text, msg, line, col, needle);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "t.pol:%u:%u: ", line, col);
    assert_true(strncmp(msg, prefix, strlen(prefix)) == 0);
}

static void parses_rules_and_sets(void **state)
{
    (void)state;
    struct sd_policy_error err;
    struct sd_policy *p = build("# a comment\n"
                                "names tw t.co *.twimg.com\n"
                                "names tw *twitter.com   # more of the same set\n"
                                "ips cdn 203.0.113.0/24 2001:db8::/32\n"
                                "set inspect.extra 7\n"
                                "set inspect.tls records\n"
                                "set quic.versions 1 ff00001d\n"
                                "rule slow when sni in tw and not server in cdn then throttle rate=1.5mbit burst=32KiB \\\n"
                                "   dir=s2c count=l4\n"
                                "rule cut when server in cdn and port 443,8443 then freeze bytes=20kB rst=on\n",
                                &err);
    if (!p) {
        char m[600];
        sd_policy_error_format(&err, m, sizeof(m));
        fail_msg("%s", m);
    }
    assert_int_equal(p->n_rules, 2);
    assert_string_equal(p->rules[0].name, "slow");
    assert_true(p->rules[0].l7);
    assert_int_equal(p->rules[0].n_conds, 2);
    assert_true(p->rules[0].conds[1].negate);
    assert_int_equal(p->rules[0].action.kind, SD_A_THROTTLE);
    assert_int_equal(p->rules[0].action.rate_bps, 1500000);
    assert_int_equal(p->rules[0].action.burst, 32768);
    assert_int_equal(p->rules[0].action.dirs, SD_DIR_S2C);
    assert_int_equal(p->rules[0].action.count, SD_COUNT_L4);
    assert_false(p->rules[1].l7);
    assert_int_equal(p->rules[1].conds[1].n_ports, 2);
    assert_int_equal(p->rules[1].conds[1].ports[1], 8443);
    assert_int_equal(p->rules[1].action.n, 20000);
    assert_true(p->rules[1].action.rst);
    assert_int_equal(p->inspect.extra_packets, 7);
    assert_int_equal(p->inspect.tls_mode, SD_TLS_RECORDS);
    assert_int_equal(p->inspect.quic_versions[1], 0xff00001d);
    uint64_t tw = 1ULL << 0;
    assert_int_equal(sd_names_lookup(p->names, (const uint8_t *)"abs.twimg.com", 13), tw);
    assert_int_equal(sd_names_lookup(p->names, (const uint8_t *)"throttletwitter.com", 19), tw);
    assert_int_equal(sd_names_lookup(p->names, (const uint8_t *)"t.co.example.net", 16), 0);
    uint8_t a[4] = {203, 0, 113, 9};
    int cdn = 0;
    for (unsigned i = 0; i < p->n_ip_sets; i++)
        if (!strcmp(p->ip_sets[i], "cdn"))
            cdn = (int)i;
    assert_true(sd_ipset_lookup(p->ips, 4, a) & (1ULL << cdn));
    /* The default inside networks are there. */
    uint8_t in[4] = {10, 1, 2, 3};
    assert_true(p->inside_set >= 0);
    assert_true(sd_ipset_lookup(p->ips, 4, in) & (1ULL << p->inside_set));
    sd_policy_free(p);
}

static void reports_errors_where_they_are(void **state)
{
    (void)state;
    expect_error("names x a.com\nfrobnicate 1\n", 2, 1, "unknown statement");
    expect_error("set inspect.extra 300\n", 1, 19, "too large");
    expect_error("set inspect.extra lots\n", 1, 19, "expected a number");
    expect_error("set inspect.tls fuzzy\n", 1, 17, "expected one of strict, records, stream, hello");
    expect_error("set no.such.thing 1\n", 1, 5, "unknown parameter");
    expect_error("rule r when sni in nope then pass\n", 1, 20, "unknown name set 'nope'");
    expect_error("names s a.com\nrule r when sni in s then explode\n", 2, 27, "expected one of pass, throttle");
    expect_error("names s a.com\nrule r when sni in s then throttle rate=fast\n", 2, 41, "invalid rate");
    expect_error("names s a.com\nrule r when sni in s then throttle rate=128kbit burst=10\n", 2, 27, "burst");
    expect_error("names s a.com\nrule r when sni in s\n", 2, 20, "expected 'then ACTION'");
    expect_error("names s a*b.com\n", 1, 9, "'*' may only start or end");
    expect_error("ips s 300.1.2.3/8\n", 1, 7, "invalid address");
    expect_error("ips s 10.0.0.0/33\n", 1, 7, "invalid address");
    expect_error("names s file /nonexistent/list.txt\n", 1, 14, "cannot read");
    expect_error("rule r when port 70000 then pass\n", 1, 18, "too large");
    expect_error("rule r when sni then pass\n", 1, 13, "expected 'sni in SET'");
    expect_error("rule r when udp then mark seconds=60\n", 1, 22, "mark needs tag=NAME");
    expect_error("rule r when udp then mark tag=a/b\n", 1, 31, "invalid mark name");
    expect_error("rule r when marked\n", 1, 13, "expected a mark name");
    expect_error("rule r when tcp then drop chance=1.5\n", 1, 34, "chance too large");
    expect_error("rule r when tcp then drop chance=half\n", 1, 34, "invalid chance");
}

static void later_sources_extend_and_override(void **state)
{
    (void)state;
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    assert_int_equal(sd_policy_builder_preset(b, "tw21-exact", &err), 0);
    const char *extra = "names tw21 example.org\nrule tw21 when sni in tw21 then throttle rate=64kbit\n"
                        "rule extra when tcp and port 25 then drop\n";
    assert_int_equal(sd_policy_builder_parse(b, "extra.pol", extra, strlen(extra), &err), 0);
    assert_int_equal(sd_policy_builder_inside(b, "192.0.2.0/24,2001:db8:1::/64", &err), 0);
    struct sd_policy *p = sd_policy_builder_finish(b, &err);
    sd_policy_builder_free(b);
    assert_non_null(p);
    assert_int_equal(p->n_rules, 2);
    assert_int_equal(p->rules[0].action.rate_bps, 64000); /* replaced in place */
    assert_true(sd_names_lookup(p->names, (const uint8_t *)"example.org", 11) != 0);
    assert_true(sd_names_lookup(p->names, (const uint8_t *)"twitter.com", 11) != 0);
    uint8_t lab[4] = {192, 0, 2, 2}, rfc1918[4] = {10, 0, 0, 2};
    assert_true(sd_ipset_lookup(p->ips, 4, lab) & (1ULL << p->inside_set));
    assert_false(sd_ipset_lookup(p->ips, 4, rfc1918) & (1ULL << p->inside_set));
    sd_policy_free(p);
}

static void unknown_preset_is_an_error(void **state)
{
    (void)state;
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    assert_int_equal(sd_policy_builder_preset(b, "tw99-nope", &err), SD_ENOENT);
    assert_non_null(strstr(err.msg, "unknown preset"));
    sd_policy_builder_free(b);
}

/* Every preset parses, documents its period and sources, and its period
 * agrees with the shipped timeline. */
static void presets_are_complete(void **state)
{
    (void)state;
    static const char *const required[] = {"observe", "tw21-initial", "tw21-tco-fixed", "tw21-exact",
                                           "tw21-mobile-only", "tw22-sni3", "tw22-block", "quic22-v1",
                                           "quic22-initial", "quic23-sni", "yt24-loss", "yt24-policer",
                                           "yt24-block", "ech24", "host25-udp", "cdn25-16k"};
    for (size_t i = 0; i < SD_COUNTOF(required); i++) {
        struct sd_policy_error err;
        struct sd_policy_builder *b = sd_policy_builder_new();
        if (sd_policy_builder_preset(b, required[i], &err))
            fail_msg("preset %s: %s", required[i], err.msg);
        struct sd_policy *p = sd_policy_builder_finish(b, &err);
        sd_policy_builder_free(b);
        if (!p)
            fail_msg("preset %s: %s", required[i], err.msg);
        assert_string_equal(p->name, required[i]);
        assert_true(p->summary[0] && p->sources[0] && p->period[0]);
        if (strcmp(required[i], "observe") != 0) {
            assert_true(p->n_rules > 0);
            size_t k;
            for (k = 0; k < sd_timeline_len; k++)
                if (!strcmp(sd_timeline[k].preset, required[i]))
                    break;
            assert_true(k < sd_timeline_len);
            char period[96];
            snprintf(period, sizeof(period), "%s %s", sd_timeline[k].start, sd_timeline[k].end ? sd_timeline[k].end : "-");
            if (strcmp(period, p->period))
                fail_msg("%s: file says '%s', timeline '%s'", required[i], p->period, period);
        }
        sd_policy_free(p);
    }
}

static void timeline_lookup(void **state)
{
    (void)state;
    int64_t t;
    const char *names[16];
    assert_int_equal(sd_time_parse("2021-03-10T09:00Z", &t), 0);
    assert_int_equal(t, 1615366800);
    assert_int_equal(sd_timeline_at(t, names, 16), 1);
    assert_string_equal(names[0], "tw21-initial");
    assert_int_equal(sd_time_parse("2021-03-11T13:00+03:00", &t), 0);
    assert_int_equal(sd_timeline_at(t, names, 16), 1);
    assert_string_equal(names[0], "tw21-tco-fixed");
    assert_int_equal(sd_time_parse("2024-08-10", &t), 0);
    size_t n = sd_timeline_at(t, names, 16);
    assert_int_equal(n, 4); /* tw22-block, quic23-sni, yt24-policer, yt24-block */
    assert_int_equal(sd_time_parse("2021-03-10T09:00", &t), SD_EINVAL); /* a time needs a zone */
    assert_int_equal(sd_time_parse("2021-13-10", &t), SD_EINVAL);
    assert_int_equal(sd_time_parse("2020-01-01", &t), 0);
    assert_int_equal(sd_timeline_at(t, names, 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_rules_and_sets),
        cmocka_unit_test(reports_errors_where_they_are),
        cmocka_unit_test(later_sources_extend_and_override),
        cmocka_unit_test(unknown_preset_is_an_error),
        cmocka_unit_test(presets_are_complete),
        cmocka_unit_test(timeline_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
