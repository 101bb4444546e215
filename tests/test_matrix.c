/*
 * test_matrix.c - the matrix's scoring rule on each kind of run, the policy
 * it adds to presets, and its three outputs (table, JSON lines of the
 * contract, SVG/HTML) on a made-up result. The runs themselves need labs:
 * tests/sh/lab_matrix_b14.sh.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "matrix.h"

static struct sd_matrix_run run(uint8_t end, double kbps, uint64_t bytes, uint64_t tail)
{
    struct sd_matrix_run r;
    memset(&r, 0, sizeof(r));
    r.ran = true;
    r.applied = true;
    r.end = end;
    r.kbps = kbps;
    r.bytes = bytes;
    r.tail_bytes = tail;
    return r;
}

static void test_score(void **state)
{
    struct sd_matrix_run ctl = run(SD_FETCH_DONE, 19000, 5000000, 2500000), t;
    double ratio;
    (void)state;

    t = run(SD_FETCH_DONE, 18500, 4900000, 2400000);
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_EVADES);
    assert_true(ratio > 0.97 && ratio < 0.98);
    t = run(SD_FETCH_DONE, 9500, 2500000, 1200000); /* exactly half */
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_EVADES);
    t = run(SD_FETCH_DONE, 128, 40000, 16000);
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_THROTTLED);
    assert_true(ratio < 0.01);
    t = run(SD_FETCH_DONE, 5000, 1300000, 600000);
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_THROTTLED);
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.25, &ratio), SD_OUTCOME_EVADES);
    /* Reset, timeout, error, nothing at all, or a freeze: blocked. */
    uint8_t ends[] = {SD_FETCH_RST, SD_FETCH_TIMEOUT, SD_FETCH_ERROR, SD_FETCH_EOF};
    for (size_t i = 0; i < sizeof(ends); i++) {
        t = run(ends[i], 0, 0, 0);
        assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_BLOCKED);
    }
    t = run(SD_FETCH_DONE, 0, 0, 0);
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_BLOCKED);
    t = run(SD_FETCH_DONE, 60, 16384, 0); /* 16 KB, then nothing: frozen */
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_BLOCKED);
    /* The control failed, or the strategy could not act: broken. */
    struct sd_matrix_run bad = run(SD_FETCH_ERROR, 0, 0, 0);
    t = run(SD_FETCH_DONE, 18500, 4900000, 2400000);
    assert_int_equal(sd_matrix_score(&bad, &t, 0.5, &ratio), SD_OUTCOME_BROKEN);
    bad = ctl;
    bad.applied = false;
    assert_int_equal(sd_matrix_score(&bad, &t, 0.5, &ratio), SD_OUTCOME_BROKEN);
    t.applied = false;
    assert_int_equal(sd_matrix_score(&ctl, &t, 0.5, &ratio), SD_OUTCOME_BROKEN);
    bad = run(SD_FETCH_DONE, 0, 0, 0);
    t = run(SD_FETCH_DONE, 18500, 4900000, 2400000);
    assert_int_equal(sd_matrix_score(&bad, &t, 0.5, &ratio), SD_OUTCOME_BROKEN);
    assert_true(ratio == 0.0);

    assert_string_equal(sd_outcome_name(SD_OUTCOME_EVADES), "evades");
    assert_string_equal(sd_outcome_name(SD_OUTCOME_THROTTLED), "throttled");
    assert_string_equal(sd_outcome_name(SD_OUTCOME_BLOCKED), "blocked");
    assert_string_equal(sd_outcome_name(SD_OUTCOME_BROKEN), "broken");
}

static void test_extra_policy(void **state)
{
    struct sd_matrix_strategy s;
    char err[200], buf[256];
    (void)state;

    memset(&s, 0, sizeof(s));
    assert_int_equal(sd_evade_parse("split", &s.spec, err, sizeof(err)), 0);
    sd_matrix_extra_policy("tw21-exact", &s, 2, buf, sizeof(buf));
    assert_string_equal(buf, "");
    sd_matrix_extra_policy("tw21-mobile-only", &s, 2, buf, sizeof(buf));
    assert_string_equal(buf, "ips mobile 192.0.2.0/24\n");
    assert_int_equal(sd_evade_parse("idle", &s.spec, err, sizeof(err)), 0);
    sd_matrix_extra_policy("tw21-exact", &s, 0, buf, sizeof(buf));
    assert_string_equal(buf, "set timeout.action 2\n");
    sd_matrix_extra_policy("tw21-mobile-only", &s, 5, buf, sizeof(buf));
    assert_string_equal(buf, "ips mobile 192.0.2.0/24\nset timeout.action 5\n");
    s.external = "curl ...";
    sd_matrix_extra_policy("tw21-exact", &s, 2, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

/* A 2 x 3 result: presets tw21-initial, tw22-block; split-sni, none, an external. */
static void made_up(struct sd_matrix_config *cfg, struct sd_matrix_result *res, struct sd_matrix_cell *cells)
{
    char err[200];

    memset(cfg, 0, sizeof(*cfg));
    memset(res, 0, sizeof(*res));
    cfg->presets[0] = "tw21-initial";
    cfg->presets[1] = "tw22-block";
    cfg->n_presets = 2;
    assert_int_equal(sd_evade_parse("split-sni", &cfg->strategies[0].spec, err, sizeof(err)), 0);
    snprintf(cfg->strategies[0].name, sizeof(cfg->strategies[0].name), "split-sni");
    assert_int_equal(sd_evade_parse("none", &cfg->strategies[1].spec, err, sizeof(err)), 0);
    snprintf(cfg->strategies[1].name, sizeof(cfg->strategies[1].name), "none");
    snprintf(cfg->strategies[2].name, sizeof(cfg->strategies[2].name), "byedpi \"q\"");
    cfg->strategies[2].external = "ciadpi & curl <x>";
    cfg->n_strategies = 3;
    res->cells = cells;
    res->control[0] = run(SD_FETCH_DONE, 19000, 5000000, 2500000);
    res->control[1] = run(SD_FETCH_DONE, 19000, 5000000, 2500000);
    res->control[2] = run(SD_FETCH_ERROR, 0, 0, 0);
    cells[0].run = run(SD_FETCH_DONE, 18430, 4800000, 2400000);
    cells[1].run = run(SD_FETCH_DONE, 128, 40000, 16000);
    cells[2].run = run(SD_FETCH_DONE, 1, 1, 1);
    cells[3].run = run(SD_FETCH_DONE, 18000, 4800000, 2400000);
    cells[4].run = run(SD_FETCH_RST, 0, 0, 0);
    snprintf(cells[4].run.note, sizeof(cells[4].run.note), "a \"quoted\" note");
    memset(&cells[5].run, 0, sizeof(cells[5].run)); /* did not run */
    for (unsigned i = 0; i < 6; i++)
        res->applies[i / 3][i % 3] = true;
    for (unsigned i = 0; i < 6; i++)
        cells[i].outcome = (uint8_t)sd_matrix_score(&res->control[i % 3], &cells[i].run, 0.5, &cells[i].ratio);
    res->elapsed_ns = 12345678900ull;
}

static char *capture(void (*fn)(FILE *, const struct sd_matrix_config *, const struct sd_matrix_result *),
                     const struct sd_matrix_config *cfg, const struct sd_matrix_result *res)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f, cfg, res);
    fclose(f);
    return buf;
}

static void test_json(void **state)
{
    static struct sd_matrix_config cfg;
    struct sd_matrix_result res;
    struct sd_matrix_cell cells[6];
    (void)state;

    made_up(&cfg, &res, cells);
    char *out = capture(sd_matrix_print_json, &cfg, &res);
    /* Five lines: the cell that did not run has none. */
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 5);
    /* The contract's fields first, in its order. */
    assert_non_null(strstr(out, "{\"type\":\"outcome\",\"preset\":\"tw21-initial\",\"strategy\":\"split-sni\","
                                "\"outcome\":\"evades\",\"goodput_ratio\":0.9700,"));
    assert_non_null(strstr(out, "{\"type\":\"outcome\",\"preset\":\"tw21-initial\",\"strategy\":\"none\","
                                "\"outcome\":\"throttled\",\"goodput_ratio\":0.0067,"));
    assert_non_null(strstr(out, "\"preset\":\"tw21-initial\",\"strategy\":\"byedpi \\\"q\\\"\",\"outcome\":\"broken\""));
    assert_non_null(strstr(out, "\"preset\":\"tw22-block\",\"strategy\":\"none\",\"outcome\":\"blocked\""));
    assert_non_null(strstr(out, "\"note\":\"a \\\"quoted\\\" note\"}"));
    assert_null(strstr(out, "\"preset\":\"tw22-block\",\"strategy\":\"byedpi"));
    free(out);
}

static void test_table_and_pictures(void **state)
{
    static struct sd_matrix_config cfg;
    struct sd_matrix_result res;
    struct sd_matrix_cell cells[6];
    (void)state;

    made_up(&cfg, &res, cells);
    char *t = capture(sd_matrix_print_table, &cfg, &res);
    assert_non_null(strstr(t, "strategy"));
    assert_non_null(strstr(t, "tw21-initial"));
    assert_non_null(strstr(t, "evades 0.97"));
    assert_non_null(strstr(t, "throttled .007"));
    assert_non_null(strstr(t, "blocked"));
    assert_non_null(strstr(t, "broken"));
    assert_non_null(strstr(t, "FAILED")); /* the external's control */
    assert_non_null(strstr(t, "19.0 Mb/s"));
    free(t);

    char *svg = capture(sd_matrix_write_svg, &cfg, &res);
    assert_true(!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39));
    assert_non_null(strstr(svg, "</svg>\n"));
    assert_non_null(strstr(svg, "fill=\"#2e9e44\"")); /* an evades cell */
    assert_non_null(strstr(svg, "fill=\"#d03030\"")); /* a blocked cell */
    assert_non_null(strstr(svg, "byedpi &quot;q&quot;"));
    assert_non_null(strstr(svg, "a &quot;quoted&quot; note"));
    assert_null(strstr(svg, "\"q\"")); /* nothing unescaped */
    free(svg);

    char *html = capture(sd_matrix_write_html, &cfg, &res);
    assert_true(!strncmp(html, "<!doctype html>", 15));
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "ciadpi &amp; curl &lt;x&gt;"));
    assert_non_null(strstr(html, "neither segment holds the whole name"));
    assert_non_null(strstr(html, "</html>\n"));
    free(html);
}

static void test_preset_kinds(void **state)
{
    bool tcp, quic;
    char err[200];
    (void)state;

    assert_int_equal(sd_matrix_preset_kinds("tw21-exact", &tcp, &quic, err, sizeof(err)), 0);
    assert_true(tcp);
    assert_false(quic);
    assert_int_equal(sd_matrix_preset_kinds("quic22-v1", &tcp, &quic, err, sizeof(err)), 0);
    assert_false(tcp);
    assert_true(quic);
    assert_int_equal(sd_matrix_preset_kinds("quic23-sni", &tcp, &quic, err, sizeof(err)), 0);
    assert_false(tcp);
    assert_true(quic);
    assert_int_equal(sd_matrix_preset_kinds("tw22-block", &tcp, &quic, err, sizeof(err)), 0);
    assert_true(tcp);
    assert_int_equal(sd_matrix_preset_kinds("no-such-preset", &tcp, &quic, err, sizeof(err)), SD_ENOENT);
    assert_non_null(strstr(err, "no-such-preset"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_extra_policy),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_table_and_pictures),
        cmocka_unit_test(test_preset_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
