/*
 * test_fetch.c - the measurement client against the measurement server, on
 * loopback (127.0.0.1, ports picked by the kernel), in this process: TLS and
 * plain downloads by bytes and by time, TLS 1.2 without SNI, uploads, an
 * opaque first payload, a ClientHello sent by the server, the server's caps,
 * echo, refusals and timeouts; plus the goodput arithmetic and the
 * ClientHello maker, checked with the project's own TLS parser.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "fetch.h"
#include "mono.h"
#include "serve.h"
#include "tls.h"

enum { MB = 1 << 20 };

enum { MAX_REPORTS = 64 };

struct server {
    struct sd_serve *s;
    pthread_t tid;
    int stop[2];
    pthread_mutex_t lock;
    int n_reports;
    struct sd_serve_report rep[MAX_REPORTS]; /* every connection, in the order they closed */
    char sni[MAX_REPORTS][64];
};

/* Servers: [0] TLS + plain, defaults; [1] plain, ClientHello first;
 * [2] plain, 100000 bytes per request, one connection at a time, default mode sink. */
static struct server srv[3];

static void on_conn(void *arg, const struct sd_serve_report *r)
{
    struct server *s = arg;
    pthread_mutex_lock(&s->lock);
    if (s->n_reports < MAX_REPORTS) {
        int i = s->n_reports++;
        s->rep[i] = *r;
        snprintf(s->sni[i], sizeof(s->sni[i]), "%s", r->sni ? r->sni : "");
        s->rep[i].sni = r->sni ? s->sni[i] : NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

static void *serve_thread(void *arg)
{
    struct server *s = arg;
    sd_serve_run(s->s, s->stop[0]);
    return NULL;
}

static int start(struct server *s, struct sd_serve_config *c)
{
    char err[256];
    c->listen = "127.0.0.1";
    c->on_conn = on_conn;
    c->arg = s;
    pthread_mutex_init(&s->lock, NULL);
    s->s = sd_serve_open(c, err, sizeof(err));
    if (!s->s) {
        fprintf(stderr, "serve: %s\n", err);
        return -1;
    }
    if (pipe(s->stop) < 0)
        return -1;
    return pthread_create(&s->tid, NULL, serve_thread, s) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    struct sd_serve_config c0 = {.tls = true, .plain = true};
    struct sd_serve_config c1 = {.plain = true, .hello_first = "twitter.com", .request_wait_ms = 200};
    struct sd_serve_config c2 = {.plain = true, .max_bytes = 100000, .max_conns = 1, .mode = SD_SERVE_SINK,
                                 .request_wait_ms = 200};
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return start(&srv[0], &c0) || start(&srv[1], &c1) || start(&srv[2], &c2);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        if (write(srv[i].stop[1], "x", 1) != 1)
            return -1;
        pthread_join(srv[i].tid, NULL);
        sd_serve_free(srv[i].s);
        close(srv[i].stop[0]);
        close(srv[i].stop[1]);
    }
    return 0;
}

/*
 * Waits for the report of a connection that closed after the first |from|
 * reports and that |match| accepts (connections of earlier tests may still
 * be closing, so "the next report" is not enough).
 */
static struct sd_serve_report find_report(struct server *s, int from, bool (*match)(const struct sd_serve_report *))
{
    struct sd_serve_report r;
    memset(&r, 0, sizeof(r));
    for (int tries = 0; tries < 300; tries++) {
        pthread_mutex_lock(&s->lock);
        for (int i = from; i < s->n_reports; i++) {
            if (match(&s->rep[i])) {
                r = s->rep[i];
                pthread_mutex_unlock(&s->lock);
                return r;
            }
        }
        pthread_mutex_unlock(&s->lock);
        usleep(10000);
    }
    fail_msg("no matching report from the server");
    return r;
}

static int reports(struct server *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->n_reports;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static bool sni_is(const struct sd_serve_report *r, const char *name)
{
    return r->sni && !strcmp(r->sni, name);
}
static bool is_twitter(const struct sd_serve_report *r) { return sni_is(r, "twitter.com"); }
static bool is_upload(const struct sd_serve_report *r) { return sni_is(r, "upload.example"); }
static bool is_tls12(const struct sd_serve_report *r) { return r->tls && r->bytes_out == 100000; }
static bool is_opaque(const struct sd_serve_report *r) { return !r->tls && !r->request; }
static bool any(const struct sd_serve_report *r) { return r != NULL; }

static uint64_t bins[400];

static struct sd_fetch_opts opts(int server, bool tls)
{
    struct sd_fetch_opts o = {.addr = "127.0.0.1", .port = sd_serve_port(srv[server].s, tls), .plain = !tls,
                              .bins = bins, .max_bins = 400, .idle_timeout_ns = 3ull * SD_NS_PER_S};
    return o;
}

static uint64_t bins_sum(const struct sd_fetch_result *r)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < r->n_bins; i++)
        sum += bins[i];
    return sum;
}

static void test_tls_download(void **state)
{
    struct sd_fetch_opts o = opts(0, true);
    struct sd_fetch_result r;
    (void)state;

    int before = reports(&srv[0]);
    o.sni = "twitter.com";
    o.bytes = 3 * MB;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_int_equal(r.stage, SD_FETCH_TRANSFER);
    assert_int_equal(r.bytes, 3 * MB);
    assert_string_equal(r.tls_version, "TLSv1.3");
    assert_true(r.handshake_ns > 0 && r.ttfb_ns > 0 && r.transfer_ns >= r.ttfb_ns);
    assert_true(r.n_bins >= 1);
    assert_int_equal(bins_sum(&r), r.bytes);
    struct sd_serve_report rep = find_report(&srv[0], before, is_twitter);
    assert_true(rep.tls && rep.request);
    assert_string_equal(rep.sni, "twitter.com");
    assert_int_equal(rep.mode, SD_SERVE_SEND);
    assert_int_equal(rep.bytes_out, 3 * MB);
}

static void test_tls12_without_sni(void **state)
{
    struct sd_fetch_opts o = opts(0, true);
    struct sd_fetch_result r;
    (void)state;

    int before = reports(&srv[0]);
    o.tls_max_version = TLS1_2_VERSION;
    o.bytes = 100000;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_string_equal(r.tls_version, "TLSv1.2");
    assert_null(find_report(&srv[0], before, is_tls12).sni);
}

static void test_plain_by_time(void **state)
{
    struct sd_fetch_opts o = opts(0, false);
    struct sd_fetch_result r;
    (void)state;

    o.duration_ns = 300 * (uint64_t)SD_NS_PER_MS;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_true(r.transfer_ns >= o.duration_ns && r.transfer_ns < SD_NS_PER_S);
    assert_true(r.bytes > 0);
    assert_int_equal(bins_sum(&r), r.bytes);
    assert_true(r.n_bins >= 3 && r.n_bins <= 4); /* 100 ms bins */
    assert_int_equal(r.handshake_ns, 0);
    assert_string_equal(r.tls_version, "");
}

static void test_upload(void **state)
{
    struct sd_fetch_opts o = opts(0, true);
    struct sd_fetch_result r;
    (void)state;

    int before = reports(&srv[0]);
    o.sni = "upload.example";
    o.dir = SD_FETCH_UP;
    o.bytes = 2 * MB;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_true(r.bytes >= 2 * MB);            /* acknowledged, TLS overhead included */
    assert_true(r.bytes < 2 * MB + 2 * MB / 50); /* ... which is small */
    struct sd_serve_report rep = find_report(&srv[0], before, is_upload);
    assert_int_equal(rep.mode, SD_SERVE_SINK);
    assert_int_equal(rep.bytes_in, 2 * MB);
}

/* The ready hook runs after the TLS handshake, before the request; an error there ends the fetch. */
static int ready_calls;
static int ready_refuse(void *arg, int fd, char *detail, size_t len)
{
    (void)arg;
    (void)fd;
    ready_calls++;
    snprintf(detail, len, "held back");
    return SD_EIO;
}

static void test_ready_hook(void **state)
{
    static const struct sd_fetch_hooks h = {.ready = ready_refuse};
    struct sd_fetch_opts o = opts(0, true);
    struct sd_fetch_result r;
    (void)state;

    o.sni = "ready.example";
    o.bytes = MB;
    o.hooks = &h;
    ready_calls = 0;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(ready_calls, 1);
    assert_int_equal(r.end, SD_FETCH_ERROR);
    assert_int_equal(r.stage, SD_FETCH_HANDSHAKE);
    assert_true(r.handshake_ns > 0);
    assert_string_equal(r.tls_version, "TLSv1.3");
    assert_string_equal(r.detail, "held back");
    assert_int_equal(r.bytes, 0);
}

static void test_opaque_first_payload(void **state)
{
    struct sd_fetch_opts o = opts(0, false);
    struct sd_fetch_result r;
    uint8_t hello[2048];
    (void)state;

    int n = sd_fetch_client_hello("twitter.com", hello, sizeof(hello));
    assert_true(n > 0);
    for (int i = 0; i < n; i++)
        hello[i] = (uint8_t)~hello[i];
    int before = reports(&srv[0]);
    o.first = hello;
    o.first_len = (size_t)n;
    o.bytes = 200000;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_DONE);
    assert_int_equal(r.bytes, 200000);
    struct sd_serve_report rep = find_report(&srv[0], before, is_opaque);
    assert_false(rep.request);
    assert_int_equal(rep.mode, SD_SERVE_SEND);
}

static int connect_plain(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {3, 0};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static size_t read_n(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

static void test_hello_first(void **state)
{
    uint8_t buf[4096];
    struct sd_tls_hello h;
    (void)state;

    int fd = connect_plain(sd_serve_port(srv[1].s, false));
    assert_int_equal(read_n(fd, buf, 5), 5);
    size_t len = (size_t)(buf[3] << 8 | buf[4]);
    assert_true(len + 5 <= sizeof(buf));
    assert_int_equal(read_n(fd, buf + 5, len), len);
    assert_int_equal(sd_tls_strict(buf, buf + 5 + len, &h), (int)(5 + len));
    assert_int_equal(h.sni.n, 11);
    assert_memory_equal(h.sni.p, "twitter.com", 11);
    /* Then the default mode (send) once the request wait is over. */
    assert_int_equal(read_n(fd, buf, 1000), 1000);
    close(fd);
}

static void test_echo(void **state)
{
    uint8_t buf[16];
    (void)state;

    int fd = connect_plain(sd_serve_port(srv[0].s, false));
    assert_int_equal(send(fd, "POST /echo\nabc", 14, 0), 14);
    assert_int_equal(read_n(fd, buf, 3), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(send(fd, "defg", 4, 0), 4);
    assert_int_equal(read_n(fd, buf, 4), 4);
    assert_memory_equal(buf, "defg", 4);
    close(fd);
}

static void test_caps(void **state)
{
    struct sd_fetch_opts o = opts(2, false);
    struct sd_fetch_result r;
    (void)state;

    /* A request for more than the cap gets the cap, then EOF. */
    o.bytes = 10 * MB;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_EOF);
    assert_int_equal(r.bytes, 100000);
    find_report(&srv[2], 0, any);

    /* One connection at a time: a second one is closed at once. */
    int fd = connect_plain(sd_serve_port(srv[2].s, false));
    usleep(100000);
    o.bytes = 1000;
    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_true(r.end == SD_FETCH_EOF || r.end == SD_FETCH_RST);
    assert_int_equal(r.bytes, 0);
    close(fd);
}

static void test_idle_timeout(void **state)
{
    struct sd_fetch_opts o = opts(2, false);
    struct sd_fetch_result r;
    (void)state;

    /* No request line: the server sinks (its default) and sends nothing. */
    o.no_request = true;
    o.duration_ns = 5ull * SD_NS_PER_S;
    o.idle_timeout_ns = 300 * (uint64_t)SD_NS_PER_MS;
    find_report(&srv[2], 1, any); /* the held connection of test_caps is closing */
    uint64_t t;
    for (int tries = 0; tries < 50; tries++) {
        /* ... and its slot frees a moment after its report: until then we are refused. */
        t = sd_mono_ns();
        assert_int_equal(sd_fetch_run(&o, &r), 0);
        if (r.end != SD_FETCH_EOF && r.end != SD_FETCH_RST)
            break;
        usleep(20000);
    }
    assert_int_equal(r.end, SD_FETCH_TIMEOUT);
    assert_int_equal(r.stage, SD_FETCH_TRANSFER);
    assert_true(sd_mono_ns() - t < 2ull * SD_NS_PER_S);
}

static void test_refused(void **state)
{
    struct sd_fetch_opts o = {.addr = "127.0.0.1", .port = 1, .bytes = 1};
    struct sd_fetch_result r;
    (void)state;

    assert_int_equal(sd_fetch_run(&o, &r), 0);
    assert_int_equal(r.end, SD_FETCH_RST);
    assert_int_equal(r.stage, SD_FETCH_CONNECT);
    assert_string_equal(sd_fetch_end_name(r.end), "rst");
}

static void test_bad_options(void **state)
{
    struct sd_fetch_opts o = {.addr = "127.0.0.1", .port = 443};
    struct sd_fetch_result r;
    (void)state;

    assert_int_equal(sd_fetch_run(&o, &r), SD_EINVAL); /* no limit */
    o.bytes = 1;
    o.addr = "not-an-address";
    assert_int_equal(sd_fetch_run(&o, &r), SD_EINVAL);
    o.addr = "127.0.0.1";
    o.bind_addr = "::1"; /* family mismatch */
    assert_int_equal(sd_fetch_run(&o, &r), SD_EINVAL);
}

static void test_kbps(void **state)
{
    struct sd_fetch_result r = {.transfer_ns = 2ull * SD_NS_PER_S, .n_bins = 20};
    uint64_t b[20];
    (void)state;

    for (int i = 0; i < 20; i++)
        b[i] = i < 10 ? 100000 : 10000; /* a burst, then a trickle */
    r.bytes = 10 * 100000 + 10 * 10000;
    assert_true(sd_fetch_kbps(&r, b, 0, 0) > 4399.9 && sd_fetch_kbps(&r, b, 0, 0) < 4400.1);
    /* Leaving the first second out: 100000 bytes in 1 s. */
    assert_true(sd_fetch_kbps(&r, b, 0, SD_NS_PER_S) > 799.9 && sd_fetch_kbps(&r, b, 0, SD_NS_PER_S) < 800.1);
    /* A transfer that ends a hair after the skip (--seconds 1, --skip 1) counts whole too, not as the
     * bytes of its last bin over 0.3 ms. */
    r.transfer_ns = SD_NS_PER_S + 300 * 1000;
    r.n_bins = 11;
    b[10] = 500000;
    r.bytes = 10 * 100000 + 500000;
    assert_true(sd_fetch_kbps(&r, b, 0, SD_NS_PER_S) > 11990.0 && sd_fetch_kbps(&r, b, 0, SD_NS_PER_S) < 12000.0);
    r.n_bins = 20;
    b[10] = 10000;
    r.bytes = 10 * 100000 + 10 * 10000;
    /* A transfer shorter than the skip counts whole. */
    r.transfer_ns = SD_NS_PER_S / 2;
    assert_true(sd_fetch_kbps(&r, b, 0, SD_NS_PER_S) > 17599.9);
    r.bytes = 0;
    assert_true(sd_fetch_kbps(&r, b, 0, 0) == 0.0);
}

static void test_client_hello(void **state)
{
    uint8_t buf[2048], small[16];
    struct sd_tls_hello h;
    (void)state;

    int n = sd_fetch_client_hello("example.org", buf, sizeof(buf));
    assert_true(n > 100);
    assert_int_equal(buf[0], 0x16);
    assert_int_equal(sd_tls_strict(buf, buf + n, &h), n);
    assert_int_equal(h.sni.n, 11);
    assert_memory_equal(h.sni.p, "example.org", 11);
    n = sd_fetch_client_hello(NULL, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(sd_tls_strict(buf, buf + n, &h), n);
    assert_false(h.has_sni);
    assert_int_equal(sd_fetch_client_hello("example.org", small, sizeof(small)), SD_ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_download),  cmocka_unit_test(test_tls12_without_sni),
        cmocka_unit_test(test_plain_by_time), cmocka_unit_test(test_upload),
        cmocka_unit_test(test_ready_hook),
        cmocka_unit_test(test_opaque_first_payload), cmocka_unit_test(test_hello_first),
        cmocka_unit_test(test_echo),          cmocka_unit_test(test_caps),
        cmocka_unit_test(test_idle_timeout),  cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bad_options),   cmocka_unit_test(test_kbps),
        cmocka_unit_test(test_client_hello),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
