"""Stores of your own, written in Python: subclass Backend.

    class DictBackend(sessions.Backend):
        def load(self, key): ...            # bytes, or None when absent or expired
        def save(self, key, data, ttl): ... # replace atomically; expire after ttl seconds
        def delete(self, key): ...          # absent is fine

    store = sessions.Store(backend=DictBackend(), secrets=[SECRET])
    sessions.register_scheme("dict", lambda uri, options: DictBackend())
    store = sessions.Store("dict://", secrets=[SECRET])

The library calls these methods from its own threads (ctypes takes the GIL
for each call), for many requests at once: make them thread-safe. An
exception raised in one never becomes an empty session: the request that
needed the store gets StoreUnavailable carrying the exception's text
(ValueTooLarge raised by save keeps its meaning). The rules a backend keeps
are those of include/sessions.h, "Custom stores".
"""
import ctypes
import itertools
import threading

from . import errors
from ._native import lib

_OK, _NOT_FOUND, _UNAVAILABLE, _TOO_LARGE = 0, 1, 9, 11
_BAD_URI, _BAD_OPTION = 5, 6


class Backend:
    """Base class of a store backend. Keys are str (base64url), data bytes."""

    def load(self, key):
        """The live record under key as bytes, or None (absent or expired).
        Raise when the backend cannot answer: None would have the session
        replaced by an empty one."""
        raise NotImplementedError

    def save(self, key, data, ttl):
        """Stores data (bytes) under key, replacing it whole, to expire ttl
        seconds from now."""
        raise NotImplementedError

    def delete(self, key):
        """Removes key (absent is not an error)."""
        raise NotImplementedError

    def move(self, old_key, new_key, data, ttl):
        """regenerate_id: saves new_key and deletes old_key. Override it to
        do both atomically, so that no reader ever sees neither."""
        self.save(new_key, data, ttl)
        self.delete(old_key)

    def start(self):
        """Called once when a store opens on the backend (not by a check)."""

    def close(self):
        """Called once when the store's last reference goes."""


# Backends in use, by the integer passed as their C state: this is what keeps
# each one alive exactly as long as its store.
_live = {}
_live_lock = threading.Lock()
_ids = itertools.count(1)


def _adopt(backend):
    if not isinstance(backend, Backend):
        raise TypeError(f"a backend is a sessions.Backend, not {type(backend).__name__}")
    with _live_lock:
        state = next(_ids)
        _live[state] = backend
    return state


def _failure(exc, fallback=_UNAVAILABLE):
    lib.sess_backend_set_error(f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
    return _TOO_LARGE if isinstance(exc, errors.ValueTooLarge) else fallback


def _key(raw):
    return raw.decode("ascii")


def _bytes(data, length):
    return ctypes.string_at(data, length) if length else b""


_LOAD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64,
                         ctypes.c_void_p)
_SAVE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                         ctypes.c_size_t, ctypes.c_int64, ctypes.c_int64)
_ERASE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)
_MOVE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                         ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_int64)
_START = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_CLOSE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_FACTORY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                            ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p),
                            ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                            ctypes.POINTER(ctypes.c_void_p))


class BackendOps(ctypes.Structure):
    """struct sess_backend_ops."""
    _fields_ = [("size", ctypes.c_size_t), ("load", _LOAD), ("save", _SAVE), ("erase", _ERASE),
                ("move", _MOVE), ("start", _START), ("close", _CLOSE)]


# Each callback catches everything: an exception must never unwind into C
# (ctypes would print it and return 0, which is SESS_OK).
@_LOAD
def _load(state, key, now, sink):
    try:
        data = _live[state].load(_key(key))
        if data is None:
            return _NOT_FOUND
        data = bytes(data)
        lib.sess_sink_write(sink, data, len(data))  # past max_data_bytes: a foreign record
        return _OK
    except BaseException as exc:  # noqa: B902 (nothing may cross into C)
        return _failure(exc)


@_SAVE
def _save(state, key, data, length, now, ttl):
    try:
        _live[state].save(_key(key), _bytes(data, length), ttl)
        return _OK
    except BaseException as exc:  # noqa: B902
        return _failure(exc)


@_ERASE
def _erase(state, key):
    try:
        _live[state].delete(_key(key))
        return _OK
    except BaseException as exc:  # noqa: B902
        return _failure(exc)


@_MOVE
def _move(state, old_key, new_key, data, length, now, ttl):
    try:
        _live[state].move(_key(old_key), _key(new_key), _bytes(data, length), ttl)
        return _OK
    except BaseException as exc:  # noqa: B902
        return _failure(exc)


@_START
def _start(state):
    try:
        _live[state].start()
        return _OK
    except BaseException as exc:  # noqa: B902
        return _failure(exc)


@_CLOSE
def _close(state):
    with _live_lock:
        backend = _live.pop(state, None)
    try:
        if backend is not None:
            backend.close()
    except BaseException:  # noqa: B902 (close has no way to report)
        pass


OPS = BackendOps(ctypes.sizeof(BackendOps), _load, _save, _erase, _move, _start, _close)

_factories = []  # registered for good: the library keeps their pointers


def register_scheme(scheme, factory, options=()):
    """Makes Store("scheme://...") open a backend made by factory(uri,
    options), where options is the list of (name, value) pairs of the URI's
    query and the Store's keyword options that the library did not take as
    general options. Raise ValueError in the factory to refuse them.
    `options` names the option names the factory takes. Call at start-up."""

    @_FACTORY
    def trampoline(_state, uri, names, values, count, ops_out, state_out):
        try:
            pairs = [(names[i].decode("utf-8"), values[i].decode("utf-8")) for i in range(count)]
            backend = factory(uri.decode("utf-8"), pairs)
            state_out[0] = _adopt(backend)
            ops_out[0] = ctypes.cast(ctypes.pointer(OPS), ctypes.c_void_p).value
            return _OK
        except errors.InvalidInput as exc:
            return _failure(exc, exc.code if exc.code in (_BAD_URI, _BAD_OPTION) else _BAD_URI)
        except BaseException as exc:  # noqa: B902
            return _failure(exc, _BAD_OPTION if isinstance(exc, (ValueError, KeyError))
                            else _BAD_URI)

    names = [name.encode("utf-8") for name in options] + [None]
    option_array = (ctypes.c_char_p * len(names))(*names)
    _factories.append((trampoline, option_array))
    errors.check(lib.sess_register_scheme(scheme.encode("utf-8"), ctypes.cast(trampoline, ctypes.c_void_p),
                                    None, ctypes.cast(option_array, ctypes.c_void_p)))


def open_store(backend, config, handle_ref):
    """sess_store_open_backend for Store(backend=...): returns the rc."""
    state = _adopt(backend)
    return lib.sess_store_open_backend(ctypes.addressof(OPS), state, config, handle_ref)
