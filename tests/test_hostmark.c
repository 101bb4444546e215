/*
 * test_hostmark.c - the per-client mark table (spec 4.8): marks expire,
 * are re-armed, are kept apart by tag, address and family, and a flood of
 * clients stays in the fixed table, forgetting the marks that expire first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostmark.h"

#define SEC 1000000000ULL

static const uint64_t key[2] = {1, 2};

static void addr4(uint8_t a[16], uint32_t v)
{
    memset(a, 0, 16);
    a[0] = (uint8_t)(v >> 24);
    a[1] = (uint8_t)(v >> 16);
    a[2] = (uint8_t)(v >> 8);
    a[3] = (uint8_t)v;
}

static void expiry_and_rearm(void **state)
{
    (void)state;
    struct sd_hostmark *t = sd_hostmark_new(64, key);
    assert_non_null(t);
    uint8_t a[16], b[16];
    addr4(a, 0x0a000002);
    addr4(b, 0x0a000003);
    assert_false(sd_hostmark_has(t, 0, 4, a, 0));
    sd_hostmark_set(t, 0, 4, a, 600 * SEC);
    assert_true(sd_hostmark_has(t, 0, 4, a, 599 * SEC));
    assert_false(sd_hostmark_has(t, 0, 4, a, 600 * SEC)); /* until, exclusive */
    assert_false(sd_hostmark_has(t, 1, 4, a, 1 * SEC));   /* another tag */
    assert_false(sd_hostmark_has(t, 0, 4, b, 1 * SEC));   /* another client */
    assert_false(sd_hostmark_has(t, 0, 6, a, 1 * SEC));   /* the same bytes as IPv6 */
    sd_hostmark_set(t, 0, 4, a, 300 * SEC);                /* earlier: keeps the later expiry */
    assert_true(sd_hostmark_has(t, 0, 4, a, 599 * SEC));
    sd_hostmark_set(t, 0, 4, a, 1200 * SEC);               /* re-armed */
    assert_true(sd_hostmark_has(t, 0, 4, a, 1199 * SEC));
    assert_int_equal(sd_hostmark_count(t, 0), 1);
    /* IPv4 ignores the bytes after the address. */
    uint8_t a2[16];
    memcpy(a2, a, 16);
    a2[15] = 0xff;
    assert_true(sd_hostmark_has(t, 0, 4, a2, 1 * SEC));
    sd_hostmark_free(t);
}

static void flood_stays_bounded(void **state)
{
    (void)state;
    struct sd_hostmark *t = sd_hostmark_new(1000, key); /* rounded up to 1024 */
    assert_non_null(t);
    uint8_t a[16];
    /* One long-lived mark, then 100000 short ones from other clients. */
    addr4(a, 0xc0000201);
    sd_hostmark_set(t, 3, 4, a, 10000 * SEC);
    for (uint32_t i = 0; i < 100000; i++) {
        addr4(a, 0x0a000000 + i);
        sd_hostmark_set(t, 3, 4, a, (uint64_t)(1 + i % 50) * SEC);
    }
    assert_true(sd_hostmark_count(t, 0) <= 1024);
    assert_true(sd_hostmark_count(t, 0) > 900); /* the table is used, not thrown away */
    /* The latest client is there; the long-lived mark outlived the flood
     * (the entries that expire first are replaced first). */
    addr4(a, 0x0a000000 + 99999);
    assert_true(sd_hostmark_has(t, 3, 4, a, 0));
    addr4(a, 0xc0000201);
    assert_true(sd_hostmark_has(t, 3, 4, a, 5000 * SEC));
    sd_hostmark_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(expiry_and_rearm),
        cmocka_unit_test(flood_stays_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
