#!/usr/bin/env python3
"""End-to-end: start the demo server on a free loopback port and drive every
route over HTTP with a cookie jar, as a browser would.

    test_demo.py --server build/examples/demo_server --store cookie:

--store redis, memcached, postgresql, mongodb, file, sqlite or lmdb starts that
backing server (or makes the directory or database)
itself on a free loopback port, and also checks that the demo answers 503
while the server is down and recovers when it is back. --store redis-cluster
(3 masters, 2 replicas each) and redis-sentinel (3 sentinels, a master and 2
replicas) start that topology instead and SIGKILL a master under logged-in
users: every one of them is still logged in after the failover.
"""
import argparse
import re
import http.cookiejar
import json
import os
import random
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from redis_topologies import RedisCluster, RedisSentinelGroup  # noqa: E402

SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e!"
PG_BIN = "/usr/lib/postgresql/15/bin/"
results = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print(f"FAILED: {what}", file=sys.stderr)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backing:
    """The server a store needs, started for the test: a store URI, stop/start."""

    def __init__(self, kind, mongo_wire_server=None):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix="sessions-e2e-")
        self.port = free_port()
        self.proc = None
        self.topology = None
        if kind in ("redis-cluster", "redis-sentinel"):
            self.argv = None
            self.topology = RedisCluster(replicas=2) if kind == "redis-cluster" else RedisSentinelGroup()
            # Long enough to wait a failover out; every save on a replica too.
            self.uri = self.topology.uri("timeout_ms=8000&min_replicas=1&replica_timeout_ms=1000")
        elif kind == "redis":
            self.argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                         "--save", "", "--appendonly", "yes", "--dir", self.dir]
            self.uri = f"redis://127.0.0.1:{self.port}?timeout_ms=500"
        elif kind == "memcached":
            self.argv = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"]
            if os.geteuid() == 0:
                self.argv += ["-u", "root"]
            self.uri = f"memcached://127.0.0.1:{self.port}?timeout_ms=500"
        elif kind == "mongodb":
            # The wire-protocol test server (tests/stores/mongo_wire_server.h),
            # or a real MongoDB when SESSIONS_TEST_MONGODB_URI is set.
            real = os.environ.get("SESSIONS_TEST_MONGODB_URI")
            self.argv = None if real else [mongo_wire_server, str(self.port)]
            self.uri = real or f"mongodb://127.0.0.1:{self.port}/e2e?timeout_ms=1000"
        elif kind == "file":
            self.argv = None
            self.uri = f"file://{self.dir}/sessions"
        elif kind == "sqlite":
            self.argv = None
            self.uri = f"sqlite://{self.dir}/sessions.db"
        elif kind == "lmdb":  # the example custom store (examples/lmdb_store)
            self.argv = None
            self.uri = f"lmdb://{self.dir}/lmdb?map_size_mb=16"
        elif kind == "postgresql":
            # initdb as an unprivileged user (PostgreSQL refuses root).
            data = os.path.join(self.dir, "data")
            self.run_as = "postgres" if os.geteuid() == 0 else None
            if self.run_as:
                shutil.chown(self.dir, self.run_as, self.run_as)
            subprocess.run(self.as_user([PG_BIN + "initdb", "-D", data, "-U", "sessions",
                                         "--auth=trust", "--no-sync", "-E", "UTF8"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.argv = self.as_user([PG_BIN + "postgres", "-D", data, "-p", str(self.port),
                                      "-k", self.dir, "-c", "listen_addresses=127.0.0.1"])
            self.uri = f"postgresql://sessions@127.0.0.1:{self.port}/postgres?timeout_ms=2000"
        else:
            self.argv = None
            self.uri = kind  # cookie:, memory:, or any URI
        self.start()

    def as_user(self, argv):
        return ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}", "--init-groups",
                "--"] + argv if getattr(self, "run_as", None) else argv

    def start(self):
        if not self.argv:
            return
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.3)  # past Redis' loading, PostgreSQL's recovery
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.argv[0]} did not start")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def close(self):
        self.stop()
        if self.topology:
            self.topology.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, binary, store):
        self.port = free_port()
        self.log = open(f"/tmp/sessions-e2e-{os.getpid()}-{self.port}.log", "w+")
        env = dict(os.environ, SESSIONS_SECRET=SECRET)
        self.proc = subprocess.Popen(
            [binary, "--store", store, "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"demo server did not start: {self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Client:
    """A browser: a cookie jar and requests to one server."""

    def __init__(self, server, jar=None):
        self.server = server
        self.jar = jar if jar is not None else http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, path, method="GET", cookie=None, body=None, headers=None, raw=False):
        req = urllib.request.Request(f"http://127.0.0.1:{self.server.port}{path}", method=method,
                                     data=body.encode() if body is not None else None,
                                     headers=headers or {})
        parse = (lambda b: b.decode()) if raw else json.loads
        opener = self.opener
        if cookie is not None:  # a hand-made Cookie: header, bypassing the jar
            req.add_header("Cookie", cookie)
            opener = urllib.request.build_opener()
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, parse(resp.read()), resp.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers.get_all("Set-Cookie") or []

    def cookie(self, name):
        return next((c.value for c in self.jar if c.name == name), None)


def bare_post_flash(server, client, msg):
    """POST without a body or Content-Length, as `curl -X POST` sends it."""
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.jar)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST /flash?msg={msg} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
                  "Connection: close\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    status_line = reply.split(b"\r\n", 1)[0]
    check(b" 200 " in status_line, f"bare POST /flash: {status_line!r}")
    for line in reply.split(b"\r\n"):
        if line.lower().startswith(b"set-cookie: mysession="):
            value = line.split(b"=", 1)[1].split(b";", 1)[0].decode()
            for c in client.jar:
                if c.name == "mysession":
                    c.value = value


def run_routes(binary, store, backing=None):
    server = Server(binary, store)
    try:
        ann = Client(server)
        status, body, _ = ann.call("/profile")
        check(status == 401 and body == {"error": "Unauthorized"}, "/profile before login is 401")

        status, body, set_cookie = ann.call("/login?user=ann")
        check(status == 200 and body == {"user_id": 1, "username": "ann"}, f"/login: {body}")
        check(len(set_cookie) == 1 and set_cookie[0].startswith("mysession="), "/login sets mysession")
        attrs = set_cookie[0] if set_cookie else ""
        for attr in ("Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=2592000", "Expires="):
            check(attr in attrs, f"Set-Cookie has {attr}: {attrs}")
        first_cookie = ann.cookie("mysession")

        status, body, _ = ann.call("/profile")
        check(status == 200 and body == {"user_id": 1, "username": "ann"}, f"/profile: {body}")

        counts = [ann.call("/incr")[1].get("count") for _ in range(3)]
        check(counts == [0, 1, 2], f"/incr counts 0, 1, 2: {counts}")

        status, body, set_cookie = ann.call("/hello")
        check(status == 200 and body == {"hello": "world"}, f"/hello: {body}")
        status, body, set_cookie = ann.call("/hello")
        check(body == {"hello": "world"} and set_cookie == [], "unchanged /hello sends no Set-Cookie")

        status, body, set_cookie = ann.call("/multi")
        check(status == 200 and body == {"a": "world!", "b": "world?"}, f"/multi: {body}")
        check(sorted(c.split("=")[0] for c in set_cookie) == ["a", "b"], "/multi sets a and b")
        check(ann.call("/multi")[1] == {"a": "world!", "b": "world?"}, "/multi again")

        check(ann.call("/flash?msg=one", method="POST")[0] == 200, "POST /flash one")
        check(ann.call("/flash?msg=two", method="POST")[0] == 200, "POST /flash two")
        bare_post_flash(server, ann, "three")
        check(ann.call("/flash")[1] == {"flashes": ["one", "two", "three"]}, "GET /flash returns all")
        check(ann.call("/flash")[1] == {"flashes": []}, "GET /flash again is empty")

        # Big sessions: a 6,000-byte flash of random letters (on cookie:,
        # compressed by the demo to about 4 KB, it spans two chunked
        # cookies), then a cart of 300 items, then back to small.
        rng = random.Random(6000)
        big = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6000))
        status, _, set_cookie = ann.call("/flash", method="POST", body=big)
        check(status == 200, f"POST /flash of 6,000 bytes: {status}")
        if store.startswith("cookie:"):
            names = sorted(c.split("=")[0] for c in set_cookie)
            check(names == ["mysession", "mysession.1"], f"a 6,000-byte flash spans two cookies: {names}")
            check(all(len(c) <= 4096 for c in set_cookie), "each chunk's Set-Cookie is within 4096")
        check(ann.call("/flash")[1] == {"flashes": [big]}, "the 6,000-byte flash comes back whole")
        if store.startswith("cookie:"):
            check(sorted(c.name for c in ann.jar if c.name.startswith("mysession")) == ["mysession"],
                  "reading it expired the chunks")
        cart = {f"SKU-{10000 + i}": 1 + i % 3 for i in range(300)}
        status, body, _ = ann.call("/cart", method="POST", body=json.dumps(cart))
        check(status == 200 and body == {"items": 300}, f"POST /cart of 300 items: {status} {body}")
        status, body, _ = ann.call("/cart?sku=SKU-10000&qty=0", method="POST")
        check(body == {"items": 299}, f"POST /cart removes an item: {body}")
        status, body, _ = ann.call("/cart")
        del cart["SKU-10000"]
        check(status == 200 and body == {"items": 299, "cart": cart}, "GET /cart returns the cart")
        check(ann.call("/profile")[1].get("username") == "ann", "still logged in with a big cart")
        ann.call("/cart", method="POST", body=json.dumps({sku: 0 for sku in cart}))
        check(ann.call("/cart")[1] == {"items": 0, "cart": {}}, "the cart emptied")
        if store.startswith("cookie:"):
            check(sorted(c.name for c in ann.jar if c.name.startswith("mysession")) == ["mysession"],
                  "an emptied cart leaves no stale chunk")

        # Another browser sees nothing of ann's session.
        bob = Client(server)
        check(bob.call("/profile")[0] == 401, "a second browser is not logged in")
        check(bob.call("/incr")[1] == {"count": 0}, "a second browser counts from 0")
        bob.call("/login?user=bob")
        check(bob.call("/profile")[1] == {"user_id": 2, "username": "bob"}, "bob logs in")
        check(ann.call("/profile")[1]["username"] == "ann", "ann is still ann")

        # ann on a second device, then "log out my other devices" from the first.
        ann2 = Client(server)
        ann2.call("/login?user=ann", headers={"User-Agent": "second-device"})
        check(ann2.call("/profile")[1].get("username") == "ann", "ann logs in on a second device")
        status, body, _ = ann.call("/sessions")
        if store.startswith(("cookie:", "memcached", "lmdb")):  # they revoke by stamps: no listing
            check(status == 501, f"/sessions on a store without an index is 501: {status}")
        else:
            listed = body.get("sessions", [])
            check(status == 200 and len(listed) == 2, f"/sessions lists ann's two sessions: {body}")
            check(sum(1 for x in listed if x["current"]) == 1, "/sessions marks the current one")
            check(any(x["metadata"].get("user_agent") == "second-device" for x in listed),
                  f"/sessions shows the device: {listed}")
        status, body, _ = ann.call("/logout-others", method="POST", body="")
        check(status == 200, f"POST /logout-others: {status} {body}")
        check(ann2.call("/profile")[0] == 401, "the other device is logged out")
        check(ann.call("/profile")[1].get("username") == "ann", "this device stays logged in")
        check(bob.call("/profile")[1].get("username") == "bob", "another user stays logged in")

        # CSRF: the form's POST needs the form's token (a field or a header).
        status, page, _ = ann.call("/form", raw=True)
        token = re.search(r'name="csrf_token" value="([A-Za-z0-9_-]+)"', page)
        check(status == 200 and token is not None, f"GET /form carries a token: {page[:200]}")
        token = token.group(1) if token else ""
        status, body, _ = ann.call("/form", method="POST", body="note=hi")
        check(status == 403, f"POST /form without a token is 403: {status}")
        status, body, _ = ann.call("/form", method="POST", body=f"note=hi&csrf_token={token[:-1]}")
        check(status == 403, f"POST /form with a truncated token is 403: {status}")
        _, bob_page, _ = bob.call("/form", raw=True)
        bob_token = re.search(r'value="([A-Za-z0-9_-]+)"', bob_page).group(1)
        status, body, _ = ann.call("/form", method="POST", body=f"note=hi&csrf_token={bob_token}")
        check(status == 403, f"POST /form with another session's token is 403: {status}")
        status, body, _ = ann.call("/form", method="POST", body=f"note=hi&csrf_token={token}")
        check(status == 200 and body == {"note": "hi"}, f"POST /form with its token: {status} {body}")
        status, body, _ = ann.call("/form", method="POST", body="note=again",
                                   headers={"X-CSRF-Token": token,
                                            "Content-Type": "application/x-www-form-urlencoded"})
        check(status == 200, f"POST /form with the token in X-CSRF-Token: {status} {body}")

        # Hostile cookies: tampered, truncated, junk. Each is a new, empty session.
        good = ann.cookie("mysession")
        flipped = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
        for label, value in (("tampered", flipped), ("truncated", good[:30]),
                             ("junk", "%00\x01garbage"), ("empty", "")):
            status, body, _ = ann.call("/profile", cookie=f"mysession={value}")
            check(status == 401, f"{label} cookie is refused: {status} {body}")
        check("tampered" in server.output(), "the server logs why a cookie was refused")

        # Every store but memory: keeps sessions across a restart of the
        # application (the cookie store needs only the same secret).
        server.stop()
        restarted = Server(binary, store)
        server = restarted
        ann.server = restarted
        status, body, _ = ann.call("/profile")
        if not store.startswith("memory:"):
            check(status == 200 and body["username"] == "ann", "sessions survive a restart")
        else:
            check(status == 401, "memory sessions end with the process")
            ann.call("/login?user=ann")
        if backing is not None and backing.argv:
            # The store's server goes away: 503, and the session is not replaced.
            backing.stop()
            status, _, set_cookie = ann.call("/profile")
            check(status == 503, f"/profile with the store down is 503: {status}")
            status, _, set_cookie = ann.call("/login?user=eve")
            check(status == 503 and not set_cookie, "a login with the store down sets no cookie")
            backing.start()
            # A driver may take a moment to see the server again (MongoDB's
            # monitor: 500 ms); until then the answer is 503, never a new session.
            deadline = time.time() + 5
            status, body, _ = ann.call("/profile")
            while status == 503 and time.time() < deadline:
                time.sleep(0.1)
                status, body, _ = ann.call("/profile")
            if backing.kind in ("redis", "postgresql"):  # persistent: the session is back
                check(status == 200 and body["username"] == "ann", "server back: the session is back")
            else:  # memcached and the in-memory test server keep nothing across a restart
                check(status == 401, f"server back: the session is gone: {status}")
                ann.call("/login?user=ann")
        if backing is not None and backing.topology:
            # A master SIGKILLed under logged-in users: its replica takes over
            # and the demo, waiting within timeout_ms, loses no one.
            users = [Client(server) for _ in range(6)]
            for i, user in enumerate(users):
                check(user.call(f"/login?user=u{i}")[0] == 200, f"u{i} logs in")
            topology = backing.topology
            if isinstance(topology, RedisCluster):
                old = topology.masters()[0]
                topology.kill_master(old)
            else:
                old = topology.kill_master()
            for i, user in enumerate(users):
                status, body, _ = user.call("/profile")
                check(status == 200 and body["username"] == f"u{i}",
                      f"u{i} is still logged in after the failover: {status}")
            # The users whose sessions were elsewhere need not have waited
            # for the failover: wait for it here (both raise on a timeout).
            if isinstance(topology, RedisCluster):
                topology.wait_until_ok()
                check(old not in topology.masters(), "a replica took the killed master's place")
            else:
                topology.wait_for_new_master(old)
                check(topology.master_port() != old, "a replica took the killed master's place")
        if not store.startswith("cookie:"):
            before = ann.cookie("mysession")
            ann.call("/login?user=ann")
            check(ann.cookie("mysession") != before, "login issues a new session ID")
        check(first_cookie is not None, "a session cookie was kept")

        status, body, set_cookie = ann.call("/logout")
        check(status == 200 and any("Max-Age=0" in c for c in set_cookie), "/logout expires the cookie")
        check(ann.call("/profile")[0] == 401, "/profile after logout is 401")
        check(ann.call("/incr")[1] == {"count": 0}, "the count starts again after logout")
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--store", default="cookie:",
                        help="a store URI, or redis / redis-cluster / redis-sentinel / memcached / "
                             "postgresql / mongodb / file / sqlite / lmdb to start one")
    parser.add_argument("--mongo-wire-server", help="the test server program, for --store mongodb")
    args = parser.parse_args()
    backing = Backing(args.store, args.mongo_wire_server)
    try:
        run_routes(args.server, backing.uri, backing)
    finally:
        backing.close()
    print(f"e2e ({args.store}): {results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
