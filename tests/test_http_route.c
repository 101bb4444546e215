/*
 * test_http_route.c - what the two small HTTP servers decide from a request
 * head alone (sd_filesrv_route, sd_metrics_route), on the bytes a client
 * sends: names that would leave the policy directory or name a hidden file,
 * percent escapes (never decoded), a missing space, HEAD, query strings,
 * names at and over the length limit, the If-None-Match header in any case
 * and its value found and matched (or not) against an ETag, and the
 * metrics listener's four answers. test_filesrv.c and test_metrics.c check
 * the same servers over sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filesrv.h"
#include "metrics.h"

struct route {
    enum sd_filesrv_route r;
    bool head_only;
    char name[SD_FILESRV_NAME_MAX + 1];
    const char *inm;
    size_t inm_len;
};

static struct route route(const char *req)
{
    struct route x;
    memset(x.name, 'X', sizeof(x.name)); /* so that a name left unwritten shows */
    x.name[sizeof(x.name) - 1] = '\0';
    x.r = sd_filesrv_route(req, &x.head_only, x.name, sizeof(x.name), &x.inm, &x.inm_len);
    return x;
}

/* |req| is refused with |want| (405 or 404), and no header value comes back. */
static void refused(const char *req, enum sd_filesrv_route want)
{
    struct route x = route(req);
    if (x.r != want)
        fail_msg("%s: route %d, want %d", req, (int)x.r, (int)want);
    assert_null(x.inm);
    assert_int_equal(x.inm_len, 0);
}

/* |req| asks for the file |name|. */
static struct route served(const char *req, const char *name)
{
    struct route x = route(req);
    if (x.r != SD_FILESRV_FILE)
        fail_msg("%s: route %d, want the file %s", req, (int)x.r, name);
    assert_string_equal(x.name, name);
    return x;
}

static void test_filesrv_methods(void **state)
{
    (void)state;
    struct route x = served("GET /fleet.pol HTTP/1.1\r\nHost: c\r\n\r\n", "fleet.pol");
    assert_false(x.head_only);
    assert_null(x.inm);
    x = served("HEAD /fleet.pol HTTP/1.1\r\n\r\n", "fleet.pol");
    assert_true(x.head_only);
    x = served("GET /fleet.pol\r\n\r\n", "fleet.pol"); /* no version: the path ends at the line end */
    assert_false(x.head_only);
    served("GET /fleet.pol HTTP/1.0\n\n", "fleet.pol");                /* bare LFs */
    served("GET /fleet.pol?since=3&x=%2F HTTP/1.1\r\n\r\n", "fleet.pol"); /* a query string is ignored */

    refused("POST /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);
    refused("PUT /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);
    refused("get /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD); /* methods are case-sensitive */
    refused("GET/fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);  /* no space after the method */
    refused("HEAD/fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);
    refused(" GET /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);
    refused("GETS /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_BAD_METHOD);
    refused("", SD_FILESRV_BAD_METHOD);
    x = route("POST /x HTTP/1.1\r\n\r\n");
    assert_false(x.head_only); /* the 405 carries its body */
    x = route("HEAD /.x HTTP/1.1\r\n\r\n");
    assert_int_equal(x.r, SD_FILESRV_NO_NAME);
    assert_true(x.head_only); /* the 404 of a HEAD has no body */
}

static void test_filesrv_names(void **state)
{
    (void)state;
    /* Nothing outside the directory, nothing hidden, nothing decoded. */
    refused("GET /../etc/passwd HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /..%2fetc%2fpasswd HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /%2e%2e HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /fleet%2Epol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /a%00b HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /.. HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /. HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /.hidden HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /.htaccess?x HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /sub/fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET //etc/passwd HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /a\\b HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /fleet.pol#x HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /fleet\tpol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET / HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET /?fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET  /fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME); /* two spaces: the path is empty */
    refused("GET http://c/fleet.pol HTTP/1.1\r\n\r\n", SD_FILESRV_NO_NAME);
    refused("GET ", SD_FILESRV_NO_NAME);

    /* Dots, dashes and underscores inside a name are fine. */
    served("GET /a..b HTTP/1.1\r\n\r\n", "a..b");
    served("GET /Fleet_2-v1.pol HTTP/1.1\r\n\r\n", "Fleet_2-v1.pol");
    served("GET /x HTTP/1.1\r\n\r\n", "x");

    /* SD_FILESRV_NAME_MAX bytes are served, one more is refused. */
    char req[512], name[SD_FILESRV_NAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[SD_FILESRV_NAME_MAX] = '\0';
    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", name);
    served(req, name);
    name[SD_FILESRV_NAME_MAX] = 'n';
    name[SD_FILESRV_NAME_MAX + 1] = '\0';
    snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", name);
    refused(req, SD_FILESRV_NO_NAME);

    /* A name that does not fit the caller's buffer is refused, not cut to another name. */
    char small[6];
    const char *inm;
    size_t vn;
    bool h;
    assert_int_equal(sd_filesrv_route("GET /fleet.pol HTTP/1.1\r\n\r\n", &h, small, sizeof(small), &inm, &vn),
                     SD_FILESRV_NO_NAME);
    assert_int_equal(sd_filesrv_route("GET /fleet HTTP/1.1\r\n\r\n", &h, small, sizeof(small), &inm, &vn),
                     SD_FILESRV_FILE);
    assert_string_equal(small, "fleet");
}

static void test_filesrv_if_none_match(void **state)
{
    char etag[24], other[24], req[512];
    (void)state;
    sd_filesrv_etag("rule a when sni in x then throttle\n", 35, etag);
    sd_filesrv_etag("rule b when sni in y then throttle\n", 35, other);

    snprintf(req, sizeof(req), "GET /fleet.pol HTTP/1.1\r\nHost: c\r\nIf-None-Match: %s\r\nAccept: */*\r\n\r\n", etag);
    struct route x = served(req, "fleet.pol");
    assert_non_null(x.inm);
    assert_int_equal(x.inm_len, strlen(etag));
    assert_memory_equal(x.inm, etag, strlen(etag));
    assert_true(x.inm > req && x.inm + x.inm_len <= req + strlen(req));
    assert_true(sd_filesrv_etag_match(x.inm, x.inm_len, etag));
    assert_false(sd_filesrv_etag_match(x.inm, x.inm_len, other));

    /* Any case, a tab, a list with a weak tag, bare LFs. */
    snprintf(req, sizeof(req), "HEAD /fleet.pol HTTP/1.1\nif-none-match:\t\"x\", W/%s \n\n", etag);
    x = served(req, "fleet.pol");
    assert_true(x.head_only);
    assert_non_null(x.inm);
    assert_int_equal(x.inm_len, 8 + strlen(etag)); /* "x", W/TAG and its trailing blank: no line break */
    assert_true(sd_filesrv_etag_match(x.inm, x.inm_len, etag));
    assert_false(sd_filesrv_etag_match(x.inm, x.inm_len, other));

    x = served("GET /fleet.pol HTTP/1.1\r\nIF-NONE-MATCH: *\r\n\r\n", "fleet.pol");
    assert_int_equal(x.inm_len, 1);
    assert_true(sd_filesrv_etag_match(x.inm, x.inm_len, etag));

    /* Another tag only, W/ of another tag, and an empty value: no match. */
    snprintf(req, sizeof(req), "GET /fleet.pol HTTP/1.1\r\nIf-None-Match: %s, W/%s\r\n\r\n", other, other);
    x = served(req, "fleet.pol");
    assert_false(sd_filesrv_etag_match(x.inm, x.inm_len, etag));
    x = served("GET /fleet.pol HTTP/1.1\r\nIf-None-Match:\r\n\r\n", "fleet.pol");
    assert_non_null(x.inm);
    assert_int_equal(x.inm_len, 0);
    assert_false(sd_filesrv_etag_match(x.inm, x.inm_len, etag));

    /* The first such header counts; a header whose name only ends so, or no header, gives none. */
    snprintf(req, sizeof(req), "GET /fleet.pol HTTP/1.1\r\nIf-None-Match: %s\r\nIf-None-Match: %s\r\n\r\n", other,
             etag);
    x = served(req, "fleet.pol");
    assert_memory_equal(x.inm, other, strlen(other));
    snprintf(req, sizeof(req), "GET /fleet.pol HTTP/1.1\r\nX-If-None-Match: %s\r\n\r\n", etag);
    x = served(req, "fleet.pol");
    assert_null(x.inm);
    x = served("GET /fleet.pol HTTP/1.1\r\nIf-None-Match *\r\n\r\n", "fleet.pol"); /* no colon */
    assert_null(x.inm);
    x = served("GET /fleet.pol?If-None-Match:* HTTP/1.1\r\n\r\n", "fleet.pol"); /* the request line is no header */
    assert_null(x.inm);
    /* What follows the empty line that ends the head (a body, a pipelined request) is not this head's. */
    x = served("GET /fleet.pol HTTP/1.1\r\nHost: c\r\n\r\nIf-None-Match: *\r\n\r\n", "fleet.pol");
    assert_null(x.inm);
    x = served("GET /fleet.pol HTTP/1.1\n\nIf-None-Match: *\n\n", "fleet.pol");
    assert_null(x.inm);
}

static void metrics(const char *req, enum sd_metrics_route want, bool want_head)
{
    bool head_only = !want_head;
    enum sd_metrics_route r = sd_metrics_route(req, &head_only);
    if (r != want || head_only != want_head)
        fail_msg("%s: route %d head %d, want %d head %d", req, (int)r, head_only, (int)want, want_head);
}

static void test_metrics_route(void **state)
{
    (void)state;
    metrics("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", SD_METRICS_EXPOSITION, false);
    metrics("GET /metrics HTTP/1.0\n\n", SD_METRICS_EXPOSITION, false);
    metrics("HEAD /metrics HTTP/1.1\r\n\r\n", SD_METRICS_EXPOSITION, true);
    metrics("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", SD_METRICS_EXPOSITION, false);
    metrics("GET / HTTP/1.1\r\n\r\n", SD_METRICS_INDEX, false);
    metrics("HEAD / HTTP/1.1\r\n\r\n", SD_METRICS_INDEX, true);

    metrics("GET /other HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET /metricsx HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET /metrics/ HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET /Metrics HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET /%6detrics HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false); /* never decoded */
    metrics("GET /../metrics HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET /metrics\r\n\r\n", SD_METRICS_NOT_FOUND, false); /* no version: not served (as before) */
    metrics("GET /?x HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("GET  /metrics HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, false);
    metrics("HEAD /nothing HTTP/1.1\r\n\r\n", SD_METRICS_NOT_FOUND, true);

    metrics("POST /metrics HTTP/1.1\r\n\r\n", SD_METRICS_BAD_METHOD, false);
    metrics("get /metrics HTTP/1.1\r\n\r\n", SD_METRICS_BAD_METHOD, false);
    metrics("GET/metrics HTTP/1.1\r\n\r\n", SD_METRICS_BAD_METHOD, false);
    metrics("HEAD/metrics HTTP/1.1\r\n\r\n", SD_METRICS_BAD_METHOD, false);
    metrics("", SD_METRICS_BAD_METHOD, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filesrv_methods),
        cmocka_unit_test(test_filesrv_names),
        cmocka_unit_test(test_filesrv_if_none_match),
        cmocka_unit_test(test_metrics_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
