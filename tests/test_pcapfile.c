/*
 * test_pcapfile.c - the fast classic-pcap reader (src/pcapfile.c).
 *
 * Files are written byte by byte here (both byte orders, micro- and
 * nanosecond magic, odd snaplens, records larger than the buffer
 * window, cut-off ends) and every one is also read with libpcap: the reader
 * must hand out exactly the records libpcap does, with the same times, and
 * fail where libpcap fails.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcapfile.h"

struct file {
    uint8_t *p;
    size_t n, cap;
    bool be, nano;
};

static void put(struct file *f, const void *src, size_t n)
{
    if (f->n + n > f->cap) {
        f->cap = (f->n + n) * 2;
        f->p = realloc(f->p, f->cap);
        assert_non_null(f->p);
    }
    memcpy(f->p + f->n, src, n);
    f->n += n;
}

static void put32(struct file *f, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    if (f->be) {
        uint8_t t = b[0];
        b[0] = b[3], b[3] = t, t = b[1], b[1] = b[2], b[2] = t;
    }
    put(f, b, 4);
}

static void header(struct file *f, bool be, bool nano, uint32_t snaplen, uint32_t linktype)
{
    memset(f, 0, sizeof(*f));
    f->be = be;
    f->nano = nano;
    put32(f, nano ? 0xa1b23c4d : 0xa1b2c3d4);
    uint8_t ver[4] = {be ? 0 : 2, be ? 2 : 0, be ? 0 : 4, be ? 4 : 0}; /* 2.4 */
    put(f, ver, 4);
    put32(f, 0);
    put32(f, 0);
    put32(f, snaplen);
    put32(f, linktype);
}

/* Record i: |len| bytes of a pattern that depends on i. */
static void record(struct file *f, uint32_t sec, uint32_t frac, uint32_t len, int i)
{
    put32(f, sec);
    put32(f, frac);
    put32(f, len);
    put32(f, len);
    for (uint32_t k = 0; k < len; k++) {
        uint8_t b = (uint8_t)(k * 7 + (uint32_t)i);
        put(f, &b, 1);
    }
}

static void save(const struct file *f, char *path, size_t cap, size_t upto)
{
    snprintf(path, cap, "%s/sd_test_pcapfile_XXXXXX", P_tmpdir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, f->p, upto), (ssize_t)upto);
    close(fd);
}

/* Reads |path| with both readers and compares record by record. Returns
 * the number of records; *err_fast / *err_pcap say whether each ended in an
 * error. */
static int compare(const char *path, bool *err_fast, bool *err_pcap)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, eb);
    struct sd_pcapfile *r;
    assert_non_null(pc);
    assert_int_equal(sd_pcapfile_open(&r, path), 0);
    assert_int_equal(sd_pcapfile_dlt(r), pcap_datalink(pc));
    int n = 0, a, b;
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *d;
        const uint8_t *data;
        uint32_t caplen;
        uint64_t ts;
        a = pcap_next_ex(pc, &h, &d);
        b = sd_pcapfile_next(r, &data, &caplen, &ts);
        if (a != 1 || b != 1)
            break;
        assert_int_equal(caplen, h->caplen);
        assert_memory_equal(data, d, caplen);
        assert_int_equal(ts, (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec);
        n++;
    }
    *err_pcap = a == PCAP_ERROR;
    *err_fast = b < 0;
    if (b < 0)
        assert_string_equal(sd_pcapfile_error(r), pcap_geterr(pc));
    assert_int_equal(a == 1, b == 1); /* both ended at the same record */
    pcap_close(pc);
    sd_pcapfile_close(r);
    return n;
}

static void byte_orders_and_precisions(void **state)
{
    (void)state;
    for (int v = 0; v < 4; v++) {
        struct file f;
        char path[256];
        bool ef, ep;
        header(&f, v & 1, v & 2, 65535, 1);
        for (int i = 0; i < 100; i++)
            record(&f, 1618056000u + (uint32_t)i, (uint32_t)(i * 12345) % ((v & 2) ? 1000000000u : 1000000u),
                   (uint32_t)(60 + i * 13), i);
        record(&f, 0xfffffff0u, 0xffffffffu, 60, 100); /* libpcap reads the time as signed */
        record(&f, 0x80000000u, 0x7fffffffu, 60, 101);
        save(&f, path, sizeof(path), f.n);
        assert_int_equal(compare(path, &ef, &ep), 102);
        assert_false(ef || ep);
        unlink(path);
        free(f.p);
    }
}

/* Records crossing the buffer window, records at the 256 KB maximum, empty
 * records, and ones longer than the snaplen (cut to it, as libpcap does). */
static void big_small_and_cut_records(void **state)
{
    (void)state;
    struct file f;
    char path[256];
    bool ef, ep;
    header(&f, false, false, 0, 101); /* snaplen 0 means the maximum */
    for (int i = 0; i < 40; i++)
        record(&f, 1, (uint32_t)i, i % 5 == 0 ? 262144 : i % 5 == 1 ? 0 : (uint32_t)(i * 4001), i);
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(compare(path, &ef, &ep), 40);
    assert_false(ef || ep);
    unlink(path);
    free(f.p);

    header(&f, true, true, 100, 113);
    for (int i = 0; i < 30; i++)
        record(&f, 2, (uint32_t)i, (uint32_t)(i * 9), i);
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(compare(path, &ef, &ep), 30);
    assert_false(ef || ep);
    unlink(path);
    free(f.p);
}

/* A file cut inside a record header or a record body: the same records,
 * then the same error. A record above 256 KB is an error too. */
static void cut_files_and_oversized_records(void **state)
{
    (void)state;
    struct file f;
    char path[256];
    bool ef, ep;
    header(&f, false, false, 65535, 1);
    for (int i = 0; i < 10; i++)
        record(&f, 3, (uint32_t)i, 1000, i);
    size_t cuts[] = {24 + 1016 * 9 + 5, 24 + 1016 * 9 + 16 + 500, 24 + 1016 * 10 - 1};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        save(&f, path, sizeof(path), cuts[k]);
        assert_int_equal(compare(path, &ef, &ep), 9);
        assert_true(ef && ep);
        unlink(path);
    }
    free(f.p);

    static const uint32_t snaps[] = {65535, 262144, 0x7f000000, 0x80000000};
    for (size_t k = 0; k < sizeof(snaps) / sizeof(snaps[0]); k++) {
        uint32_t snap = snaps[k]; /* libpcap keeps a snaplen up to 2^31 - 1 */
        header(&f, false, false, snap, 1);
        record(&f, 1, 1, 10, 0);
        put32(&f, 1), put32(&f, 2), put32(&f, 262145), put32(&f, 262145);
        save(&f, path, sizeof(path), f.n);
        assert_int_equal(compare(path, &ef, &ep), 1);
        assert_true(ef && ep);
        unlink(path);
        free(f.p);
    }

    /* Cut inside a record longer than the snaplen: before and after it. */
    header(&f, false, false, 100, 1);
    record(&f, 1, 1, 500, 0);
    for (size_t upto = 24 + 16 + 50; upto <= 24 + 16 + 400; upto += 350) {
        save(&f, path, sizeof(path), upto);
        assert_int_equal(compare(path, &ef, &ep), 0);
        assert_true(ef && ep);
        unlink(path);
    }
    free(f.p);
}

/* Batches: every record of a batch stays valid while the batch is used,
 * and batches of any size give libpcap's records, then its error. */
static void batches(void **state)
{
    (void)state;
    struct file f;
    char path[256], eb[PCAP_ERRBUF_SIZE];
    enum { N = 300 };
    header(&f, false, false, 65535, 1);
    for (int i = 0; i < N; i++)
        record(&f, 5, (uint32_t)i, (uint32_t)(i % 10 == 0 ? 65535 : 40 + i * 37 % 1500), i);
    save(&f, path, sizeof(path), f.n - 100); /* the last record is cut */
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, eb);
    assert_non_null(pc);
    uint8_t *copy[N];
    uint32_t len[N];
    int n = 0;
    struct pcap_pkthdr *h;
    const u_char *d;
    while (pcap_next_ex(pc, &h, &d) == 1) {
        copy[n] = malloc(h->caplen + 1);
        memcpy(copy[n], d, h->caplen);
        len[n++] = h->caplen;
    }
    assert_int_equal(n, N - 1);
    struct sd_pcapfile *r;
    assert_int_equal(sd_pcapfile_open(&r, path), 0);
    struct sd_pcaprec recs[8];
    int got = 0, k, calls = 0;
    while ((k = sd_pcapfile_next_batch(r, recs, 1 + calls++ % 8)) > 0) {
        for (int i = 0; i < k; i++) {
            assert_true(got + i < n);
            assert_int_equal(recs[i].caplen, len[got + i]);
            assert_memory_equal(recs[i].data, copy[got + i], len[got + i]);
            assert_int_equal(recs[i].ts_ns, 5000000000ull + (uint64_t)(got + i) * 1000u);
        }
        got += k;
    }
    assert_int_equal(got, n);
    assert_int_equal(k, SD_EPROTO);
    assert_string_equal(sd_pcapfile_error(r), pcap_geterr(pc));
    for (int i = 0; i < n; i++)
        free(copy[i]);
    sd_pcapfile_close(r);
    pcap_close(pc);
    unlink(path);
    free(f.p);
}

/* pcapng, unknown magic, unsupported link types, short and missing files
 * are not this reader's: libpcap reads or reports them. */
static void leaves_the_rest_to_libpcap(void **state)
{
    (void)state;
    struct sd_pcapfile *r = (struct sd_pcapfile *)1;
    char path[256];
    struct file f;
    static const uint8_t ng[28] = {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0};
    memset(&f, 0, sizeof(f));
    put(&f, ng, sizeof(ng));
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(sd_pcapfile_open(&r, path), SD_ENOTSUP);
    assert_null(r);
    unlink(path);
    free(f.p);

    header(&f, false, false, 65535, 105); /* 802.11 */
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(sd_pcapfile_open(&r, path), SD_ENOTSUP);
    unlink(path);
    free(f.p);
    header(&f, false, false, 65535, 1 | 1u << 16); /* reserved bits of the link type field */
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(sd_pcapfile_open(&r, path), SD_ENOTSUP);
    unlink(path);
    free(f.p);
    header(&f, false, false, 65535, 1);
    f.p[6] = 3; /* version 2.3: caplen and len may be swapped */
    save(&f, path, sizeof(path), f.n);
    assert_int_equal(sd_pcapfile_open(&r, path), SD_ENOTSUP);
    unlink(path);
    save(&f, path, sizeof(path), 10);
    assert_int_equal(sd_pcapfile_open(&r, path), SD_EPROTO);
    unlink(path);
    free(f.p);
    assert_int_equal(sd_pcapfile_open(&r, "/nonexistent/sd.pcap"), SD_EIO);
    sd_pcapfile_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(byte_orders_and_precisions),
        cmocka_unit_test(big_small_and_cut_records),
        cmocka_unit_test(cut_files_and_oversized_records),
        cmocka_unit_test(batches),
        cmocka_unit_test(leaves_the_rest_to_libpcap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
