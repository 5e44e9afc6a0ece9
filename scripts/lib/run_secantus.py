"""Runs SecantusDB (a MongoDB-wire server on WiredTiger, from PyPI) on a loopback port for
the tests, with a one-second TTL sweep. Usage: run_secantus.py PORT. Stops on SIGTERM/SIGINT."""
import signal
import sys
import threading

from secantus import SecantusDBServer

port = int(sys.argv[1])
server = SecantusDBServer("127.0.0.1", port, storage_path=":memory:", replica_set_name=None, ttl_sweep_seconds=1.0)
server.start()
print(f"secantusdb listening on {server.uri}", flush=True)
done = threading.Event()
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: done.set())
done.wait()
server.stop()
