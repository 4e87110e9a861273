#!/usr/bin/env python3
"""wrk against Debian's nginx serving a small static file through a
protected location (sessions_require), with the module off, on the cookie
store, on Redis, and on Redis with sessions_cache_valid 1s, in one run:
trials interleaved, medians compared. Each request carries one of --sessions
distinct logged-in sessions, in turn (a wrk Lua script), for every variant.

  python3 bench/nginx.py BUILD_DIR [--seconds 5] [--trials 5] [--connections 32]

BUILD_DIR holds libsessions.so and nginx/ngx_http_sessions_module.so
(bindings/nginx/build.sh). Prints requests per second and the loss against
the module being off."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "bindings", "nginx", "tests"))

from conftest import Nginx, Redis, binding_store, mint  # noqa: E402


def cookie_script(path, cookies):
    """A wrk script sending the cookies in turn."""
    with open(path, "w") as f:
        f.write("cookies = {\n" + ",\n".join(f'"{c}"' for c in cookies) + "\n}\n")
        f.write("i = 0\nrequest = function()\n  i = i % #cookies + 1\n"
                "  return wrk.format(nil, nil, {[\"Cookie\"] = cookies[i]})\nend\n")
    return path


def wrk(port, path, script, seconds, connections):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script,
                          f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{path}: {non2xx.group(1)} failed responses\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build_dir")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--sessions", type=int, default=1000)
    args = ap.parse_args()
    build = os.path.abspath(args.build_dir)
    os.environ["LIBSESSIONS_PATH"] = os.path.join(build, "libsessions.so")
    module = os.path.join(build, "nginx", "ngx_http_sessions_module.so")
    import conftest
    conftest.MODULE = module

    with tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o755)
        with open(os.path.join(work, "index.html"), "w") as f:
            f.write("<p>hello</p>\n")
        redis = Redis(work)
        nginx = Nginx(work)
        redis_uri = redis.uri()
        static = f"root {work}; try_files /index.html =404;"
        try:
            nginx.start(f"""
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession;
    sessions_thread_pool sessions;
    server {{
        listen 127.0.0.1:{nginx.port};
        location /off/ {{ {static} }}
        location /cookie/ {{ sessions_store cookie:; sessions_require user_id; {static} }}
        location /redis/ {{ sessions_store "{redis_uri}"; sessions_require user_id; {static} }}
        location /redis-cached/ {{
            sessions_store "{redis_uri}"; sessions_cache_valid 1s; sessions_require user_id;
            {static}
        }}
    }}""", main="thread_pool sessions threads=8;")
            values = {"user_id": 1, "username": "ann"}
            cookie_store, redis_store = binding_store("cookie:"), binding_store(redis_uri)
            cookie_jar = [mint(cookie_store, values) for _ in range(args.sessions)]
            redis_jar = [mint(redis_store, values) for _ in range(args.sessions)]
            scripts = {
                "off": cookie_script(os.path.join(work, "off.lua"), cookie_jar),
                "cookie": cookie_script(os.path.join(work, "cookie.lua"), cookie_jar),
                "redis": cookie_script(os.path.join(work, "redis.lua"), redis_jar),
                "redis-cached": cookie_script(os.path.join(work, "cached.lua"), redis_jar),
            }
            rates = {name: [] for name in scripts}
            for name, script in scripts.items():  # warm up
                wrk(nginx.port, f"/{name}/", script, 1, args.connections)
            for _ in range(args.trials):
                for name, script in scripts.items():
                    rates[name].append(wrk(nginx.port, f"/{name}/", script, args.seconds,
                                           args.connections))
        finally:
            nginx.stop()
            redis.kill()

    off = statistics.median(rates["off"])
    print(f"nginx, 1 worker; wrk, 1 thread, {args.connections} connections, {args.sessions} "
          f"sessions; {args.trials} trials of {args.seconds} s interleaved; median requests/s")
    for name, values in rates.items():
        med = statistics.median(values)
        loss = "" if name == "off" else f"  loss {100 * (1 - med / off):5.1f}%"
        print(f"  {name:<13} {med:8.0f}{loss:<14}  trials: "
              + " ".join(f"{v:.0f}" for v in values))


if __name__ == "__main__":
    main()
