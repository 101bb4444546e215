/*
 * test_central.c - central policy sources against a real policy server on
 * the loopback (filesrv, in a thread): one GET with and without ETag (200,
 * 304, 404, refused, too large), and the source life cycle: fetch, take,
 * commit; unchanged text costs a 304 and offers nothing; a changed text is
 * offered, a refused one is not offered again; the poller thread wakes the
 * main side; a centre that is gone leaves the text in force and says so,
 * and one that comes back is up again with what changed meanwhile; the
 * cache brings the last good text back at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "central.h"
#include "filesrv.h"

struct fixture {
    char dir[64], cache[80], url[128], missing[128];
    struct sd_filesrv *s;
    int stop;
    pthread_t tid;
    bool running;
};

static void *serve(void *arg)
{
    struct fixture *f = arg;
    sd_filesrv_run(f->s, f->stop);
    return NULL;
}

static void server_stop(struct fixture *f)
{
    uint64_t one = 1;
    if (!f->running)
        return;
    assert_int_equal(write(f->stop, &one, sizeof(one)), sizeof(one));
    pthread_join(f->tid, NULL);
    sd_filesrv_free(f->s);
    close(f->stop);
    f->running = false;
}

static void put(const struct fixture *f, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/fleet.pol", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* Serves f->dir on |port| of the loopback (0: any). */
static void server_start(struct fixture *f, uint16_t port)
{
    char err[128];
    f->s = sd_filesrv_open("127.0.0.1", port, f->dir, err, sizeof(err));
    assert_non_null(f->s);
    f->stop = eventfd(0, 0);
    pthread_create(&f->tid, NULL, serve, f);
    f->running = true;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/sd-test-central-%d", (int)getpid());
    snprintf(f->cache, sizeof(f->cache), "%s/cache", f->dir);
    mkdir(f->dir, 0700);
    mkdir(f->cache, 0700);
    server_start(f, 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/fleet.pol", sd_filesrv_port(f->s));
    snprintf(f->missing, sizeof(f->missing), "http://127.0.0.1:%u/missing.pol", sd_filesrv_port(f->s));
    put(f, "names t alpha.test\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    server_stop(f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_words(void **state)
{
    char w[16];
    (void)state;
    assert_true(sd_central_is_url("http://198.51.100.1/p"));
    assert_true(sd_central_is_url("https://x/p"));
    assert_false(sd_central_is_url("/etc/slowdown/p.pol"));
    assert_false(sd_central_is_url("ftp://x/p"));
    assert_false(sd_central_is_url("http:/x"));
    assert_false(sd_central_is_url(NULL));
    static const char t1[] = "# the preset of the week\n\n  tw22-block  # since Monday\nignored\n";
    assert_int_equal(sd_central_first_word(t1, strlen(t1), w, sizeof(w)), 0);
    assert_string_equal(w, "tw22-block");
    assert_int_equal(sd_central_first_word("2021-03-10T09:00Z", 17, w, sizeof(w)), SD_ERANGE); /* 17 > 15 */
    assert_int_equal(sd_central_first_word("a#b", 3, w, sizeof(w)), 0);
    assert_string_equal(w, "a");
    assert_int_equal(sd_central_first_word("# only\n \t\r\n", 11, w, sizeof(w)), SD_ENOENT);
    assert_int_equal(sd_central_first_word("x", 0, w, sizeof(w)), SD_ENOENT);
}

static void test_http_get(void **state)
{
    struct fixture *f = *state;
    struct sd_http_result r;

    assert_int_equal(sd_http_get(f->url, NULL, 5, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "names t alpha.test\n");
    assert_int_equal(r.len, 19);
    assert_int_equal(strlen(r.etag), 18);
    char etag[SD_CENTRAL_ETAG_MAX];
    snprintf(etag, sizeof(etag), "%s", r.etag);
    free(r.body);

    assert_int_equal(sd_http_get(f->url, etag, 5, &r), 0);
    assert_int_equal(r.status, 304);
    assert_null(r.body);
    put(f, "names t beta.test\n");
    assert_int_equal(sd_http_get(f->url, etag, 5, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "names t beta.test\n");
    assert_string_not_equal(r.etag, etag);
    free(r.body);

    assert_int_equal(sd_http_get(f->missing, NULL, 5, &r), SD_EIO);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.error, "HTTP status 404");
    assert_null(r.body);

    /* Over 16 MiB: refused while it arrives. */
    char path[128];
    snprintf(path, sizeof(path), "%s/fleet.pol", f->dir);
    assert_int_equal(truncate(path, SD_CENTRAL_MAX_TEXT + 1), 0);
    /* A generous timeout: 16 MiB through a sanitized server on a loaded machine. */
    assert_int_equal(sd_http_get(f->url, NULL, 120, &r), SD_EIO);
    assert_string_equal(r.error, "policy text over 16 MiB");
    assert_null(r.body);

    server_stop(f);
    assert_int_equal(sd_http_get(f->url, NULL, 5, &r), SD_EIO);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error) > 0);
}

static void text_is(const struct sd_central *c, const char *url, const char *want)
{
    const char *p;
    size_t n;
    assert_int_equal(sd_central_text(c, url, &p, &n), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static void test_life_cycle(void **state)
{
    struct fixture *f = *state;
    struct sd_central_config cfg = {.urls = {f->url}, .n = 1, .timeout_s = 5};
    struct sd_central_status st;
    char err[256];

    struct sd_central_config bad = {.urls = {"/etc/x.pol"}, .n = 1};
    assert_null(sd_central_new(&bad, err, sizeof(err)));
    assert_non_null(strstr(err, "not an http:// or https:// URL"));

    struct sd_central *c = sd_central_new(&cfg, err, sizeof(err));
    assert_non_null(c);
    const char *p;
    size_t n;
    assert_int_equal(sd_central_text(c, f->url, &p, &n), SD_ENOENT); /* nothing fetched yet */
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    text_is(c, f->url, "names t alpha.test\n");
    assert_int_equal(sd_central_text(c, "http://other/", &p, &n), SD_ENOENT);
    sd_central_commit(c);
    text_is(c, f->url, "names t alpha.test\n");
    assert_int_equal(sd_central_status(c, &st, 1), 1);
    assert_true(st.have && st.up && !st.from_cache);
    assert_int_equal(st.fetch_ok, 1);
    assert_string_equal(st.url, f->url);

    /* Unchanged: a 304, nothing offered. */
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_false(sd_central_take(c));
    sd_central_status(c, &st, 1);
    assert_int_equal(st.fetch_not_modified, 1);

    /* Changed, and refused by the main side: the text in force stays; the same body is not offered again. */
    put(f, "bad text\n");
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    text_is(c, f->url, "bad text\n");
    sd_central_reject(c);
    text_is(c, f->url, "names t alpha.test\n");
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_false(sd_central_take(c));
    sd_central_status(c, &st, 1);
    assert_int_equal(st.invalid, 1);

    /* The poller thread sees the next change and wakes the main side. */
    cfg.interval_s = 1;
    sd_central_free(c);
    c = sd_central_new(&cfg, err, sizeof(err));
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    sd_central_commit(c);
    assert_int_equal(sd_central_start(c), 0);
    put(f, "names t gamma.test\n");
    struct pollfd pf = {sd_central_fd(c), POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_true(sd_central_take(c));
    text_is(c, f->url, "names t gamma.test\n");
    sd_central_commit(c);

    /* The centre goes away: the text in force stays, the status says so. */
    uint16_t port = sd_filesrv_port(f->s);
    server_stop(f);
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_false(sd_central_take(c));
    text_is(c, f->url, "names t gamma.test\n");
    sd_central_status(c, &st, 1);
    assert_true(st.have);
    assert_false(st.up);
    assert_true(st.fetch_errors >= 1);
    assert_true(strlen(st.error) > 0);
    assert_true(st.last_success > 1e9);
    double gone_since = st.last_success;
    uint64_t errors = st.fetch_errors;

    /* ... and comes back with what was changed meanwhile: offered at once, up again, error cleared. */
    put(f, "names t delta.test\n");
    server_start(f, port);
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    text_is(c, f->url, "names t delta.test\n");
    sd_central_commit(c);
    sd_central_status(c, &st, 1);
    assert_true(st.have && st.up);
    assert_int_equal(st.fetch_errors, errors);
    assert_string_equal(st.error, "");
    assert_true(st.last_success >= gone_since);
    sd_central_free(c);
    sd_central_free(NULL);
}

static void test_cache(void **state)
{
    struct fixture *f = *state;
    struct sd_central_config cfg = {.urls = {f->url}, .n = 1, .timeout_s = 5, .cache_dir = f->cache};
    struct sd_central_status st;
    char err[256];

    struct sd_central *c = sd_central_new(&cfg, err, sizeof(err));
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    sd_central_commit(c); /* written to the cache */
    sd_central_free(c);

    server_stop(f);
    /* A restart while the centre is down: the cached text, marked as such. */
    c = sd_central_new(&cfg, err, sizeof(err));
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), 0);
    assert_true(sd_central_take(c));
    text_is(c, f->url, "names t alpha.test\n");
    sd_central_status(c, &st, 1);
    assert_true(st.from_cache);
    assert_false(st.up);
    sd_central_free(c);

    /* Without a cache there is nothing to start from. */
    cfg.cache_dir = NULL;
    c = sd_central_new(&cfg, err, sizeof(err));
    assert_int_equal(sd_central_fetch_now(c, err, sizeof(err)), SD_EIO);
    assert_non_null(strstr(err, "cannot fetch http://127.0.0.1:"));
    sd_central_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test_setup_teardown(test_http_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_life_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
