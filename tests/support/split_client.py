#!/usr/bin/python3
"""A stand-in for an outside circumvention tool, run by the external adapter
tests as a black box: a TLS client whose ClientHello leaves in two TCP
segments, cut N bytes into the record (what ByeDPI's --split or zapret's
split2 do), then an HTTP/1.1 download whose body goes to stdout.

    split_client.py ADDR PORT SNI PATH [SPLIT]

SPLIT 0 sends the hello whole (the control). Only the Python standard
library: the ssl module's MemoryBIO gives the hello's bytes before they are
sent, so the cut is made here, on a plain socket with TCP_NODELAY.
"""
import socket
import ssl
import sys
import time


def main():
    addr, port, sni, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    split = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    rbio, wbio = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(rbio, wbio, server_hostname=sni)
    sock = socket.create_connection((addr, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first = True
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        out = wbio.read()
        if out:
            if first and 0 < split < len(out):
                sock.sendall(out[:split])
                time.sleep(0.05)
                out = out[split:]
            first = False
            sock.sendall(out)
        data = sock.recv(65536)
        if not data:
            sys.exit("split_client: connection closed during the handshake")
        rbio.write(data)
    sock.sendall(wbio.read())
    tls.write(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
    sock.sendall(wbio.read())
    out = sys.stdout.buffer
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:
                break
            out.write(chunk)
            out.flush()
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            break
        data = sock.recv(65536)
        if not data:
            break
        rbio.write(data)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
