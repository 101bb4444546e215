/*
 * strat_tls.c - the strategies that work at the TLS layer, and the filter
 * BIO through which every strategy sees the first flight.
 *
 * OpenSSL writes the ClientHello with one BIO write. A filter BIO pushed in
 * front of the socket BIO (for reads and writes) takes that first write and
 * hands it to the strategy, which decides how the bytes leave: rewritten
 * (record split, a leading CCS record), as several segments or with an
 * urgent byte (strat_tcp.c), or with forged packets around it
 * (strat_forge.c). Later writes pass through, except that the idle strategy
 * holds the first write after the server's answer (the client's Finished)
 * for its wait.
 *
 * Rewrites never touch the handshake message itself, so the transcript the
 * client hashes is the one the server hashes. The padding strategy changes
 * the message, but through OpenSSL (a custom extension), for the same
 * reason; OpenSSL will not register type 21, which it owns, hence the
 * GREASE type (strat.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "bytes.h"
#include "evade_int.h"
#include "mono.h"
#include "strat.h"
#include "tls.h"

enum { PAD_MAX = 16000, FLIGHT_WAIT_S = 3 };

/* ---- pure rewrites ---- */

int sd_strat_tlsrec(const uint8_t *in, size_t n, size_t at, uint8_t *out, size_t cap)
{
    if (n < 6 || in[0] != SD_TLS_CT_HANDSHAKE || (size_t)sd_rd16be(in + 3) + 5 != n)
        return SD_EINVAL;
    if (at <= 5 || at >= n)
        return SD_EINVAL;
    if (cap < n + 5)
        return SD_ERANGE;
    size_t a = at - 5, b = n - at; /* handshake bytes in each record */
    memcpy(out, in, 3);
    sd_put16be(out + 3, (uint16_t)a);
    memcpy(out + 5, in + 5, a);
    memcpy(out + 5 + a, in, 3);
    sd_put16be(out + 8 + a, (uint16_t)b);
    memcpy(out + 10 + a, in + at, b);
    return (int)(n + 5);
}

int sd_strat_ccs(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    static const uint8_t ccs[6] = {SD_TLS_CT_CCS, 3, 3, 0, 1, 1};

    if (cap < n + sizeof(ccs))
        return SD_ERANGE;
    memcpy(out, ccs, sizeof(ccs));
    memcpy(out + sizeof(ccs), in, n);
    return (int)(n + sizeof(ccs));
}

int sd_strat_sni(int mode, const char *name, const char *other, char *out, size_t cap)
{
    size_t n = strlen(name);
    int alpha = 0;

    if (mode == SD_EVADE_SNI_NONE) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    if (mode == SD_EVADE_SNI_OTHER) {
        name = other;
        n = strlen(other);
    }
    if (n + (mode == SD_EVADE_SNI_DOT) + 1 > cap)
        return SD_ERANGE;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        bool up = mode == SD_EVADE_SNI_UPPER || (mode == SD_EVADE_SNI_MIXED && letter && alpha++ % 2 == 0);
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (mode == SD_EVADE_SNI_MIXED && letter && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[i] = c;
    }
    if (mode == SD_EVADE_SNI_DOT)
        out[n++] = '.';
    out[n] = '\0';
    return (int)n;
}

/* ---- padding ---- */

static int pad_add(SSL *s, unsigned int type, unsigned int context, const unsigned char **out, size_t *outlen,
                   X509 *x, size_t chainidx, int *al, void *arg)
{
    static const unsigned char zeros[PAD_MAX];
    const struct sd__evade_run *r = arg;

    (void)s, (void)type, (void)x, (void)chainidx, (void)al;
    if (context != SSL_EXT_CLIENT_HELLO)
        return 0;
    *out = zeros;
    *outlen = r->spec->size;
    return 1;
}

int sd__evade_tls_ctx_hook(void *arg, struct ssl_ctx_st *ctx, char *detail, size_t len)
{
    struct sd__evade_run *x = arg;

    if (x->spec->def->op != SD_EVADE_PADDING)
        return 0;
    if (!SSL_CTX_add_custom_ext(ctx, SD_STRAT_PAD_EXT, SSL_EXT_CLIENT_HELLO, pad_add, NULL, x, NULL, NULL)) {
        snprintf(detail, len, "OpenSSL refused the padding extension");
        return SD_ECRYPTO;
    }
    x->r->applied = true;
    sd__evade_note(x, "padding extension 0x%04x of %u bytes", SD_STRAT_PAD_EXT, x->spec->size);
    return 0;
}

/* ---- the first flight ---- */

static int send_rewritten(struct sd__evade_run *x, int n, uint64_t deadline)
{
    if (n < 0)
        return n;
    return sd__evade_send_all(x->fd, x->buf, (size_t)n, 0, deadline);
}

/* Sends the first flight the strategy's way. 0 or a negative SD_E* (note set). */
static int first_flight(struct sd__evade_run *x, const uint8_t *p, size_t n)
{
    const struct sd_evade_spec *s = x->spec;
    uint64_t deadline = sd_mono_ns() + FLIGHT_WAIT_S * (uint64_t)SD_NS_PER_S;
    struct sd_evade_marks m;
    int rc;

    if (s->def->op == SD_EVADE_NONE || s->def->op == SD_EVADE_PADDING || s->def->op == SD_EVADE_SNI ||
        s->def->op == SD_EVADE_MSS || s->def->op == SD_EVADE_PROXY || s->def->op == SD_EVADE_IDLE)
        return sd__evade_send_all(x->fd, p, n, 0, deadline);
    if (sd_evade_marks(p, n, &m) < 0) {
        sd__evade_note(x, "the first flight (%zu B) is not one ClientHello record: sent as it is", n);
        return sd__evade_send_all(x->fd, p, n, 0, deadline);
    }
    switch (s->def->op) {
    case SD_EVADE_SPLIT:
        return sd__evade_split(x, p, n, deadline);
    case SD_EVADE_OOB:
        return sd__evade_oob(x, p, n, deadline);
    case SD_EVADE_TLSREC: {
        size_t at = sd_evade_resolve(&s->pos[0], &m);
        if (at <= 5)
            at = 6; /* the first record needs one handshake byte */
        rc = send_rewritten(x, sd_strat_tlsrec(p, n, at, x->buf, sizeof(x->buf)), deadline);
        if (rc == 0) {
            x->r->applied = true;
            sd__evade_note(x, "records of %zu and %zu handshake bytes in one segment", at - 5, n - at);
        }
        return rc;
    }
    case SD_EVADE_CCS:
        rc = send_rewritten(x, sd_strat_ccs(p, n, x->buf, sizeof(x->buf)), deadline);
        if (rc == 0) {
            x->r->applied = true;
            sd__evade_note(x, "CCS record + %zu-byte hello in one segment", n);
        }
        return rc;
    default:
        return sd__forge_first(x, p, n, deadline);
    }
}

/* ---- the filter BIO ---- */

static int filt_write(BIO *b, const char *in, int inl)
{
    struct sd__evade_run *x = BIO_get_data(b);
    BIO *next = BIO_next(b);

    BIO_clear_retry_flags(b);
    if (inl <= 0 || !next)
        return 0;
    if (!x->first_done) {
        x->first_done = true;
        if (first_flight(x, (const uint8_t *)in, (size_t)inl) < 0)
            return -1;
        return inl;
    }
    if (x->spec->def->op == SD_EVADE_IDLE && x->read_seen && !x->idle_done) {
        x->idle_done = true;
        sd_sleep_ns(x->spec->wait_ns);
        x->r->applied = true;
        sd__evade_note(x, "idle %.1f s after the server's flight", (double)x->spec->wait_ns / 1e9);
    }
    int n = BIO_write(next, in, inl);
    BIO_copy_next_retry(b);
    return n;
}

static int filt_read(BIO *b, char *out, int outl)
{
    struct sd__evade_run *x = BIO_get_data(b);
    BIO *next = BIO_next(b);

    BIO_clear_retry_flags(b);
    if (!next)
        return 0;
    int n = BIO_read(next, out, outl);
    BIO_copy_next_retry(b);
    if (n > 0)
        x->read_seen = true;
    return n;
}

static long filt_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    BIO *next = BIO_next(b);
    return next ? BIO_ctrl(next, cmd, num, ptr) : 0;
}

static int filt_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

int sd__evade_tls_ssl_hook(void *arg, struct ssl_st *ssl, int fd, char *detail, size_t len)
{
    struct sd__evade_run *x = arg;
    BIO_METHOD *m;
    BIO *f, *sock = SSL_get_rbio(ssl);

    x->fd = fd;
    if (x->spec->def->op == SD_EVADE_NONE)
        return 0;
    m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_FILTER, "slowdown evade");
    if (!m || !BIO_meth_set_write(m, filt_write) || !BIO_meth_set_read(m, filt_read) ||
        !BIO_meth_set_ctrl(m, filt_ctrl) || !BIO_meth_set_create(m, filt_create)) {
        BIO_meth_free(m);
        snprintf(detail, len, "cannot make the filter BIO");
        return SD_ENOMEM;
    }
    x->bio_meth = m;
    f = BIO_new(m);
    if (!f || !sock || !BIO_up_ref(sock)) {
        BIO_free(f);
        snprintf(detail, len, "cannot make the filter BIO");
        return SD_ENOMEM;
    }
    BIO_set_data(f, x);
    BIO_push(f, sock);    /* the chain holds the reference taken above */
    SSL_set_bio(ssl, f, f); /* drops the SSL's own references to the socket BIO */
    return 0;
}
