"""No native memory leaked over 100,000 request cycles: the process's
resident memory is measured after a warm-up and again after the cycles.
A leak of 40 bytes per cycle would show as 4 MB."""
import os

import sessions
from conftest import SECRET


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_cycles(store, n):
    header = None
    for i in range(n):
        with store.begin(header) as request:
            s = request.session("sid")
            s["count"] = i
            s["name"] = "ann"
            s["blob"] = b"\x00" * 64
            s["cart"] = [{"sku": "A-1", "qty": 2}]
            _ = dict(s)
            s.add_flash("x")
            s.flashes()
            cookies = request.finish()
        header = cookies[0].split(";")[0] if cookies else header
    return header


def test_no_native_memory_leaks_over_100000_cycles():
    for uri in ("cookie:", "memory:?max_sessions=10"):
        with sessions.Store(uri, secrets=[SECRET]) as store:
            run_cycles(store, 10_000)  # warm-up: allocator pools, caches
            before = resident_bytes()
            run_cycles(store, 100_000)
            grown = resident_bytes() - before
        print(f"{uri}: resident memory grew by {grown} bytes over 100,000 cycles")
        assert grown < 4 * 1024 * 1024, f"{uri}: {grown} bytes"
