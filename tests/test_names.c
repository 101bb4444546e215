/*
 * test_names.c - the name matcher: the 2021 rules of spec B4 as observed,
 * the options, tag masks, ill-formed patterns, names of any bytes and length,
 * a cross-check against a naive matcher on random sets, and the Re:filter
 * registry list when ../shared/data/refilter is present.
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

static uint64_t look(const struct sd_names *s, const char *name)
{
    return sd_names_lookup(s, (const uint8_t *)name, strlen(name));
}

static void add(struct sd_names *s, const char *pat, unsigned tag)
{
    assert_int_equal(sd_names_add(s, pat, strlen(pat), tag), 0);
}

/* ---- the 2021 rules ---- */

static void test_tw21_initial(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(0);
    assert_non_null(s);
    add(s, "*t.co*", 0);
    add(s, "*twitter.com", 1);
    add(s, "*.twimg.com", 2);
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(sd_names_count(s), 3);

    /* The substring rule throttled unrelated names. */
    assert_int_equal(look(s, "reddit.com"), BIT(0));
    assert_int_equal(look(s, "microsoft.com"), BIT(0));
    assert_int_equal(look(s, "rt.com"), BIT(0));
    assert_int_equal(look(s, "githubusercontent.com"), BIT(0));
    assert_int_equal(look(s, "t.co"), BIT(0));
    assert_int_equal(look(s, "t.co.example.net"), BIT(0));
    /* Bare suffix: no label boundary needed. */
    assert_int_equal(look(s, "throttletwitter.com"), BIT(1));
    assert_int_equal(look(s, "twitter.com"), BIT(1));
    assert_int_equal(look(s, "api.twitter.com"), BIT(1));
    assert_int_equal(look(s, "twitter.com.example.net"), 0);
    /* Dot suffix: subdomains only. */
    assert_int_equal(look(s, "abs.twimg.com"), BIT(2));
    assert_int_equal(look(s, "garbage.twimg.com"), BIT(2));
    assert_int_equal(look(s, "video.twimg.com"), BIT(2));
    assert_int_equal(look(s, "a.b.twimg.com"), BIT(2));
    assert_int_equal(look(s, "twimg.com"), 0);
    assert_int_equal(look(s, "notwimg.com"), 0);
    assert_int_equal(look(s, "example.org"), 0);
    assert_int_equal(look(s, ""), 0);
    /* Both rules at once. */
    assert_int_equal(look(s, "t.co.twitter.com"), BIT(0) | BIT(1));
    assert_int_equal(look(s, "pbs.twimg.com.t.co.twimg.com"), BIT(0) | BIT(2));
    sd_names_free(s);
}

static void test_tw21_exact(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(0);
    add(s, "t.co", 0);
    add(s, "twitter.com", 1);
    add(s, "*.twitter.com", 1);
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(look(s, "t.co"), BIT(0));
    assert_int_equal(look(s, "t.co.example.net"), 0);
    assert_int_equal(look(s, "at.co"), 0);
    assert_int_equal(look(s, "reddit.com"), 0);
    assert_int_equal(look(s, "t.c"), 0);
    assert_int_equal(look(s, "twitter.com"), BIT(1));
    assert_int_equal(look(s, "www.twitter.com"), BIT(1));
    assert_int_equal(look(s, "throttletwitter.com"), 0);
    sd_names_free(s);
}

static void test_trailing_dot(void **state)
{
    (void)state;
    unsigned opts[] = {0, SD_NAMES_STRIP_DOT};
    for (size_t i = 0; i < 2; i++) {
        struct sd_names *s = sd_names_new(opts[i]);
        add(s, "twitter.com", 0);
        add(s, "*.twimg.com", 1);
        add(s, "*witter.com", 2);
        add(s, "*ter.com*", 3);
        assert_int_equal(sd_names_compile(s), 0);
        bool strip = opts[i] != 0;
        assert_int_equal(look(s, "twitter.com"), BIT(0) | BIT(2) | BIT(3));
        /* The substring still matches inside "twitter.com."; the anchored rules do not. */
        assert_int_equal(look(s, "twitter.com."), strip ? BIT(0) | BIT(2) | BIT(3) : BIT(3));
        assert_int_equal(look(s, "abs.twimg.com."), strip ? BIT(1) : 0);
        assert_int_equal(look(s, "abs.twimg.com"), BIT(1));
        /* Only one dot is dropped. */
        assert_int_equal(look(s, "twitter.com.."), BIT(3));
        assert_int_equal(look(s, "."), 0);
        sd_names_free(s);
    }
}

static void test_casefold(void **state)
{
    (void)state;
    struct sd_names *cs = sd_names_new(0), *ci = sd_names_new(SD_NAMES_CASEFOLD);
    struct sd_names *both[] = {cs, ci};
    for (int i = 0; i < 2; i++) {
        add(both[i], "Twitter.COM", 0);
        add(both[i], "*.TwImg.com", 1);
        add(both[i], "*T.Co*", 2);
        add(both[i], "*Tter.Com", 3);
        assert_int_equal(sd_names_compile(both[i]), 0);
    }
    assert_int_equal(look(cs, "Twitter.COM"), BIT(0));
    assert_int_equal(look(cs, "twitter.com"), 0);
    assert_int_equal(look(cs, "abs.TwImg.com"), BIT(1));
    assert_int_equal(look(cs, "abs.twimg.com"), 0);
    assert_int_equal(look(cs, "xT.Co"), BIT(2));
    assert_int_equal(look(cs, "xt.co"), 0);
    assert_int_equal(look(cs, "TwiTter.Com"), BIT(3));
    assert_int_equal(look(cs, "twitter.com"), 0);

    assert_int_equal(look(ci, "twitter.com"), BIT(0) | BIT(3));
    assert_int_equal(look(ci, "TWITTER.COM"), BIT(0) | BIT(3));
    assert_int_equal(look(ci, "ABS.TWIMG.COM"), BIT(1));
    assert_int_equal(look(ci, "RT.COM"), BIT(2));
    assert_int_equal(look(ci, "throttleTWITTER.com"), BIT(3));
    sd_names_free(cs);
    sd_names_free(ci);

    /* Only ASCII folds: 0xC4 is not 0xE4. */
    struct sd_names *s = sd_names_new(SD_NAMES_CASEFOLD);
    const char hi[] = {(char)0xC4, '.', 'x', 0};
    add(s, hi, 0);
    assert_int_equal(sd_names_compile(s), 0);
    const uint8_t lo[] = {0xE4, '.', 'X'};
    const uint8_t same[] = {0xC4, '.', 'X'};
    assert_int_equal(sd_names_lookup(s, lo, sizeof(lo)), 0);
    assert_int_equal(sd_names_lookup(s, same, sizeof(same)), BIT(0));
    sd_names_free(s);
}

static void test_tag_masks(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(0);
    add(s, "example.com", 0);
    add(s, "example.com", 5); /* the same pattern in two sets */
    add(s, "*.com", 63);
    add(s, "*ample.com", 7);
    add(s, "*xam*", 9);
    add(s, "*e*", 10);
    add(s, "*.example.com", 11);
    add(s, "*.example.com", 11); /* duplicates are harmless */
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(sd_names_count(s), 8);
    assert_int_equal(look(s, "example.com"), BIT(0) | BIT(5) | BIT(63) | BIT(7) | BIT(9) | BIT(10));
    assert_int_equal(look(s, "www.example.com"), BIT(63) | BIT(7) | BIT(9) | BIT(10) | BIT(11));
    assert_int_equal(look(s, "sample.com"), BIT(63) | BIT(7) | BIT(10));
    assert_int_equal(look(s, "xam.org"), BIT(9));
    assert_int_equal(look(s, "com"), 0);
    sd_names_free(s);
}

static void test_invalid_patterns(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(0);
    const char *bad[] = {"", "*", "**", "***", "a*b", "t.co*", "*a*b", "a**", "*a**", "**a", "*.a*.b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sd_names_add(s, bad[i], strlen(bad[i]), 0), SD_EINVAL);
    assert_int_equal(sd_names_add(s, "a\0b", 3, 0), SD_EINVAL);
    assert_int_equal(sd_names_add(s, "*a\0*", 4, 0), SD_EINVAL);
    assert_int_equal(sd_names_add(s, "ok", 2, 64), SD_EINVAL);
    char big[257];
    memset(big, 'a', sizeof(big));
    assert_int_equal(sd_names_add(s, big, 256, 0), SD_EINVAL);
    assert_int_equal(sd_names_add(s, big, 255, 0), 0);
    big[0] = '*';
    assert_int_equal(sd_names_add(s, big, 255, 1), 0);
    assert_int_equal(sd_names_add(s, "*a*", 3, 63), 0);
    assert_int_equal(sd_names_count(s), 3);
    /* Before compiling, nothing matches; afterwards the set is frozen. */
    assert_int_equal(sd_names_lookup(s, (const uint8_t *)big + 1, 254), 0);
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(sd_names_add(s, "late.com", 8, 0), SD_EINVAL);
    memset(big, 'a', sizeof(big));
    assert_int_equal(sd_names_lookup(s, (const uint8_t *)big, 255), BIT(0) | BIT(1) | BIT(63));
    assert_int_equal(sd_names_lookup(s, (const uint8_t *)big, 256), BIT(1) | BIT(63));
    sd_names_free(s);
    sd_names_free(NULL);

    /* An empty set compiles and matches nothing. */
    s = sd_names_new(SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT);
    assert_int_equal(sd_names_compile(s), 0);
    assert_int_equal(look(s, "a.b"), 0);
    assert_int_equal(sd_names_lookup(s, NULL, 0), 0);
    sd_names_free(s);
}

/* Names are bytes: NUL, high bytes and '*' in names; names far longer than 255. */
static void test_any_bytes_and_long_names(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(SD_NAMES_CASEFOLD);
    add(s, "*.tail.example", 0);
    add(s, "*needle*", 1);
    add(s, "*zz.example", 2);
    add(s, "exact", 3);
    const char bin[] = {'*', (char)0xff, (char)0x80, '.', 'x', '*', 0};
    add(s, bin, 4);
    assert_int_equal(sd_names_compile(s), 0);

    uint8_t name[4096];
    memset(name, '.', sizeof(name));
    name[100] = 0;
    const char *t = ".TAIL.Example";
    memcpy(name + sizeof(name) - strlen(t), t, strlen(t));
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(0));
    memcpy(name + 1000, "NeEdLe", 6);
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(0) | BIT(1));
    memcpy(name + sizeof(name) - 10, "ZZ.EXAMPLE", 10);
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(1) | BIT(2));
    const uint8_t b[] = {0, 0xff, 0x80, '.', 'X', 0, '*'};
    assert_int_equal(sd_names_lookup(s, b, sizeof(b)), BIT(4));
    const uint8_t e[] = {'e', 'x', 'a', 'c', 't', 0};
    assert_int_equal(sd_names_lookup(s, e, 5), BIT(3));
    assert_int_equal(sd_names_lookup(s, e, 6), 0);
    sd_names_free(s);
}

/*
 * Substrings are scanned in windows of 256 positions with the 255 bytes
 * before each: a key across a window's edge, at the first and last bytes of
 * a long name, and many that pass in one window (more than a batch). Names
 * are folded 8 bytes at a time: the bytes next to 'A' and 'Z' and the high
 * ones stay as they are.
 */
static void test_substring_windows(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(SD_NAMES_CASEFOLD);
    add(s, "*edge-key*", 0);
    add(s, "*ab*", 1);
    add(s, "*Q@[Z*", 2);
    add(s, "*a-long-key-of-forty-bytes-for-the-q8-p*", 3);
    add(s, "*yz*", 4);
    const char hi[] = {'*', (char)0xE1, (char)0xE2, '*', 0};
    add(s, hi, 5);
    assert_int_equal(sd_names_compile(s), 0);
    uint8_t name[1000];
    for (size_t at = 240; at < 780; at++) { /* across the edges at 256 and 512 */
        memset(name, '.', sizeof(name));
        memcpy(name + at, "EDGE-KEY", 8);
        assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(0));
        memcpy(name + at - 40, "A-LONG-KEY-OF-FORTY-BYTES-FOR-THE-Q8-P", 39);
        assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(0) | BIT(3));
    }
    memset(name, '.', sizeof(name));
    memcpy(name, "ab", 2);
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(1));
    assert_int_equal(sd_names_lookup(s, name + 1, sizeof(name) - 1), 0);
    memcpy(name + sizeof(name) - 2, "YZ", 2);
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(1) | BIT(4));
    assert_int_equal(sd_names_lookup(s, name, sizeof(name) - 1), BIT(1));
    for (size_t i = 0; i < sizeof(name); i++) /* "ab" passes at every other position */
        name[i] = "ab"[i % 2];
    assert_int_equal(sd_names_lookup(s, name, sizeof(name)), BIT(1));

    /* Folding, in the first 8 bytes: 'Q' and 'Z' fold, '@' and '[' (next to
     * 'A' and 'Z') do not, nor 0xC1 ('A' | 0x80). Candidates are confirmed
     * against the name folded byte by byte, so a byte folded wrongly shows
     * only as a key missed. */
    const uint8_t fold[] = {'x', 'Q', '@', '[', 'Z', 'x', 'x', 'x', 'x'};
    assert_int_equal(sd_names_lookup(s, fold, sizeof(fold)), BIT(2));
    const uint8_t nofold[] = {'x', 'q', '`', '{', 'z', 'x', 'x', 'x', 'x'};
    assert_int_equal(sd_names_lookup(s, nofold, sizeof(nofold)), 0);
    const uint8_t high[] = {'x', 'x', 0xC1, 0xC2, 'x', 'x', 'x', 'x', 'x'};
    const uint8_t folded[] = {'x', 'x', 0xE1, 0xE2, 'x', 'x', 'x', 'x', 'x'};
    assert_int_equal(sd_names_lookup(s, high, sizeof(high)), 0);
    assert_int_equal(sd_names_lookup(s, folded, sizeof(folded)), BIT(5));
    sd_names_free(s);
}

/* More matching suffixes than one batch of probes; a name of dots only. */
static void test_many_suffixes(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(0);
    char pat[64] = "*";
    for (unsigned k = 1; k <= 20; k++) { /* "*.a", "*.a.a", ... */
        strcat(pat, ".a");
        add(s, pat, k);
        char bare[64] = "*"; /* "*a", "*a.a", ... */
        strcat(bare, pat + 2);
        add(s, bare, 40 + k % 20);
    }
    add(s, "a.a.a", 63);
    assert_int_equal(sd_names_compile(s), 0);
    char name[64] = "a";
    for (int k = 0; k < 25; k++)
        strcat(name, ".a");
    uint64_t want = 0;
    for (unsigned k = 1; k <= 20; k++)
        want |= BIT(k) | BIT(40 + k % 20);
    assert_int_equal(look(s, name), want);
    assert_int_equal(look(s, "a.a.a"), BIT(1) | BIT(2) | BIT(41) | BIT(42) | BIT(43) | BIT(63));
    assert_int_equal(look(s, "a.a.b"), 0);
    char dots[256];
    memset(dots, '.', 255);
    dots[255] = 0;
    assert_int_equal(look(s, dots), 0);
    sd_names_free(s);
}

/* Patterns and names flush against a PROT_NONE page: no read past |n|. */
static void test_guard_page(void **state)
{
    (void)state;
    const char *texts[] = {"t.co", "*.twimg.com", "*twitter.com", "*t.co*", "*", "**", "a*", "*a*b", "x"};
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
    struct sd_names *s = sd_names_new(SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        size_t n = strlen(texts[i]);
        memcpy(map + page - n, texts[i], n);
        for (size_t k = 0; k <= n; k++) /* every tail: "o", "co", ".co", "t.co" */
            (void)sd_names_add(s, (const char *)map + page - k, k, (unsigned)i);
    }
    assert_int_equal(sd_names_compile(s), 0);
    const char *names[] = {"t.co", "abs.twimg.com.", "throttletwitter.com", "microsoft.com", "x", ""};
    uint64_t want[] = {BIT(0) | BIT(3), BIT(1), BIT(2), BIT(3), BIT(8), 0};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t n = strlen(names[i]);
        memcpy(map + page - n, names[i], n);
        assert_int_equal(sd_names_lookup(s, map + page - n, n), want[i]);
    }
    sd_names_free(s);
    munmap(map, 2 * page);
}

/* A batch answers as single lookups do, before compiling too (0 for all). */
static void test_batch(void **state)
{
    (void)state;
    struct sd_names *s = sd_names_new(SD_NAMES_STRIP_DOT);
    assert_int_equal(sd_names_add(s, "*t.co*", 6, 0), 0);
    assert_int_equal(sd_names_add(s, "*.twimg.com", 11, 1), 0);
    assert_int_equal(sd_names_add(s, "twitter.com", 11, 2), 0);
    const uint8_t *names[] = {(const uint8_t *)"reddit.com", (const uint8_t *)"abs.twimg.com.",
                              (const uint8_t *)"twitter.com", (const uint8_t *)"example.org", (const uint8_t *)""};
    size_t lens[] = {10, 14, 11, 11, 0};
    uint64_t out[5];
    memset(out, 0xff, sizeof(out));
    sd_names_lookup_batch(s, names, lens, 5, out);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(sd_names_compile(s), 0);
    sd_names_lookup_batch(s, names, lens, 5, out);
    uint64_t want[] = {BIT(0), BIT(1), BIT(2), 0, 0};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(out[i], want[i]);
        assert_int_equal(sd_names_lookup(s, names[i], lens[i]), want[i]);
    }
    sd_names_free(s);
}

/* ---- cross-check against a naive matcher ---- */

struct npat {
    int kind; /* 0 exact, 1 suffix, 2 substring */
    uint8_t body[40];
    size_t len;
    unsigned tag;
};

static uint32_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (uint32_t)(*x >> 16);
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

static bool eq(const uint8_t *a, const uint8_t *b, size_t n, bool fold)
{
    for (size_t i = 0; i < n; i++)
        if ((fold ? lower(a[i]) : a[i]) != (fold ? lower(b[i]) : b[i]))
            return false;
    return true;
}

static uint64_t naive(const struct npat *p, size_t np, unsigned opts, const uint8_t *name, size_t n)
{
    bool fold = opts & SD_NAMES_CASEFOLD;
    if ((opts & SD_NAMES_STRIP_DOT) && n && name[n - 1] == '.')
        n--;
    uint64_t m = 0;
    for (size_t i = 0; i < np; i++) {
        size_t L = p[i].len;
        bool hit = false;
        if (p[i].kind == 0)
            hit = n == L && eq(name, p[i].body, L, fold);
        else if (p[i].kind == 1)
            hit = n >= L && eq(name + n - L, p[i].body, L, fold);
        else
            for (size_t j = 0; !hit && j + L <= n; j++)
                hit = eq(name + j, p[i].body, L, fold);
        if (hit)
            m |= BIT(p[i].tag);
    }
    return m;
}

/* What sd_names_explain() reported for one name. */
struct explained {
    char text[300][260];
    size_t len[300];
    uint64_t tags[300];
    size_t n;
};

static void collect(void *arg, const char *pattern, size_t n, uint64_t tags)
{
    struct explained *e = arg;
    assert_true(e->n < 300 && n <= 257);
    memcpy(e->text[e->n], pattern, n);
    e->len[e->n] = n;
    e->tags[e->n++] = tags;
}

/* Checks sd_names_explain() against the naive patterns: each matching
 * pattern reported once, by its text (folded when the set folds), with the
 * tags of every pattern of that text and kind. */
static void check_explain(const struct sd_names *s, const struct npat *p, size_t np, unsigned opts, const uint8_t *name,
                          size_t n)
{
    static struct explained e;
    e.n = 0;
    size_t m = n - ((opts & SD_NAMES_STRIP_DOT) && n && name[n - 1] == '.');
    int rc = sd_names_explain(s, name, n, collect, &e);
    if (m > SD_NAME_MAX) {
        assert_int_equal(rc, SD_ERANGE);
        return;
    }
    assert_int_equal(rc, 0);
    uint64_t want_tags[300] = {0};
    bool fold = opts & SD_NAMES_CASEFOLD;
    for (size_t i = 0; i < np; i++) {
        if (!(naive(&p[i], 1, opts, name, n)))
            continue;
        char t[260];
        size_t tl = 0;
        if (p[i].kind)
            t[tl++] = '*';
        for (size_t j = 0; j < p[i].len; j++)
            t[tl++] = (char)(fold ? lower(p[i].body[j]) : p[i].body[j]);
        if (p[i].kind == 2)
            t[tl++] = '*';
        size_t k = 0;
        while (k < e.n && !(e.len[k] == tl && memcmp(e.text[k], t, tl) == 0))
            k++;
        if (k == e.n)
            fail_msg("opts %u, name of %zu bytes: pattern %.*s not reported", opts, n, (int)tl, t);
        want_tags[k] |= BIT(p[i].tag);
    }
    for (size_t k = 0; k < e.n; k++) {
        if (e.tags[k] != want_tags[k])
            fail_msg("opts %u: %.*s reported with tags %#llx, want %#llx", opts, (int)e.len[k], e.text[k],
                     (unsigned long long)e.tags[k], (unsigned long long)want_tags[k]);
        for (size_t j = 0; j < k; j++)
            if (e.len[j] == e.len[k] && memcmp(e.text[j], e.text[k], e.len[k]) == 0)
                fail_msg("%.*s reported twice", (int)e.len[k], e.text[k]);
    }
}

static bool wide_alphabet; /* test_cross_check_wide: substrings of more than 64 distinct bytes */

/* A few letters, both cases, dots and a high byte, so that matches are common;
 * with wide_alphabet, half of the bytes are any but NUL and '*'. */
static uint8_t rnd_byte(uint64_t *x)
{
    static const uint8_t alpha[] = {'a', 'b', 'c', '.', '.', 'A', 'B', 0xe9, '-'};
    if (wide_alphabet && rnd(x) % 2) {
        uint8_t b = (uint8_t)(1 + rnd(x) % 255);
        return b == '*' ? '+' : b;
    }
    return alpha[rnd(x) % sizeof(alpha)];
}

static void cross_check_round(uint64_t *x, unsigned opts, size_t np, size_t nnames)
{
    struct npat *p = calloc(np, sizeof(*p));
    struct sd_names *s = sd_names_new(opts);
    assert_non_null(p);
    for (size_t i = 0; i < np; i++) {
        p[i].kind = (int)(rnd(x) % 4);
        bool dot = p[i].kind == 3; /* a dot-suffix pattern "*.xyz" */
        p[i].kind = dot ? 1 : p[i].kind;
        p[i].len = 1 + rnd(x) % (rnd(x) % 8 == 0 ? sizeof(p[i].body) : 6); /* now and then past 8, 18, 23 bytes */
        for (size_t j = 0; j < p[i].len; j++)
            p[i].body[j] = rnd_byte(x);
        if (dot)
            p[i].body[0] = '.';
        p[i].tag = rnd(x) % 64;
        char text[sizeof(p[i].body) + 2];
        size_t tl = 0;
        if (p[i].kind)
            text[tl++] = '*';
        memcpy(text + tl, p[i].body, p[i].len);
        tl += p[i].len;
        if (p[i].kind == 2)
            text[tl++] = '*';
        assert_int_equal(sd_names_add(s, text, tl, p[i].tag), 0);
    }
    assert_int_equal(sd_names_compile(s), 0);
    enum { NAME_CAP = 300 };
    uint8_t(*all)[NAME_CAP] = malloc(nnames * sizeof(*all)); /* every name, for the batch below */
    const uint8_t **ptr = malloc(nnames * sizeof(*ptr));
    size_t *lens = malloc(nnames * sizeof(*lens));
    uint64_t *wants = malloc(nnames * sizeof(*wants)), *outs = malloc(nnames * sizeof(*outs));
    assert_true(all && ptr && lens && wants && outs);
    for (size_t k = 0; k < nnames; k++) {
        uint8_t *name = all[k];
        size_t n = rnd(x) % 8 == 0 ? rnd(x) % NAME_CAP : rnd(x) % 14;
        for (size_t j = 0; j < n; j++)
            name[j] = rnd_byte(x);
        const struct npat *in = &p[rnd(x) % np]; /* a quarter hold a pattern's body, to hit long ones */
        if (rnd(x) % 4 == 0 && n >= in->len) {
            size_t at = rnd(x) % (n - in->len + 1);
            memcpy(name + at, in->body, in->len);
        }
        uint64_t want = naive(p, np, opts, name, n), got = sd_names_lookup(s, name, n);
        if (want != got)
            fail_msg("opts %u, name of %zu bytes: want %#llx got %#llx", opts, n, (unsigned long long)want,
                     (unsigned long long)got);
        check_explain(s, p, np, opts, name, n);
        ptr[k] = name;
        lens[k] = n;
        wants[k] = want;
    }
    /* The same names in batches of 0 to 17: the same answers, each in its place. */
    for (size_t k = 0; k < nnames;) {
        size_t b = rnd(x) % 18;
        b = SD_MIN(b, nnames - k);
        outs[k] = 0xdeadULL;
        sd_names_lookup_batch(s, ptr + k, lens + k, b, outs + k);
        for (size_t i = 0; i < b; i++)
            if (outs[k + i] != wants[k + i])
                fail_msg("opts %u, name %zu of a batch of %zu: want %#llx got %#llx", opts, i, b,
                         (unsigned long long)wants[k + i], (unsigned long long)outs[k + i]);
        if (b == 0)
            assert_int_equal(outs[k], 0xdeadULL); /* an empty batch writes nothing */
        k += b;
    }
    free(all);
    free(ptr);
    free(lens);
    free(wants);
    free(outs);
    sd_names_free(s);
    free(p);
}

static void test_cross_check(void **state)
{
    (void)state;
    uint64_t x = 0x5eed5eed12345678ULL;
    for (unsigned opts = 0; opts < 4; opts++)
        for (int round = 0; round < 40; round++)
            cross_check_round(&x, opts, 1 + rnd(&x) % (round < 20 ? 8 : 300), 500);
}

/* The automaton's other layout: more than 64 byte classes, children found by
 * scanning their labels instead of by rank in a bit set. */
static void test_cross_check_wide(void **state)
{
    (void)state;
    uint64_t x = 0x77aa5eed12345678ULL;
    wide_alphabet = true;
    for (unsigned opts = 0; opts < 4; opts++)
        for (int round = 0; round < 10; round++)
            cross_check_round(&x, opts, 300 + rnd(&x) % 300, 500);
    wide_alphabet = false;
}

/* ---- the registry list ---- */

/* Opens ../shared/data/refilter/|file| beside the source tree (or beside the
 * directory of git worktrees that holds it), or returns NULL. */
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

static void test_refilter_list(void **state)
{
    (void)state;
    FILE *f = open_shared("domains_all.lst");
    if (!f) {
        skip();
        return;
    }
    struct sd_names *s = sd_names_new(SD_NAMES_CASEFOLD | SD_NAMES_STRIP_DOT);
    char line[512], buf[520];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0)
            continue;
        assert_int_equal(sd_names_add(s, line, n, 0), 0);
        buf[0] = '*';
        buf[1] = '.';
        memcpy(buf + 2, line, n);
        assert_int_equal(sd_names_add(s, buf, n + 2, 1), 0);
        lines++;
    }
    assert_true(lines > 80000);
    assert_int_equal(sd_names_count(s), 2 * lines);
    assert_int_equal(sd_names_compile(s), 0);

    rewind(f);
    size_t checked = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0)
            continue;
        /* Every entry matches itself; "www." + entry and its upper case with
         * a trailing dot match as a subdomain. */
        assert_true(sd_names_lookup(s, (const uint8_t *)line, n) & BIT(0));
        int bn = snprintf(buf, sizeof(buf), "WWW.%.*s.", (int)n, line);
        for (int i = 0; i < bn; i++)
            buf[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
        assert_true(sd_names_lookup(s, (const uint8_t *)buf, (size_t)bn) & BIT(1));
        checked++;
    }
    fclose(f);
    assert_int_equal(checked, lines);
    assert_int_equal(look(s, "this-name-is-not-listed.invalid"), 0);
    sd_names_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tw21_initial),
        cmocka_unit_test(test_tw21_exact),
        cmocka_unit_test(test_trailing_dot),
        cmocka_unit_test(test_casefold),
        cmocka_unit_test(test_tag_masks),
        cmocka_unit_test(test_invalid_patterns),
        cmocka_unit_test(test_any_bytes_and_long_names),
        cmocka_unit_test(test_substring_windows),
        cmocka_unit_test(test_many_suffixes),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_cross_check),
        cmocka_unit_test(test_cross_check_wide),
        cmocka_unit_test(test_refilter_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
