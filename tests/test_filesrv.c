/*
 * test_filesrv.c - the lab's policy server over real sockets on the
 * loopback: 200 with a content ETag, 304 for If-None-Match (lists, weak
 * tags, "*"), a new ETag when the bytes change and the same one when they
 * do not, HEAD, and the refusals: names that would leave the directory,
 * hidden files, directories, other methods, a request never finished.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesrv.h"

struct fixture {
    char dir[64];
    struct sd_filesrv *s;
    int stop;
    pthread_t tid;
};

static void *serve(void *arg)
{
    struct fixture *f = arg;
    sd_filesrv_run(f->s, f->stop);
    return NULL;
}

static void put(const struct fixture *f, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[128];
    snprintf(f->dir, sizeof(f->dir), "/tmp/sd-test-filesrv-%d", (int)getpid());
    mkdir(f->dir, 0700);
    f->s = sd_filesrv_open("127.0.0.1", 0, f->dir, err, sizeof(err));
    assert_non_null(f->s);
    f->stop = eventfd(0, 0);
    pthread_create(&f->tid, NULL, serve, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    uint64_t one = 1;
    char cmd[128];
    assert_int_equal(write(f->stop, &one, sizeof(one)), sizeof(one));
    pthread_join(f->tid, NULL);
    sd_filesrv_free(f->s);
    close(f->stop);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void http(const struct fixture *f, const char *req, char *buf, size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(sd_filesrv_port(f->s))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = recv(fd, buf + n, cap - 1 - n, 0)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
}

/* The ETag header's value of an answer into |etag|. */
static void etag_of(const char *answer, char etag[24])
{
    const char *e = strstr(answer, "\r\nETag: ");
    assert_non_null(e);
    snprintf(etag, 24, "%.18s", e + 8);
    assert_int_equal(etag[0], '"');
    assert_int_equal(etag[17], '"');
}

static void test_etag(void **state)
{
    char a[24], b[24];
    (void)state;
    sd_filesrv_etag("abc", 3, a);
    sd_filesrv_etag("abc", 3, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 18);
    sd_filesrv_etag("abd", 3, b);
    assert_string_not_equal(a, b);
    char list[80];
    snprintf(list, sizeof(list), "\"x\", W/%s , \"y\"", a);
    assert_true(sd_filesrv_etag_match(list, strlen(list), a));
    assert_true(sd_filesrv_etag_match(a, strlen(a), a));
    assert_true(sd_filesrv_etag_match(" * ", 3, a));
    assert_false(sd_filesrv_etag_match(b, strlen(b), a));
    assert_false(sd_filesrv_etag_match(a, strlen(a) - 1, a)); /* cut short */
    assert_false(sd_filesrv_etag_match("", 0, a));
}

static void test_get_and_304(void **state)
{
    struct fixture *f = *state;
    char buf[4096], req[256], tag[24], tag2[24];

    put(f, "fleet.pol", "rule a when sni in x then throttle\n");
    http(f, "GET /fleet.pol HTTP/1.1\r\nHost: c\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Length: 35\r\n"));
    assert_non_null(strstr(buf, "\r\n\r\nrule a when sni in x then throttle\n"));
    etag_of(buf, tag);

    snprintf(req, sizeof(req), "GET /fleet.pol HTTP/1.1\r\nif-none-match: %s\r\n\r\n", tag);
    http(f, req, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 304 Not Modified\r\n"));
    assert_non_null(strstr(buf, tag));
    assert_non_null(strstr(buf, "Content-Length: 0\r\n"));
    assert_int_equal(strlen(strstr(buf, "\r\n\r\n")), 4); /* no body */

    /* The same bytes written again: the same ETag. Other bytes: another, and a 200 again. */
    put(f, "fleet.pol", "rule a when sni in x then throttle\n");
    http(f, req, buf, sizeof(buf));
    assert_non_null(strstr(buf, "304"));
    put(f, "fleet.pol", "rule b when sni in y then throttle\n");
    http(f, req, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "rule b"));
    etag_of(buf, tag2);
    assert_string_not_equal(tag, tag2);

    http(f, "HEAD /fleet.pol HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "200 OK"));
    assert_non_null(strstr(buf, "Content-Length: 35\r\n"));
    assert_null(strstr(buf, "rule b"));
    http(f, "GET /fleet.pol?x=1 HTTP/1.1\r\n\r\n", buf, sizeof(buf)); /* a query string is ignored */
    assert_non_null(strstr(buf, "rule b"));
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    char buf[2048], path[128];

    put(f, ".hidden", "secret\n");
    snprintf(path, sizeof(path), "%s/sub", f->dir);
    mkdir(path, 0700);
    static const char *const not_found[] = {
        "GET /missing.pol HTTP/1.1\r\n\r\n", "GET /../etc/passwd HTTP/1.1\r\n\r\n",
        "GET /.hidden HTTP/1.1\r\n\r\n",     "GET /sub HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",            "GET /a/b HTTP/1.1\r\n\r\n",
        "GET fleet.pol HTTP/1.1\r\n\r\n",    "GET /%2e%2e HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(not_found) / sizeof(not_found[0]); i++) {
        http(f, not_found[i], buf, sizeof(buf));
        if (!strstr(buf, "HTTP/1.1 404 Not Found"))
            fail_msg("%s got: %.40s", not_found[i], buf);
        assert_null(strstr(buf, "secret"));
    }
    http(f, "PUT /x HTTP/1.1\r\n\r\n", buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 405"));
    http(f, "GET /x", buf, sizeof(buf)); /* never finished: closed after 2 s without an answer */
    assert_string_equal(buf, "");
    char err[128];
    assert_null(sd_filesrv_open("127.0.0.1", 0, "/nonexistent-dir-of-sd", err, sizeof(err)));
    assert_non_null(strstr(err, "not a directory"));
    assert_null(sd_filesrv_open("no-address", 0, f->dir, err, sizeof(err)));
    sd_filesrv_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etag),
        cmocka_unit_test_setup_teardown(test_get_and_304, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
