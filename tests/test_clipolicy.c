/*
 * test_clipolicy.c - policies from the command line's options, with the
 * central sources of issue 10: a URL's fetched text passes the same
 * validation as a file (and errors name the URL as FILE:LINE:COL), --preset
 * and --at take their word from a URL's text, a URL source without fetched
 * text (or in a command that fetches nothing) is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clipolicy.h"
#include "policy.h"

struct texts {
    const char *url[3], *text[3];
    int calls;
};

static int url_text(void *arg, const char *url, const char **p, size_t *n)
{
    struct texts *t = arg;
    t->calls++;
    for (int i = 0; i < 3; i++) {
        if (t->url[i] && !strcmp(t->url[i], url) && t->text[i]) {
            *p = t->text[i];
            *n = strlen(t->text[i]);
            return 0;
        }
    }
    return SD_ENOENT;
}

static bool has_rule(const struct sd_policy *p, const char *name)
{
    for (unsigned i = 0; i < p->n_rules; i++)
        if (!strcmp(p->rules[i].name, name))
            return true;
    return false;
}

static void test_policy_url(void **state)
{
    struct texts t = {.url = {"http://198.51.100.1/fleet.pol"},
                      .text = {"names x alpha.test\nrule fleet when sni in x then throttle rate=64kbit\n"}};
    struct sd_clipolicy cp = {.files = {"http://198.51.100.1/fleet.pol"}, .n_files = 1, .url_text = url_text,
                              .url_arg = &t};
    (void)state;

    struct sd_policy *p = sd_clipolicy_build(&cp, "test", "observe");
    assert_non_null(p);
    assert_int_equal(t.calls, 1);
    assert_true(has_rule(p, "fleet"));
    assert_int_equal(p->rules[0].action.rate_bps, 64000);
    assert_string_equal(p->name, "fleet.pol"); /* no preset line: named after the URL */
    sd_policy_free(p);

    /* With a preset, the URL adds to it, as a file would. */
    cp.preset = "tw21-initial";
    p = sd_clipolicy_build(&cp, "test", "observe");
    assert_non_null(p);
    assert_true(has_rule(p, "tw21") && has_rule(p, "fleet"));
    assert_string_equal(p->name, "tw21-initial");
    sd_policy_free(p);
    cp.preset = NULL;

    /* The same validation as a file: an error fails the build. */
    t.text[0] = "names x alpha.test\nrule fleet when sni in x then bogus-action\n";
    assert_null(sd_clipolicy_build(&cp, "test", "observe"));
    /* No text fetched; and a command without a fetcher. */
    t.text[0] = NULL;
    assert_null(sd_clipolicy_build(&cp, "test", "observe"));
    cp.url_text = NULL;
    t.calls = 0;
    assert_null(sd_clipolicy_build(&cp, "test", "observe"));
    assert_int_equal(t.calls, 0);
}

static void test_preset_and_at_urls(void **state)
{
    struct texts t = {.url = {"http://c/preset", "http://c/at"},
                      .text = {"# this week's preset\n  tw22-block \n", "2021-03-10T09:00Z\n"}};
    struct sd_clipolicy cp = {.url_text = url_text, .url_arg = &t};
    (void)state;

    assert_int_equal(sd_clipolicy_opt(&cp, "test", 0x100, "http://c/preset"), 0);
    struct sd_policy *p = sd_clipolicy_build(&cp, "test", "observe");
    assert_non_null(p);
    assert_string_equal(p->name, "tw22-block");
    sd_policy_free(p);
    t.text[0] = "no-such-preset\n";
    assert_null(sd_clipolicy_build(&cp, "test", "observe"));
    t.text[0] = "# nothing but a comment\n";
    assert_null(sd_clipolicy_build(&cp, "test", "observe"));

    /* --at URL: not parsed as a time while options are read; the fetched time is. */
    struct sd_clipolicy at = {.url_text = url_text, .url_arg = &t};
    assert_int_equal(sd_clipolicy_opt(&at, "test", 0x103, "http://c/at"), 0);
    assert_int_equal(sd_clipolicy_opt(&at, "test", 0x100, "observe"), 2); /* still exclusive */
    p = sd_clipolicy_build(&at, "test", "observe");
    assert_non_null(p);
    assert_true(has_rule(p, "tw21"));
    sd_policy_free(p);
    t.text[1] = "yesterday\n";
    assert_null(sd_clipolicy_build(&at, "test", "observe"));
    t.text[1] = "2001-01-01T00:00Z\n"; /* before the timeline */
    assert_null(sd_clipolicy_build(&at, "test", "observe"));
    struct sd_clipolicy plain = {0};
    assert_int_equal(sd_clipolicy_opt(&plain, "test", 0x103, "not-a-time"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_url),
        cmocka_unit_test(test_preset_and_at_urls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
