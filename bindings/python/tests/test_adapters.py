"""The WSGI middleware under a real server (wsgiref, in a thread) and a Flask
app under werkzeug's server, driven over HTTP with http.cookiejar."""
import http.cookiejar
import json
import random
import re
import threading
import urllib.parse
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

    def post(self, path, data=b"", headers=None, content_type="application/x-www-form-urlencoded"):
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST",
                                         headers=dict({"Content-Type": content_type},
                                                      **(headers or {})))
        try:
            with self.opener.open(request, timeout=10) as resp:
                return resp.status, resp.read().decode(), resp.headers.get_all("Set-Cookie") or []
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), e.headers.get_all("Set-Cookie") or []


def form_token(page):
    return re.search(r'name="csrf_token" value="([A-Za-z0-9_-]{86})"', page).group(1)


def multipart(fields):
    boundary = "----sessions-test-boundary"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                    f'{value}\r\n'.encode() for name, value in fields.items())
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


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


def wsgi_form_app(environ, start_response):
    session = environ["sessions.session"]
    if environ["REQUEST_METHOD"] == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode()  # the whole body, after the check
        session["posted"] = session.get("posted", 0) + 1
        out = f"posted {session['posted']} {len(body)} {body[:12]}"
    else:
        out = f'<form method=post><input type="hidden" name="csrf_token" ' \
              f'value="{session.csrf_token()}"></form>'
    start_response("200 OK", [("Content-Type", "text/html")])
    return [out.encode()]


def test_wsgi_csrf_rejects_unsafe_methods_without_a_token():
    store = sessions.Store("memory:", secrets=[SECRET])
    server = serve(SessionMiddleware(wsgi_form_app, store, cookie_name="mysession", csrf=True))
    try:
        b = Browser(server.server_port)
        status, page, _ = b.get("/form")
        assert status == 200
        token = form_token(page)
        assert b.post("/form", {"note": "hi"})[0] == 403
        assert b.post("/form", {"note": "hi", "csrf_token": token[:-1]})[0] == 403
        assert b.post("/form", {"note": "hi"}, headers={"X-CSRF-Token": "x" * 86})[0] == 403
        assert b.post("/form", b"{}", content_type="application/json")[0] == 403
        other = Browser(server.server_port)  # another session's token
        other_token = form_token(other.get("/form")[1])
        assert b.post("/form", {"note": "hi", "csrf_token": other_token})[0] == 403
        # The form field, the header, a multipart body: the application still reads it whole.
        status, body, _ = b.post("/form", {"note": "hi", "csrf_token": token})
        assert status == 200 and body == f"posted 1 {len('note=hi&csrf_token=') + 86} note=hi&csrf"
        status, body, _ = b.post("/form", b"note=hi", headers={"X-CSRF-Token": token})
        assert status == 200 and body == "posted 2 7 note=hi"
        data, content_type = multipart({"note": "hi", "csrf_token": token})
        status, body, _ = b.post("/form", data, content_type=content_type)
        assert status == 200 and body.startswith(f"posted 3 {len(data)} ")
        data, content_type = multipart({"note": "hi"})
        assert b.post("/form", data, content_type=content_type)[0] == 403
        assert b.get("/form")[0] == 200  # safe methods need no token
    finally:
        server.shutdown()
        store.close()


def test_wsgi_csrf_is_off_by_default_and_reachable_from_the_session(wsgi_server):
    b = Browser(wsgi_server.server_port)
    assert b.post("/incr", {"note": "hi"})[0] == 200


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


def test_flask_csrf_token_template_global_and_checks():
    from sessions.flask import SessionInterface, csrf_exempt, csrf_protect

    def make_app(csrf):
        app = flask.Flask(__name__)
        store = sessions.Store("memory:", secrets=[SECRET])
        SessionInterface(store).init_app(app, csrf=csrf)
        page = '<form method=post><input type="hidden" name="csrf_token" ' \
               'value="{{ csrf_token() }}"></form>'

        @app.route("/form", methods=["GET", "POST"])
        def form():
            if flask.request.method == "POST":
                flask.session["note"] = flask.request.form.get("note")
                return {"note": flask.session["note"]}
            return flask.render_template_string(page)

        @app.route("/protected", methods=["GET", "POST", "DELETE"])
        @csrf_protect
        def protected():
            return {"ok": flask.request.method}

        @app.route("/hook", methods=["POST"])
        @csrf_exempt
        def hook():
            return {"hook": True}
        return app, store

    from werkzeug.serving import make_server as werkzeug_server
    for csrf in (True, False):
        app, store = make_app(csrf)
        server = werkzeug_server("127.0.0.1", 0, app)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            b = Browser(server.server_port)
            status, page, cookies = b.get("/form")
            assert status == 200 and cookies  # the token's secret made the session save
            token = form_token(page)
            assert form_token(b.get("/form")[1]) != token  # a fresh mask on every page
            # /protected is checked either way; /form only with init_app(app, csrf=True).
            assert b.post("/protected", {"x": "1"})[0] == 403
            assert b.post("/protected", {"csrf_token": token})[0] == 200
            assert b.post("/protected", b"", headers={"X-CSRF-Token": token})[0] == 200
            assert b.get("/protected")[0] == 200
            status, body, _ = b.post("/form", {"note": "hi"})
            assert status == (403 if csrf else 200)
            status, body, _ = b.post("/form", {"note": "hi", "csrf_token": token[:-1]})
            assert status == (403 if csrf else 200)
            status, body, _ = b.post("/form", {"note": "field", "csrf_token": token})
            assert status == 200 and json.loads(body) == {"note": "field"}
            status, body, _ = b.post("/form", {"note": "header"}, headers={"X-CSRF-Token": token})
            assert status == 200 and json.loads(body) == {"note": "header"}
            other = Browser(server.server_port)
            other_token = form_token(other.get("/form")[1])
            assert b.post("/protected", {"csrf_token": other_token})[0] == 403
            assert b.post("/hook", {"x": "1"})[0] == 200  # exempt
            assert b.post("/nowhere", {"x": "1"})[0] == 404
        finally:
            server.shutdown()
            store.close()


def test_flask_session_exposes_principals():
    from sessions.flask import SessionInterface

    app = flask.Flask(__name__)
    store = sessions.Store("memory:", secrets=[SECRET])
    SessionInterface(store).init_app(app)

    @app.route("/login/<device>")
    def login(device):
        flask.session.regenerate_id()
        flask.session.principal = "user:42"
        flask.session.set_metadata("device", device)
        flask.session["user"] = "ann"
        return {"ok": True}

    @app.route("/devices")
    def devices():
        return {"me": flask.session.handle, "principal": flask.session.principal,
                "device": flask.session.get_metadata("device"),
                "listed": store.list_sessions(flask.session.principal or "nobody")}

    @app.route("/logout-others", methods=["POST"])
    def logout_others():
        return {"ended": store.end_sessions(flask.session.principal, keep=flask.session.native)}

    client = app.test_client()
    other = app.test_client()
    assert other.get("/login/phone").status_code == 200
    assert client.get("/login/laptop").status_code == 200
    seen = client.get("/devices").get_json()
    assert seen["principal"] == "user:42" and seen["device"] == "laptop"
    assert seen["me"] in [i["id"] for i in seen["listed"]] and len(seen["listed"]) == 2
    assert client.post("/logout-others").get_json() == {"ended": 1}
    assert other.get("/devices").get_json() == {"me": "", "principal": None, "device": None,
                                                "listed": []}  # ended: a new, empty session
    assert len(client.get("/devices").get_json()["listed"]) == 1
    store.close()
