/*
 * test_flow.c - the flow table: symmetric keys, lookups, removal, and
 * bounded memory with sampled eviction under a flood of new flows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "flow.h"

static const uint64_t key[2] = {1, 2};

static void mk(struct sd_flow_key *k, uint32_t i, int *dir)
{
    uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}, b[4] = {203, 0, 113, 5};
    sd_flow_key_make(k, 4, a, b, (uint16_t)(1024 + (i & 0x7fff)), 443, 6, dir);
}

static void symmetric_key(void **state)
{
    (void)state;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}, b[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
    struct sd_flow_key k1, k2;
    int d1, d2;
    sd_flow_key_make(&k1, 6, a, b, 5000, 443, 17, &d1);
    sd_flow_key_make(&k2, 6, b, a, 443, 5000, 17, &d2);
    assert_memory_equal(&k1, &k2, sizeof(k1));
    assert_int_not_equal(d1, d2);
    struct sd_flow_table *t = sd_flow_table_new(16, key);
    assert_int_equal(sd_flow_key_hash(t, &k1), sd_flow_key_hash(t, &k2));
    /* The same addresses with other ports are another flow. */
    sd_flow_key_make(&k2, 6, a, b, 5001, 443, 17, &d2);
    assert_memory_not_equal(&k1, &k2, sizeof(k1));
    sd_flow_table_free(t);
}

static void insert_lookup_remove(void **state)
{
    (void)state;
    struct sd_flow_table *t = sd_flow_table_new(1000, key);
    struct sd_flow_key k;
    int d;
    for (uint32_t i = 0; i < 1000; i++) {
        mk(&k, i, &d);
        uint64_t h = sd_flow_key_hash(t, &k);
        assert_int_equal(sd_flow_lookup(t, &k, h), SD_FLOW_NONE);
        uint32_t s = sd_flow_insert(t, &k, h, i, NULL, NULL);
        assert_int_equal(sd_flow_lookup(t, &k, h), s);
        assert_int_equal(sd_flow_at(t, s)->proto, 6);
    }
    assert_int_equal(sd_flow_count(t), 1000);
    for (uint32_t i = 0; i < 1000; i += 2) {
        mk(&k, i, &d);
        uint64_t h = sd_flow_key_hash(t, &k);
        sd_flow_remove(t, sd_flow_lookup(t, &k, h));
        assert_int_equal(sd_flow_lookup(t, &k, h), SD_FLOW_NONE);
    }
    assert_int_equal(sd_flow_count(t), 500);
    for (uint32_t i = 1; i < 1000; i += 2) {
        mk(&k, i, &d);
        assert_int_not_equal(sd_flow_lookup(t, &k, sd_flow_key_hash(t, &k)), SD_FLOW_NONE);
    }
    sd_flow_table_free(t);
}

static int evictions;
static void count_evict(void *arg, uint32_t slot)
{
    (void)arg;
    (void)slot;
    evictions++;
}

/* A flood of 100x the capacity keeps the table at its capacity, evicts one
 * flow per insert, and spares flows under an action while others remain. */
static void flood_stays_bounded(void **state)
{
    (void)state;
    enum { CAP = 1024 };
    struct sd_flow_table *t = sd_flow_table_new(CAP, key);
    struct sd_flow_key k;
    int d;
    /* 16 throttled flows first. */
    for (uint32_t i = 0; i < 16; i++) {
        mk(&k, i, &d);
        uint32_t s = sd_flow_insert(t, &k, sd_flow_key_hash(t, &k), 0, NULL, NULL);
        sd_flow_at(t, s)->action = 1;
    }
    evictions = 0;
    for (uint32_t i = 16; i < 100 * CAP; i++) {
        mk(&k, i, &d);
        sd_flow_insert(t, &k, sd_flow_key_hash(t, &k), i, count_evict, NULL);
        assert_true(sd_flow_count(t) <= CAP);
    }
    assert_int_equal(sd_flow_count(t), CAP);
    assert_int_equal(evictions, 100 * CAP - CAP);
    for (uint32_t i = 0; i < 16; i++) {
        mk(&k, i, &d);
        assert_int_not_equal(sd_flow_lookup(t, &k, sd_flow_key_hash(t, &k)), SD_FLOW_NONE);
    }
    sd_flow_table_free(t);
}

static void entry_is_one_cache_line(void **state)
{
    (void)state;
    assert_int_equal(sizeof(struct sd_flow), 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(symmetric_key),
        cmocka_unit_test(insert_lookup_remove),
        cmocka_unit_test(flood_stays_bounded),
        cmocka_unit_test(entry_is_one_cache_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
