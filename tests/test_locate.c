/*
 * test_locate.c - the pieces of trigger and hop localisation that need no
 * censor: the ClientHello field labeller (on OpenSSL's own hellos, checked
 * against the project's TLS parser, and on every truncation flush against
 * a PROT_NONE page), the probe threshold, the injected segment's checksums,
 * and a trigger search against a server with no censor in the way (the
 * plain hello does not trigger, so nothing is searched).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "../src/locate.c" /* static helpers: build_segment, csum_add */
#include "serve.h"
#include "tls.h"

static int field_named(const struct sd_hello_field *f, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(f[i].name, name))
            return i;
    }
    return -1;
}

static void test_fields(void **state)
{
    static const char *const names[] = {"twitter.com", "t.co", "rr4---sn-abc.googlevideo.com", NULL};
    uint8_t hello[SD_HELLO_MAX];
    struct sd_hello_field f[SD_HELLO_FIELDS_MAX];
    (void)state;

    for (int k = 0; k < 4; k++) {
        int len = sd_fetch_client_hello(names[k], hello, sizeof(hello));
        assert_true(len > 100);
        int n = sd_hello_fields(hello, hello + len, f, SD_HELLO_FIELDS_MAX);
        assert_true(n > 10);
        /* The fields tile the record. */
        int at = 0;
        for (int i = 0; i < n; i++) {
            assert_int_equal(f[i].off, at);
            assert_true(f[i].len > 0);
            at += f[i].len;
        }
        assert_int_equal(at, len);
        assert_string_equal(f[0].name, "record type");
        assert_int_equal(f[field_named(f, n, "random")].len, 32);
        int host = field_named(f, n, "server_name host");
        if (!names[k]) {
            assert_int_equal(host, -1);
            continue;
        }
        /* The host field is where the project's parser finds the SNI. */
        struct sd_tls_hello h;
        assert_true(sd_tls_strict(hello, hello + len, &h) > 0);
        assert_true(host >= 0);
        assert_ptr_equal(hello + f[host].off, h.sni.p);
        assert_int_equal(f[host].len, h.sni.n);
        assert_memory_equal(hello + f[host].off, names[k], strlen(names[k]));
        assert_true(field_named(f, n, "ext 0x002b (supported_versions) data") >= 0);
    }
    /* Too little room, and broken records. */
    int len = sd_fetch_client_hello("twitter.com", hello, sizeof(hello));
    assert_int_equal(sd_hello_fields(hello, hello + len, f, 5), SD_ERANGE);
    assert_int_equal(sd_hello_fields(hello, hello + len - 1, f, SD_HELLO_FIELDS_MAX), SD_EPROTO);
    hello[0] = 0x17;
    assert_int_equal(sd_hello_fields(hello, hello + len, f, SD_HELLO_FIELDS_MAX), SD_EPROTO);
    hello[0] = 0x16;
    hello[43] = 0xff; /* the session id length (after 5 + 4 + 2 + 32 bytes) now overruns */
    assert_int_equal(sd_hello_fields(hello, hello + len, f, SD_HELLO_FIELDS_MAX), SD_EPROTO);
}

/* Every truncation of a hello, ending at a PROT_NONE page. */
static void test_fields_guard_page(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t hello[SD_HELLO_MAX];
    struct sd_hello_field f[SD_HELLO_FIELDS_MAX];
    (void)state;

    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    int len = sd_fetch_client_hello("abs.twimg.com", hello, sizeof(hello));
    assert_true(len > 0 && len < page);
    for (int k = 0; k <= len; k++) {
        uint8_t *p = map + page - k;
        memcpy(p, hello, (size_t)k);
        int n = sd_hello_fields(p, p + k, f, SD_HELLO_FIELDS_MAX);
        assert_int_equal(n > 0, k == len);
    }
    munmap(map, (size_t)page * 2);
}

static void test_threshold(void **state)
{
    (void)state;
    /* sqrt(128 x 1e6) = 11313.7 kbit/s over 1.5 s = 2121320 B, + 64 KB. */
    assert_int_equal(sd_locate_threshold(1500000000ull, 128, 1e6), 2121320 + 65536);
    /* The slow rate is floored at 16 kbit/s; the result capped at 8 MB. */
    assert_int_equal(sd_locate_threshold(1000000000ull, 0, 1e4), sd_locate_threshold(1000000000ull, 16, 1e4));
    assert_int_equal(sd_locate_threshold(10000000000ull, 1e5, 1e7), 8000000);
}

static void test_segment(void **state)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    uint8_t pkt[40 + 64], payload[33];
    (void)state;

    inet_pton(AF_INET, "192.0.2.2", &src.sin_addr);
    inet_pton(AF_INET, "203.0.113.2", &dst.sin_addr);
    src.sin_port = htons(40000);
    dst.sin_port = htons(80);
    for (int i = 0; i < 33; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t n = build_segment(pkt, &src, &dst, 0x01020304, 0xa0b0c0d0, 3, payload, sizeof(payload));
    assert_int_equal(n, 40 + 33);
    assert_int_equal(pkt[0], 0x45);
    assert_int_equal(pkt[8], 3);
    assert_int_equal(sd_rd16be(pkt + 2), 73);
    assert_int_equal(sd_rd16be(pkt + 20), 40000);
    assert_int_equal(sd_rd16be(pkt + 22), 80);
    assert_int_equal(sd_rd32be(pkt + 24), 0x01020304);
    assert_int_equal(sd_rd32be(pkt + 28), 0xa0b0c0d0);
    assert_int_equal(pkt[33], 0x18);
    assert_memory_equal(pkt + 40, payload, 33);
    /* The TCP checksum verifies: the sum over pseudo-header and segment folds to 0. */
    uint8_t pseudo[12] = {192, 0, 2, 2, 203, 0, 113, 2, 0, 6, 0, 53};
    assert_int_equal(csum_fold(csum_add(csum_add(0, pseudo, 12), pkt + 20, 53)), 0);
}

/* ---- a search with no censor: the hello does not trigger ---- */

static void *serve_thread(void *arg)
{
    void **a = arg;
    sd_serve_run(a[0], *(int *)a[1]);
    return NULL;
}

static void test_no_censor(void **state)
{
    struct sd_serve_config c = {.listen = "127.0.0.1", .plain = true};
    char err[256];
    int stop[2];
    pthread_t tid;
    static struct sd_trigger_result t;
    (void)state;

    struct sd_serve *s = sd_serve_open(&c, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(pipe(stop), 0);
    void *args[2] = {s, &stop[0]};
    assert_int_equal(pthread_create(&tid, NULL, serve_thread, args), 0);
    struct sd_locate_config lc = {
        .addr = "127.0.0.1", .plain_port = sd_serve_port(s, false), .name = "twitter.com",
        .window_ns = 500 * (uint64_t)SD_NS_PER_MS, .threshold_bytes = 200000,
    };
    assert_int_equal(sd_locate_trigger(&lc, &t), 0);
    assert_false(t.baseline);
    assert_false(t.inverted);
    assert_int_equal(t.n_regions, 0);
    assert_int_equal(t.probes, 2 + t.n_fields); /* round 0 only */
    for (int f = 0; f < t.n_fields; f++)
        assert_false(t.field_matters[f]);
    /* Bad options. */
    lc.threshold_bytes = 0;
    assert_int_equal(sd_locate_trigger(&lc, &t), SD_EINVAL);
    struct sd_hop_result h;
    lc.threshold_bytes = 1000;
    lc.addr = "::1";
    assert_int_equal(sd_locate_hop(&lc, 3, &h), SD_EINVAL);
    assert_int_equal(write(stop[1], "x", 1), 1);
    pthread_join(tid, NULL);
    sd_serve_free(s);
    close(stop[0]);
    close(stop[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),   cmocka_unit_test(test_fields_guard_page), cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_segment),  cmocka_unit_test(test_no_censor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
