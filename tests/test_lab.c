/*
 * test_lab.c - the lab's names: ids (they become namespace names and paths,
 * so nothing but [a-z0-9] passes), namespace names and roles. Building labs
 * is what tests/sh/lab_*.sh do, as root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lab.h"

static void test_ids(void **state)
{
    (void)state;
    assert_true(sd_lab_id_ok("a"));
    assert_true(sd_lab_id_ok("thr12345"));
    assert_true(sd_lab_id_ok("abcdefghij12"));
    assert_false(sd_lab_id_ok(""));
    assert_false(sd_lab_id_ok("abcdefghij123")); /* 13 characters */
    assert_false(sd_lab_id_ok("../x"));
    assert_false(sd_lab_id_ok("a/b"));
    assert_false(sd_lab_id_ok("Lab1"));
    assert_false(sd_lab_id_ok("a-b"));
    assert_false(sd_lab_id_ok("a b"));
}

static void test_names(void **state)
{
    char buf[64];
    (void)state;
    sd_lab_ns_name("x1", SD_LAB_CLIENT, buf, sizeof(buf));
    assert_string_equal(buf, "sd-x1-client");
    sd_lab_ns_name("x1", SD_LAB_CENSOR, buf, sizeof(buf));
    assert_string_equal(buf, "sd-x1-censor");
    sd_lab_ns_name("x1", SD_LAB_SERVER, buf, sizeof(buf));
    assert_string_equal(buf, "sd-x1-server");
    for (int r = 0; r < 3; r++)
        assert_int_equal(sd_lab_role_parse(sd_lab_role_name(r)), r);
    assert_int_equal(sd_lab_role_parse("router"), -1);
    assert_string_equal(sd_lab_role_name(7), "?");
}

static void test_unknown_lab(void **state)
{
    struct sd_lab_info info;
    char err[256];
    (void)state;
    /* Ids that cannot exist are refused before any path is built from them. */
    assert_int_equal(sd_lab_info("../../etc", &info), SD_ENOENT);
    assert_int_equal(sd_lab_down("../../etc", err, sizeof(err)), SD_ENOENT);
    assert_int_equal(sd_lab_enter("no/such", SD_LAB_CLIENT, NULL), SD_ENOENT);
    assert_int_equal(sd_lab_enter("x", 5, NULL), SD_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ids), cmocka_unit_test(test_names),
                                       cmocka_unit_test(test_unknown_lab)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
