# A client for bench/callgrind_http.sh and callgrind_https.sh: N keep-alive GETs of /size/1024
# through the proxy, in plain HTTP, or (with the proxy's CA file as a fourth argument) inside
# one intercepted CONNECT.
import http.client, ssl, sys
port, oport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if len(sys.argv) > 4:
    ctx = ssl.create_default_context(cafile=sys.argv[4])
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=ctx)
    c.set_tunnel("127.0.0.1", oport)
    target = "/size/1024"
else:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    target = f"http://127.0.0.1:{oport}/size/1024"
for i in range(n):
    c.request("GET", target, headers={"Host": f"127.0.0.1:{oport}", "User-Agent": "cg", "Accept": "*/*"})
    r = c.getresponse(); b = r.read()
    assert r.status == 200 and len(b) == 1024, (r.status, len(b))
c.close()
