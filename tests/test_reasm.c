/*
 * test_reasm.c - the stream reassembler: order, overlap ("first wins"),
 * duplicates, the range limit, the cap, and a randomised comparison with a
 * byte-map model (a fixed seed, so every run checks the same 20,000 pieces).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "reasm.h"

static const uint8_t *u8(const char *s)
{
    return (const uint8_t *)s;
}

static void test_in_order(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct sd_reasm r;
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_reasm_add(&r, 0, u8("abc"), 3), 3);
    assert_int_equal(sd_reasm_add(&r, 3, u8("def"), 3), 6);
    assert_int_equal(sd_reasm_add(&r, 6, u8("g"), 1), 7);
    assert_memory_equal(buf, "abcdefg", 7);
    assert_int_equal(r.contig, 7);
    assert_int_equal(r.high, 7);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.clipped, 0);
}

static void test_out_of_order(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct sd_reasm r;
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_reasm_add(&r, 6, u8("ghi"), 3), 0);
    assert_int_equal(sd_reasm_add(&r, 3, u8("def"), 3), 0);
    assert_int_equal(r.n, 1); /* touching pieces are one range */
    assert_int_equal(r.r[0].start, 3);
    assert_int_equal(r.r[0].end, 9);
    assert_int_equal(r.high, 9);
    assert_int_equal(sd_reasm_add(&r, 0, u8("abc"), 3), 9);
    assert_int_equal(r.n, 0);
    assert_memory_equal(buf, "abcdefghi", 9);

    /* Reverse order, one byte at a time, with a hole in between. */
    sd_reasm_init(&r, buf, sizeof(buf));
    for (int i = 9; i >= 1; i--)
        assert_int_equal(sd_reasm_add(&r, (uint64_t)i, u8("0123456789") + i, 1), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(sd_reasm_add(&r, 0, u8("0"), 1), 10);
    assert_memory_equal(buf, "0123456789", 10);
}

static void test_overlap_first_wins(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct sd_reasm r;
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_reasm_add(&r, 0, u8("abcdef"), 6), 6);
    /* Inside the prefix: ignored. */
    assert_int_equal(sd_reasm_add(&r, 2, u8("XYZ"), 3), 6);
    /* Straddling the prefix end: only the new bytes are taken. */
    assert_int_equal(sd_reasm_add(&r, 4, u8("PQRS"), 4), 8);
    assert_memory_equal(buf, "abcdefRS", 8);

    /* Beyond a hole: a later piece overlapping both ends of a range. */
    assert_int_equal(sd_reasm_add(&r, 12, u8("hello"), 5), 8);
    assert_int_equal(sd_reasm_add(&r, 10, u8("WORLD1234"), 9), 8);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].start, 10);
    assert_int_equal(r.r[0].end, 19);
    assert_int_equal(sd_reasm_add(&r, 8, u8("--"), 2), 19);
    assert_memory_equal(buf, "abcdefRS--WOhello34", 19);
}

static void test_duplicates(void **state)
{
    (void)state;
    uint8_t buf[32];
    struct sd_reasm r, before;
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_reasm_add(&r, 4, u8("data"), 4), 0);
    memcpy(&before, &r, sizeof(r));
    assert_int_equal(sd_reasm_add(&r, 4, u8("data"), 4), 0);
    assert_int_equal(sd_reasm_add(&r, 5, u8("at"), 2), 0);
    assert_memory_equal(&r, &before, sizeof(r));
    assert_int_equal(sd_reasm_add(&r, 0, u8("some"), 4), 8);
    assert_int_equal(sd_reasm_add(&r, 0, u8("somedata"), 8), 8);
    assert_int_equal(sd_reasm_add(&r, 0, u8("xxxx"), 0), 8); /* empty piece */
    assert_memory_equal(buf, "somedata", 8);
}

static void test_too_many_holes(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct sd_reasm r, before;
    uint8_t copy[64];
    sd_reasm_init(&r, buf, sizeof(buf));
    memset(buf, 0, sizeof(buf));
    /* Ranges at 2, 5, 8, ...: each one byte with a hole before it. */
    for (int i = 0; i < SD_REASM_RANGES; i++)
        assert_int_equal(sd_reasm_add(&r, (uint64_t)(2 + 3 * i), u8("r"), 1), 0);
    assert_int_equal(r.n, SD_REASM_RANGES);

    memcpy(&before, &r, sizeof(r));
    memcpy(copy, buf, sizeof(buf));
    /* A new island needs one more range: refused, nothing changes. */
    assert_int_equal(sd_reasm_add(&r, 40, u8("new"), 3), SD_ENOMEM);
    assert_int_equal(sd_reasm_add(&r, 0, u8("x"), 0), 0);
    assert_memory_equal(&r, &before, sizeof(r));
    assert_memory_equal(buf, copy, sizeof(buf));

    /* Touching an existing range, or bridging two, needs no new range. */
    assert_int_equal(sd_reasm_add(&r, 3, u8("t"), 1), 0);
    assert_int_equal(r.n, SD_REASM_RANGES);
    assert_int_equal(sd_reasm_add(&r, 4, u8("b"), 1), 0);
    assert_int_equal(r.n, SD_REASM_RANGES - 1);
    /* Now there is room again. */
    assert_int_equal(sd_reasm_add(&r, 40, u8("new"), 3), 0);
    assert_int_equal(r.n, SD_REASM_RANGES);
    /* Filling the front hole absorbs the first range. */
    assert_int_equal(sd_reasm_add(&r, 0, u8("ff"), 2), 6);
    assert_memory_equal(buf, "ffrtbr", 6);
}

static void test_cap(void **state)
{
    (void)state;
    uint8_t mem[16];
    struct sd_reasm r;
    memset(mem, 0xee, sizeof(mem));
    sd_reasm_init(&r, mem, 10);
    assert_int_equal(sd_reasm_add(&r, 0, u8("0123"), 4), 4);
    assert_int_equal(r.clipped, 0);
    assert_int_equal(sd_reasm_add(&r, 6, u8("6789abcd"), 8), 4);
    assert_int_equal(r.clipped, 1);
    assert_int_equal(r.high, 10);
    assert_int_equal(sd_reasm_add(&r, 4, u8("45"), 2), 10);
    assert_memory_equal(mem, "0123456789", 10);
    for (size_t i = 10; i < sizeof(mem); i++)
        assert_int_equal(mem[i], 0xee); /* nothing written past the cap */

    /* Entirely past the cap, and far past it. */
    sd_reasm_init(&r, mem, 10);
    assert_int_equal(sd_reasm_add(&r, 10, u8("x"), 1), 0);
    assert_int_equal(r.clipped, 1);
    sd_reasm_init(&r, mem, 10);
    assert_int_equal(sd_reasm_add(&r, (uint64_t)1 << 40, u8("x"), 1), 0);
    assert_int_equal(r.clipped, 1);
    assert_int_equal(r.n, 0);

    /* A length whose end overflows must clip, not wrap: only the bytes up
     * to the cap are read from the piece. */
    sd_reasm_init(&r, mem, 10);
    assert_int_equal(sd_reasm_add(&r, 0, u8("ABCDE"), 5), 5);
    assert_int_equal(sd_reasm_add(&r, 5, u8("FGHIJ"), SIZE_MAX), 10);
    assert_int_equal(r.clipped, 1);
    assert_memory_equal(mem, "ABCDEFGHIJ", 10);
    sd_reasm_init(&r, mem, 10);
    assert_int_equal(sd_reasm_add(&r, 7, u8("xyz"), SIZE_MAX - 3), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.r[0].start, 7);
    assert_int_equal(r.r[0].end, 10);
}

/* ---- randomised comparison with a byte map ---- */

enum { MODEL_CAP = 200 };

struct model {
    uint8_t data[MODEL_CAP];
    uint8_t present[MODEL_CAP];
};

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, good enough for picking offsets. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint32_t model_contig(const struct model *m)
{
    uint32_t c = 0;
    while (c < MODEL_CAP && m->present[c])
        c++;
    return c;
}

static int model_runs(const struct model *m, uint32_t from)
{
    int runs = 0;
    for (uint32_t i = from; i < MODEL_CAP; i++)
        if (m->present[i] && (i == from || !m->present[i - 1]))
            runs++;
    return runs;
}

/* The model's add: first wins, and a piece that would leave more than
 * SD_REASM_RANGES runs past the prefix is refused. */
static int model_add(struct model *m, uint64_t off, const uint8_t *p, size_t n, int *clipped)
{
    struct model next = *m;
    int clip = 0;
    for (size_t i = 0; i < n; i++) {
        if (off + i >= MODEL_CAP) {
            clip = 1;
            break;
        }
        if (!next.present[off + i]) {
            next.present[off + i] = 1;
            next.data[off + i] = p[i];
        }
    }
    if (model_runs(&next, model_contig(&next)) > SD_REASM_RANGES)
        return SD_ENOMEM;
    *m = next;
    *clipped |= clip;
    return (int)model_contig(m);
}

static void check_against_model(const struct sd_reasm *r, const struct model *m, int clipped)
{
    uint32_t c = model_contig(m), high = 0;
    assert_int_equal(r->contig, c);
    assert_int_equal(r->clipped, clipped);
    for (uint32_t i = 0; i < MODEL_CAP; i++)
        if (m->present[i]) {
            assert_int_equal(r->data[i], m->data[i]);
            high = i + 1;
        }
    assert_int_equal(r->high, high);
    /* The ranges are exactly the runs of present bytes past the prefix. */
    assert_int_equal(r->n, model_runs(m, c));
    for (int k = 0; k < r->n; k++) {
        assert_true(r->r[k].start > (k ? r->r[k - 1].end : c));
        assert_true(r->r[k].start < r->r[k].end);
        for (uint32_t i = r->r[k].start; i < r->r[k].end; i++)
            assert_true(m->present[i]);
        assert_false(m->present[r->r[k].start - 1]);
        assert_true(r->r[k].end == MODEL_CAP || !m->present[r->r[k].end]);
    }
}

static void test_random_against_model(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed5eed12345678ull;
    uint8_t src[MODEL_CAP + 64];
    int enomem = 0, completed = 0;

    for (int round = 0; round < 200; round++) {
        uint8_t buf[MODEL_CAP];
        struct sd_reasm r;
        struct model m;
        int clipped = 0;
        memset(&m, 0, sizeof(m));
        sd_reasm_init(&r, buf, MODEL_CAP);
        for (int step = 0; step < 100; step++) {
            uint64_t off = rng_next(&seed) % (MODEL_CAP + 20);
            size_t n = (size_t)(rng_next(&seed) % 24);
            for (size_t i = 0; i < n; i++)
                src[i] = (uint8_t)rng_next(&seed); /* conflicting bytes on every overlap */
            int want = model_add(&m, off, src, n, &clipped);
            int got = sd_reasm_add(&r, off, src, n);
            assert_int_equal(got, want);
            enomem += got == SD_ENOMEM;
            check_against_model(&r, &m, clipped);
        }
        completed += r.contig == MODEL_CAP;
    }
    /* The walk reached the interesting states. */
    assert_true(enomem > 10);
    assert_true(completed > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order),     cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_overlap_first_wins), cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_too_many_holes), cmocka_unit_test(test_cap),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
