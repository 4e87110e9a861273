import pytest

import sessions
from conftest import SECRET


@pytest.fixture(params=["cookie:", "memory:"])
def store(request):
    with sessions.Store(request.param, secrets=[SECRET]) as s:
        yield s


def cycle(store, header, handler):
    with store.begin(header) as request:
        handler(request.session("sid"))
        cookies = request.finish()
    return "; ".join(c.split(";")[0] for c in cookies) or header


VALUES = {
    "none": None, "true": True, "false": False, "zero": 0, "int": -42,
    "max": 2 ** 63 - 1, "min": -(2 ** 63), "float": 2.5, "tiny": 5e-324, "str": "Zoë ✓",
    "empty": "", "bytes": b"\x00\xff\x10", "list": [1, "two", 3.0, None, [True]],
    "dict": {"a": {"b": [1, 2]}, "": "empty key"},
    "nested bytes": [b"\x00", {"raw": b"\xff" * 300, "n": -(2 ** 63)}, 1.0, "x" * 300],
}


def test_every_type_round_trips_exactly(store):
    header = cycle(store, None, lambda s: s.update(VALUES))
    seen = {}
    cycle(store, header, lambda s: seen.update(dict(s)))
    assert seen == VALUES
    for key, value in VALUES.items():
        assert type(seen[key]) is type(value), key


def test_mapping_protocol_and_metadata(store):
    def first(s):
        assert s.is_new and s.status == "new" and len(s) == 0
        s["a"] = 1
        s["b"] = 2
        del s["a"]
        with pytest.raises(KeyError):
            del s["missing"]
        assert list(s) == ["b"] and "b" in s and "a" not in s and 3 not in s
        s.add_flash("saved")
        s.add_flash({"level": "info"}, kind="notice")
    header = cycle(store, None, first)

    def second(s):
        assert not s.is_new and s.status == "valid"
        assert s.flashes() == ["saved"]
        assert s.flashes("notice") == [{"level": "info"}]
        assert s.flashes() == []
        assert s.get("missing", "default") == "default"
    cycle(store, header, second)


def test_bad_values_are_refused_with_clear_errors(store):
    with store.begin() as request:
        s = request.session("sid")
        with pytest.raises(TypeError):
            s[1] = "x"
        with pytest.raises(TypeError):
            s["set"] = {1, 2}
        with pytest.raises(TypeError):
            s["int keys"] = {1: "x"}
        with pytest.raises(ValueError):
            s["nan"] = float("nan")
        with pytest.raises(OverflowError):
            s["big"] = 2 ** 64
        with pytest.raises(sessions.InvalidInput):
            s[""] = 1
        with pytest.raises(sessions.InvalidInput):
            s["k" * 256] = 1
        with pytest.raises(ValueError):
            deep = []
            for _ in range(30):
                deep = [deep]
            s["deep"] = deep


def test_malformed_and_tampered_cookies_give_new_sessions(store):
    header = cycle(store, None, lambda s: s.update(user=1))
    name, value = header.split("=", 1)
    for bad, status in ((f"sid={value[:-4]}AAAA", "tampered"), ("sid=%%%", "malformed"),
                        ("sid=" + "A" * 5000, "malformed")):
        with store.begin(bad) as request:
            s = request.session("sid")
            assert s.is_new and "user" not in s
            assert s.status in (status, "malformed", "tampered")


def test_errors_by_family():
    with pytest.raises(sessions.InvalidInput):
        sessions.Store("nosuchscheme:", secrets=[SECRET])
    with pytest.raises(sessions.InvalidInput):
        sessions.Store("cookie:", secrets=["short"])
    with pytest.raises(sessions.InvalidInput):
        sessions.Store("cookie:", secrets=[SECRET], same_site="sometimes")
    with pytest.raises(sessions.StoreUnavailable):
        sessions.Store("redis://127.0.0.1:1?connect_timeout_ms=200", secrets=[SECRET])
    with sessions.Store("cookie:", secrets=[SECRET]) as store:
        with pytest.raises(sessions.InvalidInput):
            store.begin("a=" + "x" * 70000)
        with store.begin() as request:
            s = request.session("sid")
            s["big"] = b"x" * 20000  # past max_chunks=3 (compress is off on cookie:)
            with pytest.raises(sessions.CookieTooLarge):
                request.finish()
            with pytest.raises(sessions.StateError):
                s["after"] = 1


def test_cookie_options_and_regenerate_destroy():
    options = sessions.CookieOptions(path="/app", secure=True, same_site="strict", max_age=3600)
    with sessions.Store("memory:", secrets=[SECRET], cookie=options) as store:
        with store.begin() as request:
            request.session("sid")["user"] = 1
            (cookie,) = request.finish()
        assert "Path=/app" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
        assert "Max-Age=3600" in cookie
        header = cookie.split(";")[0]
        with store.begin(header) as request:
            s = request.session("sid")
            old = s.id
            s.regenerate_id()
            (cookie,) = request.finish()
        with store.begin(cookie.split(";")[0]) as request:
            s = request.session("sid")
            assert s["user"] == 1 and s.id != old
            s.destroy()
            (cookie,) = request.finish()
        assert "Max-Age=0" in cookie


def test_closed_handles_refuse_use():
    store = sessions.Store("cookie:", secrets=[SECRET])
    request = store.begin()
    s = request.session("sid")
    request.close()
    with pytest.raises(sessions.StateError):
        s["x"] = 1
    store.close()
    with pytest.raises(sessions.StateError):
        store.begin().session("sid")


def test_one_store_from_many_threads():
    import threading
    errors_seen = []
    with sessions.Store("memory:", secrets=[SECRET]) as store:
        def worker(t):
            try:
                header = None
                for i in range(300):
                    with store.begin(header) as request:
                        s = request.session("sid")
                        assert s.get("count", 0) == i and s.get("thread", t) == t
                        s["count"] = i + 1
                        s["thread"] = t
                        cookies = request.finish()
                    header = cookies[0].split(";")[0]
            except Exception as e:  # reported below, in the main thread
                errors_seen.append(e)
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    assert errors_seen == []
