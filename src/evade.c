/*
 * evade.c - the strategy catalogue, NAME:ARGS parsing, and one run of the
 * evasion client (see evade.h).
 *
 * A run is one sd_fetch_run with hooks: the strategy's family decides which
 * hooks are set (socket options, a proxy exchange, a padding extension, a
 * filter BIO under OpenSSL's writes). Forging strategies also open a
 * client-side NFQUEUE for the connection's source port before it connects,
 * and close it when the run ends, whatever happened; the queue rule is the
 * only thing a run leaves in the namespace, and only while it runs.
 *
 * The catalogue is data: one row per named strategy, with its default
 * arguments and a paragraph on what it does on the wire, printed by
 * `slowdown evade --list` and in man/slowdown-evade.1. Named variants
 * (junk-small, junk-large, ...) are rows of the same operation with other
 * defaults, so the matrix can show them side by side.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/ssl.h>

#include "cmdopt.h"
#include "evade_int.h"
#include "mono.h"
#include "pkt.h"
#include "strat.h"
#include "tls.h"

#define FORGE SD_EVADE_NEED_FORGE
#define PROXY SD_EVADE_NEED_PROXY
#define UDP SD_EVADE_NEED_UDP
#define QUIC_SYNTAX "v1|draft29,BYTES[,junk=N][,frag][,sni=NAME]"

static const struct sd_evade_def catalogue[] = {
    {"none", SD_EVADE_NONE, 0, "", "",
     "The baseline: a TLS 1.3 handshake with the name under test in the SNI, the ClientHello in one TCP "
     "segment, then the download."},
    {"split", SD_EVADE_SPLIT, 0, "1", "POS",
     "The ClientHello record leaves as two TCP segments cut at POS (default byte 1): two writes on a "
     "TCP_NODELAY socket, the second only once the kernel has sent the first (SIOCOUTQNSD is 0), so they "
     "cannot coalesce. The server's TCP joins them; a censor that parses each segment alone finds no hello."},
    {"split-sni", SD_EVADE_SPLIT, 0, "midsni", "POS",
     "As split, cut in the middle of the server name: neither segment holds the whole name."},
    {"multisplit", SD_EVADE_SPLIT, 0, "1,sni,midsni", "POS[,POS...]",
     "As split, cut at every POS (up to 8): the hello leaves as up to 9 segments."},
    {"disorder", SD_EVADE_DISORDER, FORGE, "midsni", "POS",
     "Two segments cut at POS, the second sent first: the real ClientHello segment is taken from a "
     "client-side NFQUEUE (mangle OUTPUT, this connection only) and dropped, and its two halves are sent "
     "from a raw socket, tail first, with the original headers and sequence numbers. The server's TCP "
     "puts them back in order."},
    {"tlsrec", SD_EVADE_TLSREC, 0, "midsni", "POS",
     "The ClientHello is cut into two TLS handshake records at POS, both in one TCP segment: a filter BIO "
     "under OpenSSL rewrites the record layer of the first flight. The handshake message, hence the "
     "transcript, is unchanged; a censor that wants the whole hello in the first record misses it."},
    {"padding", SD_EVADE_PADDING, 0, "1400", "BYTES",
     "An extension of BYTES zero bytes makes the ClientHello longer than one segment, so the kernel cuts "
     "it at the MSS. OpenSSL refuses to register type 21 (it pads by RFC 7685 itself, only up to 512 "
     "bytes), so the bytes travel as extension 0x3a3a, a GREASE type servers must ignore (RFC 8701); to "
     "the censor it is the same hello spread over two segments."},
    {"ccs", SD_EVADE_CCS, SD_EVADE_NEED_COOP, "", "",
     "A ChangeCipherSpec record (14 03 03 00 01 01) goes in front of the ClientHello, in the same TCP "
     "segment: the first record of the segment is not a hello. Needs a cooperating server: slowdown serve "
     "reads a leading CCS off (OpenSSL alone answers unexpected_message)."},
    {"oob", SD_EVADE_OOB, 0, "midsni", "POS",
     "The first segment carries the hello up to POS and one extra urgent byte (send with MSG_OOB: URG flag "
     "and urgent pointer set), the second the rest. The server's kernel takes the urgent byte out of the "
     "stream (SO_OOBINLINE is off); a censor that reads it as data sees a broken hello."},
    {"mss", SD_EVADE_MSS, 0, "150", "BYTES",
     "TCP_MAXSEG BYTES (88 or more) before connect: the client announces and uses that MSS, so the "
     "ClientHello leaves as several small segments (and the server's data comes in small segments too)."},
    {"junk-small", SD_EVADE_JUNK, FORGE, "64,ttl=1", "BYTES[,ttl=T|,badsum]",
     "Before the real ClientHello, a junk segment of BYTES (first byte 0, then xorshift noise) at the "
     "hello's own sequence number with IP TTL T: the censor, the client's first router, sees it; the router "
     "drops it when the TTL runs out, so the server never does. Forged as in disorder. 64 bytes is under "
     "the 101-byte give-up size of spec B6."},
    {"junk-large", SD_EVADE_JUNK, FORGE, "300,ttl=1", "BYTES[,ttl=T|,badsum]",
     "As junk-small with 300 bytes: over the give-up size (spec B6, B14: a >100-byte junk packet first)."},
    {"junk-badsum", SD_EVADE_JUNK, FORGE, "300,badsum", "BYTES[,ttl=T|,badsum]",
     "As junk-large with a normal TTL and a wrong TCP checksum: it reaches the server, whose kernel drops "
     "it (a censor that does not check checksums reads it)."},
    {"fake-ttl", SD_EVADE_FAKE, FORGE, "ttl=1", "[ttl=T|badsum][,sni=NAME]",
     "Before the real ClientHello, a whole fake ClientHello (made by OpenSSL, SNI www.example.com or NAME) "
     "at the same sequence number with IP TTL T: the censor parses an innocent hello first, the server "
     "never gets it."},
    {"fake-badsum", SD_EVADE_FAKE, FORGE, "badsum", "[ttl=T|badsum][,sni=NAME]",
     "As fake-ttl with a normal TTL and a wrong TCP checksum (the server's kernel drops the fake)."},
    {"rst-after", SD_EVADE_TEARDOWN, FORGE, "rst,ttl=1", "rst|fin[,ttl=T|,badsum]",
     "Once the real ClientHello has left, a forged RST/ACK at the next sequence number with TTL T: it reaches "
     "the censor only, to make it drop the flow's state (spec B9 says FIN and RST do not clear it)."},
    {"fin-after", SD_EVADE_TEARDOWN, FORGE, "fin,ttl=1", "rst|fin[,ttl=T|,badsum]",
     "As rst-after with a FIN/ACK."},
    {"ipfrag", SD_EVADE_IPFRAG, FORGE, "midsni", "POS",
     "The IP packet of the ClientHello leaves as two IPv4 fragments cut at POS, rounded down to a multiple "
     "of 8 bytes of the TCP segment (DF cleared, one identification): taken from the client queue, sent from "
     "a raw socket. The server's kernel reassembles them."},
    {"sni-dot", SD_EVADE_SNI, 0, "dot", "",
     "The server name with a trailing dot (twitter.com.): a valid spelling of the same name, not "
     "byte-equal to the listed one (spec B4: it evaded)."},
    {"sni-upper", SD_EVADE_SNI, 0, "upper", "", "The server name in upper case (TWITTER.COM)."},
    {"sni-mixed", SD_EVADE_SNI, 0, "mixed", "", "The server name in alternating case (TwItTeR.cOm)."},
    {"no-sni", SD_EVADE_SNI, 0, "none", "", "No server_name extension at all."},
    {"sni-other", SD_EVADE_SNI, 0, "example.org", "NAME",
     "Another, unlisted name (default example.org) to the same server address."},
    {"idle", SD_EVADE_IDLE, SD_EVADE_NEED_TIMEOUT, "3", "SECONDS",
     "After the ClientHello (the trigger) and the server's reply, the client waits SECONDS before its "
     "Finished, then transfers: the flow is idle that long right after the censor acted on it (spec B9: "
     "released after ~10 min). The matrix sets the censor's timeout.action to 2 s for this strategy; waits "
     "over 9 s meet slowdown serve's 10 s handshake limit."},
    {"http-proxy", SD_EVADE_PROXY, PROXY, "http", "",
     "Through an unencrypted HTTP proxy outside the censor: 'CONNECT addr:443 HTTP/1.1' first, then the TLS "
     "handshake inside the tunnel, on the same TCP connection (spec B10)."},
    {"socks-proxy", SD_EVADE_PROXY, PROXY, "socks5", "",
     "Through an unencrypted SOCKS5 proxy (no authentication; greeting and CONNECT sent at once), then TLS."},
    {"quic-none", SD_EVADE_QUIC, UDP, "v1,1250", QUIC_SYNTAX,
     "QUIC's baseline: a protected QUIC v1 Initial of 1250 bytes to UDP port 443 whose CRYPTO frame holds a "
     "ClientHello with the name under test, then a UDP transfer that needs the client's requests to go on "
     "(after the Initial it is not QUIC: see strat_quic.c). Only against presets that inspect QUIC."},
    {"quic-small", SD_EVADE_QUIC, UDP, "v1,900", QUIC_SYNTAX,
     "The same Initial padded to 900 bytes only: under the 1001-byte (quic22-v1) and 1200-byte "
     "(quic22-initial) size rules. Real servers drop Initials under 1200 bytes (RFC 9000 14.1); the "
     "harness's responder takes it."},
    {"quic-draft29", SD_EVADE_QUIC, UDP, "draft29,1250", QUIC_SYNTAX,
     "The Initial under version ff00001d (draft 29, its own salt): Firefox's 2022 workaround against a rule "
     "that matched version 1 only."},
    {"quic-junk-first", SD_EVADE_QUIC, UDP, "v1,1250,junk=64", QUIC_SYNTAX,
     "A 64-byte junk datagram (first byte 0) on the same 5-tuple before the Initial: the first datagram of "
     "the flow is not QUIC-like (spec 4.3: a non-QUIC first packet left the flow unchecked). The responder "
     "ignores it. Under quic22-initial it only defers the cut: the flow dies ~15 server datagrams later "
     "(spec 4.3, mid-flow kills)."},
    {"quic-junk-long", SD_EVADE_QUIC, UDP, "v1,1250,junk=620", QUIC_SYNTAX,
     "The same with a 620-byte junk datagram first: nfqws's answer to the 2022 mid-flow kills (a fake over "
     "600 bytes moved the box out of its watching phase; one of exactly 600 did not)."},
    {"quic-ipfrag", SD_EVADE_QUIC, UDP | SD_EVADE_NEED_ROOT, "v1,1250,frag", QUIC_SYNTAX,
     "The Initial's IP packet in two IPv4 fragments (UDP header and 512 bytes, then the rest), sent from a "
     "raw socket with the UDP socket's own port; the responder's kernel reassembles them."},
    {"quic-sni-other", SD_EVADE_QUIC, UDP, "v1,1250,sni=example.org", QUIC_SYNTAX,
     "The QUIC v1 Initial with another, unlisted name (default example.org)."},
};

#undef FORGE
#undef PROXY
#undef UDP
#undef QUIC_SYNTAX

const struct sd_evade_def *sd_evade_catalogue(size_t *n)
{
    *n = SD_COUNTOF(catalogue);
    return catalogue;
}

const struct sd_evade_def *sd_evade_find(const char *name)
{
    for (size_t i = 0; i < SD_COUNTOF(catalogue); i++) {
        if (!strcmp(catalogue[i].name, name))
            return &catalogue[i];
    }
    return NULL;
}

/* ---- arguments ---- */

static int parse_pos(const char *tok, struct sd_evade_pos *pos)
{
    static const char *const bases[] = {"", "sni", "midsni", "endsni"};
    const char *p = tok;
    long long v = 0;

    pos->base = SD_EVADE_AT_ABS;
    pos->delta = 0;
    for (int b = 3; b >= 1; b--) {
        size_t k = strlen(bases[b]);
        if (!strncmp(p, bases[b], k)) {
            pos->base = (uint8_t)b;
            p += k;
            break;
        }
    }
    if (!*p)
        return pos->base == SD_EVADE_AT_ABS ? SD_EINVAL : 0;
    int sign = 1;
    if (pos->base != SD_EVADE_AT_ABS) {
        if (*p != '+' && *p != '-')
            return SD_EINVAL;
        sign = *p++ == '-' ? -1 : 1;
    }
    if (*p < '0' || *p > '9')
        return SD_EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 65535)
            return SD_EINVAL;
    }
    if (*p)
        return SD_EINVAL;
    pos->delta = (int32_t)(sign * v);
    return 0;
}

static int parse_uint(const char *tok, uint64_t lo, uint64_t hi, uint32_t *out)
{
    uint64_t v;
    if (sd_opt_u64(tok, hi, 0, &v) < 0 || v < lo)
        return SD_EINVAL;
    *out = (uint32_t)v;
    return 0;
}

/* ttl=T or badsum, shared by the forging operations. 1 when |tok| was one of them. */
static int parse_fooling(const char *tok, struct sd_evade_spec *s, int *bad)
{
    uint32_t v = 0;
    if (!strncmp(tok, "ttl=", 4)) {
        *bad |= parse_uint(tok + 4, 1, 255, &v) < 0;
        s->ttl = (uint8_t)v;
        s->badsum = false;
        return 1;
    }
    if (!strcmp(tok, "badsum")) {
        s->badsum = true;
        s->ttl = 0;
        return 1;
    }
    return 0;
}

static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > SD_EVADE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (c <= ' ' || c >= 0x7f || c == ',' || c == ':')
            return false;
    }
    return true;
}

static int parse_sni_token(struct sd_evade_spec *s, const char *tok)
{
    static const char *const modes[] = {"", "dot", "upper", "mixed", "none"};

    for (int m = 1; m < (int)SD_COUNTOF(modes); m++) {
        if (!strcmp(tok, modes[m])) {
            s->sni_mode = (uint8_t)m;
            return 0;
        }
    }
    if (!name_ok(tok))
        return SD_EINVAL;
    s->sni_mode = SD_EVADE_SNI_OTHER;
    snprintf(s->name, sizeof(s->name), "%s", tok);
    return 0;
}

/* One argument token for the spec's operation. Positions accumulate;
 * anything else overrides what an earlier token (or a default) set.
 * 0 or SD_EINVAL. */
static int parse_token(struct sd_evade_spec *s, const char *tok)
{
    int bad = 0;

    switch (s->def->op) {
    case SD_EVADE_SPLIT:
    case SD_EVADE_DISORDER:
    case SD_EVADE_TLSREC:
    case SD_EVADE_OOB:
    case SD_EVADE_IPFRAG:
        if (s->n_pos == SD_EVADE_MAX_POS || (s->def->op != SD_EVADE_SPLIT && s->n_pos == 1))
            return SD_EINVAL;
        return parse_pos(tok, &s->pos[s->n_pos++]);
    case SD_EVADE_PADDING:
        return parse_uint(tok, 1, 16000, &s->size);
    case SD_EVADE_MSS:
        return parse_uint(tok, 88, 9000, &s->size);
    case SD_EVADE_JUNK:
        if (tok[0] >= '0' && tok[0] <= '9')
            return parse_uint(tok, 1, 1400, &s->size);
        return parse_fooling(tok, s, &bad) && !bad ? 0 : SD_EINVAL;
    case SD_EVADE_FAKE:
        if (parse_fooling(tok, s, &bad))
            return bad ? SD_EINVAL : 0;
        if (!strncmp(tok, "sni=", 4) && name_ok(tok + 4)) {
            snprintf(s->name, sizeof(s->name), "%s", tok + 4);
            return 0;
        }
        return SD_EINVAL;
    case SD_EVADE_TEARDOWN:
        if (!strcmp(tok, "rst") || !strcmp(tok, "fin")) {
            s->tcp_flags = (uint8_t)((tok[0] == 'r' ? SD_TCP_RST : SD_TCP_FIN) | SD_TCP_ACK);
            return 0;
        }
        return parse_fooling(tok, s, &bad) && !bad ? 0 : SD_EINVAL;
    case SD_EVADE_SNI:
        return parse_sni_token(s, tok);
    case SD_EVADE_IDLE:
        if (sd_opt_seconds(tok, &s->wait_ns) < 0 || s->wait_ns < SD_NS_PER_MS || s->wait_ns > 600ull * SD_NS_PER_S)
            return SD_EINVAL;
        return 0;
    case SD_EVADE_QUIC:
        if (!strcmp(tok, "v1"))
            s->quic_version = 1;
        else if (!strcmp(tok, "draft29"))
            s->quic_version = 0xff00001d;
        else if (!strcmp(tok, "frag"))
            s->quic_frag = true;
        else if (!strncmp(tok, "junk=", 5))
            return parse_uint(tok + 5, 1, 1400, &s->size_junk);
        else if (!strncmp(tok, "sni=", 4) && name_ok(tok + 4))
            snprintf(s->name, sizeof(s->name), "%s", tok + 4);
        else if (tok[0] >= '0' && tok[0] <= '9')
            return parse_uint(tok, 600, 1450, &s->size);
        else
            return SD_EINVAL;
        return 0;
    case SD_EVADE_PROXY:
        if (!strcmp(tok, "http"))
            s->proxy = SD_EVADE_PROXY_HTTP;
        else if (!strcmp(tok, "socks5"))
            s->proxy = SD_EVADE_PROXY_SOCKS5;
        else
            return SD_EINVAL;
        return 0;
    default:
        return SD_EINVAL;
    }
}

/* Parses the comma-separated |list| into |s|. 0, or SD_EINVAL with the bad
 * token copied to |bad|. */
static int parse_list(struct sd_evade_spec *s, const char *list, char *bad, size_t badlen)
{
    static const uint8_t one_token[] = {SD_EVADE_PADDING, SD_EVADE_MSS, SD_EVADE_SNI, SD_EVADE_IDLE, SD_EVADE_PROXY};
    char args[SD_EVADE_TEXT_MAX];
    int n = 0;

    snprintf(args, sizeof(args), "%s", list);
    for (char *save = NULL, *tok = strtok_r(args, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
        bool single = memchr(one_token, s->def->op, sizeof(one_token)) != NULL;
        if ((single && n > 0) || parse_token(s, tok) < 0) {
            snprintf(bad, badlen, "%s", tok);
            return SD_EINVAL;
        }
    }
    return 0;
}

/* What the forging operations need that a token may not have given. */
static int check_spec(const struct sd_evade_spec *s)
{
    switch (s->def->op) {
    case SD_EVADE_SPLIT:
    case SD_EVADE_DISORDER:
    case SD_EVADE_TLSREC:
    case SD_EVADE_OOB:
    case SD_EVADE_IPFRAG:
        return s->n_pos ? 0 : SD_EINVAL;
    case SD_EVADE_JUNK:
    case SD_EVADE_FAKE:
    case SD_EVADE_TEARDOWN:
        if (s->def->op == SD_EVADE_TEARDOWN && !s->tcp_flags)
            return SD_EINVAL;
        return s->ttl || s->badsum ? 0 : SD_EINVAL;
    case SD_EVADE_PADDING:
    case SD_EVADE_MSS:
        return s->size ? 0 : SD_EINVAL;
    case SD_EVADE_SNI:
        return s->sni_mode ? 0 : SD_EINVAL;
    case SD_EVADE_IDLE:
        return s->wait_ns ? 0 : SD_EINVAL;
    case SD_EVADE_QUIC:
        return s->quic_version && s->size ? 0 : SD_EINVAL;
    default:
        return 0;
    }
}

int sd_evade_parse(const char *text, struct sd_evade_spec *s, char *err, size_t errlen)
{
    char name[64];
    const char *colon = strchr(text, ':');
    size_t nlen = colon ? (size_t)(colon - text) : strlen(text);

    memset(s, 0, sizeof(*s));
    if (nlen >= sizeof(name)) {
        snprintf(err, errlen, "no strategy '%.40s...'", text);
        return SD_ENOENT;
    }
    memcpy(name, text, nlen);
    name[nlen] = '\0';
    s->def = sd_evade_find(name);
    if (!s->def) {
        snprintf(err, errlen, "no strategy '%s' (slowdown evade --list)", name);
        return SD_ENOENT;
    }
    const char *a = colon ? colon + 1 : "";
    char bad[SD_EVADE_TEXT_MAX];
    if (strlen(a) >= SD_EVADE_TEXT_MAX - 1 - nlen || (colon && !*a)) {
        snprintf(err, errlen, "%s: arguments missing or too long", name);
        return SD_EINVAL;
    }
    /* The defaults first; the caller's arguments then replace the
     * positions and override the rest. */
    if (parse_list(s, s->def->args, bad, sizeof(bad)) < 0) {
        snprintf(err, errlen, "%s: bad default '%s'", name, bad);
        return SD_EINVAL;
    }
    if (colon) {
        s->n_pos = 0;
        if (parse_list(s, a, bad, sizeof(bad)) < 0) {
            snprintf(err, errlen, "%s: bad argument '%s' (syntax %s:%s)", name, bad, name,
                     s->def->syntax[0] ? s->def->syntax : "(none)");
            return SD_EINVAL;
        }
    }
    if (check_spec(s) < 0) {
        snprintf(err, errlen, "%s: incomplete arguments (syntax %s:%s)", name, name, s->def->syntax);
        return SD_EINVAL;
    }
    /* The name as written: arguments only when the caller gave some. */
    if (colon)
        snprintf(s->text, sizeof(s->text), "%s:%s", name, a);
    else
        snprintf(s->text, sizeof(s->text), "%s", name);
    return 0;
}

/* ---- positions ---- */

int sd_evade_marks(const uint8_t *p, size_t n, struct sd_evade_marks *m)
{
    struct sd_tls_hello h;

    memset(m, 0, sizeof(*m));
    m->len = n;
    if (sd_tls_strict(p, p + n, &h) <= 0)
        return SD_EPROTO;
    if (h.sni.p && h.sni.n) {
        m->sni = (size_t)(h.sni.p - p);
        m->sni_len = h.sni.n;
    }
    return 0;
}

size_t sd_evade_resolve(const struct sd_evade_pos *pos, const struct sd_evade_marks *m)
{
    int64_t at;

    if (m->len < 2)
        return m->len;
    if (pos->base == SD_EVADE_AT_ABS)
        at = 0;
    else if (!m->sni)
        at = (int64_t)(m->len / 2);
    else if (pos->base == SD_EVADE_AT_SNI)
        at = (int64_t)m->sni;
    else if (pos->base == SD_EVADE_AT_MIDSNI)
        at = (int64_t)(m->sni + m->sni_len / 2);
    else
        at = (int64_t)(m->sni + m->sni_len);
    at += pos->delta;
    if (at < 1)
        at = 1;
    if (at > (int64_t)m->len - 1)
        at = (int64_t)m->len - 1;
    return (size_t)at;
}

/* ---- one run ---- */

void sd__evade_note(struct sd__evade_run *x, const char *fmt, ...)
{
    char *note = x->r->note;
    size_t cap = sizeof(x->r->note), n = strlen(note);
    va_list ap;

    if (n && n + 3 < cap) {
        memcpy(note + n, "; ", 3);
        n += 2;
    }
    if (n + 1 >= cap)
        return;
    va_start(ap, fmt);
    vsnprintf(note + n, cap - n, fmt, ap);
    va_end(ap);
}

static uint16_t random_port(void)
{
    uint16_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (uint16_t)(sd_mono_ns() >> 10);
    return (uint16_t)(20000 + v % 40000);
}

void sd__evade_late(const struct sd_evade_target *t, struct sd_evade_result *r)
{
    uint64_t bin = t->bin_ns ? t->bin_ns : 100ull * SD_NS_PER_MS;

    r->kbps = sd_fetch_kbps(&r->f, t->bins, bin, t->skip_ns);
    if (!t->bins) {
        r->late_bytes = r->f.bytes;
        return;
    }
    r->late_bytes = 0;
    for (uint64_t i = t->skip_ns / bin; i < r->f.n_bins && i < t->max_bins; i++)
        r->late_bytes += t->bins[i];
}

static const struct sd_fetch_hooks hooks_tls = {
    .socket = sd__evade_socket_hook,
    .connected = sd__evade_proxy_hook,
    .tls_ctx = sd__evade_tls_ctx_hook,
    .tls_ssl = sd__evade_tls_ssl_hook,
};

static void fill_opts(const struct sd__evade_run *x, struct sd_fetch_opts *o)
{
    const struct sd_evade_spec *s = x->spec;
    const struct sd_evade_target *t = x->t;

    memset(o, 0, sizeof(*o));
    o->addr = t->addr;
    o->port = t->port ? t->port : 443;
    if (s->def->op == SD_EVADE_PROXY) {
        o->addr = t->proxy_addr;
        o->port = t->proxy_port;
    }
    o->sni = x->sni[0] ? x->sni : NULL;
    o->dir = SD_FETCH_DOWN;
    o->bytes = t->bytes;
    o->duration_ns = t->duration_ns;
    o->bin_ns = t->bin_ns;
    o->connect_timeout_ns = t->connect_timeout_ns;
    o->handshake_timeout_ns = t->handshake_timeout_ns;
    if (s->def->op == SD_EVADE_IDLE)
        o->handshake_timeout_ns = (t->handshake_timeout_ns ? t->handshake_timeout_ns : 10ull * SD_NS_PER_S) +
                                  s->wait_ns;
    o->idle_timeout_ns = t->idle_timeout_ns;
    o->bins = t->bins;
    o->max_bins = t->max_bins;
    if (s->def->op != SD_EVADE_NONE) {
        o->hooks = &hooks_tls;
        o->hook_arg = (void *)x;
    }
}

/* One fetch; forging strategies get a queue for a fresh source port, and
 * another port when that one is taken. */
static int run_fetch(struct sd__evade_run *x)
{
    bool forge = x->spec->def->needs & SD_EVADE_NEED_FORGE;
    struct sd_fetch_opts o;
    int rc = SD_EIO;

    for (int tries = 0; tries < 5; tries++) {
        fill_opts(x, &o);
        if (forge) {
            x->sport = random_port();
            o.src_port = x->sport;
            rc = sd__forge_open(x);
            if (rc < 0)
                return rc;
        }
        x->first_done = x->read_seen = x->idle_done = false;
        rc = sd_fetch_run(&o, &x->r->f);
        sd__forge_close(x->forge);
        x->forge = NULL;
        BIO_meth_free(x->bio_meth); /* the SSL and its BIOs are gone by now */
        x->bio_meth = NULL;
        if (!(forge && rc == SD_EIO && strstr(x->r->f.detail, "bind")))
            break;
        x->r->note[0] = '\0';
    }
    if (rc < 0 && !x->r->note[0])
        sd__evade_note(x, "%s", x->r->f.detail[0] ? x->r->f.detail : sd_strerror(rc));
    return rc;
}

int sd_evade_run(const struct sd_evade_spec *s, const struct sd_evade_target *t, struct sd_evade_result *r)
{
    struct sd__evade_run *x;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!t->addr || !t->sni || (!t->duration_ns && !t->bytes))
        return SD_EINVAL;
    if (s->def->op == SD_EVADE_PROXY && (!t->proxy_addr || !t->proxy_port)) {
        snprintf(r->note, sizeof(r->note), "%s needs a proxy (--proxy ADDR:PORT)", s->def->name);
        return SD_EINVAL;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return SD_ENOMEM;
    x->spec = s;
    x->t = t;
    x->r = r;
    x->fd = -1;
    int mode = s->def->op == SD_EVADE_SNI                  ? s->sni_mode
               : s->def->op == SD_EVADE_QUIC && s->name[0] ? SD_EVADE_SNI_OTHER
                                                           : SD_EVADE_SNI_KEEP;
    rc = sd_strat_sni(mode, t->sni, s->name, x->sni, sizeof(x->sni));
    if (rc < 0) {
        snprintf(r->note, sizeof(r->note), "name '%s' too long", t->sni);
        free(x);
        return SD_EINVAL;
    }
    if (s->def->op == SD_EVADE_NONE || s->def->op == SD_EVADE_SNI)
        r->applied = true; /* nothing to find: the choice is made above */
    if (s->def->op == SD_EVADE_SNI)
        sd__evade_note(x, "SNI %s%s%s", x->sni[0] ? "'" : "", x->sni[0] ? x->sni : "left out", x->sni[0] ? "'" : "");
    rc = s->def->op == SD_EVADE_QUIC ? sd__evade_quic(x) : run_fetch(x);
    if (rc == 0)
        sd__evade_late(t, r);
    free(x);
    return rc;
}
