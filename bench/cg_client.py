# A client for bench/callgrind_http.sh: N keep-alive GETs of /size/1024 through the proxy.
import http.client, sys
port, oport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for i in range(n):
    c.request("GET", f"http://127.0.0.1:{oport}/size/1024", headers={"Host": f"127.0.0.1:{oport}", "User-Agent": "cg", "Accept": "*/*"})
    r = c.getresponse(); b = r.read()
    assert r.status == 200 and len(b) == 1024, (r.status, len(b))
c.close()
