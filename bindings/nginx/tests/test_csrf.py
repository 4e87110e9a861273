"""sessions_csrf: nginx refuses requests with an unsafe method that do not
carry a CSRF token of their session; $session_csrf_token gives pages one.
Tokens minted by the application (the Python binding here) verify in nginx
and the other way round: both derive them from the session's secret in the
shared store. Also the __Host- / __Secure- cookie names at nginx -t."""
import http.client
import re
import time

import pytest

from conftest import binding_store, cookie_pair, csrf_token, get, mint, mint_token

TOKEN = re.compile(r"[A-Za-z0-9_-]{86}")


def csrf_site(nginx, uri, upstream_port):
    up = f"http://127.0.0.1:{upstream_port}"
    return f"""
    sessions_store "{uri}";
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession;
    server {{
        listen 127.0.0.1:{nginx.port};
        location /app {{
            sessions_csrf on;
            proxy_pass {up};
        }}
        location /custom {{
            sessions_csrf on;
            sessions_csrf_header X-Form-Token;
            proxy_pass {up};
        }}
        location /page {{
            sessions_csrf on;
            add_header X-CSRF-Token $session_csrf_token always;
            proxy_pass {up};
        }}
        location /plain {{
            add_header X-CSRF-Token $session_csrf_token always;
            proxy_pass {up};
        }}
        location /returns {{
            sessions_csrf on;
            return 200 "returned\\n";
        }}
        location /pass {{
            sessions_csrf on;
            sessions_on_error pass;
            proxy_pass {up};
        }}
        location /cached-plain {{
            sessions_cache_valid 10s;
            add_header X-CSRF-Token $session_csrf_token always;
            proxy_pass {up};
        }}
        location /cached {{
            sessions_csrf on;
            sessions_cache_valid 10s;
            add_header X-CSRF-Token $session_csrf_token always;
            proxy_pass {up};
        }}
        location /unprotected {{
            proxy_pass {up};
        }}
    }}"""


@pytest.fixture(params=["cookie", "redis"])
def csrf(request, nginx, upstream):
    """nginx with sessions_csrf locations, on the cookie store or Redis; the
    Python binding plays the application."""
    if request.param == "cookie":
        uri = "cookie:"
    else:
        uri = request.getfixturevalue("redis").uri()
    nginx.start(csrf_site(nginx, uri, upstream.port))
    return nginx, binding_store(uri), uri


def send(port, method, path, cookie=None, headers=()):
    """A request whose headers may repeat: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path)
    if cookie:
        conn.putheader("Cookie", cookie)
    for name, value in headers:
        conn.putheader(name, value)
    conn.putheader("Content-Length", "0")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def logged_in(store):
    """A session of the application with its token (its secret saved)."""
    return mint_token(store, mint(store, {"user_id": 1}))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"])
def test_unsafe_methods_need_a_token_of_the_session(csrf, method):
    nginx, store, _ = csrf
    cookie, token = logged_in(store)
    assert get(nginx.port, "/app", cookie=cookie, method=method, body="x=1").status == 403
    r = get(nginx.port, "/app", cookie=cookie, method=method, body="x=1",
            headers={"X-CSRF-Token": token})
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["method"] == method and seen["body"] == "x=1"
    # The header's name is case-insensitive, like every header's.
    r = get(nginx.port, "/app", cookie=cookie, method=method, headers={"x-csrf-token": token})
    assert r.status == 200
    assert "request refused (403) by sessions_csrf" in nginx.log()


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_pass_without_a_token(csrf, method):
    nginx, store, _ = csrf
    cookie, _ = logged_in(store)
    assert get(nginx.port, "/app", cookie=cookie, method=method).status == 200
    assert get(nginx.port, "/app", method=method).status == 200  # no session either
    assert get(nginx.port, "/returns", method=method).status == 200


@pytest.mark.parametrize("how", ["wrong", "truncated", "flipped", "longer", "empty",
                                 "other-session", "other-secret", "twice", "other-header"])
def test_tokens_that_are_not_the_sessions_are_403(csrf, how):
    nginx, store, uri = csrf
    cookie, token = logged_in(store)
    if how == "wrong":
        headers = [("X-CSRF-Token", "A" * 86)]
    elif how == "truncated":
        headers = [("X-CSRF-Token", token[:-1])]
    elif how == "flipped":
        i = len(token) // 3
        headers = [("X-CSRF-Token", token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1:])]
    elif how == "longer":
        headers = [("X-CSRF-Token", token + "A")]
    elif how == "empty":
        headers = [("X-CSRF-Token", "")]
    elif how == "other-session":
        _, other = logged_in(store)
        headers = [("X-CSRF-Token", other)]
    elif how == "other-secret":
        # A token of a session the attacker made with a store of their own.
        attacker = binding_store(uri, secrets=["an-attacker-secret-an-attacker-secret!"])
        _, other = logged_in(attacker)
        headers = [("X-CSRF-Token", other)]
    elif how == "twice":
        _, other = logged_in(store)
        headers = [("X-CSRF-Token", token), ("X-CSRF-Token", other)]
    else:
        headers = [("X-Form-Token", token)]
    status, _ = send(nginx.port, "POST", "/app", cookie=cookie, headers=headers)
    assert status == 403
    # The same cookie with its own token passes: only the token was wrong.
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 200


@pytest.mark.parametrize("how", ["no-cookie", "tampered", "garbage", "expired"])
def test_a_token_without_its_valid_session_is_403(csrf, how):
    nginx, store, uri = csrf
    cookie, token = logged_in(store)
    if how == "no-cookie":
        cookie = None
    elif how == "tampered":
        name, value = cookie.split("=", 1)
        i = len(value) // 2
        cookie = f"{name}={value[:i]}{'A' if value[i] != 'A' else 'B'}{value[i + 1:]}"
    elif how == "garbage":
        cookie = "mysession=not-a-session"
    else:
        short = binding_store(uri, max_age=1)
        cookie, token = mint_token(short, mint(short, {"user_id": 2}))
        assert send(nginx.port, "POST", "/app", cookie=cookie,
                    headers=[("X-CSRF-Token", token)])[0] == 200
        time.sleep(2.1)
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 403


def test_sessions_csrf_header_names_the_header(csrf):
    nginx, store, _ = csrf
    cookie, token = logged_in(store)
    assert send(nginx.port, "POST", "/custom", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 403
    assert send(nginx.port, "POST", "/custom", cookie=cookie,
                headers=[("X-Form-Token", token)])[0] == 200


def test_the_check_runs_before_return_and_only_where_it_is_on(csrf):
    nginx, store, _ = csrf
    cookie, token = logged_in(store)
    assert send(nginx.port, "POST", "/returns", cookie=cookie)[0] == 403
    status, body = send(nginx.port, "POST", "/returns", cookie=cookie,
                        headers=[("X-CSRF-Token", token)])
    assert (status, body) == (200, b"returned\n")
    assert send(nginx.port, "POST", "/unprotected", cookie=cookie)[0] == 200


def test_nginx_mints_tokens_that_the_application_accepts(csrf):
    """A session without a CSRF secret (the application never asked for a
    token): a sessions_csrf location creates and saves it, and sends the
    token; it verifies in nginx and in the application."""
    nginx, store, uri = csrf
    cookie = mint(store, {"user_id": 1})
    r = get(nginx.port, "/page", cookie=cookie)
    assert r.status == 200
    (token,) = r.header("X-CSRF-Token")
    assert TOKEN.fullmatch(token), token
    if uri == "cookie:":
        (line,) = r.header("Set-Cookie")  # the secret lives in the cookie
        assert line.startswith("mysession=")
        cookie = cookie_pair(line)
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 200
    with store.begin(cookie) as req:
        s = req.session("mysession")
        assert s.status == "valid" and s["user_id"] == 1  # nothing else changed
        if hasattr(s, "verify_csrf"):
            assert s.verify_csrf(token)
        app_token = csrf_token(s)  # the secret exists: no save needed
        assert req.finish() == []
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", app_token)])[0] == 200
    # Once the secret exists: a fresh token on every response, no cookie.
    r2 = get(nginx.port, "/page", cookie=cookie)
    (token2,) = r2.header("X-CSRF-Token")
    assert TOKEN.fullmatch(token2) and token2 != token
    assert r2.header("Set-Cookie") == []
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token2)])[0] == 200


def test_the_variable_outside_sessions_csrf_never_writes(csrf):
    nginx, store, _ = csrf
    cookie = mint(store, {"user_id": 1})
    r = get(nginx.port, "/plain", cookie=cookie)
    assert r.status == 200
    assert r.header("X-CSRF-Token") == [] and r.header("Set-Cookie") == []  # no secret yet
    cookie, _ = mint_token(store, cookie)  # the application creates it
    r = get(nginx.port, "/plain", cookie=cookie)
    (token,) = r.header("X-CSRF-Token")
    assert r.header("Set-Cookie") == []
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 200


def test_without_a_session_there_is_no_token_and_no_cookie(csrf):
    nginx, _, _ = csrf
    r = get(nginx.port, "/page")
    assert r.status == 200
    assert r.header("X-CSRF-Token") == [] and r.header("Set-Cookie") == []
    assert get(nginx.port, "/page", cookie="mysession=forged").header("X-CSRF-Token") == []
    assert send(nginx.port, "POST", "/app", headers=[("X-CSRF-Token", "A" * 86)])[0] == 403


def test_cached_sessions_get_tokens_and_their_secret_is_saved(csrf):
    """A session cached by a location that mints nothing is loaded again
    where a token is needed; tokens from the cache verify."""
    nginx, store, uri = csrf
    cookie = mint(store, {"user_id": 1})
    assert get(nginx.port, "/cached-plain", cookie=cookie).header("X-CSRF-Token") == []
    r = get(nginx.port, "/cached", cookie=cookie)
    (token,) = r.header("X-CSRF-Token")
    if uri == "cookie:":
        cookie = cookie_pair(r.header("Set-Cookie")[0])
    tokens = {token}
    for path in ("/cached", "/cached", "/cached-plain"):  # from the cache
        (t,) = get(nginx.port, path, cookie=cookie).header("X-CSRF-Token")
        tokens.add(t)
    assert len(tokens) == 4
    for t in tokens:
        assert send(nginx.port, "POST", "/cached", cookie=cookie,
                    headers=[("X-CSRF-Token", t)])[0] == 200
        assert send(nginx.port, "POST", "/app", cookie=cookie,
                    headers=[("X-CSRF-Token", t)])[0] == 200


def test_a_store_that_cannot_be_read_is_503_even_with_pass(nginx, redis, upstream):
    uri = redis.uri("timeout_ms=500&connect_timeout_ms=500")
    store = binding_store(uri)
    cookie, token = logged_in(store)
    nginx.start(csrf_site(nginx, uri, upstream.port))
    assert send(nginx.port, "POST", "/pass", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 200
    redis.kill()
    assert send(nginx.port, "POST", "/pass", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 503
    assert send(nginx.port, "POST", "/app", cookie=cookie,
                headers=[("X-CSRF-Token", token)])[0] == 503
    assert get(nginx.port, "/pass", cookie=cookie).status == 200  # GET: served, as pass says


# ---- nginx -t -------------------------------------------------------------

def cookie_config(nginx, cookie, store='"cookie:"', location=""):
    return f"""
    sessions_store {store};
    sessions_secret_file {nginx.secret_file};
    {cookie}
    server {{ listen 127.0.0.1:{nginx.port}; location / {{ {location} return 200; }} }}"""


@pytest.mark.parametrize("cookie,store,expected", [
    ("sessions_cookie __Host-sid;", '"cookie:"',
     r"__Host-sid.*browsers drop a __Host- cookie unless it is Secure \(set secure=true\)"),
    ("sessions_cookie __Host-sid secure=off path=/;", '"redis://127.0.0.1:1/0"',
     r"set secure=true"),
    ("sessions_cookie __host-SID path=/;", '"cookie:"', r"__Host- cookie .*set secure=true"),
    ("sessions_cookie __Host-sid secure=on domain=example.com;", '"cookie:"',
     r"host-only \(remove domain=\)"),
    ("sessions_cookie __Host-sid secure=on path=/app;", '"cookie:"', r"set path=/"),
    ("sessions_cookie __Secure-sid;", '"cookie:"', r"__Secure- cookie unless it is Secure"),
    ("sessions_cookie __SECURE-sid secure=false;", '"cookie:"', r"set secure=true"),
    # The store URI's options count, and sessions_cookie's override them.
    ("sessions_cookie __Host-sid;", '"cookie:?secure=true&path=%2Fapp"', r"set path=/"),
    ("sessions_cookie __Host-sid secure=off;", '"cookie:?secure=true"', r"set secure=true"),
])
def test_nginx_t_refuses_cookie_names_browsers_would_drop(nginx, cookie, store, expected):
    code, out = nginx.check(cookie_config(nginx, cookie, store))
    assert code != 0, out
    assert re.search(expected, out), out
    assert "sessions_cookie" in out


@pytest.mark.parametrize("cookie,store", [
    ("sessions_cookie __Host-sid secure=on path=/;", '"cookie:"'),
    ("sessions_cookie __Host-sid secure=true;", '"redis://127.0.0.1:1/0"'),
    ("sessions_cookie __Host-sid;", '"cookie:?secure=yes"'),
    ("sessions_cookie __Host-sid path=/;", '"cookie:?secure=%74rue&domain="'),
    ("sessions_cookie __Secure-sid secure=1 domain=example.com path=/app;", '"cookie:"'),
    ("sessions_cookie __Hostess secure=off;", '"cookie:"'),  # not the prefix
    ("sessions_cookie sid;", '"cookie:"'),
])
def test_nginx_t_accepts_prefixed_names_with_what_they_need(nginx, cookie, store):
    code, out = nginx.check(cookie_config(nginx, cookie, store))
    assert code == 0, out


def test_nginx_t_checks_the_name_where_a_location_sets_it(nginx):
    code, out = nginx.check(cookie_config(
        nginx, "sessions_cookie s;", location="sessions_cookie __Secure-s;"))
    assert code != 0 and "set secure=true" in out, out


@pytest.mark.parametrize("directives,expected", [
    ("sessions_csrf on;", None),
    ("sessions_csrf on; sessions_csrf_header X-Form-Token;", None),
    ("sessions_csrf_header 'bad header';", r'sessions_csrf_header: "bad header" is not a header'),
    ("sessions_csrf maybe;", r"invalid value"),
])
def test_nginx_t_on_the_csrf_directives(nginx, directives, expected):
    code, out = nginx.check(cookie_config(nginx, directives))
    if expected is None:
        assert code == 0, out
    else:
        assert code != 0 and re.search(expected, out), out


def test_nginx_t_refuses_sessions_csrf_without_a_store(nginx):
    code, out = nginx.check(f"""
    sessions_csrf on;
    server {{ listen 127.0.0.1:{nginx.port}; location / {{ return 200; }} }}""")
    assert code != 0
    assert "sessions_csrf is on where sessions_store is off" in out, out
    code, out = nginx.check(cookie_config(nginx, "sessions_csrf on;",
                                          location="sessions_store off; sessions_csrf off;"))
    assert code == 0, out
