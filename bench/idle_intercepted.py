#!/usr/bin/env python3
# By-hand measurement: RSS per idle intercepted connection. Opens N CONNECTs through the proxy,
# a verified TLS handshake and one request on each, keeps them idle, and reads the proxy RSS.
#   bench/idle_intercepted.py PROXY_PORT N PROXY_PID PROXY_CA [--h2]
# (targets bench.test:18443 of ../shared/bench). With --h2 each connection speaks HTTP/2 (ALPN
# h2, as browsers do): the request is one stream, written by hand (HPACK literals).
import socket, ssl, struct, sys, time
proxy_port = int(sys.argv[1]); n = int(sys.argv[2]); pid = int(sys.argv[3]); ca = sys.argv[4]
h2 = '--h2' in sys.argv[5:]
AUTH = b'bench.test:18443'

def rss():
    return int([l for l in open('/proc/%d/status' % pid) if l.startswith('VmRSS')][0].split()[1])

def frame(typ, flags, stream, payload):
    return struct.pack('>I', len(payload))[1:] + bytes([typ, flags]) + struct.pack('>I', stream) + payload

def literal(name, value):
    return b'\x00' + bytes([len(name)]) + name + bytes([len(value)]) + value

def h2_get(t):
    block = literal(b':method', b'GET') + literal(b':scheme', b'https') + literal(b':authority', AUTH) + \
        literal(b':path', b'/1k')
    t.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + frame(4, 0, 0, b'') + frame(1, 5, 1, block))
    buf = b''
    while True:
        chunk = t.recv(65536)
        if not chunk:
            raise SystemExit('proxy closed an HTTP/2 connection')
        buf += chunk
        at = 0
        while at + 9 <= len(buf):
            length = int.from_bytes(buf[at:at + 3], 'big')
            if at + 9 + length > len(buf):
                break
            typ, flags, stream = buf[at + 3], buf[at + 4], int.from_bytes(buf[at + 5:at + 9], 'big')
            if typ == 4 and not flags & 1:
                t.sendall(frame(4, 1, 0, b''))  # SETTINGS ACK
            if stream == 1 and typ in (0, 1) and flags & 1:
                return
            at += 9 + length
        buf = buf[at:]

def h1_get(t):
    t.sendall(b'GET /1k HTTP/1.1\r\nHost: ' + AUTH + b'\r\n\r\n')
    got = b''
    while True:
        got += t.recv(65536)
        head, sep, body = got.partition(b'\r\n\r\n')
        if sep and len(body) >= 1024:
            return

ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(['h2'] if h2 else ['http/1.1'])
conns = []
before = rss()
for i in range(n):
    s = socket.create_connection(('127.0.0.1', proxy_port))
    s.sendall(b'CONNECT ' + AUTH + b' HTTP/1.1\r\nHost: ' + AUTH + b'\r\n\r\n')
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += s.recv(100)
    t = ctx.wrap_socket(s, server_hostname='bench.test')
    if h2 and t.selected_alpn_protocol() != 'h2':
        raise SystemExit('the proxy did not agree to h2')
    (h2_get if h2 else h1_get)(t)
    conns.append(t)
time.sleep(2)
after = rss()
print("idle intercepted %s connections: %d, RSS before %d KiB, after %d KiB, %.1f KiB per connection" %
      ('HTTP/2' if h2 else 'HTTP/1.1', n, before, after, (after - before) / n))
