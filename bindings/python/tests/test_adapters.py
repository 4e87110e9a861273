"""The WSGI middleware under a real server (wsgiref, in a thread) and a Flask
app under werkzeug's server, driven over HTTP with http.cookiejar."""
import http.cookiejar
import json
import random
import threading
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import sessions
from conftest import SECRET
from sessions.wsgi import SessionMiddleware


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(app):
    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


class Browser:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path):
        try:
            with self.opener.open(self.base + path, timeout=10) as resp:
                return resp.status, resp.read().decode(), resp.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers.get_all("Set-Cookie") or []


def wsgi_app(environ, start_response):
    session = environ["sessions.session"]
    path = environ["PATH_INFO"]
    if path == "/login":
        session.regenerate_id()
        session["user"] = "ann"
    elif path == "/incr":
        session["count"] = session.get("count", -1) + 1
    elif path == "/big":
        session["big"] = "".join(random.Random(1).choice("abcdefghij") for _ in range(10000))
    elif path == "/small":
        session.pop("big", None)
    elif path == "/boom":
        session["user"] = "mallory"  # half done: must not be saved
        raise RuntimeError("the handler failed")
    body = json.dumps(dict(session)).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def wsgi_server():
    store = sessions.Store("memory:", secrets=[SECRET])
    server = serve(SessionMiddleware(wsgi_app, store, cookie_name="mysession"))
    yield server
    server.shutdown()
    store.close()


def test_wsgi_sessions_across_requests(wsgi_server):
    b = Browser(wsgi_server.server_port)
    status, body, cookies = b.get("/login")
    assert status == 200 and json.loads(body) == {"user": "ann"}
    assert cookies and cookies[0].startswith("mysession=") and "HttpOnly" in cookies[0]
    assert [json.loads(b.get("/incr")[1])["count"] for _ in range(3)] == [0, 1, 2]
    assert json.loads(b.get("/")[1])["user"] == "ann"


def test_wsgi_a_big_cookie_session_spans_chunks_and_shrinks_back():
    store = sessions.Store("cookie:", secrets=[SECRET], max_chunks=8)
    server = serve(SessionMiddleware(wsgi_app, store, cookie_name="mysession"))
    try:
        b = Browser(server.server_port)
        status, _, cookies = b.get("/big")
        assert status == 200
        names = sorted(c.split("=", 1)[0] for c in cookies)
        assert names == ["mysession", "mysession.1", "mysession.2", "mysession.3"]
        assert all(len(c) <= 4096 for c in cookies)
        assert len(json.loads(b.get("/incr")[1])["big"]) == 10000  # read back whole
        status, _, cookies = b.get("/small")
        assert sum("Max-Age=0" in c for c in cookies) == 3  # the stale chunks expired
        assert sorted(c.name for c in b.jar) == ["mysession"]
        assert json.loads(b.get("/incr")[1]) == {"count": 1}
    finally:
        server.shutdown()
        store.close()


def test_wsgi_a_failing_handler_saves_nothing(wsgi_server):
    b = Browser(wsgi_server.server_port)
    b.get("/login")
    status, _, cookies = b.get("/boom")
    assert status == 500 and not cookies
    assert json.loads(b.get("/")[1])["user"] == "ann"


def test_wsgi_store_down_is_503():
    store = sessions.Store("memory:", secrets=[SECRET])

    class Down:
        def begin(self, header):
            request = store.begin(header)
            original = request.session

            def failing(name, store_=None):
                raise sessions.StoreUnavailable(9, "test store is down")
            request.session = failing
            return request
    server = serve(SessionMiddleware(wsgi_app, Down()))
    try:
        status, _, cookies = Browser(server.server_port).get("/incr")
        assert status == 503 and not cookies
    finally:
        server.shutdown()
        store.close()


flask = pytest.importorskip("flask")


def test_flask_app_switches_with_two_lines():
    from sessions.flask import SessionInterface

    app = flask.Flask(__name__)
    store = sessions.Store("memory:", secrets=[SECRET])
    app.session_interface = SessionInterface(store)

    @app.route("/login")
    def login():
        flask.session.regenerate_id()
        flask.session["user"] = "ann"
        flask.session.add_flash("welcome")
        return {"ok": True}

    @app.route("/me")
    def me():
        return {"user": flask.session.get("user"), "flashes": flask.session.flashes()}

    @app.route("/boom")
    def boom():
        flask.session["user"] = "mallory"
        raise RuntimeError("failed")

    from werkzeug.serving import make_server as werkzeug_server
    server = werkzeug_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        b = Browser(server.server_port)
        assert b.get("/login")[0] == 200
        assert json.loads(b.get("/me")[1]) == {"user": "ann", "flashes": ["welcome"]}
        assert json.loads(b.get("/me")[1]) == {"user": "ann", "flashes": []}
        status, _, cookies = b.get("/boom")
        assert status == 500 and not cookies
        assert json.loads(b.get("/me")[1])["user"] == "ann"
    finally:
        server.shutdown()
        store.close()


def test_flask_reads_a_chunked_cookie_session():
    from sessions.flask import SessionInterface

    app = flask.Flask(__name__)
    store = sessions.Store("cookie:", secrets=[SECRET], max_chunks=6)
    app.session_interface = SessionInterface(store)

    @app.route("/big")
    def big():
        flask.session["notes"] = "".join(random.Random(2).choice("0123456789") for _ in range(9000))
        return {"ok": True}

    @app.route("/me")
    def me():
        return {"notes": len(flask.session.get("notes", ""))}

    from werkzeug.serving import make_server as werkzeug_server
    server = werkzeug_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        b = Browser(server.server_port)
        status, _, cookies = b.get("/big")
        assert status == 200 and len(cookies) == 4
        assert json.loads(b.get("/me")[1]) == {"notes": 9000}
    finally:
        server.shutdown()
        store.close()
