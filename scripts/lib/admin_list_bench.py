"""GET /admin/users?limit=100 at 100,000 users: seed the users table directly (SQL, no
Argon2), sign in as an admin made with `regstack create-admin`, then time pages at the front,
the middle and the end of the list, and print the query plan the listing uses.

Usage: admin_list_bench.py BACKEND API_URL ADMIN_EMAIL PASSWORD (SQLITE_PATH | PSQL PG_URL)
"""

import json
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

USERS = 100_000
LISTING = ("SELECT id FROM users ORDER BY created_at DESC, id DESC LIMIT 100 OFFSET {skip}")


def seed_sqlite(path):
    db = sqlite3.connect(path)
    db.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO users (id, email, email_key, hashed_password, is_active, is_verified, is_superuser,
          full_name, phone_number, is_mfa_enabled, created_at, updated_at, role)
        SELECT printf('%032x', i), 'seed' || i || '@bench.example', 'seed' || i || '@bench.example', NULL,
          1, 1, 0, NULL, NULL, 0,
          printf('%s.%06d', datetime(1700000000 + i / 3, 'unixepoch'), i % 1000000),
          printf('%s.%06d', datetime(1700000000 + i / 3, 'unixepoch'), i % 1000000), 'user'
        FROM n""",
        (USERS,),
    )
    db.commit()
    plan = db.execute("EXPLAIN QUERY PLAN " + LISTING.format(skip=0)).fetchall()
    db.close()
    return " / ".join(row[-1] for row in plan)


def seed_postgres(psql, url):
    sql = f"""INSERT INTO users (id, email, email_key, hashed_password, is_active, is_verified, is_superuser,
      full_name, phone_number, is_mfa_enabled, created_at, updated_at, role)
    SELECT lpad(to_hex(i), 32, '0'), 'seed' || i || '@bench.example', 'seed' || i || '@bench.example', NULL,
      true, true, false, NULL, NULL, false,
      to_timestamp(1700000000 + i / 3) + make_interval(secs => (i % 1000000) / 1e6),
      to_timestamp(1700000000 + i / 3), 'user'
    FROM generate_series(1, {USERS}) i; ANALYZE users;"""
    subprocess.run([psql, "-q", "-d", url, "-c", sql], check=True)
    plan = subprocess.run(
        [psql, "-At", "-d", url, "-c", "EXPLAIN " + LISTING.format(skip=0)],
        check=True, capture_output=True, text=True,
    ).stdout
    return " / ".join(line.strip() for line in plan.splitlines())


def call(url, token=None, body=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main():
    backend, api, email, password = sys.argv[1:5]
    plan = seed_sqlite(sys.argv[5]) if backend == "sqlite" else seed_postgres(sys.argv[5], sys.argv[6])
    token = call(f"{api}/login", body={"email": email, "password": password})["access_token"]
    total = call(f"{api}/admin/users?limit=1", token)["total"]
    out = []
    for skip in (0, total // 2, total - 100):
        url = f"{api}/admin/users?limit=100&skip={skip}"
        call(url, token)  # warm
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            page = call(url, token)
            times.append((time.perf_counter() - t0) * 1000)
            assert len(page["items"]) == 100, page
        times.sort()
        out.append(f"skip={skip}: p50 {statistics.median(times):.1f} ms, p95 {times[int(len(times) * 0.95) - 1]:.1f} ms")
    print(f"{backend}: GET /admin/users?limit=100 with {total} users: " + "; ".join(out))
    print(f"{backend}: listing plan: {plan}")


if __name__ == "__main__":
    main()
