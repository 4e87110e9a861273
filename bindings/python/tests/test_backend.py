"""Stores written in Python: sessions.Backend through the request cycle,
failures, threads, and the sqlite3 example store under a WSGI server."""
import os
import sys
import threading
import time

import pytest

import sessions
from conftest import SECRET
from sessions.wsgi import SessionMiddleware
from test_adapters import Browser, serve

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "python"))
import sqlite3_store  # noqa: E402  (the example, as a user would import it)


class DictBackend(sessions.Backend):
    def __init__(self):
        self.records, self.lock = {}, threading.Lock()
        self.fail, self.closed, self.calls = None, 0, []

    def load(self, key):
        self.calls.append("load")
        if self.fail:
            raise self.fail
        with self.lock:
            data, expires = self.records.get(key, (None, 0))
        return data if data is not None and expires > time.time() else None

    def save(self, key, data, ttl):
        self.calls.append("save")
        if self.fail:
            raise self.fail
        with self.lock:
            self.records[key] = (data, time.time() + ttl)

    def delete(self, key):
        self.calls.append("delete")
        with self.lock:
            self.records.pop(key, None)

    def close(self):
        self.closed += 1


def cycle(store, jar, handler):
    with store.begin(jar) as request:
        handler(request.session("sid"))
        cookies = request.finish()
    return cookies[0].split(";")[0] if cookies else jar


def test_a_python_backend_carries_sessions():
    backend = DictBackend()
    store = sessions.Store(backend=backend, secrets=[SECRET])
    jar = cycle(store, "", lambda s: s.__setitem__("cart", [1, 2, {"sku": "A-1"}]))
    assert backend.calls == ["save"]
    seen = {}
    jar = cycle(store, jar, lambda s: seen.update(cart=s["cart"], valid=s.status))
    assert seen == {"cart": [1, 2, {"sku": "A-1"}], "valid": "valid"}

    def login(s):
        s.regenerate_id()
        s["user"] = "ann"
    jar = cycle(store, jar, login)
    assert backend.calls[-2:] == ["save", "delete"]  # move = save then delete by default
    assert len(backend.records) == 1
    cycle(store, jar, lambda s: s.destroy())
    assert backend.records == {}
    store.close()
    assert backend.closed == 1


def test_an_exception_in_the_backend_is_store_unavailable_never_an_empty_session():
    backend = DictBackend()
    # last_write, so that the failure set during a request hits its save
    # (under merge a backend without save_if is read again first).
    store = sessions.Store(backend=backend, secrets=[SECRET], concurrency="last_write")
    jar = cycle(store, "", lambda s: s.__setitem__("n", 1))
    backend.fail = OSError("the disk went away")
    with pytest.raises(sessions.StoreUnavailable) as err:
        cycle(store, jar, lambda s: None)
    assert "backend load failed: OSError: the disk went away" in str(err.value)
    backend.fail = None
    with store.begin(jar) as request:
        s = request.session("sid")
        s["n"] = 2
        backend.fail = sessions.ValueTooLarge(11, "over the limit")
        with pytest.raises(sessions.ValueTooLarge):
            request.finish()
    backend.fail = None
    seen = []
    cycle(store, jar, lambda s: seen.append(s["n"]))
    assert seen == [1]
    store.close()


def test_the_backend_lives_as_long_as_its_store_and_serves_threads():
    store = sessions.Store(backend=DictBackend(), secrets=[SECRET])  # no other reference
    errors = []

    def worker():
        jar = ""
        for i in range(50):
            def step(s, i=i):
                if s.get("n", 0) != i:
                    errors.append((s.get("n"), i))
                s["n"] = i + 1
            jar = cycle(store, jar, step)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.close()


def test_a_registered_python_scheme_with_options():
    made = []

    def factory(uri, options):
        if options and options[0][0] != "bucket":
            raise ValueError(f"unknown option {options[0][0]}")
        made.append((uri, options))
        return DictBackend()
    sessions.register_scheme("pydict", factory, options=["bucket"])
    with pytest.raises(sessions.InvalidInput):
        sessions.register_scheme("pydict", factory)
    store = sessions.Store("pydict://x?bucket=a", secrets=[SECRET], bucket="b")
    assert made == [("pydict://x?bucket=a", [("bucket", "a"), ("bucket", "b")])]
    with pytest.raises(sessions.InvalidInput, match="unknown option other"):
        sessions.Store("pydict://x?other=1", secrets=[SECRET])
    jar = cycle(store, "", lambda s: s.__setitem__("k", "v"))
    seen = []
    cycle(store, jar, lambda s: seen.append(s["k"]))
    assert seen == ["v"]
    store.close()


def test_the_sqlite3_example_store_over_http(tmp_path):
    if "pysqlite" not in _registered:
        sqlite3_store.register()
        _registered.add("pysqlite")
    store = sessions.Store(f"pysqlite://{tmp_path}/sessions.db", secrets=[SECRET],
                           busy_timeout="2")

    def app(environ, start_response):
        session = environ["sessions.session"]
        if environ["PATH_INFO"] == "/login":
            session.regenerate_id()
            session["user"] = "ann"
        session["count"] = session.get("count", -1) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{session.get('user')} {session['count']}".encode()]
    server = serve(SessionMiddleware(app, store, cookie_name="sid"))
    try:
        browser = Browser(server.server_port)
        assert browser.get("/")[1] == "None 0"
        assert browser.get("/login")[1] == "ann 1"
        assert browser.get("/")[1] == "ann 2"
        other = Browser(server.server_port)
        assert other.get("/")[1] == "None 0"
        import sqlite3
        rows = sqlite3.connect(f"{tmp_path}/sessions.db").execute(
            "SELECT count(*) FROM sessions").fetchone()[0]
        assert rows == 2  # the login moved ann's session: the old row is gone
    finally:
        server.shutdown()
        store.close()


def test_the_python_stores_pass_the_conformance_kit(tmp_path):
    from sessions import conformance
    if "pysqlite" not in _registered:
        sqlite3_store.register()
        _registered.add("pysqlite")
    for uri in (f"pysqlite://{tmp_path}/kit.db", "pydict-kit://"):
        if uri.startswith("pydict-kit"):
            sessions.register_scheme("pydict-kit", lambda uri, options: DictBackend())
        results = conformance.run(uri)
        failed = [r for r in results if r[1] == "failed"]
        assert not failed, (uri, failed)
        assert [r[0] for r in results if r[1] == "passed"] == [
            "round_trip", "expiry", "regenerate", "destroy", "oversized", "hash_keys", "threads",
            "parallel", "principals"]


_registered = set()
