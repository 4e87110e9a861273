"""The nginx module in Debian's nginx: an application logs users in, nginx
reads their sessions and gates locations on them."""
import os
import random
import re
import signal
import threading
import time

import pytest

from conftest import (OLD_SECRET, SECRET, Demo, binding_store, cookie_pair, get, mint,
                      write_secret_file)


def protected_site(nginx, store_uri, demo_port, upstream_port, extra=""):
    """The layout of the README's example: the application at /, the
    protected service at /admin."""
    return f"""
    sessions_store "{store_uri}";
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession path=/;
    server {{
        listen 127.0.0.1:{nginx.port};
        location / {{
            sessions_store off;
            proxy_pass http://127.0.0.1:{demo_port};
        }}
        location /admin {{
            sessions_require user_id;
            proxy_set_header X-User-Id $session_user_id;
            proxy_set_header X-User-Name $session_username;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location /admin-redirect {{
            sessions_require user_id;
            sessions_require_redirect /login?next=$request_uri;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location /status {{
            add_header X-Session-Status $session_status always;
            add_header X-Session-Id $session_id always;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location /public {{
            sessions_on_error pass;
            add_header X-Session-Status $session_status always;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location /static {{
            sessions_store off;
            return 200 "static\\n";
        }}
        {extra}
    }}
"""


def log_in(port, user="ann"):
    r = get(port, f"/login?user={user}")
    assert r.status == 200, r.body
    (line,) = r.header("Set-Cookie")
    return cookie_pair(line)


@pytest.fixture(params=["cookie", "redis"])
def site(request, nginx, upstream, workdir):
    """nginx in front of the demo server, on the cookie store or Redis."""
    if request.param == "cookie":
        uri, redis = "cookie:", None
    else:
        redis = request.getfixturevalue("redis")
        uri = redis.uri()
    demo = Demo(uri)
    nginx.start(protected_site(nginx, uri, demo.port, upstream.port))
    yield nginx, redis, uri
    demo.close()


def test_a_logged_in_user_reaches_admin_with_their_id(site):
    nginx, _, _ = site
    cookie = log_in(nginx.port, "ann")  # through nginx, to the demo server
    r = get(nginx.port, "/admin/users", cookie=cookie)
    assert r.status == 200, r.body
    seen = r.json()["headers"]
    assert seen["x-user-id"] == "1"
    assert seen["x-user-name"] == "ann"
    assert get(nginx.port, "/admin", cookie=log_in(nginx.port, "bob")).json()[
        "headers"]["x-user-id"] == "2"
    status = get(nginx.port, "/status", cookie=cookie)
    assert status.header("X-Session-Status") == ["valid"]
    # Read-only: nginx sent no cookie of its own.
    assert r.header("Set-Cookie") == []


def test_without_a_session_admin_is_401_or_a_redirect(site):
    nginx, _, _ = site
    r = get(nginx.port, "/admin")
    assert r.status == 401
    r = get(nginx.port, "/admin-redirect/x?y=1")
    assert r.status == 302
    assert r.header("Location")[0].endswith("/login?next=/admin-redirect/x?y=1")
    assert get(nginx.port, "/status").header("X-Session-Status") == ["new"]
    # A valid session without the key, or with it set to false or nil.
    _, _, uri = site
    for values in ({"username": "ann"}, {"user_id": False}, {"user_id": None}):
        cookie = mint(binding_store(uri), values)
        assert get(nginx.port, "/status", cookie=cookie).header("X-Session-Status") == ["valid"]
        assert get(nginx.port, "/admin", cookie=cookie).status == 401


@pytest.mark.parametrize("how", ["flip", "truncate", "garbage", "other-secret"])
def test_tampered_cookies_are_401(site, how):
    nginx, _, uri = site
    name, value = log_in(nginx.port).split("=", 1)
    if how == "flip":
        i = len(value) // 2
        value = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1:]
    elif how == "truncate":
        value = value[:-5]
    elif how == "garbage":
        value = "not-a-session"
    else:
        store = binding_store(uri, secrets=["an-attacker-secret-an-attacker-secret!"])
        value = mint(store, {"user_id": 1}).split("=", 1)[1]
    cookie = f"{name}={value}"
    assert get(nginx.port, "/admin", cookie=cookie).status == 401
    status = get(nginx.port, "/status", cookie=cookie).header("X-Session-Status")
    expected = {"garbage": ["malformed"], "truncate": ["malformed", "tampered"]}
    assert status[0] in expected.get(how, ["tampered"])


def test_expired_sessions_are_401(site):
    nginx, _, uri = site
    store = binding_store(uri, max_age=1)
    cookie = mint(store, {"user_id": 7})
    assert get(nginx.port, "/admin", cookie=cookie).json()["headers"]["x-user-id"] == "7"
    time.sleep(2.1)
    assert get(nginx.port, "/admin", cookie=cookie).status == 401
    assert get(nginx.port, "/status", cookie=cookie).header("X-Session-Status") == ["expired"]


def test_rotation_old_secret_still_opens(site):
    """The secret file's later lines open cookies sealed before a rotation."""
    nginx, _, uri = site
    cookie = mint(binding_store(uri, secrets=[OLD_SECRET]), {"user_id": 3})
    assert get(nginx.port, "/admin", cookie=cookie).json()["headers"]["x-user-id"] == "3"


def test_variables_render_every_type(nginx, redis):
    uri = redis.uri()
    nginx.start(f"""
    sessions_store "{uri}";
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession;
    server {{
        listen 127.0.0.1:{nginx.port};
        location / {{
            return 200 "s=$session_s|i=$session_i|f=$session_f|t=$session_t|n=$session_n|b=$session_b|l=$session_l|m=$session_m|ctl=$session_ctl|none=$session_none|id=$session_id|st=$session_status";
        }}
    }}""")
    values = {"s": "ann é", "i": -42, "f": 0.1, "t": True, "n": None, "b": b"\x00\xff",
              "l": [1, "two", None], "m": {"k": [True]}, "ctl": "a\r\nX-Evil: 1"}
    cookie = mint(binding_store(uri), values)
    body = get(nginx.port, "/", cookie=cookie).body
    fields = dict(part.split("=", 1) for part in body.split("|"))
    assert fields["s"] == "ann é"
    assert fields["i"] == "-42"
    assert fields["f"] == "0.1"
    assert fields["t"] == "true"
    assert fields["n"] == ""
    assert fields["b"] == "AP8="
    assert fields["l"] == '[1,"two",null]'
    assert fields["m"] == '{"k":[true]}'
    assert fields["ctl"] == '"a\\r\\nX-Evil: 1"'  # a JSON literal: no line break
    assert fields["none"] == ""
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", fields["id"])
    assert fields["st"] == "valid"


def test_a_stopped_store_is_503_logged_once_and_recovers(nginx, redis, upstream):
    uri = redis.uri("timeout_ms=500&connect_timeout_ms=500")
    demo = Demo(uri)
    try:
        nginx.start(protected_site(nginx, uri, demo.port, upstream.port))
        cookie = log_in(nginx.port)
        assert get(nginx.port, "/admin", cookie=cookie).status == 200
        redis.kill()
        for _ in range(10):
            assert get(nginx.port, "/admin", cookie=cookie).status == 503
        # sessions_on_error pass: served, with $session_status = error.
        r = get(nginx.port, "/public", cookie=cookie)
        assert r.status == 200
        assert r.header("X-Session-Status") == ["error"]
        assert get(nginx.port, "/static").status == 200
        failures = [l for l in nginx.log().splitlines() if "sessions: store" in l and "failed" in l]
        assert len(failures) == 1, failures  # one line for the burst, not one per request
        assert "redis://127.0.0.1:%d/0" % redis.port in failures[0]
        assert "timeout_ms" not in failures[0]  # the query (which may hold a password) is not logged
        redis.start()  # appendonly: the session is still there
        deadline = time.time() + 5
        while get(nginx.port, "/admin", cookie=cookie).status != 200:
            assert time.time() < deadline, nginx.log()
            time.sleep(0.1)
        assert "answers again" in nginx.log()
    finally:
        demo.close()


def test_a_store_down_when_nginx_starts_is_503_until_it_comes_up(nginx, redis, upstream):
    uri = redis.uri("timeout_ms=500&connect_timeout_ms=500")
    cookie = mint(binding_store(uri), {"user_id": 5})
    redis.kill()
    nginx.start(protected_site(nginx, uri, 1, upstream.port))
    assert get(nginx.port, "/admin", cookie=cookie).status == 503
    assert "cannot be opened" in nginx.log()  # by the worker, before it served
    redis.start()
    deadline = time.time() + 5
    while (r := get(nginx.port, "/admin", cookie=cookie)).status != 200:
        assert time.time() < deadline, nginx.log()
        time.sleep(0.2)
    assert r.json()["headers"]["x-user-id"] == "5"


def test_a_hung_store_does_not_block_the_worker(nginx, redis, upstream):
    """One worker; Redis stopped (SIGSTOP): a session request waits for the
    store's timeout on the thread pool while the worker serves others."""
    uri = redis.uri("timeout_ms=1500")
    cookie = mint(binding_store(uri), {"user_id": 9})
    nginx.start(protected_site(nginx, uri, 1, upstream.port))
    assert get(nginx.port, "/admin", cookie=cookie).status == 200  # connection pooled
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        result = {}

        def slow():
            t = time.time()
            result["status"] = get(nginx.port, "/admin", cookie=cookie).status
            result["seconds"] = time.time() - t

        waiting = threading.Thread(target=slow)
        waiting.start()
        time.sleep(0.2)
        t = time.time()
        for _ in range(20):
            assert get(nginx.port, "/static").status == 200
        fast = time.time() - t
        waiting.join()
        assert fast < 0.5, fast
        assert result["status"] == 503
        assert result["seconds"] >= 1.2
    finally:
        redis.proc.send_signal(signal.SIGCONT)


def test_many_concurrent_requests_through_the_thread_pool(nginx, redis, upstream):
    uri = redis.uri()
    store = binding_store(uri)
    cookies = {i: mint(store, {"user_id": i}) for i in range(40)}
    nginx.start(protected_site(nginx, uri, 1, upstream.port))
    errors = []

    def client(i):
        for _ in range(5):
            r = get(nginx.port, "/admin", cookie=cookies[i])
            if r.status != 200 or r.json()["headers"]["x-user-id"] != str(i):
                errors.append((i, r.status))

    threads = [threading.Thread(target=client, args=(i,)) for i in cookies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def touch_site(nginx, uri, upstream_port):
    return f"""
    sessions_store "{uri}";
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession max_age=20;
    server {{
        listen 127.0.0.1:{nginx.port};
        location / {{
            sessions_touch on;
            sessions_require user_id;
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location /read-only {{
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
    }}"""


def test_touch_renews_a_cookie_session(nginx, upstream):
    nginx.start(touch_site(nginx, "cookie:", upstream.port))
    cookie = mint(binding_store("cookie:", max_age=20), {"user_id": 4})
    r = get(nginx.port, "/", cookie=cookie)
    assert r.status == 200 and r.header("Set-Cookie") == []  # renewed under 2 s ago
    time.sleep(2.1)  # a tenth of the max age
    assert get(nginx.port, "/read-only", cookie=cookie).header("Set-Cookie") == []
    r = get(nginx.port, "/", cookie=cookie)
    (line,) = r.header("Set-Cookie")
    assert line.startswith("mysession=") and "Max-Age=20" in line
    renewed = cookie_pair(line)
    assert renewed != cookie
    assert get(nginx.port, "/", cookie=renewed).status == 200
    # The application's own Set-Cookie for the session wins: nginx adds none.
    time.sleep(2.1)
    r = get(nginx.port, "/?set_cookie=mysession%3Dfrom-app", cookie=renewed)
    assert r.header("Set-Cookie") == ["mysession=from-app"]


def test_touch_renews_a_redis_session(nginx, redis, upstream):
    uri = redis.uri("idle_timeout=10")
    nginx.start(touch_site(nginx, uri, upstream.port))
    store = binding_store(uri, max_age=20)
    cookie = mint(store, {"user_id": 4})
    (key,) = redis.cli("--scan").split()
    time.sleep(2.2)
    ttl_before = int(redis.cli("PTTL", key))
    assert get(nginx.port, "/read-only", cookie=cookie).status == 200
    assert int(redis.cli("PTTL", key)) <= ttl_before  # read-only: nothing written
    assert get(nginx.port, "/", cookie=cookie).status == 200
    assert int(redis.cli("PTTL", key)) > 9000  # the idle timeout starts again


# ---- nginx -t refuses bad configurations, saying why ----------------------

def config_with(nginx, directives, store='"cookie:"'):
    return f"""
    sessions_store {store};
    {directives}
    server {{ listen 127.0.0.1:{nginx.port}; location / {{ return 200; }} }}"""


def test_nginx_t_accepts_a_good_configuration(nginx):
    code, out = nginx.check(config_with(nginx, f"sessions_secret_file {nginx.secret_file};",
                                        store='"redis://127.0.0.1:1/0"'))
    assert code == 0, out  # no server is dialled by the check


@pytest.mark.parametrize("case", ["missing", "world-readable", "short", "empty", "unset"])
def test_nginx_t_refuses_bad_secret_files(nginx, workdir, case):
    path = os.path.join(workdir, "bad-secrets")
    if case == "world-readable":
        write_secret_file(path, [SECRET], mode=0o644)
    elif case == "short":
        write_secret_file(path, [SECRET, "too-short"])
    elif case == "empty":
        write_secret_file(path, [])
    directive = "" if case == "unset" else f"sessions_secret_file {path};"
    code, out = nginx.check(config_with(nginx, directive))
    assert code != 0
    expected = {
        "missing": r'sessions_secret_file ".*bad-secrets" cannot be opened .*No such file',
        "world-readable": r"is readable by every user \(mode 0644\).*chmod o-rwx",
        "short": r"line 3: a secret must be at least 32 bytes, this one is 9",
        "empty": r"holds no secret",
        "unset": r"needs a sessions_secret_file",
    }[case]
    assert re.search(expected, out), out


@pytest.mark.parametrize("store,expected", [
    ('"redis://127.0.0.1:notaport/0"', r'sessions_store "redis://127.0.0.1:notaport/0": bad'),
    ('"bogus:"', r"unknown store scheme 'bogus'"),
    ('"memory:"', r"memory: store lives in one process"),
    ('"redis://127.0.0.1/0?pool=0"', r"pool"),
    ('"cookie:?codec=rot13"', r"codec"),
])
def test_nginx_t_refuses_bad_store_uris(nginx, store, expected):
    code, out = nginx.check(config_with(nginx, f"sessions_secret_file {nginx.secret_file};",
                                        store=store))
    assert code != 0
    assert re.search(expected, out), out


@pytest.mark.parametrize("cookie,expected", [
    ("sessions_cookie 'bad name';", r"is not a cookie name"),
    ("sessions_cookie s idle_timeout=30m;", r"not a cookie attribute.*store URI"),
    ("sessions_cookie s max_age=soon;", r"max_age"),
    ("sessions_cookie s same_site=none secure=off;", r"same_site=none requires secure"),
])
def test_nginx_t_refuses_bad_cookie_options(nginx, cookie, expected):
    code, out = nginx.check(config_with(nginx, f"sessions_secret_file {nginx.secret_file};"
                                        f"{cookie}"))
    assert code != 0
    assert re.search(expected, out), out


def test_the_cache_serves_a_session_for_its_ttl_then_reads_the_store(nginx, redis, upstream):
    uri = redis.uri()
    store = binding_store(uri)
    cookies = {i: mint(store, {"user_id": i}) for i in range(20)}
    nginx.start(protected_site(nginx, uri, 1, upstream.port, extra="""
        location /cached {
            sessions_cache_valid 1s;
            sessions_require user_id;
            proxy_set_header X-User-Id $session_user_id;
            proxy_pass http://127.0.0.1:%d;
        }""" % upstream.port))
    for i, cookie in cookies.items():  # each its own entry: no mix-up
        for _ in range(2):
            assert get(nginx.port, "/cached", cookie=cookie).json()["headers"]["x-user-id"] == str(i)
    redis.cli("FLUSHALL")  # the application logs everyone out
    assert get(nginx.port, "/admin", cookie=cookies[3]).status == 401  # uncached: at once
    assert get(nginx.port, "/cached", cookie=cookies[3]).status == 200  # cached: for now
    time.sleep(1.1)
    assert get(nginx.port, "/cached", cookie=cookies[3]).status == 401
    # Invalid cookies are never cached; several cookies of the name are not either.
    assert get(nginx.port, "/cached", cookie="mysession=forged").status == 401
    both = f"{cookies[1]}; {cookies[2]}"
    assert get(nginx.port, "/cached", cookie=both).status == 401


def test_a_chunked_cookie_session_gates_and_fills_variables(nginx, upstream):
    """A cookie: session over 4 KB arrives as several cookies (NAME, NAME.1,
    ...): nginx joins them like the library does. Its Cookie header passes
    nginx's default 8 KB line, so the site raises large_client_header_buffers,
    as docs/stores.md says to."""
    nginx.start(f"""
    sessions_store "cookie:";
    sessions_secret_file {nginx.secret_file};
    sessions_cookie mysession;
    server {{
        listen 127.0.0.1:{nginx.port};
        large_client_header_buffers 4 32k;
        location /admin {{
            sessions_require user_id;
            proxy_set_header X-User-Id $session_user_id;
            proxy_set_header X-Notes-Length $session_notes_length;
            proxy_pass http://127.0.0.1:{upstream.port};
        }}
    }}""")
    store = binding_store("cookie:")
    with store.begin("") as req:
        s = req.session("mysession")
        s["user_id"] = 7
        s["notes"] = "".join(random.Random(3).choice("abcdef") for _ in range(8000))
        s["notes_length"] = 8000
        lines = req.finish()
    assert len(lines) == 3, [line[:20] for line in lines]
    pairs = [cookie_pair(line) for line in lines]
    r = get(nginx.port, "/admin", cookie="; ".join(pairs))
    assert r.status == 200, r.body
    headers = r.json()["headers"]
    assert headers["x-user-id"] == "7" and headers["x-notes-length"] == "8000"
    # A chunk missing or from the wrong place: not a session, so 401.
    assert get(nginx.port, "/admin", cookie="; ".join(pairs[:2])).status == 401
    swapped = [pairs[0], pairs[2].replace("mysession.2=", "mysession.1="),
               pairs[1].replace("mysession.1=", "mysession.2=")]
    assert get(nginx.port, "/admin", cookie="; ".join(swapped)).status == 401
