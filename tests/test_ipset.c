/*
 * test_ipset.c - CIDR sets: nested prefixes at their boundaries, both
 * families, the edges of the address space, strict text parsing, a
 * cross-check against a naive containment loop, and the Re:filter ipsum list
 * when ../shared/data/refilter is present.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "names.h"

#define BIT(t) ((uint64_t)1 << (t))

static void add(struct sd_ipset *s, const char *text, unsigned tag)
{
    int rc = sd_ipset_add_text(s, text, strlen(text), tag);
    if (rc != 0)
        fail_msg("adding \"%s\": %d", text, rc);
}

static uint64_t v4(const struct sd_ipset *s, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    const uint8_t addr[4] = {a, b, c, d};
    return sd_ipset_lookup(s, 4, addr);
}

/* Looks up an address written as all eight groups (parsed here, independently
 * of the parser under test). */
static uint64_t v6(const struct sd_ipset *s, const char *text)
{
    uint8_t a[16] = {0};
    unsigned g[8] = {0};
    int n = sscanf(text, "%x:%x:%x:%x:%x:%x:%x:%x", &g[0], &g[1], &g[2], &g[3], &g[4], &g[5], &g[6], &g[7]);
    assert_int_equal(n, 8);
    for (int i = 0; i < 8; i++) {
        a[2 * i] = (uint8_t)(g[i] >> 8);
        a[2 * i + 1] = (uint8_t)g[i];
    }
    return sd_ipset_lookup(s, 6, a);
}

static void test_nested_v4(void **state)
{
    (void)state;
    struct sd_ipset *s = sd_ipset_new();
    assert_non_null(s);
    add(s, "10.0.0.0/8", 1);
    add(s, "10.1.0.0/16", 2);
    add(s, "10.1.2.3", 3);
    add(s, "10.1.2.0/24", 4);
    add(s, "10.1.2.0/24", 5);
    add(s, "192.0.2.0/24", 1);
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(sd_ipset_count(s), 6);
    assert_int_equal(v4(s, 9, 255, 255, 255), 0);
    assert_int_equal(v4(s, 10, 0, 0, 0), BIT(1));
    assert_int_equal(v4(s, 10, 0, 255, 255), BIT(1));
    assert_int_equal(v4(s, 10, 1, 0, 0), BIT(1) | BIT(2));
    assert_int_equal(v4(s, 10, 1, 1, 255), BIT(1) | BIT(2));
    assert_int_equal(v4(s, 10, 1, 2, 0), BIT(1) | BIT(2) | BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 1, 2, 2), BIT(1) | BIT(2) | BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 1, 2, 3), BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 1, 2, 4), BIT(1) | BIT(2) | BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 1, 2, 255), BIT(1) | BIT(2) | BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 1, 3, 0), BIT(1) | BIT(2));
    assert_int_equal(v4(s, 10, 1, 255, 255), BIT(1) | BIT(2));
    assert_int_equal(v4(s, 10, 2, 0, 0), BIT(1));
    assert_int_equal(v4(s, 10, 255, 255, 255), BIT(1));
    assert_int_equal(v4(s, 11, 0, 0, 0), 0);
    assert_int_equal(v4(s, 192, 0, 1, 255), 0);
    assert_int_equal(v4(s, 192, 0, 2, 0), BIT(1));
    assert_int_equal(v4(s, 192, 0, 2, 255), BIT(1));
    assert_int_equal(v4(s, 192, 0, 3, 0), 0);
    /* The families are separate sets. */
    assert_int_equal(v6(s, "a01:0:0:0:0:0:0:0"), 0);
    sd_ipset_free(s);
}

static void test_edges_v4(void **state)
{
    (void)state;
    struct sd_ipset *s = sd_ipset_new();
    add(s, "0.0.0.0/0", 0);
    add(s, "0.0.0.0/32", 1);
    add(s, "255.255.255.255/32", 2);
    add(s, "128.0.0.0/1", 3);
    add(s, "255.255.0.0/16", 63);
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(v4(s, 0, 0, 0, 0), BIT(0) | BIT(1));
    assert_int_equal(v4(s, 0, 0, 0, 1), BIT(0));
    assert_int_equal(v4(s, 127, 255, 255, 255), BIT(0));
    assert_int_equal(v4(s, 128, 0, 0, 0), BIT(0) | BIT(3));
    assert_int_equal(v4(s, 255, 254, 255, 255), BIT(0) | BIT(3));
    assert_int_equal(v4(s, 255, 255, 0, 0), BIT(0) | BIT(3) | BIT(63));
    assert_int_equal(v4(s, 255, 255, 255, 254), BIT(0) | BIT(3) | BIT(63));
    assert_int_equal(v4(s, 255, 255, 255, 255), BIT(0) | BIT(2) | BIT(3) | BIT(63));
    sd_ipset_free(s);
}

static void test_nested_v6(void **state)
{
    (void)state;
    struct sd_ipset *s = sd_ipset_new();
    add(s, "2001:db8::/32", 1);
    add(s, "2001:db8:1::/48", 2);
    add(s, "2001:db8:1::1", 3);
    add(s, "::/0", 4);
    add(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 5);
    add(s, "2001:db8:1:0:8000::/65", 6);
    add(s, "10.0.0.0/8", 7);
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(v6(s, "0:0:0:0:0:0:0:0"), BIT(4));
    assert_int_equal(v6(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), BIT(4));
    assert_int_equal(v6(s, "2001:db8:0:0:0:0:0:0"), BIT(4) | BIT(1));
    assert_int_equal(v6(s, "2001:db8:0:ffff:ffff:ffff:ffff:ffff"), BIT(4) | BIT(1));
    assert_int_equal(v6(s, "2001:db8:1:0:0:0:0:0"), BIT(4) | BIT(1) | BIT(2));
    assert_int_equal(v6(s, "2001:db8:1:0:0:0:0:1"), BIT(4) | BIT(1) | BIT(2) | BIT(3));
    assert_int_equal(v6(s, "2001:db8:1:0:0:0:0:2"), BIT(4) | BIT(1) | BIT(2));
    assert_int_equal(v6(s, "2001:db8:1:0:7fff:ffff:ffff:ffff"), BIT(4) | BIT(1) | BIT(2));
    assert_int_equal(v6(s, "2001:db8:1:0:8000:0:0:0"), BIT(4) | BIT(1) | BIT(2) | BIT(6));
    assert_int_equal(v6(s, "2001:db8:1:0:ffff:ffff:ffff:ffff"), BIT(4) | BIT(1) | BIT(2) | BIT(6));
    assert_int_equal(v6(s, "2001:db8:1:1:0:0:0:0"), BIT(4) | BIT(1) | BIT(2));
    assert_int_equal(v6(s, "2001:db8:2:0:0:0:0:0"), BIT(4) | BIT(1));
    assert_int_equal(v6(s, "2001:db9:0:0:0:0:0:0"), BIT(4));
    assert_int_equal(v6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), BIT(4));
    assert_int_equal(v6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), BIT(4) | BIT(5));
    assert_int_equal(v4(s, 10, 9, 8, 7), BIT(7));
    assert_int_equal(v4(s, 11, 0, 0, 0), 0);
    sd_ipset_free(s);
}

static void test_text_parsing(void **state)
{
    (void)state;
    const char *good[] = {
        "0.0.0.0", "255.255.255.255", "1.2.3.4/0", "1.2.3.4/32", "10.0.0.0/8", "::", "::/0", "::1",
        "1::", "1::2", "2001:db8::/32", "2001:DB8:0:0:0:0:0:1/128", "1:2:3:4:5:6:7:8", "::ffff:192.0.2.1",
        "::ffff:192.0.2.1/120", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
        "abcd:ef01:2345:6789:ABCD:EF01:2345:6789",
    };
    const char *bad[] = {
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.04", "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/08",
        "1.2.3.4/-1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1..2.3", ".1.2.3", "1.2.3.4/24/24", "a.b.c.d",
        "1.2.3.4x", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1::", "1:::2", "1::2::3", ":", ":::", "1:",
        ":1", "12345::", "g::", "::/129", "fe80::1%eth0", "::ffff:1.2.3", "::ffff:1.2.3.4:5", "1.2.3.4::",
        "1:2:3:4:5:6:7:1.2.3.4", "::1/0128", "1:2:3:4:5:6:7:8::", "::1.2.3.4.5", "/24", "1.2.3.4//8",
    };
    struct sd_ipset *s = sd_ipset_new();
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (sd_ipset_add_text(s, good[i], strlen(good[i]), 0) != 0)
            fail_msg("rejected \"%s\"", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sd_ipset_add_text(s, bad[i], strlen(bad[i]), 0) != SD_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(sd_ipset_count(s), sizeof(good) / sizeof(good[0]));
    assert_int_equal(sd_ipset_add_text(s, "1.2.3.4", 7, 64), SD_EINVAL);
    /* Length-limited: the text need not be NUL-terminated. */
    assert_int_equal(sd_ipset_add_text(s, "9.9.9.9/8garbage", 9, 1), 0);
    sd_ipset_free(s);

    /* Embedded IPv4 and "::" expansion land on the right bits. */
    s = sd_ipset_new();
    add(s, "::ffff:192.0.2.1", 1);
    add(s, "1:2:3::8", 2);
    add(s, "1::", 3);
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(v6(s, "0:0:0:0:0:ffff:c000:201"), BIT(1));
    assert_int_equal(v6(s, "1:2:3:0:0:0:0:8"), BIT(2));
    assert_int_equal(v6(s, "1:0:0:0:0:0:0:0"), BIT(3));
    assert_int_equal(v6(s, "1:0:0:0:0:0:0:1"), 0);
    sd_ipset_free(s);
}

/* Every text of the parsing test again, placed flush against a PROT_NONE page:
 * reading one byte past |n| faults. */
static void test_text_guard_page(void **state)
{
    (void)state;
    const char *texts[] = {"1.2.3.4", "10.0.0.0/8", "1.2.3.4/3", "2001:db8::/32", "::", "::1.2.3.4", "1::",
                           "1.2.3.", "1.2.3.4/", "::ffff:1.2.3", "1:", "fe80::", "255.255.255.255/32", "0"};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
    struct sd_ipset *s = sd_ipset_new();
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t n = strlen(texts[i]);
        char *p = (char *)map + page - n;
        memcpy(p, texts[i], n);
        int want = sd_ipset_add_text(s, texts[i], n, 1);
        assert_int_equal(sd_ipset_add_text(s, p, n, 1), want);
        /* Every prefix of the text, too: the parser must stop at |n|. */
        for (size_t k = 0; k < n; k++)
            (void)sd_ipset_add_text(s, p + n - k, k, 2);
    }
    sd_ipset_free(s);
    munmap(map, 2 * page);
}

static void test_host_bits_and_api(void **state)
{
    (void)state;
    struct sd_ipset *s = sd_ipset_new();
    /* Host bits are accepted and cleared. */
    add(s, "192.0.2.77/24", 1);
    add(s, "2001:db8::ffff/32", 2);
    const uint8_t a[16] = {198, 51, 100, 255};
    assert_int_equal(sd_ipset_add(s, 4, a, 25, 3), 0);
    assert_int_equal(sd_ipset_add(s, 5, a, 8, 0), SD_EINVAL);
    assert_int_equal(sd_ipset_add(s, 4, a, 33, 0), SD_EINVAL);
    assert_int_equal(sd_ipset_add(s, 6, a, 129, 0), SD_EINVAL);
    assert_int_equal(sd_ipset_add(s, 4, a, 8, 64), SD_EINVAL);
    assert_int_equal(v4(s, 192, 0, 2, 1), 0); /* not compiled yet */
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(sd_ipset_add(s, 4, a, 8, 0), SD_EINVAL);
    assert_int_equal(sd_ipset_count(s), 3);
    assert_int_equal(v4(s, 192, 0, 2, 0), BIT(1));
    assert_int_equal(v4(s, 192, 0, 2, 255), BIT(1));
    assert_int_equal(v4(s, 198, 51, 100, 127), 0); /* 198.51.100.255/25 is .128/25 */
    assert_int_equal(v4(s, 198, 51, 100, 128), BIT(3));
    assert_int_equal(v4(s, 198, 51, 100, 255), BIT(3));
    assert_int_equal(v6(s, "2001:db8:ffff:0:0:0:0:0"), BIT(2));
    assert_int_equal(sd_ipset_lookup(s, 5, a), 0);
    sd_ipset_free(s);
    sd_ipset_free(NULL);

    s = sd_ipset_new(); /* empty */
    assert_int_equal(sd_ipset_compile(s), 0);
    assert_int_equal(v4(s, 1, 2, 3, 4), 0);
    assert_int_equal(v6(s, "0:0:0:0:0:0:0:1"), 0);
    sd_ipset_free(s);
}

/* ---- cross-check against a naive loop ---- */

struct npfx {
    int family;
    uint8_t a[16];
    unsigned plen, tag;
};

static uint32_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 16);
}

static bool contains(const struct npfx *p, const uint8_t *a)
{
    for (unsigned i = 0; i < p->plen; i++)
        if (((p->a[i / 8] ^ a[i / 8]) >> (7 - i % 8)) & 1)
            return false;
    return true;
}

/* Addresses clustered in a few bytes so that prefixes nest and touch. */
static void rnd_addr(uint64_t *x, uint8_t *a, int family)
{
    size_t n = family == 4 ? 4 : 16;
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd(x);
        a[i] = r % 3 == 0 ? (uint8_t)(r >> 8) : (r % 3 == 1 ? 0 : 0xff);
    }
    if (rnd(x) % 2)
        a[0] = 10;
}

static void test_cross_check(void **state)
{
    (void)state;
    uint64_t x = 0x1234567887654321ULL;
    for (int round = 0; round < 60; round++) {
        size_t np = 1 + rnd(&x) % (round < 30 ? 10 : 400);
        struct npfx *p = calloc(np, sizeof(*p));
        struct sd_ipset *s = sd_ipset_new();
        for (size_t i = 0; i < np; i++) {
            p[i].family = rnd(&x) % 2 ? 4 : 6;
            rnd_addr(&x, p[i].a, p[i].family);
            unsigned bits = p[i].family == 4 ? 32 : 128;
            p[i].plen = rnd(&x) % 4 == 0 ? bits - rnd(&x) % 3 : rnd(&x) % (bits + 1);
            p[i].tag = rnd(&x) % 64;
            assert_int_equal(sd_ipset_add(s, p[i].family, p[i].a, p[i].plen, p[i].tag), 0);
        }
        assert_int_equal(sd_ipset_compile(s), 0);
        for (int k = 0; k < 2000; k++) {
            int family = rnd(&x) % 2 ? 4 : 6;
            uint8_t a[16];
            if (k % 2) { /* near a prefix: its first or last address, or one beside */
                const struct npfx *q = &p[rnd(&x) % np];
                family = q->family;
                memcpy(a, q->a, 16);
                unsigned bits = family == 4 ? 32 : 128;
                for (unsigned i = q->plen; i < bits; i++)
                    if (k % 4 == 1)
                        a[i / 8] |= (uint8_t)(0x80 >> (i % 8));
                int step = (int)(rnd(&x) % 3) - 1; /* -1, 0, +1 with carry */
                for (int i = (int)bits / 8 - 1; step && i >= 0; i--) {
                    a[i] = (uint8_t)(a[i] + step);
                    if ((step > 0 && a[i] != 0) || (step < 0 && a[i] != 0xff))
                        break;
                }
            } else {
                rnd_addr(&x, a, family);
            }
            uint64_t want = 0;
            for (size_t i = 0; i < np; i++)
                if (p[i].family == family && contains(&p[i], a))
                    want |= BIT(p[i].tag);
            uint64_t got = sd_ipset_lookup(s, family, a);
            if (want != got)
                fail_msg("round %d lookup %d: want %#llx got %#llx", round, k, (unsigned long long)want,
                         (unsigned long long)got);
        }
        sd_ipset_free(s);
        free(p);
    }
}

/* ---- the ipsum list ---- */

static FILE *open_shared(const char *file)
{
    const char *src = getenv("SD_SOURCE_DIR");
    const char *up[] = {"..", "../.."};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s/shared/data/refilter/%s", src ? src : SD_SOURCE_DIR, up[i], file);
        FILE *f = fopen(path, "r");
        if (f)
            return f;
    }
    return NULL;
}

static void test_ipsum_list(void **state)
{
    (void)state;
    FILE *f = open_shared("ipsum.lst");
    if (!f) {
        skip();
        return;
    }
    struct sd_ipset *s = sd_ipset_new();
    char line[128];
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        if (sd_ipset_add_text(s, line, len, (unsigned)(n % 3)) != 0)
            fail_msg("line %zu: \"%.*s\"", n + 1, (int)len, line);
        n++;
    }
    assert_true(n > 30000);
    assert_int_equal(sd_ipset_compile(s), 0);
    rewind(f);
    size_t k = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        unsigned a, b, c, d;
        assert_int_equal(sscanf(line, "%u.%u.%u.%u", &a, &b, &c, &d), 4);
        assert_true(v4(s, (uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d) & BIT(k % 3));
        k++;
    }
    fclose(f);
    assert_int_equal(v4(s, 127, 0, 0, 1), 0);
    sd_ipset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_v4),
        cmocka_unit_test(test_edges_v4),
        cmocka_unit_test(test_nested_v6),
        cmocka_unit_test(test_text_parsing),
        cmocka_unit_test(test_text_guard_page),
        cmocka_unit_test(test_host_bits_and_api),
        cmocka_unit_test(test_cross_check),
        cmocka_unit_test(test_ipsum_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
