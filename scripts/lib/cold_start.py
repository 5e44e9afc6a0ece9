"""Cold start: milliseconds from exec of `regstack serve` to its first 200 on /healthz.

usage: cold_start.py PORT RUNS -- COMMAND...
Runs COMMAND (which must listen on PORT) RUNS times, polling /healthz every millisecond,
stops it each time, and prints the first run (a fresh database, migrations included) and the
median of the others (an existing database).
"""
import http.client
import os
import signal
import statistics
import subprocess
import sys
import time

port, runs = int(sys.argv[1]), int(sys.argv[2])
command = sys.argv[sys.argv.index("--") + 1:]


def first_200():
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 30:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return (time.perf_counter() - started) * 1000
            except OSError:
                pass
            time.sleep(0.001)
        raise SystemExit("the server did not answer within 30 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


times = [first_200() for _ in range(runs)]
print(f"cold start to the first 200: {times[0]:.0f} ms on a fresh database (migrations included), "
      f"median {statistics.median(times[1:]):.0f} ms on an existing one ({runs - 1} runs; goal <= 150 ms)")
