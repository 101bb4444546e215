/*
 * tool_gencaps.c - writes the golden captures (sd-gencaps DIR).
 *
 * Every capture is built from fields by the generator (tests/support/gen.h),
 * deterministically: the same binary writes the same bytes. Beside each
 * capture X.pcap it writes X.names, the server names a full parser must find
 * in it, one per line; tests/sh/golden.sh checks them against `slowdown pcap
 * --preset observe` and compares every run with tests/golden/X.PRESET.out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "gen_quic.h"
#include "quic.h"
#include "pkt.h"

#define T0 1615366800000000000ULL /* 2021-03-10 09:00 UTC */
#define MS 1000000ULL
#define SEC 1000000000ULL

static const char *dir;
static FILE *names;

static struct sd_gen_pcap *open_cap(const char *name, int linktype)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.pcap", dir, name);
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, linktype);
    snprintf(path, sizeof(path), "%s/%s.names", dir, name);
    names = fopen(path, "w");
    if (!w || !names) {
        perror(path);
        exit(1);
    }
    return w;
}

static void close_cap(struct sd_gen_pcap *w)
{
    if (sd_gen_pcap_close(w) != 0 || fclose(names) != 0) {
        perror("write");
        exit(1);
    }
}

static size_t hello(uint8_t *buf, size_t cap, const char *sni)
{
    struct sd_gen_hello h = {.sni = sni, .alpn = {"h2", "http/1.1", NULL}};
    if (sni)
        fprintf(names, "%s\n", sni);
    return sd_gen_client_hello_record(buf, cap, &h);
}

static void reply(struct sd_gen_tcp *c, size_t down)
{
    uint8_t body[1200], rec[1300];
    memset(body, 0x42, sizeof(body));
    body[0] = 2;
    sd_gen_tcp_send(c, SD_GEN_S2C, rec, sd_gen_tls_record(rec, sizeof(rec), 22, body, sizeof(body)), 20 * MS);
    if (down)
        sd_gen_tcp_bulk(c, SD_GEN_S2C, down, 2300000);
    sd_gen_tcp_flags(c, SD_GEN_C2S, SD_TCP_FIN | SD_TCP_ACK, 5 * MS);
    sd_gen_tcp_flags(c, SD_GEN_S2C, SD_TCP_FIN | SD_TCP_ACK, 1 * MS);
}

/* One TLS flow: handshake, the hello as one segment, reply, |down| bytes. */
static void tls(struct sd_gen_tcp *c, const char *sni, size_t down)
{
    uint8_t buf[4096];
    sd_gen_tcp_handshake(c, false);
    sd_gen_tcp_send(c, SD_GEN_C2S, buf, hello(buf, sizeof(buf), sni), MS);
    reply(c, down);
}

static void cap_names(void)
{
    /* The names of the 2021 record, one flow each. */
    static const char *const sni[] = {"twitter.com", "abs.twimg.com", "pbs.twimg.com", "t.co", "reddit.com",
                                      "microsoft.com", "t.co.example.net", "throttletwitter.com", "example.org",
                                      "twitter.com."};
    struct sd_gen_pcap *w = open_cap("tls_names", 1);
    for (size_t i = 0; i < sizeof(sni) / sizeof(sni[0]); i++) {
        struct sd_gen_tcp c;
        sd_gen_tcp_init(&c, w, "10.0.0.2", (uint16_t)(41000 + i), "203.0.113.5", 443, T0 + i * 2 * SEC);
        tls(&c, sni[i], 200000);
    }
    close_cap(w);
}

static void cap_split(void)
{
    struct sd_gen_pcap *w = open_cap("tls_split", 1);
    struct sd_gen_tcp c;
    uint8_t buf[4096];
    /* In order, over three segments. */
    sd_gen_tcp_init(&c, w, "10.0.0.2", 42000, "203.0.113.5", 443, T0);
    sd_gen_tcp_handshake(&c, false);
    size_t n = hello(buf, sizeof(buf), "split.twitter.com");
    sd_gen_tcp_send(&c, SD_GEN_C2S, buf, 2, MS);
    sd_gen_tcp_send(&c, SD_GEN_C2S, buf + 2, 60, MS);
    sd_gen_tcp_send(&c, SD_GEN_C2S, buf + 62, n - 62, MS);
    reply(&c, 20000);
    /* Out of order: the second half first. */
    sd_gen_tcp_init(&c, w, "10.0.0.2", 42001, "203.0.113.5", 443, T0 + SEC);
    sd_gen_tcp_handshake(&c, false);
    n = hello(buf, sizeof(buf), "ooo.twimg.com");
    sd_gen_tcp_send_at(&c, SD_GEN_C2S, 100, buf + 100, n - 100, MS);
    sd_gen_tcp_send_at(&c, SD_GEN_C2S, 0, buf, 100, MS);
    sd_gen_tcp_advance(&c, SD_GEN_C2S, n);
    reply(&c, 20000);
    /* Over two TLS records in one segment. */
    sd_gen_tcp_init(&c, w, "10.0.0.2", 42002, "203.0.113.5", 443, T0 + 2 * SEC);
    sd_gen_tcp_handshake(&c, false);
    uint8_t hs[4096], seg[4200];
    struct sd_gen_hello h = {.sni = "tworecords.example.com"};
    fprintf(names, "%s\n", h.sni);
    size_t hn = sd_gen_client_hello(hs, sizeof(hs), &h);
    size_t sn = sd_gen_tls_record(seg, sizeof(seg), 22, hs, 50);
    sn += sd_gen_tls_record(seg + sn, sizeof(seg) - sn, 22, hs + 50, hn - 50);
    sd_gen_tcp_send(&c, SD_GEN_C2S, seg, sn, MS);
    reply(&c, 20000);
    /* A post-quantum-sized hello (two segments at MSS 1460). */
    sd_gen_tcp_init(&c, w, "10.0.0.2", 42003, "203.0.113.5", 443, T0 + 3 * SEC);
    sd_gen_tcp_handshake(&c, false);
    struct sd_gen_hello big = {.sni = "rr1---sn-abc.googlevideo.com", .key_share_extra = 1184};
    fprintf(names, "%s\n", big.sni);
    n = sd_gen_client_hello_record(buf, sizeof(buf), &big);
    sd_gen_tcp_send(&c, SD_GEN_C2S, buf, 1460, MS);
    sd_gen_tcp_send(&c, SD_GEN_C2S, buf + 1460, n - 1460, MS);
    reply(&c, 20000);
    close_cap(w);
}

static void cap_link(const char *name, int linktype, int n_vlan, const char *cli, const char *srv, const char *sni)
{
    struct sd_gen_pcap *w = open_cap(name, linktype);
    struct sd_gen_tcp c;
    sd_gen_tcp_init(&c, w, cli, 43000, srv, 443, T0);
    c.tmpl.n_vlan = n_vlan;
    c.tmpl.vlan[0] = 100;
    c.tmpl.vlan[1] = 200;
    tls(&c, sni, 30000);
    close_cap(w);
}

static void cap_http_dns(void)
{
    struct sd_gen_pcap *w = open_cap("http_dns", 1);
    struct sd_gen_tcp c;
    static const char get[] = "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: t\r\n\r\n";
    fprintf(names, "www.example.com\n");
    sd_gen_tcp_init(&c, w, "10.0.0.2", 44000, "203.0.113.5", 80, T0);
    sd_gen_tcp_handshake(&c, false);
    sd_gen_tcp_send(&c, SD_GEN_C2S, (const uint8_t *)get, sizeof(get) - 1, MS);
    sd_gen_tcp_bulk(&c, SD_GEN_S2C, 10000, 10000000);
    /* A DNS query for twitter.com over UDP. */
    static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 't', 'w', 'i', 't', 't', 'e',
                                'r', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
    fprintf(names, "twitter.com\n");
    struct sd_gen_pkt u = {.linktype = 1, .proto = 17, .sport = 53000, .dport = 53};
    u.src = sd_gen_addr("10.0.0.2");
    u.dst = sd_gen_addr("192.0.2.53");
    sd_gen_udp(w, &u, T0 + SEC, q, sizeof(q));
    close_cap(w);
}

static void cap_mixed(void)
{
    /* The demo's traffic: the five names of the demo, 1 MB each at 2.3 Mbit/s. */
    static const char *const sni[] = {"twitter.com", "abs.twimg.com", "reddit.com", "microsoft.com", "example.org"};
    struct sd_gen_pcap *w = open_cap("demo", 1);
    for (size_t i = 0; i < 5; i++) {
        struct sd_gen_tcp c;
        sd_gen_tcp_init(&c, w, "10.0.0.2", (uint16_t)(45000 + i), "203.0.113.5", 443, T0 + i * 10 * SEC); /* in time order */
        tls(&c, sni[i], 1000000);
    }
    close_cap(w);
}

/* QUIC client Initials: v1 in one datagram; v2 with a post-quantum-sized hello
 * split over two datagrams, sent in reverse order. */
static void cap_quic(void)
{
    struct sd_gen_pcap *w = open_cap("quic", 1);
    static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    struct sd_gen_pkt u = {.linktype = 1, .proto = 17, .sport = 46000, .dport = 443};
    u.src = sd_gen_addr("10.0.0.2");
    u.dst = sd_gen_addr("203.0.113.5");
    uint8_t ch[4096], pk[2][1500];
    struct sd_gen_hello h = {.sni = "quic.twitter.com", .alpn = {"h3", NULL}};
    fprintf(names, "%s\n", h.sni);
    size_t n = sd_gen_client_hello(ch, sizeof(ch), &h);
    size_t len = sd_gen_quic_initial(pk[0], sizeof(pk[0]), SD_QUIC_V1, dcid, sizeof(dcid), 0, ch, n, 0, 1200);
    sd_gen_udp(w, &u, T0, pk[0], len);
    struct sd_gen_hello big = {.sni = "rr5---sn-q.googlevideo.com", .alpn = {"h3", NULL}, .key_share_extra = 1184};
    fprintf(names, "%s\n", big.sni);
    n = sd_gen_client_hello(ch, sizeof(ch), &big);
    size_t half = n / 2, l0, l1;
    l0 = sd_gen_quic_initial(pk[0], sizeof(pk[0]), SD_QUIC_V2, dcid, sizeof(dcid), 0, ch, half, 0, 1200);
    l1 = sd_gen_quic_initial(pk[1], sizeof(pk[1]), SD_QUIC_V2, dcid, sizeof(dcid), 1, ch + half, n - half, half, 1200);
    u.sport = 46001;
    sd_gen_udp(w, &u, T0 + SEC, pk[1], l1);
    sd_gen_udp(w, &u, T0 + SEC + MS, pk[0], l0);
    close_cap(w);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sd-gencaps DIR\n");
        return 2;
    }
    dir = argv[1];
    cap_names();
    cap_split();
    cap_link("tls_v6", 1, 0, "fd00::2", "2001:db8::5", "v6.twitter.com");
    cap_link("tls_qinq", 1, 2, "10.0.0.2", "203.0.113.5", "vlan.twitter.com");
    cap_link("tls_sll", 113, 0, "10.0.0.2", "203.0.113.5", "sll.twitter.com");
    cap_link("tls_sll2", 276, 0, "10.0.0.2", "203.0.113.5", "sll2.twitter.com");
    cap_link("tls_raw", 101, 0, "fd00::2", "2001:db8::5", "raw6.twimg.com");
    cap_http_dns();
    cap_mixed();
    cap_quic();
    return 0;
}
