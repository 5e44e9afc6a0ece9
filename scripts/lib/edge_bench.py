"""Times requests against a running edge worker (sequential, loopback) and prints medians.

usage: edge_bench.py BASE_URL LABEL [WORKERD_PID...]
Registers a user (verification off), then times GET /healthz (routing only), GET /me
(JWT verify, then the user and its revocation in one D1 read) and failed POST /login (one
Argon2id verification plus the lockout row on D1). Given workerd's process ids, it also reads
their CPU time (utime + stime from /proc) around each series, so the CPU a request costs is
measured, not guessed from wall time.
"""
import os
import json
import statistics
import sys
import time
import urllib.error
import urllib.request

base, label, pids = sys.argv[1], sys.argv[2], sys.argv[3:]
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms():
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * TICK_MS


def cpu_per_request(method, url, n, body=None, token=None):
    call(method, url, body, token)
    before = cpu_ms()
    for _ in range(n):
        call(method, url, body, token)
    return (cpu_ms() - before) / n
api = base + "/api/auth"


def call(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
    except urllib.error.HTTPError as e:
        payload = e.read()
    return (time.perf_counter() - t0) * 1000, payload


def median_ms(method, url, n, body=None, token=None):
    call(method, url, body, token)  # warm-up
    return statistics.median(call(method, url, body, token)[0] for _ in range(n))


email, password = "bench@example.com", "bench-password-1"
call("POST", api + "/register", {"email": email, "password": password})
_, raw = call("POST", api + "/login", {"email": email, "password": password})
token = json.loads(raw)["access_token"]
health = median_ms("GET", base + "/healthz", 40)
me = median_ms("GET", api + "/me", 40, token=token)
login = median_ms("POST", api + "/login", 15, {"email": email, "password": "wrong-password-1"})
if pids:
    c_health = cpu_per_request("GET", base + "/healthz", 400)
    c_me = cpu_per_request("GET", api + "/me", 400, token=token)
    c_login = cpu_per_request("POST", api + "/login", 30, {"email": email, "password": "wrong-password-1"})
    print(f"edge [{label}]: workerd CPU per request: /healthz {c_health:.2f} ms, GET /me {c_me:.2f} ms "
          f"(local D1 and the token check = {c_me - c_health:.2f} ms over routing; goal <= 1 ms), "
          f"failed login {c_login:.1f} ms")
print(f"edge [{label}]: GET /healthz {health:.1f} ms, GET /me {me:.1f} ms, failed POST /login {login:.1f} ms "
      f"(medians, wall time under wrangler dev); Argon2 verify ~ {login - me:.1f} ms")
