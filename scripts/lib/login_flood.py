"""The login-flood figure: a real user's login latency while 200 clients send wrong passwords
as fast as they can, against one `regstack serve` (release build).

Usage: login_flood.py API_URL LABEL. Prints p50/p99 of the real user's logins, how many of
them were shed (503) and the flood's answer counts. Loopback only; bounded to 10 s of flood.
"""
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlparse

api, label = sys.argv[1], sys.argv[2]
u = urlparse(api)
FLOOD, SECONDS = 200, 10.0


def post(conn, path, body):
    conn.request("POST", u.path + path, json.dumps(body), {"content-type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


stop = time.monotonic() + SECONDS
flood_status = {}
lock = threading.Lock()


def flood(i):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    while time.monotonic() < stop:
        try:
            s = post(conn, "/login", {"email": f"nobody{i}@example.com", "password": "wrong-password"})
        except Exception:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            s = "error"
        with lock:
            flood_status[s] = flood_status.get(s, 0) + 1


threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(FLOOD)]
for t in threads:
    t.start()
time.sleep(1.0)
real, shed = [], 0
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
while time.monotonic() < stop - 0.5:
    t0 = time.monotonic()
    s = post(conn, "/login", {"email": "bench@example.com", "password": "bench-password-1"})
    dt = (time.monotonic() - t0) * 1000
    if s == 503:
        shed += 1
    else:
        real.append(dt)
    time.sleep(0.05)
for t in threads:
    t.join()
real.sort()
pct = lambda p: real[min(len(real) - 1, int(len(real) * p))] if real else float("nan")
print(
    f"login flood ({label}): real user {len(real)} logins answered, p50 {pct(0.5):.0f} ms, "
    f"p99 {pct(0.99):.0f} ms, {shed} shed with 503; flood answers {dict(sorted(map(lambda kv: (str(kv[0]), kv[1]), flood_status.items())))}"
)
