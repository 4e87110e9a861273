#!/usr/bin/env python3
"""Server-side store benchmarks (docs/benchmarks.md).

Starts redis-server and memcached on free loopback ports and, at each thread
count, measures in the same run:
  - the store's request cycle (load by cookie, read 3 values, set 1, save)
    with a pool as large as the thread count;
  - Redis' floor: redis-benchmark -t get,set with the same value size and as
    many connections;
  - Memcached's floor: a bare libmemcached get+set loop, one client per thread.
A cycle is one read and one write, so the floor in cycles per second is
1 / (1/get_rate + 1/set_rate) (half the operation rate when both are equal).
Target: cycle rate >= 80% of that.

    bench/stores.py BUILD_DIR [--seconds S] [--trials N] [--threads 1,8,64]
"""
import argparse
import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(argv, port):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def run(argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def redis_floor(port, threads, value_bytes, seconds):
    """GET and SET rates of one redis-benchmark run of about `seconds` per test."""
    requests = int(max(20000, min(400000, (30000 if threads == 1 else 80000) * seconds)))
    out = run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "get,set",
               "-d", str(value_bytes), "-c", str(threads), "-n", str(requests),
               "-r", "100000", "--csv"])
    rates = {row[0]: float(row[1]) for row in csv.reader(io.StringIO(out))
             if len(row) > 1 and row[0] in ("GET", "SET")}
    return rates["GET"], rates["SET"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", default="1,8,64")
    args = parser.parse_args()
    bench = os.path.join(args.build_dir, "bench", "bench_stores")
    thread_counts = [int(t) for t in args.threads.split(",")]

    workdir = tempfile.mkdtemp(prefix="sessions-bench-")
    redis_port, memcached_port = free_port(), free_port()
    servers = [
        start(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
               "--appendonly", "no", "--dir", workdir], redis_port),
        start(["memcached", "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0", "-m", "256",
               "-t", "2"] + (["-u", "root"] if os.geteuid() == 0 else []), memcached_port),
    ]
    try:
        value_bytes = int(run([bench, "record-bytes"]))
        print(f"libsessions server-side stores, {os.cpu_count()} cores, session record "
              f"{value_bytes} bytes, {args.trials} interleaved trials of {args.seconds:g} s, "
              "medians\n")
        print("| store | threads | cycles/s | floor ops/s (get / set) | floor cycles/s "
              "| cycle / floor | target 80% |")
        print("|---|---|---|---|---|---|---|")
        for threads in thread_counts:
            # Trials interleave floor and cycle, so that both see the same
            # machine; the ratio is the median of the per-trial ratios.
            one = [str(threads), str(args.seconds), "1"]
            samples = {"redis": [], "memcached": []}
            for _ in range(args.trials):
                get_rate, set_rate = redis_floor(redis_port, threads, value_bytes, args.seconds)
                cycles = float(run([bench, "cycle",
                                    f"redis://127.0.0.1:{redis_port}?pool={threads}"] + one))
                samples["redis"].append((cycles, 1 / (1 / get_rate + 1 / set_rate),
                                         f"{get_rate:,.0f} / {set_rate:,.0f}"))
                ops = float(run([bench, "memcached-floor", str(memcached_port)] + one +
                                [str(value_bytes)]))
                cycles = float(run([bench, "cycle",
                                    f"memcached://127.0.0.1:{memcached_port}?pool={threads}"] + one))
                samples["memcached"].append((cycles, ops / 2, f"{ops:,.0f} (get+set)"))
            for name, trials in samples.items():
                ratio = median([c / f for c, f, _ in trials])
                cycles = median([c for c, _, _ in trials])
                floor_cycles = median([f for _, f, _ in trials])
                floor_text = sorted(trials, key=lambda t: t[1])[len(trials) // 2][2]
                print(f"| {name} | {threads} | {cycles:,.0f} | {floor_text} | {floor_cycles:,.0f} "
                      f"| {ratio:.0%} | {'met' if ratio >= 0.8 else 'MISSED'} |", flush=True)
        return 0
    finally:
        for proc in servers:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
