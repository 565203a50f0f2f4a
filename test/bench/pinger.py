#!/usr/bin/env python3
# A long-lived pinger for the CNI benchmark: runs inside the node's network namespace, reads one IPv4
# address per line on stdin, sends ICMP echo requests to it every 2 ms until one is answered (or 10 s
# pass) and prints "ok <ip> <ns>" (CLOCK_MONOTONIC when the reply was read) / "timeout <ip>". One raw socket for every target, so the figure is the
# pod's readiness, not the cost of starting `ping` for each probe.
import os, select, socket, struct, sys, time

def checksum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xffff
pending = {}  # ip -> (deadline, next send time, seq)
buf = b''
stdin = sys.stdin.buffer.raw
while True:
    now = time.monotonic()
    for ip, (deadline, nxt, seq) in list(pending.items()):
        if now > deadline:
            del pending[ip]; sys.stdout.write('timeout %s\n' % ip); sys.stdout.flush(); continue
        if now >= nxt:
            hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq & 0xffff)
            pkt = struct.pack('!BBHHH', 8, 0, checksum(hdr + b'tabby'), ident, seq & 0xffff) + b'tabby'
            try: sock.sendto(pkt, (ip, 0))
            except OSError: pass
            pending[ip] = (deadline, now + 0.002, seq + 1)
    r, _, _ = select.select([sock, stdin], [], [], 0.002 if pending else None)
    if stdin in r:
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk: break
        buf += chunk
        while b'\n' in buf:
            line, buf = buf.split(b'\n', 1)
            ip = line.decode().strip()
            if ip: pending[ip] = (time.monotonic() + 10, 0, 0)
    if sock in r:
        data, (src, _) = sock.recvfrom(2048)
        got = time.monotonic_ns()
        ihl = (data[0] & 0x0f) * 4
        if len(data) >= ihl + 8:
            typ, _, _, rid, _ = struct.unpack('!BBHHH', data[ihl:ihl + 8])
            if typ == 0 and rid == ident and src in pending:
                del pending[src]; sys.stdout.write('ok %s %d\n' % (src, got)); sys.stdout.flush()
