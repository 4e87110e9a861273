#!/usr/bin/env python3
"""The Python binding's per-request overhead (docs/benchmarks.md).

The same request cycle as bench/bench_cycle.cc -- parse the Cookie header,
open the session, read 3 values, set 1, seal, build Set-Cookie -- through
the binding and through the C ABI directly (bench_stores cycle-ns), on the
cookie store; the overhead is their difference. Target: at most 15 us.
Next to it, in the same run: Flask's default cookie session (itsdangerous,
its tagged-JSON serializer and HMAC signature) doing the same work on the
same values. Trials interleave; figures are medians.

    bench/python_overhead.py BUILD_DIR [--trials 7] [--iterations 20000]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

SECRET = "bench-secret-bench-secret-bench-secret!"  # bench/workload.h's
CSRF = "q8Jb1m3v0cT6oU2y5QeW9rZxK4pLhN7aS0dFgHjEiVk"
CART = [{"sku": "A-1001", "qty": 2}, {"sku": "B-2002", "qty": 1}]


def python_cycle_ns(sessions, iterations):
    store = sessions.Store("cookie:", secrets=[SECRET])
    with store.begin() as request:
        s = request.session("mysession")
        s.update(user_id=123456, username="ann.example", role="editor", csrf=CSRF, cart=CART,
                 locale="en-GB")
        (cookie,) = request.finish()
    header = "theme=dark; " + cookie.split(";")[0] + "; _ga=GA1.2.1234567890.1234567890"

    def cycle(n):
        with store.begin(header) as request:
            s = request.session("mysession")
            s["user_id"], s["username"], s["csrf"]
            s["last_request"] = n
            request.finish()

    for i in range(iterations // 10):
        cycle(i)
    start = time.perf_counter_ns()
    for i in range(iterations):
        cycle(i)
    ns = (time.perf_counter_ns() - start) / iterations
    store.close()
    return ns


def flask_cycle_ns(iterations):
    import flask
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    serializer = app.session_interface.get_signing_serializer(app)
    cookie = serializer.dumps({"user_id": 123456, "username": "ann.example", "role": "editor",
                               "csrf": CSRF, "cart": CART, "locale": "en-GB"})

    def cycle(n):
        data = serializer.loads(cookie, max_age=30 * 86400)
        data["user_id"], data["username"], data["csrf"]
        data["last_request"] = n
        serializer.dumps(data)

    for i in range(iterations // 10):
        cycle(i)
    start = time.perf_counter_ns()
    for i in range(iterations):
        cycle(i)
    return (time.perf_counter_ns() - start) / iterations


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build_dir")
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    os.environ.setdefault("LIBSESSIONS_PATH",
                          os.path.abspath(os.path.join(args.build_dir, "libsessions.so.0")))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "bindings", "python"))
    import sessions
    bench = os.path.join(args.build_dir, "bench", "bench_stores")
    c, py, fl = [], [], []
    for _ in range(args.trials):
        c.append(float(subprocess.run([bench, "cycle-ns", "cookie:", str(args.iterations * 5)],
                                      check=True, capture_output=True, text=True).stdout))
        py.append(python_cycle_ns(sessions, args.iterations))
        try:
            fl.append(flask_cycle_ns(args.iterations))
        except ImportError:
            pass
    overhead = statistics.median(p - q for p, q in zip(py, c))
    print(f"cookie-store request cycle, medians of {args.trials} interleaved trials\n")
    print("| | us per cycle |")
    print("|---|---|")
    print(f"| C ABI (bench_stores cycle-ns) | {statistics.median(c) / 1000:.2f} |")
    print(f"| Python binding | {statistics.median(py) / 1000:.2f} |")
    print(f"| binding overhead (Python - C, per trial) | **{overhead / 1000:.2f}** "
          f"(target <= 15: {'met' if overhead <= 15000 else 'MISSED'}) |")
    if fl:
        print(f"| Flask default cookie session (itsdangerous), same values | "
              f"{statistics.median(fl) / 1000:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
