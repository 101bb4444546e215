/*
 * test_cmdopt.c - option numbers of the live commands: what strtoull would
 * let through and these helpers must not (signs, spaces, trailing junk,
 * overflow past a suffix), and the seconds parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cmdopt.h"
#include "sd.h"

static void test_u64(void **state)
{
    uint64_t v = 0;
    (void)state;

    assert_int_equal(sd_opt_u64("443", 65535, 0, &v), 0);
    assert_int_equal(v, 443);
    assert_int_equal(sd_opt_u64("0x40000000", UINT32_MAX, 0, &v), 0);
    assert_int_equal(v, 0x40000000);
    assert_int_equal(sd_opt_u64("65536", 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("-1", 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64(" 5", 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("5x", 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("", 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64(NULL, 65535, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("99999999999999999999999", UINT64_MAX, 0, &v), SD_EINVAL);
    /* Suffixes only where allowed, powers of 1024, overflow checked after scaling. */
    assert_int_equal(sd_opt_u64("16k", UINT64_MAX, 0, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("16k", UINT64_MAX, 1, &v), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(sd_opt_u64("3M", UINT64_MAX, 1, &v), 0);
    assert_int_equal(v, 3u << 20);
    assert_int_equal(sd_opt_u64("16g", UINT64_MAX, 1, &v), 0);
    assert_int_equal(v, 16ull << 30);
    assert_int_equal(sd_opt_u64("2g", (1ull << 31) - 1, 1, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("1gb", UINT64_MAX, 1, &v), SD_EINVAL);
    assert_int_equal(sd_opt_u64("1t", UINT64_MAX, 1, &v), SD_EINVAL);
}

static void test_seconds(void **state)
{
    uint64_t ns = 0;
    (void)state;

    assert_int_equal(sd_opt_seconds("5", &ns), 0);
    assert_int_equal(ns, 5000000000ull);
    assert_int_equal(sd_opt_seconds("0.25", &ns), 0);
    assert_int_equal(ns, 250000000ull);
    assert_int_equal(sd_opt_seconds(".5", &ns), 0);
    assert_int_equal(ns, 500000000ull);
    assert_int_equal(sd_opt_seconds("-1", &ns), SD_EINVAL);
    assert_int_equal(sd_opt_seconds("1s", &ns), SD_EINVAL);
    assert_int_equal(sd_opt_seconds("nan", &ns), SD_EINVAL);
    assert_int_equal(sd_opt_seconds("1e9", &ns), SD_EINVAL);
    assert_int_equal(sd_opt_seconds("", &ns), SD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_u64), cmocka_unit_test(test_seconds)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
