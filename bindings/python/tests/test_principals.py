"""Principals (listing a user's sessions, logging out everywhere) and CSRF
tokens, through the binding: include/sessions.h, "Principals" and "CSRF
tokens"."""
import re

import pytest

import sessions
from conftest import SECRET


@pytest.fixture(params=["memory:", "file", "sqlite"])
def indexed_store(request, tmp_path):
    uri = {"memory:": "memory:", "file": f"file://{tmp_path}/sessions",
           "sqlite": f"sqlite://{tmp_path}/sessions.db"}[request.param]
    if request.param == "file":
        (tmp_path / "sessions").mkdir()
    with sessions.Store(uri, secrets=[SECRET]) as s:
        yield s


@pytest.fixture(params=["cookie:", "memory:"])
def store(request):
    with sessions.Store(request.param, secrets=[SECRET]) as s:
        yield s


def header_of(cookies):
    return "; ".join(c.split(";")[0] for c in cookies)


def login(store, principal, device):
    """A browser logs in as `principal`: returns its Cookie: header."""
    with store.begin() as request:
        s = request.session("sid")
        s.regenerate_id()
        s.principal = principal
        s.set_metadata("device", device)
        s["user"] = principal
        return header_of(request.finish())


def status_of(store, header):
    with store.begin(header) as request:
        s = request.session("sid")
        return s.status, s.get("user")


def test_principal_is_set_kept_and_cleared(store):
    with store.begin() as request:
        s = request.session("sid")
        assert s.principal is None
        s.principal = "user:42"
        assert s.principal == "user:42"
        header = header_of(request.finish())
    with store.begin(header) as request:
        s = request.session("sid")
        assert s.status == "valid" and s.principal == "user:42"
        s.principal = None  # maps to NULL: unties
        assert s.principal is None
        header = header_of(request.finish()) or header
    with store.begin(header) as request:
        s = request.session("sid")
        assert s.principal is None
        s.principal = "user:7"
        s.principal = ""  # as in C: "" unties too
        assert s.principal is None


def test_bad_principals_and_metadata_are_refused(store):
    with store.begin() as request:
        s = request.session("sid")
        with pytest.raises(TypeError):
            s.principal = 42
        with pytest.raises(sessions.InvalidInput):
            s.principal = "x" * 256
        with pytest.raises(sessions.InvalidInput):
            s.set_metadata("k" * 65, "v")
        with pytest.raises(sessions.InvalidInput):
            s.set_metadata("k", "v" * 1025)
        with pytest.raises(TypeError):
            s.set_metadata("k", 1)
        with pytest.raises(TypeError):
            store.end_sessions(None)


def test_metadata_set_read_and_removed(store):
    with store.begin() as request:
        s = request.session("sid")
        s.principal = "user:1"
        s.set_metadata("user_agent", "Firefox ✓")
        s.set_metadata("ip", "192.0.2.1")
        assert s.get_metadata("user_agent") == "Firefox ✓"
        assert s.get_metadata("missing") is None
        assert s.get_metadata("missing", "n/a") == "n/a"
        s.set_metadata("ip", None)
        assert s.get_metadata("ip") is None
        header = header_of(request.finish())
    with store.begin(header) as request:
        s = request.session("sid")
        assert s.get_metadata("user_agent") == "Firefox ✓" and s.get_metadata("ip") is None


def test_three_sessions_of_one_principal_are_listed(indexed_store):
    store = indexed_store
    headers = [login(store, "user:42", device) for device in ("phone", "laptop", "tablet")]
    login(store, "user:43", "other")
    listed = store.list_sessions("user:42")
    assert len(listed) == 3
    for info in listed:
        assert set(info) == {"id", "created", "last_seen", "metadata"}
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", info["id"])
        assert isinstance(info["created"], int) and info["created"] > 1_600_000_000
        assert info["last_seen"] >= info["created"]
    assert sorted(info["metadata"]["device"] for info in listed) == ["laptop", "phone", "tablet"]
    assert all(info["metadata"] == {"device": info["metadata"]["device"]} for info in listed)
    # Each browser's session shows up under its own handle, and no handle is a cookie.
    handles = set()
    for header in headers:
        with store.begin(header) as request:
            s = request.session("sid")
            assert s.status == "valid" and s.handle not in handles
            handles.add(s.handle)
            assert s.handle not in header
    assert handles == {info["id"] for info in listed}
    assert store.list_sessions("nobody") == []


def test_end_all_but_the_current_session(indexed_store):
    store = indexed_store
    headers = [login(store, "user:42", device) for device in ("phone", "laptop", "tablet")]
    other = login(store, "user:43", "other")
    with store.begin(headers[1]) as request:
        current = request.session("sid")
        assert store.end_sessions("user:42", keep=current) == 2
        kept = header_of(request.finish()) or headers[1]
    # Stores with an index delete the records: the ended sessions load new and empty.
    assert status_of(store, headers[0]) == ("unknown_id", None)
    assert status_of(store, headers[2]) == ("unknown_id", None)
    assert status_of(store, kept) == ("valid", "user:42")
    assert status_of(store, other) == ("valid", "user:43")
    assert [info["metadata"]["device"] for info in store.list_sessions("user:42")] == ["laptop"]
    assert store.end_sessions("user:42") == 1  # keep=None: all of them
    assert status_of(store, kept) == ("unknown_id", None)
    assert store.list_sessions("user:42") == []


def test_end_one_session_by_its_handle(indexed_store):
    store = indexed_store
    headers = [login(store, "user:42", device) for device in ("phone", "laptop", "tablet")]
    with store.begin(headers[0]) as request:
        handle = request.session("sid").handle
    assert store.end_session("user:42", handle) is True
    assert store.end_session("user:42", handle) is False  # gone already
    assert store.end_session("user:43", store.list_sessions("user:42")[0]["id"]) is False
    assert status_of(store, headers[0])[0] == "unknown_id"
    assert status_of(store, headers[1]) == ("valid", "user:42")
    assert status_of(store, headers[2]) == ("valid", "user:42")
    assert len(store.list_sessions("user:42")) == 2


def test_the_cookie_store_with_revocation_ends_sessions_by_stamp():
    with sessions.Store("cookie:", secrets=[SECRET], revocation="memory:") as store:
        phone, laptop = login(store, "user:42", "phone"), login(store, "user:42", "laptop")
        other = login(store, "user:43", "other")
        with store.begin(laptop) as request:
            current = request.session("sid")
            assert current.handle == ""  # cookie: sessions have no handle
            assert store.end_sessions("user:42", keep=current) == -1  # stamps cannot count
            laptop = header_of(request.finish())  # the kept session is re-stamped
        assert laptop
        assert status_of(store, phone) == ("revoked", None)
        assert status_of(store, laptop) == ("valid", "user:42")
        assert status_of(store, other) == ("valid", "user:43")
        assert status_of(store, login(store, "user:42", "new phone")) == ("valid", "user:42")
        assert "revoked" in sessions.core.STATUS_NAMES


def test_stores_that_revoke_by_stamps_cannot_list():
    with sessions.Store("cookie:", secrets=[SECRET], revocation="memory:") as store:
        login(store, "user:42", "phone")
        with pytest.raises(sessions.Unsupported):
            store.list_sessions("user:42")
        with pytest.raises(sessions.Unsupported):
            store.end_session("user:42", "A" * 22)
    with sessions.Store("cookie:", secrets=[SECRET]) as store:  # no revocation store
        with pytest.raises(sessions.Unsupported):
            store.end_sessions("user:42")


def test_csrf_token_verifies(store):
    with store.begin() as request:
        s = request.session("sid")
        token = s.csrf_token()
        assert re.fullmatch(r"[A-Za-z0-9_-]{86}", token)
        assert s.csrf_token() != token  # masked afresh on every call (BREACH)
        assert s.verify_csrf(token) and s.verify_csrf(token.encode())
        assert s.verify_csrf(s.csrf_token())
        header = header_of(request.finish())  # the first token made the session save
    assert header
    with store.begin(header) as request:
        s = request.session("sid")
        assert s.status == "valid" and s.verify_csrf(token)  # still valid on later requests


def test_forged_truncated_foreign_and_stale_tokens_fail(store):
    with store.begin() as request:
        other_token = request.session("sid").csrf_token()
    with store.begin() as request:
        s = request.session("sid")
        token = s.csrf_token()
        flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
        for bad in (None, "", b"", token[:-1], token[1:], token + "A", flipped, "x" * 86,
                    other_token, "é" * 86, b"\x00" * 86, token.encode() + b"\x00"):
            assert s.verify_csrf(bad) is False, bad
        with pytest.raises(TypeError):
            s.verify_csrf(86)
        assert s.verify_csrf(token)
        s.regenerate_id()  # login: a new secret
        assert not s.verify_csrf(token)
        fresh = s.csrf_token()
        assert s.verify_csrf(fresh)
        s.destroy()
        assert not s.verify_csrf(fresh)


def test_csrf_error_is_mapped_by_code():
    with pytest.raises(sessions.CsrfError) as info:
        sessions.errors.check(17)
    assert info.value.code == 17 and isinstance(info.value, sessions.SessionsError)
