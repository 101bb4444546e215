/*
 * test_replay.c - the inverted first flight of the detector's control C:
 * built from a real OpenSSL ClientHello, every byte inverted, parsed back
 * for each request form; every prefix is "incomplete", other bytes are "not
 * one"; inputs end flush against a PROT_NONE page; and end to end, a
 * `slowdown serve` on loopback sinks an inverted upload and sends an
 * inverted download for the seconds the inverted request asked.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "fetch.h"
#include "mono.h"
#include "replay.h"
#include "serve.h"

static int make(const char *sni, const char *req, uint8_t *out, size_t cap)
{
    uint8_t hello[2048];
    int n = sd_fetch_client_hello(sni, hello, sizeof(hello));
    assert_true(n > 5);
    return sd_replay_build(hello, (size_t)n, req, strlen(req), out, cap);
}

static void test_build(void **state)
{
    uint8_t hello[2048], out[4096];
    (void)state;

    int n = sd_fetch_client_hello("twitter.com", hello, sizeof(hello));
    assert_true(n > 5);
    int len = sd_replay_build(hello, (size_t)n, "GET /down?seconds=3\n", 20, out, sizeof(out));
    assert_int_equal(len, n + 20);
    for (int i = 0; i < n; i++)
        assert_int_equal(out[i], (uint8_t)~hello[i]);
    assert_int_equal(out[0], 0xe9);
    assert_int_equal(out[1], 0xfc);
    assert_int_equal(out[n], (uint8_t)~'G');
    assert_int_equal(out[len - 1], (uint8_t)~'\n');
    /* No structure left: the SNI is nowhere in the clear. */
    assert_null(memmem(out, (size_t)len, "twitter", 7));
    /* Refusals. */
    assert_int_equal(sd_replay_build(hello, (size_t)n, "GET /down\n", 10, out, (size_t)n + 9), SD_ERANGE);
    assert_int_equal(sd_replay_build(hello, (size_t)n - 1, "GET /down\n", 10, out, sizeof(out)), SD_EINVAL);
    assert_int_equal(sd_replay_build(hello, (size_t)n, "GET /down", 9, out, sizeof(out)), SD_EINVAL);
    hello[0] = 0x17;
    assert_int_equal(sd_replay_build(hello, (size_t)n, "GET /down\n", 10, out, sizeof(out)), SD_EINVAL);
}

static void test_parse(void **state)
{
    uint8_t buf[4096];
    struct sd_serve_req r;
    (void)state;

    int len = make("twitter.com", "PUT /up?seconds=7\n", buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(sd_replay_parse(buf, buf + len, &r), len);
    assert_int_equal(r.mode, SD_SERVE_SINK);
    assert_int_equal(r.seconds, 7);
    /* Upload bytes after it are left over. */
    memset(buf + len, 'u', 100);
    assert_int_equal(sd_replay_parse(buf, buf + len + 100, &r), len);
    /* Download with a byte count, HTTP form. */
    len = make("abs.twimg.com", "GET /down?bytes=1000 HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof(buf));
    assert_int_equal(sd_replay_parse(buf, buf + len, &r), len);
    assert_int_equal(r.mode, SD_SERVE_SEND);
    assert_int_equal(r.bytes, 1000);
    assert_true(r.http);
    /* Every proper prefix is incomplete. */
    len = make("example.org", "POST /echo\n", buf, sizeof(buf));
    for (int k = 0; k < len; k++)
        assert_int_equal(sd_replay_parse(buf, buf + k, &r), SD_EAGAIN);
    assert_int_equal(sd_replay_parse(buf, buf + len, &r), len);
    assert_int_equal(r.mode, SD_SERVE_ECHO);
}

static void test_not_replay(void **state)
{
    uint8_t buf[4096], hello[2048];
    struct sd_serve_req r;
    (void)state;

    /* A plain ClientHello, a request in the clear, zeros: decided on the first byte. */
    int n = sd_fetch_client_hello("twitter.com", hello, sizeof(hello));
    assert_int_equal(sd_replay_parse(hello, hello + n, &r), SD_EPROTO);
    assert_int_equal(sd_replay_parse((const uint8_t *)"GET /", (const uint8_t *)"GET /" + 5, &r), SD_EPROTO);
    uint8_t two[2] = {0xe9, 0x00};
    assert_int_equal(sd_replay_parse(two, two + 2, &r), SD_EPROTO);
    /* An inverted record, then bytes that are no inverted request. */
    int len = make("twitter.com", "GET /down\n", buf, sizeof(buf));
    buf[len - 10] = (uint8_t)~'X';
    assert_int_equal(sd_replay_parse(buf, buf + len, &r), SD_EPROTO);
    /* A record length of 0 or over the cap. */
    uint8_t hdr[6] = {0xe9, 0xfc, 0xfe, 0xff, 0xff, 0x00};
    assert_int_equal(sd_replay_parse(hdr, hdr + 6, &r), SD_EPROTO);
    hdr[3] = (uint8_t)~0xff;
    hdr[4] = (uint8_t)~0xff;
    assert_int_equal(sd_replay_parse(hdr, hdr + 6, &r), SD_EPROTO);
    /* A request that never ends within SD_SERVE_REQ_MAX is not one. */
    static uint8_t big[2048 + SD_SERVE_REQ_MAX + 64];
    len = make("t.co", "GET /down?bytes=1\n", big, sizeof(big));
    size_t rec = (size_t)len - 18;
    memset(big + rec, (uint8_t)~'a', sizeof(big) - rec);
    memcpy(big + rec, (const uint8_t[]){(uint8_t)~'G', (uint8_t)~'E', (uint8_t)~'T', (uint8_t)~' '}, 4);
    assert_int_equal(sd_replay_parse(big, big + sizeof(big), &r), SD_EPROTO);
}

/* Every prefix of a flight ends flush against a PROT_NONE page. */
static void test_guard_page(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t flight[2048];
    (void)state;

    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    int len = make("www.example.com", "GET /down?seconds=2\n", flight, sizeof(flight));
    assert_true(len > 0 && len < page);
    for (int k = 0; k <= len; k++) {
        uint8_t *p = map + page - k;
        struct sd_serve_req r;
        memcpy(p, flight, (size_t)k);
        int rc = sd_replay_parse(p, p + k, &r);
        assert_int_equal(rc, k == len ? len : SD_EAGAIN);
    }
    munmap(map, (size_t)page * 2);
}

/* ---- end to end against a server on loopback ---- */

struct server {
    struct sd_serve *s;
    pthread_t tid;
    int stop[2];
    pthread_mutex_t lock;
    struct sd_serve_report last;
    int reports;
};

static void on_conn(void *arg, const struct sd_serve_report *r)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->lock);
    s->last = *r;
    s->last.sni = NULL;
    s->reports++;
    pthread_mutex_unlock(&s->lock);
}

static void *serve_thread(void *arg)
{
    struct server *s = arg;
    sd_serve_run(s->s, s->stop[0]);
    return NULL;
}

static int wait_reports(struct server *s, int n)
{
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&s->lock);
        int k = s->reports;
        pthread_mutex_unlock(&s->lock);
        if (k >= n)
            return k;
        usleep(10000);
    }
    return -1;
}

static void test_serve(void **state)
{
    struct server srv;
    struct sd_serve_config c = {.listen = "127.0.0.1", .plain = true, .on_conn = on_conn, .arg = &srv};
    char err[256];
    uint8_t flight[4096];
    (void)state;

    memset(&srv, 0, sizeof(srv));
    c.on_conn = on_conn;
    pthread_mutex_init(&srv.lock, NULL);
    srv.s = sd_serve_open(&c, err, sizeof(err));
    assert_non_null(srv.s);
    assert_int_equal(pipe(srv.stop), 0);
    assert_int_equal(pthread_create(&srv.tid, NULL, serve_thread, &srv), 0);

    /* Upload: the server sinks (its default mode would send). */
    int len = make("twitter.com", "PUT /up?seconds=2\n", flight, sizeof(flight));
    struct sd_fetch_opts o = {
        .addr = "127.0.0.1", .port = sd_serve_port(srv.s, false), .plain = true, .first = flight,
        .first_len = (size_t)len, .dir = SD_FETCH_UP, .duration_ns = 300 * (uint64_t)SD_NS_PER_MS,
    };
    struct sd_fetch_result r;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_true(r.bytes > 100000);
    assert_int_equal(wait_reports(&srv, 1), 1);
    assert_true(srv.last.request);
    assert_int_equal(srv.last.mode, SD_SERVE_SINK);
    assert_true(srv.last.bytes_in > 100000);

    /* Download for 1 s: the server stops on its own. */
    len = make("twitter.com", "GET /down?seconds=1\n", flight, sizeof(flight));
    o.first_len = (size_t)len;
    o.dir = SD_FETCH_DOWN;
    o.duration_ns = 5ull * SD_NS_PER_S;
    uint64_t t0 = sd_mono_ns();
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    uint64_t took = sd_mono_ns() - t0;
    assert_int_equal(r.end, SD_FETCH_EOF);
    assert_true(took < 3ull * SD_NS_PER_S);
    assert_true(r.bytes > 100000);
    assert_int_equal(wait_reports(&srv, 2), 2);
    assert_int_equal(srv.last.mode, SD_SERVE_SEND);
    assert_true(srv.last.request);

    assert_int_equal(write(srv.stop[1], "x", 1), 1);
    pthread_join(srv.tid, NULL);
    sd_serve_free(srv.s);
    close(srv.stop[0]);
    close(srv.stop[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),      cmocka_unit_test(test_parse), cmocka_unit_test(test_not_replay),
        cmocka_unit_test(test_guard_page), cmocka_unit_test(test_serve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
