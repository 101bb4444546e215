/*
 * test_svg.c - the plots: decades chosen to span the data, a line per flow
 * with a point per window, text escaped, zero drawn on the floor; and the
 * detector's figure from a synthetic result (one panel per direction, the
 * verdict under its title, A aligned on its own start).
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

#include "detect.h"
#include "mono.h"
#include "svg.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_plot(void **state)
{
    double a[4] = {120, 0, 130, 125}, b[4] = {9e5, 1.1e6, 1e6, 9.5e5};
    struct sd_svg_line lines[2] = {
        {"A <twitter & co>", "#d62728", a, 4, 0, 0.25},
        {"B", "#1f77b4", b, 4, 0.1, 0.25},
    };
    struct sd_svg_panel p = {"download", lines, 2, 0.5, "throttled \"policing\""};
    char *buf = NULL;
    size_t len = 0;
    (void)state;

    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(sd_svg_plot(f, "title <x>", &p, 1, 1.0), 0);
    fclose(f);
    assert_non_null(strstr(buf, "<?xml"));
    assert_non_null(strstr(buf, "</svg>\n"));
    assert_int_equal(count(buf, "<polyline"), 2);
    /* Escaped text, never raw. */
    assert_non_null(strstr(buf, "A &lt;twitter &amp; co&gt;"));
    assert_non_null(strstr(buf, "title &lt;x&gt;"));
    assert_non_null(strstr(buf, "throttled &quot;policing&quot;"));
    assert_null(strstr(buf, "<twitter"));
    /* Decades from 100 kbit/s (120 -> 10^2) to 10 Gbit/s (1.1e6 kbit/s -> 10^7). */
    assert_non_null(strstr(buf, ">100 kbit/s<"));
    assert_non_null(strstr(buf, ">10 Gbit/s<"));
    assert_null(strstr(buf, ">10 kbit/s<"));
    /* Four points per line; the zero sits on the floor (y = top + height = 40 + 56 + 260). */
    char *pl = strstr(buf, "points=\"");
    assert_non_null(pl);
    char *pts = strndup(pl, (size_t)(strchr(pl + 8, '"') - pl));
    assert_int_equal(count(pts, ","), 4);
    free(pts);
    assert_non_null(strstr(pl, ",356.0 "));
    assert_non_null(strstr(buf, "warm-up"));
    free(buf);
}

static void test_detect_figure(void **state)
{
    static struct sd_detect_result res;
    static uint64_t bins[SD_DETECT_ROLES][1200];
    char *buf = NULL;
    size_t len = 0;
    (void)state;

    memset(&res, 0, sizeof(res));
    snprintf(res.name, sizeof(res.name), "twitter.com");
    snprintf(res.control, sizeof(res.control), "hvhkmqz.com");
    res.bin_ns = 10 * SD_NS_PER_MS;
    res.warmup_ns = 3ull * SD_NS_PER_S;
    res.seconds_ns = 12ull * SD_NS_PER_S;
    struct sd_detect_dir *d = &res.d[SD_FETCH_UP];
    d->measured = true;
    d->dir = SD_FETCH_UP;
    d->verdict = SD_VERDICT_THROTTLED;
    d->kind = SD_KIND_POLICING;
    d->rate_estimate_kbps = 131;
    d->ratio = 0.0006;
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        struct sd_detect_flow *f = &d->f[k];
        f->used = k != SD_DETECT_C;
        f->bins = bins[k];
        f->n = 1200;
        f->r.transfer_start_ns = (uint64_t)(100 + k * 50) * SD_NS_PER_MS;
        for (int i = 0; i < 1200; i++)
            bins[k][i] = k == SD_DETECT_A ? (i % 100 < 10 ? 1600 : 0) : 250000;
    }
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(sd_svg_detect(f, &res), 0);
    fclose(f);
    assert_int_equal(count(buf, "<polyline"), 2); /* one panel (upload), no C */
    assert_non_null(strstr(buf, ">upload<"));
    assert_null(strstr(buf, ">download<"));
    assert_non_null(strstr(buf, "throttled (policing), rate ~131 kbit/s"));
    assert_non_null(strstr(buf, "A twitter.com"));
    assert_non_null(strstr(buf, "B hvhkmqz.com"));
    assert_null(strstr(buf, "C inverted"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_detect_figure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
