/*
 * test_dns.c - DNS query names: a real query (with an EDNS0 OPT record) as
 * bytes, the TCP form, escapes, compression pointers (valid, loops, forward,
 * into the header, the hop bound), the 63/255 bounds, and truncation at every
 * length against a guard page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bytes.h"
#include "dns.h"

/* "dig www.example.com A": RD and AD set, one question, an OPT record with a cookie. */
static const uint8_t query[] = {
    0x4a, 0x3b, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,            /* header */
    0x03, 'w',  'w',  'w',  0x07, 'e',  'x',  'a',  'm',  'p',  'l',  'e',  0x03, 'c', /* qname */
    'o',  'm',  0x00, 0x00, 0x01, 0x00, 0x01,                                          /* A IN */
    0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c,                  /* OPT */
    0x00, 0x0a, 0x00, 0x08, 0x5b, 0x1f, 0x4c, 0x27, 0x93, 0x0e, 0x2d, 0x6a,            /* COOKIE */
};

enum { QUESTION_END = 33 };

/* A query with the given QNAME bytes (A IN), written to |buf|. */
static size_t make_query(uint8_t *buf, const uint8_t *qname, size_t n)
{
    static const uint8_t hdr[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    memcpy(buf, hdr, sizeof(hdr));
    memcpy(buf + 12, qname, n);
    static const uint8_t tail[] = {0, 1, 0, 1};
    memcpy(buf + 12 + n, tail, 4);
    return 12 + n + 4;
}

static int parse(const uint8_t *p, size_t n, struct sd_dns_query *q)
{
    return sd_dns_parse_query(p, p + n, q);
}

static void test_real_query(void **state)
{
    (void)state;
    struct sd_dns_query q;
    assert_int_equal(parse(query, sizeof(query), &q), QUESTION_END);
    assert_int_equal(q.id, 0x4a3b);
    assert_int_equal(q.flags, 0x0120);
    assert_int_equal(q.qtype, 1);
    assert_int_equal(q.qclass, 1);
    assert_string_equal(q.name, "www.example.com");
    assert_int_equal(q.name_len, 15);
}

static void test_tcp(void **state)
{
    (void)state;
    uint8_t buf[sizeof(query) + 2];
    struct sd_dns_query q;
    sd_put16be(buf, sizeof(query));
    memcpy(buf + 2, query, sizeof(query));
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + sizeof(buf), &q), QUESTION_END + 2);
    assert_string_equal(q.name, "www.example.com");
    /* A message length too short for a header, or ending inside the question. */
    sd_put16be(buf, 11);
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + sizeof(buf), &q), SD_EPROTO);
    sd_put16be(buf, 20);
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + sizeof(buf), &q), SD_EPROTO);
    /* ... but while the message itself is incomplete, more may come. */
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + 2 + 19, &q), SD_EAGAIN);
    sd_put16be(buf, QUESTION_END);
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + 2 + QUESTION_END, &q), QUESTION_END + 2);
    assert_int_equal(sd_dns_parse_query_tcp(buf, buf + 1, &q), SD_EAGAIN);
}

static void test_names(void **state)
{
    (void)state;
    uint8_t m[600] = {0};
    struct sd_dns_query q;
    static const uint8_t mixed[] = {7, 'T', 'w', 'I', 't', 'T', 'e', 'R', 3, 'C', 'o', 'M', 0};
    size_t n = make_query(m, mixed, sizeof(mixed));
    assert_int_equal(parse(m, n, &q), (int)n);
    assert_string_equal(q.name, "TwItTeR.CoM"); /* case kept */
    static const uint8_t root[] = {0};
    n = make_query(m, root, sizeof(root));
    assert_int_equal(parse(m, n, &q), 17);
    assert_int_equal(q.name_len, 0);
    assert_string_equal(q.name, "");
    static const uint8_t odd[] = {6, 'a', 0x00, '.', '\\', ' ', 0xff, 1, '-', 0};
    n = make_query(m, odd, sizeof(odd));
    assert_int_equal(parse(m, n, &q), (int)n);
    assert_string_equal(q.name, "a\\000\\046\\092\\032\\255.-");
    assert_int_equal(q.name_len, strlen(q.name));
}

static void test_length_bounds(void **state)
{
    (void)state;
    uint8_t name[300], m[600];
    struct sd_dns_query q;
    /* 63 + 63 + 63 + 61: a 255-byte wire name, 253 characters of text. */
    size_t o = 0;
    static const uint8_t lens[] = {63, 63, 63, 61};
    for (size_t i = 0; i < sizeof(lens); i++) {
        name[o++] = lens[i];
        memset(name + o, 'a' + (int)i, lens[i]);
        o += lens[i];
    }
    name[o++] = 0;
    size_t n = make_query(m, name, o);
    assert_int_equal(parse(m, n, &q), (int)n);
    assert_int_equal(q.name_len, 253);
    assert_int_equal(strlen(q.name), 253);
    /* One more byte in the last label: 256 bytes on the wire. */
    name[3 * 64] = 62;
    memmove(name + 3 * 64 + 63, name + 3 * 64 + 62, 1);
    name[3 * 64 + 62] = 'd';
    n = make_query(m, name, o + 1);
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    /* Label lengths 64..191 are the reserved 01/10 label types. */
    static const uint8_t l64[] = {0x40, 'a', 0}, l128[] = {0x80, 'a', 0};
    n = make_query(m, l64, sizeof(l64));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    n = make_query(m, l128, sizeof(l128));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    /* Two labels of 63 control bytes fit on the wire but not as \DDD text. */
    o = 0;
    for (int i = 0; i < 2; i++) {
        name[o++] = 63;
        memset(name + o, 0x01, 63);
        o += 63;
    }
    name[o++] = 0;
    n = make_query(m, name, o);
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
}

static void test_pointers(void **state)
{
    (void)state;
    uint8_t m[600] = {0};
    struct sd_dns_query q;
    /* A backwards pointer into the middle of the name's own label: 13 holds a zero byte. */
    static const uint8_t back[] = {1, 0, 0xc0, 13};
    size_t n = make_query(m, back, sizeof(back));
    assert_int_equal(parse(m, n, &q), 20); /* the pointer ends the question's name */
    assert_string_equal(q.name, "\\000");
    /* The target's label would run past the pointer: found by fuzzing, where
     * the count returned then did not cover the bytes the name was read from. */
    static const uint8_t overlap[] = {1, 5, 0xc0, 13, 'a', 'b', 'c', 'd', 0};
    n = make_query(m, overlap, sizeof(overlap));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    static const uint8_t into_ptr[] = {1, 1, 0xc0, 13};
    n = make_query(m, into_ptr, sizeof(into_ptr));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    static const uint8_t loop[] = {3, 'a', 'b', 'c', 0xc0, 12};
    n = make_query(m, loop, sizeof(loop));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    static const uint8_t self[] = {0xc0, 12};
    n = make_query(m, self, sizeof(self));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    static const uint8_t fwd[] = {1, 'a', 0xc0, 20, 0, 0, 0, 0, 1, 'b', 0};
    n = make_query(m, fwd, sizeof(fwd));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
    static const uint8_t hdr[] = {1, 'a', 0xc0, 4};
    n = make_query(m, hdr, sizeof(hdr));
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
}

/* A 63-byte label hiding a descending chain of pointers (each to the one two
 * bytes before it, the last to a zero byte), then a pointer to the chain's top. */
static size_t chain_query(uint8_t *m, int hops)
{
    uint8_t name[70];
    memset(name, 'x', sizeof(name));
    name[0] = 63;
    name[1] = 0; /* offset 13 */
    for (int i = 1; i < hops; i++) {
        size_t at = 1 + 2 * (size_t)i; /* offset 13 + 2i points to 13 + 2(i - 1) */
        name[at] = 0xc0;
        name[at + 1] = (uint8_t)(13 + 2 * (i - 1));
    }
    name[64] = 0xc0;
    name[65] = (uint8_t)(13 + 2 * (hops - 1));
    return make_query(m, name, 66);
}

static void test_pointer_hops(void **state)
{
    (void)state;
    uint8_t m[600] = {0};
    struct sd_dns_query q;
    size_t n = chain_query(m, 16);
    assert_int_equal(parse(m, n, &q), (int)n);
    assert_int_equal(q.name[0], '\\');
    n = chain_query(m, 17);
    assert_int_equal(parse(m, n, &q), SD_EPROTO);
}

static void test_not_a_query(void **state)
{
    (void)state;
    uint8_t m[sizeof(query)];
    struct sd_dns_query q;
    memcpy(m, query, sizeof(m));
    m[2] |= 0x80; /* QR: a response */
    assert_int_equal(parse(m, sizeof(m), &q), SD_EPROTO);
    assert_int_equal(parse(m, 3, &q), SD_EPROTO);
    memcpy(m, query, sizeof(m));
    m[5] = 0; /* QDCOUNT 0 */
    assert_int_equal(parse(m, sizeof(m), &q), SD_EPROTO);
    assert_int_equal(parse(m, 6, &q), SD_EPROTO);
}

static void test_truncation(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    assert_int_equal(mprotect(base + page, page, PROT_NONE), 0);
    struct sd_dns_query q;
    for (size_t k = 0; k <= sizeof(query); k++) {
        uint8_t *p = base + page - k;
        memcpy(p, query, k);
        assert_int_equal(sd_dns_parse_query(p, p + k, &q), k < QUESTION_END ? SD_EAGAIN : QUESTION_END);
    }
    uint8_t tcp[sizeof(query) + 2];
    sd_put16be(tcp, sizeof(query));
    memcpy(tcp + 2, query, sizeof(query));
    for (size_t k = 0; k <= sizeof(tcp); k++) {
        uint8_t *p = base + page - k;
        memcpy(p, tcp, k);
        int want = k < QUESTION_END + 2 ? SD_EAGAIN : QUESTION_END + 2;
        assert_int_equal(sd_dns_parse_query_tcp(p, p + k, &q), want);
    }
    munmap(base, 2 * page);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_query),    cmocka_unit_test(test_tcp),        cmocka_unit_test(test_names),
        cmocka_unit_test(test_length_bounds), cmocka_unit_test(test_pointers),   cmocka_unit_test(test_pointer_hops),
        cmocka_unit_test(test_not_a_query),   cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
