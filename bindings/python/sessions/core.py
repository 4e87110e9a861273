"""The Pythonic API over the C ABI: Store, Request, Session, CookieOptions."""
import ctypes
import json
import math
import threading
import weakref
from collections.abc import MutableMapping

from . import _msgpack, errors
from .errors import check as _check
from .backend import open_store
from ._native import CONFIG_P, LIST_P, REQUEST_P, SESSION_P, STORE_P, SessionInfo, Value, lib

_OK, _NOT_FOUND, _NO_MEMORY, _CSRF = 0, 1, 4, 17
_NIL, _BOOL, _INT, _DOUBLE, _STRING, _BYTES, _ARRAY, _MAP = range(8)
_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1

STATUS_NAMES = ("new", "valid", "expired", "tampered", "unknown_key", "malformed", "unknown_id",
                "revoked")


def _key(key):
    if not isinstance(key, str):
        raise TypeError(f"session keys are str, not {type(key).__name__}")
    return key.encode("utf-8")


def _text(value, what):
    """A str argument as UTF-8 (principals, metadata, handles)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} is str, not {type(value).__name__}")
    return value.encode("utf-8")


def _take(ptr, length):
    """Copies a buffer the library allocated, then frees it with sess_free."""
    try:
        return ctypes.string_at(ptr, length.value)
    finally:
        lib.sess_free(ptr)


class CookieOptions:
    """Cookie attributes for a store (None leaves the library's default:
    Path=/, HttpOnly, SameSite=Lax, 30 days)."""

    def __init__(self, path=None, domain=None, max_age=None, secure=None, http_only=None,
                 same_site=None, partitioned=None):
        self.path, self.domain, self.max_age = path, domain, max_age
        self.secure, self.http_only = secure, http_only
        self.same_site, self.partitioned = same_site, partitioned

    def options(self):
        out = []
        for name in ("path", "domain", "max_age", "secure", "http_only", "same_site",
                     "partitioned"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "true" if value else "false"
            out.append((name, str(int(value)) if isinstance(value, float) else str(value)))
        return out


class Store:
    """A store opened by URI ("cookie:", "redis://...", ...), or on a
    Backend of your own (backend=...), shared by all threads. Close it (or
    use `with`) to release it; requests still open keep it alive."""

    def __init__(self, uri=None, secrets=(), cookie=None, backend=None, **options):
        if (uri is None) == (backend is None):
            raise TypeError("give a store URI or backend=, not both")
        if isinstance(secrets, (str, bytes)):
            secrets = [secrets]
        config = CONFIG_P()
        _check(lib.sess_config_new(ctypes.byref(config)))
        try:
            for secret in secrets:
                raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
                _check(lib.sess_config_add_secret(config, raw, len(raw)))
            pairs = (cookie.options() if cookie else []) + [
                (k, ("true" if v else "false") if isinstance(v, bool) else str(v))
                for k, v in options.items()]
            for name, value in pairs:
                _check(lib.sess_config_set(config, name.encode(), value.encode("utf-8")))
            handle = STORE_P()
            if backend is not None:
                _check(open_store(backend, config, ctypes.byref(handle)))
            else:
                _check(lib.sess_store_open(uri.encode("utf-8"), config, ctypes.byref(handle)))
        finally:
            lib.sess_config_free(config)
        self._handle = handle
        self._open = handle  # None once closed; read on every request
        self._finalizer = weakref.finalize(self, lib.sess_store_close, handle)

    def begin(self, cookie_header=None):
        """A request for one HTTP request's Cookie: header (str or bytes)."""
        return Request(self, cookie_header)

    # -- a principal's sessions (include/sessions.h, "Principals")
    def list_sessions(self, principal):
        """The live sessions of `principal`, most recently seen first: dicts
        with "id" (the session's handle, as Session.handle: not a cookie),
        "created", "last_seen" (Unix seconds) and "metadata" (a dict of str).
        Unsupported on stores that revoke by stamps (cookie:, memcached:,
        custom stores): they keep no index."""
        p = _text(principal, "a principal")
        out = LIST_P()
        _check(lib.sess_store_list_sessions(self._open or self.handle, p, ctypes.byref(out)))
        try:
            info = SessionInfo()
            sessions = []
            for i in range(lib.sess_session_list_count(out)):
                _check(lib.sess_session_list_get(out, i, ctypes.byref(info)))
                sessions.append({"id": info.handle.decode("ascii"), "created": info.created,
                                 "last_seen": info.last_seen,
                                 "metadata": json.loads(info.metadata_json or b"{}")})
            return sessions
        finally:
            lib.sess_session_list_free(out)

    def end_sessions(self, principal, keep=None):
        """Ends every session of `principal` but `keep` (a Session, typically
        the current request's: "log out my other devices"; None ends them
        all). Returns how many were ended, or -1 on stores that revoke by
        stamps (the ended sessions then load as "revoked"). Unsupported on
        cookie: without revocation=."""
        p = _text(principal, "a principal")
        if keep is not None and not isinstance(keep, Session):
            raise TypeError(f"keep is a Session or None, not {type(keep).__name__}")
        ended = ctypes.c_int64(0)
        _check(lib.sess_store_end_sessions(self._open or self.handle, p,
                                           keep._h() if keep is not None else None,
                                           ctypes.byref(ended)))
        return ended.value

    def end_session(self, principal, handle):
        """Ends the one session of `principal` listed under `handle` (the "id"
        of list_sessions): True, or False when there is none. Unsupported on
        stores that revoke by stamps."""
        rc = _check(lib.sess_store_end_session(self._open or self.handle,
                                               _text(principal, "a principal"),
                                               _text(handle, "a session handle")))
        return rc == _OK

    def close(self):
        self._open = None
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        if self._open is None:
            raise errors.StateError(14, "the store is closed")
        return self._open


_free_request = lib.sess_request_free


class _Scratch(threading.local):
    """Out-parameters for the C calls, made once per thread: creating ctypes
    objects on every call would cost more than the calls themselves."""

    def __init__(self):
        self.kind, self.int, self.double = ctypes.c_int(), ctypes.c_int64(), ctypes.c_double()
        self.ptr, self.len = ctypes.c_void_p(), ctypes.c_size_t()
        self.kind_ref, self.int_ref = ctypes.byref(self.kind), ctypes.byref(self.int)
        self.double_ref = ctypes.byref(self.double)
        self.ptr_ref, self.len_ref = ctypes.byref(self.ptr), ctypes.byref(self.len)
        self.value = Value()
        self.value_ref = ctypes.byref(self.value)


_scratch = _Scratch()


class Request:
    """One HTTP request: its sessions and, after finish(), its Set-Cookie
    values. Belongs to one thread. Close it (or use `with`) to free it."""

    _handle = None  # so that __del__ works on a half-built request

    def __init__(self, store, cookie_header=None):
        if type(cookie_header) is str:
            data = cookie_header.encode("latin-1")
        elif cookie_header is None:
            data = b""
        elif isinstance(cookie_header, (bytes, str)):
            data = bytes(cookie_header) if isinstance(cookie_header, bytes) else \
                cookie_header.encode("latin-1")
        else:
            raise TypeError("cookie_header is str, bytes or None")
        handle = REQUEST_P()
        rc = lib.sess_request_begin(data, len(data), ctypes.byref(handle))
        if rc:
            _check(rc)
        self._store = store  # kept alive while the request is
        self._handle = handle
        self._sessions = {}

    def session(self, name="session", store=None):
        """The session under cookie `name` (loaded on first use)."""
        if name in self._sessions:
            return self._sessions[name]
        store = store or self._store
        out = SESSION_P()
        rc = lib.sess_request_session(self._live(), store._open or store.handle,
                                      name.encode("utf-8"), ctypes.byref(out))
        if rc:
            _check(rc)
        session = Session(self, out)
        self._sessions[name] = session
        return session

    def finish(self):
        """Saves what changed; returns the Set-Cookie header values. Raises
        (having saved the other sessions) when one could not be saved."""
        rc = lib.sess_request_finish(self._live())
        cookies = self.set_cookies()
        if rc:
            _check(rc)
        return cookies

    def set_cookies(self):
        handle = self._live()
        sc = _scratch
        out = []
        for i in range(lib.sess_request_set_cookie_count(handle)):
            ptr = lib.sess_request_set_cookie(handle, i, sc.len_ref)
            out.append(ctypes.string_at(ptr, sc.len.value).decode("latin-1"))
        return out

    def close(self):
        """Frees the native request (idempotent); its sessions become unusable."""
        handle, self._handle = self._handle, None
        if handle:
            for session in self._sessions.values():
                session._handle = None
            _free_request(handle)

    # A request that was never closed is freed when collected. (Not a
    # weakref.finalize: creating one per request costs microseconds.)
    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._handle is None

    def _live(self):
        if self._handle is None:
            raise errors.StateError(14, "the request is closed")
        return self._handle


class Session(MutableMapping):
    """A session's values as a mapping of str keys to None, bool, int, float,
    str, bytes, list and dict (lists and dicts of JSON types)."""

    def __init__(self, request, handle):
        self._request = request
        self._handle = handle

    def _h(self):
        if self._handle is None:
            raise errors.StateError(14, "the request of this session is closed")
        return self._handle

    # -- metadata
    @property
    def name(self):
        return lib.sess_session_name(self._h()).decode("utf-8")

    @property
    def id(self):
        return lib.sess_session_id(self._h()).decode("ascii")

    @property
    def status(self):
        code = lib.sess_session_status(self._h())
        if code < len(STATUS_NAMES):
            return STATUS_NAMES[code]
        return lib.sess_status_name(code).decode("ascii")  # a status newer than this binding

    @property
    def is_new(self):
        return bool(lib.sess_session_is_new(self._h()))

    @property
    def modified(self):
        return bool(lib.sess_session_is_modified(self._h()))

    @property
    def created(self):
        return lib.sess_session_created(self._h())

    @property
    def last_seen(self):
        return lib.sess_session_last_seen(self._h())

    def regenerate_id(self):
        _check(lib.sess_session_regenerate_id(self._h()))

    def destroy(self):
        _check(lib.sess_session_destroy(self._h()))

    def touch(self):
        """Renew the expiry at finish() without changing any value (rolling sessions)."""
        _check(lib.sess_session_touch(self._h()))

    def set_option(self, name, value):
        if isinstance(value, bool):
            value = "true" if value else "false"
        _check(lib.sess_session_set_option(self._h(), name.encode(), str(value).encode("utf-8")))

    # -- principal (include/sessions.h, "Principals")
    @property
    def principal(self):
        """Whom the session belongs to ("user:42"), or None. Set it at login,
        after regenerate_id(); None (or "") unties it."""
        value = lib.sess_session_principal(self._h())
        return value.decode("utf-8") if value else None

    @principal.setter
    def principal(self, principal):
        h = self._h()
        _check(lib.sess_session_set_principal(
            h, None if principal is None else _text(principal, "a principal")))

    @property
    def handle(self):
        """The non-secret handle list_sessions shows for this session ("id"
        there), to mark "this device"; "" on cookie: and before the first save."""
        return lib.sess_session_handle(self._h()).decode("ascii")

    def set_metadata(self, key, value):
        """Sets what list_sessions shows for the session (a user agent, an
        address, a label; up to 16 str entries); None removes the entry."""
        h = self._h()
        _check(lib.sess_session_set_metadata(
            h, _text(key, "a metadata key"),
            None if value is None else _text(value, "a metadata value")))

    def get_metadata(self, key, default=None):
        value = ctypes.c_char_p()
        if _check(lib.sess_session_metadata(self._h(), _text(key, "a metadata key"),
                                            ctypes.byref(value))) == _NOT_FOUND:
            return default
        return value.value.decode("utf-8")

    # -- CSRF tokens (include/sessions.h, "CSRF tokens")
    def csrf_token(self):
        """A token for a form field (csrf_token) or an X-CSRF-Token header;
        different on every call, each one valid until regenerate_id() or
        destroy(). The first call makes the session save at finish()."""
        sc = _scratch
        _check(lib.sess_csrf_token(self._h(), sc.ptr_ref, sc.len_ref))
        return ctypes.string_at(sc.ptr.value, sc.len.value).decode("ascii")

    def verify_csrf(self, token):
        """Whether `token` (str, bytes or None) is one of this session's."""
        h = self._h()
        if token is None:
            return False
        if isinstance(token, str):
            raw = token.encode("utf-8", "replace")
        elif isinstance(token, (bytes, bytearray, memoryview)):
            raw = bytes(token)
        else:
            raise TypeError(f"a CSRF token is str or bytes, not {type(token).__name__}")
        if not raw:
            return False
        rc = lib.sess_csrf_verify(h, raw, len(raw))
        if rc == _CSRF:
            return False
        _check(rc)
        return True

    # -- values
    def __getitem__(self, key):
        h = self._handle
        if h is None:
            self._h()
        if type(key) is not str:
            _key(key)
        k = key.encode("utf-8")
        sc = _scratch
        v = sc.value
        rc = lib.sess_get(h, k, sc.value_ref)  # one call for any scalar
        if rc:
            if rc == _NOT_FOUND:
                raise KeyError(key)
            _check(rc)
        kind = v.type
        if kind == _STRING:
            return ctypes.string_at(v.data, v.len).decode("utf-8")
        if kind == _INT:
            return v.integer
        if kind == _NIL:
            return None
        if kind == _BOOL:
            return bool(v.boolean)
        if kind == _DOUBLE:
            return v.real
        if kind == _BYTES:
            return ctypes.string_at(v.data, v.len)
        ptr, length = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.sess_get_msgpack(h, k, ctypes.byref(ptr), ctypes.byref(length)))
        return _msgpack.unpack(_take(ptr, length))

    def __setitem__(self, key, value):
        h = self._handle
        if h is None:
            self._h()
        k = key.encode("utf-8") if type(key) is str else _key(key)
        if value is None:
            rc = lib.sess_set_nil(h, k)
        elif value is True or value is False:
            rc = lib.sess_set_bool(h, k, int(value))
        elif type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise OverflowError("session integers are 64-bit")
            rc = lib.sess_set_int(h, k, value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("session floats must be finite")
            rc = lib.sess_set_double(h, k, value)
        elif isinstance(value, str):
            raw = value.encode("utf-8")
            rc = lib.sess_set_str(h, k, raw, len(raw))
        elif isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            rc = lib.sess_set_bytes(h, k, raw, len(raw))
        elif isinstance(value, (list, tuple, dict)):
            raw = _msgpack.pack(value)  # exact: bytes inside stay bytes
            rc = lib.sess_set_msgpack(h, k, raw, len(raw))
        else:
            raise TypeError(f"session values are None, bool, int, float, str, bytes, list or "
                            f"dict, not {type(value).__name__}")
        if rc:
            _check(rc)

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        _check(lib.sess_delete(self._h(), _key(key)))

    def __contains__(self, key):
        if not isinstance(key, str):
            return False
        kind = ctypes.c_int()
        return _check(lib.sess_get_type(self._h(), _key(key), ctypes.byref(kind))) == _OK

    def __len__(self):
        return lib.sess_count(self._h())

    def __iter__(self):
        h = self._h()
        keys = []
        for i in range(lib.sess_count(h)):
            ptr, length = ctypes.c_void_p(), ctypes.c_size_t()
            _check(lib.sess_key_at(h, i, ctypes.byref(ptr), ctypes.byref(length)))
            keys.append(ctypes.string_at(ptr, length.value).decode("utf-8"))
        return iter(keys)

    def clear(self):
        _check(lib.sess_clear(self._h()))

    # -- flashes
    def add_flash(self, value, kind="_flash"):
        raw = _to_json(value)
        _check(lib.sess_add_flash_json(self._h(), kind.encode("utf-8"), raw, len(raw)))

    def flashes(self, kind="_flash"):
        """The flashes of `kind`, removed from the session (read once)."""
        ptr, length = ctypes.c_void_p(), ctypes.c_size_t()
        _check(lib.sess_flashes_json(self._h(), kind.encode("utf-8"), ctypes.byref(ptr),
                                     ctypes.byref(length)))
        return json.loads(_take(ptr, length))

    def __repr__(self):
        return f"<Session {self.name!r} {self.status} {dict(self.items())!r}>"


def _to_json(value):
    """JSON for lists and dicts; refuses what JSON would change silently."""
    def check(v, depth=0):
        if depth > 24:
            raise ValueError("session values nest at most 24 levels")
        if isinstance(v, (bytes, bytearray, memoryview)):
            raise TypeError("bytes inside lists and dicts do not round-trip; store them "
                            "under a key of their own")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("session floats must be finite")
        if isinstance(v, dict):
            for key, item in v.items():
                if not isinstance(key, str):
                    raise TypeError("dict keys in a session are str")
                check(item, depth + 1)
        elif isinstance(v, (list, tuple)):
            for item in v:
                check(item, depth + 1)
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            raise TypeError(f"{type(v).__name__} cannot be stored in a session")
    check(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
