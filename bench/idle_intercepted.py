#!/usr/bin/env python3
# By-hand measurement: RSS per idle intercepted connection. Opens N CONNECTs through the proxy,
# a verified TLS handshake and one request on each, keeps them idle, and reads the proxy RSS.
#   bench/idle_intercepted.py PROXY_PORT N PROXY_PID PROXY_CA   (targets bench.test:18443 of ../shared/bench)
import socket, ssl, sys, time, os
proxy_port=int(sys.argv[1]); n=int(sys.argv[2]); pid=int(sys.argv[3]); ca=sys.argv[4]
def rss(): return int([l for l in open('/proc/%d/status'%pid) if l.startswith('VmRSS')][0].split()[1])
ctx=ssl.create_default_context(cafile=ca)
conns=[]
before=rss()
for i in range(n):
    s=socket.create_connection(('127.0.0.1',proxy_port))
    s.sendall(b'CONNECT bench.test:18443 HTTP/1.1\r\nHost: bench.test:18443\r\n\r\n')
    buf=b''
    while b'\r\n\r\n' not in buf: buf+=s.recv(100)
    t=ctx.wrap_socket(s, server_hostname='bench.test')
    t.sendall(b'GET /1k HTTP/1.1\r\nHost: bench.test:18443\r\n\r\n')
    got=b''
    while len(got) < 1024 or b'\r\n\r\n' not in got:
        got+=t.recv(65536)
        if b'\r\n\r\n' in got:
            head,_,body=got.partition(b'\r\n\r\n')
            if len(body)>=1024: break
    conns.append(t)
time.sleep(2)
after=rss()
print("idle intercepted connections: %d, RSS before %d KiB, after %d KiB, %.1f KiB per connection" % (n, before, after, (after-before)/n))
