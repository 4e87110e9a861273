"""The C ABI of libsessions, declared for ctypes.

Every function of include/sessions.h is declared here with its argument and
result types; handles are distinct pointer types, so a request cannot be
passed where a store is expected. The library is found, in order, through
$LIBSESSIONS_PATH, next to this package, and the system's library path; when
none works the error lists every place tried.
"""
import ctypes
import ctypes.util
import os

ABI_MAJOR = 0  # the SESS_VERSION_MAJOR this binding was written for


class _Handle(ctypes.Structure):
    """Base of the opaque handle types (never instantiated)."""


class StoreHandle(_Handle):
    pass


class ConfigHandle(_Handle):
    pass


class RequestHandle(_Handle):
    pass


class SessionHandle(_Handle):
    pass


class SessionListHandle(_Handle):
    pass


class Value(ctypes.Structure):
    """struct sess_value."""
    _fields_ = [("type", ctypes.c_int), ("boolean", ctypes.c_int), ("integer", ctypes.c_int64),
                ("real", ctypes.c_double), ("data", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class SessionInfo(ctypes.Structure):
    """struct sess_session_info (its strings borrowed from the list)."""
    _fields_ = [("handle", ctypes.c_char_p), ("created", ctypes.c_int64),
                ("last_seen", ctypes.c_int64), ("metadata_json", ctypes.c_char_p)]


STORE_P = ctypes.POINTER(StoreHandle)
CONFIG_P = ctypes.POINTER(ConfigHandle)
REQUEST_P = ctypes.POINTER(RequestHandle)
SESSION_P = ctypes.POINTER(SessionHandle)
LIST_P = ctypes.POINTER(SessionListHandle)

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_size_t = ctypes.c_size_t
c_int64 = ctypes.c_int64
P = ctypes.POINTER

# name: (restype, argtypes)
_SIGNATURES = {
    "sess_version_number": (ctypes.c_uint, []),
    "sess_version_string": (c_char_p, []),
    "sess_strerror": (c_char_p, [c_int]),
    "sess_last_error": (c_char_p, []),
    "sess_status_name": (c_char_p, [c_int]),
    "sess_free": (None, [c_void_p]),
    "sess_config_new": (c_int, [P(CONFIG_P)]),
    "sess_config_free": (None, [CONFIG_P]),
    "sess_config_add_secret": (c_int, [CONFIG_P, c_void_p, c_size_t]),
    "sess_config_set": (c_int, [CONFIG_P, c_char_p, c_char_p]),
    "sess_store_open": (c_int, [c_char_p, CONFIG_P, P(STORE_P)]),
    "sess_store_check": (c_int, [c_char_p, CONFIG_P]),
    "sess_store_close": (None, [STORE_P]),
    "sess_request_begin": (c_int, [c_char_p, c_size_t, P(REQUEST_P)]),
    "sess_request_session": (c_int, [REQUEST_P, STORE_P, c_char_p, P(SESSION_P)]),
    "sess_request_finish": (c_int, [REQUEST_P]),
    "sess_request_set_cookie_count": (c_size_t, [REQUEST_P]),
    "sess_request_set_cookie": (c_void_p, [REQUEST_P, c_size_t, P(c_size_t)]),
    "sess_request_free": (None, [REQUEST_P]),
    "sess_session_name": (c_char_p, [SESSION_P]),
    "sess_session_id": (c_char_p, [SESSION_P]),
    "sess_session_status": (c_int, [SESSION_P]),
    "sess_session_is_new": (c_int, [SESSION_P]),
    "sess_session_is_modified": (c_int, [SESSION_P]),
    "sess_session_created": (c_int64, [SESSION_P]),
    "sess_session_last_seen": (c_int64, [SESSION_P]),
    "sess_session_regenerate_id": (c_int, [SESSION_P]),
    "sess_session_destroy": (c_int, [SESSION_P]),
    "sess_session_touch": (c_int, [SESSION_P]),
    "sess_session_set_option": (c_int, [SESSION_P, c_char_p, c_char_p]),
    # Principals (since 0.4)
    "sess_session_set_principal": (c_int, [SESSION_P, c_char_p]),
    "sess_session_principal": (c_char_p, [SESSION_P]),
    "sess_session_set_metadata": (c_int, [SESSION_P, c_char_p, c_char_p]),
    "sess_session_metadata": (c_int, [SESSION_P, c_char_p, P(c_char_p)]),
    "sess_session_handle": (c_char_p, [SESSION_P]),
    "sess_store_list_sessions": (c_int, [STORE_P, c_char_p, P(LIST_P)]),
    "sess_session_list_count": (c_size_t, [LIST_P]),
    "sess_session_list_get": (c_int, [LIST_P, c_size_t, P(SessionInfo)]),
    "sess_session_list_free": (None, [LIST_P]),
    "sess_store_end_sessions": (c_int, [STORE_P, c_char_p, SESSION_P, P(c_int64)]),
    "sess_store_end_session": (c_int, [STORE_P, c_char_p, c_char_p]),
    # CSRF tokens (since 0.4)
    "sess_csrf_token": (c_int, [SESSION_P, P(c_void_p), P(c_size_t)]),
    "sess_csrf_verify": (c_int, [SESSION_P, c_char_p, c_size_t]),
    "sess_get_type": (c_int, [SESSION_P, c_char_p, P(c_int)]),
    "sess_get": (c_int, [SESSION_P, c_char_p, P(Value)]),
    "sess_get_bool": (c_int, [SESSION_P, c_char_p, P(c_int)]),
    "sess_get_int": (c_int, [SESSION_P, c_char_p, P(c_int64)]),
    "sess_get_double": (c_int, [SESSION_P, c_char_p, P(ctypes.c_double)]),
    "sess_get_str": (c_int, [SESSION_P, c_char_p, P(c_void_p), P(c_size_t)]),
    "sess_get_bytes": (c_int, [SESSION_P, c_char_p, P(c_void_p), P(c_size_t)]),
    "sess_get_json": (c_int, [SESSION_P, c_char_p, P(c_void_p), P(c_size_t)]),
    "sess_set_nil": (c_int, [SESSION_P, c_char_p]),
    "sess_set_bool": (c_int, [SESSION_P, c_char_p, c_int]),
    "sess_set_int": (c_int, [SESSION_P, c_char_p, c_int64]),
    "sess_set_double": (c_int, [SESSION_P, c_char_p, ctypes.c_double]),
    "sess_set_str": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_set_bytes": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_set_json": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_get_msgpack": (c_int, [SESSION_P, c_char_p, P(c_void_p), P(c_size_t)]),
    "sess_set_msgpack": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_delete": (c_int, [SESSION_P, c_char_p]),
    "sess_clear": (c_int, [SESSION_P]),
    "sess_count": (c_size_t, [SESSION_P]),
    "sess_key_at": (c_int, [SESSION_P, c_size_t, P(c_void_p), P(c_size_t)]),
    "sess_add_flash_str": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_add_flash_json": (c_int, [SESSION_P, c_char_p, c_char_p, c_size_t]),
    "sess_flashes_json": (c_int, [SESSION_P, c_char_p, P(c_void_p), P(c_size_t)]),
    # Custom stores (backend.py); callbacks and tables are passed as addresses.
    "sess_sink_write": (c_int, [c_void_p, c_char_p, c_size_t]),
    "sess_backend_set_error": (None, [c_char_p]),
    "sess_store_open_backend": (c_int, [c_void_p, c_void_p, CONFIG_P, P(STORE_P)]),
    "sess_register_scheme": (c_int, [c_char_p, c_void_p, c_void_p, c_void_p]),
}


def _candidates():
    env = os.environ.get("LIBSESSIONS_PATH")
    if env:
        # A path to a file, even a relative one; dlopen would search for a bare name.
        yield os.path.abspath(env) if os.path.exists(env) else env
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("libsessions.so.0", "libsessions.so"):
        yield os.path.join(here, name)
    found = ctypes.util.find_library("sessions")
    yield found or "libsessions.so.0"


def _load():
    tried = []
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
            continue
        major = lib.sess_version_number() // 10000
        if major != ABI_MAJOR:
            tried.append(f"{path}: ABI major {major}, this binding needs {ABI_MAJOR}")
            continue
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        return lib, path
    raise ImportError("libsessions not found; tried:\n  " + "\n  ".join(tried) +
                      "\nSet LIBSESSIONS_PATH to the library's path.")


lib, library_path = _load()
