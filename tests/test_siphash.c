/*
 * test_siphash.c - SipHash against published vectors: SipHash-2-4 from the
 * reference implementation (key 00..0f, message 00..len-1, all 64 lengths)
 * and SipHash-1-3 from the same reference code as quoted by other projects
 * (OCaml's runtime tests with a zero key, Firedancer's with key 00..0f).
 * The streaming pieces must agree with the one-shot form.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "siphash.h"

static const uint64_t sip24_vectors[64] = {
    0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL, 0x85676696d7fb7e2dULL,
    0xcf2794e0277187b7ULL, 0x18765564cd99a68dULL, 0xcbc9466e58fee3ceULL, 0xab0200f58b01d137ULL,
    0x93f5f5799a932462ULL, 0x9e0082df0ba9e4b0ULL, 0x7a5dbbc594ddb9f3ULL, 0xf4b32f46226bada7ULL,
    0x751e8fbc860ee5fbULL, 0x14ea5627c0843d90ULL, 0xf723ca908e7af2eeULL, 0xa129ca6149be45e5ULL,
    0x3f2acc7f57c29bdbULL, 0x699ae9f52cbe4794ULL, 0x4bc1b3f0968dd39cULL, 0xbb6dc91da77961bdULL,
    0xbed65cf21aa2ee98ULL, 0xd0f2cbb02e3b67c7ULL, 0x93536795e3a33e88ULL, 0xa80c038ccd5ccec8ULL,
    0xb8ad50c6f649af94ULL, 0xbce192de8a85b8eaULL, 0x17d835b85bbb15f3ULL, 0x2f2e6163076bcfadULL,
    0xde4daaaca71dc9a5ULL, 0xa6a2506687956571ULL, 0xad87a3535c49ef28ULL, 0x32d892fad841c342ULL,
    0x7127512f72f27cceULL, 0xa7f32346f95978e3ULL, 0x12e0b01abb051238ULL, 0x15e034d40fa197aeULL,
    0x314dffbe0815a3b4ULL, 0x027990f029623981ULL, 0xcadcd4e59ef40c4dULL, 0x9abfd8766a33735cULL,
    0x0e3ea96b5304a7d0ULL, 0xad0c42d6fc585992ULL, 0x187306c89bc215a9ULL, 0xd4a60abcf3792b95ULL,
    0xf935451de4f21df2ULL, 0xa9538f0419755787ULL, 0xdb9acddff56ca510ULL, 0xd06c98cd5c0975ebULL,
    0xe612a3cb9ecba951ULL, 0xc766e62cfcadaf96ULL, 0xee64435a9752fe72ULL, 0xa192d576b245165aULL,
    0x0a8787bf8ecb74b2ULL, 0x81b3e73d20b49b6fULL, 0x7fa8220ba3b2eceaULL, 0x245731c13ca42499ULL,
    0xb78dbfaf3a8d83bdULL, 0xea1ad565322a1a0bULL, 0x60e61c23a3795013ULL, 0x6606d7e446282b93ULL,
    0x6ca4ecb15c5f91e1ULL, 0x9f626da15c9625f3ULL, 0xe51b38608ef25f57ULL, 0x958a324ceb064572ULL,
};

/* SipHash-1-3, key 00..0f, message 00..len-1, len 0..19. */
static const uint64_t sip13_vectors[20] = {
    0xabac0158050fc4dcULL, 0xc9f49bf37d57ca93ULL, 0x82cb9b024dc7d44dULL, 0x8bf80ab8e7ddf7fbULL,
    0xcf75576088d38328ULL, 0xdef9d52f49533b67ULL, 0xc50d2b50c59f22a7ULL, 0xd3927d989bb11140ULL,
    0x369095118d299a8eULL, 0x25a48eb36c063de4ULL, 0x79de85ee92ff097fULL, 0x70c118c1f94dc352ULL,
    0x78a384b157b4d9a2ULL, 0x306f760c1229ffa7ULL, 0x605aa111c0f95d34ULL, 0xd320d86d2a519956ULL,
    0xcc4fdd1a7d908b66ULL, 0x9cf2689063dbd80cULL, 0x8ffc389cb473e63eULL, 0xf21f9de58d297d1cULL,
};

static void seq(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)i;
}

static void test_siphash24_reference(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    seq(key, sizeof(key));
    seq(msg, sizeof(msg));
    for (size_t len = 0; len < 64; len++)
        assert_int_equal(sd_siphash24(key, msg, len), sip24_vectors[len]);
}

static void test_siphash13_reference(void **state)
{
    (void)state;
    uint8_t key[16], zero[16] = {0}, msg[64];
    seq(key, sizeof(key));
    seq(msg, sizeof(msg));
    for (size_t len = 0; len < 20; len++)
        assert_int_equal(sd_siphash(key, msg, len), sip13_vectors[len]);
    assert_int_equal(sd_siphash(zero, msg, 0), 0xd1fba762150c532cULL);
    assert_int_equal(sd_siphash(zero, msg, 1), 0x68a914128e01e473ULL);
    assert_int_equal(sd_siphash(key, NULL, 0), sip13_vectors[0]);
}

/* The streaming form, block by block and finalising a copy, equals the one-shot form. */
static void test_siphash_streaming(void **state)
{
    (void)state;
    uint8_t key[16], msg[64];
    seq(key, sizeof(key));
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 37 + 11);
    struct sd_sipstate st;
    sd_sip_init(&st, key);
    for (size_t len = 0; len < 64; len++) {
        if (len && len % 8 == 0)
            sd_sip_block(&st, sd_sip_rd64le(msg + len - 8), 1);
        struct sd_sipstate fin = st;
        size_t full = len & ~(size_t)7;
        uint64_t h = sd_sip_final(&fin, sd_sip_lastword(msg + full, len - full, len), 1, 3);
        assert_int_equal(h, sd_siphash(key, msg, len));
    }
}

/* Flipping any key or message bit changes the hash. */
static void test_siphash_sensitivity(void **state)
{
    (void)state;
    uint8_t key[16], msg[24];
    seq(key, sizeof(key));
    seq(msg, sizeof(msg));
    uint64_t base = sd_siphash(key, msg, sizeof(msg));
    for (int b = 0; b < 128; b++) {
        key[b / 8] ^= (uint8_t)(1u << (b % 8));
        assert_int_not_equal(sd_siphash(key, msg, sizeof(msg)), base);
        key[b / 8] ^= (uint8_t)(1u << (b % 8));
    }
    for (int b = 0; b < 8 * (int)sizeof(msg); b++) {
        msg[b / 8] ^= (uint8_t)(1u << (b % 8));
        assert_int_not_equal(sd_siphash(key, msg, sizeof(msg)), base);
        msg[b / 8] ^= (uint8_t)(1u << (b % 8));
    }
    /* The length is part of the hash: a trailing zero byte is not padding. */
    uint8_t z[8] = {0};
    assert_int_not_equal(sd_siphash(key, z, 3), sd_siphash(key, z, 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siphash24_reference),
        cmocka_unit_test(test_siphash13_reference),
        cmocka_unit_test(test_siphash_streaming),
        cmocka_unit_test(test_siphash_sensitivity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
